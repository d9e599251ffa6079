# The engine's network in the guest: `ctr run --cni` (CNI's bridge plugin with host-local
# addresses, set up by setup_cni) wires the monitor's namespace between runx's create and
# start; runx joins the guest's vif to that namespace's eth0, and the guest has eth0's address,
# routes and MAC. dom0 and the guest, and two guests, reach each other through the bridge.
. /host/case-lib.sh

# resources ID: what `runx events` counts and what `runx update` changes on running container
# ID, made with --cpus 2 and 192 MiB, that has served pages: xl shows the same.
resources() {
    runx_ctr() { in_root runx --root /run/containerd/runc/default "$@"; }
    dom=$(domain_of "$1")
    stats=$(runx_ctr events --stats "$1" 2>&1)
    echo "$stats"
    number() { echo "$stats" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
    [ "$(number total)" -gt 0 ] 2>/dev/null && ok "events --stats: the guest's CPU time ($(number total) ns)" \
        || fail "events --stats: no CPU time in [$stats]"
    expect "events --stats: the memory limit is the domain's 192 MiB" $((192 << 20)) "$(number limit)"
    [ "$(number RxBytes)" -gt 0 ] 2>/dev/null && [ "$(number TxBytes)" -gt 0 ] 2>/dev/null \
        && ok "events --stats: the guest's traffic on eth0 (rx $(number RxBytes), tx $(number TxBytes) bytes)" \
        || fail "events --stats: no traffic counted in [$stats]"
    echo "ctr task metrics (containerd's runc shim reads the monitor's cgroup, not the guest):"
    in_root ctr task metrics "$1"

    online() { xl vcpu-list "$dom" | awk 'NR > 1 && $4 != "-"' | wc -l; }
    memory() { xl list "$dom" | awk 'NR == 2 { print $3 }'; }
    expect "--cpus 2: two vcpus online" 2 "$(online)"
    runx_ctr update --memory 128m --cpu-quota 100000 --cpu-period 100000 "$1"; rc=$?
    expect "runx update --memory 128m --cpu-quota 100000: exit code" 0 "$rc"
    for try in $(seq 30); do [ "$(memory)" -le 129 ] && [ "$(online)" = 1 ] && break; sleep 1; done
    [ "$(memory)" -le 129 ] && ok "the balloon gave memory back: xl list shows $(memory) MiB" \
        || fail "after update --memory 128m, xl list shows $(memory) MiB"
    expect "update --cpu-quota 100000/100000: one vcpu online" 1 "$(online)"
    echo '{"cpu":{"quota":-1}}' | runx_ctr update -r - "$1"; rc=$?
    for try in $(seq 30); do [ "$(online)" = 2 ] && break; sleep 1; done
    expect "update -r - with quota -1 (containerd's way): the vcpus online again" "0 2" "$rc $(online)"
    out=$(runx_ctr update --memory 1g "$1" 2>&1); rc=$?
    contains "update past the domain's maximum: refused with the fix" "over the 192 MiB the domain was created with" "$out"
    out=$(runx_ctr update --pids-limit 10 "$1" 2>&1); rc=$?
    contains "update of what a guest has no counterpart for: refused by name" "pids.limit" "$out"
    runx_ctr events --interval 1s "$1" > /tmp/events.out 2>&1 & events=$!
    sleep 3
}

set -e
start_containerd
install_runx
setup_cni
set +e
CNI="--cni $RUNX"
LEASES=/rootfs/var/lib/cni/networks/runx-lab
# HTTP GET with nc: the busybox-static wget crashes (Debian 12's, also outside the lab).
GET='printf "GET / HTTP/1.0\r\n\r\n" | busybox nc -w 20'
# fetch HOST PORT: the page's last line, asked a few times while the server starts.
fetch() {
    for try in 1 2 3 4 5; do
        page=$(sh -c "$GET $1 $2" 2>&1 | tail -1)
        [ -n "$page" ] && break
        sleep 2
    done
    echo "$page"
}

run_bg rx-web /tmp/web.out --cni --cpus 2 --memory-limit 201326592 $IMG rx-web sh -c 'cat /sys/class/net/eth0/address; busybox ip -o addr show dev eth0;
    busybox ip route; busybox ip -6 route; mkdir -p /www; echo "hello from the guest" > /www/index.html; echo ready;
    exec busybox httpd -f -p 80 -h /www'
web=$bg
if wait_for /tmp/web.out ready 180; then
    cat /tmp/web.out
    lease=$(grep -l "default-rx-web" $LEASES/10.* 2>/dev/null | head -1)
    ip=${lease##*/}
    contains "the guest has the address CNI's host-local gave eth0" "inet $ip/16" "$(cat /tmp/web.out)"
    contains "the guest has eth0's IPv6 address" "inet6 fd88::" "$(cat /tmp/web.out)"
    contains "the guest has the default route CNI set" "default via 10.88.0.1 dev eth0" "$(cat /tmp/web.out)"
    task_pid=$(in_root ctr task ls | awk '$1 == "rx-web" { print $2 }')
    ns_mac=$(in_root nsenter --net=/proc/$task_pid/ns/net ip -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
    expect "the guest's MAC is eth0's" "$ns_mac" "$(head -1 /tmp/web.out)"
    out=$(fetch "$ip" 80)
    expect "dom0 fetches the guest's page through the engine's bridge" "hello from the guest" "$out"
    ip6=$(grep -o 'inet6 fd88::[0-9a-f:]*' /tmp/web.out | cut -d' ' -f2)
    out=$(fetch "$ip6" 80)
    expect "dom0 fetches the guest's page over IPv6 ($ip6)" "hello from the guest" "$out"

    mkdir -p /tmp/www-dom0 && echo "hello from dom0" > /tmp/www-dom0/index.html
    busybox httpd -p 10.88.0.1:8080 -h /tmp/www-dom0
    out=$(in_root ctr run --rm $CNI $IMG rx-client sh -c "$GET 10.88.0.1 8080; $GET $ip 80" 2>&1)
    contains "a guest fetches dom0's page" "hello from dom0" "$out"
    contains "a guest fetches another guest's page" "hello from the guest" "$out"
    out=$(in_root ctr run --rm --cni $IMG rx-runc sh -c "$GET $ip 80" 2>&1 | tail -1)
    expect "a runc container on the same bridge fetches the guest's page" "hello from the guest" "$out"
    resources rx-web
    in_root ctr task kill -s SIGKILL rx-web
    wait $web
    for try in $(seq 10); do kill -0 $events 2>/dev/null || break; sleep 1; done
    if kill -0 $events 2>/dev/null; then fail "runx events went on after the container stopped"; kill $events
    else ok "runx events ended with the container"; fi
    streamed=$(grep -c '"type":"stats"' /tmp/events.out)
    [ "$streamed" -ge 2 ] && ok "runx events --interval 1s streamed $streamed stats" \
        || fail "runx events --interval 1s streamed [$streamed] stats: $(cat /tmp/events.out)"
else
    fail "the networked container never printed ready: $(cat /tmp/web.out)"; kill $web
fi

out=$(in_root ctr run --rm $RUNX $IMG rx-nonet ls /sys/class/net 2>&1)
expect "without --cni the guest has loopback only, as an empty namespace" "lo" "$out"

expect "after the containers: no address leased" "" "$(ls $LEASES 2>/dev/null | grep -v -e lock -e last_reserved)"
expect "after the containers: no vif left in dom0" "" "$(ip -o link | grep -o 'vif[0-9.]*')"
no_leftovers "after the networked containers"
exit $failed
