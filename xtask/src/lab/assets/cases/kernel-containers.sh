# Containers that carry their own kernel, and the admin's profiles, through containerd 1.6 and
# runx. The images are made by `runx-tools image`: a baremetal Xen PV kernel that prints its
# command line and shuts down for the reason its `shutdown=` word names, and a Linux kernel
# with a ramdisk whose /init prints a greeting from its command line.
. /host/case-lib.sh
set -e
start_containerd
install_runx
for image in baremetal linux-kernel; do
    in_root ctr images import /host/images/lab-$image.tar >/dev/null
done
set +e
BAREMETAL=docker.io/runx-lab/baremetal:latest
LINUX=docker.io/runx-lab/linux-kernel:latest

out=$(in_root ctr run --rm $RUNX $BAREMETAL bm-hello hello from a baremetal xen guest 2>&1); rc=$?
expect "baremetal: its console line on ctr's stdout" "hello from a baremetal xen guest" "$out"
expect "baremetal: powering off is exit status 0" 0 "$rc"
out=$(in_root ctr run --rm $RUNX $BAREMETAL bm-default 2>&1); rc=$?
expect "baremetal: the image's Cmd is the default command line" "$(cat /host/images/lab-baremetal.cmdline)" "$out"
for pair in reboot:1 watchdog:2 crash:255; do
    reason=${pair%:*} status=${pair#*:}
    out=$(in_root ctr run --rm $RUNX $BAREMETAL "bm-$reason" going down shutdown=$reason 2>&1); rc=$?
    expect "baremetal shutdown=$reason: exit status" "$status" "$rc"
    contains "baremetal shutdown=$reason: its line" "going down shutdown=$reason" "$out"
done
no_leftovers "after the baremetal containers"

out=$(in_root ctr run --rm $RUNX $LINUX lk-hello console=hvc0 quiet greeting=hello-from-the-image-kernel 2>&1); rc=$?
contains "a Linux kernel from the image: its init's line" "linux from the image: hello-from-the-image-kernel" "$out"
expect "a Linux kernel from the image: exit status" 0 "$rc"
run_bg lk-term /tmp/lk-term.out $LINUX lk-term console=hvc0 quiet greeting=waiting wait=1
if wait_for /tmp/lk-term.out "linux from the image: waiting" 120; then
    in_root ctr task kill -s SIGTERM lk-term
    wait $bg; rc=$?
    expect "SIGTERM powers a container's Linux kernel off: exit status" 0 "$rc"
else
    fail "the waiting Linux kernel never printed its line: $(cat /tmp/lk-term.out)"; kill $bg
fi
no_leftovers "after the Linux kernel container"

mkdir -p /rootfs/etc/runx/profiles
cat > /rootfs/etc/runx/profiles/pinned.cfg <<'CFG'
# the lab's real-time placement: every vcpu on pcpu 1, 40 MiB
cpus = "1"
memory = 40
CFG
echo 'allowed_profiles = ["pinned"]' > /rootfs/etc/runx/config.toml
run_bg rx-pinned /tmp/pinned.out --annotation io.runx.profile=pinned $IMG rx-pinned sh -c 'echo ready; sleep 60'
if wait_for /tmp/pinned.out ready 90; then
    expect "profile: memory 40 MiB in xl list" 40 "$(xl list "$(domain_of rx-pinned)" | awk 'NR == 2 { print $3 }')"
    expect "profile: vcpu 0 pinned to pcpu 1 (xl vcpu-list)" "1 / all" \
        "$(xl vcpu-list "$(domain_of rx-pinned)" | awk 'NR == 2 { print $7, $8, $9 }')"
    contains "profile: the pinning in xl list -l" '"vcpu_hard_affinity"' "$(in_root xl list -l "$(domain_of rx-pinned)")"
    in_root ctr task kill -s SIGKILL rx-pinned
else
    fail "pinned container never printed ready: $(cat /tmp/pinned.out)"
fi
wait $bg
out=$(in_root ctr run --rm $RUNX --annotation io.runx.profile=gpu $IMG rx-gpu echo no 2>&1); rc=$?
[ "$rc" != 0 ] && ok "an unlisted profile fails" || fail "an unlisted profile ran"
contains "an unlisted profile: ctr names the cause and the fix" 'is not allowed on this host: the admin lists the profiles containers may use in allowed_profiles' "$out"
in_root ctr container rm rx-gpu >/dev/null 2>&1
rm -rf /rootfs/etc/runx
no_leftovers "after the profiles"
exit $failed
