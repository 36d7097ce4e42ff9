#!/usr/bin/env bash
# Runs the tests under sanitizers, by hand (slow; not part of .ci/run):
#
#   rust-asan  the aio unit tests, the driver tests (conformance, faults), the POSIX engine's
#              tests and its stress test, built with `cargo +nightly -Zsanitizer=address`
#   rust-tsan  the same with ThreadSanitizer (std rebuilt instrumented with -Zbuild-std: without
#              it TSan does not see std's locks and reports nonsense, so it is skipped when the
#              nightly toolchain has no rust-src)
#   c-asan     the C suites (posixaio/tests/c/*.c on each engine, libaio/tests/c/*.c) built with
#              gcc -fsanitize=address,undefined, run against libposixaio.so and libaio.so.1 built
#              with AddressSanitizer too (the C program's gcc ASan runtime serves both)
#
# Usage: scripts/sanitize.sh [rust-asan] [rust-tsan] [c-asan]   (none: all three)
#
# Prints one line per suite — `clean`, or the sanitizer reports' summaries and the log to read
# — and exits 1 if any sanitizer reported something (or a suite failed), 0 otherwise. Builds go
# to target-san/ and target-tsan/ (CARGO_TARGET_DIR_ASAN / CARGO_TARGET_DIR_TSAN override), so
# they do not disturb the release build; logs to target-san/logs/. Test files go where the
# tests put them ($AIO_TEST_DIR to choose).
#
# Known limits: the kernel's writes into buffers (io_uring, kernel AIO) are invisible to both
# sanitizers; TSan also does not see the ordering the kernel gives through eventfds and rings,
# so a report whose two accesses are ordered only by a completion would be a false positive
# (none so far). gcc's libasan (before LLVM's "[asan] Install pthread_atfork", 2023) has no fork
# handlers: a child forked while another thread was inside ASan's allocator inherits its lock
# held, and every thread it starts then blocks in ASan's thread setup. A program whose child
# needs a thread of the library's (the helper, for a program that only polls) hangs there and
# nowhere else. The kernel and pool engines start worker threads in the child, so fork.c runs
# on io_uring only here (the C suite runs it on every engine without ASan).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

target=x86_64-unknown-linux-gnu
asan_dir=${CARGO_TARGET_DIR_ASAN:-$root/target-san}
tsan_dir=${CARGO_TARGET_DIR_TSAN:-$root/target-tsan}
logs=$asan_dir/logs
mkdir -p "$logs"

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(rust-asan rust-tsan c-asan)

found=0       # a sanitizer reported something, or a suite failed
summary=()    # one line per suite

say() { printf '%s\n' "$*"; }
record() { summary+=("$1"); say "$1"; }

# The sanitizer reports in a log: their SUMMARY lines (ASan, TSan, UBSan) and UBSan's runtime
# errors, counted.
reports() {
    grep -hE 'SUMMARY: (AddressSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer' "$@" 2>/dev/null |
        sed -E 's/^==[0-9]+==//; s/\(pid=[0-9]+\)//; s/ 0x[0-9a-f]+//g' | sort | uniq -c | sort -rn
}

have_nightly() { cargo +nightly --version >/dev/null 2>&1; }
have_rust_src() { rustup component list --toolchain nightly 2>/dev/null | grep -q '^rust-src.*(installed)'; }

# The Rust tests run under a sanitizer: the aio unit tests, the driver tests and the POSIX
# engine's. (The libposixaio and libaio test binaries load our cdylibs into uninstrumented C
# programs, which an ASan library cannot join; the C suites are run by c-asan instead.)
RUST_TESTS=(-p aio --lib --test driver_conformance --test driver_fault --test posix --test posix_stress)

# Builds the tests with RUSTFLAGS=-Zsanitizer=$1 into $2 and prints the test executables.
build_rust() {
    local san=$1 dir=$2 log=$3 std=()
    have_rust_src && std=(-Zbuild-std)
    CARGO_TARGET_DIR=$dir RUSTFLAGS="-Zsanitizer=$san -Cdebuginfo=1" RUSTDOCFLAGS="-Zsanitizer=$san" \
        cargo +nightly test "${std[@]}" --target "$target" "${RUST_TESTS[@]}" --no-run \
        --message-format=json 2>"$log" |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//'
}

# Runs each test executable from its package directory (as cargo does) and records a line.
run_rust() {
    local name=$1 env=$2
    shift 2
    local exe base log rc n
    for exe in "$@"; do
        base=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
        log=$logs/$name-$base.log
        # Every test binary here belongs to the aio package.
        (cd "$root/aio" && env $env AIO_STRESS_SECS="${AIO_STRESS_SECS:-5}" timeout 1800 "$exe" >"$log" 2>&1)
        rc=$?
        n=$(reports "$log" | awk '{s+=$1} END {print s+0}')
        if [ "$n" -gt 0 ]; then
            found=1
            record "$name $base: $n report(s), see $log"
            reports "$log" | sed 's/^/    /' | head -20
        elif [ $rc -ne 0 ]; then
            found=1
            record "$name $base: FAILED (exit $rc), no sanitizer report; see $log"
            grep -E '^test .* FAILED|panicked at' "$log" | head -5 | sed 's/^/    /'
        else
            record "$name $base: clean ($(grep -h '^test result' "$log" | sed 's/test result: //; s/;.*//' | paste -sd' '))"
        fi
    done
}

rust_asan() {
    if ! have_nightly; then
        record "rust-asan: SKIP (no nightly toolchain: rustup toolchain install nightly)"
        return
    fi
    have_rust_src || say "rust-asan: no rust-src for nightly: std is not instrumented (rustup component add rust-src --toolchain nightly)"
    say "rust-asan: building (nightly, -Zsanitizer=address) into $asan_dir"
    local exes
    mapfile -t exes < <(build_rust address "$asan_dir" "$logs/rust-asan-build.log")
    if [ ${#exes[@]} -eq 0 ]; then
        found=1
        record "rust-asan: BUILD FAILED, see $logs/rust-asan-build.log"
        return
    fi
    # allocator_may_return_null: the tests check that an impossible allocation is an error.
    run_rust rust-asan "ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=0" "${exes[@]}"
}

rust_tsan() {
    if ! have_nightly; then
        record "rust-tsan: SKIP (no nightly toolchain)"
        return
    fi
    if ! have_rust_src; then
        record "rust-tsan: SKIP (no rust-src for nightly, so std cannot be rebuilt with TSan: rustup component add rust-src --toolchain nightly)"
        return
    fi
    say "rust-tsan: building (nightly, -Zsanitizer=thread, -Zbuild-std) into $tsan_dir"
    local exes
    mapfile -t exes < <(build_rust thread "$tsan_dir" "$logs/rust-tsan-build.log")
    if [ ${#exes[@]} -eq 0 ]; then
        found=1
        record "rust-tsan: BUILD FAILED, see $logs/rust-tsan-build.log"
        return
    fi
    # AIO_STRESS_SIGNALS_MERGE: TSan keeps one pending instance of each signal per thread, so
    # queued real-time signals merge; the stress test then checks signal notifications arrive
    # at most once (threads' still exactly once). die_after_fork=0: the stress test's forked
    # children start the engine's threads, which TSan refuses by default.
    # report_thread_leaks=0: the thread pool keeps the handles of workers that exited idle
    # until it next starts one (or is dropped; the POSIX engine's never is), so a worker that
    # ended is not joined before the process exits — bounded by the pool's size, not a leak
    # that grows.
    run_rust rust-tsan "TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:allocator_may_return_null=1:die_after_fork=0:report_thread_leaks=0 AIO_STRESS_SIGNALS_MERGE=1" "${exes[@]}"
}

c_asan() {
    if ! command -v gcc >/dev/null; then
        record "c-asan: SKIP (no gcc)"
        return
    fi
    local libasan
    libasan=$(gcc -print-file-name=libasan.so)
    if [ ! -e "$libasan" ]; then
        record "c-asan: SKIP (gcc has no libasan.so: install libasan8 or gcc's sanitizer runtime)"
        return
    fi
    if ! have_nightly; then
        record "c-asan: SKIP (no nightly toolchain to build the libraries with ASan)"
        return
    fi
    say "c-asan: building libposixaio.so and libaio.so.1 (nightly, -Zsanitizer=address)"
    local std=()
    have_rust_src && std=(-Zbuild-std)
    if ! CARGO_TARGET_DIR=$asan_dir RUSTFLAGS="-Zsanitizer=address -Cdebuginfo=1" \
        cargo +nightly build "${std[@]}" --target "$target" -p aio-posixaio -p aio-libaio \
        >"$logs/c-asan-build.log" 2>&1; then
        found=1
        record "c-asan: BUILD FAILED, see $logs/c-asan-build.log"
        return
    fi
    local built=$asan_dir/$target/debug work
    work=$(mktemp -d "${TMPDIR:-/tmp}/sanitize-c.XXXXXX")
    # The libaio programs link -laio from here; libaio.so.1 is the ASan build.
    mkdir -p "$work/lib"
    cp "$built/libaio_libaio.so" "$work/lib/libaio.so.1"
    ln -sf libaio.so.1 "$work/lib/libaio.so"
    cp "$built/libposixaio.so" "$work/lib/libposixaio.so"
    local data_base=${AIO_TEST_DIR:-$asan_dir/tmp}
    mkdir -p "$data_base"
    # -fno-sanitize=nonnull-attribute: the programs pass NULL where glibc's header says
    # nonnull on purpose (aio_read(NULL) is one of the cases they compare).
    local cflags=(-std=gnu11 -O1 -g -Wall -Wextra -fsanitize=address,undefined -fno-omit-frame-pointer
        -fno-sanitize=nonnull-attribute -pthread)
    # detect_leaks=0: the programs exit with requests' memory still owned by design (a
    # detached notification thread, a pipe read left cancelled); leaks are not what this
    # looks for.
    local asan_opts="detect_leaks=0:abort_on_error=0:allocator_may_return_null=1"
    local src prog exe log rc n data engine
    for src in posixaio/tests/c/*.c libaio/tests/c/*.c; do
        prog=$(basename "$src" .c)
        case $src in
        posixaio/*)
            exe=$work/posixaio-$prog
            gcc "${cflags[@]}" -Iposixaio/include "$src" -o "$exe" -ldl >"$logs/c-asan-posixaio-$prog-build.log" 2>&1 || {
                found=1
                record "c-asan posixaio $prog: BUILD FAILED, see $logs/c-asan-posixaio-$prog-build.log"
                continue
            }
            for engine in uring kernel pool; do
                if [ "$prog" = fork ] && [ "$engine" != uring ]; then
                    # The kernel and pool engines start threads in the child (workers,
                    # pollers), which this libasan may never let run (see Known limits).
                    record "c-asan posixaio $prog ($engine): SKIP (a forked child's new threads can block in gcc's libasan)"
                    continue
                fi
                log=$logs/c-asan-posixaio-$prog-$engine.log
                data=$(mktemp -d "$data_base/sanitize-$prog.XXXXXX")
                # The ASan runtime must come first in the initial library list.
                LD_PRELOAD="$libasan $work/lib/libposixaio.so" AIO_ENGINE=$engine \
                    ASAN_OPTIONS=$asan_opts UBSAN_OPTIONS=print_stacktrace=1 \
                    timeout 600 "$exe" "$data" >"$log" 2>&1
                rc=$?
                rm -rf "$data"
                c_result "c-asan posixaio $prog ($engine)" "$log" "$rc"
            done
            ;;
        libaio/*)
            exe=$work/libaio-$prog
            gcc "${cflags[@]}" -Ilibaio/include "$src" -o "$exe" -L"$work/lib" -laio -ldl \
                >"$logs/c-asan-libaio-$prog-build.log" 2>&1 || {
                found=1
                record "c-asan libaio $prog: BUILD FAILED, see $logs/c-asan-libaio-$prog-build.log"
                continue
            }
            log=$logs/c-asan-libaio-$prog.log
            data=$(mktemp -d "$data_base/sanitize-$prog.XXXXXX")
            # AIO_STATS=1: the counting paths run too (they read what the caller passed).
            LD_LIBRARY_PATH=$work/lib AIO_STATS=1 ASAN_OPTIONS=$asan_opts \
                UBSAN_OPTIONS=print_stacktrace=1 timeout 600 "$exe" "$data" >"$log" 2>&1
            rc=$?
            rm -rf "$data"
            c_result "c-asan libaio $prog" "$log" "$rc"
            ;;
        esac
    done
    rm -rf "$work"
}

# Records the result of one C program run: sanitizer reports, a failure, or clean.
c_result() {
    local label=$1 log=$2 rc=$3 n
    n=$(reports "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$n" -gt 0 ]; then
        found=1
        record "$label: $n report(s), see $log"
        reports "$log" | sed 's/^/    /' | head -10
    elif [ "$rc" -ne 0 ] || grep -q FATAL "$log"; then
        found=1
        record "$label: FAILED (exit $rc), no sanitizer report; see $log"
        grep -m3 FATAL "$log" | sed 's/^/    /'
    else
        record "$label: clean"
    fi
}

for s in "${suites[@]}"; do
    case $s in
    rust-asan) rust_asan ;;
    rust-tsan) rust_tsan ;;
    c-asan) c_asan ;;
    *)
        say "unknown suite $s (rust-asan, rust-tsan, c-asan)"
        exit 2
        ;;
    esac
done

say ""
say "sanitize.sh summary:"
printf '  %s\n' "${summary[@]}"
if [ $found -ne 0 ]; then
    say "sanitize.sh: sanitizers reported problems (or a suite failed): see above"
    exit 1
fi
say "sanitize.sh: clean"
