//! fio's libaio engine on our library: fio resolves libaio.so.1 to ours under
//! `LD_LIBRARY_PATH`, and its jobs (O_DIRECT random reads, with the kernel reaping and with
//! fio's own `userspace_reap`, and random writes verified by reading them back) finish with
//! `err= 0`. Skipped when fio is not installed (scripts/install-test-deps.sh installs it).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn fio_path() -> Option<std::path::PathBuf> {
    let ran = run(Command::new("sh").args(["-c", "command -v fio"]), Duration::from_secs(10));
    let path = ran.stdout.trim();
    (ran.status.success() && !path.is_empty()).then(|| path.into())
}

/// Runs one fio job on a file in `dir` with our library; returns fio's output.
fn fio(dir: &Path, name: &str, args: &[&str]) -> String {
    let ours = ours();
    let mut cmd = Command::new("fio");
    // In `dir`, with no verify state saved: fio would otherwise leave files in the cwd.
    cmd.current_dir(dir)
        .env("LD_LIBRARY_PATH", &ours.lib_dir)
        .env_remove("LD_PRELOAD")
        .arg("--verify_state_save=0")
        .arg(format!("--name={name}"))
        .arg(format!("--filename={}", dir.join("fio.dat").display()))
        .args(["--ioengine=libaio", "--direct=1", "--bs=4k", "--size=16M"])
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
    let _ = std::io::stderr()
        .write_all(format!("fio {name}: {}\n", summary.join(" | ").trim()).as_bytes());
    out
}

#[test]
fn fio_resolves_libaio_to_ours() {
    let Some(fio) = fio_path() else {
        return skip("fio_resolves_libaio_to_ours", "fio is not installed");
    };
    let ours = ours();
    let ran = run(
        Command::new("ldd").arg(&fio).env("LD_LIBRARY_PATH", &ours.lib_dir),
        Duration::from_secs(30),
    );
    assert!(ran.status.success(), "ldd {}: {}", fio.display(), ran.stderr);
    let resolved = parse_ldd(&ran.stdout);
    assert_eq!(
        resolved,
        Some(std::fs::canonicalize(&ours.library).expect("canonical path")),
        "ldd {} with LD_LIBRARY_PATH={}:\n{}",
        fio.display(),
        ours.lib_dir.display(),
        ran.stdout
    );
}

#[test]
fn fio_libaio_engine_runs_without_errors() {
    if fio_path().is_none() {
        return skip("fio_libaio_engine_runs_without_errors", "fio is not installed");
    }
    let dir = test_dir("fio");
    let out = fio(
        dir.path(),
        "randread",
        &["--rw=randread", "--iodepth=32", "--iodepth_batch_complete_min=1"],
    );
    assert!(out.contains("read:"), "{out}");
    fio(
        dir.path(),
        "randread-userspace-reap",
        &["--rw=randread", "--iodepth=32", "--userspace_reap=1"],
    );
    fio(
        dir.path(),
        "randwrite-verify",
        &["--rw=randwrite", "--iodepth=16", "--verify=crc32c", "--do_verify=1"],
    );
    fio(dir.path(), "randrw-qd1", &["--rw=randrw", "--iodepth=1", "--size=4M"]);
}
