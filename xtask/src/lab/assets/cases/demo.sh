# cargo xtask demo: containerd runs one container through runx, in its own Xen guest. The host
# prints what ran, what it printed and its exit status (/host/demo/command, output, status).
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e
arch=$(uname -m)
[ "$arch" = aarch64 ] && arch=arm64
command="ctr run --rm $RUNX $IMG demo echo hello from a runx container on $arch Xen"
mkdir -p /host/demo
echo "$command" > /host/demo/command
in_root $command > /host/demo/output 2>&1
status=$?
echo "$status" > /host/demo/status
exit "$status"
