#!/usr/bin/env bash
# Benchmark (not a test): fio's libaio engine on the system libaio and on ours.
#
#   bench/libaio.sh                 # 5 rounds of 5 s per case and library
#   RUNS=7 RUNTIME=10 bench/libaio.sh
#
# Two cases, 4 KiB random reads:
#   direct-qd32  O_DIRECT on a file at queue depth 32 (the device-bound case)
#   zero-qd1     /dev/zero at queue depth 1, no O_DIRECT (the CPU-bound case: every request
#                completes inside io_submit, so the library's own cost shows)
# Each round runs both libraries back to back, in alternating order, so drift on a shared
# machine hits both alike. Prints every sample, the medians of IOPS and ours/system ratios.
#
# Environment: RUNS (rounds, default 5), RUNTIME (seconds per run, default 5), BENCH_DIR (where
# the test file goes, default target/bench-libaio; must support O_DIRECT), SIZE (test file,
# default 1G), NO_BUILD=1 (use target/dist as it is), SYSTEM_LIB_DIR (directory whose
# libaio.so.1 is "system"; default: whatever the loader finds without LD_LIBRARY_PATH).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-5}
RUNTIME=${RUNTIME:-5}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-libaio}
SIZE=${SIZE:-1G}
ours_dir=$root/target/dist/lib

need_fio

build_dist "$root" libaio.so.1

# Which libaio.so.1 fio loads in each configuration, as ldd sees it.
resolve() { ldd "$(command -v fio)" | awk '$1 == "libaio.so.1" { print $3 }'; }
if [ -n "${SYSTEM_LIB_DIR:-}" ]; then
    system_lib=$(LD_LIBRARY_PATH=$SYSTEM_LIB_DIR resolve)
else
    system_lib=$(env -u LD_LIBRARY_PATH bash -c "$(declare -f resolve); resolve")
fi
ours_lib=$(LD_LIBRARY_PATH=$ours_dir resolve)
[ "$(readlink -f "$ours_lib")" = "$(readlink -f "$ours_dir/libaio.so.1")" ] \
    || { echo "fio does not load ours with LD_LIBRARY_PATH=$ours_dir (got $ours_lib)" >&2; exit 1; }
[ "$(readlink -f "$system_lib")" != "$(readlink -f "$ours_lib")" ] \
    || { echo "the system libaio is ours ($system_lib): nothing to compare" >&2; exit 1; }

mkdir -p "$BENCH_DIR"
file=$BENCH_DIR/fio-randread.dat
want_bytes=$(numfmt --from=iec "$SIZE")
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$want_bytes" ]; then
    echo "laying out $file ($SIZE)"
    fio --name=layout --filename="$file" --size="$SIZE" --rw=write --bs=1M --direct=1 \
        --ioengine=psync --output=/dev/null
fi

# run_one LIB CASE: prints the read IOPS of one fio run.
run_one() {
    local lib=$1 case=$2 args
    case $case in
        direct-qd32) args=(--filename="$file" --direct=1 --iodepth=32 --size="$SIZE") ;;
        zero-qd1) args=(--filename=/dev/zero --direct=0 --iodepth=1 --size=1G) ;;
    esac
    local env=(env -u LD_LIBRARY_PATH)
    if [ "$lib" = ours ]; then
        env=(env LD_LIBRARY_PATH="$ours_dir")
    elif [ -n "${SYSTEM_LIB_DIR:-}" ]; then
        env=(env LD_LIBRARY_PATH="$SYSTEM_LIB_DIR")
    fi
    fio_read_iops "$lib $case" "${env[@]}" fio --name="$case" --ioengine=libaio --rw=randread \
        --bs=4k --time_based --runtime="$RUNTIME" --ramp_time=1 "${args[@]}"
}


echo "fio $(fio --version | sed 's/^fio-//'), 4 KiB random reads, $RUNS rounds x ${RUNTIME} s"
echo "system: $system_lib"
echo "ours:   $ours_lib"
declare -A samples
for case in direct-qd32 zero-qd1; do
    samples[$case,system]=""
    samples[$case,ours]=""
    for ((round = 1; round <= RUNS; round++)); do
        if ((round % 2)); then order=(system ours); else order=(ours system); fi
        for lib in "${order[@]}"; do
            iops=$(run_one "$lib" "$case")
            samples[$case,$lib]+="$iops "
            printf '  %-12s round %d %-6s %10s IOPS\n' "$case" "$round" "$lib" "$iops"
        done
    done
done

echo
printf '%-12s %14s %14s %8s\n' case "system IOPS" "ours IOPS" ratio
for case in direct-qd32 zero-qd1; do
    s=$(echo "${samples[$case,system]}" | median)
    o=$(echo "${samples[$case,ours]}" | median)
    ratio=$(awk -v o="$o" -v s="$s" 'BEGIN { printf "%.3f", o / s }')
    printf '%-12s %14.0f %14.0f %7sx\n' "$case" "$s" "$o" "$ratio"
done
echo "(medians of $RUNS runs each; ratio = ours / system, above 1.0 is faster)"
