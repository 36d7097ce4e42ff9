#!/usr/bin/env bash
# Benchmark (not a test): the same jobs through fio and through `aio bench`, engine by engine.
#
#   bench/vs-fio.sh                   # 5 rounds of 3 s per case and variant
#   RUNS=7 RUNTIME=5 bench/vs-fio.sh
#
# Two cases, 4 KiB random reads of one file:
#   direct-qd32  O_DIRECT at queue depth 32 (the device-bound case)
#   cached-qd1   buffered at queue depth 1, the file in the page cache (the CPU-bound case: what
#                is measured is each interface's own cost)
# Variants: fio with --ioengine=libaio, io_uring, posixaio and psync; `aio bench` with --engine
# uring, kernel, pool, posix and sync. Each round runs every variant once, in a rotating order,
# so drift on a shared machine hits them alike. Prints every sample, then the median IOPS of each
# variant and the ratios of the pairs that do the same thing:
#   aio uring / fio io_uring, aio kernel / fio libaio, aio posix / fio posixaio,
#   aio pool / fio posixaio, aio sync / fio psync
# each two ways: the ratio of the two medians, and the median of the per-round ratios (the two
# runs of a round are minutes apart at most, so drift cancels; on this shared machine it is the
# steadier figure, and the one the targets are checked on): uring >= 1.0x fio io_uring and
# kernel >= 1.0x fio libaio in both cases. On the cached file both kernel AIO engines submit buffered reads, which io_submit does
# itself before returning: aio's kernel engine is then as synchronous as fio's libaio engine, and
# says so.
#
# Environment: RUNS (rounds, default 5), RUNTIME (seconds per run, default 3), BENCH_DIR (where
# the file goes, default target/bench-vs-fio; must support O_DIRECT), SIZE (file, default 1G),
# NO_BUILD=1 (use target/release/aio as it is), CASES (default "direct-qd32 cached-qd1"),
# VARIANTS (a subset of the variants, e.g. "fio-libaio aio-kernel" for a long run of one pair).
# Installs fio when missing (root and apt-get).
#
# Hybrid submission (the inline path: small buffered reads served at submission with
# RWF_NOWAIT) has its own script, bench/hybrid.sh: page-cache-hot QD 1 (aio bench uring, posix
# and file against sync; fio posixaio on libposixaio.so against psync), two jobs, O_DIRECT QD 32
# against a baseline revision, cold buffered QD 32 against AIO_INLINE=0, and a Zipf hot set
# half cached at QD 8, each with its target.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-5}
RUNTIME=${RUNTIME:-3}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-vs-fio}
SIZE=${SIZE:-1G}
aio=$root/target/release/aio

need_fio
build_aio "$root"

mkdir -p "$BENCH_DIR"
file=$BENCH_DIR/randread.dat
want_bytes=$(numfmt --from=iec "$SIZE")
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$want_bytes" ]; then
    echo "laying out $file ($SIZE)"
    rm -f "$file"
    fio --name=layout --filename="$file" --size="$SIZE" --rw=write --bs=1M --direct=1 \
        --ioengine=psync --output=/dev/null
fi

# case_args CASE: qd and direct flag.
qd_of() { case $1 in direct-qd32) echo 32 ;; cached-qd1) echo 1 ;; esac; }
direct_of() { case $1 in direct-qd32) echo 1 ;; cached-qd1) echo 0 ;; esac; }

# run_one VARIANT CASE: prints the read IOPS of one run.
run_one() {
    local variant=$1 case=$2 qd direct out
    qd=$(qd_of "$case")
    direct=$(direct_of "$case")
    case $variant in
        fio-*)
            fio_read_iops "$variant $case" fio --name="$case" --filename="$file" --size="$SIZE" \
                --ioengine="${variant#fio-}" --rw=randread --bs=4k --iodepth="$qd" \
                --direct="$direct" --invalidate=0 --randrepeat=0 --norandommap --time_based \
                --runtime="$RUNTIME"
            ;;
        aio-*)
            out=$("$aio" bench --filename="$file" --size="$SIZE" --engine="${variant#aio-}" \
                --rw=randread --bs=4k --iodepth="$qd" --direct="$direct" --runtime="$RUNTIME" \
                --output-format=json)
            printf '%s\n' "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["engines"][0]["iops"]))'
            ;;
    esac
}


variants_of() {
    echo "${VARIANTS:-fio-io_uring fio-libaio fio-posixaio fio-psync aio-uring aio-kernel aio-pool aio-posix aio-sync}"
}

echo "fio $(fio --version | sed 's/^fio-//') vs $("$aio" --version): 4 KiB random reads of $file ($SIZE), $RUNS rounds x ${RUNTIME} s"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A samples
read -r -a cases <<<"${CASES:-direct-qd32 cached-qd1}"
for case in "${cases[@]}"; do
    read -r -a variants <<<"$(variants_of "$case")"
    n=${#variants[@]}
    if [ "$case" = cached-qd1 ]; then
        cat "$file" >/dev/null   # into the page cache
    fi
    for ((round = 0; round < RUNS; round++)); do
        for ((k = 0; k < n; k++)); do
            v=${variants[$(((k + round) % n))]}
            iops=$(run_one "$v" "$case")
            samples[$case,$v]+="$iops "
            printf '  %-12s round %d %-13s %10s IOPS\n' "$case" "$((round + 1))" "$v" "$iops"
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
printf '%-12s' case
all=(fio-io_uring fio-libaio fio-posixaio fio-psync aio-uring aio-kernel aio-pool aio-posix aio-sync)
for v in "${all[@]}"; do printf ' %13s' "$v"; done
echo
declare -A med
for case in "${cases[@]}"; do
    printf '%-12s' "$case"
    for v in "${all[@]}"; do
        if [ -n "${samples[$case,$v]:-}" ]; then
            med[$case,$v]=$(echo "${samples[$case,$v]}" | median)
            printf ' %13.0f' "${med[$case,$v]}"
        else
            printf ' %13s' n/a
        fi
    done
    echo
done
echo "(median IOPS of $RUNS runs each)"

echo
pairs=("aio-uring fio-io_uring 1.0" "aio-kernel fio-libaio 1.0" "aio-posix fio-posixaio -" "aio-pool fio-posixaio -" "aio-sync fio-psync -")
for case in "${cases[@]}"; do
    for pair in "${pairs[@]}"; do
        read -r ours theirs target <<<"$pair"
        if [ -z "${med[$case,$ours]:-}" ]; then
            printf '%-12s %-11s / %-13s %8s  %s\n' "$case" "$ours" "$theirs" "-" "n/a: not measured"
            continue
        fi
        if [ -z "${med[$case,$theirs]:-}" ]; then
            printf '%-12s %-11s / %-13s %8s  %s\n' "$case" "$ours" "$theirs" "-" "n/a: not measured"
            continue
        fi
        ratio=$(awk -v o="${med[$case,$ours]}" -v t="${med[$case,$theirs]}" 'BEGIN { printf "%.2f", o / t }')
        paired=$(ratio_median "${samples[$case,$ours]}" "${samples[$case,$theirs]}")
        verdict=""
        if [ "$target" != - ]; then
            if awk -v r="$paired" -v t="$target" 'BEGIN { exit !(r >= t) }'; then
                verdict="PASS (target >= ${target}x)"
            else
                verdict="FAIL (target >= ${target}x)"

            fi
        fi
        printf '%-12s %-11s / %-13s %7sx  per round %5sx  %s\n' "$case" "$ours" "$theirs" "$ratio" "$paired" "$verdict"
    done
done
echo "(ratio of the medians; then the median of the per-round ratios, which the targets are checked on)"
# A missed target is a measurement, not an error of the script.
exit 0
