#!/bin/sh
# Block hotplug script for the lab's busybox dom0 (Debian's /etc/xen/scripts/block needs bash and
# util-linux): attaches the file named in the backend's params to a loop device and tells blkback
# which device to serve, as Xen's script does.
set -e
case "$1" in
    add)
        file=$(xenstore-read "$XENBUS_PATH/params")
        mode=$(xenstore-read "$XENBUS_PATH/mode")
        dev=$(losetup -f)
        if [ "$mode" = r ]; then losetup -r "$dev" "$file"; else losetup "$dev" "$file"; fi
        major=$(stat -L -c %t "$dev")
        minor=$(stat -L -c %T "$dev")
        xenstore-write "$XENBUS_PATH/node" "$dev"
        xenstore-write "$XENBUS_PATH/physical-device" "$major:$minor"
        xenstore-write "$XENBUS_PATH/physical-device-path" "$dev"
        xenstore-write "$XENBUS_PATH/hotplug-status" connected
        ;;
    remove)
        dev=$(xenstore-read "$XENBUS_PATH/node" 2>/dev/null) || exit 0
        losetup -d "$dev" || true
        ;;
esac
