#!/bin/busybox sh
# PID 1 of the lab's test guest: say hello on the Xen console, power off.
# With `devmem=ADDR` on the kernel command line, it also reads the 32-bit word at physical ADDR.
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "@@guest: hello from a lab guest on $(/bin/busybox uname -m), kernel $(/bin/busybox uname -r)"
for word in $(/bin/busybox cat /proc/cmdline); do
    case "$word" in
    devmem=*)
        addr=${word#devmem=}
        [ -e /dev/mem ] || /bin/busybox mknod /dev/mem c 1 1
        value=$(/bin/busybox devmem "$addr" 32 2>&1)
        status=$?
        if [ "$status" -eq 0 ]; then
            echo "@@guest: devmem $addr = $value"
        else
            echo "@@guest: devmem $addr failed: exit status $status${value:+, $value}"
        fi
        ;;
    esac
done
/bin/busybox poweroff -f
