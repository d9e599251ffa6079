# Guest boot to power-off (xl create, the guest prints its line, powers off)
# against the toolstack floor (xl create -p + xl destroy: build the domain, never run it).
set -e
. /host/case-lib.sh
for round in 1 2 3; do
    start=$(now_ms)
    xl create -q -p /host/guest/lab-guest.cfg
    xl destroy lab-guest
    record_bench guest-boot baseline $(($(now_ms) - start))

    start=$(now_ms)
    xl create -q /host/guest/lab-guest.cfg
    wait_gone lab-guest 120
    record_bench guest-boot candidate $(($(now_ms) - start))
    echo "round $round done"
done
