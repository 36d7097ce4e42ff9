//! Helpers shared by the libaio.so.1 tests: where our library and the system's are, building
//! and running C programs against them, skip reporting.
//!
//! Our library: `cargo test` builds this package's library (crate-type cdylib + rlib) before
//! the integration tests, into the same `deps/` directory as the test executable, so the tests
//! take `libaio_libaio.so` from next to themselves. That is the library of this very test run —
//! never a stale `target/dist` — and no cargo is started from inside the tests (a nested cargo
//! on the same target directory would wait forever on the build lock the outer one holds). It
//! is staged once per test executable as `lib/libaio.so.1` plus a `libaio.so` symlink, the
//! layout of `target/dist/lib`, under cargo's target tmp directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

#[allow(unused_imports)]
pub use aio_testkit::{have, run, skip, which, Ran};

/// The base for test files: `$AIO_TEST_DIR`, else cargo's target tmp directory.
pub fn test_base() -> PathBuf {
    aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// A fresh directory for one test, removed when dropped.
pub fn test_dir(prefix: &str) -> tempfile::TempDir {
    aio_testkit::test_dir(&test_base(), &format!("libaio-{prefix}"))
}

/// The package directory.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Our header's directory.
pub fn our_include() -> PathBuf {
    manifest_dir().join("include")
}

/// Our library, staged as `<dir>/lib/libaio.so.1` (+ `libaio.so`).
pub struct Staged {
    /// The `lib` directory: for `-L` and `LD_LIBRARY_PATH`.
    pub lib_dir: PathBuf,
    /// `lib_dir/libaio.so.1`.
    pub library: PathBuf,
}

/// The cdylib cargo built for this test run, staged once per test executable.
pub fn ours() -> &'static Staged {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    STAGED.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let (lib_dir, library) =
            aio_testkit::stage_cdylib("libaio_libaio.so", tmp, "libaio", "libaio.so.1");
        match std::os::unix::fs::symlink("libaio.so.1", lib_dir.join("libaio.so")) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                panic!("symlink libaio.so: {e}")
            }
            _ => {}
        }
        Staged { lib_dir, library }
    })
}

/// The system's libaio.so.1 (libaio1), if installed.
pub fn system_lib() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/libaio.so.1",
        "/lib/x86_64-linux-gnu/libaio.so.1",
        "/usr/lib/aarch64-linux-gnu/libaio.so.1",
        "/usr/lib64/libaio.so.1",
        "/usr/lib/libaio.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The system's header (libaio-dev), if installed.
pub fn system_header() -> Option<PathBuf> {
    Some(PathBuf::from("/usr/include/libaio.h")).filter(|p| p.exists())
}

/// Compiles the C `source` into `out` with gcc (see [`aio_testkit::gcc`]). `link`: what to
/// link libaio from: a library path, or `-L<dir> -laio`.
pub fn gcc(source: &Path, out: &Path, include: Option<&Path>, link: &Link, extra: &[&str]) {
    let mut args: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
    match link {
        Link::Path(p) => args.push(p.into()),
        Link::Dir(d) => {
            args.push(format!("-L{}", d.display()).into());
            args.push("-laio".into());
        }
    }
    aio_testkit::gcc(source, out, include, &args);
}

/// Which libaio a program is linked with.
pub enum Link {
    /// This exact file (the system's libaio.so.1).
    Path(PathBuf),
    /// `-L<dir> -laio` (our staged library).
    Dir(PathBuf),
}

/// The `libaio.so.1` the dynamic loader picks for `program` with `LD_LIBRARY_PATH` set to
/// `lib_path` (or unset), as `ldd` reports it.
pub fn loaded_libaio(program: &Path, lib_path: Option<&Path>) -> Option<PathBuf> {
    let mut cmd = Command::new(program);
    cmd.env("LD_TRACE_LOADED_OBJECTS", "1").env_remove("LD_PRELOAD");
    match lib_path {
        Some(dir) => cmd.env("LD_LIBRARY_PATH", dir),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let ran = run(&mut cmd, Duration::from_secs(30));
    parse_ldd(&ran.stdout)
}

/// The path `ldd` output gives for libaio.so.1.
pub fn parse_ldd(output: &str) -> Option<PathBuf> {
    output.lines().find_map(|line| {
        let (name, rest) = line.trim().split_once(" => ")?;
        if name != "libaio.so.1" {
            return None;
        }
        let path = rest.split_whitespace().next()?;
        std::fs::canonicalize(path).ok()
    })
}
