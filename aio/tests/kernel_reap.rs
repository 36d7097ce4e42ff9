//! User-space reaping from the mmapped ring and reaping with io_getevents give the same results.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::time::Duration;

use aio::kernel::{Context, Iocb, RawContext, ReapMode};
use aio::sys::{self, io_event, iocb};
use common::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// Reads `n` blocks at scattered offsets and returns, per user data, (result, bytes read).
fn workload(ctx: &Context<Vec<u8>>, file: &File, n: u64) -> BTreeMap<u64, (i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut next = 0;
    while out.len() < n as usize {
        // Keep up to 32 in flight, submitted in batches.
        let room = (32 - ctx.in_flight()).min((n - next) as usize);
        let batch = (next..next + room as u64).map(|i| {
            let off = (i * 7919 % 1000) * 1000;
            Iocb::pread(file, Vec::with_capacity(1500), off).user_data(i)
        });
        next += ctx.submit_all(batch, Duration::from_secs(10)).unwrap().len() as u64;
        for c in ctx.get_events(1, 8, WAIT).unwrap() {
            let res = c.res();
            let prev = out.insert(c.user_data(), (res, c.into_buf().unwrap()));
            assert!(prev.is_none(), "completed twice");
        }
    }
    out
}

#[test]
fn ring_and_syscall_reaping_agree() {
    let dir = test_dir();
    let path = dir.path().join("reap");
    let data = pattern(1_000_500, 21);
    make_file(&path, &data);
    let file = File::open(&path).unwrap();

    let ring = Context::<Vec<u8>>::new(64).unwrap();
    if ring.reap_mode() != ReapMode::Ring {
        return skip("ring_and_syscall_reaping_agree", "this kernel's ring header is not valid");
    }
    let syscall = Context::<Vec<u8>>::new(64).unwrap();
    syscall.set_reap_mode(ReapMode::Syscall);
    assert_eq!(syscall.reap_mode(), ReapMode::Syscall);

    let a = workload(&ring, &file, 3000);
    let b = workload(&syscall, &file, 3000);
    assert_eq!(a.len(), 3000);
    assert!(a == b, "the two reaping paths disagree");
    for (i, (res, bytes)) in &a {
        let off = ((i * 7919 % 1000) * 1000) as usize;
        let end = (off + 1500).min(data.len());
        assert_eq!(*res as usize, end - off);
        assert_eq!(bytes[..], data[off..end]);
    }
}

#[test]
fn raw_ring_and_getevents_take_each_event_once() {
    let ctx = RawContext::new(128).unwrap();
    if ctx.reap_mode() != ReapMode::Ring {
        return skip("raw_ring_and_getevents_take_each_event_once", "ring header not valid");
    }
    assert!(ctx.ring_capacity().unwrap() >= 128);
    let f = File::open("/dev/zero").unwrap();
    let mut bufs = vec![[1u8; 64]; 100];
    let mut cbs: Vec<iocb> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| {
            let mut cb = iocb::pread(std::os::fd::AsRawFd::as_raw_fd(&f), b.as_mut_ptr(), 64, 0);
            cb.aio_data = i as u64;
            cb
        })
        .collect();
    let ptrs: Vec<*mut iocb> = cbs.iter_mut().map(|c| c as *mut iocb).collect();
    // SAFETY: the iocbs and buffers live until every completion is reaped below.
    assert_eq!(unsafe { ctx.submit(&ptrs) }.unwrap(), 100);
    assert_eq!(ctx.ring_pending(), Some(100), "reads of /dev/zero complete inside io_submit");

    let mut seen = vec![0; 100];
    let mut events = [io_event::default(); 30];
    // 30 from the ring in user space...
    let n = ctx.get_events(30, &mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(n, 30);
    // ...the rest with the system call...
    ctx.set_reap_mode(ReapMode::Syscall);
    let mut count = n;
    let check = |evs: &[io_event], seen: &mut Vec<i32>| {
        for e in evs {
            assert_eq!(e.res, 64);
            assert_eq!(e.obj, ptrs[e.data as usize] as u64);
            seen[e.data as usize] += 1;
        }
    };
    check(&events[..n], &mut seen);
    while count < 70 {
        let n = ctx.get_events(1, &mut events[..10], WAIT).unwrap();
        check(&events[..n], &mut seen);
        count += n;
    }
    // ...and the last 30 from the ring again.
    ctx.set_reap_mode(ReapMode::Ring);
    while count < 100 {
        let n = ctx.get_events(1, &mut events, WAIT).unwrap();
        check(&events[..n], &mut seen);
        count += n;
    }
    assert!(seen.iter().all(|&s| s == 1), "every event exactly once: {seen:?}");
    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
    assert_eq!(ctx.ring_pending(), Some(0));
    assert_eq!(ctx.get_events(0, &mut events, Some(Duration::ZERO)).unwrap(), 0);
    drop(cbs);
}

#[test]
fn ring_header_is_the_kernels() {
    let ctx = RawContext::new(8).unwrap();
    // SAFETY: the context is alive for the whole test and only its header is read.
    match unsafe { aio::sys::ring::Ring::new(ctx.id()) } {
        Some(ring) => {
            assert!(ring.capacity() >= 8);
            assert_eq!(ring.pending(), Some(0));
        }
        None => skip("ring_header_is_the_kernels", "ring header not valid on this kernel"),
    }
    let _ = sys::AIO_RING_MAGIC;
}
