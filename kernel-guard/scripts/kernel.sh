#!/bin/sh
# Fetches Debian's 6.1 kernel (CONFIG_BPF_LSM=y, BTF) into build/kernel without
# installing it (no initramfs hook), and derives build/vmlinux.h from its BTF.
set -eu
B=${1:?usage: kernel.sh BUILD_DIR}
K=$B/kernel
if [ ! -f "$K/ok" ]; then
	rm -rf "$K" && mkdir -p "$K/deb"
	# linux-image-amd64 is a metapackage: its dependency names the real image
	img=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	[ -n "$img" ] || { echo "kernel-guard: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
	(cd "$K/deb" && apt-get download "$img" >/dev/null 2>&1) || {
		apt-get update -qq && (cd "$K/deb" && apt-get download "$img" >/dev/null); }
	dpkg-deb -x "$K"/deb/*.deb "$K/root"
	rm -rf "$K/deb"
	cp "$(ls "$K"/root/boot/vmlinuz-*)" "$K/bzImage"
	basename "$(ls -d "$K"/root/lib/modules/*)" > "$K/release"
	touch "$K/ok"
fi
if [ ! -s "$B/vmlinux.h" ]; then
	# the bzImage carries an xz-compressed vmlinux: find the xz magic, unpack
	off=$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$K/bzImage" | head -n1 | cut -d: -f1)
	tail -c +$((off + 1)) "$K/bzImage" | xz -dc 2>/dev/null > "$K/vmlinux" || true
	bpftool btf dump file "$K/vmlinux" format c > "$B/vmlinux.h.tmp"
	mv "$B/vmlinux.h.tmp" "$B/vmlinux.h"
	rm -f "$K/vmlinux"
fi
