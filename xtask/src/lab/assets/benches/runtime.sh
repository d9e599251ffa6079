# The runtime through containerd 1.6, against its floors in the same boot:
#   runx-start:  `ctr run` with runx to its first output line, against a bare `xl create` of the
#                same kernel whose /init prints a line (to that line in xenconsoled's log);
#   runx-direct-start: `runx create` + `runx start` of a bundle running the same program, without
#                containerd, to its first output line, against the same floor;
#   ctr-to-create: from `ctr run` to containerd's `create` call on the runtime, against the same
#                floor: the share of runx-start that containerd adds before runx runs at all;
#   runx-vs-runc: the same `ctr run` with runx, against stock runc;
#   runx-state:  20 `runx state` calls, against 20 `runc state` calls on a running container,
#                both run straight from dom0 (the disk's binaries and libraries, no chroot).
# And runx's own CPU time for create+start+delete (its --debug log, xl excluded) as CPU lines.
set -e
. /host/case-lib.sh
start_containerd
install_runx
ROOT=/run/containerd/runc/default

# first_line_ms CMD...: milliseconds from starting CMD to its first output line.
first_line_ms() {
    start=$(now_ms)
    "$@" 2>/dev/null | { read -r line; echo $(($(now_ms) - start)); cat >/dev/null; }
}

# The floor reads its kernel and ramdisk from where runx reads its own: the kernel from the dom0
# disk (where meta-runx installs it), the ramdisk from memory (runx writes its own under its
# state root), not from the 9p share (until session 4 it did: slower, in runx's favour).
mkdir -p /run/bench-floor
cp /host/runx/bench-bare.ramdisk /run/bench-floor/
sed -e 's|/host/runx/vmlinuz|/rootfs/usr/lib/runx/kernel|' \
    -e 's|/host/runx/bench-bare.ramdisk|/run/bench-floor/bench-bare.ramdisk|' \
    /host/runx/bench-bare.cfg > /run/bench-floor/bench-bare.cfg
cmp /host/runx/vmlinuz /rootfs/usr/lib/runx/kernel || echo "the floor's kernel is not runx's"
floor_ms() {
    log=/var/log/xen/console/guest-bench-bare.log
    rm -f "$log"
    start=$(now_ms)
    xl create -q /run/bench-floor/bench-bare.cfg
    until grep -q "first instruction" "$log" 2>/dev/null; do sleep 0.01; done
    echo $(($(now_ms) - start))
    wait_gone bench-bare 60 >/dev/null
}

# The floor's program as a runx bundle.
bundle /rootfs/tmp/direct-bundle /host/runx/bare-init '["/bin/bare-init"]'
direct_ms() {
    id=direct-$1 out=/tmp/direct.out
    start=$(now_ms)
    in_root runx --root /run/runx-bench create --bundle /tmp/direct-bundle "$id" > $out 2>&1
    in_root runx --root /run/runx-bench start "$id"
    until grep -q "first instruction" $out; do sleep 0.01; done
    echo $(($(now_ms) - start))
    until in_root runx --root /run/runx-bench state "$id" | grep -q stopped; do sleep 0.1; done
    in_root runx --root /run/runx-bench delete "$id"
}

# A runc-binary that notes when containerd calls `create` (dom0 uptime), then is runx: the time
# from `ctr run` to that call is containerd's alone, whatever the runtime.
mkdir -p /rootfs/usr/local/sbin
cat > /rootfs/usr/local/sbin/runx-noting-create <<'SH'
#!/bin/sh
for arg; do [ "$arg" = create ] && cut -d' ' -f1 /proc/uptime > /tmp/create-called; done
exec /usr/sbin/runx "$@"
SH
chmod 0755 /rootfs/usr/local/sbin/runx-noting-create
ctr_to_create_ms() {
    rm -f /rootfs/tmp/create-called
    start=$(now_ms)
    in_root ctr run --rm --runtime io.containerd.runc.v2 --runc-binary /usr/local/sbin/runx-noting-create \
        $IMG "cc-$1" echo first >/dev/null 2>&1
    echo $(($(now_ms /rootfs/tmp/create-called) - start))
}

for round in 1 2 3 4 5; do
    record_bench ctr-to-create baseline "$(floor_ms)"
    record_bench ctr-to-create candidate "$(ctr_to_create_ms "$round")"
    record_bench runx-direct-start baseline "$(floor_ms)"
    record_bench runx-direct-start candidate "$(direct_ms "$round")"
    record_bench runx-start baseline "$(floor_ms)"
    record_bench runx-start candidate "$(first_line_ms in_root ctr run --rm $RUNX $IMG "rs-$round" echo first)"
    record_bench runx-vs-runc baseline "$(first_line_ms in_root ctr run --rm $IMG "rc-$round" echo first)"
    record_bench runx-vs-runc candidate "$(first_line_ms in_root ctr run --rm $RUNX $IMG "rv-$round" echo first)"
    echo "start round $round done"
done

in_root ctr run -d $RUNX $IMG st-runx sleep 600
in_root ctr run -d $IMG st-runc sleep 600
sleep 2
export LD_LIBRARY_PATH=/rootfs/lib/x86_64-linux-gnu:/rootfs/usr/lib/x86_64-linux-gnu
/rootfs/usr/sbin/runc --root $ROOT state st-runc >/dev/null || echo "runc does not run from dom0"
/rootfs/usr/sbin/runx --root $ROOT state st-runx >/dev/null || echo "runx does not run from dom0"
for round in 1 2 3 4 5; do
    start=$(now_ms)
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /rootfs/usr/sbin/runc --root $ROOT state st-runc >/dev/null; done
    record_bench runx-state baseline $(($(now_ms) - start))
    start=$(now_ms)
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /rootfs/usr/sbin/runx --root $ROOT state st-runx >/dev/null; done
    record_bench runx-state candidate $(($(now_ms) - start))
done
unset LD_LIBRARY_PATH
for c in st-runx st-runc; do
    in_root ctr task kill -s SIGKILL $c
    sleep 1
    in_root ctr task delete $c >/dev/null 2>&1 || true
    in_root ctr container rm $c
done

# runx alone on a bundle: its --debug log has each command's own CPU time.
bundle /rootfs/tmp/cpu-bundle /bin/busybox '["/bin/busybox","true"]'
for round in 1 2 3 4 5; do
    log=/rootfs/tmp/cpu.log
    rm -f $log
    in_root runx --root /run/runx-bench --debug --log /tmp/cpu.log create --bundle /tmp/cpu-bundle cpu >/dev/null
    in_root runx --root /run/runx-bench --debug --log /tmp/cpu.log start cpu
    until in_root runx --root /run/runx-bench state cpu | grep -q stopped; do sleep 0.1; done
    in_root runx --root /run/runx-bench --debug --log /tmp/cpu.log delete cpu
    total=$(grep -o 'cpu: [0-9.]*' $log | awk '{ s += $2 } END { printf "%.1f", s }')
    printf 'CPU\trunx create+start+delete\t%s\n' "$total" >> /host/bench
done
