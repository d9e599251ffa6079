# The engine's network past the plain case: CNI's portmap plugin in front of a guest, ten
# networked guests at once, DNS files, and namespaces that are wrong or unusual (missing, not a
# namespace, empty, two interfaces, an MTU a vif cannot carry). Namespaces made by hand are
# joined with `ctr run --with-ns network:PATH`, as CRI and podman hand runx a path.
. /host/case-lib.sh
set -e
start_containerd
install_runx
setup_cni
set +e
CNI="--cni $RUNX"
# The disk's iproute2 and iptables by path: busybox's chroot runs its own applet of a bare name.
IP=/usr/bin/ip
TC=/usr/sbin/tc
IPTABLES=/usr/sbin/iptables
LEASES=/rootfs/var/lib/cni/networks/runx-lab
GET='printf "GET / HTTP/1.0\r\n\r\n" | busybox nc -w 20'
BRIDGE='"cniVersion":"1.0.0","name":"runx-lab","type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}'
PORTS='"runtimeConfig":{"portMappings":[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]}'

# cni NETNS COMMAND PLUGIN CONFIG: runs one CNI plugin by hand, as the engine does.
cni() {
    echo "{$4}" | in_root env CNI_COMMAND="$2" CNI_CONTAINERID="$1" CNI_NETNS="/var/run/netns/$1" CNI_IFNAME=eth0 \
        CNI_PATH=/usr/lib/cni "/usr/lib/cni/$3"
}

# veth_ns NETNS IFNAME ADDRESS/PREFIX [MTU]: a namespace interface with a peer left in dom0.
veth_ns() {
    in_root $IP link add "$2-$1" type veth peer name "$2" netns "$1" || return 1
    in_root $IP -n "$1" addr add "$3" dev "$2"
    in_root $IP -n "$1" link set "$2" ${4:+mtu $4} up
    in_root $IP link set "$2-$1" ${4:+mtu $4} up
}

# portmap: bridge + host-local + portmap by hand on a namespace; dom0's port 8081 reaches the
# guest's httpd on port 80.
in_root $IP netns add rx-pm
result=$(cni rx-pm ADD bridge "$BRIDGE")
echo "$result" | grep -q '"ips"' && ok "CNI bridge + host-local set up the namespace by hand" \
    || fail "CNI bridge ADD: $result"
pm=$(cni rx-pm ADD portmap "\"cniVersion\":\"1.0.0\",\"name\":\"runx-lab\",\"type\":\"portmap\",
    \"capabilities\":{\"portMappings\":true},$PORTS,\"prevResult\":$result" 2>&1); rc=$?
expect "CNI portmap ADD: exit code ($pm)" 0 "$rc"
run_bg rx-pm /tmp/pm.out --with-ns network:/var/run/netns/rx-pm $IMG rx-pm sh -c \
    'mkdir -p /www; echo "hello through portmap" > /www/index.html; echo ready; exec busybox httpd -f -p 80 -h /www'
pm_bg=$bg
if wait_for /tmp/pm.out ready 180; then
    for try in 1 2 3 4 5; do page=$(sh -c "$GET 10.88.0.1 8081" 2>&1 | tail -1); [ -n "$page" ] && break; sleep 2; done
    expect "dom0's port 8081 forwards to the guest's port 80 (portmap)" "hello through portmap" "$page"
    in_root ctr task kill -s SIGKILL rx-pm
    wait $pm_bg
else
    fail "the portmap container never printed ready: $(cat /tmp/pm.out)"; kill $pm_bg
fi
cni rx-pm DEL portmap "\"cniVersion\":\"1.0.0\",\"name\":\"runx-lab\",\"type\":\"portmap\",
    \"capabilities\":{\"portMappings\":true},$PORTS,\"prevResult\":$result" >/dev/null
cni rx-pm DEL bridge "$BRIDGE" >/dev/null
expect "after portmap: no DNAT rule left" "" "$(in_root $IPTABLES -t nat -S 2>/dev/null | grep -e 8081 -e 'CNI-DN')"
in_root $IP netns del rx-pm

# Ten networked guests at once: each gets its own lease and answers dom0.
pids=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    in_root ctr run --rm $CNI --memory-limit 33554432 $IMG "rx-net-$i" sh -c \
        'busybox ip -o -4 addr show dev eth0; echo ready; sleep 600' > "/tmp/net.$i" 2>&1 &
    pids="$pids $!"
done
addresses=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    if wait_for "/tmp/net.$i" ready 300; then
        ip=$(grep -o 'inet 10\.88\.[0-9.]*' "/tmp/net.$i" | cut -d' ' -f2)
        addresses="$addresses $ip"
        busybox ping -c 1 -W 10 "$ip" >/dev/null 2>&1 && ok "ten at once: guest $i answers dom0 at $ip" \
            || fail "ten at once: guest $i at [$ip] does not answer: $(cat /tmp/net.$i)"
    else
        fail "ten at once: guest $i never printed ready: $(cat /tmp/net.$i)"
    fi
done
expect "ten at once: ten different addresses" 10 "$(echo $addresses | tr ' ' '\n' | sort -u | grep -c .)"
for i in 0 1 2 3 4 5 6 7 8 9; do in_root ctr task kill -s SIGKILL "rx-net-$i" >/dev/null 2>&1; done
for pid in $pids; do wait "$pid"; done
expect "after ten at once: no address leased" "" "$(ls $LEASES 2>/dev/null | grep -v -e lock -e last_reserved)"
expect "after ten at once: no vif left in dom0" "" "$(ip -o link | grep -o 'vif[0-9.]*')"
expect "after ten at once: no ingress qdisc left in dom0" "" "$(in_root $TC qdisc show | grep ingress)"
no_leftovers "after ten at once"

# DNS files as CRI bind-mounts them, into a namespace without any interface: loopback only.
mkdir -p /rootfs/tmp/dns
echo "nameserver 10.88.0.53" > /rootfs/tmp/dns/resolv.conf
printf '127.0.0.1 localhost\n10.88.0.7 rx-dns\n' > /rootfs/tmp/dns/hosts
echo rx-dns > /rootfs/tmp/dns/hostname
in_root $IP netns add rx-empty
out=$(in_root ctr run --rm $RUNX --with-ns network:/var/run/netns/rx-empty \
    --mount type=bind,src=/tmp/dns/resolv.conf,dst=/etc/resolv.conf,options=rbind:ro \
    --mount type=bind,src=/tmp/dns/hosts,dst=/etc/hosts,options=rbind:ro \
    --mount type=bind,src=/tmp/dns/hostname,dst=/etc/hostname,options=rbind:ro \
    $IMG rx-dns sh -c 'ls /sys/class/net; cat /etc/resolv.conf /etc/hosts /etc/hostname' 2>&1)
expect "a namespace with no interface: loopback only; DNS files as mounted" \
    "lo nameserver 10.88.0.53 127.0.0.1 localhost 10.88.0.7 rx-dns rx-dns" "$(echo $out)"
in_root $IP netns del rx-empty

# Two interfaces: the guest gets the one with the default route (network.md).
in_root $IP netns add rx-two
veth_ns rx-two eth0 10.99.0.2/24 && veth_ns rx-two eth1 10.98.0.2/24
in_root $IP -n rx-two route add default via 10.99.0.1
out=$(in_root ctr run --rm $RUNX --with-ns network:/var/run/netns/rx-two $IMG rx-two \
    sh -c 'busybox ip -o -4 addr show | grep -v " lo "' 2>&1)
case "$out" in
    *10.98.0.2*) fail "two interfaces: the guest also got eth1's address: $out" ;;
    *"inet 10.99.0.2/24"*) ok "two interfaces: the guest has the default route's interface, and only it" ;;
    *) fail "two interfaces: the guest lacks the default route's address 10.99.0.2/24: $out" ;;
esac
expect "two interfaces: the engine's interfaces are left as they were" "2" \
    "$(in_root $IP -n rx-two -o link show | grep -c -e 'eth0' -e 'eth1')"
in_root $IP netns del rx-two

# Bad namespaces: a clear error naming the thing, and nothing left.
out=$(in_root ctr run --rm $RUNX --with-ns network:/var/run/netns/rx-missing $IMG rx-bad1 true 2>&1); rc=$?
[ "$rc" != 0 ] && contains "a netns path that does not exist: the error names it" "/var/run/netns/rx-missing" "$out" \
    || fail "a missing netns was accepted: $out"
touch /rootfs/tmp/not-a-netns
out=$(in_root ctr run --rm $RUNX --with-ns network:/tmp/not-a-netns $IMG rx-bad2 true 2>&1); rc=$?
[ "$rc" != 0 ] && contains "a path that is not a netns: the error says so" "not a network namespace" "$out" \
    || fail "a file was taken for a netns: $out"
in_root $IP netns add rx-mtu
veth_ns rx-mtu eth0 10.97.0.2/24 65520 && in_root $IP -n rx-mtu route add default via 10.97.0.1
out=$(in_root ctr run --rm $RUNX --with-ns network:/var/run/netns/rx-mtu $IMG rx-bad3 true 2>&1); rc=$?
[ "$rc" != 0 ] && contains "an MTU a vif cannot carry: the error names it and the fix" "MTU 65520" "$out" \
    || fail "MTU 65520 was accepted: $out"
expect "after the bad MTU: the namespace has no runx qdisc" "" "$(in_root $TC -n rx-mtu qdisc show dev eth0 | grep ingress)"
in_root $IP netns del rx-mtu
for c in rx-bad1 rx-bad2 rx-bad3; do in_root ctr container rm "$c" >/dev/null 2>&1; done
expect "after the bad namespaces: no vif left in dom0" "" "$(ip -o link | grep -o 'vif[0-9.]*')"
no_leftovers "after the bad namespaces"
exit $failed
