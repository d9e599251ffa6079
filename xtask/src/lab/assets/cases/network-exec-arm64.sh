# The engine's network, exec, events and update on arm64 Xen: `ctr run --cni` gives an arm64
# guest eth0's address and dom0 fetches its page; `ctr task exec` runs processes in it over
# runx-init's vchan; `runx events --stats` counts the guest and `runx update` resizes it.
. /host/case-lib.sh
set -e
start_containerd
install_runx
setup_cni
set +e
R="in_root runx --root /run/containerd/runc/default"
LEASES=/rootfs/var/lib/cni/networks/runx-lab
GET='printf "GET / HTTP/1.0\r\n\r\n" | busybox nc -w 20'

run_bg rx-arm /tmp/arm.out --cni --memory-limit 201326592 $IMG rx-arm sh -c 'mkdir -p /www;
    echo "hello from an arm64 guest" > /www/index.html; echo ready; exec busybox httpd -f -p 80 -h /www'
main=$bg
if ! wait_for /tmp/arm.out ready 300; then
    fail "the networked container never printed ready: $(cat /tmp/arm.out)"; kill $main; exit 1
fi
lease=$(grep -l "default-rx-arm" $LEASES/10.* 2>/dev/null | head -1)
ip=${lease##*/}
for try in 1 2 3 4 5; do
    page=$(sh -c "$GET $ip 80" 2>&1 | tail -1)
    [ -n "$page" ] && break
    sleep 2
done
expect "dom0 fetches the arm64 guest's page at CNI's address ($ip)" "hello from an arm64 guest" "$page"

x() { in_root ctr task exec --exec-id "$@"; }
out=$(x e-echo rx-arm sh -c 'echo exec in $(uname -m); exit 3' 2>&1); rc=$?
expect "ctr task exec: output and exit code" "exec in aarch64 3" "$out $rc"
out=$(x e-addr rx-arm busybox ip -o -4 addr show dev eth0 2>&1)
contains "an exec'd process sees the guest's eth0 address" "inet $ip/" "$out"
head -c 262144 /dev/urandom > /rootfs/tmp/random
want=$(sha256sum < /rootfs/tmp/random | cut -d' ' -f1)
got=$(in_root sh -c 'ctr task exec --exec-id e-cat rx-arm cat < /tmp/random' | sha256sum | cut -d' ' -f1)
expect "ctr task exec cat: 256 KiB through stdin comes back the same (sha256)" "$want" "$got"

stats=$($R events --stats rx-arm 2>&1)
number() { echo "$stats" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
[ "$(number total)" -gt 0 ] 2>/dev/null && ok "events --stats: the guest's CPU time ($(number total) ns)" \
    || fail "events --stats: no CPU time in [$stats]"
expect "events --stats: the memory limit is the domain's 192 MiB" $((192 << 20)) "$(number limit)"
[ "$(number RxBytes)" -gt 0 ] 2>/dev/null && ok "events --stats: the guest's traffic ($(number RxBytes) bytes in)" \
    || fail "events --stats: no traffic counted in [$stats]"
dom=$(domain_of rx-arm)
$R update --memory 128m rx-arm; rc=$?
memory() { xl list "$dom" | awk 'NR == 2 { print $3 }'; }
for try in $(seq 30); do [ "$(memory)" -le 129 ] && break; sleep 1; done
expect "runx update --memory 128m: exit code and xl list's memory" "0 yes" "$rc $([ "$(memory)" -le 129 ] && echo yes)"

in_root ctr task kill -s SIGKILL rx-arm
wait $main; rc=$?
expect "the container killed: exit code" 137 "$rc"
expect "after the container: no address leased" "" "$(ls $LEASES 2>/dev/null | grep -v -e lock -e last_reserved)"
expect "after the container: no vif left in dom0" "" "$(busybox ip -o link | grep -o 'vif[0-9.]*')"
no_leftovers "after the networked arm64 container"
expect "no exec relay left" "" "$(ps | grep '[e]xec-relay')"
exit $failed
