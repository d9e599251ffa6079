# Sourced by case scripts in dom0: helpers shared by tests and benchmarks.

# wait_gone NAME SECONDS: waits until domain NAME has ended; destroys it and fails after SECONDS.
wait_gone() {
    ticks=0
    while xl list "$1" >/dev/null 2>&1; do
        if [ "$ticks" -ge $(($2 * 10)) ]; then
            echo "domain $1 still running after $2 s"
            xl destroy "$1"
            return 1
        fi
        sleep 0.1
        ticks=$((ticks + 1))
    done
}

# wait_key PATH SECONDS: waits until xenstore PATH exists; fails after SECONDS.
wait_key() {
    ticks=0
    until xenstore-exists "$1" 2>/dev/null; do
        if [ "$ticks" -ge $(($2 * 10)) ]; then
            echo "$1 did not appear within $2 s"
            return 1
        fi
        sleep 0.1
        ticks=$((ticks + 1))
    done
}

# now_ms: milliseconds since dom0 booted (10 ms resolution).
now_ms() {
    awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# record_bench CASE ROLE MILLIS: one measurement for the host's benchmark report.
record_bench() {
    printf 'BENCH\t%s\t%s\t%s\n' "$1" "$2" "$3" >> /host/bench
}

# in_root CMD...: runs CMD in the dom0 disk's Debian (containerd, runc, runx live there).
in_root() { chroot /rootfs "$@"; }

# start_containerd: starts containerd from the dom0 disk unless it already answers.
start_containerd() {
    in_root ctr version >/dev/null 2>&1 && return 0
    [ -x /rootfs/usr/bin/containerd ] || { echo "no containerd on the dom0 disk"; return 1; }
    in_root /usr/bin/containerd > /tmp/containerd.log 2>&1 &
    waited=0
    until in_root ctr version > /tmp/ctr-version 2>&1; do
        if [ "$waited" -ge 60 ]; then
            echo "containerd did not answer within 60 s:"; cat /tmp/ctr-version /tmp/containerd.log; return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}
