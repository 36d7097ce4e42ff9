#!/usr/bin/env bash
# Benchmark (not a test): fio on a backing directory and on `aio mount` of it, no faults.
#
#   bench/mount.sh                  # 5 rounds of 5 s per case and target
#   RUNS=3 RUNTIME=5 bench/mount.sh
#
# Cases: 4 KiB random reads and random writes, O_DIRECT, libaio, at queue depth 1 and 32.
# Each round runs every case on the backing directory and on the mount back to back, in
# alternating order, so drift on a shared machine hits both alike. Prints every sample, the
# medians of IOPS, mount/backing ratios (of the medians, and the median of per-round ratios),
# and the mount's QD 32 over QD 1: whether many requests are in flight through FUSE.
#
# Environment: RUNS (rounds, default 5), RUNTIME (seconds per run, default 5), BENCH_DIR (where
# the backing directory and the mountpoint go, default target/bench-mount; on a disk with
# O_DIRECT), SIZE (test file, default 1G), ENGINE (aio mount --engine, default its own choice),
# THREADS (aio mount --threads), NO_BUILD=1 (use target/release/aio as it is). Needs root (or
# fusermount3) and /dev/fuse.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-5}
RUNTIME=${RUNTIME:-5}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-mount}
SIZE=${SIZE:-1G}

need_fio
build_aio "$root"
aio=$root/target/release/aio

back=$BENCH_DIR/back
mnt=$BENCH_DIR/mnt
mkdir -p "$back" "$mnt"
if grep -q " $mnt " /proc/self/mountinfo; then
    umount -l "$mnt"
fi
file=fio.dat
want_bytes=$(numfmt --from=iec "$SIZE")
if [ ! -f "$back/$file" ] || [ "$(stat -c %s "$back/$file")" -ne "$want_bytes" ]; then
    echo "laying out $back/$file ($SIZE)"
    fio --name=layout --filename="$back/$file" --size="$SIZE" --rw=write --bs=1M --direct=1 \
        --ioengine=psync --output=/dev/null
fi

opts=()
[ -n "${ENGINE:-}" ] && opts+=(--engine "$ENGINE")
[ -n "${THREADS:-}" ] && opts+=(--threads "$THREADS")
"$aio" mount "$back" "$mnt" "${opts[@]}" 2>"$BENCH_DIR/mount.log" &
daemon=$!
cleanup() {
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    grep -q " $mnt " /proc/self/mountinfo && umount -l "$mnt"
    true
}
trap cleanup EXIT
for _ in $(seq 200); do
    grep -q " $mnt " /proc/self/mountinfo && break
    sleep 0.05
done
grep -q " $mnt " /proc/self/mountinfo || { echo "aio mount did not mount:" >&2; cat "$BENCH_DIR/mount.log" >&2; exit 1; }
head -1 "$BENCH_DIR/mount.log"

cases="randread-qd1 randread-qd32 randwrite-qd1 randwrite-qd32"

# run_one DIR CASE: prints the IOPS of one fio run on DIR/fio.dat.
run_one() {
    local dir=$1 case=$2 rw=${2%-qd*} qd=${2#*-qd}
    local cmd=(fio --name="$case" --filename="$dir/$file" --size="$SIZE" --bs=4k --rw="$rw"
        --ioengine=libaio --direct=1 --iodepth="$qd" --time_based --runtime="$RUNTIME"
        --randrepeat=0 --norandommap)
    if [ "$rw" = randread ]; then
        fio_read_iops "$case on $dir" "${cmd[@]}"
    else
        fio_write_iops "$case on $dir" "${cmd[@]}"
    fi
}

declare -A samples
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $RUNS rounds of ${RUNTIME}s"
for round in $(seq "$RUNS"); do
    for case in $cases; do
        if [ $((round % 2)) -eq 1 ]; then order="back mnt"; else order="mnt back"; fi
        for target in $order; do
            iops=$(run_one "$BENCH_DIR/$target" "$case")
            samples[$case.$target]="${samples[$case.$target]:-} $iops"
        done
        printf 'round %d %-15s backing %8.0f  mount %8.0f\n' "$round" "$case" \
            "$(echo "${samples[$case.back]}" | awk '{print $NF}')" \
            "$(echo "${samples[$case.mnt]}" | awk '{print $NF}')"
    done
done

echo
printf '%-15s %12s %12s %10s %14s\n' case backing mount mount/back "per-round"
for case in $cases; do
    b=$(echo "${samples[$case.back]}" | median)
    m=$(echo "${samples[$case.mnt]}" | median)
    printf '%-15s %12.0f %12.0f %10.2f %14s\n' "$case" "$b" "$m" \
        "$(awk -v a="$m" -v b="$b" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
        "$(ratio_median "${samples[$case.mnt]}" "${samples[$case.back]}")"
done
for rw in randread randwrite; do
    q1=$(echo "${samples[$rw-qd1.mnt]}" | median)
    q32=$(echo "${samples[$rw-qd32.mnt]}" | median)
    printf 'mount %-9s QD 32 / QD 1: %.1fx\n' "$rw" "$(awk -v a="$q32" -v b="$q1" 'BEGIN { print (b > 0 ? a / b : 0) }')"
done
"$aio" fault "$mnt" status | grep -E 'driver|most in flight|backlogged'
