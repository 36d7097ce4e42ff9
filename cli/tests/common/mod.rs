//! Helpers shared by the `aio` command's tests: running the binary, a directory on a real
//! filesystem, skip reporting, small mounts for full-disk cases.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)]
pub use aio_testkit::{pattern, skip};

/// A fresh directory for one test, under `$AIO_TEST_DIR` if set, else under cargo's target
/// tmp directory (on the build's filesystem, a real disk here, not tmpfs).
pub fn test_dir() -> tempfile::TempDir {
    let base = aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    aio_testkit::test_dir(&base, "aio-cli")
}

/// What a run of `aio` gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both outputs unless the exit status is `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(
            self.code, code,
            "{what}: exit status {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stderr contains `needle`.
    pub fn expect_stderr(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless stdout contains `needle`.
    pub fn expect_stdout(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `aio ARGS` in `cwd` with extra environment variables.
pub fn aio_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aio"));
    cmd.args(args).current_dir(cwd).env_remove("AIO_ENGINE").env_remove("AIO_PRETEND_NO_URING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("run the aio binary"))
}

/// Runs `cmd` (its environment cleared of the engine overrides) in `cwd`, killing it and
/// failing the test after `limit`.
pub fn run_limited(cmd: &mut Command, limit: std::time::Duration) -> Run {
    cmd.env_remove("AIO_ENGINE").env_remove("AIO_PRETEND_NO_URING");
    let ran = aio_testkit::run(cmd, limit);
    use std::os::unix::process::ExitStatusExt;
    Run {
        // A death by signal shows as 128 + N, as shells report it.
        code: ran.status.code().unwrap_or_else(|| 128 + ran.status.signal().unwrap_or(0)),
        stdout: ran.stdout,
        stderr: ran.stderr,
    }
}

/// Runs `aio ARGS` in `cwd` with its address space limited to `kib` KiB (`ulimit -v`), so that
/// large allocations fail as they do on a machine short of memory.
pub fn aio_ulimit(cwd: &Path, kib: u64, args: &[&str]) -> Run {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v \"$0\" && exec \"$@\"")
        .arg(kib.to_string())
        .arg(env!("CARGO_BIN_EXE_aio"))
        .args(args)
        .current_dir(cwd);
    run_limited(&mut cmd, std::time::Duration::from_secs(120))
}

/// Runs `aio ARGS` in `cwd`.
pub fn aio(cwd: &Path, args: &[&str]) -> Run {
    aio_env(cwd, args, &[])
}

/// Whether we are root (mounting needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A filesystem mounted for one test, unmounted (lazily) on drop.
pub struct Mount {
    pub dir: PathBuf,
    image: Option<PathBuf>,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        if let Some(img) = &self.image {
            let _ = std::fs::remove_file(img);
        }
    }
}

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("{cmd:?}: {e}")),
    }
}

/// A tmpfs of `size` (as mount takes it: `1m`) at `dir`, or why not.
pub fn mount_tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
    if !is_root() {
        return Err("not root: cannot mount a small tmpfs".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir),
    )?;
    Ok(Mount { dir: dir.to_path_buf(), image: None })
}

/// A small ext4 (`mb` MiB) on a loop device at `dir`, or why not.
pub fn mount_ext4(image: &Path, dir: &Path, mb: u64) -> Result<Mount, String> {
    mount_loop("mkfs.ext4", image, dir, mb)
}

/// A small filesystem made by `mkfs` (`mkfs.ext2`: one without `fallocate`) on a loop device at
/// `dir`, or why not.
pub fn mount_loop(mkfs: &str, image: &Path, dir: &Path, mb: u64) -> Result<Mount, String> {
    if !is_root() {
        return Err("not root: cannot mount a loop ext4".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let f = std::fs::File::create(image).map_err(|e| e.to_string())?;
    f.set_len(mb << 20).map_err(|e| e.to_string())?;
    drop(f);
    let cleanup = |e: String| {
        let _ = std::fs::remove_file(image);
        e
    };
    run_ok(Command::new(mkfs).args(["-q", "-F"]).arg(image)).map_err(cleanup)?;
    run_ok(Command::new("mount").args(["-o", "loop"]).arg(image).arg(dir)).map_err(cleanup)?;
    Ok(Mount { dir: dir.to_path_buf(), image: Some(image.to_path_buf()) })
}

/// The filesystem type of `path` (`stat -f -c %T`).
pub fn fs_type(path: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The names in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `aio ARGS` in `cwd` with its standard output on a terminal (`script` gives it a pty):
/// what it printed, or why it could not run.
pub fn aio_on_terminal(cwd: &Path, args: &[&str]) -> Result<(i32, String), String> {
    let mut line = String::from(env!("CARGO_BIN_EXE_aio"));
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(cwd)
        .env("COLUMNS", "120")
        .env("TERM", "xterm")
        .output()
        .map_err(|e| format!("cannot run script(1) for a pseudo-terminal: {e}"))?;
    Ok((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}
