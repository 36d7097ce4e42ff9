//! Under valgrind's memcheck, a program on our library reports no error that it does not
//! report on glibc: what a read filled through io_uring (which memcheck cannot follow) is
//! marked as defined. The program (`valgrind_copy.c`) reads a file with `aio_read` into a fresh
//! buffer, branches on its bytes and writes them out.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// memcheck's error count for one run ("ERROR SUMMARY: N errors"), and the program's output.
fn memcheck(exe: &Path, dir: &Path, with: With) -> (usize, String) {
    let src = dir.join("src.txt");
    let text: String = (0..65536).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    std::fs::write(&src, text).expect("write SRC");
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=memcheck", "--error-exitcode=0", "--child-silent-after-fork=yes"])
        .arg(exe)
        .arg(&src)
        .arg(dir.join("dst.txt"));
    with.apply(&mut cmd);
    let ran = run(&mut cmd, Duration::from_secs(180));
    assert!(
        ran.status.success(),
        "valgrind ({}) failed: {}{}",
        with.label(),
        ran.stdout,
        ran.stderr
    );
    let errors = ran
        .stderr
        .lines()
        .find_map(|l| l.split("ERROR SUMMARY: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ERROR SUMMARY from valgrind:\n{}", ran.stderr));
    (errors, format!("{}{}", ran.stdout, ran.stderr))
}

#[test]
fn memcheck_reports_nothing_more_than_on_glibc() {
    let name = "memcheck_reports_nothing_more_than_on_glibc";
    if !have("valgrind") {
        return skip(name, "valgrind is not installed");
    }
    if !have("gcc") {
        return skip(name, "gcc is not installed");
    }
    let dir = test_dir("valgrind");
    let exe = dir.path().join("valgrind_copy");
    gcc(&manifest_dir().join("tests/extra/valgrind_copy.c"), &exe, None, &["-O1", "-g"]);
    let (glibc, glibc_out) = memcheck(&exe, dir.path(), With::Glibc);
    assert!(glibc_out.contains("read 65536 bytes, 65536 letters"), "glibc:\n{glibc_out}");
    for engine in ["uring", "kernel", "pool"] {
        let (ours, out) = memcheck(&exe, dir.path(), With::Ours(Some(engine)));
        assert!(out.contains("read 65536 bytes, 65536 letters"), "ours ({engine}):\n{out}");
        assert!(
            ours <= glibc,
            "memcheck finds {ours} errors with ours ({engine}), {glibc} with glibc:\n{out}"
        );
    }
}
