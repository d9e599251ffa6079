# An integrator's lab case (`cargo xtask lab --case-file docs/examples/lab-case-env.sh`): it runs
# in dom0 after the built-in cases, with the lab's runx, containerd 1.6 and busybox image. Copy it
# and check your own scenario; `ok`/`fail`/`expect`/`contains` and the other helpers are in
# xtask/src/lab/assets/case-lib.sh. Exit 0 passes.
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e

# What config.json says reaches the process: env from `ctr run --env`, and its exit code.
out=$(in_root ctr run --rm $RUNX --env GREETING=hello-from-a-case-file $IMG ex-env \
    sh -c 'echo "$GREETING"; exit 3' 2>&1); rc=$?
expect "the env reaches the process" "hello-from-a-case-file" "$out"
expect "the exit code reaches ctr" 3 "$rc"

# While it runs, the container has a domain of its own, named after containerd's namespace.
run_bg ex-wait /tmp/ex-wait.out $IMG ex-wait sh -c 'echo ready; sleep 60'
if wait_for /tmp/ex-wait.out ready 90; then
    domain=$(domain_of ex-wait)
    contains "its domain is named NAMESPACE-TAG-ID" "default-" "$domain"
    in_root ctr task kill -s SIGKILL ex-wait
fi
wait $bg
no_leftovers "after the example case"
exit $failed
