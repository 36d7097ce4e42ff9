//! What the tests of the C libraries (`libaio.so.1`, `libposixaio.so`) share: skip reports,
//! per-test directories on a real filesystem, running programs with a time limit, compiling C
//! with gcc, and staging the cdylib cargo built for the test run.
//!
//! Paths that only cargo knows when it compiles a test (`CARGO_TARGET_TMPDIR`) are passed in by
//! the caller.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the file where [`skip`] records each skip.
pub const SKIP_LOG: &str = "AIO_SKIP_LOG";

/// Reports a test (or a part of one) that cannot run here: prints `SKIP <name>: <reason>` where
/// it is seen even when the harness captures output, and, when `$AIO_SKIP_LOG` names a file,
/// appends the line `<name>: <reason>` to it (`.ci/run` counts them after the tests, so a green
/// run says how much did not run).
pub fn skip(name: &str, reason: &str) {
    note(&format!("SKIP {name}: {reason}"));
    if let Some(log) = std::env::var_os(SKIP_LOG).filter(|l| !l.is_empty()) {
        // A skip that cannot be counted fails the test: the count would be wrong.
        if let Err(e) = append_line(Path::new(&log), &skip_line(name, reason)) {
            panic!("cannot append to ${SKIP_LOG} ({}): {e}", Path::new(&log).display());
        }
    }
}

/// `<name>: <reason>` on one line (line breaks in either become spaces).
fn skip_line(name: &str, reason: &str) -> String {
    let one = |s: &str| {
        s.split(['\n', '\r']).map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
    };
    format!("{}: {}\n", one(name), one(reason.trim()))
}

/// Appends `line` to `path` with one `write` on an `O_APPEND` descriptor: lines from tests
/// running in parallel, in one process or several, land whole and do not interleave.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    let n = file.write(line.as_bytes())?;
    if n != line.len() {
        return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "a short write"));
    }
    Ok(())
}

/// Prints a line where it is seen even when the harness captures output.
pub fn note(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The base for test files: `$AIO_TEST_DIR`, else `default` (cargo's target tmp directory: a
/// real filesystem here, where O_DIRECT works; tmpfs would refuse it).
pub fn test_base(default: &Path) -> PathBuf {
    let base = std::env::var_os("AIO_TEST_DIR").map(PathBuf::from).unwrap_or(default.into());
    std::fs::create_dir_all(&base).expect("create the test base directory");
    base
}

/// A fresh directory named `<prefix>-…` under `base`, removed when dropped.
pub fn test_dir(base: &Path, prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir_in(base)
        .expect("create a test directory")
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
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it (and failing the test) after `limit`.
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
/// system's. `args` come after the source and output (flags, then what to link).
pub fn gcc<S: AsRef<OsStr>>(source: &Path, out: &Path, include: Option<&Path>, args: &[S]) {
    let mut cmd = Command::new("gcc");
    if let Some(dir) = include {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg(source).arg("-o").arg(out).args(args);
    let ran = run(&mut cmd, Duration::from_secs(120));
    assert!(ran.status.success(), "{cmd:?} failed:\n{}{}", ran.stdout, ran.stderr);
}

/// Stages the cdylib `built` (its file name, e.g. `libposixaio.so`), which `cargo test` builds
/// next to the running test executable — the library of this very test run, never a stale
/// `target/dist`, and no cargo started from inside the tests (a nested cargo on the same target
/// directory would wait forever on the build lock the outer one holds) — as
/// `<tmp>/<prefix>-stage-<test>/lib/<name>`, the layout of `target/dist/lib`. Copied, then
/// renamed over the old copy, so another run still using it keeps its file. Returns the `lib`
/// directory and the staged file.
pub fn stage_cdylib(built: &str, tmp: &Path, prefix: &str, name: &str) -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the deps directory");
    let candidates = [deps.join(built), deps.join("..").join(built)];
    let found = candidates.iter().find(|p| p.exists()).unwrap_or_else(|| {
        panic!(
            "our cdylib is not where cargo builds it for the tests ({}): was the crate-type \
             changed?",
            candidates[0].display()
        )
    });
    let stem = exe.file_stem().and_then(OsStr::to_str).unwrap_or("test");
    let test = stem.split('-').next().unwrap_or(stem);
    let lib_dir = tmp.join(format!("{prefix}-stage-{test}")).join("lib");
    std::fs::create_dir_all(&lib_dir).expect("create the staging directory");
    let library = lib_dir.join(name);
    let part = lib_dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::copy(found, &part).unwrap_or_else(|e| panic!("stage {name}: {e}"));
    std::fs::rename(&part, &library).unwrap_or_else(|e| panic!("stage {name}: {e}"));
    (lib_dir, library)
}

/// Where the seed program `name` is: `$AIO_SEED_DIR/name`, else `../shared/seed/name` beside
/// the checkout at `workspace`, else the copy in the repository's `seed/` directory.
pub fn seed_file(workspace: &Path, name: &str) -> Option<PathBuf> {
    let env = std::env::var_os("AIO_SEED_DIR").map(|d| PathBuf::from(d).join(name));
    let shared = workspace.join("../shared/seed").join(name);
    let copy = workspace.join("seed").join(name);
    [env, Some(shared), Some(copy)]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// Runs one fio job — `cmd` is `fio` with its environment set — on `dir/fio.dat`, in `dir` and
/// with no verify state saved (fio would otherwise leave files in the current directory), with
/// the job options `engine` (the engine and what every job of the test shares) then `args`; fails the test unless fio exits cleanly, prints a job
/// summary, every summary says `err= 0` and no verification failed. Returns fio's output.
pub fn fio_job(mut cmd: Command, dir: &Path, name: &str, engine: &[&str], args: &[&str]) -> String {
    cmd.current_dir(dir)
        .arg("--verify_state_save=0")
        .arg(format!("--name={name}"))
        .arg(format!("--filename={}", dir.join("fio.dat").display()))
        .args(engine)
        .args(args);
    let ran = run(&mut cmd, Duration::from_secs(300));
    let out = format!("{}{}", ran.stdout, ran.stderr);
    assert!(ran.status.success(), "{cmd:?} failed ({}):\n{out}", ran.status);
    let summary: Vec<&str> = out.lines().filter(|l| l.contains("err=")).collect();
    assert!(!summary.is_empty(), "no job summary in fio's output:\n{out}");
    for line in &summary {
        assert!(line.contains("err= 0"), "fio reports an error:\n{out}");
    }
    assert!(!out.contains("verify: bad"), "fio found bad data:\n{out}");
    note(&format!("fio {name}: {}", summary.join(" | ").trim()));
    out
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

/// The seeded-fault contract both C libraries keep (`AIO_FAULT` with `AIO_FAULT_SEED` and
/// `AIO_FAULT_LOG`): `writes` runs a C program's 40 writes with the given environment and gives
/// back what it printed, a line per write. Half of the writes are set to fail: the same seed
/// fails the same writes and logs them the same way, a line per fault; another seed fails
/// others. Logs go to `logs`.
pub fn check_seeded_faults(logs: &Path, writes: impl Fn(&[(&str, &str)]) -> String) {
    let run_seed = |seed: &str, log: &str| {
        let log = logs.join(log);
        let out = writes(&[
            ("AIO_FAULT", "op=write,prob=0.5,errno=EIO"),
            ("AIO_FAULT_SEED", seed),
            ("AIO_FAULT_LOG", log.to_str().unwrap()),
        ]);
        (out, std::fs::read_to_string(&log).unwrap_or_default())
    };
    let (a, log_a) = run_seed("7", "a.jsonl");
    let (b, log_b) = run_seed("7", "b.jsonl");
    let (c, _) = run_seed("8", "c.jsonl");
    let failed = a.lines().filter(|l| l.contains("error")).count();
    assert!((5..35).contains(&failed), "{failed} of 40 failed:\n{a}");
    assert_eq!(a, b, "the same seed failed other writes");
    assert_eq!(log_a.lines().count(), failed, "one log line per fault:\n{log_a}");
    assert_eq!(log_a, log_b, "the same seed logged differently");
    assert_ne!(a, c, "another seed failed the same writes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_one_line() {
        assert_eq!(skip_line("t (a)", "no gcc"), "t (a): no gcc\n");
        assert_eq!(skip_line("t", "first\nsecond \r\n third\n"), "t: first second third\n");
    }

    #[test]
    fn parallel_appends_keep_lines_whole() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("skips");
        let long = "x".repeat(3000);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (log, long) = (&log, &long);
                s.spawn(move || {
                    for i in 0..50 {
                        append_line(log, &skip_line(&format!("t{t}.{i}"), long)).expect("append");
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&log).expect("read the log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 50);
        assert!(lines.iter().all(|l| l.ends_with(&format!(": {long}"))));
    }
}
