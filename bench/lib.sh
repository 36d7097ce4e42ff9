# Shared by the bench/*.sh scripts (sourced, not run).

# need_fio: installs fio with apt-get when it is missing (root only), or exits.
need_fio() {
    command -v fio >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "fio is missing: installing it"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fio \
            || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fio; }
    else
        echo "fio is missing and cannot be installed here (needs root and apt-get)" >&2
        exit 1
    fi
}

# build_aio ROOT: builds the aio command in release mode (unless NO_BUILD=1) and checks it is
# there; prints nothing on success.
build_aio() {
    local root=$1
    if [ "${NO_BUILD:-}" != 1 ]; then
        (cd "$root" && cargo build --release -p aio-cli --bin aio >/dev/null 2>&1) \
            || { echo "cargo build --release -p aio-cli failed" >&2; exit 1; }
    fi
    [ -x "$root/target/release/aio" ] \
        || { echo "no $root/target/release/aio: build it with cargo build --release -p aio-cli" >&2; exit 1; }
}

# build_dist ROOT LIB...: builds the C libraries into ROOT/target/dist/lib (cargo xtask dist,
# unless NO_BUILD=1) and checks each LIB named is there; prints nothing on success.
build_dist() {
    local root=$1 lib
    shift
    if [ "${NO_BUILD:-}" != 1 ]; then
        (cd "$root" && cargo xtask dist >/dev/null)
    fi
    for lib in "$@"; do
        [ -e "$root/target/dist/lib/$lib" ] \
            || { echo "no $root/target/dist/lib/$lib: run cargo xtask dist" >&2; exit 1; }
    done
}

# median: the median of the numbers on standard input (spaces or newlines between them; 0 for
# none).
median() {
    tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio_median A B: the median, to two decimals, of the round-by-round ratios of two sample
# lists in round order (space-separated: A's first over B's first, and so on).
ratio_median() {
    paste -d' ' <(printf '%s\n' $1) <(printf '%s\n' $2) | awk 'NF == 2 { print $1 / $2 }' \
        | median | awk '{ printf "%.2f", $1 }'
}

# fio_read_iops LABEL COMMAND...: runs COMMAND (fio and its options, perhaps behind env) with
# terse output, exits if fio reports an error (naming LABEL), prints the read IOPS. The terse
# line may come after notes fio prints: field 1 is the version (3), 5 the error, 8 the read IOPS.
fio_read_iops() {
    local label=$1 out err
    shift
    out=$("$@" --output-format=terse --terse-version=3)
    err=$(printf '%s\n' "$out" | awk -F';' '$1 == 3 { print $5; exit }')
    [ "$err" = 0 ] || { echo "fio reported error '$err' for $label: $out" >&2; exit 1; }
    printf '%s\n' "$out" | awk -F';' '$1 == 3 { print $8; exit }'
}

# fio_write_iops LABEL COMMAND...: as fio_read_iops, for the write IOPS (terse field 49).
fio_write_iops() {
    local label=$1 out err
    shift
    out=$("$@" --output-format=terse --terse-version=3)
    err=$(printf '%s\n' "$out" | awk -F';' '$1 == 3 { print $5; exit }')
    [ "$err" = 0 ] || { echo "fio reported error '$err' for $label: $out" >&2; exit 1; }
    printf '%s\n' "$out" | awk -F';' '$1 == 3 { print $49; exit }'
}

# round_max LIST...: the round-by-round maximum of sample lists in round order (each
# space-separated), as one space-separated list.
round_max() {
    printf '%s\n' "$@" | awk '{ for (i = 1; i <= NF; i++) if (!(i in m) || $i > m[i]) m[i] = $i; if (NF > n) n = NF }
        END { for (i = 1; i <= n; i++) printf "%s ", m[i]; print "" }'
}

# drop_from_cache FILE [OFFSET [LENGTH]]: fsyncs FILE, then asks the kernel to drop its pages
# from the page cache (posix_fadvise POSIX_FADV_DONTNEED; LENGTH 0 or none: to the end). Needs
# no root; pages someone has mapped stay.
drop_from_cache() {
    python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, int(sys.argv[2]), int(sys.argv[3]), os.POSIX_FADV_DONTNEED)
os.close(fd)' "$1" "${2:-0}" "${3:-0}"
}

# cached_share FILE: how much of FILE is in the page cache, as "N MiB of M MiB (P%)" (fincore,
# from util-linux; "unknown" without it).
cached_share() {
    local res size
    if ! command -v fincore >/dev/null 2>&1; then echo unknown; return; fi
    res=$(fincore --bytes --noheadings --output RES "$1" 2>/dev/null | tr -d ' ') || { echo unknown; return; }
    size=$(stat -c %s "$1")
    awk -v r="$res" -v s="$size" 'BEGIN { printf "%.0f MiB of %.0f MiB (%.1f%%)", r / 1048576, s / 1048576, 100 * r / s }'
}

# ld_preload_binds LIB FILE: exits unless fio's aio_read64 binds to LIB under LD_PRELOAD (a
# short posixaio job on FILE, which must exist).
ld_preload_binds() {
    local lib=$1 file=$2 bound
    bound=$(LD_PRELOAD=$lib LD_DEBUG=bindings fio --name=bind --filename="$file" \
        --ioengine=posixaio --rw=randread --bs=4k --size=1M --iodepth=2 --invalidate=0 \
        --output=/dev/null 2>&1 | grep "symbol \`aio_read64'" | head -1 || true)
    case $bound in
        *" to $lib "*) ;;
        *) echo "fio's aio_read64 does not bind to $lib under LD_PRELOAD: $bound" >&2; exit 1 ;;
    esac
}
