//! Choosing a driver: the fallback chain ends on a working driver and says why; forcing an
//! engine that cannot work is an error.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;

use aio::driver::{select_with, Buf, Driver, Engine, Request, SelectOptions};
use aio::AlignedBuf;
use common::drivers::reap_n;
use common::*;

fn works(driver: &Arc<dyn Driver>, file: &File, data: &[u8]) {
    let buf = Buf::for_read(AlignedBuf::new(4096, 4096));
    driver.queue(Request::read(file.as_raw_fd(), buf, 4096, 9)).unwrap();
    let c = reap_n(&**driver, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), 4096, "{}", driver.name());
    let mut got = vec![0u8; 4096];
    c.buf.gather(&mut got);
    assert_eq!(got, data[4096..8192]);
}

fn pretend() -> SelectOptions {
    SelectOptions {
        ignore_env: true,
        pretend_uring_unavailable: Some("io_uring_setup: pretend for the test".into()),
        ..SelectOptions::default()
    }
}

#[test]
fn the_best_available_engine_is_chosen() {
    let dir = test_dir();
    let path = dir.path().join("f");
    let data = pattern(1 << 20, 1);
    make_file(&path, &data);
    let file = File::open(&path).unwrap();
    let opts = SelectOptions { ignore_env: true, ..SelectOptions::default() };
    let (driver, sel) = select_with(&file, &opts).unwrap();
    match aio::driver::UringDriver::new(Default::default()) {
        Ok(_) => {
            assert_eq!(sel.engine, Engine::Uring, "{sel}");
            assert!(sel.skipped.is_empty());
        }
        Err(e) => {
            skip("the_best_available_engine_is_chosen (uring)", &e.to_string());
            assert_eq!(sel.skipped[0].0, Engine::Uring);
        }
    }
    assert!(!sel.forced);
    works(&driver, &file, &data);
}

#[test]
fn without_io_uring_an_o_direct_file_gets_kernel_aio() {
    let dir = test_dir();
    if let Err(reason) = direct_support(dir.path()) {
        return skip("without_io_uring_an_o_direct_file_gets_kernel_aio", &reason);
    }
    let path = dir.path().join("d");
    let data = pattern(1 << 20, 2);
    make_file(&path, &data);
    let file = open_direct(&path);
    let (driver, sel) = select_with(&file, &pretend()).unwrap();
    assert_eq!(sel.engine, Engine::Kernel, "{sel}");
    assert_eq!(driver.name(), "kernel");
    assert_eq!(sel.skipped.len(), 1);
    assert_eq!(sel.skipped[0].0, Engine::Uring);
    assert!(sel.to_string().contains("pretend for the test"), "{sel}");
    works(&driver, &file, &data);
}

#[test]
fn without_io_uring_a_buffered_file_gets_the_pool() {
    let dir = test_dir();
    let path = dir.path().join("b");
    let data = pattern(1 << 20, 3);
    make_file(&path, &data);
    let file = File::open(&path).unwrap();
    let (driver, sel) = select_with(&file, &pretend()).unwrap();
    assert_eq!(sel.engine, Engine::Pool, "{sel}");
    assert_eq!(driver.name(), "pool");
    let reasons: Vec<_> = sel.skipped.iter().map(|(e, _)| *e).collect();
    assert_eq!(reasons, [Engine::Uring, Engine::Kernel]);
    assert!(sel.skipped[1].1.contains("O_DIRECT"), "{sel}");
    works(&driver, &file, &data);
}

#[test]
fn forcing_an_engine_that_cannot_work_is_an_error() {
    let dir = test_dir();
    let path = dir.path().join("x");
    make_file(&path, &pattern(1 << 20, 4));
    let buffered = File::open(&path).unwrap();
    let force = |engine| SelectOptions { engine: Some(engine), ..pretend() };

    let err = select_with(&buffered, &force(Engine::Kernel)).err().expect("kernel on buffered");
    assert!(err.to_string().contains("O_DIRECT"), "{err}");
    let err = select_with(&buffered, &force(Engine::Uring)).err().expect("uring unavailable");
    assert!(err.to_string().contains("pretend for the test"), "{err}");
    let (driver, sel) = select_with(&buffered, &force(Engine::Pool)).unwrap();
    assert!(sel.forced);
    assert_eq!(driver.name(), "pool");
}

/// Run in a child process with `AIO_ENGINE` set (see `aio_engine_is_honoured`).
#[test]
#[ignore = "run by aio_engine_is_honoured in a child process"]
fn child_prints_selection() {
    let file = File::open("/proc/self/exe").unwrap();
    match aio::driver::select(&file) {
        Ok((driver, sel)) => println!("SELECTED {} {}", driver.name(), sel),
        Err(e) => println!("ERROR {e}"),
    }
}

#[test]
fn aio_engine_is_honoured() {
    let exe = std::env::current_exe().unwrap();
    let run = |value: &str| {
        let out = Command::new(&exe)
            .args(["--exact", "child_prints_selection", "--include-ignored", "--nocapture"])
            .env("AIO_ENGINE", value)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("SELECTED") || l.starts_with("ERROR"))
            .unwrap_or("")
            .to_string()
    };
    assert!(run("pool").starts_with("SELECTED pool pool (forced)"), "{}", run("pool"));
    let kernel = run("kernel");
    assert!(kernel.starts_with("ERROR") && kernel.contains("O_DIRECT"), "{kernel}");
    let bogus = run("bogus");
    assert!(bogus.starts_with("ERROR") && bogus.contains("AIO_ENGINE"), "{bogus}");
    let uring = run("uring");
    match aio::driver::UringDriver::new(Default::default()) {
        Ok(_) => assert!(uring.starts_with("SELECTED uring"), "{uring}"),
        Err(_) => assert!(uring.starts_with("ERROR"), "{uring}"),
    }
}
