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
