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
        .prefix(&format!("libaio-{prefix}-"))
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

/// Our library, staged as `<dir>/lib/libaio.so.1` (+ `libaio.so`).
pub struct Staged {
    /// The `lib` directory: for `-L` and `LD_LIBRARY_PATH`.
    pub lib_dir: PathBuf,
    /// `lib_dir/libaio.so.1`.
    pub library: PathBuf,
}

/// Finds the cdylib cargo built for this test run and stages it (once per test executable).
pub fn ours() -> &'static Staged {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    STAGED.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let deps = exe.parent().expect("the deps directory");
        let candidates = [deps.join("libaio_libaio.so"), deps.join("../libaio_libaio.so")];
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
            .join(format!("libaio-stage-{name}"))
            .join("lib");
        std::fs::create_dir_all(&lib_dir).expect("create the staging directory");
        // Copy, then rename over the old copy: another run still using it keeps its file.
        let library = lib_dir.join("libaio.so.1");
        let tmp = lib_dir.join(format!(".libaio.so.1.{}", std::process::id()));
        std::fs::copy(built, &tmp).expect("stage libaio.so.1");
        std::fs::rename(&tmp, &library).expect("stage libaio.so.1");
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

/// Whether `program --version` runs.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
/// system's. `link`: what to link libaio from: a library path, or `-L<dir> -laio`.
pub fn gcc(source: &Path, out: &Path, include: Option<&Path>, link: &Link, extra: &[&str]) {
    let mut cmd = Command::new("gcc");
    if let Some(dir) = include {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg(source).arg("-o").arg(out).args(extra);
    match link {
        Link::Path(p) => {
            cmd.arg(p);
        }
        Link::Dir(d) => {
            cmd.arg(format!("-L{}", d.display())).arg("-laio");
        }
    }
    let ran = run(&mut cmd, Duration::from_secs(120));
    assert!(ran.status.success(), "{cmd:?} failed:\n{}{}", ran.stdout, ran.stderr);
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
