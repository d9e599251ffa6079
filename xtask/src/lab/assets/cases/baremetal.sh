# The lab's baremetal PV kernel: the shutdown reason its command line names reaches `xl list -v`,
# and its command line reaches the console log through xenconsoled, byte for byte.
set -e
. /host/case-lib.sh

# check NAME REASON-CODE STATE EXTRA: boots the kernel with command line EXTRA, preserving it once
# it shuts down, and checks its `xl list -v` reason and state and its console log.
check() {
    name=$1 code=$2 want_state=$3 extra=$4
    cat > /tmp/"$name".cfg <<CFG
name = "$name"
type = "pv"
kernel = "/host/baremetal/xen-pv-hello"
extra = "$extra"
memory = 16
vcpus = 1
on_poweroff = "preserve"
on_reboot = "preserve"
on_crash = "preserve"
on_watchdog = "preserve"
CFG
    xl create -q /tmp/"$name".cfg
    ticks=0
    # Name ID Mem VCPUs State Time(s) UUID Reason-Code Security-Label
    until line=$(xl list -v "$name" | awk 'NR == 2') && [ "$(echo "$line" | awk '{ print $8 }')" != - ]; do
        [ "$ticks" -lt 600 ] || { echo "$name did not shut down within 60 s: $line"; return 1; }
        sleep 0.1
        ticks=$((ticks + 1))
    done
    echo "$line"
    set -- $line
    [ "$5" = "$want_state" ] || { echo "$name: state $5, expected $want_state"; return 1; }
    [ "$8" = "$code" ] || { echo "$name: reason code $8, expected $code"; return 1; }
    log=/var/log/xen/console/guest-$name.log
    printf '%s\n' "$extra" > /tmp/"$name".want
    ticks=0
    until cmp -s /tmp/"$name".want "$log"; do
        [ "$ticks" -lt 100 ] || { echo "$name: console log is not the command line:"; od -c "$log"; return 1; }
        sleep 0.1
        ticks=$((ticks + 1))
    done
    xl destroy "$name"
}

check bm-poweroff 0 ---s-- "hello from the lab shutdown=poweroff"
check bm-reboot 1 ---sr- "shutdown=reboot  two spaces"
check bm-crash 3 ---sc- "shutdown=crash"
check bm-watchdog 4 ---sw- "a shutdown=watchdog b"
check bm-default 0 ---s-- "no reason shutdown=bogus"
