#!/usr/bin/env bash
# Installs what the tests compare against or run: the system libaio's header (libaio-dev, for
# building the C suite against /usr/include/libaio.h), fio (for the fio tests and the bench
# scripts), fuse3 (fusermount3, for `aio mount` without root and for clearing a mount after a
# daemon crash), sqlite3 (the real client of the `aio mount` crash test), pkg-config (for
# building a C program against the tree `cargo xtask install` lays out) and attr (setfattr and
# getfattr, for the mount's extended attributes test). Idempotent: does
# nothing when all are present. Needs root and apt-get; otherwise it says so and exits 0, and the tests that need
# the missing pieces print SKIP.
set -euo pipefail

missing=()
[ -e /usr/include/libaio.h ] || missing+=(libaio-dev)
command -v fio >/dev/null 2>&1 || missing+=(fio)
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v setfattr >/dev/null 2>&1 || missing+=(attr)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: libaio-dev, fio, fuse3, sqlite3, pkg-config and attr already installed, nothing to do"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: not root, not installing ${missing[*]} (the tests needing them will SKIP)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get, not installing ${missing[*]} (the tests needing them will SKIP)"
    exit 0
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-test-deps: installed ${missing[*]}"
