//! `AIO_FAULT` and `AIO_STATS` in libposixaio.so: each fault kind of the rules is seen by a C
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
    gcc(&manifest_dir().join("tests/extra/faults_stats.c"), &exe, None, &["-O1"]);
    Some(exe)
}

fn run_with(exe: &Path, mode: &str, env: &[(&str, &str)]) -> (String, String) {
    let data = test_dir(&format!("faults-{mode}"));
    let mut cmd = Command::new(exe);
    cmd.arg(data.path()).arg(mode);
    With::Ours(None).apply(&mut cmd);
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
read of data.bad: -1 Input/output error
read of data.good: 4096 ok
write 1 of data.good: 4096 ok
write 2 of data.good: -1 No space left on device
write 3 of data.good: 4096 ok
read of data.good at 8192: 100 ok
read of data.good at 12288: 4096 ok
write of data.torn: 4096 ok
data.torn holds 512 bytes of the write
fsync of data.good: 0 ok
the fsync took at least 300 ms: yes
write of data.crash: 4096 ok
read of data.good after the crash: -1 Input/output error
";
    assert_eq!(out, expected, "stderr:\n{err}");
    // Without the rules: no fault anywhere.
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
    assert!(out.contains("cancel of a pipe read: AIO_CANCELED"), "{out}");
    let line = err
        .lines()
        .find(|l| l.starts_with("libposixaio: "))
        .unwrap_or_else(|| panic!("no statistics line on stderr:\n{err}"));
    assert!(
        line.starts_with(
            "libposixaio: 11 requests (read 6, write 3, fsync 1, fdatasync 1) on uring: "
        ) || line.contains(" on kernel: ")
            || line.contains(" on pool: "),
        "{line}"
    );
    assert!(line.contains("11 requests (read 6, write 3, fsync 1, fdatasync 1)"), "{line}");
    let num = |after: &str| -> u64 {
        let rest = line.split(after).nth(1).unwrap_or_else(|| panic!("no `{after}` in {line}"));
        rest.trim_start_matches([' ', '('])
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let inline: u64 = line.split(": ").nth(2).unwrap().split(' ').next().unwrap().parse().unwrap();
    let asynchronous = num("inline, ");
    assert_eq!(inline + asynchronous, 11, "{line}");
    assert!(inline >= 4, "the cached reads were not served inline: {line}");
    assert!(line.contains("errors 2 (EBADF 1, ECANCELED 1)"), "{line}");
    assert_eq!(num("refused "), 0, "{line}");
    assert_eq!(num("cancelled "), 1, "{line}");
    assert!(num("most in flight ") >= 1, "{line}");
    // Off by default: no line.
    let (_, quiet) = run_with(&exe, "stats", &[]);
    assert!(!quiet.contains("libposixaio: "), "{quiet}");
}
