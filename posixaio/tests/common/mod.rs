//! Helpers shared by the libposixaio.so tests: where our library is, building and running C
//! programs with and without it, skip reporting.
//!
//! Our library: `cargo test` builds this package's library (crate-type cdylib + rlib) before
//! the integration tests, into the same `deps/` directory as the test executable, so the tests
//! take `libposixaio.so` from next to themselves. That is the library of this very test run —
//! never a stale `target/dist` — and no cargo is started from inside the tests (a nested cargo
//! on the same target directory would wait forever on the build lock the outer one holds). It
//! is staged once per test executable as `lib/libposixaio.so`, the layout of
//! `target/dist/lib`, under cargo's target tmp directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[allow(unused_imports)]
pub use aio_testkit::{have, note, run, skip, which, Ran};

/// The base for test files: `$AIO_TEST_DIR`, else cargo's target tmp directory.
pub fn test_base() -> PathBuf {
    aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// A fresh directory for one test, removed when dropped.
pub fn test_dir(prefix: &str) -> tempfile::TempDir {
    aio_testkit::test_dir(&test_base(), &format!("posixaio-{prefix}"))
}

/// The package directory.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Our header's directory.
pub fn our_include() -> PathBuf {
    manifest_dir().join("include")
}

/// The system's `<aio.h>`.
pub fn system_header() -> Option<PathBuf> {
    Some(PathBuf::from("/usr/include/aio.h")).filter(|p| p.exists())
}

/// Our library, staged as `<dir>/lib/libposixaio.so`.
pub struct Staged {
    /// The `lib` directory.
    pub lib_dir: PathBuf,
    /// `lib_dir/libposixaio.so`, canonical: what `LD_PRELOAD` gets.
    pub library: PathBuf,
}

/// The cdylib cargo built for this test run, staged once per test executable.
pub fn ours() -> &'static Staged {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    STAGED.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let (lib_dir, library) =
            aio_testkit::stage_cdylib("libposixaio.so", tmp, "posixaio", "libposixaio.so");
        let library = std::fs::canonicalize(&library).expect("canonical staged path");
        Staged { lib_dir, library }
    })
}

/// Compiles the C `source` into `out` with gcc (see [`aio_testkit::gcc`]). The program is
/// linked with glibc only: our library comes in with `LD_PRELOAD`.
pub fn gcc(source: &Path, out: &Path, include: Option<&Path>, extra: &[&str]) {
    aio_testkit::gcc(source, out, include, extra);
}

/// How a C program is run: on glibc, or with our library preloaded (and an engine forced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum With {
    /// glibc's POSIX AIO: no `LD_PRELOAD`.
    Glibc,
    /// `LD_PRELOAD` of ours, with `AIO_ENGINE` set to this (None: unset, the default choice).
    Ours(Option<&'static str>),
    /// Ours on the default engine with the inline path off (`AIO_INLINE=0`): every request
    /// through the asynchronous engine.
    OursInlineOff,
}

impl With {
    /// A label for messages.
    pub fn label(self) -> String {
        match self {
            With::Glibc => "glibc".into(),
            With::Ours(None) => "ours".into(),
            With::Ours(Some(e)) => format!("ours, AIO_ENGINE={e}"),
            With::OursInlineOff => "ours, AIO_INLINE=0".into(),
        }
    }

    /// Sets the environment of `cmd` for this way of running.
    pub fn apply(self, cmd: &mut Command) {
        cmd.env_remove("LD_PRELOAD")
            .env_remove("AIO_ENGINE")
            .env_remove("AIO_INLINE")
            .env_remove("LD_LIBRARY_PATH");
        match self {
            With::Glibc => {}
            With::Ours(engine) => {
                cmd.env("LD_PRELOAD", &ours().library);
                if let Some(e) = engine {
                    cmd.env("AIO_ENGINE", e);
                }
            }
            With::OursInlineOff => {
                cmd.env("LD_PRELOAD", &ours().library).env("AIO_INLINE", "0");
            }
        }
    }
}
