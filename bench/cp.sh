#!/usr/bin/env bash
# Benchmark (not a test): `aio cp --direct` against `cp` followed by `sync`, on a cold page cache.
#
#   bench/cp.sh                     # 5 rounds on a 1 GiB file
#   RUNS=7 SIZE=2G bench/cp.sh
#
# Each round copies the file once with each tool, in rotating order, into a fresh DST. Before
# each copy it drops the page cache (sync; echo 3 > /proc/sys/vm/drop_caches), so every copy
# reads from the device, and then reads a separate 2 GiB file through the page cache (dropped
# again after): the virtual disk under this machine remembers what the previous copy did — a
# `cp` right after a `cp` took 0.85-1.0 s, right after an `aio cp --direct` 1.9-2.6 s, whatever
# the page cache held — and that neutral read puts every copy in the same state (`cp` then took
# 0.86-1.2 s whatever ran before). Times are wall clock from start to the copy being on disk:
#   aio   `aio cp --direct SRC DST` (it fsyncs DST, renames it into place and fsyncs the
#         directory)
#   aio-b `aio cp SRC DST`: the same through the page cache (for comparison; no target)
#   cp    `cp SRC DST && sync DST` (coreutils sync of the one file: fsync, so other writers on
#         the machine are not counted)
# Prints every sample, the medians, the ratios cp / aio (above 1.0: aio is faster) and the target
# check: `aio cp --direct` at least 1.5x `cp` + `sync`. NEUTRAL=0 skips the neutral read (the
# old protocol, whose figures depend on the order of the copies).
#
# Environment: RUNS (default 5), SIZE (default 1G), BENCH_DIR (default target/bench-cp; must
# support O_DIRECT), NO_BUILD=1 (use target/release/aio as it is). Needs root for drop_caches.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-5}
SIZE=${SIZE:-1G}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-cp}
TARGET=1.5
aio=$root/target/release/aio

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/cp.sh needs root to drop the page cache before each copy" >&2
    exit 1
fi
build_aio "$root"

mkdir -p "$BENCH_DIR"
src=$BENCH_DIR/src.dat
dst=$BENCH_DIR/dst.dat
neutral=$BENCH_DIR/neutral.dat
want_bytes=$(numfmt --from=iec "$SIZE")
if [ ! -f "$src" ] || [ "$(stat -c %s "$src")" -ne "$want_bytes" ]; then
    echo "making $src ($SIZE of random data)"
    head -c "$want_bytes" /dev/urandom >"$src.tmp"
    mv "$src.tmp" "$src"
fi
if [ "${NEUTRAL:-1}" != 0 ] && { [ ! -f "$neutral" ] || [ "$(stat -c %s "$neutral")" -ne $((2 << 30)) ]; }; then
    echo "making $neutral (2 GiB, read before each copy)"
    head -c $((2 << 30)) /dev/urandom >"$neutral.tmp"
    mv "$neutral.tmp" "$neutral"
fi

drop_caches() {
    rm -f "$dst"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    if [ "${NEUTRAL:-1}" != 0 ]; then
        cat "$neutral" >/dev/null
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# run_one TOOL: prints the seconds one copy took.
run_one() {
    drop_caches
    local t0 t1
    t0=$(date +%s.%N)
    case $1 in
        aio) "$aio" cp --direct "$src" "$dst" >/dev/null ;;
        aio-b) "$aio" cp "$src" "$dst" >/dev/null ;;
        cp) cp "$src" "$dst" && sync "$dst" ;;
    esac
    t1=$(date +%s.%N)
    cmp -s <(head -c 1048576 "$src") <(head -c 1048576 "$dst") || { echo "$1: the copy differs" >&2; exit 1; }
    [ "$(stat -c %s "$dst")" -eq "$want_bytes" ] || { echo "$1: the copy has the wrong size" >&2; exit 1; }
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}


echo "copying $src ($SIZE) on $(stat -f -c %T "$BENCH_DIR"), page cache dropped before each copy$([ "${NEUTRAL:-1}" != 0 ] && echo ", neutral read"), $RUNS rounds"
echo "$("$aio" --version), $(cp --version | head -1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A samples
for ((round = 1; round <= RUNS; round++)); do
    tools=(aio cp aio-b)
    order=()
    for ((i = 0; i < 3; i++)); do order+=("${tools[(i + round - 1) % 3]}"); done
    for tool in "${order[@]}"; do
        s=$(run_one "$tool")
        samples[$tool]+="$s "
        mib=$(awk -v b="$want_bytes" -v s="$s" 'BEGIN { printf "%.0f", b / 1048576 / s }')
        printf '  round %d %-5s %8.3f s  %6s MiB/s\n' "$round" "$tool" "$s" "$mib"
    done
done
rm -f "$dst"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

a=$(echo "${samples[aio]}" | median)
b=$(echo "${samples[aio-b]}" | median)
c=$(echo "${samples[cp]}" | median)
ratio=$(awk -v a="$a" -v c="$c" 'BEGIN { printf "%.2f", c / a }')
ratio_b=$(awk -v a="$b" -v c="$c" 'BEGIN { printf "%.2f", c / a }')
echo
printf 'median: aio cp (page cache) %.3f s, cp + sync %.3f s: %sx (no target)\n' "$b" "$c" "$ratio_b"
printf 'median: aio cp --direct %.3f s, cp + sync %.3f s: %sx ' "$a" "$c" "$ratio"
if awk -v r="$ratio" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then
    echo "PASS (target >= ${TARGET}x)"
else
    echo "FAIL (target >= ${TARGET}x)"
fi
