//! fio's libaio engine on our library: fio resolves libaio.so.1 to ours under
//! `LD_LIBRARY_PATH`, and its jobs (O_DIRECT random reads, with the kernel reaping and with
//! fio's own `userspace_reap`, and random writes verified by reading them back) finish with
//! `err= 0`. Skipped when fio is not installed (scripts/install-test-deps.sh installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Runs one fio job on a file in `dir` with our library; returns fio's output.
fn fio(dir: &Path, name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("fio");
    cmd.env("LD_LIBRARY_PATH", &ours().lib_dir).env_remove("LD_PRELOAD");
    let engine = ["--ioengine=libaio", "--direct=1", "--bs=4k", "--size=16M"];
    aio_testkit::fio_job(cmd, dir, name, &engine, args)
}

#[test]
fn fio_resolves_libaio_to_ours() {
    let Some(fio) = which("fio") else {
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
    if which("fio").is_none() {
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
