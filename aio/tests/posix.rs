//! `aio::posix` from Rust, on `libc::aiocb` (the libc crate's view of glibc's structure, passed
//! to the functions as `aio::sys::posix::aiocb`): the layout agrees with the libc crate's;
//! aio_fsync waits for the writes queued before it; the background notifier delivers
//! `SIGEV_THREAD` notifications while the program calls nothing, blocks every signal, and
//! exits once idle; an aiocb still in flight cannot be submitted again; a held fsync can be
//! cancelled; many threads submitting and waiting at once all get their own results.
//!
//! The engine is process-wide, so these tests share it (whatever `AIO_ENGINE` says); only
//! `background_notifier_*` uses notifications, so it can watch the notifier thread come and go.

mod common;

use std::fs::File;
use std::io::Write;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aio::posix::{self, Errno};
use aio::sys::posix::{aiocb, sigval, SIGEV_THREAD};

use common::{pattern, test_dir};

/// A zeroed `libc::aiocb` for `fd`: buffer, length, offset, no notification.
fn cb(fd: RawFd, buf: *mut u8, len: usize, offset: i64) -> Box<libc::aiocb> {
    // SAFETY: an all-zero aiocb is valid (glibc's programs bzero theirs too).
    let mut cb: Box<libc::aiocb> = Box::new(unsafe { std::mem::zeroed() });
    cb.aio_fildes = fd;
    cb.aio_buf = buf.cast();
    cb.aio_nbytes = len;
    cb.aio_offset = offset;
    cb.aio_sigevent.sigev_notify = libc::SIGEV_NONE;
    cb
}

/// The libc crate's aiocb as ours: the same structure (see `layout_matches_the_libc_crate`).
fn ptr(cb: &mut libc::aiocb) -> *mut aiocb {
    (cb as *mut libc::aiocb).cast()
}

fn error(cb: &mut libc::aiocb) -> i32 {
    // SAFETY: a live aiocb.
    unsafe { posix::aio_error(ptr(cb)) }.expect("aio_error")
}

fn ret(cb: &mut libc::aiocb) -> isize {
    // SAFETY: a live aiocb.
    unsafe { posix::aio_return(ptr(cb)) }.expect("aio_return")
}

/// Waits (aio_suspend) until `cb` is done, at most 10 s.
fn wait(cb: &mut libc::aiocb) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while error(cb) == libc::EINPROGRESS {
        assert!(Instant::now() < give_up, "request still in progress after 10 s");
        // SAFETY: a live aiocb.
        match unsafe { posix::aio_suspend(&[ptr(cb).cast_const()], Some(Duration::from_secs(1))) } {
            Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => panic!("aio_suspend: errno {e}"),
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: fresh descriptors, owned from here on.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Fills the pipe (non-blocking writes until EAGAIN); returns how many bytes it holds.
fn fill(w: &OwnedFd) -> usize {
    let fd = w.as_raw_fd();
    // SAFETY: fcntl on our own descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    let junk = [0u8; 4096];
    let mut total = 0;
    loop {
        // SAFETY: writes from a live buffer.
        let n = unsafe { libc::write(fd, junk.as_ptr().cast(), junk.len()) };
        if n <= 0 {
            break;
        }
        total += n as usize;
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    total
}

fn drain(r: &OwnedFd, mut n: usize) {
    let mut buf = vec![0u8; 65536];
    while n > 0 {
        // SAFETY: reads into a live buffer.
        let got = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len().min(n)) };
        assert!(got > 0, "drain the pipe");
        n -= got as usize;
    }
}

#[test]
fn layout_matches_the_libc_crate() {
    assert_eq!(size_of::<aiocb>(), size_of::<libc::aiocb>());
    assert_eq!(size_of::<aiocb>(), 168);
    assert_eq!(offset_of!(aiocb, aio_fildes), offset_of!(libc::aiocb, aio_fildes));
    assert_eq!(offset_of!(aiocb, aio_lio_opcode), offset_of!(libc::aiocb, aio_lio_opcode));
    assert_eq!(offset_of!(aiocb, aio_reqprio), offset_of!(libc::aiocb, aio_reqprio));
    assert_eq!(offset_of!(aiocb, aio_buf), offset_of!(libc::aiocb, aio_buf));
    assert_eq!(offset_of!(aiocb, aio_nbytes), offset_of!(libc::aiocb, aio_nbytes));
    assert_eq!(offset_of!(aiocb, aio_sigevent), offset_of!(libc::aiocb, aio_sigevent));
    assert_eq!(offset_of!(aiocb, aio_offset), offset_of!(libc::aiocb, aio_offset));
    assert_eq!(size_of::<aio::sys::posix::sigevent>(), size_of::<libc::sigevent>());
}

#[test]
fn read_and_write_with_libc_aiocbs() {
    let dir = test_dir();
    let path = dir.path().join("rw");
    let data = pattern(1 << 16, 7);
    std::fs::write(&path, &data).expect("write the file");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open");
    let mut buf = vec![0u8; 4096];
    let mut r = cb(file.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 8192);
    // SAFETY: the aiocb and buffer outlive the request (waited for below).
    unsafe { posix::aio_read(ptr(&mut r)) }.expect("aio_read");
    wait(&mut r);
    assert_eq!(error(&mut r), 0);
    assert_eq!(ret(&mut r), 4096);
    assert_eq!(ret(&mut r), 4096, "a second aio_return gives the same value");
    assert_eq!(buf, data[8192..8192 + 4096]);

    let mut out = vec![0xabu8; 512];
    let mut w = cb(file.as_raw_fd(), out.as_mut_ptr(), out.len(), 100);
    // SAFETY: as above.
    unsafe { posix::aio_write(ptr(&mut w)) }.expect("aio_write");
    wait(&mut w);
    assert_eq!(ret(&mut w), 512);
    let back = std::fs::read(&path).expect("read back");
    assert!(back[100..612].iter().all(|&b| b == 0xab));
}

#[test]
fn fsync_waits_for_the_writes_queued_before_it() {
    let (r, w) = pipe();
    let held = fill(&w);
    let mut msg = *b"after the drain";
    let mut write = cb(w.as_raw_fd(), msg.as_mut_ptr(), msg.len(), 0);
    let mut sync = cb(w.as_raw_fd(), std::ptr::null_mut(), 0, 0);
    // SAFETY: the aiocbs and buffer outlive the requests (waited for below).
    unsafe { posix::aio_write(ptr(&mut write)) }.expect("aio_write");
    // SAFETY: as above.
    unsafe { posix::aio_fsync(libc::O_SYNC, ptr(&mut sync)) }.expect("aio_fsync");
    // The write cannot go (the pipe is full), so the fsync is held behind it.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(error(&mut write), libc::EINPROGRESS);
    assert_eq!(error(&mut sync), libc::EINPROGRESS, "the fsync ran before the write");
    drain(&r, held);
    wait(&mut sync);
    assert_ne!(error(&mut write), libc::EINPROGRESS, "the fsync completed before the write");
    assert_eq!(ret(&mut write), msg.len() as isize);
    // A pipe cannot be synced: the fsync itself fails, after the write.
    assert_eq!(error(&mut sync), libc::EINVAL);
}

#[test]
fn held_fsync_can_be_cancelled() {
    let (r, w) = pipe();
    let held = fill(&w);
    let mut msg = *b"x";
    let mut write = cb(w.as_raw_fd(), msg.as_mut_ptr(), 1, 0);
    let mut sync = cb(w.as_raw_fd(), std::ptr::null_mut(), 0, 0);
    // SAFETY: the aiocbs and buffer outlive the requests (waited for below).
    unsafe { posix::aio_write(ptr(&mut write)) }.expect("aio_write");
    // SAFETY: as above.
    unsafe { posix::aio_fsync(libc::O_DSYNC, ptr(&mut sync)) }.expect("aio_fsync");
    // SAFETY: a live aiocb for this descriptor.
    let r2 = unsafe { posix::aio_cancel(w.as_raw_fd(), ptr(&mut sync)) }.expect("aio_cancel");
    assert_eq!(r2, aio::sys::posix::AIO_CANCELED);
    assert_eq!(error(&mut sync), libc::ECANCELED);
    assert_eq!(ret(&mut sync), -1);
    drain(&r, held);
    wait(&mut write);
    assert_eq!(ret(&mut write), 1);
}

#[test]
fn an_aiocb_in_flight_cannot_be_submitted_again() {
    let (r, w) = pipe();
    let mut byte = 0u8;
    let mut read = cb(r.as_raw_fd(), &mut byte, 1, 0);
    // SAFETY: the aiocb and buffer outlive the request (waited for below).
    unsafe { posix::aio_read(ptr(&mut read)) }.expect("aio_read");
    // SAFETY: as above; refused without touching the request.
    assert_eq!(unsafe { posix::aio_read(ptr(&mut read)) }, Err(Errno::EINVAL));
    assert_eq!(error(&mut read), libc::EINPROGRESS, "the refusal changed the status");
    // SAFETY: as above.
    let r = unsafe { posix::aio_return(ptr(&mut read)) };
    assert_eq!(r, Err(Errno::EINPROGRESS), "aio_return before completion");
    (&File::from(w)).write_all(b"z").expect("write to the pipe");
    wait(&mut read);
    assert_eq!(ret(&mut read), 1);
    assert_eq!(byte, b'z');
}

#[test]
fn never_submitted_aiocbs_are_told_apart() {
    let mut fresh = cb(0, std::ptr::null_mut(), 0, 0);
    // SAFETY: a live, zeroed aiocb.
    assert_eq!(unsafe { posix::aio_error(ptr(&mut fresh)) }, Err(Errno::EINVAL));
    // SAFETY: as above.
    assert_eq!(unsafe { posix::aio_return(ptr(&mut fresh)) }, Err(Errno::EINVAL));
    // SAFETY: null is allowed and refused.
    assert_eq!(unsafe { posix::aio_read(std::ptr::null_mut()) }, Err(Errno::EINVAL));
}

/// The threads of this process named `name`, with their blocked-signal masks.
fn threads_named(name: &str) -> Vec<u64> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        found.push(blocked);
    }
    found
}

static NOTIFIED: AtomicUsize = AtomicUsize::new(0);
static SENDER: std::sync::Mutex<Option<mpsc::Sender<i32>>> = std::sync::Mutex::new(None);

extern "C" fn on_done(v: sigval) {
    NOTIFIED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the value was set from an int in the test.
    let value = unsafe { v.sival_int };
    if let Some(tx) = SENDER.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        let _ = tx.send(value);
    }
}

#[test]
fn background_notifier_delivers_blocks_signals_and_exits() {
    let (tx, rx) = mpsc::channel();
    *SENDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    let (r, w) = pipe();
    let mut byte = 0u8;
    let mut read = cb(r.as_raw_fd(), &mut byte, 1, 0);
    {
        let ev = &mut read.aio_sigevent;
        ev.sigev_notify = SIGEV_THREAD;
        ev.sigev_value = libc::sigval { sival_ptr: 77usize as *mut libc::c_void };
        // SAFETY: the union's _sigev_thread member: the function and null attributes, set
        // through our sigevent type, which has the same layout.
        let ours = unsafe { &mut *(ev as *mut libc::sigevent).cast::<aio::sys::posix::sigevent>() };
        ours.sigev_un.thread = aio::sys::posix::sigev_thread {
            function: Some(on_done),
            attributes: std::ptr::null_mut(),
        };
    }
    // SAFETY: the aiocb and buffer outlive the request (the notification says when it is done).
    unsafe { posix::aio_read(ptr(&mut read)) }.expect("aio_read with SIGEV_THREAD");
    // In flight and wanting a notification: the notifier runs, with every signal blocked.
    // (A new thread names itself once it runs, and a notifier an earlier test left may have
    // decided to exit without being gone yet: give both a moment.)
    let give_up = Instant::now() + Duration::from_secs(5);
    let notifier = loop {
        let found = threads_named("aio-notify");
        if found.len() == 1 || Instant::now() > give_up {
            break found;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(notifier.len(), 1, "one notifier while a notification is due");
    let signals = [
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGIO,
        libc::SIGRTMIN() + 1,
        libc::SIGRTMAX(),
    ];
    for sig in signals {
        // SigBlk: bit n-1 is signal n.
        assert!(notifier[0] & (1 << (sig - 1)) != 0, "the notifier takes signal {sig}");
    }
    // The program calls nothing: the notifier takes the completion and runs the function.
    (&File::from(w)).write_all(b"n").expect("write to the pipe");
    let value = rx.recv_timeout(Duration::from_secs(10)).expect("no SIGEV_THREAD notification");
    assert_eq!(value, 77);
    assert_eq!(NOTIFIED.load(Ordering::SeqCst), 1);
    assert_eq!(error(&mut read), 0);
    assert_eq!(ret(&mut read), 1);
    // Nothing left to notify: it exits about a second later.
    let give_up = Instant::now() + Duration::from_secs(10);
    while !threads_named("aio-notify").is_empty() {
        assert!(
            Instant::now() < give_up,
            "the notifier is still there 10 s after its last request"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn many_threads_submit_and_wait_at_once() {
    let dir = test_dir();
    let path = dir.path().join("shared");
    let data = pattern(1 << 20, 3);
    std::fs::write(&path, &data).expect("write the file");
    let file = File::open(&path).expect("open");
    let fd = file.as_raw_fd();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                for i in 0..200usize {
                    let off = ((t * 977 + i * 131) % 250) * 4096;
                    let mut c = cb(fd, buf.as_mut_ptr(), 4096, off as i64);
                    // SAFETY: waited for below, before the aiocb and buffer go.
                    unsafe { posix::aio_read(ptr(&mut c)) }.expect("aio_read");
                    wait(&mut c);
                    assert_eq!(ret(&mut c), 4096);
                    assert_eq!(buf, data[off..off + 4096], "thread {t} read {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a reader thread");
    }
}

#[test]
fn requests_outlive_the_thread_that_submitted_them() {
    // io_uring cancels what a thread submitted when the thread exits; POSIX requests belong to
    // the process, so the library submits such a request again.
    let (r, w) = pipe();
    let mut byte = 0u8;
    let mut read = cb(r.as_raw_fd(), &mut byte, 1, 0);
    let addr = ptr(&mut read) as usize;
    std::thread::spawn(move || {
        // SAFETY: the aiocb lives in the main thread, which waits for the request below.
        unsafe { posix::aio_read(addr as *mut aiocb) }.expect("aio_read");
    })
    .join()
    .expect("the submitting thread");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(error(&mut read), libc::EINPROGRESS, "the submitter's exit ended the request");
    (&File::from(w)).write_all(b"k").expect("write to the pipe");
    wait(&mut read);
    assert_eq!(error(&mut read), 0);
    assert_eq!(ret(&mut read), 1);
    assert_eq!(byte, b'k');
}

#[test]
fn a_waiter_wakes_while_other_threads_poll() {
    // One thread waits in aio_suspend (no timeout) for a pipe read while another polls
    // aio_error in a loop: the poller must not take the waiter's completion from under it.
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let mut a = 0u8;
    let mut b = 0u8;
    let mut waited = cb(r1.as_raw_fd(), &mut a, 1, 0);
    let mut polled = cb(r2.as_raw_fd(), &mut b, 1, 0);
    // SAFETY: both aiocbs and bytes outlive their requests (waited for below).
    unsafe { posix::aio_read(ptr(&mut waited)) }.expect("aio_read");
    // SAFETY: as above.
    unsafe { posix::aio_read(ptr(&mut polled)) }.expect("aio_read");
    let (waited_addr, polled_addr) = (ptr(&mut waited) as usize, ptr(&mut polled) as usize);
    let waiter = std::thread::spawn(move || {
        let list = [waited_addr as *const aiocb];
        let started = Instant::now();
        // SAFETY: the aiocb lives in the main thread, which joins this one first.
        let r = unsafe { posix::aio_suspend(&list, None) };
        (r, started.elapsed())
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut polls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: as above.
                let e = unsafe { posix::aio_error(polled_addr as *const aiocb) };
                assert_eq!(e, Ok(libc::EINPROGRESS));
                polls += 1;
            }
            polls
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let written = Instant::now();
    (&File::from(w1)).write_all(b"w").expect("write to the first pipe");
    let (r, _) = waiter.join().expect("the waiting thread");
    let late = written.elapsed();
    stop.store(true, Ordering::Relaxed);
    let polls = poller.join().expect("the polling thread");
    assert_eq!(r, Ok(()));
    assert!(late < Duration::from_millis(500), "the waiter woke {late:?} after its completion");
    assert!(polls > 0);
    assert_eq!(ret(&mut waited), 1);
    (&File::from(w2)).write_all(b"p").expect("write to the second pipe");
    wait(&mut polled);
    assert_eq!((a, b), (b'w', b'p'));
    drop((r1, r2));
}

/// A thread polls `aio_error` while the requests complete in others: the status it reads is
/// `EINPROGRESS` or the final one, never anything else. The status words (and the mark that
/// says the aiocb was submitted here, rewritten with each status) are read and written
/// atomically: under ThreadSanitizer (scripts/sanitize.sh) this test reports no data race.
#[test]
fn a_status_polled_from_another_thread_while_it_completes() {
    let dir = test_dir();
    let path = dir.path().join("polled");
    let data = pattern(4096, 7);
    std::fs::write(&path, &data).expect("write the file");
    let file = File::open(&path).expect("open the file");
    let mut buf = vec![0u8; 4096];
    let mut read = cb(file.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 0);
    let addr = ptr(&mut read) as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let poller = {
        let (stop, seen) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&seen));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                // SAFETY: the aiocb lives in the main thread, which joins this one first.
                match unsafe { posix::aio_error(addr as *const aiocb) } {
                    Ok(0) | Ok(libc::EINPROGRESS) | Err(Errno::EINVAL) => {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("aio_error while completing: {other:?}"),
                }
            }
        })
    };
    // At least 200 rounds, and on until the poller has looked often (it may start late).
    let mut round = 0;
    while round < 200 || (seen.load(Ordering::Relaxed) < 10_000 && round < 1_000_000) {
        // SAFETY: the aiocb and buffer outlive the request (waited for below).
        unsafe { posix::aio_read(ptr(&mut read)) }.expect("aio_read");
        wait(&mut read);
        assert_eq!(ret(&mut read), 4096, "round {round}");
        assert_eq!(buf, data, "round {round}");
        round += 1;
    }
    stop.store(true, Ordering::Release);
    poller.join().expect("the polling thread");
    assert!(seen.load(Ordering::Relaxed) >= 10_000, "the poller looked too few times");
}

/// A write longer than one transfer (`MAX_RW_COUNT`) is checked against the address space
/// without touching the memory: to `/dev/null`, which takes the bytes unread, it transfers
/// `MAX_RW_COUNT` bytes of a small buffer. The check is made with the raw system calls, so
/// an interposed `write` (AddressSanitizer's, valgrind's) does not take the probe for a real
/// 2 GiB access: under ASan (scripts/sanitize.sh) this test reports nothing.
#[test]
fn a_write_longer_than_one_transfer_is_checked_without_touching_memory() {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").expect("/dev/null");
    let mut small = vec![5u8; 4096];
    let len = aio::sys::posix::MAX_RW_COUNT + 4096;
    let mut write = cb(null.as_raw_fd(), small.as_mut_ptr(), len, 0);
    // SAFETY: /dev/null never reads the memory; the aiocb outlives the request.
    unsafe { posix::aio_write(ptr(&mut write)) }.expect("aio_write");
    wait(&mut write);
    assert_eq!(error(&mut write), 0);
    assert_eq!(ret(&mut write), aio::sys::posix::MAX_RW_COUNT as isize);
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// A long read of a socket (128 KiB, which goes to io_uring's workers when it is of a file)
/// is cancelled, round after round, while the thread gets a signal every 50 µs: `aio_cancel`
/// always answers, and its answer holds. Sent to a worker, such a read could be missed by the
/// cancellation (the kernel said ENOENT while the read waited in the worker), and
/// `aio_cancel` then waited for it for ever.
#[test]
fn long_socket_reads_are_cancelled_under_signals() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: a handler that does nothing, without SA_RESTART.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut());
        }
        // SAFETY: no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let storm = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                // SAFETY: no arguments.
                let pid = unsafe { libc::getpid() };
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: a signal to a thread of this process whose handler is set.
                    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGURG) };
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        };
        let mut buf = vec![0u8; 128 << 10];
        let mut answers = [0usize; 3];
        for _ in 0..300 {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            let mut read = cb(a.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 33);
            // SAFETY: the aiocb and buffer outlive the request (it ends below).
            unsafe { posix::aio_read(ptr(&mut read)) }.expect("aio_read of a socket");
            // SAFETY: a live aiocb for this descriptor.
            let answer = unsafe { posix::aio_cancel(a.as_raw_fd(), ptr(&mut read)) };
            match answer {
                Ok(aio::sys::posix::AIO_CANCELED) => assert_eq!(error(&mut read), libc::ECANCELED),
                Ok(aio::sys::posix::AIO_NOTCANCELED) => {
                    b.shutdown(std::net::Shutdown::Both).expect("shutdown");
                    wait(&mut read);
                }
                other => panic!("aio_cancel of a socket read: {other:?}"),
            }
            answers[answer.unwrap_or(2) as usize] += 1;
        }
        stop.store(true, Ordering::Relaxed);
        storm.join().expect("the signalling thread");
        let _ = tx.send(answers);
    });
    // The test fails, rather than hangs, if aio_cancel never answers.
    let answers = rx.recv_timeout(Duration::from_secs(120)).expect("aio_cancel never answered");
    assert_eq!(answers[0] + answers[1], 300, "answers: {answers:?}");
}

static SOCKET_NOTES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_socket_note(_: sigval) {
    SOCKET_NOTES.fetch_add(1, Ordering::SeqCst);
}

/// A read of a socket at an offset fails with ESPIPE in the kernel and runs again without the
/// offset. Cancelled meanwhile — its first completion not yet processed when `aio_cancel`
/// asked the driver, which no longer knew it — it used to run again anyway, unseen by the
/// cancellation, which then waited for it for ever. (`SIGEV_THREAD` keeps the helper thread
/// taking completions, so the submitter often leaves the first one to it.)
#[test]
fn a_socket_read_at_an_offset_is_cancelled() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 104];
        let mut answers = [0usize; 3];
        for _ in 0..1000 {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            let mut read = cb(a.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 50432);
            {
                let ev = &mut read.aio_sigevent;
                ev.sigev_notify = SIGEV_THREAD;
                // SAFETY: the union's _sigev_thread member, through our sigevent type (same
                // layout).
                let ours = unsafe {
                    &mut *(ev as *mut libc::sigevent).cast::<aio::sys::posix::sigevent>()
                };
                ours.sigev_un.thread = aio::sys::posix::sigev_thread {
                    function: Some(count_socket_note),
                    attributes: std::ptr::null_mut(),
                };
            }
            // SAFETY: the aiocb and buffer outlive the request (it ends below).
            unsafe { posix::aio_read(ptr(&mut read)) }.expect("aio_read of a socket");
            // SAFETY: null: every request on the descriptor.
            let answer = unsafe { posix::aio_cancel(a.as_raw_fd(), std::ptr::null_mut()) };
            match answer {
                Ok(aio::sys::posix::AIO_CANCELED) => assert_eq!(error(&mut read), libc::ECANCELED),
                Ok(aio::sys::posix::AIO_NOTCANCELED) => {
                    b.shutdown(std::net::Shutdown::Both).expect("shutdown");
                    wait(&mut read);
                }
                other => panic!("aio_cancel of a socket read: {other:?}"),
            }
            answers[answer.unwrap_or(2) as usize] += 1;
        }
        let _ = tx.send(answers);
    });
    // The test fails, rather than hangs, if aio_cancel never answers.
    let answers = rx.recv_timeout(Duration::from_secs(120)).expect("aio_cancel never answered");
    assert_eq!(answers[0] + answers[1], 1000, "answers: {answers:?}");
}
