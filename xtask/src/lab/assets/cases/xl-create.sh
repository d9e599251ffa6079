# dom0 reaches xl, and `xl create` starts a guest whose console output we read back.
set -e
case $(uname -m) in
    x86_64) type=pv ;;
    aarch64) type=pvh ;;
esac
xl info | grep -E '^(xen_version|nr_cpus|free_memory)'
cat > /tmp/lab-guest.cfg <<CFG
name = "lab-guest"
type = "$type"
kernel = "/host/guest/vmlinuz"
ramdisk = "/host/guest/guest.cpio.gz"
extra = "console=hvc0 quiet"
memory = 160
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
CFG
xl create /tmp/lab-guest.cfg
xl list
waited=0
while xl list lab-guest >/dev/null 2>&1; do
    if [ "$waited" -ge 120 ]; then
        echo "guest still running after ${waited} s"
        xl destroy lab-guest
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
echo "guest powered off after about ${waited} s; its console said:"
cat /var/log/xen/console/guest-lab-guest.log
grep -q "@@guest: hello from a lab guest" /var/log/xen/console/guest-lab-guest.log
