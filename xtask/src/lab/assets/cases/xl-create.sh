# dom0 reaches xl, and `xl create` starts a guest whose console output we read back.
set -e
. /host/case-lib.sh
xl info | grep -E '^(xen_version|nr_cpus|free_memory)'
# The config was generated on the host by runx_tools::xl (the model `runx-tools xl-config` renders).
cat /host/guest/lab-guest.cfg
xl create /host/guest/lab-guest.cfg
xl list
wait_gone lab-guest 120
echo "the guest powered off; its console said:"
cat /var/log/xen/console/guest-lab-guest.log
grep -q "@@guest: hello from a lab guest" /var/log/xen/console/guest-lab-guest.log
