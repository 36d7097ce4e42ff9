//! One conformance suite, the same test bodies run against every driver: io_uring (buffered
//! and O_DIRECT), kernel AIO (O_DIRECT, and buffered through its pool), the thread pool
//! (buffered and O_DIRECT), the RAM disk, and the fault injector with no faults.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aio::driver::{
    Buf, CancelOutcome, Completion, Driver, IoPriority, Op, RawIo, Request, RwFlags,
};
use aio::kernel::IoClass;
use aio::{AlignedBuf, Slice};
use common::drivers::*;
use common::*;

const SIZE: usize = 4 << 20;

fn data() -> Vec<u8> {
    pattern(SIZE, 77)
}

fn each_target(test: &str, body: impl Fn(&Target, &[u8])) {
    let dir = test_dir();
    let data = data();
    let targets = targets(test, dir.path(), &data);
    assert!(!targets.is_empty());
    for t in &targets {
        eprintln!("{test}: {}", t.name);
        body(t, &data);
        assert_eq!(t.driver.in_flight(), 0, "{}: requests left in flight", t.name);
    }
}

#[test]
fn every_op_round_trips() {
    each_target("every_op_round_trips", |t, data| {
        let d = &*t.driver;
        let u = t.unit.max(1);
        let blk = 16 * u.max(512);
        // write, writev
        let a = pattern(blk, 1);
        let b = pattern(2 * blk, 2);
        d.queue(Request::write(t.fd(), t.write_buf(&a), 0, 1).with_flags(RwFlags::DSYNC)).unwrap();
        let parts = vec![
            AlignedBuf::from_slice(&b[..blk], u.max(64)),
            AlignedBuf::from_slice(&b[blk..], u.max(64)),
        ];
        let req = Request::write(t.fd(), Buf::for_writev(parts), 4 * blk as u64, 2)
            .with_ioprio(IoPriority::new(IoClass::BestEffort, 3));
        assert_eq!(req.op(), Op::Writev);
        d.queue(req).unwrap();
        d.queue(Request::fsync(t.fd(), 3)).unwrap();
        d.queue(Request::fdatasync(t.fd(), 4)).unwrap();
        let mut done: HashMap<u64, Completion> =
            reap_n(d, 4).into_iter().map(|c| (c.user_data, c)).collect();
        assert_eq!(done[&1].result().unwrap(), blk, "{}", t.name);
        assert_eq!(done[&2].result().unwrap(), 2 * blk, "{}", t.name);
        assert_eq!(done[&3].result().unwrap(), 0, "{}", t.name);
        assert_eq!(done[&4].result().unwrap(), 0, "{}", t.name);
        let parts: Vec<AlignedBuf> = done.remove(&2).unwrap().buf.take().unwrap();
        assert_eq!(parts.len(), 2, "writev gives its buffers back");

        // read, readv — also with RWF_NOWAIT, which may say EAGAIN
        d.queue(Request::read(t.fd(), t.read_buf(blk), 0, 5)).unwrap();
        let bufs = vec![AlignedBuf::new(blk, u.max(64)), AlignedBuf::new(blk, u.max(64))];
        d.queue(Request::read(t.fd(), Buf::for_readv(bufs), 4 * blk as u64, 6)).unwrap();
        d.queue(
            Request::read(t.fd(), t.read_buf(blk), 8 * blk as u64, 7).with_flags(RwFlags::NOWAIT),
        )
        .unwrap();
        let mut done: HashMap<u64, Completion> =
            reap_n(d, 3).into_iter().map(|c| (c.user_data, c)).collect();
        let c = done.remove(&5).unwrap();
        assert_eq!(c.result().unwrap(), blk);
        // SAFETY: the buffer was made by for_read from an AlignedBuf and the driver read `res`.
        let buf: Slice<AlignedBuf> = unsafe { c.buf.take_filled(c.res as usize) }.unwrap();
        assert_eq!(&buf.into_inner()[..], &a[..], "{}: read back", t.name);
        let c = done.remove(&6).unwrap();
        assert_eq!(c.result().unwrap(), 2 * blk);
        // SAFETY: as above, for for_readv.
        let bufs: Vec<AlignedBuf> = unsafe { c.buf.take_filled_vec(c.res as usize) }.unwrap();
        let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, b, "{}: readv back", t.name);
        let c = done.remove(&7).unwrap();
        match c.result() {
            Ok(n) => {
                assert_eq!(n, blk);
                // SAFETY: as above.
                let buf: Slice<AlignedBuf> = unsafe { c.buf.take_filled(n) }.unwrap();
                assert_eq!(&buf.into_inner()[..], &data[8 * blk..9 * blk], "{}", t.name);
            }
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EOPNOTSUPP)),
                "{}: RWF_NOWAIT gave {e}",
                t.name
            ),
        }
        // What the driver wrote is in the storage.
        let now = t.contents();
        assert_eq!(&now[..blk], &a[..], "{}", t.name);
        assert_eq!(&now[4 * blk..6 * blk], &b[..], "{}", t.name);
    });
}

#[test]
fn short_reads_at_end_of_file() {
    each_target("short_reads_at_end_of_file", |t, data| {
        let d = &*t.driver;
        let u = t.unit.max(1);
        let len = 8 * u.max(512);
        let tail = SIZE - len / 2;
        let tail = tail - tail % u;
        d.queue(Request::read(t.fd(), t.read_buf(len), tail as u64, 1)).unwrap();
        d.queue(Request::read(t.fd(), t.read_buf(len), SIZE as u64, 2)).unwrap();
        d.queue(Request::read(t.fd(), t.read_buf(len), (SIZE + 10 * len) as u64, 3)).unwrap();
        let done: HashMap<u64, Completion> =
            reap_n(d, 3).into_iter().map(|c| (c.user_data, c)).collect();
        assert_eq!(done[&1].result().unwrap(), SIZE - tail, "{}: short read at the end", t.name);
        assert_eq!(done[&2].result().unwrap(), 0, "{}: at the end", t.name);
        assert_eq!(done[&3].result().unwrap(), 0, "{}: past the end", t.name);
        let mut got = vec![0u8; SIZE - tail];
        done[&1].buf.gather(&mut got);
        assert_eq!(got, data[tail..], "{}", t.name);
    });
}

#[test]
fn per_request_errors_stay_on_their_request() {
    each_target("per_request_errors_stay_on_their_request", |t, _data| {
        let d = &*t.driver;
        let u = t.unit.max(1);
        let blk = 4 * u.max(512);
        // Around the bad request, good ones in the same batch.
        for i in 0..4u64 {
            d.queue(Request::read(t.fd(), t.read_buf(blk), i * blk as u64, i)).unwrap();
        }
        let (bad, expect) = match &t.read_only {
            // A write to a read-only descriptor: EBADF.
            Some(ro) => {
                use std::os::fd::AsRawFd;
                (Request::write(ro.as_raw_fd(), t.write_buf(&vec![1u8; blk]), 0, 100), libc::EBADF)
            }
            // The RAM disk: a write at its end: ENOSPC.
            None => {
                (Request::write(-1, t.write_buf(&vec![1u8; blk]), SIZE as u64, 100), libc::ENOSPC)
            }
        };
        let mut reported = false;
        // Refused at once, with the request given back...
        if let Err(r) = d.queue(bad) {
            assert_eq!(r.error.raw_os_error(), Some(expect), "{}: {}", t.name, r.error);
            assert_eq!(r.request.user_data(), 100);
            assert_eq!(r.request.buf().len(), blk, "the buffer comes back");
            reported = true;
        }
        for i in 4..8u64 {
            d.queue(Request::read(t.fd(), t.read_buf(blk), i * blk as u64, i)).unwrap();
        }
        let n = if reported { 8 } else { 9 };
        for c in reap_n(d, n) {
            if c.user_data == 100 {
                // ...or completed with the error.
                assert_eq!(c.res, -(expect as i64), "{}", t.name);
                assert!(!reported, "{}: reported twice", t.name);
                reported = true;
            } else {
                assert_eq!(c.result().unwrap(), blk, "{}: request {}", t.name, c.user_data);
            }
        }
        assert!(reported, "{}: the bad request was never reported", t.name);
        // Invalid requests are refused before they reach the kernel.
        let r = d.queue(Request::read(t.fd(), t.read_buf(blk), u64::MAX, 200)).unwrap_err();
        assert_eq!(r.error.kind(), std::io::ErrorKind::InvalidInput, "{}", t.name);
        let r = d.queue(Request::read(t.fd(), Buf::for_write(vec![1u8]), 0, 201)).unwrap_err();
        assert!(r.error.to_string().contains("read-only"), "{}: {}", t.name, r.error);
    });
}

#[test]
fn cancellation_completes_each_request_once() {
    each_target("cancellation_completes_each_request_once", |t, data| {
        let d = &*t.driver;
        let u = t.unit.max(1);
        let blk = u.max(4096);
        let n = 200u64;
        for i in 0..n {
            let off = (i as usize * 7 % (SIZE / blk)) * blk;
            d.queue(Request::read(t.fd(), t.read_buf(blk), off as u64, i)).unwrap();
        }
        let mut outcome = HashMap::new();
        for i in (0..n).step_by(3) {
            outcome.insert(i, d.cancel(i).unwrap());
        }
        assert_eq!(d.cancel(10_000).unwrap(), CancelOutcome::NotFound, "{}", t.name);
        let mut seen = HashSet::new();
        for c in reap_n(d, n as usize) {
            assert!(seen.insert(c.user_data), "{}: {} completed twice", t.name, c.user_data);
            let off = (c.user_data as usize * 7 % (SIZE / blk)) * blk;
            match (outcome.get(&c.user_data), c.result()) {
                (Some(CancelOutcome::Cancelled), Err(e)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ECANCELED), "{}", t.name)
                }
                // A cancellation that raced with completion may still see it finish.
                (_, Ok(len)) => {
                    assert_eq!(len, blk);
                    let mut got = vec![0u8; blk];
                    c.buf.gather(&mut got);
                    assert_eq!(got, data[off..off + blk], "{}", t.name);
                }
                (o, Err(e)) => panic!("{}: request {} ({o:?}) failed: {e}", t.name, c.user_data),
            }
        }
        assert!(
            d.reap(0, 10, Some(Duration::ZERO), &mut Vec::new()).unwrap() == 0,
            "{}: more completions than requests",
            t.name
        );
    });
}

#[test]
fn buffers_live_until_completion_and_are_dropped_once() {
    each_target("buffers_live_until_completion_and_are_dropped_once", |t, data| {
        let d = &*t.driver;
        let blk = t.unit.max(4096);
        let drops = Arc::new(AtomicUsize::new(0));
        let n = 300usize;
        for i in 0..n {
            let off = (i * 13 % (SIZE / blk)) * blk;
            let buf = Tracked::new(blk, blk, &drops);
            d.queue(Request::read(t.fd(), Buf::for_read(buf), off as u64, i as u64)).unwrap();
            if i % 50 == 49 {
                d.flush().unwrap();
            }
        }
        // Nothing is dropped while the driver holds it.
        assert_eq!(drops.load(Ordering::SeqCst), 0, "{}", t.name);
        let done = reap_n(d, n);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "{}: dropped before it was handed back",
            t.name
        );
        for c in done {
            let off = (c.user_data as usize * 13 % (SIZE / blk)) * blk;
            // SAFETY: made by for_read from a Tracked; the driver reports the bytes read.
            let buf: Tracked = unsafe { c.buf.take_filled(c.res as usize) }.unwrap();
            assert_eq!(&buf.buf[..], &data[off..off + blk], "{}", t.name);
        }
        assert_eq!(drops.load(Ordering::SeqCst), n, "{}: each buffer dropped once", t.name);
    });
}

#[test]
fn reap_flushes_and_flush_starts_everything() {
    each_target("reap_flushes_and_flush_starts_everything", |t, _| {
        let d = &*t.driver;
        let blk = t.unit.max(4096);
        for i in 0..10u64 {
            d.queue(Request::read(t.fd(), t.read_buf(blk), i * blk as u64, i)).unwrap();
        }
        // No explicit flush: reap must start them before it waits.
        assert_eq!(reap_n(d, 10).len(), 10);
        for i in 0..10u64 {
            d.queue(Request::read(t.fd(), t.read_buf(blk), i * blk as u64, i)).unwrap();
        }
        d.flush().unwrap();
        // After a flush, everything completes without anyone waiting in reap.
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        while out.len() < 10 && start.elapsed() < Duration::from_secs(20) {
            d.reap(0, 10, Some(Duration::ZERO), &mut out).unwrap();
            if out.len() < 10 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(out.len(), 10, "{}: flushed requests did not complete on their own", t.name);
    });
}

#[test]
fn eventfd_signals_completions() {
    each_target("eventfd_signals_completions", |t, _| {
        let d = &*t.driver;
        let efd = d.eventfd().unwrap();
        let blk = t.unit.max(4096);
        for i in 0..16u64 {
            d.queue(Request::read(t.fd(), t.read_buf(blk), i * blk as u64, i)).unwrap();
        }
        d.flush().unwrap();
        let mut got = Vec::new();
        while got.len() < 16 {
            let ready =
                aio::sys::fs::poll_one(efd, libc::POLLIN, Some(Duration::from_secs(20))).unwrap();
            assert!(ready & libc::POLLIN != 0, "{}: the eventfd never fired", t.name);
            let _ = aio::sys::fs::eventfd_read(efd);
            d.reap(0, 16, Some(Duration::ZERO), &mut got).unwrap();
        }
        assert_eq!(got.len(), 16);
    });
}

/// 10,000+ requests of random sizes and offsets, reads and writes mixed, checked against a
/// model of the contents. Requests in flight at once never overlap (no ordering holds between
/// them), and the model changes when a write completes.
#[test]
fn random_workload_matches_a_model() {
    each_target("random_workload_matches_a_model", |t, data| {
        let d = &*t.driver;
        let mut model = data.to_vec();
        let mut rng = 0x1234_5678_9abc_def1u64 ^ t.name.len() as u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let unit = t.unit.max(1);
        let total = 12_000u64;
        let depth = 48;
        // user_data -> (offset, len, write data if a write)
        let mut flying: HashMap<u64, (usize, usize, Option<Vec<u8>>)> = HashMap::new();
        let mut issued = 0u64;
        let mut completed = 0u64;
        let mut out = Vec::new();
        while completed < total {
            while issued < total && flying.len() < depth {
                let len = if unit > 1 {
                    unit * (1 + next() as usize % 16)
                } else {
                    1 + next() as usize % 20_000
                };
                let off = (next() as usize % (SIZE - len)) / unit * unit;
                if flying.values().any(|&(o, l, _)| off < o + l && o < off + len) {
                    continue;
                }
                let write = next() % 3 == 0;
                let req = if write {
                    let bytes = pattern(len, next());
                    let r = Request::write(t.fd(), t.write_buf(&bytes), off as u64, issued);
                    flying.insert(issued, (off, len, Some(bytes)));
                    r
                } else {
                    flying.insert(issued, (off, len, None));
                    Request::read(t.fd(), t.read_buf(len), off as u64, issued)
                };
                d.queue(req).unwrap();
                issued += 1;
            }
            out.clear();
            d.reap(1, 64, Some(Duration::from_secs(20)), &mut out).unwrap();
            assert!(!out.is_empty(), "{}: stalled at {completed}/{total}", t.name);
            for c in out.drain(..) {
                let (off, len, write) = flying.remove(&c.user_data).expect("a request in flight");
                let n = c.result().unwrap_or_else(|e| panic!("{}: {e}", t.name));
                assert_eq!(n, len, "{}: no short transfer inside the file", t.name);
                match write {
                    Some(bytes) => model[off..off + len].copy_from_slice(&bytes),
                    None => {
                        let mut got = vec![0u8; len];
                        c.buf.gather(&mut got);
                        assert!(got == model[off..off + len], "{}: read at {off}+{len}", t.name);
                    }
                }
                completed += 1;
            }
        }
        assert!(t.contents() == model, "{}: final contents differ from the model", t.name);
    });
}

#[test]
fn dropping_a_driver_with_requests_in_flight() {
    let dir = test_dir();
    let data = data();
    for round in 0..20 {
        let targets = targets("dropping_a_driver_with_requests_in_flight", dir.path(), &data);
        let drops = Arc::new(AtomicUsize::new(0));
        let mut made = 0;
        for t in targets {
            let blk = t.unit.max(4096);
            for i in 0..64usize {
                let off = ((i + round) * 31 % (SIZE / blk)) * blk;
                let buf = Tracked::new(blk, blk, &drops);
                t.driver
                    .queue(Request::read(t.fd(), Buf::for_read(buf), off as u64, i as u64))
                    .unwrap();
                made += 1;
            }
            t.driver.flush().unwrap();
            drop(t);
        }
        assert_eq!(drops.load(Ordering::SeqCst), made, "every buffer freed once, after its I/O");
    }
}

/// Reads that wait for data (an empty pipe) have moved nothing: every driver cancels them —
/// io_uring stops them, the pool (and kernel AIO, whose pool serves pipes) parks them without a
/// worker until the pipe is ready — and a cancelled read leaves the data for the next one.
/// Reads that may never finish do not starve the rest: with one worker and several of them
/// waiting, a read of a regular file still completes.
#[test]
fn cancelling_blocked_reads() {
    use aio::driver::{
        KernelDriver, KernelOptions, PoolDriver, PoolOptions, UringDriver, UringOptions,
    };
    use std::io::Write;
    use std::os::fd::AsRawFd;

    // The inline path off: the file read below must go through the one worker (or the ring),
    // behind the pipe reads, not be served at submission.
    let one_worker = PoolOptions { threads: 1, inline: false, ..PoolOptions::default() };
    let mut drivers: Vec<Arc<dyn Driver>> = vec![Arc::new(PoolDriver::new(one_worker.clone()))];
    match UringDriver::new(UringOptions { inline: false, ..UringOptions::default() }) {
        Ok(d) => drivers.push(Arc::new(d)),
        Err(e) => skip("cancelling_blocked_reads [uring]", &e.to_string()),
    }
    let kernel = KernelOptions { buffered_pool: Some(one_worker), ..KernelOptions::default() };
    match KernelDriver::new(kernel) {
        Ok(d) => drivers.push(Arc::new(d)),
        Err(e) => skip("cancelling_blocked_reads [kernel]", &e.to_string()),
    }
    let dir = test_dir();
    let path = dir.path().join("file");
    std::fs::write(&path, pattern(4096, 5)).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    for d in drivers {
        let name = d.name().to_string();
        let (reader, mut writer) = std::io::pipe().unwrap();
        let read = |ud| {
            Request::read(reader.as_raw_fd(), Buf::for_read(vec![0u8; 4].into_boxed_slice()), 0, ud)
        };
        for ud in 1..=3 {
            d.queue(read(ud)).unwrap();
        }
        d.flush().unwrap();
        // Give the pool's one worker time to try them (and park them).
        std::thread::sleep(Duration::from_millis(50));
        let file_read = Request::read(file.as_raw_fd(), Buf::for_read(vec![0u8; 4096]), 0, 10);
        d.queue(file_read).unwrap();
        let c = reap_n(&*d, 1).pop().unwrap();
        assert_eq!((c.user_data, c.res), (10, 4096), "{name}: the file read behind the pipe reads");
        assert_eq!(d.cancel(1).unwrap(), CancelOutcome::Cancelled, "{name}");
        let c = reap_n(&*d, 1).pop().unwrap();
        assert_eq!((c.user_data, c.res), (1, -(libc::ECANCELED as i64)), "{name}");
        assert_eq!(d.cancel(1).unwrap(), CancelOutcome::NotFound, "{name}");
        // The data goes to a read that is still there, not to the cancelled one.
        writer.write_all(b"data").unwrap();
        let c = reap_n(&*d, 1).pop().unwrap();
        assert!(c.user_data == 2 || c.user_data == 3, "{name}: {}", c.user_data);
        assert_eq!(c.res, 4, "{name}");
        let left = 5 - c.user_data;
        assert_eq!(d.cancel(left).unwrap(), CancelOutcome::Cancelled, "{name}");
        let c = reap_n(&*d, 1).pop().unwrap();
        assert_eq!((c.user_data, c.res), (left, -(libc::ECANCELED as i64)), "{name}");
        assert_eq!(d.in_flight(), 0, "{name}");
    }
}

/// One-segment vectored buffers, long timeouts, and wake-ups from another thread: every
/// driver reads into a `Buf::for_readv` of one buffer (whose `iovec` is kept inside the `Buf`)
/// and writes from one; `reap` and `wait_ready` with `Duration::MAX` wait rather than panic;
/// `wake` ends a `wait_ready` in another thread, and one made before the wait ends it at once.
#[test]
fn one_segment_vectors_huge_timeouts_and_wakes() {
    each_target("one_segment_vectors_huge_timeouts_and_wakes", |t, data| {
        let blk = t.unit.max(4096);
        let parts = vec![AlignedBuf::new(blk, t.unit.max(64))];
        t.driver.queue(Request::read(t.fd(), Buf::for_readv(parts), blk as u64, 1)).unwrap();
        let mut out = Vec::new();
        let n = t.driver.reap(1, 1, Some(Duration::MAX), &mut out).expect("reap, no limit");
        assert_eq!(n, 1, "{}", t.name);
        let c = out.pop().unwrap();
        assert_eq!(c.result().unwrap(), blk, "{}", t.name);
        // SAFETY: a completed read of `blk` bytes into this Vec<AlignedBuf>.
        let back: Vec<AlignedBuf> = unsafe { c.buf.take_filled_vec(blk) }.unwrap();
        assert_eq!(&back[0][..blk], &data[blk..2 * blk], "{}", t.name);

        let w = vec![AlignedBuf::from_slice(&data[..blk], t.unit.max(64))];
        t.driver.queue(Request::write(t.fd(), Buf::for_writev(w), 3 * blk as u64, 2)).unwrap();
        t.driver.wait_ready(Some(Duration::MAX), None).expect("wait_ready, no limit");
        let c = reap_n(&*t.driver, 1).pop().unwrap();
        assert_eq!(c.result().unwrap(), blk, "{}", t.name);
        assert_eq!(&t.contents()[3 * blk..4 * blk], &data[..blk], "{}", t.name);

        // A wake before the wait: the wait ends at once. From another thread: it ends.
        t.driver.wake();
        t.driver.wait_ready(Some(Duration::from_secs(30)), None).unwrap();
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                t.driver.wake();
            });
            t.driver.wait_ready(Some(Duration::from_secs(30)), None).unwrap();
        });
        assert!(start.elapsed() < Duration::from_secs(20), "{}: wake did not end the wait", t.name);
    });
}

/// The inline path: a cached read is served at submission (`queue_now` gives it back, done;
/// `queue` delivers it through `reap` like any other); a cold one falls back to the engine; one
/// partly cached completes whole, with the right bytes; `O_DIRECT` files are never tried, and
/// drivers with the path off try nothing. The results are the same whichever path served them.
#[test]
fn inline_path_serves_cached_falls_back_and_finishes_partial() {
    use std::os::fd::AsRawFd;
    each_target("inline_path_serves_cached_falls_back_and_finishes_partial", |t, data| {
        let Some(file) = &t.file else { return };
        let fd = file.as_raw_fd();
        let len = 16 << 10;
        let evict = || {
            file.sync_all().unwrap();
            // SAFETY: advice on our own descriptor; no memory is passed.
            unsafe {
                libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
                libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM);
            }
        };
        let read = |off: usize, ud: u64| -> Completion {
            let buf = t.read_buf(len);
            match t.driver.queue_now(Request::read(fd, buf, off as u64, ud)).unwrap() {
                Some(c) => c,
                None => reap_n(&*t.driver, 1).pop().unwrap(),
            }
        };
        let check = |c: Completion, off: usize| {
            assert_eq!(c.result().unwrap(), len, "{}", t.name);
            let mut got = vec![0u8; len];
            c.buf.gather(&mut got);
            assert_eq!(got, &data[off..off + len], "{}: bytes at {off}", t.name);
        };
        let before = t.driver.inline_stats();
        // Cold: the engine serves it.
        evict();
        check(read(64 << 10, 1), 64 << 10);
        // Partly cached (the first page only): all of it, right.
        evict();
        let mut first = AlignedBuf::new(4096, 4096);
        // SAFETY: `first` is a writable buffer of 4096 bytes (aligned, for O_DIRECT targets).
        let n =
            unsafe { libc::pread(fd, aio::IoBufMut::stable_mut_ptr(&mut first).cast(), 4096, 0) };
        assert_eq!(n, 4096);
        check(read(0, 2), 0);
        // Cached: served at submission where the path is on (after the few requests the misses
        // above make it skip).
        std::fs::read(t.path.as_ref().unwrap()).unwrap();
        for i in 0..4 {
            check(read(0, 10 + i), 0);
        }
        let s = t.driver.inline_stats() - before;
        if t.inline {
            assert!(s.inline >= 1, "{}: no request served inline: {s:?}", t.name);
            assert!(
                s.missed + s.skipped >= 1,
                "{}: the cold read was served inline: {s:?}",
                t.name
            );
            // Through queue: the same completion, by reap.
            t.driver.queue(Request::read(fd, t.read_buf(len), 0, 4)).unwrap();
            let c = reap_n(&*t.driver, 1).pop().unwrap();
            assert_eq!(c.user_data, 4, "{}", t.name);
            check(c, 0);
            // try_now: served in place, the request (and its buffer) still the caller's.
            let mut req = Request::read(fd, t.read_buf(len), 0, 5);
            assert_eq!(t.driver.try_now(&mut req), Some(len as i64), "{}", t.name);
            check(Completion::new(5, len as i64, req.into_buf()), 0);
            // Not served (cold): queued after it, it is not tried a second time, and completes
            // through the engine with the right bytes.
            evict();
            let mut req = Request::read(fd, t.read_buf(len), 64 << 10, 6);
            assert_eq!(t.driver.try_now(&mut req), None, "{}: a cold read served", t.name);
            let asked = t.driver.inline_stats().total();
            assert_eq!(t.driver.queue_now(req).unwrap().map(|c| c.user_data), None, "{}", t.name);
            assert_eq!(t.driver.inline_stats().total(), asked, "{}: tried twice", t.name);
            let c = reap_n(&*t.driver, 1).pop().unwrap();
            assert_eq!(c.user_data, 6, "{}", t.name);
            check(c, 64 << 10);
        } else {
            assert_eq!(
                s.inline, 0,
                "{}: served inline with the path off or O_DIRECT: {s:?}",
                t.name
            );
            let mut req = Request::read(fd, t.read_buf(len), 0, 5);
            assert_eq!(t.driver.try_now(&mut req), None, "{}: try_now served", t.name);
        }
    });
}

/// A wrapper's own completions wake a thread already waiting in `reap`: the fault injector
/// fails every request itself, while another thread waits (it used to wait in the wrapped
/// driver, which never heard of them).
#[test]
fn injected_failures_wake_a_waiting_reaper() {
    use aio::driver::{FaultConfig, FaultDriver};
    each_target("injected_failures_wake_a_waiting_reaper", |t, _| {
        let cfg = FaultConfig { seed: 1, fail_rate: 1.0, ..FaultConfig::default() };
        let faulty = FaultDriver::new(Arc::clone(&t.driver), cfg);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut out = Vec::new();
                let n = faulty.reap(1, 1, Some(Duration::from_secs(20)), &mut out).unwrap();
                (n, out)
            });
            std::thread::sleep(Duration::from_millis(50));
            faulty.queue(Request::read(t.fd(), t.read_buf(t.unit.max(512)), 0, 7)).unwrap();
            let (n, out) = waiter.join().unwrap();
            assert_eq!(n, 1, "{}: the waiting reaper never saw the injected failure", t.name);
            assert_eq!((out[0].user_data, out[0].res), (7, -(libc::EIO as i64)), "{}", t.name);
        });
    });
}

/// The pool starts workers on demand, runs many requests on one descriptor at once when they
/// block, and lets idle workers go.
#[test]
fn pool_workers_come_and_go() {
    use aio::driver::{PoolDriver, PoolOptions};
    use std::io::Write;
    use std::os::fd::AsRawFd;

    // A terminal with no input: a read of it blocks its worker (a character device, not a
    // stream the pool parks).
    let Some((mut master, slave)) = raw_pty() else {
        return skip("pool_workers_come_and_go", "no pseudo-terminal (/dev/ptmx)");
    };
    let pool = PoolDriver::new(PoolOptions {
        threads: 4,
        idle: Duration::from_millis(100),
        ..PoolOptions::default()
    });
    assert_eq!(pool.threads(), 0, "no worker before the first request");
    // Four reads of one terminal: each blocks until written, so all four must be running at
    // once (one queue per descriptor, as glibc has, would leave three waiting).
    for i in 0..4 {
        let buf = Buf::for_read(vec![0u8; 1].into_boxed_slice());
        pool.queue(Request::read(slave.as_raw_fd(), buf, 0, i)).unwrap();
    }
    let start = std::time::Instant::now();
    while pool.running() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "only {} running at once",
            pool.running()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.threads(), 4);
    master.write_all(b"abcd").unwrap();
    let done = reap_n(&pool, 4);
    assert!(done.iter().all(|c| c.res == 1));
    // Idle workers exit.
    let start = std::time::Instant::now();
    while pool.threads() > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "{} workers stayed", pool.threads());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pseudo-terminal in raw mode: (master, slave).
fn raw_pty() -> Option<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1; the calls after it take that
    // descriptor, a buffer of termios they fill, and a path they read.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if m < 0 {
            return None;
        }
        let master = std::fs::File::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return None;
        }
        let name = libc::ptsname(m);
        if name.is_null() {
            return None;
        }
        let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY);
        if s < 0 {
            return None;
        }
        let slave = std::fs::File::from_raw_fd(s);
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(s, &mut tio) != 0 {
            return None;
        }
        libc::cfmakeraw(&mut tio);
        if libc::tcsetattr(s, libc::TCSANOW, &tio) != 0 {
            return None;
        }
        Some((master, slave))
    }
}

/// A negative descriptor is an error on its request (refused or failed with EBADF), never a
/// crash.
#[test]
fn negative_descriptors_give_ebadf() {
    use aio::driver::{KernelDriver, KernelOptions, PoolDriver, PoolOptions, UringDriver};
    let mut drivers: Vec<Box<dyn Driver>> = vec![
        Box::new(KernelDriver::new(KernelOptions::default()).unwrap()),
        Box::new(PoolDriver::new(PoolOptions::default())),
    ];
    if let Ok(d) = UringDriver::new(Default::default()) {
        drivers.push(Box::new(d));
    }
    for d in drivers {
        let buf = Buf::for_read(vec![0u8; 16].into_boxed_slice());
        match d.queue(Request::read(-1, buf, 0, 1)) {
            Err(r) => assert_eq!(r.error.raw_os_error(), Some(libc::EBADF), "{}", d.name()),
            Ok(()) => {
                let c = reap_n(&*d, 1).pop().unwrap();
                assert_eq!(c.res, -(libc::EBADF as i64), "{}", d.name());
            }
        }
    }
}

#[test]
fn raw_requests_complete_once_with_their_data() {
    each_target("raw_requests_complete_once_with_their_data", |t, data| {
        let d = &*t.driver;
        let u = t.unit.max(512);
        let n = 48;
        // Raw writes of distinct blocks, owned-buffer reads mixed in: each completes once,
        // raw ones through `out` or a later reap, owned ones with their buffers given back.
        let blocks: Vec<AlignedBuf> =
            (0..n).map(|i| AlignedBuf::from_slice(&pattern(u, 100 + i as u64), u)).collect();
        let mut raw_done: HashMap<u64, i64> = HashMap::new();
        let mut owned = 0;
        let mut out = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let io = RawIo {
                write: true,
                fd: t.fd(),
                ptr: b.as_ptr().cast_mut(),
                len: u,
                offset: (i * u) as u64,
                ioprio: None,
                user_data: 1000 + i as u64,
            };
            out.clear();
            // SAFETY: `blocks` outlives every request (all are reaped below).
            let reaped =
                unsafe { d.queue_raw_and_reap(io, 256, &mut out) }.unwrap().into_result().unwrap();
            assert_eq!(reaped, out.len(), "{}", t.name);
            for &(ud, res) in &out {
                assert!(raw_done.insert(ud, res).is_none(), "{}: {ud} completed twice", t.name);
            }
            if i % 8 == 0 {
                let off = ((n + i) * u) as u64;
                d.queue(Request::read(t.fd(), t.read_buf(u), off, 2000 + i as u64)).unwrap();
                owned += 1;
            }
        }
        let left = d.in_flight();
        assert_eq!(left, n - raw_done.len() + owned, "{}", t.name);
        for c in reap_n(d, left) {
            if c.user_data >= 2000 {
                let off = (n + (c.user_data - 2000) as usize) * u;
                let len = c.result().unwrap();
                let buf = c.buf.take::<Slice<AlignedBuf>>().expect("owned buffer given back");
                let got = &buf.get_ref().as_full_slice()[..len];
                assert_eq!(got, &data[off..off + len], "{}", t.name);
                owned -= 1;
            } else {
                assert!(raw_done.insert(c.user_data, c.res).is_none(), "{}: twice", t.name);
                assert!(c.buf.into_owner().is_none(), "{}: a raw request owns nothing", t.name);
            }
        }
        assert_eq!(owned, 0, "{}", t.name);
        assert_eq!(raw_done.len(), n, "{}", t.name);
        assert!(raw_done.values().all(|&r| r == u as i64), "{}: {raw_done:?}", t.name);

        // Raw reads see what the raw writes wrote.
        let mut back = AlignedBuf::new(n * u, u);
        let base = back.as_full_mut_slice().as_mut_ptr();
        let mut done = 0;
        for i in 0..n {
            let io = RawIo {
                write: false,
                fd: t.fd(),
                // SAFETY: inside `back`'s capacity.
                ptr: unsafe { base.add(i * u) },
                len: u,
                offset: (i * u) as u64,
                ioprio: Some(IoPriority::new(IoClass::BestEffort, 4)),
                user_data: i as u64,
            };
            out.clear();
            // SAFETY: `back` outlives the requests, and no one touches it until all are reaped.
            done +=
                unsafe { d.queue_raw_and_reap(io, 256, &mut out) }.unwrap().into_result().unwrap();
            assert!(out.iter().all(|&(_, r)| r == u as i64), "{}: {out:?}", t.name);
        }
        for c in reap_n(d, n - done) {
            assert_eq!(c.res, u as i64, "{}", t.name);
        }
        back.set_len(n * u);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(&back[i * u..(i + 1) * u], &b[..], "{}: block {i}", t.name);
        }

        // A refused raw request is not in flight.
        let bad = RawIo {
            write: false,
            fd: t.fd(),
            ptr: base,
            len: u,
            offset: u64::MAX,
            ioprio: None,
            user_data: 7,
        };
        // SAFETY: refused before anything points at `back`.
        let refused = unsafe { d.queue_raw_and_reap(bad, 256, &mut out) };
        assert!(refused.is_err(), "{}: offset beyond the largest file offset taken", t.name);
        assert_eq!(d.in_flight(), 0, "{}", t.name);
    });
}
