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

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Prints `SKIP <name>: <reason>` where it is seen even when the harness captures output.
pub fn skip(name: &str, reason: &str) {
    let _ = std::io::stderr().write_all(format!("SKIP {name}: {reason}\n").as_bytes());
}

/// Prints a line where it is seen even when the harness captures output.
pub fn note(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The base for test files: `$AIO_TEST_DIR`, else cargo's target tmp directory (a real
/// filesystem here, where O_DIRECT works; tmpfs would refuse it).
pub fn test_base() -> PathBuf {
    let base = std::env::var_os("AIO_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).expect("create the test base directory");
    base
}

/// A fresh directory for one test, removed when dropped.
pub fn test_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("posixaio-{prefix}-"))
        .tempdir_in(test_base())
        .expect("create a test directory")
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

/// Finds the cdylib cargo built for this test run and stages it (once per test executable).
pub fn ours() -> &'static Staged {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    STAGED.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let deps = exe.parent().expect("the deps directory");
        let candidates = [deps.join("libposixaio.so"), deps.join("../libposixaio.so")];
        let built = candidates.iter().find(|p| p.exists()).unwrap_or_else(|| {
            panic!(
                "our cdylib is not where cargo builds it for the tests ({}): was the crate-type \
                 changed?",
                candidates[0].display()
            )
        });
        let stem = exe.file_stem().and_then(OsStr::to_str).unwrap_or("test");
        let name = stem.split('-').next().unwrap_or(stem);
        let lib_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("posixaio-stage-{name}"))
            .join("lib");
        std::fs::create_dir_all(&lib_dir).expect("create the staging directory");
        // Copy, then rename over the old copy: another run still using it keeps its file.
        let library = lib_dir.join("libposixaio.so");
        let tmp = lib_dir.join(format!(".libposixaio.so.{}", std::process::id()));
        std::fs::copy(built, &tmp).expect("stage libposixaio.so");
        std::fs::rename(&tmp, &library).expect("stage libposixaio.so");
        let library = std::fs::canonicalize(&library).expect("canonical staged path");
        Staged { lib_dir, library }
    })
}

/// Whether `program --version` runs.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The path of `program` on `PATH`, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let ran = run(
        Command::new("sh").args(["-c", &format!("command -v {program}")]),
        Duration::from_secs(10),
    );
    let path = ran.stdout.trim();
    (ran.status.success() && !path.is_empty()).then(|| path.into())
}

/// What a finished program printed.
pub struct Ran {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Ran {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let so_far = out_reader.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}; its output so far:\n{}",
                String::from_utf8_lossy(&so_far)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// Compiles the C `source` into `out` with gcc, panicking with the compiler's output on failure.
/// `include`: `Some(dir)` puts `dir` first on the include path (our header), `None` leaves the
/// system's. The program is linked with glibc only: our library comes in with `LD_PRELOAD`.
pub fn gcc(source: &Path, out: &Path, include: Option<&Path>, extra: &[&str]) {
    let mut cmd = Command::new("gcc");
    if let Some(dir) = include {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg(source).arg("-o").arg(out).args(extra);
    let ran = run(&mut cmd, Duration::from_secs(120));
    assert!(ran.status.success(), "{cmd:?} failed:\n{}{}", ran.stdout, ran.stderr);
}

/// How a C program is run: on glibc, or with our library preloaded (and an engine forced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum With {
    /// glibc's POSIX AIO: no `LD_PRELOAD`.
    Glibc,
    /// `LD_PRELOAD` of ours, with `AIO_ENGINE` set to this (None: unset, the default choice).
    Ours(Option<&'static str>),
}

impl With {
    /// A label for messages.
    pub fn label(self) -> String {
        match self {
            With::Glibc => "glibc".into(),
            With::Ours(None) => "ours".into(),
            With::Ours(Some(e)) => format!("ours, AIO_ENGINE={e}"),
        }
    }

    /// Sets the environment of `cmd` for this way of running.
    pub fn apply(self, cmd: &mut Command) {
        cmd.env_remove("LD_PRELOAD").env_remove("AIO_ENGINE").env_remove("LD_LIBRARY_PATH");
        if let With::Ours(engine) = self {
            cmd.env("LD_PRELOAD", &ours().library);
            if let Some(e) = engine {
                cmd.env("AIO_ENGINE", e);
            }
        }
    }
}
