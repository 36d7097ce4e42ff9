//! Under valgrind's memcheck, the seed's libaio_copy.c on our library reports no error that it
//! does not report on the system's libaio. It reads with io_submit(PREAD), then writes the same
//! buffer with io_submit(PWRITE): memcheck learns that the read filled the buffer only from the
//! io_getevents system call, so our library, which takes completions from the ring in user
//! space, takes them with the system call under valgrind (otherwise memcheck reports
//! "io_submit(PWRITE) points to uninitialised byte(s)").

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// memcheck's error count ("ERROR SUMMARY: N errors") and the output, for one run of the copy.
fn memcheck(exe: &Path, lib_path: Option<&Path>, dir: &Path) -> (usize, String) {
    let src = dir.join("src.bin");
    let dst = dir.join("dst.bin");
    let data: Vec<u8> = (0..4096u32).map(|i| b'A' + (i % 26) as u8).collect();
    std::fs::write(&src, data).expect("write SRC");
    std::fs::write(&dst, b"").expect("create DST");
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=memcheck", "--error-exitcode=0"])
        .arg(exe)
        .arg(&src)
        .arg(&dst)
        .env_remove("LD_PRELOAD");
    match lib_path {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let ran = run(&mut cmd, Duration::from_secs(180));
    let out = format!("{}{}", ran.stdout, ran.stderr);
    let errors = ran
        .stderr
        .lines()
        .find_map(|l| l.split("ERROR SUMMARY: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ERROR SUMMARY from valgrind:\n{out}"));
    assert!(out.contains("1 io_request completed"), "the copy did not complete:\n{out}");
    (errors, out)
}

#[test]
fn memcheck_reports_nothing_more_than_with_the_system_libaio() {
    let name = "memcheck_reports_nothing_more_than_with_the_system_libaio";
    let Some(seed) = aio_testkit::seed_file(&manifest_dir().join(".."), "libaio_copy.c") else {
        return skip(name, "libaio_copy.c is in none of $AIO_SEED_DIR, ../shared/seed, seed/");
    };
    if !have("valgrind") {
        return skip(name, "valgrind is not installed");
    }
    if !have("gcc") {
        return skip(name, "gcc is not installed");
    }
    let dir = test_dir("valgrind");
    let ours = ours();
    let mine = dir.path().join("copy-ours");
    gcc(&seed, &mine, Some(&our_include()), &Link::Dir(ours.lib_dir.clone()), &["-w", "-g"]);
    let run_dir = test_dir("valgrind-ours");
    let (errors, out) = memcheck(&mine, Some(&ours.lib_dir), run_dir.path());
    let Some(sys) = system_lib() else {
        assert_eq!(errors, 0, "memcheck errors with ours:\n{out}");
        return skip(name, "no system libaio.so.1 to compare with; ours checked for 0 errors");
    };
    let theirs = dir.path().join("copy-system");
    gcc(&seed, &theirs, Some(&our_include()), &Link::Path(sys), &["-w", "-g"]);
    let run_dir = test_dir("valgrind-system");
    let (sys_errors, sys_out) = memcheck(&theirs, None, run_dir.path());
    assert!(
        errors <= sys_errors,
        "memcheck finds {errors} errors with ours, {sys_errors} with the system's libaio.\n\
         --- ours\n{out}\n--- system\n{sys_out}"
    );
}
