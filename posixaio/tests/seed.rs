//! The seed's `posix_aio_read.c` (../shared/seed), built unchanged with gcc, runs with glibc
//! and with our library preloaded and ends with the same line, `返回值为:1024`; the dynamic
//! loader binds its `aio_read`, `aio_error` and `aio_return` to our library
//! (`LD_DEBUG=bindings`).
//!
//! The program polls `aio_error` in a loop, printing `第N次` each time it still says
//! `EINPROGRESS`: how many such lines there are depends on how fast the read completes, so only
//! the last line is compared.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn seed_source() -> Option<PathBuf> {
    aio_testkit::seed_file(&manifest_dir().join(".."), "posix_aio_read.c")
}

/// Builds the seed unchanged (against the system header, or ours with `include`).
fn build_seed(dir: &Path, name: &str, include: Option<&Path>) -> Option<PathBuf> {
    let Some(src) = seed_source() else {
        skip("seed", "posix_aio_read.c is in none of $AIO_SEED_DIR, ../shared/seed, seed/");
        return None;
    };
    if !have("gcc") {
        skip("seed", "gcc is not installed");
        return None;
    }
    let exe = dir.join(name);
    gcc(&src, &exe, include, &[]);
    Some(exe)
}

/// A directory with the `test.txt` the seed reads (4096 bytes, more than the 1024 it asks for).
fn seed_dir() -> tempfile::TempDir {
    let dir = test_dir("seed");
    let text: String = (0..4096).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    std::fs::write(dir.path().join("test.txt"), text).expect("write test.txt");
    dir
}

fn run_seed(exe: &Path, dir: &Path, with: With, debug: bool) -> (String, String) {
    let mut cmd = Command::new(exe);
    cmd.current_dir(dir);
    with.apply(&mut cmd);
    if debug {
        cmd.env("LD_DEBUG", "bindings");
    }
    let ran = run(&mut cmd, Duration::from_secs(60));
    assert!(
        ran.status.success(),
        "{exe:?} ({}) failed: {}{}",
        with.label(),
        ran.stdout,
        ran.stderr
    );
    (ran.stdout, ran.stderr)
}

fn last_line(out: &str) -> &str {
    out.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default()
}

#[test]
fn seed_prints_the_same_result() {
    let build = test_dir("seed-build");
    let Some(exe) = build_seed(build.path(), "posix_aio_read", None) else { return };
    let dir = seed_dir();
    let (glibc, _) = run_seed(&exe, dir.path(), With::Glibc, false);
    let (ours, _) = run_seed(&exe, dir.path(), With::Ours(None), false);
    assert_eq!(last_line(&glibc), "返回值为:1024", "glibc's run:\n{glibc}");
    assert_eq!(last_line(&ours), last_line(&glibc), "ours:\n{ours}");
    let polls = |out: &str| out.lines().filter(|l| l.starts_with('第')).count();
    note(&format!(
        "seed: `{}` with glibc ({} polls in progress) and with ours ({} polls)",
        last_line(&ours),
        polls(&glibc),
        polls(&ours)
    ));
    // Built against our header, on our library.
    let Some(exe) = build_seed(build.path(), "posix_aio_read.ours", Some(&our_include())) else {
        return;
    };
    let (ours_header, _) = run_seed(&exe, dir.path(), With::Ours(None), false);
    assert_eq!(last_line(&ours_header), "返回值为:1024", "ours, our header:\n{ours_header}");
}

#[test]
fn preload_binds_the_seed_to_our_library() {
    let build = test_dir("seed-bind");
    let Some(exe) = build_seed(build.path(), "posix_aio_read", None) else { return };
    let dir = seed_dir();
    let (_, stderr) = run_seed(&exe, dir.path(), With::Ours(None), true);
    let library = ours().library.display().to_string();
    for symbol in ["aio_read", "aio_error", "aio_return"] {
        // binding file ./posix_aio_read [0] to /…/libposixaio.so [0]: normal symbol `aio_read' [GLIBC_2.34]
        let line = stderr
            .lines()
            .find(|l| l.contains("binding file") && l.contains(&format!("symbol `{symbol}'")))
            .unwrap_or_else(|| panic!("no binding of {symbol} in LD_DEBUG output:\n{stderr}"));
        assert!(line.contains(&format!(" to {library} ")), "{symbol} bound elsewhere: {line}");
        note(&format!("seed: {}", line.split_once("binding").map_or(line, |(_, l)| l).trim()));
    }
    // And without the preload, glibc's.
    let (_, stderr) = run_seed(&exe, dir.path(), With::Glibc, true);
    let line = stderr
        .lines()
        .find(|l| l.contains("binding file") && l.contains("symbol `aio_read'"))
        .unwrap_or_else(|| panic!("no binding of aio_read in LD_DEBUG output:\n{stderr}"));
    assert!(line.contains("libc.so.6"), "without the preload aio_read binds to: {line}");
}

/// The copies in the repository's `seed/` (what a clone on its own builds) are the originals,
/// byte for byte, wherever `../shared/seed/` is there to compare with.
#[test]
fn the_seed_copies_match_the_originals() {
    let root = manifest_dir().join("..");
    let shared = root.join("../shared/seed");
    if !shared.is_dir() {
        return skip(
            "the_seed_copies_match_the_originals",
            "no ../shared/seed beside the checkout",
        );
    }
    for name in ["posix_aio_read.c", "libaio_copy.c"] {
        let original = std::fs::read(shared.join(name)).expect("read the original");
        let copy = std::fs::read(root.join("seed").join(name)).expect("read the copy in seed/");
        assert!(original == copy, "seed/{name} differs from ../shared/seed/{name}");
    }
}
