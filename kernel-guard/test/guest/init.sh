#!/bin/busybox sh
# PID 1 in the test guest: mount the basics, load the disk modules, mount the
# store disk, then hand over to attacks.sh. Always powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t securityfs sec /sys/kernel/security
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko* || echo "KG-WARN insmod $m failed"; done
# wait for the three virtio disks
for i in $(seq 1 50); do [ -b /dev/vda ] && [ -b /dev/vdb ] && [ -b /dev/vdc ] && break; sleep 0.1; done
mkdir -p /data
mount -t ext4 /dev/vda /data || echo "KG-WARN cannot mount the store disk"
echo "KG-BOOTED at $(cut -d" " -f1 /proc/uptime) s lsm=$(cat /sys/kernel/security/lsm)"
sh /test/attacks.sh
echo "KG-INFO tests done at $(cut -d" " -f1 /proc/uptime) s"
echo "KG-DONE"
poweroff -f
