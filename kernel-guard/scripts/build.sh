#!/bin/sh
# Everything the qemu test boots, into BUILD (default kernel-guard/build):
# the kernel, vmlinux.h, BPF objects + static loader, the gateway stand-in
# SEA, the initramfs. Each step is skipped when its output is up to date.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$HERE/build}
mkdir -p "$B"
sh "$HERE/scripts/kernel.sh" "$B"
make -s -C "$HERE" B="$B"
sh "$HERE/scripts/sea.sh" "$B"
# The loader's own SHA-256 (it hashes --gateway-exe) must agree with coreutils.
if [ "$("$B/kg-attack" sha256 "$B/gateway")" != "$(sha256sum "$B/gateway" | cut -d' ' -f1)" ]; then
	echo "kernel-guard: src/loader/sha256.c disagrees with sha256sum on $B/gateway" >&2
	exit 1
fi
sh "$HERE/scripts/mkinitramfs.sh" "$B"
