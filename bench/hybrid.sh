#!/usr/bin/env bash
# Benchmark (not a test): hybrid submission — the inline path, where a small buffered read is
# first tried at submission with preadv2(RWF_NOWAIT) — against what it must match or beat.
#
#   bench/hybrid.sh                              # 5 rounds of 3 s per case and variant
#   RUNS=7 RUNTIME=5 bench/hybrid.sh
#   CASES=hotset-qd8 RUNS=3 bench/hybrid.sh      # one case
#   RUNS=1 RUNTIME=1 NO_BASELINE=1 bench/hybrid.sh   # does the script work (numbers mean nothing)
#
# All cases are 4 KiB random reads. Each round runs every variant of a case once, in a rotating
# order, so drift on a shared machine hits them alike; the file is put in its state (below)
# before every run. Prints the load average before and after each case, every sample (with the
# share of requests served inline, for aio bench), the median IOPS of each variant, and per
# target the ratio of the medians, the median of the per-round ratios (the runs of a round are
# seconds apart, so drift cancels: the steadier figure, and the one the targets are checked on)
# and PASS or FAIL. A missed target is a measurement: the script goes on, and exits 0.
#
# Variants: aio-ENGINE is `aio bench --engine ENGINE` (uring, kernel, pool, posix, file —
# aio::File futures on aio::block_on —, sync); fio-ENGINE is fio's engine (psync, io_uring;
# fio-posixaio is fio's posixaio engine on our libposixaio.so, LD_PRELOADed); a -noinline suffix
# runs it with AIO_INLINE=0 (the inline path off); -x2 with two jobs (aio bench --numjobs 2,
# fio --numjobs=2 --group_reporting: the IOPS of both); a base- prefix runs the BASELINE
# revision's aio or libposixaio.so instead of this tree's.
#
# Cases and targets:
#   hot-qd1      page-cache-hot (hot.dat, kept mapped by a helper process so it stays cached),
#                QD 1. Target 1: aio-uring, aio-posix and aio-file >= 0.9x aio-sync;
#                fio-posixaio >= 0.9x fio-psync.
#   hot-qd1-x2   the same with two jobs. Target 2: fio-posixaio-x2 >= 1.6x fio-posixaio (also
#                checked: aio-posix-x2 >= 1.6x aio-posix); fio-psync and fio-psync-x2 show what
#                two jobs of plain pread get on this machine.
#   direct-qd32  O_DIRECT (direct.dat), QD 32. Target 3: aio-uring, aio-kernel, aio-pool,
#                aio-posix and fio-posixaio each >= 0.97x the same on BASELINE (no engine loses
#                more than noise).
#   cold-qd32    buffered, the file (hotset.dat, 4 GiB, so a run warms little of it) dropped
#                from the page cache before each run (fsync, posix_fadvise DONTNEED), QD 32.
#                Target 4: aio-uring, aio-posix and fio-posixaio each >= 0.97x its -noinline
#                self.
#   hotset-qd8   zipf:1.2 over hotset.dat (4 GiB), half of it cached, QD 8. Before each run the
#                file is dropped from the cache, its first half read (dd, 1 MiB blocks), and the
#                second half dropped again (what readahead took past the middle): exactly the
#                first half cached, whatever ran before. Zipf's popular blocks are scattered
#                over the whole file (fio: its hash; aio bench: a permutation), so about half of
#                the hot set starts cached, and every miss brings its block in as the run goes.
#                Runs are repeatable: fio with --randrepeat=1, aio bench with --randseed 1 (each
#                tool the same offsets every run; the two tools' offsets differ). Target 5,
#                each tool against its own pread and io_uring-without-inline, round by round:
#                fio-posixaio >= the better of fio-psync and fio-io_uring (fio's io_uring engine
#                has no inline path); aio-posix and aio-uring (inline on) >= the better of
#                aio-sync and aio-uring-noinline. Also printed, not checked: fio-posixaio over
#                aio bench's variants (fio's own per-request work is in one side only).
# fio runs with --invalidate=0 (it must not drop the cache itself), --norandommap, and in the
# cold and hot-set cases --fadvise_hint=0 (fio would otherwise set POSIX_FADV_RANDOM on its
# descriptor, which aio bench does not: both leave the kernel's readahead as it is).
#
# BASELINE: a git revision (default 4dd3e8e, before the inline path), exported with git archive
# into target/baseline-REV/src and built there (cargo build --release -p aio-cli -p
# aio-posixaio, CARGO_TARGET_DIR=target/baseline-REV/target) on first use, reused afterwards.
#
# Environment: RUNS (rounds, default 5), RUNTIME (seconds per run, default 3), CASES (default
# "hot-qd1 hot-qd1-x2 direct-qd32 cold-qd32 hotset-qd8"), VARIANTS (keep only these variants
# in every case, e.g. "aio-uring aio-uring-noinline"), BENCH_DIR (where the files go, default
# target/bench-hybrid; must support O_DIRECT), SIZE (hot.dat and direct.dat, default 1G),
# HOTSET_SIZE (hotset.dat, default 4G), BASELINE (a revision), NO_BASELINE=1 (skip the baseline
# and its variants), NO_BUILD=1 (use target/release as it is; the baseline is still built if it
# is missing), INLINE_STATS=0 (skip the short extra run per case that shows, with AIO_STATS=1,
# how many of fio-posixaio's requests libposixaio served inline; not part of the figures).
# Installs fio when missing (root and apt-get).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
RUNS=${RUNS:-5}
RUNTIME=${RUNTIME:-3}
BENCH_DIR=${BENCH_DIR:-$root/target/bench-hybrid}
SIZE=${SIZE:-1G}
HOTSET_SIZE=${HOTSET_SIZE:-4G}
BASELINE=${BASELINE:-4dd3e8e}
ALL_CASES="hot-qd1 hot-qd1-x2 direct-qd32 cold-qd32 hotset-qd8"
read -r -a cases <<<"${CASES:-$ALL_CASES}"
for case in "${cases[@]}"; do
    case " $ALL_CASES " in
        *" $case "*) ;;
        *) echo "unknown case $case ($ALL_CASES)" >&2; exit 2 ;;
    esac
done

need_fio
for e in posixaio io_uring psync; do
    fio --enghelp 2>/dev/null | grep -qw "$e" || { echo "this fio has no $e engine" >&2; exit 1; }
done

# This tree's aio and libposixaio.so.
if [ "${NO_BUILD:-}" != 1 ]; then
    (cd "$root" && cargo build --release -p aio-cli -p aio-posixaio >/dev/null 2>&1) \
        || { echo "cargo build --release -p aio-cli -p aio-posixaio failed" >&2; exit 1; }
fi
aio=$root/target/release/aio
lib=$root/target/release/libposixaio.so
for f in "$aio" "$lib"; do
    [ -e "$f" ] || { echo "no $f: build with cargo build --release -p aio-cli -p aio-posixaio" >&2; exit 1; }
done

# The baseline's, when a case needs them.
base_aio='' base_lib='' base_rev=''
if [ "${NO_BASELINE:-}" != 1 ] && [[ " ${cases[*]} " == *" direct-qd32 "* ]]; then
    base_rev=$(git -C "$root" rev-parse --short=12 "$BASELINE^{commit}") \
        || { echo "BASELINE=$BASELINE is not a revision of this repository" >&2; exit 1; }
    base_dir=$root/target/baseline-$base_rev
    base_aio=$base_dir/target/release/aio
    base_lib=$base_dir/target/release/libposixaio.so
    if [ ! -x "$base_aio" ] || [ ! -e "$base_lib" ]; then
        echo "building the baseline $base_rev in $base_dir (once; reused by later runs)"
        if [ ! -e "$base_dir/src/Cargo.toml" ]; then
            rm -rf "$base_dir/src"
            mkdir -p "$base_dir/src"
            git -C "$root" archive --format=tar "$base_rev" | tar -x -C "$base_dir/src"
        fi
        (cd "$base_dir/src" && CARGO_TARGET_DIR=$base_dir/target \
            cargo build --release -p aio-cli -p aio-posixaio >"$base_dir/build.log" 2>&1) \
            || { echo "building the baseline failed: see $base_dir/build.log" >&2; exit 1; }
    fi
fi

mkdir -p "$BENCH_DIR"
hot_file=$BENCH_DIR/hot.dat
direct_file=$BENCH_DIR/direct.dat
hotset_file=$BENCH_DIR/hotset.dat
layout() {
    local file=$1 size=$2
    if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$(numfmt --from=iec "$size")" ]; then
        echo "laying out $file ($size)"
        rm -f "$file"
        fio --name=layout --filename="$file" --size="$size" --rw=write --bs=1M --direct=1 \
            --ioengine=psync --output=/dev/null
    fi
}
needs() { [[ " ${cases[*]} " == *" $1 "* ]]; }
if needs hot-qd1 || needs hot-qd1-x2; then layout "$hot_file" "$SIZE"; fi
if needs direct-qd32; then layout "$direct_file" "$SIZE"; fi
if needs cold-qd32 || needs hotset-qd8; then layout "$hotset_file" "$HOTSET_SIZE"; fi

# The hot file stays in the page cache while the script runs: a process maps it and reads
# every page; its mapping keeps the pages there even if someone drops the caches.
pin_pid=
# shellcheck disable=SC2317 # run by the trap
cleanup() { if [ -n "$pin_pid" ]; then kill "$pin_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
if needs hot-qd1 || needs hot-qd1-x2; then
    python3 -c '
import mmap, sys, time
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
total = sum(m[i] for i in range(0, len(m), 4096))
print("pinned", len(m), flush=True)
while True:
    time.sleep(3600)
' "$hot_file" >"$BENCH_DIR/pin.log" 2>&1 &
    pin_pid=$!
    for _ in $(seq 300); do grep -q pinned "$BENCH_DIR/pin.log" 2>/dev/null && break; sleep 0.1; done
    grep -q pinned "$BENCH_DIR/pin.log" || { echo "could not map $hot_file to keep it cached" >&2; exit 1; }
fi

# fio's posixaio calls must reach the library we preload.
for f in "$hot_file" "$direct_file" "$hotset_file"; do [ -f "$f" ] && break; done
ld_preload_binds "$lib" "$f"
if [ -n "$base_lib" ]; then ld_preload_binds "$base_lib" "$f"; fi

# The variants of a case, less those VARIANTS leaves out (and the baseline's without one).
variants_of() {
    local all
    case $1 in
        hot-qd1) all="aio-sync aio-uring aio-posix aio-file fio-psync fio-posixaio" ;;
        hot-qd1-x2) all="fio-posixaio fio-posixaio-x2 aio-posix aio-posix-x2 fio-psync fio-psync-x2" ;;
        direct-qd32) all="aio-uring aio-kernel aio-pool aio-posix fio-posixaio base-aio-uring base-aio-kernel base-aio-pool base-aio-posix base-fio-posixaio" ;;
        cold-qd32) all="aio-uring aio-uring-noinline aio-posix aio-posix-noinline fio-posixaio fio-posixaio-noinline" ;;
        hotset-qd8) all="fio-posixaio aio-uring aio-posix fio-psync aio-sync fio-io_uring aio-uring-noinline" ;;
    esac
    local v out=()
    for v in $all; do
        if [[ $v == base-* ]] && [ -z "$base_rev" ]; then continue; fi
        if [ -n "${VARIANTS:-}" ] && [[ " $VARIANTS " != *" $v "* ]]; then continue; fi
        out+=("$v")
    done
    echo "${out[*]}"
}

# The targets of a case: "LABEL OURS THEIRS MIN", THEIRS one variant or several joined by "|"
# (then the best of them, round by round).
targets_of() {
    case $1 in
        hot-qd1) printf '%s\n' "1 aio-uring aio-sync 0.9" "1 aio-posix aio-sync 0.9" \
            "1 aio-file aio-sync 0.9" "1 fio-posixaio fio-psync 0.9" ;;
        hot-qd1-x2) printf '%s\n' "2 fio-posixaio-x2 fio-posixaio 1.6" \
            "2(also) aio-posix-x2 aio-posix 1.6" "- fio-psync-x2 fio-psync -" ;;
        direct-qd32) printf '%s\n' "3 aio-uring base-aio-uring 0.97" \
            "3 aio-kernel base-aio-kernel 0.97" "3 aio-pool base-aio-pool 0.97" \
            "3 aio-posix base-aio-posix 0.97" "3 fio-posixaio base-fio-posixaio 0.97" ;;
        cold-qd32) printf '%s\n' "4 aio-uring aio-uring-noinline 0.97" \
            "4 aio-posix aio-posix-noinline 0.97" "4 fio-posixaio fio-posixaio-noinline 0.97" ;;
        hotset-qd8)
            local fio_best="fio-psync|fio-io_uring" aio_best="aio-sync|aio-uring-noinline" v w
            echo "5 fio-posixaio $fio_best 1.0"
            for w in ${fio_best//|/ } aio-sync aio-uring-noinline; do echo "- fio-posixaio $w -"; done
            for v in aio-posix aio-uring; do
                echo "5 $v $aio_best 1.0"
                for w in ${aio_best//|/ }; do echo "- $v $w -"; done
            done
            ;;
    esac
}

# The file, its size, the queue depth and O_DIRECT of a case.
file_of() { case $1 in hot-*) echo "$hot_file" ;; direct-*) echo "$direct_file" ;; *) echo "$hotset_file" ;; esac; }
size_of() { case $1 in hot-* | direct-*) echo "$SIZE" ;; *) echo "$HOTSET_SIZE" ;; esac; }
qd_of() { case $1 in hot-*) echo 1 ;; *-qd32) echo 32 ;; hotset-qd8) echo 8 ;; esac; }
direct_of() { case $1 in direct-*) echo 1 ;; *) echo 0 ;; esac; }

# prepare CASE: puts the file in the state the case measures.
prepare() {
    local file half
    file=$(file_of "$1")
    case $1 in
        cold-*) drop_from_cache "$file" ;;
        hotset-*)
            half=$(($(stat -c %s "$file") / 2))
            drop_from_cache "$file"
            dd if="$file" of=/dev/null bs=1M count=$((half >> 20)) status=none
            drop_from_cache "$file" "$half" 0
            ;;
    esac
}

# run_one VARIANT CASE: prints the read IOPS of one run, and for aio bench what share of the
# requests its inline path served.
run_one() {
    local variant=$1 case=$2 v file size qd direct jobs=1 env=(env -u LD_PRELOAD) bin=$aio
    local preload=$lib out
    file=$(file_of "$case")
    size=$(size_of "$case")
    qd=$(qd_of "$case")
    direct=$(direct_of "$case")
    v=$variant
    if [[ $v == base-* ]]; then bin=$base_aio preload=$base_lib v=${v#base-}; fi
    if [[ $v == *-noinline ]]; then env+=(AIO_INLINE=0) v=${v%-noinline}; fi
    if [[ $v == *-x2 ]]; then jobs=2 v=${v%-x2}; fi
    case $v in
        fio-*)
            local engine=${v#fio-} fio_args=()
            if [ "$engine" = posixaio ]; then env+=(LD_PRELOAD="$preload"); fi
            case $case in
                hotset-*) fio_args+=(--random_distribution=zipf:1.2 --randrepeat=1 --fadvise_hint=0) ;;
                cold-*) fio_args+=(--randrepeat=0 --fadvise_hint=0) ;;
                *) fio_args+=(--randrepeat=0) ;;
            esac
            if [ "$jobs" -gt 1 ]; then fio_args+=(--numjobs="$jobs" --group_reporting); fi
            fio_read_iops "$variant $case" "${env[@]}" fio --name="$case" --filename="$file" \
                --size="$size" --ioengine="$engine" --rw=randread --bs=4k --iodepth="$qd" \
                --direct="$direct" --invalidate=0 --norandommap --time_based \
                --runtime="$RUNTIME" "${fio_args[@]}"
            ;;
        aio-*)
            local aio_args=()
            case $case in hotset-*) aio_args+=(--random_distribution zipf:1.2 --randseed 1) ;; esac
            if [ "$jobs" -gt 1 ]; then aio_args+=(--numjobs "$jobs"); fi
            out=$("${env[@]}" "$bin" bench --filename="$file" --size="$size" --engine="${v#aio-}" \
                --rw=randread --bs=4k --iodepth="$qd" --direct="$direct" --runtime="$RUNTIME" \
                --output-format=json "${aio_args[@]}") \
                || { echo "aio bench failed for $variant $case" >&2; exit 1; }
            printf '%s\n' "$out" | python3 -c '
import json, sys
e = json.load(sys.stdin)["jobs"][0]["engines"][0]
i = e.get("inline")
note = ""
if i:
    asked = i["served"] + i["missed"] + i["skipped"] + i["ineligible"]
    note = " inline %.1f%%" % (100.0 * i["served"] / max(asked, 1))
print("%d%s" % (round(e["iops"]), note))'
            ;;
        *) echo "unknown variant $variant" >&2; exit 2 ;;
    esac
}

# inline_stats CASE: one short run of fio-posixaio with AIO_STATS=1, for the line libposixaio
# prints at exit (how many requests it served inline). Not part of the figures. --thread: the
# job runs in fio's own process, whose exit prints the line (a forked job process ends with
# _exit, which prints nothing).
inline_stats() {
    local case=$1 line extra=()
    if [[ $case == hotset-* ]]; then extra+=(--random_distribution=zipf:1.2); fi
    prepare "$case"
    line=$(AIO_STATS=1 LD_PRELOAD=$lib fio --name=stats --filename="$(file_of "$case")" \
        --size="$(size_of "$case")" --ioengine=posixaio --rw=randread --bs=4k \
        --iodepth="$(qd_of "$case")" --direct="$(direct_of "$case")" --invalidate=0 \
        --norandommap --time_based --runtime=1 --fadvise_hint=0 --thread \
        "${extra[@]}" \
        --output=/dev/null 2>&1 | grep -m1 'requests' || true)
    echo "  $case: fio-posixaio, 1 s with AIO_STATS=1 (not counted): ${line:-no statistics line}"
}

echo "hybrid submission: fio $(fio --version | sed 's/^fio-//'), $("$aio" --version), $(nproc) CPUs, $(uname -r)"
echo "4 KiB random reads, $RUNS rounds x ${RUNTIME} s per variant; files in $BENCH_DIR"
echo "ours: $aio, $lib${base_rev:+; baseline $base_rev: $base_aio, $base_lib}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A samples
for case in "${cases[@]}"; do
    read -r -a variants <<<"$(variants_of "$case")"
    n=${#variants[@]}
    [ "$n" -gt 0 ] || { echo "$case: no variant left (VARIANTS=${VARIANTS:-})"; continue; }
    echo
    echo "$case: $(file_of "$case") ($(size_of "$case")), QD $(qd_of "$case"), direct=$(direct_of "$case"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ $case == cold-* || $case == hotset-* ]]; then
        prepare "$case"
        echo "  before each run: $(cached_share "$(file_of "$case")") cached (each sample says how much its run started with)"
    fi
    for ((round = 0; round < RUNS; round++)); do
        for ((k = 0; k < n; k++)); do
            v=${variants[$(((k + round) % n))]}
            prepare "$case"
            state=""
            if [[ $case == cold-* || $case == hotset-* ]]; then
                state="  (cached at the start: $(cached_share "$(file_of "$case")" | sed 's/.*(\(.*\))/\1/'))"
            fi
            out=$(run_one "$v" "$case")
            read -r iops note <<<"$out"
            samples[$case,$v]+="$iops "
            printf '  %-12s round %d %-22s %10s IOPS%s%s\n' "$case" "$((round + 1))" "$v" "$iops" "${note:+  $note}" "$state"
        done
    done
    if [ "${INLINE_STATS:-1}" != 0 ] && [[ " ${variants[*]} " == *" fio-posixaio "* ]]; then
        inline_stats "$case"
    fi
    echo "  load average after $case: $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
printf '%-12s %-22s %12s %25s\n' case variant "median IOPS" "min..max"
for case in "${cases[@]}"; do
    for v in $(variants_of "$case"); do
        s=${samples[$case,$v]:-}
        [ -n "$s" ] || continue
        printf '%-12s %-22s %12.0f %25s\n' "$case" "$v" "$(echo "$s" | median)" \
            "$(echo "$s" | tr ' ' '\n' | grep -v '^$' | sort -n | sed -n '1p;$p' | paste -sd' ' | awk '{ printf "%.0f..%.0f", $1, $2 }')"
    done
done
echo "(median IOPS of $RUNS runs each)"

echo
printf '%-8s %-12s %-16s   %-58s %8s %10s   %s\n' target case ours theirs medians "per round" verdict
for case in "${cases[@]}"; do
    while read -r label ours theirs min; do
        [ -n "$label" ] || continue
        o=${samples[$case,$ours]:-}
        t_lists=()
        missing=
        for t in ${theirs//|/ }; do
            if [ -z "${samples[$case,$t]:-}" ]; then missing+=" $t"; else t_lists+=("${samples[$case,$t]}"); fi
        done
        [ -n "$o" ] || missing+=" $ours"
        shown_theirs=$theirs
        if [[ $theirs == *"|"* ]]; then shown_theirs="best of ${theirs//|/ }"; fi
        if [ -n "$missing" ]; then
            printf '%-8s %-12s %-16s / %-58s %8s %10s   %s\n' "$label" "$case" "$ours" "$shown_theirs" - - "n/a: not measured:$missing"
            continue
        fi
        # Theirs: one variant's samples, or the round-by-round best of several.
        if [ "${#t_lists[@]}" -gt 1 ]; then
            t=$(round_max "${t_lists[@]}")
            # Of the medians: ours over the best variant's median.
            t_med=$(for l in "${t_lists[@]}"; do echo "$l" | median; done | sort -g | tail -1)
        else
            t=${t_lists[0]}
            t_med=$(echo "$t" | median)
        fi
        ratio=$(awk -v o="$(echo "$o" | median)" -v t="$t_med" 'BEGIN { printf "%.2f", o / t }')
        paired=$(ratio_median "$o" "$t")
        verdict=""
        if [ "$min" != - ]; then
            if awk -v r="$paired" -v m="$min" 'BEGIN { exit !(r >= m) }'; then
                verdict="PASS (>= ${min}x)"
            else
                verdict="FAIL (>= ${min}x)"
            fi
        fi
        printf '%-8s %-12s %-16s / %-58s %7sx %9sx   %s\n' "$label" "$case" "$ours" "$shown_theirs" "$ratio" "$paired" "$verdict" | sed 's/ *$//' 
    done <<<"$(targets_of "$case")"
done
echo "(ours over theirs: the ratio of the medians, then the median of the per-round ratios, which"
echo " the targets are checked on; target '-' lines are for reading the others, not checked)"
# A missed target is a measurement, not an error of the script.
exit 0
