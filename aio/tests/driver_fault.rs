//! Fault injection: the same workload under each fault mode reports each injected failure on
//! its own request and nothing else; the same seed gives the same faults; after a simulated
//! crash, completed writes are there and nothing after the crash is reported done.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio::driver::{
    Buf, Completion, Driver, FaultConfig, FaultDriver, MemDriver, PoolDriver, PoolOptions, Request,
    UringDriver, UringOptions,
};
use aio::AlignedBuf;
use common::drivers::reap_n;
use common::*;

const SIZE: usize = 8 << 20;
const BLK: usize = 4096;

/// What each request ended as: its result and, for reads, the bytes it returned.
type Outcomes = BTreeMap<u64, (i64, Vec<u8>)>;

/// An inner driver over a fresh file holding `data` (or a RAM disk), and the file's path.
fn inner(
    kind: &str,
    dir: &std::path::Path,
    data: &[u8],
) -> Option<(Arc<dyn Driver>, i32, Option<std::path::PathBuf>)> {
    use std::os::fd::IntoRawFd;
    match kind {
        "mem" => Some((Arc::new(MemDriver::with_contents(data.to_vec())), -1, None)),
        "uring" | "pool" => {
            let path = dir.join(format!("{kind}.img"));
            make_file(&path, data);
            // The descriptor lives as long as the test process; the file is in a temp dir.
            let fd = open_rw(&path).into_raw_fd();
            let d: Arc<dyn Driver> = if kind == "uring" {
                match UringDriver::new(UringOptions::default()) {
                    Ok(d) => Arc::new(d),
                    Err(e) => {
                        skip("fault injection over uring", &e.to_string());
                        return None;
                    }
                }
            } else {
                Arc::new(PoolDriver::new(PoolOptions::default()))
            };
            Some((d, fd, Some(path)))
        }
        _ => unreachable!(),
    }
}

/// 2000 reads of distinct blocks, 64 in flight; returns every outcome.
fn read_workload(d: &dyn Driver, fd: i32) -> Outcomes {
    let mut out = Outcomes::new();
    let total = 2000u64;
    let mut next = 0;
    while (out.len() as u64) < total {
        while next < total && d.in_flight() < 64 {
            let buf = Buf::for_read(AlignedBuf::new(BLK, BLK));
            d.queue(Request::read(fd, buf, next * BLK as u64, next)).unwrap();
            next += 1;
        }
        let mut done = Vec::new();
        d.reap(1, 64, Some(Duration::from_secs(20)), &mut done).unwrap();
        assert!(!done.is_empty(), "stalled");
        for c in done {
            let mut bytes = vec![0u8; c.res.max(0) as usize];
            c.buf.gather(&mut bytes);
            assert!(out.insert(c.user_data, (c.res, bytes)).is_none(), "completed twice");
        }
    }
    out
}

fn failures(o: &Outcomes) -> BTreeSet<u64> {
    o.iter().filter(|(_, (res, _))| *res < 0).map(|(&k, _)| k).collect()
}

#[test]
fn injected_failures_land_on_their_own_requests() {
    let dir = test_dir();
    let data = pattern(SIZE, 5);
    for kind in ["mem", "uring", "pool"] {
        let cfg = FaultConfig {
            seed: 42,
            fail_rate: 0.2,
            fail_errnos: vec![libc::EIO, libc::ENOSPC],
            ..FaultConfig::default()
        };
        let Some((d, fd, _)) = inner(kind, dir.path(), &data) else { continue };
        let faulty = FaultDriver::new(d, cfg.clone());
        let a = read_workload(&faulty, fd);
        let failed = failures(&a);
        let share = failed.len() as f64 / a.len() as f64;
        assert!((0.15..0.25).contains(&share), "{kind}: {share} of requests failed, not about 0.2");
        let mut errnos = BTreeSet::new();
        for (i, (res, bytes)) in &a {
            if *res < 0 {
                errnos.insert(-*res as i32);
            } else {
                // Every other request did exactly what it would have without faults.
                let off = *i as usize * BLK;
                assert_eq!(*res as usize, BLK, "{kind}: request {i}");
                assert!(bytes[..] == data[off..off + BLK], "{kind}: request {i} read wrong data");
            }
        }
        assert_eq!(errnos, BTreeSet::from([libc::EIO, libc::ENOSPC]), "{kind}");

        // The same seed gives the same faults; another seed, others.
        let Some((d, fd, _)) = inner(kind, dir.path(), &data) else { continue };
        let b = read_workload(&FaultDriver::new(d, cfg.clone()), fd);
        assert_eq!(failures(&b), failed, "{kind}: same seed, different faults");
        assert_eq!(a, b, "{kind}");
        let Some((d, fd, _)) = inner(kind, dir.path(), &data) else { continue };
        let c = read_workload(&FaultDriver::new(d, FaultConfig { seed: 43, ..cfg }), fd);
        assert_ne!(failures(&c), failed, "{kind}: another seed, the same faults");
    }
}

#[test]
fn shortened_transfers_are_reported_as_short() {
    let dir = test_dir();
    let data = pattern(SIZE, 6);
    for kind in ["mem", "uring", "pool"] {
        let cfg = FaultConfig { seed: 7, short_rate: 0.3, ..FaultConfig::default() };
        let Some((d, fd, path)) = inner(kind, dir.path(), &data) else { continue };
        let faulty = FaultDriver::new(d, cfg);
        let reads = read_workload(&faulty, fd);
        let mut short = 0;
        for (i, (res, bytes)) in &reads {
            let off = *i as usize * BLK;
            let n = *res as usize;
            assert!(*res > 0 && n <= BLK, "{kind}: request {i} gave {res}");
            short += usize::from(n < BLK);
            assert!(bytes[..] == data[off..off + n], "{kind}: the {n} bytes read are right");
        }
        let share = short as f64 / reads.len() as f64;
        assert!((0.25..0.35).contains(&share), "{kind}: {share} short, not about 0.3");

        // Writes: only the bytes reported landed.
        let writes: Vec<(u64, Vec<u8>)> =
            (0..500u64).map(|i| (i, pattern(BLK, 1000 + i))).collect();
        for (i, bytes) in &writes {
            let buf = Buf::for_write(AlignedBuf::from_slice(bytes, BLK));
            faulty.queue(Request::write(fd, buf, (*i as usize * 2 * BLK) as u64, *i)).unwrap();
        }
        let done: Vec<Completion> = reap_n(&faulty, writes.len());
        let contents = match &path {
            Some(p) => std::fs::read(p).unwrap(),
            None => common::drivers::read_all(faulty.inner(), SIZE),
        };
        let mut short = 0;
        for c in done {
            let n = c.result().unwrap();
            short += usize::from(n < BLK);
            let off = c.user_data as usize * 2 * BLK;
            let wrote = &writes[c.user_data as usize].1;
            assert!(contents[off..off + n] == wrote[..n], "{kind}: write {} landed", c.user_data);
            assert!(
                contents[off + n..off + BLK] == data[off + n..off + BLK],
                "{kind}: only {n} bytes"
            );
        }
        assert!(short > 100, "{kind}: only {short} of 500 writes were shortened");
    }
}

#[test]
fn latency_holds_completions_back() {
    let data = pattern(1 << 20, 8);
    let lo = Duration::from_millis(20);
    let cfg = FaultConfig { seed: 1, latency: Some((lo, lo * 2)), ..FaultConfig::default() };
    let d = FaultDriver::new(MemDriver::with_contents(data.clone()), cfg);
    // Blocking reaps wait for the hold.
    let start = Instant::now();
    d.queue(Request::read(-1, Buf::for_read(AlignedBuf::new(BLK, BLK)), 0, 1)).unwrap();
    let mut out = Vec::new();
    assert_eq!(d.reap(1, 1, Some(Duration::ZERO), &mut out).unwrap(), 0, "held, not yet due");
    let c = reap_n(&d, 1).pop().unwrap();
    assert!(start.elapsed() >= lo, "released after {:?}", start.elapsed());
    assert_eq!(c.result().unwrap(), BLK);

    // An event loop on the eventfd is woken when held completions become due.
    let efd = d.eventfd().unwrap();
    for i in 0..20u64 {
        d.queue(Request::read(-1, Buf::for_read(AlignedBuf::new(BLK, BLK)), i * BLK as u64, i))
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let ready =
            aio::sys::fs::poll_one(efd, libc::POLLIN, Some(Duration::from_secs(10))).unwrap();
        assert!(ready != 0, "the eventfd never fired; {} of 20 reaped", got.len());
        let _ = aio::sys::fs::eventfd_read(efd);
        d.reap(0, 20, Some(Duration::ZERO), &mut got).unwrap();
    }
    assert_eq!(d.in_flight(), 0);
}

#[test]
fn a_crash_keeps_what_completed_and_reports_nothing_after() {
    let dir = test_dir();
    let data = vec![0u8; SIZE];
    for kind in ["uring", "pool", "mem"] {
        let Some((d, fd, path)) = inner(kind, dir.path(), &data) else { continue };
        let cfg = FaultConfig { seed: 3, crash_after: Some(100), ..FaultConfig::default() };
        let faulty = FaultDriver::new(d, cfg);
        let write = |i: u64| {
            let bytes = pattern(BLK, 5000 + i);
            let buf = Buf::for_write(AlignedBuf::from_slice(&bytes, BLK));
            Request::write(fd, buf, i * BLK as u64, i)
        };
        for i in 0..300 {
            faulty.queue(write(i)).unwrap();
        }
        let mut done = Vec::new();
        while faulty.reap(1, 64, Some(Duration::from_millis(200)), &mut done).unwrap() > 0 {}
        assert!(faulty.crashed(), "{kind}");
        assert_eq!(done.len(), 100, "{kind}: reported done after the crash point");
        // After the crash: taken, never done.
        for i in 300..350 {
            faulty.queue(write(i)).unwrap();
        }
        assert_eq!(faulty.reap(1, 64, Some(Duration::from_millis(100)), &mut done).unwrap(), 0);
        assert_eq!(faulty.in_flight(), 250, "{kind}: the lost requests stay in flight");

        let contents = match &path {
            Some(p) => {
                let inner_driver = faulty.inner().clone();
                drop(faulty);
                drop(inner_driver);
                std::fs::read(p).unwrap()
            }
            None => common::drivers::read_all(faulty.inner(), SIZE),
        };
        for c in &done {
            assert_eq!(c.result().unwrap(), BLK, "{kind}");
            let off = c.user_data as usize * BLK;
            assert!(
                contents[off..off + BLK] == pattern(BLK, 5000 + c.user_data)[..],
                "{kind}: write {} was reported done but is not there",
                c.user_data
            );
        }
        for i in 300..350usize {
            assert!(
                contents[i * BLK..(i + 1) * BLK].iter().all(|&b| b == 0),
                "{kind}: write {i} after the crash landed"
            );
        }
    }
}

/// An injected failure is a failure whatever errno the configuration names: one that is not
/// an errno (0, negative, 4096 and up) fails with EIO. (A negative one used to make a read
/// that never ran report that many bytes read — bytes a caller then takes as initialized.)
#[test]
fn injected_failures_are_errors_whatever_the_errno() {
    for errno in [0, -8, -4096, 4096, 23_326, i32::MIN, i32::MAX] {
        let cfg =
            FaultConfig { fail_rate: 1.0, fail_errnos: vec![errno], ..FaultConfig::default() };
        let d = FaultDriver::new(MemDriver::with_contents(vec![7u8; 64]), cfg);
        let buf = Buf::for_read(Vec::<u8>::with_capacity(16));
        d.queue(Request::read(-1, buf, 0, 1)).expect("queue a read");
        let c = reap_n(&d, 1).pop().expect("one completion");
        assert_eq!(c.res, -i64::from(libc::EIO), "fail_errnos [{errno}]: the read's result");
        let back: Vec<u8> = c.buf.take().expect("the buffer back");
        assert!(back.is_empty(), "fail_errnos [{errno}]: bytes were put in the buffer");
    }
    // Real errnos are kept.
    let cfg =
        FaultConfig { fail_rate: 1.0, fail_errnos: vec![libc::ENOSPC], ..FaultConfig::default() };
    let d = FaultDriver::new(MemDriver::new(64), cfg);
    d.queue(Request::fsync(-1, 2)).expect("queue an fsync");
    assert_eq!(reap_n(&d, 1)[0].res, -i64::from(libc::ENOSPC));
}
