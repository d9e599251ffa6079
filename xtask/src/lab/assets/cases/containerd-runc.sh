# containerd 1.6 in dom0 (on the debootstrap disk) answers `ctr version`,
# imports a locally built OCI archive and runs it with the stock runc.
set -e
R=/rootfs
in_root() { chroot "$R" "$@"; }
[ -x "$R/usr/bin/containerd" ] || { echo "no containerd on the dom0 disk"; exit 1; }
in_root /usr/bin/containerd > /tmp/containerd.log 2>&1 &
waited=0
until in_root ctr version > /tmp/ctr-version 2>&1; do
    if [ "$waited" -ge 60 ]; then
        echo "containerd did not answer within 60 s:"; cat /tmp/ctr-version /tmp/containerd.log; exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
cat /tmp/ctr-version
grep -q 'Version: *1\.6\.' /tmp/ctr-version
in_root ctr images import --all-platforms /host/images/lab-busybox.tar
in_root ctr images ls -q | grep -qx 'docker.io/runx-lab/busybox:latest'
out=$(in_root ctr run --rm docker.io/runx-lab/busybox:latest lab-ctr /bin/sh -c 'echo "hello from runc in $(cat /etc/hostname 2>/dev/null || echo container)"; exit 7' 2>&1) && rc=0 || rc=$?
echo "ctr run printed: $out (exit $rc)"
[ "$rc" = 7 ]
echo "$out" | grep -q "hello from runc"
