#!/bin/sh
# Packs the guest: busybox, the kernel modules the test needs, the guard, the
# attack tools (chattr, bpftool, kg-attack), the gateway SEA with its native
# addons, node + the agent bundle (the agent runs unauthenticated), and the
# shared libraries they load. Output: BUILD/initramfs.cpio (uncompressed:
# TCG unpacks it faster than it would decompress it).
set -eu
B=${1:?usage: mkinitramfs.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
R=$B/initramfs
rm -rf "$R"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/lib/modules" "$R/lib64" \
	"$R/lib/x86_64-linux-gnu" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" \
	"$R/opt/bulwark" "$R/test" "$R/etc" "$R/data"

cp /bin/busybox "$R/bin/busybox"

# The kernel's modules for a virtio disk, ext4 and LVM snapshots, in load order.
rel=$(cat "$B/kernel/release")
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
	virtio_blk crc16 mbcache jbd2 crc32c_generic ext4 dm-mod dm-bufio dm-snapshot; do
	f=$(find "$B/kernel/root/lib/modules/$rel" -name "$m.ko*" | head -n1)
	[ -n "$f" ] || { echo "kernel-guard: module $m not in the kernel package" >&2; exit 1; }
	cp "$f" "$R/lib/modules/"
	echo "$m" >> "$R/lib/modules/order"
done

# a module that is not loaded: insmod after the lock must be refused
mkdir -p "$R/lib/modules/extra"
cp "$(find "$B/kernel/root/lib/modules/$rel" -name 'loop.ko*' | head -n1)" "$R/lib/modules/extra/loop.ko"

# copy_bin SRC DEST: a dynamic executable plus every library ldd lists
copy_bin() {
	cp "$1" "$R$2"
	ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) (.*/\1/p' |
	while read -r lib; do
		mkdir -p "$R$(dirname "$lib")"
		[ -e "$R$lib" ] || cp -L "$lib" "$R$lib"
	done
}
cp "$B/bulwark-guard" "$R/usr/sbin/bulwark-guard"
cp "$B/kg-attack" "$R/usr/bin/kg-attack"
copy_bin "$(command -v chattr)" /usr/bin/chattr
copy_bin "$(command -v lsattr)" /usr/bin/lsattr
copy_bin "$(command -v bpftool)" /usr/sbin/bpftool
# LVM without udev (the guest has none): lvm makes the /dev/mapper nodes itself
copy_bin "$(command -v lvm)" /usr/sbin/lvm
mkdir -p "$R/etc/lvm"
cat > "$R/etc/lvm/lvm.conf" <<'EOF'
devices { obtain_device_list_from_udev = 0 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
backup { backup = 0 archive = 0 }
EOF
if [ -f "$B/gateway" ]; then
	copy_bin "$B/gateway" /opt/bulwark/gateway
	# hashed here, as an installer would: hashing 99 MB under TCG takes ~5-15 s
	sha256sum "$B/gateway" | cut -d' ' -f1 > "$R/opt/bulwark/gateway.sha256"
	# the libraries the gateway may map executable (--gateway-lib): its own,
	# the addons beside it (process.dlopen) and theirs
	ldd "$B/gateway" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) (.*/\1/p' > "$R/opt/bulwark/libs"
	for a in $(cat "$B/gateway-sea/addons.txt" 2>/dev/null); do
		copy_bin "$B/gateway-sea/$a" "/opt/bulwark/$a"
		echo "/opt/bulwark/$a" >> "$R/opt/bulwark/libs"
		ldd "$B/gateway-sea/$a" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) (.*/\1/p' >> "$R/opt/bulwark/libs"
	done
	sort -u -o "$R/opt/bulwark/libs" "$R/opt/bulwark/libs"
fi
# node and the agent bundle with the packages it leaves external
ROOT=$(cd "$HERE/.." && pwd)
if [ -f "$ROOT/agent/dist/bundle/bulwark-agent.js" ]; then
	copy_bin "$(command -v node)" /usr/bin/node
	mkdir -p "$R/opt/agent/dist/bundle"
	cp "$ROOT"/agent/dist/bundle/*.js "$R/opt/agent/dist/bundle/"
	echo '{ "type": "module" }' > "$R/opt/agent/package.json"
	(cd "$ROOT" && node "$HERE/scripts/agent-modules.cjs" | grep -v '^node_modules/@types/' |
		tar -c --exclude='*/prebuilds/android-*' --exclude='*/prebuilds/darwin-*' --exclude='*/prebuilds/ios-*' \
			--exclude='*/prebuilds/win32-*' --exclude='*/prebuilds/linux-arm*' --exclude='zstd-napi/deps' \
			--exclude='zstd-napi/src' --exclude='*/obj.target' --exclude='*.a' --exclude='*.md' -T -) |
		tar -x -C "$R/opt/agent"
	for f in $(find "$R/opt/agent/node_modules" -name '*.node'); do
		ldd "$f" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p' | while read -r lib; do
			mkdir -p "$R$(dirname "$lib")"; [ -e "$R$lib" ] || cp -L "$lib" "$R$lib"; done
	done
fi
echo 'kernel-guard test restore password' > "$R/test/restore-password"
cp "$HERE/test/guest/init.sh" "$R/init"
cp "$HERE/test/guest/attacks.sh" "$R/test/attacks.sh"
chmod +x "$R/init" "$R/test/attacks.sh"
echo "root:x:0:0:root:/:/bin/sh" > "$R/etc/passwd"

(cd "$R" && find . | cpio -o -H newc --quiet) > "$B/initramfs.cpio.tmp"
mv "$B/initramfs.cpio.tmp" "$B/initramfs.cpio"
rm -rf "$R"
