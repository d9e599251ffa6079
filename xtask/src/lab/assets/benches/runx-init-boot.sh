# Guest boot to power-off with runx-init running a program that prints and exits, against the
# same program as a bare /init: same kernel, same memory, same xl.
set -e
. /host/case-lib.sh
for round in 1 2 3; do
    start=$(now_ms)
    xl create -q /host/runx/bench-bare.cfg
    wait_gone bench-bare 120
    record_bench runx-init-boot baseline $(($(now_ms) - start))

    start=$(now_ms)
    xl create -q /host/runx/bench-runx.cfg
    wait_gone bench-runx 120
    record_bench runx-init-boot candidate $(($(now_ms) - start))
    echo "round $round done"
done
