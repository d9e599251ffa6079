# containerd 1.6 runs containers through runx (`ctr run --runc-binary /usr/sbin/runx`): each one
# a Xen guest on the runx kernel with runx-init. Checks what a user of ctr sees.
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e

start_ms=$(now_ms)
out=$(in_root ctr run --rm $RUNX $IMG rx-hello echo hello from a xen guest 2>&1); rc=$?
ok "echo: ctr run took $(($(now_ms) - start_ms)) ms (root in the initramfs)"
expect "echo: exit code" 0 "$rc"
expect "echo: output on ctr's stdout, byte for byte" "hello from a xen guest" "$out"

out=$(in_root ctr run --rm $RUNX $IMG rx-exit sh -c 'echo bye; exit 42' 2>&1); rc=$?
expect "exit 42 is ctr's exit code" 42 "$rc"
expect "exit 42: output" "bye" "$out"

out=$(in_root ctr run --rm $RUNX --env GREETING=hi --cwd /bin $IMG rx-env \
    sh -c 'echo "$GREETING|$PATH|$(pwd)|$(id -u):$(id -g)|$HOME"' 2>&1); rc=$?
expect "env from ctr and the image, cwd, user, HOME as runc sets it (no passwd: /)" "hi|/bin|/bin|0:0|/" "$out"

# As under runc, the process starts with no signal ignored (runx-init's own SIGPIPE is not passed on).
out=$(in_root ctr run --rm $RUNX $IMG rx-sigign cat /proc/self/status 2>&1 | awk '$1 == "SigIgn:" { print $2 }')
expect "no signal ignored at exec (SigIgn)" 0000000000000000 "$out"

# A propagation option is applied on its own (with the other flags, mount(2) says EINVAL).
out=$(in_root ctr run --rm $RUNX --mount type=tmpfs,src=tmpfs,dst=/scratch,options=nosuid:shared $IMG rx-shared \
    cat /proc/self/mountinfo 2>&1 | awk '$5 == "/scratch"')
contains "a tmpfs mount with option shared is a shared mount" "shared:" "$out"

out=$(in_root ctr run --rm $RUNX $IMG rx-devlinks ls -l /dev/ptmx /dev/fd /dev/stdin /dev/stdout /dev/stderr 2>&1)
for link in "ptmx -> pts/ptmx" "fd -> /proc/self/fd" "stdin -> /proc/self/fd/0" "stdout -> /proc/self/fd/1" "stderr -> /proc/self/fd/2"; do
    contains "/dev links as runc makes them: $link" "$link" "$out"
done

out=$(in_root script -qec "ctr run --rm -t $RUNX $IMG rx-tty sh -c '[ -t 0 ] && [ -t 1 ] && echo has-a-terminal; tty'" /dev/null 2>&1); rc=$?
contains "ctr run -t gives the process a terminal" "has-a-terminal" "$out"
contains "the terminal is a pty of the container's devpts, as under runc" "/dev/pts/0" "$out"
expect "ctr run -t: exit code" 0 "$rc"

run_bg rx-trap /tmp/trap.out $IMG rx-trap sh -c 'trap "echo trapped TERM; exit 3" TERM; echo ready; while :; do sleep 1; done'
if wait_for /tmp/trap.out ready 90; then
    # ctr's spec asks for a network namespace: the task's pid (the monitor) lives in a new one, which
    # is what `ctr run --cni` would wire, never in dom0's.
    task_pid=$(in_root ctr task ls | awk '$1 == "rx-trap" { print $2 }')
    task_ns=$(readlink "/proc/$task_pid/ns/net"); dom0_ns=$(readlink /proc/self/ns/net)
    if [ -n "$task_ns" ] && [ "$task_ns" != "$dom0_ns" ]; then ok "the monitor lives in a network namespace of its own ($task_ns)"
    else fail "the monitor (pid $task_pid) is in network namespace [$task_ns], dom0 in [$dom0_ns]"; fi
    in_root ctr task kill -s SIGTERM rx-trap
    wait $bg; rc=$?
    expect "SIGTERM reaches the shell's trap: exit code" 3 "$rc"
    contains "SIGTERM reaches the shell's trap: output" "trapped TERM" "$(cat /tmp/trap.out)"
else
    fail "trap container never printed ready: $(cat /tmp/trap.out)"; kill $bg
fi

run_bg rx-kill /tmp/kill.out $IMG rx-kill sh -c 'echo ready; while :; do sleep 1; done'
if wait_for /tmp/kill.out ready 90; then
    in_root ctr task kill -s SIGKILL rx-kill
    wait $bg; rc=$?
    expect "SIGKILL gives 137" 137 "$rc"
else
    fail "kill container never printed ready: $(cat /tmp/kill.out)"; kill $bg
fi

run_bg rx-limits /tmp/limits.out --memory-limit 100663296 --cpus 2 $IMG rx-limits sh -c 'echo ready; sleep 60'
if wait_for /tmp/limits.out ready 90; then
    row=$(xl list "$(domain_of rx-limits)" | awk 'NR == 2 { print $3 " MiB, " $4 " vcpus" }')
    expect "--memory-limit 96 MiB and --cpus 2 in xl list" "96 MiB, 2 vcpus" "$row"
    contains "the cap in xl's domain config" '"cap": 200' "$(in_root xl list -l "$(domain_of rx-limits)")"
    in_root ctr task kill -s SIGKILL rx-limits
fi
wait $bg
no_leftovers "after ctr run --rm"

# The root on a disk (io.runx.rootfs=disk; the host config allows every io.runx.* annotation by
# default): an ext4 image that Xen's block hotplug script attaches to a loop device for blkback.
start_ms=$(now_ms)
out=$(in_root ctr run --rm $RUNX --annotation io.runx.rootfs=disk $IMG rx-disk \
    sh -c 'echo hello from a disk; grep " / " /proc/mounts' 2>&1); rc=$?
took=$(($(now_ms) - start_ms))
expect "disk root: exit code" 0 "$rc"
contains "disk root: output on ctr's stdout" "hello from a disk" "$out"
contains "disk root: / is the ext4 disk blkback serves" "/dev/xvda / ext4" "$out"
# A record, not a check: performance is measured by `cargo xtask bench`.
ok "disk root: ctr run took $took ms"
[ "$rc" = 0 ] || tail -20 /rootfs/var/log/xen/xen-hotplug.log
expect "disk root: no loop device left" "" "$(in_root losetup -a)"
no_leftovers "after a disk root"

out=$(in_root ctr run --rm $RUNX --env RUNX_KERNEL=/../../etc/passwd $IMG rx-escape echo no 2>&1); rc=$?
[ "$rc" != 0 ] && ok "RUNX_KERNEL escaping the rootfs fails" || fail "RUNX_KERNEL escaping the rootfs ran (exit 0)"
contains "RUNX_KERNEL escape: ctr names the cause" "leaves the container's rootfs" "$out"
in_root ctr container rm rx-escape >/dev/null 2>&1
mv /rootfs/usr/lib/runx/kernel /rootfs/usr/lib/runx/kernel.away
out=$(in_root ctr run --rm $RUNX $IMG rx-nokernel echo no 2>&1); rc=$?
mv /rootfs/usr/lib/runx/kernel.away /rootfs/usr/lib/runx/kernel
[ "$rc" != 0 ] && ok "a missing guest kernel fails" || fail "a missing guest kernel ran"
contains "missing kernel: ctr names the file and the fix" "/usr/lib/runx/kernel does not exist: install runx's guest kernel" "$out"
in_root ctr container rm rx-nokernel >/dev/null 2>&1
out=$(in_root runx --root /run/containerd/runc/default state rx-nothing 2>&1)
contains "an unknown id" 'container \"rx-nothing\" does not exist' "$out"
no_leftovers "after the failures"

pids=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    in_root ctr run --rm $RUNX --memory-limit 33554432 $IMG "rx-many-$i" sh -c "echo many $i; exit $i" > "/tmp/many.$i" 2>&1 &
    pids="$pids $!"
done
i=0
for pid in $pids; do
    wait "$pid"; rc=$?
    expect "ten at once, 32 MiB each: container $i exit code" "$i" "$rc"
    expect "ten at once: container $i output" "many $i" "$(cat /tmp/many.$i)"
    i=$((i + 1))
done
no_leftovers "after ten at once"

# `runx create` lets the guest boot; runx-init holds the process back until `runx start`.
bundle /rootfs/tmp/gate-bundle /bin/busybox '["/bin/busybox","echo","started"]'
gate_runx() { in_root runx --root /run/runx-gate "$@"; }
gate_runx create --bundle /tmp/gate-bundle rx-gate > /tmp/gate.out 2>&1
gate_domain=$(domain_of rx-gate)
domid=$(xl domid "$gate_domain")
sleep 8
row=$(xl list "$gate_domain" | awk 'NR == 2 { print $5, $6 }')
case "$row" in
    ??p*) fail "created: the domain is paused ($row): it should boot at create" ;;
    *) ok "created: the domain runs ($row)" ;;
esac
awk -v t="${row#* }" 'BEGIN { exit !(t > 0.3) }' && ok "created: the guest booted (${row#* } s of CPU)" \
    || fail "created: the guest used ${row#* } s of CPU: it did not boot"
xenstore-exists /local/domain/$domid/data/runx/started 2>/dev/null \
    && fail "created: runx-init started the process before runx start" || ok "created: no process started yet"
expect "created: no output before runx start" "" "$(cat /tmp/gate.out)"
start_ms=$(now_ms)
gate_runx start rx-gate
wait_for /tmp/gate.out started 60 || fail "the process did not run after runx start"
ok "runx start to the process's output: $(($(now_ms) - start_ms)) ms (the kernel had booted)"
wait_gone "$gate_domain" 60
gate_runx delete rx-gate
expect "runx start: output" "started" "$(cat /tmp/gate.out)"
expect "runx delete: no state left" "" "$(ls /rootfs/run/runx-gate)"
exit $failed
