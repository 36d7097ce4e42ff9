//! `AIO_FAULT` and `AIO_STATS` in libaio.so.1: each fault kind of the rules is seen by a C
//! program exactly where the rule says and nowhere else; the same seed gives the same faults
//! and the same log; the statistics line's counts are what the program did.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn build(dir: &Path) -> Option<PathBuf> {
    if !have("gcc") {
        skip("faults_stats", "gcc is not installed");
        return None;
    }
    let exe = dir.join("faults_stats");
    let src = manifest_dir().join("tests/extra/faults_stats.c");
    gcc(&src, &exe, Some(&our_include()), &Link::Dir(ours().lib_dir.clone()), &["-O1"]);
    Some(exe)
}

fn run_with(exe: &Path, mode: &str, env: &[(&str, &str)]) -> (String, String) {
    let data = test_dir(&format!("faults-{mode}"));
    let mut cmd = Command::new(exe);
    cmd.arg(data.path())
        .arg(mode)
        .env("LD_LIBRARY_PATH", &ours().lib_dir)
        .env_remove("LD_PRELOAD")
        .env_remove("AIO_FAULT")
        .env_remove("AIO_STATS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let ran = run(&mut cmd, Duration::from_secs(60));
    assert!(ran.status.success(), "{mode} failed: {}{}", ran.stdout, ran.stderr);
    (ran.stdout, ran.stderr)
}

const RULES: &str = "op=read,path=*.bad,errno=EIO;\
                     op=write,path=*.good,nth=2,errno=ENOSPC;\
                     op=read,path=*.good,offset=8192-12288,short=100;\
                     op=write,path=*.torn,torn=512;\
                     op=fsync,path=*.good,delay=300ms;\
                     op=write,path=*.crash,action=crash";

#[test]
fn each_fault_kind_where_the_rule_says() {
    let dir = test_dir("faults-build");
    let Some(exe) = build(dir.path()) else { return };
    let (out, err) = run_with(&exe, "faults", &[("AIO_FAULT", RULES)]);
    let expected = "\
read of data.bad: Input/output error
read of data.good: 4096
write 1 of data.good: 4096
write 2 of data.good: No space left on device
write 3 of data.good: 4096
read of data.good at 8192: 100
read of data.good at 12288: 4096
write of data.torn: 4096
data.torn holds 512 bytes of the write
fsync of data.good: 0
the fsync took at least 300 ms: yes
write of data.crash: 4096
read of data.good after the crash: Input/output error
";
    assert_eq!(out, expected, "stderr:\n{err}");
    let (clean, _) = run_with(&exe, "faults", &[]);
    assert!(!clean.contains("error") && !clean.contains("space"), "{clean}");
    assert!(clean.contains("data.torn holds 4096 bytes"), "{clean}");
}

#[test]
fn same_seed_same_faults_and_log() {
    let dir = test_dir("faults-seed");
    let Some(exe) = build(dir.path()) else { return };
    let logs = test_dir("faults-logs");
    aio_testkit::check_seeded_faults(logs.path(), |env| run_with(&exe, "writes", env).0);
}

#[test]
fn the_statistics_line_counts_what_the_program_did() {
    let dir = test_dir("stats-build");
    let Some(exe) = build(dir.path()) else { return };
    let (out, err) = run_with(&exe, "stats", &[("AIO_STATS", "1")]);
    assert!(out.contains("read of a bad descriptor: refused -9"), "{out}");
    let line = err
        .lines()
        .find(|l| l.starts_with("libaio.so.1: "))
        .unwrap_or_else(|| panic!("no statistics line on stderr:\n{err}"));
    assert_eq!(
        line,
        "libaio.so.1: 9 requests (read 4, write 3, fsync 1, fdatasync 1) on kernel AIO: 0 \
         inline, 9 asynchronous; errors 0; refused 1; cancelled 0; most in flight 1"
    );
    let (_, quiet) = run_with(&exe, "stats", &[]);
    assert!(!quiet.contains("libaio.so.1: "), "{quiet}");
}
