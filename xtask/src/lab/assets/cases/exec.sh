# `ctr task exec` into a running runx container: runx-init starts the process in the guest and
# its stdio, signals and exit status travel over a vchan (runx exec --detach's relay in dom0).
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e
R="in_root runx --root /run/containerd/runc/default"

run_bg rx-exec /tmp/exec-main.out $IMG rx-exec sh -c 'echo ready; while :; do sleep 1; done'
main=$bg
if ! wait_for /tmp/exec-main.out ready 180; then
    fail "the container never printed ready: $(cat /tmp/exec-main.out)"; kill $main; exit 1
fi
x() { in_root ctr task exec --exec-id "$@"; }

out=$(x e-echo rx-exec echo hello from exec 2>&1); rc=$?
expect "exec echo: output" "hello from exec" "$out"
expect "exec echo: exit code" 0 "$rc"
x e-exit rx-exec sh -c 'echo to stderr >&2; exit 3' > /tmp/e-exit.out 2> /tmp/e-exit.err; rc=$?
expect "exec sh -c 'exit 3': exit code" 3 "$rc"
expect "exec: stderr reaches ctr's stderr" "to stderr" "$(cat /tmp/e-exit.err)"
out=$(x e-env --cwd /bin --user 1000:1000 rx-exec sh -c 'echo "$(pwd) $(id -u):$(id -g) $PATH"' 2>&1)
# The lab image's PATH is /bin (the containerd-runx case prints it for the main process).
expect "exec --cwd --user: cwd, user, and the container's env" "/bin 1000:1000 /bin" "$out"
head -c 1048576 /dev/urandom > /rootfs/tmp/random
want=$(sha256sum < /rootfs/tmp/random | cut -d' ' -f1)
got=$(in_root sh -c 'ctr task exec --exec-id e-cat rx-exec cat < /tmp/random' | sha256sum | cut -d' ' -f1)
expect "exec cat: 1 MiB through stdin comes back the same (sha256)" "$want" "$got"
out=$(in_root script -qec "ctr task exec -t --exec-id e-tty rx-exec sh -c '[ -t 0 ] && [ -t 1 ] && echo has-a-terminal; tty'" /dev/null 2>&1); rc=$?
contains "exec -t: the process has a terminal" "has-a-terminal" "$out"
contains "exec -t: a pty of the container's devpts" "/dev/pts/" "$out"
out=$($R exec rx-exec echo without containerd 2>&1); rc=$?
expect "runx exec (not detached): output and exit code" "without containerd 0" "$out $rc"

pids=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    x "e-many-$i" rx-exec sh -c "echo many $i; exit $i" > "/tmp/e-many.$i" 2>&1 &
    pids="$pids $!"
done
i=0
for pid in $pids; do
    wait "$pid"; rc=$?
    expect "ten execs at once: exec $i exit code and output" "$i many $i" "$rc $(cat /tmp/e-many.$i)"
    i=$((i + 1))
done

x e-sleep rx-exec sleep 600 > /dev/null 2>&1 & sleeper=$!
sleep 3
in_root ctr task kill --exec-id e-sleep -s SIGKILL rx-exec
wait $sleeper; rc=$?
expect "an exec'd sleep killed with ctr task kill --exec-id: 137" 137 "$rc"
sleep 2
out=$(x e-ps rx-exec ps 2>&1)
case "$out" in *"sleep 600"*) fail "the killed exec's process is still running in the guest: $out" ;;
    *) ok "the killed exec's process is gone from the guest" ;; esac

out=$(x e-missing rx-exec no-such-program 2>&1); rc=$?
[ "$rc" != 0 ] && contains "exec of a missing program: the error names it" "no-such-program" "$out" \
    || fail "exec of a missing program: rc $rc, $out"
echo '{"args": ' > /rootfs/tmp/bad-process.json
out=$($R exec --process /tmp/bad-process.json rx-exec 2>&1); rc=$?
[ "$rc" != 0 ] && contains "a malformed process.json: the error names the file" "bad-process.json" "$out" \
    || fail "a malformed process.json: rc $rc, $out"
out=$($R exec rx-nothing true 2>&1); rc=$?
[ "$rc" != 0 ] && contains "exec into an unknown id: the error names it" "rx-nothing" "$out" \
    || fail "exec into an unknown id: rc $rc, $out"
domid=$(xl domid "$(domain_of rx-exec)")
expect "no exec request left in the guest's xenstore" "" "$(xenstore-list /local/domain/$domid/data/runx/exec 2>/dev/null)"

x e-long rx-exec sleep 600 > /tmp/e-long.out 2>&1 & long=$!
$R exec rx-exec sleep 600 > /tmp/e-direct.out 2>&1 & direct=$!
sleep 3
in_root ctr task kill -s SIGKILL rx-exec
wait $main; rc=$?
expect "the main process killed while execs run: the container's exit code" 137 "$rc"
for try in $(seq 20); do kill -0 $long 2>/dev/null || kill -0 $direct 2>/dev/null || break; sleep 1; done
if kill -0 $long 2>/dev/null || kill -0 $direct 2>/dev/null; then
    fail "an exec went on after its container stopped"; kill $long $direct
else
    wait $direct; rc=$?
    expect "runx exec ends with its container, as killed: exit code" 137 "$rc"
    wait $long; rc=$?
    [ "$rc" != 0 ] && ok "ctr task exec ends with its container: exit code $rc ($(cat /tmp/e-long.out))" \
        || fail "ctr task exec reported success after its container was killed"
fi

out=$(in_root ctr run --rm $RUNX $IMG rx-stopped true 2>&1)
out=$($R exec rx-stopped true 2>&1); rc=$?
[ "$rc" != 0 ] && ok "exec into a stopped or deleted container is refused: $out" || fail "exec into a stopped container ran"
no_leftovers "after the execs"
expect "after the execs: no exec relay left" "" "$(ps | grep '[e]xec-relay')"
exit $failed
