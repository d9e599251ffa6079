# A real Debian image through containerd 1.6 and runx at runx's default settings: a debootstrap
# --variant=minbase bookworm (about 115 MiB of files) whose root the guest carries in RAM. runx
# grows the default memory by the root's footprint (docs/runtime.md, "A root in the guest's RAM");
# a memory chosen too small is refused before the guest boots, with the numbers.
. /host/case-lib.sh
set -e
start_containerd
install_runx
start=$(now_ms)
in_root ctr images import /host/images/lab-debian.tar >/dev/null
ok "ctr images import of the Debian image: $(($(now_ms) - start)) ms"
set +e
DEBIAN=docker.io/runx-lab/debian:bookworm

# consoles: what the Debian guests printed on their consoles (xenconsoled's logs), for a failure.
consoles() {
    for log in /var/log/xen/console/guest-*rx-debian*; do
        [ -f "$log" ] && { echo "--- $log"; tail -n 40 "$log"; }
    done
}

# first_line OUT: the ms from $start until OUT has a line, while $bg runs (at most 600 s).
first_line() {
    until grep -q . "$1" 2>/dev/null; do
        kill -0 "$bg" 2>/dev/null || { grep -q . "$1" && break; return 1; }
        [ $(($(now_ms) - start)) -ge 600000 ] && return 1
        sleep 0.1
    done
    echo $(($(now_ms) - start))
}

# No --memory-limit, no annotation: runx's default memory grown by the root's footprint.
start=$(now_ms)
run_bg rx-debian /tmp/debian.out $DEBIAN rx-debian sh -c 'cat /etc/debian_version; echo files: $(ls /usr/bin | wc -l)'
first=$(first_line /tmp/debian.out)
wait $bg; rc=$?
out=$(cat /tmp/debian.out)
expect "Debian at the default memory: exit code" 0 "$rc"
case "$out" in
    12*)
        ok "/etc/debian_version and /usr/bin: $(echo $out)"
        ok "first start (runx packs the root): $first ms from ctr run to the first line"
        ;;
    *) fail "no bookworm version line: [$out]"; consoles ;;
esac
contains "ls and wc from the image count /usr/bin" "files: " "$out"

# The same image again: runx's archive cache has its packed root.
start=$(now_ms)
run_bg rx-debian-2 /tmp/debian-2.out $DEBIAN rx-debian-2 \
    bash -c 'echo bash ok; apt-get --version | head -n 1; echo ready; sleep 300'
if second=$(first_line /tmp/debian-2.out); then
    ok "second start (the packed root cached): $second ms from ctr run to the first line"
    wait_for /tmp/debian-2.out ready 60
    out=$(cat /tmp/debian-2.out)
    contains "bash from the image" "bash ok" "$out"
    contains "apt-get from the image" "apt 2." "$out"
    domain=$(domain_of rx-debian-2)
    memory=$(xl list "$domain" | awk 'NR == 2 { print $3 }')
    ok "the memory runx chose for the Debian guest: $memory MiB (xl list)"
    [ "$memory" -gt 64 ] && ok "more than the default 64 MiB" || fail "the default memory did not grow: $memory MiB"
    contains "the guest's root is a ramfs" "rootfstype=ramfs" "$(in_root xl list -l "$domain")"
    in_root ctr task kill -s SIGKILL rx-debian-2
else
    fail "the second Debian container printed nothing: $(cat /tmp/debian-2.out)"; consoles; kill $bg
fi
wait $bg

# A memory the user chose must hold the root: 64 MiB is refused before the guest boots.
out=$(in_root ctr run --rm $RUNX --memory-limit 67108864 $DEBIAN rx-debian-small true 2>&1); rc=$?
[ "$rc" != 0 ] && ok "Debian in a chosen 64 MiB is refused" || fail "Debian ran in a chosen 64 MiB"
contains "the refusal: runx's message" "cannot hold its root in RAM" "$out"
echo "$out" | grep -o "the guest's [0-9]* MiB cannot hold.*MiB:"
in_root ctr container rm rx-debian-small >/dev/null 2>&1
no_leftovers "after the Debian containers"
exit $failed
