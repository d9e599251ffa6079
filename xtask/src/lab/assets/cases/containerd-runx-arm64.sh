# containerd 1.6 in the arm64 dom0 (its disk: Debian's packages, unpacked) runs containers through
# runx, each an arm64 Xen guest on the runx kernel: the output reaches ctr, the exit code is ctr's.
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e

out=$(in_root ctr run --rm $RUNX $IMG rx-hello echo hello from an arm64 xen guest 2>&1); rc=$?
expect "echo: exit code" 0 "$rc"
expect "echo: output on ctr's stdout, byte for byte" "hello from an arm64 xen guest" "$out"

out=$(in_root ctr run --rm $RUNX $IMG rx-exit sh -c 'echo bye; exit 42' 2>&1); rc=$?
expect "exit 42 is ctr's exit code" 42 "$rc"
expect "exit 42: output" "bye" "$out"
no_leftovers "after ctr run --rm"
exit $failed
