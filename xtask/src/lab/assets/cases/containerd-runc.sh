# containerd 1.6 in dom0 (on the debootstrap disk) answers `ctr version`,
# imports a locally built OCI archive and runs it with the stock runc.
set -e
. /host/case-lib.sh
start_containerd
in_root ctr version
in_root ctr version | grep -q 'Version: *1\.6\.'
in_root ctr images import --all-platforms /host/images/lab-busybox.tar
in_root ctr images ls -q | grep -qx 'docker.io/runx-lab/busybox:latest'
out=$(in_root ctr run --rm docker.io/runx-lab/busybox:latest lab-ctr /bin/sh -c 'echo "hello from runc in $(cat /etc/hostname 2>/dev/null || echo container)"; exit 7' 2>&1) && rc=0 || rc=$?
echo "ctr run printed: $out (exit $rc)"
[ "$rc" = 7 ]
echo "$out" | grep -q "hello from runc"
