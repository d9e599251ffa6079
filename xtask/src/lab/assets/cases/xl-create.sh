# dom0 reaches xl, and `xl create` starts a guest whose console output we read back.
set -e
. /host/case-lib.sh
xl info | grep -E '^(xen_version|nr_cpus|free_memory)'
write_guest_cfg /tmp/lab-guest.cfg lab-guest
xl create /tmp/lab-guest.cfg
xl list
wait_gone lab-guest 120
echo "the guest powered off; its console said:"
cat /var/log/xen/console/guest-lab-guest.log
grep -q "@@guest: hello from a lab guest" /var/log/xen/console/guest-lab-guest.log
