#!/usr/bin/env bash
# Benchmark (not a test): what AIO_STATS=1 costs, in both C libraries, where it would show most:
# CPU-bound requests, so the counting is a large share of each request's cost.
#
#   bench/stats.sh                  # 7 rounds of 3 s per case and variant
#   RUNS=9 RUNTIME=5 bench/stats.sh
#
# Cases, 4 KiB random reads at queue depth 1, fio with --thread (a forked fio job exits without
# printing the statistics line):
#   posix-hot   fio's posixaio engine on libposixaio.so (LD_PRELOAD), a page-cache-hot file
#   libaio-zero fio's libaio engine on our libaio.so.1 (LD_LIBRARY_PATH), /dev/zero (every
#               request completes inside io_submit: the library's own cost shows)
# Each round runs the case with AIO_STATS unset and with AIO_STATS=1, in alternating order.
# Prints every sample, the medians, and on/off as the ratio of the medians and the median of the
# per-round ratios. Also checks that the statistics line was printed (the switch really was on).
#
# Environment: RUNS (default 7), RUNTIME (seconds, default 3), BENCH_DIR (default
# target/bench-stats), SIZE (the hot file, default 256M), NO_BUILD=1 (use target/dist as it is).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-7}
RUNTIME=${RUNTIME:-3}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-stats}
SIZE=${SIZE:-256M}
lib_dir=$root/target/dist/lib

need_fio
build_dist "$root" libposixaio.so libaio.so.1

mkdir -p "$BENCH_DIR"
file=$BENCH_DIR/hot.dat
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$(numfmt --from=iec "$SIZE")" ]; then
    fio --name=layout --filename="$file" --size="$SIZE" --rw=write --bs=1M --ioengine=psync \
        --output=/dev/null
fi
cat "$file" >/dev/null
ld_preload_binds "$lib_dir/libposixaio.so" "$file"

# run_one CASE on|off: prints the read IOPS; with "on", fails unless the statistics line came.
run_one() {
    local case=$1 mode=$2 env=(env -u AIO_STATS) args out iops
    [ "$mode" = on ] && env=(env AIO_STATS=1)
    case $case in
        posix-hot) env+=(LD_PRELOAD="$lib_dir/libposixaio.so")
            args=(--ioengine=posixaio --filename="$file" --size="$SIZE" --invalidate=0) ;;
        libaio-zero) env+=(LD_LIBRARY_PATH="$lib_dir")
            args=(--ioengine=libaio --filename=/dev/zero --size=1G) ;;
    esac
    out=$("${env[@]}" fio --name="$case" --thread --rw=randread --bs=4k --iodepth=1 \
        --norandommap --time_based --runtime="$RUNTIME" --ramp_time=1 "${args[@]}" \
        --output-format=terse --terse-version=3 2>"$BENCH_DIR/stderr")
    iops=$(printf '%s\n' "$out" | awk -F';' '$1 == 3 && $5 == 0 { print $8; exit }')
    [ -n "$iops" ] || { echo "fio failed for $case $mode: $out $(cat "$BENCH_DIR/stderr")" >&2; exit 1; }
    if [ "$mode" = on ] && ! grep -q "^lib\(posix\)\?aio" "$BENCH_DIR/stderr"; then
        echo "no statistics line from $case with AIO_STATS=1: $(cat "$BENCH_DIR/stderr")" >&2
        exit 1
    fi
    echo "$iops"
}

echo "fio $(fio --version | sed 's/^fio-//'), 4 KiB random reads, QD 1, $RUNS rounds x ${RUNTIME} s"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A samples
for case in posix-hot libaio-zero; do
    samples[$case,off]=""
    samples[$case,on]=""
    for ((r = 0; r < RUNS; r++)); do
        if ((r % 2)); then order=(on off); else order=(off on); fi
        for mode in "${order[@]}"; do
            samples[$case,$mode]+="$(run_one "$case" "$mode") "
        done
    done
    echo "$case off: ${samples[$case,off]}"
    echo "$case on:  ${samples[$case,on]}"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-12s %12s %12s %10s %12s\n' case off on on/off "per round"
for case in posix-hot libaio-zero; do
    off=$(echo "${samples[$case,off]}" | median)
    on=$(echo "${samples[$case,on]}" | median)
    printf '%-12s %12.0f %12.0f %9.3fx %11sx\n' "$case" "$off" "$on" \
        "$(awk -v a="$on" -v b="$off" 'BEGIN { print a / b }')" \
        "$(ratio_median "${samples[$case,on]}" "${samples[$case,off]}")"
done
