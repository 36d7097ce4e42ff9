//! io_uring options: registered buffers, the registered file table, SQPOLL, the probe.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use aio::driver::{Buf, Driver, Request, UringDriver, UringOptions};
use aio::AlignedBuf;
use common::drivers::reap_n;
use common::*;

fn driver(test: &str, opts: UringOptions) -> Option<UringDriver> {
    match UringDriver::new(opts) {
        Ok(d) => Some(d),
        Err(e) => {
            skip(test, &e.to_string());
            None
        }
    }
}

#[test]
fn the_probe_reports_what_the_driver_needs() {
    let Some(d) = driver("the_probe_reports_what_the_driver_needs", UringOptions::default()) else {
        return;
    };
    let p = d.probe();
    for op in ["read", "write", "readv", "writev", "fsync", "async_cancel"] {
        assert!(p.supports(op), "{op} must be supported for the driver to exist");
    }
    assert!(!p.supports("no_such_op"));
}

#[test]
fn registered_buffers_and_files() {
    let opts = UringOptions {
        fixed_buffers: Some((4, 64 << 10)),
        fixed_files: 8,
        ..UringOptions::default()
    };
    let Some(d) = driver("registered_buffers_and_files", opts) else { return };
    let dir = test_dir();
    let path = dir.path().join("fixed");
    let (file, direct) = match direct_support(dir.path()) {
        Ok(_) => (open_direct(&path), true),
        Err(reason) => {
            skip("registered_buffers_and_files (O_DIRECT)", &reason);
            (open_rw(&path), false)
        }
    };
    d.register_file(&file).unwrap();
    let fd = file.as_raw_fd();

    // Four buffers are lent out, then there are none.
    let mut bufs: Vec<_> = (0..4).map(|_| d.fixed_buffer().expect("a free buffer")).collect();
    assert!(d.fixed_buffer().is_none());
    let data = pattern(64 << 10, 9);
    let mut w = bufs.pop().unwrap();
    w.as_full_mut_slice().copy_from_slice(&data);
    w.set_len(data.len());
    d.queue(Request::write(fd, Buf::for_write(w), 0, 1)).unwrap();
    let c = reap_n(&d, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), data.len());
    drop(c); // the buffer goes back to the driver
    assert!(d.fixed_buffer().is_some(), "a dropped buffer is free again");

    let r = bufs.pop().unwrap();
    d.queue(Request::read(fd, Buf::for_read(r), 0, 2)).unwrap();
    let c = reap_n(&d, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), data.len());
    // SAFETY: made by for_read from a FixedBuf; the driver reports the bytes read.
    let r: aio::driver::FixedBuf = unsafe { c.buf.take_filled(c.res as usize) }.unwrap();
    assert_eq!(r.as_slice(), &data[..]);

    // Ordinary buffers still work next to registered ones (and with O_DIRECT).
    let plain = AlignedBuf::new(4096, 4096);
    d.queue(Request::read(fd, Buf::for_read(plain), 4096, 3)).unwrap();
    assert_eq!(reap_n(&d, 1)[0].result().unwrap(), 4096);
    d.unregister_file(&file).unwrap();
    d.queue(Request::read(fd, Buf::for_read(AlignedBuf::new(4096, 4096)), 0, 4)).unwrap();
    assert_eq!(reap_n(&d, 1)[0].result().unwrap(), 4096, "unregistered, by descriptor again");
    let _ = direct;

    // The table has 8 slots.
    let files: Vec<_> = (0..9).map(|i| open_rw(&dir.path().join(format!("f{i}")))).collect();
    for f in &files[..8] {
        d.register_file(f).unwrap();
    }
    let err = d.register_file(&files[8]).unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
}

#[test]
fn sqpoll_submits_without_system_calls() {
    let opts = UringOptions { sqpoll: Some(Duration::from_millis(50)), ..UringOptions::default() };
    let Some(d) = driver("sqpoll_submits_without_system_calls", opts) else { return };
    assert!(d.is_sqpoll());
    let dir = test_dir();
    let path = dir.path().join("sq");
    let data = pattern(1 << 20, 10);
    make_file(&path, &data);
    let file = std::fs::File::open(&path).unwrap();
    for i in 0..100u64 {
        let buf = Buf::for_read(AlignedBuf::new(4096, 4096));
        d.queue(Request::read(file.as_raw_fd(), buf, i * 4096, i)).unwrap();
    }
    for c in reap_n(&d, 100) {
        let off = c.user_data as usize * 4096;
        let mut got = vec![0u8; 4096];
        c.buf.gather(&mut got);
        assert_eq!(got, data[off..off + 4096]);
    }
}

#[test]
fn a_cooperative_ring_posts_completions_when_reaped() {
    let opts = UringOptions { coop_taskrun: true, ..UringOptions::default() };
    let Some(d) = driver("a_cooperative_ring_posts_completions_when_reaped", opts) else { return };
    let dir = test_dir();
    let path = dir.path().join("coop");
    let data = pattern(1 << 20, 11);
    make_file(&path, &data);
    let (file, direct) = match direct_support(dir.path()) {
        Ok(_) => (open_direct(&path), true),
        Err(reason) => {
            skip("a_cooperative_ring_posts_completions_when_reaped (O_DIRECT)", &reason);
            (std::fs::File::open(&path).unwrap(), false)
        }
    };
    // O_DIRECT completions need this task: reap (waiting) and poll (looking) must both get
    // them posted.
    for round in 0..2 {
        for i in 0..32u64 {
            let buf = Buf::for_read(AlignedBuf::new(4096, 4096));
            d.queue(Request::read(file.as_raw_fd(), buf, i * 4096, i)).unwrap();
        }
        let done = if round == 0 {
            reap_n(&d, 32)
        } else {
            d.flush().unwrap();
            let mut out = Vec::new();
            let start = std::time::Instant::now();
            while out.len() < 32 {
                assert!(start.elapsed() < Duration::from_secs(20), "poll never saw them");
                d.poll(32, &mut out).unwrap();
            }
            out
        };
        for c in done {
            let off = c.user_data as usize * 4096;
            let mut got = vec![0u8; 4096];
            c.buf.gather(&mut got);
            assert_eq!(got, data[off..off + 4096], "direct: {direct}");
        }
    }
    // No eventfd: nothing would post completions while a waiter sleeps on it.
    assert_eq!(d.eventfd().unwrap_err().kind(), std::io::ErrorKind::Unsupported);
}
