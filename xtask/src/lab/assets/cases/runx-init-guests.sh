# Boots one guest per line of /host/runx/tests ("NAME SIGNAL"; SIGNAL "-" for none) with
# runx-init as PID 1, sends the signal once the process has started, waits for the exit code in
# xenstore, and keeps what the host checks in /host/runx-results/NAME.*.
. /host/case-lib.sh
out=/host/runx-results
mkdir -p "$out"
failed=0
while read -r name signal; do
    echo "== $name"
    if ! xl create -q "/host/runx/$name.cfg"; then
        echo "xl create failed"; failed=1; continue
    fi
    domid=$(xl domid "$name")
    base=/local/domain/$domid/data/runx
    start=$(now_ms)
    if [ "$signal" != "-" ]; then
        wait_key "$base/started" 60 && xenstore-write "$base/signal" "$signal"
    fi
    wait_key "$base/exit-code" 120 || failed=1
    echo "exit code after $(($(now_ms) - start)) ms"
    for key in started exit-code exit-signal error; do
        xenstore-read "$base/$key" > "$out/$name.$key" 2>/dev/null || rm -f "$out/$name.$key"
    done
    xl destroy "$name"
    cp "/var/log/xen/console/guest-$name.log" "$out/$name.console"
done < /host/runx/tests
exit $failed
