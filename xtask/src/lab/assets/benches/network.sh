# The engine's network, runx against runc on the same CNI bridge (setup_cni), in one boot:
#   net-start:      `ctr run --cni` with runx to its first output line, against `ctr run` with runx
#                   and no network (the network's share of a start);
#   net-throughput: milliseconds to send 64 MiB from dom0 to a container's `nc -l` (which throws
#                   them away), runc's container against runx's;
#   net-get10:      ten HTTP GETs in a row from dom0 to busybox httpd in the container, runc
#                   against runx (20 samples of ten each side); each GET's p99 (of the 200) is
#                   written as a NOTE line.
set -e
. /host/case-lib.sh
start_containerd
install_runx
setup_cni
set +e

first_line_ms() {
    start=$(now_ms)
    "$@" 2>/dev/null | { read -r line; echo $(($(now_ms) - start)); cat >/dev/null; }
}
for round in 1 2 3 4 5; do
    record_bench net-start baseline "$(first_line_ms in_root ctr run --rm $RUNX $IMG "ns-b-$round" echo first)"
    record_bench net-start candidate "$(first_line_ms in_root ctr run --rm --cni $RUNX $IMG "ns-c-$round" echo first)"
done

# serve NAME CTR-ARGS...: a container with httpd on 80 and a sink on 9000; prints its address.
serve() {
    name=$1; shift
    in_root ctr run -d --cni "$@" $IMG "$name" sh -c 'mkdir -p /www; echo hello > /www/index.html;
        busybox httpd -p 80 -h /www; while :; do busybox nc -l -p 9000 > /dev/null; done' >/dev/null
    for try in $(seq 120); do
        ip=$(grep -l "default-$name" /rootfs/var/lib/cni/networks/runx-lab/10.* 2>/dev/null | head -1)
        [ -n "$ip" ] && printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 2 "${ip##*/}" 80 2>/dev/null | grep -q hello \
            && { echo "${ip##*/}"; return; }
        sleep 1
    done
}
runc_ip=$(serve nb-runc)
runx_ip=$(serve nb-runx $RUNX)
echo "runc container at [$runc_ip], runx container at [$runx_ip]"
head -c 67108864 /dev/urandom > /tmp/64m
send_ms() {
    start=$(now_ms)
    busybox nc -w 30 "$1" 9000 < /tmp/64m
    echo $(($(now_ms) - start))
    sleep 1
}
for round in 1 2 3 4 5; do
    record_bench net-throughput baseline "$(send_ms "$runc_ip")"
    record_bench net-throughput candidate "$(send_ms "$runx_ip")"
done
# get_us IP: one GET's microseconds (the disk's date: busybox's has no %N).
get_us() {
    start=$(in_root /usr/bin/date +%s%N)
    printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 5 "$1" 80 >/dev/null
    echo $((($(in_root /usr/bin/date +%s%N) - start) / 1000))
}
: > /tmp/get-runc; : > /tmp/get-runx
for i in $(seq 200); do
    get_us "$runc_ip" >> /tmp/get-runc
    get_us "$runx_ip" >> /tmp/get-runx
done
for side in runc:baseline runx:candidate; do
    awk '{ s += $1 } NR % 10 == 0 { printf "BENCH\tnet-get10\t%s\t%d\n", role, s / 1000; s = 0 }' \
        role="${side#*:}" "/tmp/get-${side%:*}" >> /host/bench
    p99=$(sort -n "/tmp/get-${side%:*}" | awk '{ v[NR] = $1 } END { print v[int(NR * 0.99)] }')
    printf 'NOTE\tnet-get p99 %s: %s us\n' "${side%:*}" "$p99" >> /host/bench
done
for c in nb-runc nb-runx; do
    in_root ctr task kill -s SIGKILL $c
    sleep 2
    in_root ctr task delete $c >/dev/null 2>&1
    in_root ctr container rm $c
done
