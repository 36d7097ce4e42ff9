//! The async API: every operation on every driver, batching, cancellation safety, tokio.

mod common;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use aio::driver::{
    CancelOutcome, Completion, Driver, KernelDriver, KernelOptions, PoolDriver, PoolOptions,
    Rejected, Request, UringDriver, UringOptions,
};
use aio::{AlignedBuf, File, IoBuf, Reactor};
use common::*;

/// Polls every future in turn until all are done (a minimal `join_all`).
fn join_all<F: Future + Unpin>(mut futs: Vec<F>) -> impl Future<Output = Vec<F::Output>> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match Pin::new(&mut *f).poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(out.iter_mut().map(|o| o.take().expect("done")).collect())
        }
    })
}

/// Every driver that can serve a file, as reactors.
fn reactors(test: &str) -> Vec<(&'static str, Arc<Reactor>)> {
    let mut out = Vec::new();
    match UringDriver::new(UringOptions::default()) {
        Ok(d) => out.push(("uring", Reactor::new(Arc::new(d)))),
        Err(e) => skip(&format!("{test} [uring]"), &e.to_string()),
    }
    out.push((
        "kernel",
        Reactor::new(Arc::new(KernelDriver::new(KernelOptions::default()).unwrap())),
    ));
    out.push(("pool", Reactor::new(Arc::new(PoolDriver::new(PoolOptions::default())))));
    out
}

#[test]
fn every_operation_on_every_driver() {
    let dir = test_dir();
    let direct = direct_support(dir.path());
    if let Err(reason) = &direct {
        skip("every_operation_on_every_driver (O_DIRECT)", reason);
    }
    for (name, reactor) in reactors("every_operation_on_every_driver") {
        let path = dir.path().join(format!("ops-{name}"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .reactor(Arc::clone(&reactor))
            .open(&path)
            .unwrap();
        reactor.block_on(async {
            // write_at / read_at with Vec, Box and AlignedBuf
            let (res, v) = file.write_at(b"hello, world".to_vec(), 0).await;
            assert_eq!(res.unwrap(), 12, "{name}");
            assert_eq!(v, b"hello, world");
            let (res, v) = file.read_at(Vec::with_capacity(5), 7).await;
            assert_eq!(res.unwrap(), 5, "{name}");
            assert_eq!(v, b"world", "{name}: a read sets the Vec's length");
            let (res, b) = file.read_at(vec![0u8; 4].into_boxed_slice(), 0).await;
            assert_eq!((res.unwrap(), &b[..]), (4, &b"hell"[..]));
            let (res, a) = file.read_at(AlignedBuf::new(64, 64), 0).await;
            assert_eq!(res.unwrap(), 12, "{name}: short at end of file");
            assert_eq!(&a[..], b"hello, world");
            // slices
            let (res, s) = file.write_at(b"xxABCxx".to_vec().slice(2..5), 100).await;
            assert_eq!(res.unwrap(), 3);
            assert_eq!(s.into_inner(), b"xxABCxx");
            let (res, s) = file.read_at(vec![b'.'; 7].slice(2..5), 100).await;
            assert_eq!(res.unwrap(), 3);
            assert_eq!(s.into_inner(), b"..ABC..");
            // vectored
            let (res, bufs) = file.writev_at(vec![b"ab".to_vec(), b"cde".to_vec()], 200).await;
            assert_eq!(res.unwrap(), 5);
            assert_eq!(bufs.len(), 2);
            let (res, bufs) =
                file.readv_at(vec![Vec::with_capacity(1), Vec::with_capacity(9)], 200).await;
            assert_eq!(res.unwrap(), 5);
            assert_eq!(bufs, [b"a".to_vec(), b"bcde".to_vec()]);
            // exact / all
            let data = pattern(300_000, 1);
            let (res, back) = file.write_all_at(data.clone(), 4096).await;
            res.unwrap();
            assert_eq!(back, data);
            let (res, got) = file.read_exact_at(Vec::with_capacity(300_000), 4096).await;
            res.unwrap();
            assert!(got == data, "{name}: read_exact_at");
            let (res, _) = file.read_exact_at(Vec::with_capacity(100), 4096 + 300_000 - 10).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof, "{name}");
            file.sync_all().await.unwrap();
            file.sync_data().await.unwrap();
        });
        // Errors come back with the buffer.
        let ro = File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
        let (res, v) = reactor.block_on(ro.write_at(b"nope".to_vec(), 0));
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF), "{name}");
        assert_eq!(v, b"nope");

        // O_DIRECT, with aligned buffers.
        if let Ok(align) = &direct {
            let path = dir.path().join(format!("direct-{name}"));
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .direct(true)
                .reactor(Arc::clone(&reactor))
                .open(&path)
                .unwrap();
            assert_eq!(f.dio_align(), Some(*align));
            let data = pattern(64 << 10, 2);
            reactor.block_on(async {
                let (res, _) =
                    f.write_all_at(AlignedBuf::from_slice(&data, align.buffer_align()), 0).await;
                res.unwrap();
                let (res, got) = f.read_exact_at(align.buffer(64 << 10), 0).await;
                res.unwrap();
                assert!(got[..] == data[..], "{name}: O_DIRECT round trip");
            });
        }
        assert_eq!(reactor.in_flight(), 0, "{name}");
    }
}

/// Counts the flushes that had something to submit.
struct Counting {
    inner: Arc<dyn Driver>,
    since_flush: AtomicUsize,
    flushes: AtomicUsize,
}

// SAFETY: forwards every request to a driver that keeps the promises.
unsafe impl Driver for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn queue(&self, req: Request) -> Result<(), Rejected> {
        self.inner.queue(req)?;
        self.since_flush.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn wake(&self) {
        self.inner.wake()
    }
    fn flush(&self) -> io::Result<()> {
        if self.since_flush.swap(0, Ordering::SeqCst) > 0 {
            self.flushes.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.flush()
    }
    fn reap(
        &self,
        min: usize,
        max: usize,
        t: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        if self.since_flush.swap(0, Ordering::SeqCst) > 0 {
            self.flushes.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.reap(min, max, t, out)
    }
    fn cancel(&self, user_data: u64) -> io::Result<CancelOutcome> {
        self.inner.cancel(user_data)
    }
    fn eventfd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        self.inner.eventfd()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
}

#[test]
fn a_thousand_reads_from_one_task_batch_into_few_submissions() {
    let uring = match UringDriver::new(UringOptions { entries: 2048, ..UringOptions::default() }) {
        Ok(d) => d,
        Err(e) => return skip("a_thousand_reads_batch", &e.to_string()),
    };
    let counting =
        Arc::new(Counting { inner: Arc::new(uring), since_flush: 0.into(), flushes: 0.into() });
    let reactor = Reactor::new(Arc::clone(&counting) as Arc<dyn Driver>);
    let dir = test_dir();
    let path = dir.path().join("batch");
    let data = pattern(4 << 20, 3);
    make_file(&path, &data);
    let file = File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
    let futs: Vec<_> =
        (0..1000u64).map(|i| file.read_at(Vec::with_capacity(4096), i * 4096)).collect();
    let results = reactor.block_on(join_all(futs));
    for (i, (res, buf)) in results.into_iter().enumerate() {
        assert_eq!(res.unwrap(), 4096);
        assert!(buf[..] == data[i * 4096..(i + 1) * 4096]);
    }
    let flushes = counting.flushes.load(Ordering::SeqCst);
    eprintln!("1000 reads in {flushes} submissions");
    assert!(flushes <= 5, "1000 reads took {flushes} submissions");
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn dropping_futures_in_flight_under_stress() {
    let dir = test_dir();
    let direct = direct_support(dir.path()).is_ok();
    let path = dir.path().join("stress");
    let data: Vec<u8> = pattern(16 << 20, 4).into_iter().map(|b| b & 0x7f).collect();
    make_file(&path, &data);
    for (name, reactor) in reactors("dropping_futures_in_flight_under_stress") {
        let file = File::options()
            .read(true)
            .direct(direct)
            .reactor(Arc::clone(&reactor))
            .open(&path)
            .unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut made = 0;
        let mut sentinels = Vec::new();
        for round in 0..300usize {
            let mut futs: Vec<_> = (0..16usize)
                .map(|i| {
                    made += 1;
                    let buf = Tracked::new(4096, 4096, &drops);
                    file.read_at(buf, (((round * 16 + i) * 7919) % 4096 * 4096) as u64)
                })
                .collect();
            // Queue them, flush some, then drop them all in flight.
            for (i, f) in futs.iter_mut().enumerate() {
                let _ = Pin::new(&mut *f).poll(&mut cx);
                if i % 2 == 0 {
                    let _ = Pin::new(&mut *f).poll(&mut cx);
                }
            }
            drop(futs);
            for _ in 0..16 {
                let mut s = AlignedBuf::new(4096, 4096);
                s.resize(4096, 0xA5);
                sentinels.push(s);
            }
        }
        // The abandoned reads complete; their buffers are dropped then, once each.
        let start = std::time::Instant::now();
        while drops.load(Ordering::SeqCst) < made && start.elapsed() < Duration::from_secs(20) {
            reactor.wait(Some(Duration::from_millis(50))).unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), made, "{name}: every buffer dropped once");
        assert_eq!(reactor.in_flight(), 0, "{name}");
        for s in &sentinels {
            assert!(s.iter().all(|&b| b == 0xA5), "{name}: a freed buffer was written into");
        }
    }
}

#[test]
fn a_forgotten_future_leaks_but_corrupts_nothing() {
    use std::io::Write;
    let dir = test_dir();
    let path = dir.path().join("forget");
    make_file(&path, &pattern(1 << 20, 5));
    for (name, reactor) in reactors("a_forgotten_future_leaks_but_corrupts_nothing") {
        let file = File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
        // A read that stays in flight until the pipe is written.
        let (reader, mut writer) = std::io::pipe().unwrap();
        let pipe = File::with_reactor(
            std::fs::File::from(std::os::fd::OwnedFd::from(reader)),
            Arc::clone(&reactor),
        )
        .unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut fut = pipe.read_at(Tracked::new(4096, 4096, &drops), 0);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending(), "{name}: the pipe is empty");
        std::mem::forget(fut);
        writer.write_all(b"12345678").unwrap();
        // Other I/O goes on normally, and reaps the forgotten read's completion too.
        let (res, buf) = reactor.block_on(file.read_at(Vec::with_capacity(100), 10));
        assert_eq!(res.unwrap(), 100, "{name}");
        assert_eq!(buf, pattern(1 << 20, 5)[10..110]);
        let start = std::time::Instant::now();
        while reactor.driver().in_flight() > 0 && start.elapsed() < Duration::from_secs(10) {
            let _ = reactor.wait(Some(Duration::from_millis(20)));
        }
        // The forgotten one's buffer is kept (leaked into the reactor), never freed early.
        assert_eq!(drops.load(Ordering::SeqCst), 0, "{name}");
        assert_eq!(reactor.in_flight(), 1, "{name}: the forgotten operation is still there");
        // The forgotten future holds the reactor too: it and the buffer stay leaked, intact.
        drop((file, pipe));
        drop(reactor);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "{name}");
    }
}

#[test]
fn cancel_resolves_to_the_final_state() {
    let dir = test_dir();
    let path = dir.path().join("cancel");
    make_file(&path, &pattern(1 << 20, 6));
    for (name, reactor) in reactors("cancel_resolves_to_the_final_state") {
        let file = File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
        // Never polled: cancelled at once, the buffer comes back.
        let mut fut = file.read_at(vec![7u8; 3], 0);
        assert_eq!(fut.cancel().unwrap(), CancelOutcome::Cancelled);
        let (res, buf) = reactor.block_on(fut);
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED), "{name}");
        assert_eq!(buf, [7, 7, 7]);
        // Already done: cancel finds nothing, and the result is the real one.
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut fut = file.read_at(Vec::with_capacity(10), 0);
        if let Poll::Ready((res, _)) = Pin::new(&mut fut).poll(&mut cx) {
            // Served at once by the inline path (the file is in the page cache): nothing left
            // to cancel.
            assert_eq!(res.unwrap(), 10, "{name}");
            continue;
        }
        reactor.wait(Some(Duration::from_secs(5))).unwrap();
        let outcome = fut.cancel().unwrap();
        let (res, _) = reactor.block_on(fut);
        match outcome {
            CancelOutcome::Cancelled => {
                assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED))
            }
            _ => assert_eq!(res.unwrap(), 10, "{name}"),
        }
    }
    // A read that blocks (an empty pipe) on io_uring: cancelled for real.
    if let Ok(d) = UringDriver::new(UringOptions::default()) {
        let reactor = Reactor::new(Arc::new(d));
        let (reader, _writer) = std::io::pipe().unwrap();
        let file = File::with_reactor(
            std::fs::File::from(std::os::fd::OwnedFd::from(reader)),
            Arc::clone(&reactor),
        )
        .unwrap();
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut fut = file.read_at(vec![0u8; 8].into_boxed_slice(), 0);
        let _ = Pin::new(&mut fut).poll(&mut cx);
        let _ = Pin::new(&mut fut).poll(&mut cx);
        assert_eq!(fut.cancel().unwrap(), CancelOutcome::Cancelled);
        let (res, buf) = reactor.block_on(fut);
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        assert_eq!(buf.len(), 8);
    }
}

#[test]
fn tokio_runtime_drives_the_reactor_through_its_eventfd() {
    let dir = test_dir();
    let path = dir.path().join("tokio");
    let data = pattern(2 << 20, 7);
    make_file(&path, &data);
    for flavor in ["current_thread", "multi_thread"] {
        for (name, reactor) in reactors("tokio_runtime_drives_the_reactor") {
            let rt = match flavor {
                "current_thread" => {
                    tokio::runtime::Builder::new_current_thread().enable_all().build()
                }
                _ => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build(),
            }
            .unwrap();
            let file =
                File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            rt.block_on(async {
                let driver = aio::rt::tokio::spawn_driver(Arc::clone(&reactor));
                let tasks: Vec<_> = (0..64u64)
                    .map(|i| {
                        let (file, seen) = (file.clone(), Arc::clone(&seen));
                        tokio::spawn(async move {
                            let (res, buf) =
                                file.read_at(Vec::with_capacity(32768), i * 32768).await;
                            assert_eq!(res.unwrap(), 32768);
                            seen.lock().unwrap().push((i, buf));
                        })
                    })
                    .collect();
                for t in tasks {
                    tokio::time::timeout(Duration::from_secs(20), t)
                        .await
                        .expect("stalled")
                        .unwrap();
                }
                driver.abort();
            });
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 64, "{flavor}/{name}");
            for (i, buf) in seen.iter() {
                let off = *i as usize * 32768;
                assert!(buf[..] == data[off..off + 32768], "{flavor}/{name}: read {i}");
            }
        }
    }
}

/// A read of data in the page cache is served by the inline path: its future is ready on its
/// first poll, with the data, on every buffered reactor; with the path off it takes the
/// engine's way and gives the same bytes.
#[test]
fn cached_read_is_ready_on_first_poll() {
    let name = "cached_read_is_ready_on_first_poll";
    if !aio::driver::inline_enabled() {
        return skip(name, "the inline path is off here (AIO_INLINE=0)");
    }
    let dir = test_dir();
    let path = dir.path().join("hot");
    let data = pattern(64 << 10, 9);
    make_file(&path, &data);
    std::fs::read(&path).unwrap();
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut reactors = reactors(name);
    let off = UringOptions { inline: false, ..UringOptions::default() };
    if let Ok(d) = UringDriver::new(off) {
        reactors.push(("uring, inline off", Reactor::new(Arc::new(d))));
    }
    for (engine, reactor) in reactors {
        let file = File::options().read(true).reactor(Arc::clone(&reactor)).open(&path).unwrap();
        let mut fut = file.read_at(Vec::with_capacity(4096), 8192);
        match Pin::new(&mut fut).poll(&mut cx) {
            Poll::Ready((res, buf)) => {
                assert!(!engine.contains("off"), "{engine}: served inline with the path off");
                assert_eq!(res.unwrap(), 4096, "{engine}");
                assert_eq!(buf, &data[8192..12288], "{engine}");
            }
            Poll::Pending => {
                assert!(engine.contains("off"), "{engine}: a cached read not ready at once");
                let (res, buf) = aio::block_on(fut);
                assert_eq!(res.unwrap(), 4096, "{engine}");
                assert_eq!(buf, &data[8192..12288], "{engine}");
            }
        }
    }
}
