# Sourced by the payload in dom0: runs each case with a time limit and
# records one RESULT line per case in /host/results.
mkdir -p /host/logs
: > /host/results

# run_case NAME SECONDS: runs /host/cases/NAME.sh, keeps its output in /host/logs/NAME.log.
run_case() {
    name=$1
    limit=$2
    echo "@@lab: case $name"
    start=$(date +%s)
    if timeout "$limit" sh /host/cases/"$name".sh > /host/logs/"$name".log 2>&1; then
        status=pass
    else
        status=fail
    fi
    end=$(date +%s)
    printf 'RESULT\t%s\t%s\t%s\n' "$name" "$status" "$((end - start))" >> /host/results
    sed "s/^/  $name | /" /host/logs/"$name".log
    echo "@@lab: $status $name ($((end - start)) s)"
    sync
}
