//! Helpers shared by the integration tests: a directory on a real filesystem, O_DIRECT probing,
//! skip reporting and data patterns.

#![allow(dead_code)]

pub mod drivers;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aio::DioAlign;

#[allow(unused_imports)]
pub use aio_testkit::{pattern, skip};

/// A fresh directory for one test, under `$AIO_TEST_DIR` if set, else under cargo's target
/// tmp directory (on the build's filesystem, which is a real disk here, not tmpfs).
pub fn test_dir() -> tempfile::TempDir {
    let base = aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    aio_testkit::test_dir(&base, "aio-test")
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

/// Writes `data` to a new file at `path` with plain std I/O.
pub fn make_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write a test file");
}

/// Directory test binaries' examples are built into (`target/<profile>/examples`).
pub fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target profile dir").join("examples")
}

/// An aligned buffer that counts its drops, to check each buffer is freed exactly once.
pub struct Tracked {
    pub buf: aio::AlignedBuf,
    pub drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Tracked {
    pub fn new(
        len: usize,
        align: usize,
        drops: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> Tracked {
        Tracked { buf: aio::AlignedBuf::new(len, align), drops: std::sync::Arc::clone(drops) }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// SAFETY: delegates to AlignedBuf, whose storage is stable; Tracked adds no storage of its own.
unsafe impl aio::IoBuf for Tracked {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.buf.bytes_total()
    }
}

// SAFETY: as above.
unsafe impl aio::IoBufMut for Tracked {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        // SAFETY: forwarded.
        unsafe { self.buf.set_init(len) }
    }
}
