#!/bin/busybox sh
# PID 1 of the lab's dom0: bring up the Xen services, mount the host share
# (and the rootfs disk when there is one), run the host's payload, power off.
/bin/busybox --install -s /bin

# fatal MESSAGE: report why dom0 cannot go on, then power off at once.
fatal() {
    echo "@@lab: error: $*"
    echo o > /proc/sysrq-trigger
    sleep 30
}

export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The links systemd and udev make on a real dom0 (a devtmpfs has none): Xen's hotplug scripts
# take their lock with `stat -L /dev/stdin` (locking.sh) and retry forever without it.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/xen /run/xenstored /var/lib/xenstored /var/log/xen/console
while read -r module; do
    modprobe "$module" || echo "@@lab: error: modprobe $module failed"
done < /etc/lab-modules
mount -t xenfs xenfs /proc/xen || fatal "cannot mount xenfs: is this kernel running as dom0 under Xen?"
xenstored --pid-file /run/xenstored.pid || fatal "xenstored did not start"
xen-init-dom0 >/dev/null || fatal "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console || fatal "xenconsoled did not start"
if mount -t 9p -o trans=virtio,version=9p2000.L host /host; then
    if rootfs=$(findfs LABEL=dom0-rootfs 2>/dev/null); then
        mount -t ext4 "$rootfs" /rootfs
        for dir in proc sys dev dev/pts run tmp host sys/fs/cgroup; do
            mkdir -p "/rootfs/$dir"
            mount --bind "/$dir" "/rootfs/$dir"
        done
    fi
    echo "@@lab: dom0 ready ($(uname -m), $(xl info | grep -E '^xen_version' | tr -s ' '))"
    sh /host/payload.sh
    echo "@@lab: payload finished"
else
    fatal "cannot mount the host share (9p)"
fi
sync
echo o > /proc/sysrq-trigger
sleep 30
