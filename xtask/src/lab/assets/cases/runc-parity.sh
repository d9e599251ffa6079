# The process sees what runc's would: one bundle (runc's default mounts in runc's order, a tmpfs
# with a propagation option, a bind mount, capabilities, rlimits, no_new_privileges, a user
# other than root) is run by the dom0's runc and by runx, and its report of itself (capability
# sets, signal dispositions, limits, mount points in order, /dev links, HOME) must be the same.
. /host/case-lib.sh
set -e
start_containerd
install_runx
set +e

B=/rootfs/tmp/parity
rm -rf "$B"
bundle "$B" /bin/busybox '["/bin/sh","/report"]'
for applet in sh cat grep awk ls; do ln -s busybox "$B/rootfs/bin/$applet"; done
echo "from the host" > /rootfs/tmp/parity-share
cat > "$B/rootfs/report" <<'EOF'
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|SigIgn|SigBlk|NoNewPrivs):' /proc/self/status
grep -E '^Max (open files|core file size)' /proc/self/limits
awk '{ print "mount", $5 }' /proc/self/mountinfo
ls -l /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx | awk '{ print $(NF-2), $(NF-1), $NF }'
echo "HOME=$HOME uid=$(cat /proc/self/status | awk '$1 == "Uid:" { print $2 }') share=$(cat /etc/share)"
EOF
caps='"CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_AUDIT_WRITE"'
cat > "$B/config.json" <<EOF
{"ociVersion":"1.0.2","root":{"path":"rootfs"},"hostname":"parity",
 "process":{"args":["/bin/sh","/report"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":1000,"gid":1000},
  "noNewPrivileges":true,
  "capabilities":{"bounding":[$caps],"effective":["CAP_KILL","CAP_NET_BIND_SERVICE"],
   "permitted":["CAP_KILL","CAP_NET_BIND_SERVICE"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]},
  "rlimits":[{"type":"RLIMIT_NOFILE","soft":3000,"hard":4000},{"type":"RLIMIT_CORE","soft":0,"hard":1048576}]},
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
  {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
  {"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},
  {"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},
  {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
  {"destination":"/scratch","type":"tmpfs","source":"tmpfs","options":["nosuid","shared"]},
  {"destination":"/etc/share","type":"bind","source":"/tmp/parity-share","options":["rbind","ro"]}],
 "linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}]}}
EOF

in_root runc run --bundle /tmp/parity parity > /tmp/parity.runc 2>&1
echo "runc (exit $?):"; cat /tmp/parity.runc
in_root runx create --bundle /tmp/parity parity > /tmp/parity.runx 2>&1 && in_root runx start parity
wait_gone "$(domain_of parity)" 120
in_root runx delete --force parity
echo "runx:"; cat /tmp/parity.runx

contains "runc's report has the config's limits" "Max open files            3000                 4000" "$(cat /tmp/parity.runc)"
for what in "CapInh:" "CapPrm:" "CapEff:" "CapBnd:" "CapAmb:" "NoNewPrivs:" "SigIgn:" "SigBlk:" "Max open files" \
    "Max core file size" "HOME=" "fd ->" "stdin ->" "stdout ->" "stderr ->" "ptmx ->"; do
    expect "as under runc: $what" "$(grep -F "$what" /tmp/parity.runc)" "$(grep -F "$what" /tmp/parity.runx)"
done
expect "as under runc: the mount points, in config.json's order" \
    "$(grep '^mount ' /tmp/parity.runc | tr '\n' ' ')" "$(grep '^mount ' /tmp/parity.runx | tr '\n' ' ')"
expect "after runx delete: no domain left" "" "$(domain_of parity)"
in_root runx state parity >/dev/null 2>&1 && fail "after runx delete: runx still knows parity" || ok "after runx delete: no state left"
exit $failed
