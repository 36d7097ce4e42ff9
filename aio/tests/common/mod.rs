//! Helpers shared by the integration tests: a directory on a real filesystem, O_DIRECT probing,
//! skip reporting and data patterns.

#![allow(dead_code)]

pub mod drivers;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aio::DioAlign;

/// Prints `SKIP <name>: <reason>` where it is seen even when the harness captures output.
pub fn skip(name: &str, reason: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "SKIP {name}: {reason}");
}

/// A fresh directory for one test, under `$AIO_TEST_DIR` if set, else under cargo's target
/// tmp directory (on the build's filesystem, which is a real disk here, not tmpfs).
pub fn test_dir() -> tempfile::TempDir {
    let base = std::env::var_os("AIO_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).expect("create the test base directory");
    tempfile::Builder::new().prefix("aio-test-").tempdir_in(&base).expect("create a test directory")
}

/// Whether `dir` supports O_DIRECT: `Err(reason)` if not.
pub fn direct_support(dir: &Path) -> Result<DioAlign, String> {
    let path = dir.join(".direct-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| format!("{} does not support O_DIRECT: {e} (set AIO_TEST_DIR to a directory on ext4 or xfs)", dir.display()));
    let _ = std::fs::remove_file(&path);
    DioAlign::of(&file?).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Opens `path` read-write with O_DIRECT, creating it.
pub fn open_direct(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .expect("open with O_DIRECT")
}

/// Opens `path` read-write (buffered), creating it.
pub fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open read-write")
}

/// `len` bytes of a pattern that differs at every position and with `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `data` to a new file at `path` with plain std I/O.
pub fn make_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write a test file");
}

/// Directory test binaries' examples are built into (`target/<profile>/examples`).
pub fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target profile dir").join("examples")
}
