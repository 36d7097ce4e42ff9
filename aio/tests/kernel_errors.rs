//! Bad input and resource limits: every error is reported where it belongs (the submit call or
//! the completion), and no request or buffer is lost along the way.

mod common;

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use aio::kernel::{Context, Iocb, RawContext};
use aio::sys::{self, iocb};
use aio::{AlignedBuf, IoBuf};
use common::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn partial_submission_and_eagain_with_a_small_context() {
    let dir = test_dir();
    let path = dir.path().join("small-ctx");
    let data = pattern(1 << 20, 5);
    make_file(&path, &data);
    let file = File::open(&path).unwrap();
    // Buffered reads of cached data complete inside io_submit, but each holds a ring slot until
    // it is reaped: a context asked for 1 event fills up after a few hundred at most.
    let ctx = Context::<Vec<u8>>::new(1).unwrap();
    let total = 2000;
    let mut reqs: Vec<_> = (0..total)
        .map(|i| Iocb::pread(&file, Vec::with_capacity(512), (i % 2048) * 512).user_data(i))
        .collect();
    let first = ctx.submit_batch(&mut reqs).unwrap();
    assert!(!first.is_empty());
    assert!(first.len() < total as usize, "a 1-event context took all {total} requests");
    assert_eq!(reqs.len() + first.len(), total as usize, "requests not taken stay with the caller");
    assert_eq!(reqs[0].get_user_data(), first.len() as u64, "in order");

    // Full: the next batch is refused as a whole, with EAGAIN, and nothing is taken.
    let err = ctx.submit_batch(&mut reqs).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");
    assert_eq!(reqs.len() + first.len(), total as usize);
    // A single submit gives the request back with the error.
    let one = reqs.pop().unwrap();
    let err = ctx.submit(one).unwrap_err();
    assert_eq!(err.error().raw_os_error(), Some(libc::EAGAIN));
    reqs.push(err.into_request());

    // submit_all reaps between retries until everything is in.
    let ids = ctx.submit_all(reqs, Duration::from_secs(30)).unwrap();
    assert_eq!(ids.len() + first.len(), total as usize);
    let mut seen = HashSet::new();
    while seen.len() < total as usize {
        let done = ctx.get_events(1, 4096, WAIT).unwrap();
        assert!(!done.is_empty(), "timed out with {} of {total} completions", seen.len());
        for c in done {
            let i = c.user_data();
            assert!(seen.insert(i), "request {i} completed twice");
            assert_eq!(c.result().unwrap(), 512);
            let off = ((i % 2048) * 512) as usize;
            assert_eq!(c.into_buf().unwrap(), data[off..off + 512]);
        }
    }
    assert_eq!(ctx.in_flight(), 0);
    assert!(ctx.get_events(0, 10, Some(Duration::ZERO)).unwrap().is_empty());
}

#[test]
fn submit_all_times_out_and_gives_back_what_it_could_not_submit() {
    let dir = test_dir();
    let path = dir.path().join("timeout");
    make_file(&path, &pattern(4096, 1));
    let file = File::open(&path).unwrap();
    let ctx = Context::<Vec<u8>>::new(1).unwrap();
    // Fill the context; nothing reaps in between except submit_all itself, which only runs
    // callbacks and keeps the rest, so it can make room only by reaping — give it no time.
    let mut fill: Vec<_> = (0..5000).map(|_| Iocb::pread(&file, Vec::new(), 0)).collect();
    let taken = ctx.submit_batch(&mut fill).unwrap().len();
    let more: Vec<_> = (0..3).map(|i| Iocb::pread(&file, vec![i as u8; 1], 0)).collect();
    let err = ctx.submit_all(more, Duration::ZERO).unwrap_err();
    assert_eq!(err.error().raw_os_error(), Some(libc::EAGAIN));
    let back = err.into_request();
    assert_eq!(back.len(), 3);
    assert_eq!(back[2].buf().unwrap(), &vec![2u8]);
    let reaped = ctx.get_events(taken, taken, WAIT).unwrap();
    assert_eq!(reaped.len(), taken);
}

#[test]
fn get_events_times_out_with_nothing() {
    let ctx = Context::<Vec<u8>>::new(4).unwrap();
    let t = Instant::now();
    assert!(ctx.get_events(1, 4, Some(Duration::from_millis(50))).unwrap().is_empty());
    assert!(t.elapsed() >= Duration::from_millis(45), "returned before the timeout");
    assert!(ctx.get_events(1, 4, Some(Duration::ZERO)).unwrap().is_empty());
    assert!(ctx.get_events(0, 4, None).unwrap().is_empty(), "min 0 never waits");
}

#[test]
fn wrong_access_mode_gives_ebadf_and_the_request_back() {
    let dir = test_dir();
    let path = dir.path().join("ro");
    make_file(&path, b"read only");
    let ro = File::open(&path).unwrap();
    let ctx = Context::<Vec<u8>>::new(4).unwrap();
    let err = ctx.submit(Iocb::pwrite(&ro, b"sentinel".to_vec(), 0).user_data(9)).unwrap_err();
    assert_eq!(err.error().raw_os_error(), Some(libc::EBADF), "{}", err.error());
    let req = err.into_request();
    assert_eq!(req.get_user_data(), 9);
    assert_eq!(req.into_bufs(), [b"sentinel".to_vec()]);
    assert_eq!(ctx.in_flight(), 0);

    // A batch whose first request is bad is refused whole; the request stays first.
    let mut batch =
        vec![Iocb::pwrite(&ro, b"x".to_vec(), 0), Iocb::pread(&ro, Vec::with_capacity(4), 0)];
    let err = ctx.submit_batch(&mut batch).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    assert_eq!(batch.len(), 2);
    // One that is bad later: the kernel takes the good prefix.
    batch.swap(0, 1);
    let ids = ctx.submit_batch(&mut batch).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(batch.len(), 1);
    assert_eq!(ctx.get_events(1, 1, WAIT).unwrap()[0].result().unwrap(), 4);
}

#[test]
fn closed_descriptor_gives_ebadf_through_the_raw_layer() {
    let ctx = RawContext::new(4).unwrap();
    let mut buf = [0u8; 16];
    let fd = {
        let f = File::open("/dev/null").unwrap();
        f.as_raw_fd()
    };
    // `fd` is closed now (and not reused: nothing opens files in this test meanwhile).
    let mut cb = iocb::pread(fd, buf.as_mut_ptr(), buf.len(), 0);
    // SAFETY: the iocb and buffer outlive the call, and the kernel refuses the request before
    // using the buffer (the descriptor is not open).
    let err = unsafe { ctx.submit(&[&mut cb]) }.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
}

#[test]
fn unknown_opcodes_are_refused() {
    let ctx = RawContext::new(4).unwrap();
    let f = File::open("/dev/null").unwrap();
    for opcode in [sys::IOCB_CMD_NOOP, 4, 99] {
        let mut cb = iocb::rw(opcode, f.as_raw_fd(), 0, 0, 0);
        // SAFETY: the iocb names no memory and lives through the call.
        let err = unsafe { ctx.submit(&[&mut cb]) }.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "opcode {opcode}");
    }
    let mut events = [sys::io_event::default(); 4];
    assert_eq!(ctx.get_events(0, &mut events, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn misaligned_direct_io() {
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip("misaligned_direct_io", &reason),
    };
    let path = dir.path().join("misaligned");
    make_file(&path, &pattern(1 << 16, 2));
    let file = open_direct(&path);
    let ctx = Context::<aio::Slice<AlignedBuf>>::new(8).unwrap();
    let a = align.buffer_align();
    let cases = [
        ("address", AlignedBuf::new(2 * a, a).slice(1..1 + a), 0u64),
        ("length", AlignedBuf::new(2 * a, a).slice(..a - 1), 0),
        ("offset", AlignedBuf::new(2 * a, a).slice(..a), 100),
    ];
    for (what, buf, off) in cases {
        // Unchecked, the kernel refuses it: EINVAL in the completion (or at submission).
        let req = Iocb::pread(&file, buf, off).user_data(1);
        let err = match ctx.submit(req) {
            Ok(_) => {
                let c = ctx.get_events(1, 1, WAIT).unwrap().pop().expect("a completion");
                let res = c.res();
                assert!(c.into_buf().is_some(), "the buffer comes back");
                res
            }
            Err(e) => -(e.error().raw_os_error().unwrap() as i64),
        };
        assert_eq!(err, -(libc::EINVAL as i64), "misaligned {what}");

        // Checked, it is refused before the kernel sees it, with a message saying why.
        let buf = match what {
            "address" => AlignedBuf::new(2 * a, a).slice(1..1 + a),
            "length" => AlignedBuf::new(2 * a, a).slice(..a - 1),
            _ => AlignedBuf::new(2 * a, a).slice(..a),
        };
        let err = ctx.submit(Iocb::pread(&file, buf, off).check_alignment(align)).unwrap_err();
        let msg = err.error().to_string();
        assert_eq!(err.error().kind(), std::io::ErrorKind::InvalidInput);
        assert!(msg.contains("misaligned O_DIRECT") && msg.contains(what), "{msg}");
        assert_eq!(ctx.in_flight(), 0);
    }
}

#[test]
fn offsets_beyond_i64_are_refused() {
    let ctx = Context::<Vec<u8>>::new(2).unwrap();
    let f = File::open("/dev/null").unwrap();
    let err = ctx.submit(Iocb::pread(&f, Vec::with_capacity(8), u64::MAX)).unwrap_err();
    assert_eq!(err.error().kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.error().to_string().contains("offset"), "{}", err.error());
    assert_eq!(ctx.in_flight(), 0);
}

#[test]
fn setup_limits_are_explained() {
    let err = Context::<Vec<u8>>::new(0).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let max: usize = std::fs::read_to_string("/proc/sys/fs/aio-max-nr")
        .expect("/proc/sys/fs/aio-max-nr")
        .trim()
        .parse()
        .unwrap();
    let err = Context::<Vec<u8>>::new(max + 1).unwrap_err();
    assert!(err.to_string().contains("/proc/sys/fs/aio-max-nr"), "{err}");
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

fn install_sigusr1_handler() {
    // SAFETY: a zeroed sigaction is valid; the handler is an async-signal-safe no-op; sa_flags
    // without SA_RESTART.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Runs `wait` on a thread while another sends it SIGUSR1 every 20 ms until it returns.
fn signal_while<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> T {
    install_sigusr1_handler();
    let (tx, rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = Arc::clone(&done);
    let waiter = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tx.send(unsafe { libc::pthread_self() }).unwrap();
        let r = wait();
        done2.store(true, Ordering::SeqCst);
        r
    });
    let thread = rx.recv().unwrap();
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if !done.load(Ordering::SeqCst) {
            // SAFETY: the thread is alive until `done` is set, and joined only below.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        }
    }
    waiter.join().unwrap()
}

#[test]
fn a_signal_interrupts_get_events_with_eintr() {
    let ctx = Arc::new(Context::<Vec<u8>>::new(4).unwrap());
    let c = Arc::clone(&ctx);
    let r = signal_while(move || c.get_events(1, 1, Some(Duration::from_secs(20))));
    let err = r.expect_err("a signal must interrupt the wait");
    assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
}

#[test]
fn pget_events_blocks_signals_while_waiting() {
    let ctx = Arc::new(Context::<Vec<u8>>::new(4).unwrap());
    let c = Arc::clone(&ctx);
    let started = Instant::now();
    let r = signal_while(move || {
        // SAFETY: a zeroed sigset_t is filled by sigemptyset before use.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `mask` is a valid sigset_t.
        unsafe {
            libc::sigemptyset(&mut mask);
            libc::sigaddset(&mut mask, libc::SIGUSR1);
        }
        c.pget_events(1, 1, Some(Duration::from_millis(300)), Some(&mask))
    });
    assert!(r.expect("SIGUSR1 is masked during the wait").is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
}
