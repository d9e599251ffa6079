#!/bin/busybox sh
# PID 1 of the lab's test guest: say hello on the Xen console, power off.
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "@@guest: hello from a lab guest on $(/bin/busybox uname -m), kernel $(/bin/busybox uname -r)"
/bin/busybox poweroff -f
