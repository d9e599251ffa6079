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

# domain_of ID: the Xen domain of runx container ID (runx names it ROOT-TAG-ID, docs/runtime.md).
domain_of() {
    xl list | awk -v end="-$1" 'NR > 1 && length($1) > length(end) && substr($1, length($1) - length(end) + 1) == end { print $1 }'
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

# now_ms [FILE]: milliseconds since dom0 booted (10 ms resolution), or those of an uptime
# FILE saved earlier (a copy of /proc/uptime).
now_ms() {
    awk '{ printf "%d\n", $1 * 1000 }' "${1:-/proc/uptime}"
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

# bundle DIR PROGRAM ARGS: an OCI bundle in DIR (a path under /rootfs) whose root holds
# PROGRAM as /bin/NAME and whose process runs ARGS (a JSON array) as root in /.
bundle() {
    mkdir -p "$1/rootfs/bin"
    cp "$2" "$1/rootfs/bin/"
    printf '{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":%s,"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}}\n' \
        "$3" > "$1/config.json"
}

# setup_cni: the CNI configuration `ctr run --cni` reads: a bridge (cni0, 10.88.0.1 and fd88::1 in
# dom0) with host-local addresses. Debian installs the plugins in /usr/lib/cni; ctr looks in
# /opt/cni/bin.
setup_cni() {
    mkdir -p /rootfs/opt/cni /rootfs/etc/cni/net.d
    ln -sfn /usr/lib/cni /rootfs/opt/cni/bin
    cat > /rootfs/etc/cni/net.d/10-runx-lab.conflist <<'EOF'
{"cniVersion": "1.0.0", "name": "runx-lab", "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": true,
  "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd88::/64"}]],
  "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}]}
EOF
}

# install_runx: puts the lab's runx, guest kernel and base initramfs where meta-runx installs
# them on the dom0 disk, and imports the busybox image.
install_runx() {
    in_root install -D -m 0755 /host/runtime/runx /usr/sbin/runx
    in_root install -D -m 0644 /host/runtime/kernel /usr/lib/runx/kernel
    in_root install -D -m 0644 /host/runtime/initramfs.cpio /usr/lib/runx/initramfs.cpio
    in_root ctr images import --all-platforms /host/images/lab-busybox.tar >/dev/null
}

# Checks of the runtime cases: each prints ok/FAIL; a case exits with $failed.
IMG=docker.io/runx-lab/busybox:latest
RUNX="--runtime io.containerd.runc.v2 --runc-binary /usr/sbin/runx"
STATE=/rootfs/run/containerd/runc/default
failed=0
fail() { echo "FAIL: $*"; failed=1; }
ok() { echo "ok: $*"; }
# expect WHAT WANTED GOT
expect() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: wanted [$2], got [$3]"; fi; }
# contains WHAT NEEDLE HAYSTACK
contains() { case "$3" in *"$2"*) ok "$1" ;; *) fail "$1: [$2] not in [$3]" ;; esac; }
# no_leftovers WHAT: no guest domain and no runx state remain.
no_leftovers() {
    doms=$(xl list | awk 'NR > 1 && $1 != "Domain-0" { print $1 }')
    expect "$1: no domain left" "" "$doms"
    left=$(ls "$STATE" 2>/dev/null)
    expect "$1: no runx state left" "" "$left"
}
# run_bg NAME OUT CTR-ARGS...: `ctr run --rm` in the background, output to OUT; sets $bg.
run_bg() { name=$1 out=$2; shift 2; in_root ctr run --rm $RUNX "$@" > "$out" 2>&1 & bg=$!; }
# wait_for FILE TEXT SECONDS
wait_for() {
    deadline=$(($(now_ms) + $3 * 1000))
    until grep -q "$2" "$1" 2>/dev/null; do
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

