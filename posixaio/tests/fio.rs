//! fio's posixaio engine on our library: with `LD_PRELOAD`, fio's `aio_read64`, `aio_error64`,
//! … (fio is built with 64-bit offsets) bind to ours, and its jobs — 4 KiB random reads at
//! queue depth 32, O_DIRECT and buffered; random writes with fsyncs, verified by reading them
//! back — finish with `err= 0`. Skipped when fio is not installed
//! (scripts/install-test-deps.sh installs it).

mod common;

use std::ffi::CString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Runs one fio job on a file in `dir` with our library preloaded; returns fio's output.
fn fio(dir: &Path, name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("fio");
    cmd.env("LD_PRELOAD", &ours().library).env_remove("AIO_ENGINE");
    aio_testkit::fio_job(cmd, dir, name, &["--ioengine=posixaio", "--bs=4k", "--size=16M"], args)
}

/// Whether files in `dir` can be opened with O_DIRECT.
fn direct_works(dir: &Path) -> Result<(), String> {
    let path = dir.join(".direct-probe");
    let c = CString::new(path.to_str().expect("a UTF-8 path")).expect("no NUL in the path");
    // SAFETY: a valid NUL-terminated path; the descriptor is closed right away.
    let fd = unsafe {
        libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_DIRECT, 0o644 as libc::c_uint)
    };
    let err = std::io::Error::last_os_error();
    let _ = std::fs::remove_file(&path);
    if fd < 0 {
        return Err(format!(
            "{} does not support O_DIRECT ({err}); set AIO_TEST_DIR to a directory on ext4 or xfs",
            dir.display()
        ));
    }
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

#[test]
fn fio_binds_the_posixaio_calls_to_ours() {
    if which("fio").is_none() {
        return skip("fio_binds_the_posixaio_calls_to_ours", "fio is not installed");
    }
    let dir = test_dir("fio-bind");
    let mut cmd = Command::new("fio");
    cmd.current_dir(dir.path())
        .env("LD_PRELOAD", &ours().library)
        .env("LD_DEBUG", "bindings")
        .arg("--name=bind")
        .arg(format!("--filename={}", dir.path().join("fio.dat").display()))
        .args(["--ioengine=posixaio", "--rw=randread", "--bs=4k", "--size=1M", "--iodepth=4"]);
    let ran = run(&mut cmd, Duration::from_secs(120));
    assert!(ran.status.success(), "fio failed: {}{}", ran.stdout, ran.stderr);
    let library = ours().library.display().to_string();
    for symbol in ["aio_read64", "aio_error64", "aio_return64", "aio_suspend64"] {
        let line = ran
            .stderr
            .lines()
            .find(|l| l.contains("binding file") && l.contains(&format!("symbol `{symbol}'")))
            .unwrap_or_else(|| panic!("fio never bound {symbol} (LD_DEBUG=bindings)"));
        assert!(line.contains(&format!(" to {library} ")), "{symbol} bound elsewhere: {line}");
    }
}

#[test]
fn fio_posixaio_random_reads_direct() {
    if which("fio").is_none() {
        return skip("fio_posixaio_random_reads_direct", "fio is not installed");
    }
    let dir = test_dir("fio-direct");
    if let Err(why) = direct_works(dir.path()) {
        return skip("fio_posixaio_random_reads_direct", &why);
    }
    let out =
        fio(dir.path(), "randread-direct-qd32", &["--rw=randread", "--direct=1", "--iodepth=32"]);
    assert!(out.contains("read:"), "{out}");
}

#[test]
fn fio_posixaio_random_reads_buffered() {
    if which("fio").is_none() {
        return skip("fio_posixaio_random_reads_buffered", "fio is not installed");
    }
    let dir = test_dir("fio-buffered");
    let out =
        fio(dir.path(), "randread-buffered-qd32", &["--rw=randread", "--direct=0", "--iodepth=32"]);
    assert!(out.contains("read:"), "{out}");
    fio(dir.path(), "randread-buffered-qd1", &["--rw=randread", "--direct=0", "--iodepth=1"]);
}

#[test]
fn fio_posixaio_verified_writes_with_fsync() {
    if which("fio").is_none() {
        return skip("fio_posixaio_verified_writes_with_fsync", "fio is not installed");
    }
    let dir = test_dir("fio-write");
    let verify = ["--verify=crc32c", "--do_verify=1", "--iodepth=16", "--fsync=8"];
    let mut args = vec!["--rw=randwrite", "--direct=0"];
    args.extend(verify);
    fio(dir.path(), "randwrite-verify-buffered", &args);
    if direct_works(dir.path()).is_ok() {
        let mut args = vec!["--rw=randwrite", "--direct=1"];
        args.extend(verify);
        fio(dir.path(), "randwrite-verify-direct", &args);
    } else {
        skip("fio_posixaio_verified_writes_with_fsync (O_DIRECT)", "no O_DIRECT here");
    }
}
