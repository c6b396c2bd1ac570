#!/bin/busybox sh
# faultline guest init: PID 1 of the initramfs. Mounts what the mm selftests need,
# loads the network driver modules the harness packed, reserves hugepages, and
# starts sshd. Parameters come from the kernel command line (faultline.*=).
# The applet symlinks are made when the image is built; install them only if missing.
[ -e /bin/mount ] || /bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t hugetlbfs hugetlbfs /dev/hugepages

say() { echo "faultline-init: $*" > /dev/kmsg; echo "faultline-init: $*"; }

param() {
  for w in $(cat /proc/cmdline); do
    case "$w" in "faultline.$1="*) echo "${w#*=}"; return ;; esac
  done
  echo "$2"
}

for m in $(cat /etc/faultline/modules 2>/dev/null); do
  insmod "/lib/modules/faultline/$m.ko" || say "insmod $m failed"
done

ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

# sshd first (its dynamic loading is slow under TCG and overlaps the rest of the
# setup); -r: no re-exec per connection, which would pay that loading again.
chmod 700 /root/.ssh
mkdir -p /run/sshd
/usr/sbin/sshd -r -f /etc/ssh/sshd_config -E /tmp/sshd.log
# The harness connects on this line; the rest of the setup overlaps its handshake.
say "sshd-up"

echo "$(param hugepages 64)" > /proc/sys/vm/nr_hugepages
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null
# The selftests expect root to use userfaultfd from user mode too (uffd-unit-tests checks both).
echo 1 > /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null
# Keep kernel chatter on the serial console, where the harness watches for splats.
echo 7 > /proc/sys/kernel/printk
# The kernel draws the boot id at its first read: draw it now, so that a snapshot saved
# at ready carries it and a guest restored from it shows the saved guest's id.
cat /proc/sys/kernel/random/boot_id > /dev/null
# The harness waits for this before running anything.
touch /run/faultline-ready
say "ready hugepages=$(cat /proc/sys/vm/nr_hugepages)"

# PID 1 must never exit (that panics the kernel); reap orphans while idling.
while true; do sleep 3600; done
