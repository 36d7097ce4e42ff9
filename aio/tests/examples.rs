//! The seed's two programs, in Rust: `read_file` and `copy`, run as a user would run them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn example(name: &str) -> PathBuf {
    let path = examples_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo test builds them)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&Path]) -> Output {
    Command::new(example(name)).args(args).output().expect("run the example")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn read_file_prints_the_byte_count() {
    let dir = test_dir();
    for (len, expect) in [(5000usize, 1024usize), (100, 100), (0, 0)] {
        let path = dir.path().join(format!("in-{len}"));
        make_file(&path, &pattern(len, 1));
        let out = run("read_file", &[&path]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            format!("read {expect} bytes from {}", path.display())
        );
    }
}

#[test]
fn read_file_reports_a_missing_file() {
    let dir = test_dir();
    let path = dir.path().join("missing");
    let out = run("read_file", &[&path]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&path.display().to_string()) && err.contains("No such file"), "{err}");
}

fn check_copy(dir: &Path, size: usize, direct: bool) {
    let src = dir.join(format!("src-{size}"));
    let dst = dir.join(format!("dst-{size}-{direct}"));
    let data = pattern(size, size as u64);
    make_file(&src, &data);
    let mut cmd = Command::new(example("copy"));
    cmd.arg(&src).arg(&dst);
    if direct {
        cmd.arg("--direct");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "copy of {size} bytes failed: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("copied {size} bytes")), "{}", text(&out.stdout));
    let back = std::fs::read(&dst).unwrap();
    assert_eq!(back.len(), size, "size of the copy of {size} bytes (direct: {direct})");
    assert!(back == data, "the copy of {size} bytes differs (direct: {direct})");
}

const SIZES: [usize; 9] =
    [0, 1, 511, 4096, 4097, 1 << 20, (1 << 20) + 1, (5 << 20) + 4095, (40 << 20) + 12_345];

#[test]
fn copy_any_size_buffered() {
    let dir = test_dir();
    for size in SIZES {
        check_copy(dir.path(), size, false);
    }
}

#[test]
fn copy_any_size_direct() {
    let dir = test_dir();
    if let Err(reason) = direct_support(dir.path()) {
        return skip("copy_any_size_direct", &reason);
    }
    for size in SIZES {
        check_copy(dir.path(), size, true);
    }
}

#[test]
fn copy_reports_bad_paths() {
    let dir = test_dir();
    let src = dir.path().join("src");
    make_file(&src, b"data");
    let missing = dir.path().join("missing");
    let out = run("copy", &[&missing, &dir.path().join("out")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&missing.display().to_string()) && err.contains("No such file"), "{err}");

    let out = run("copy", &[&src, &src]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("same file"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&src).unwrap(), b"data", "the source is untouched");

    let out = run("copy", &[dir.path(), &dir.path().join("out")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a regular file"), "{}", text(&out.stderr));
}

#[test]
fn async_copy_any_size_on_every_engine() {
    let dir = test_dir();
    let direct = match direct_support(dir.path()) {
        Ok(_) => vec![false, true],
        Err(reason) => {
            skip("async_copy_any_size_on_every_engine (O_DIRECT)", &reason);
            vec![false]
        }
    };
    for engine in ["uring", "kernel", "pool"] {
        for &d in &direct {
            for size in [0usize, 1, 4097, (3 << 20) + 12_345] {
                let src = dir.path().join(format!("asrc-{size}"));
                let dst = dir.path().join(format!("adst-{size}-{engine}-{d}"));
                let data = pattern(size, size as u64 + 1);
                make_file(&src, &data);
                let mut cmd = Command::new(example("async_copy"));
                cmd.arg(&src).arg(&dst).env("AIO_ENGINE", engine);
                if d {
                    cmd.arg("--direct");
                }
                let out = cmd.output().unwrap();
                let stdout = text(&out.stdout);
                if !out.status.success()
                    && engine == "uring"
                    && text(&out.stderr).contains("io_uring")
                {
                    skip("async_copy_any_size_on_every_engine [uring]", text(&out.stderr).trim());
                    break;
                }
                assert!(
                    out.status.success(),
                    "{engine} direct={d} size={size}: {}",
                    text(&out.stderr)
                );
                assert!(stdout.contains(&format!("with the {engine} (forced) driver")), "{stdout}");
                assert!(
                    std::fs::read(&dst).unwrap() == data,
                    "{engine} direct={d}: copy of {size} bytes differs"
                );
            }
        }
    }
    let out = Command::new(example("async_copy"))
        .arg(dir.path().join("nope"))
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("No such file"), "{}", text(&out.stderr));
}
