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

# arm64 only (the host puts these configs in the share for QEMU virt): an xl `iomem` grant gives a
# guest a device page. The PL031 RTC's page (physical 0x09010000) is granted at the same guest
# address; the guest reads the PL031's read-only PrimeCell PeriphID0 (offset 0xfe0): 0x31.
# The control, the same guest without the grant, must not read it (Xen 4.17 injects a data abort
# whose fault status Linux takes for an address size fault: it kills devmem, exit status 137).
[ -f /host/guest/lab-iomem.cfg ] || exit 0
granted=/var/log/xen/console/guest-lab-iomem.log
control=/var/log/xen/console/guest-lab-noiomem.log
cat /host/guest/lab-iomem.cfg
xl create /host/guest/lab-iomem.cfg
wait_gone lab-iomem 60
echo "the guest with the grant powered off; its console said:"
cat "$granted"
xl dmesg | grep "memory_map:add: d[0-9]* gfn=9010 mfn=9010 nr=1" || echo "(no memory_map line from Xen)"
xl create /host/guest/lab-noiomem.cfg
wait_gone lab-noiomem 30 || echo "the guest without the grant did not power off"
echo "the guest without the grant ended; its console said:"
cat "$control"
echo "granted: $(grep '@@guest: devmem' "$granted")"
echo "control: $(grep '@@guest: devmem' "$control")"
grep -q "@@guest: devmem 0x09010fe0 = 0x00000031" "$granted"
if grep -q "@@guest: devmem 0x09010fe0 = " "$control"; then
    echo "the guest without the grant read the page"
    exit 1
fi
grep -q "@@guest: devmem 0x09010fe0 failed" "$control"
