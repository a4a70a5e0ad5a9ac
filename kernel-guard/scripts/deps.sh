#!/bin/sh
# Installs the Debian packages the guard build and its qemu test need, but
# only when something is missing: a warm machine pays one dpkg query.
set -eu
PKGS="qemu-system-x86 busybox-static clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool cpio e2fsprogs xz-utils gcc make lvm2"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "kernel-guard: installing missing packages:$missing" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "kernel-guard: need root to apt-get install$missing" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
