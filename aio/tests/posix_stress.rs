//! The POSIX engine under stress, on each engine (io_uring, kernel AIO, the thread pool) in a
//! process of its own (the engine is chosen once per process, from `AIO_ENGINE`):
//!
//! - worker threads read a file of known contents and write blocks of their own — one request
//!   at a time, and `lio_listio` batches — waiting with `aio_suspend` and short timeouts,
//!   checking every result and every byte;
//! - they read empty pipes and cancel the reads (or, if a read cannot be cancelled, feed it);
//! - requests ask for `SIGEV_SIGNAL` and `SIGEV_THREAD` notifications, each counted by
//!   request: every one must arrive exactly once;
//! - a signal arrives in every worker every few microseconds, and its handler calls
//!   `aio_error` and `aio_return` on the request the worker is waiting for (they are
//!   async-signal-safe): it must only ever see "in progress" or the final result;
//! - another thread forks now and then; the child does its own I/O and exits;
//! - before the storm, a thousand reads parked on one empty pipe are cancelled at once (a wait
//!   that reset the driver's readiness once left completions behind and never woke).
//!
//! Every request ends exactly once with the right bytes; every wait has a timeout, and a
//! watchdog ends the process (failing the test) if the workers stop making progress.
//!
//! `AIO_STRESS_SECS` sets how long each engine is stressed (default 2; e.g. 300 by hand).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio::posix::{self, Errno};
use aio::sys::posix::{aiocb, sigev_thread, sigval, AIO_ALLDONE, AIO_CANCELED, AIO_NOTCANCELED};
use aio_testkit::{note, pattern, skip};

const BLOCK: usize = 4096;
/// Blocks of the file every worker reads.
const READ_BLOCKS: usize = 256;
/// Blocks each worker writes (its own).
const WRITE_BLOCKS: usize = 16;
const WORKERS: usize = 4;
/// Requests that may ask for a notification (ids index the counters).
const IDS: usize = 1 << 20;
/// The watchdog ends the process after this long without progress.
const STALL: Duration = Duration::from_secs(30);

fn stress_secs() -> u64 {
    std::env::var("AIO_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

/// Runs the stress once per engine, each in a child process (this test binary again, running
/// only `stress_child` with `AIO_ENGINE` set).
#[test]
fn stress_on_every_engine() {
    let secs = stress_secs();
    let exe = std::env::current_exe().expect("this test executable");
    for engine in ["uring", "kernel", "pool"] {
        let mut cmd = Command::new(&exe);
        cmd.args(["--ignored", "--exact", "stress_child", "--nocapture", "--test-threads=1"])
            .env("AIO_ENGINE", engine)
            .env("AIO_STRESS_CHILD", engine);
        let started = Instant::now();
        // The child's watchdog fails it long before this.
        let ran = aio_testkit::run(&mut cmd, Duration::from_secs(secs * 2 + 300));
        let out = format!("{}{}", ran.stdout, ran.stderr);
        assert!(ran.status.success(), "stress on {engine} failed ({}):\n{out}", ran.status);
        if let Some(line) = out.lines().find(|l| l.starts_with("SKIP ")) {
            note(line);
            continue;
        }
        let tag = format!("stress {engine}: ");
        let summary =
            out.lines().find_map(|l| l.find(&tag).map(|i| &l[i..])).unwrap_or_else(|| {
                panic!("stress on {engine} printed no summary:\n{out}");
            });
        assert!(out.contains("1 passed"), "stress on {engine}: the child test did not run:\n{out}");
        note(&format!("{summary} ({:.1} s)", started.elapsed().as_secs_f64()));
    }
}

/// One engine's stress (see the module doc); run by `stress_on_every_engine`.
#[test]
#[ignore = "run in a child process per engine by stress_on_every_engine"]
fn stress_child() {
    let Ok(engine) = std::env::var("AIO_STRESS_CHILD") else {
        panic!("run by stress_on_every_engine, with AIO_STRESS_CHILD set");
    };
    match posix::engine_selection() {
        Ok(sel) => note(&format!("engine: {sel}")),
        Err(e) => {
            return skip(
                &format!("posix_stress on {engine}"),
                &format!("the engine cannot run here: {}", e),
            );
        }
    }
    let base = aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let dir = aio_testkit::test_dir(&base, "posix-stress");
    let stress = Stress::new(dir.path());
    install_handlers();
    // A watchdog: the test fails rather than hangs.
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    {
        let (progress, done) = (Arc::clone(&progress), Arc::clone(&done));
        std::thread::spawn(move || watchdog(&progress, &done));
    }
    many_parked_reads_are_cancelled(&progress);
    let secs = stress_secs();
    let report = stress.run(Duration::from_secs(secs), &progress);
    done.store(true, Ordering::SeqCst);
    println!("stress {engine}: {report}");
}

fn watchdog(progress: &AtomicU64, done: &AtomicBool) {
    let mut last = u64::MAX;
    let mut since = Instant::now();
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        let now = progress.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() > STALL {
            eprintln!(
                "FATAL: no progress for {STALL:?} ({now} steps done, {} requests in flight): \
                 a hang",
                posix::in_flight()
            );
            std::process::exit(3);
        }
    }
}

fn aiocb_for(fd: RawFd, buf: *mut u8, len: usize, offset: i64) -> Box<aiocb> {
    // SAFETY: an all-zero aiocb is valid (SIGEV_SIGNAL with signal 0 asks for nothing).
    let mut cb: Box<aiocb> = Box::new(unsafe { std::mem::zeroed() });
    cb.aio_fildes = fd;
    cb.aio_buf = buf.cast();
    cb.aio_nbytes = len;
    cb.aio_offset = offset;
    cb.aio_sigevent.sigev_notify = aio::sys::posix::SIGEV_NONE;
    cb
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe");
    // SAFETY: fresh descriptors, owned from here on.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn error_of(cb: *const aiocb) -> i32 {
    // SAFETY: callers pass live aiocbs.
    unsafe { posix::aio_error(cb) }.expect("aio_error of a submitted aiocb")
}

fn return_of(cb: *mut aiocb) -> isize {
    // SAFETY: callers pass live aiocbs.
    unsafe { posix::aio_return(cb) }.expect("aio_return of a finished request")
}

/// Waits, with `aio_suspend` and 1 ms timeouts (signals may interrupt it), until none of
/// `cbs` is in progress; counts a step of progress each round.
fn wait_all(cbs: &[*const aiocb], progress: &AtomicU64) {
    loop {
        let pending: Vec<*const aiocb> =
            cbs.iter().copied().filter(|&cb| error_of(cb) == libc::EINPROGRESS).collect();
        if pending.is_empty() {
            return;
        }
        // SAFETY: live aiocbs.
        match unsafe { posix::aio_suspend(&pending, Some(Duration::from_millis(1))) } {
            Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => panic!("aio_suspend: errno {e}"),
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// A thousand reads of one empty pipe, cancelled by descriptor: all end (cancelled, or at end
/// of file once the pipe closes), and `aio_cancel` answers.
fn many_parked_reads_are_cancelled(progress: &AtomicU64) {
    const N: usize = 1000;
    let (r, w) = pipe();
    let mut sink = vec![0u8; N];
    let mut cbs: Vec<Box<aiocb>> =
        (0..N).map(|i| aiocb_for(r.as_raw_fd(), &mut sink[i], 1, 0)).collect();
    for cb in &mut cbs {
        // SAFETY: the aiocbs and bytes outlive the requests (waited for below).
        unsafe { posix::aio_read(&mut **cb) }.expect("aio_read of the pipe");
    }
    // SAFETY: `cb` null: every request on the descriptor.
    let answer = unsafe { posix::aio_cancel(r.as_raw_fd(), std::ptr::null_mut()) };
    assert!(matches!(answer, Ok(AIO_CANCELED | AIO_NOTCANCELED)), "aio_cancel: {answer:?}");
    progress.fetch_add(1, Ordering::Relaxed);
    drop(w);
    let ptrs: Vec<*const aiocb> = cbs.iter().map(|cb| &**cb as *const aiocb).collect();
    wait_all(&ptrs, progress);
    let mut cancelled = 0;
    for cb in &mut cbs {
        match error_of(&**cb) {
            libc::ECANCELED => {
                assert_eq!(return_of(&mut **cb), -1);
                cancelled += 1;
            }
            0 => assert_eq!(return_of(&mut **cb), 0, "a read of a closed, empty pipe"),
            e => panic!("a cancelled pipe read ended with errno {e}"),
        }
    }
    if answer == Ok(AIO_CANCELED) {
        assert_eq!(cancelled, N, "AIO_CANCELED, yet some reads were not cancelled");
    }
}

// --- Signals and notifications ---------------------------------------------------------------

/// The signal the storm sends to the workers.
const STORM: libc::c_int = libc::SIGUSR1;

thread_local! {
    /// The request the thread waits for, for the storm's handler to look at (null: none), and
    /// the length it asked for.
    static WATCHED: AtomicPtr<aiocb> = const { AtomicPtr::new(std::ptr::null_mut()) };
    static WATCHED_LEN: AtomicI32 = const { AtomicI32::new(0) };
}

static HANDLED: AtomicU64 = AtomicU64::new(0);
static BAD_STATUS: AtomicU64 = AtomicU64::new(0);
/// Notifications received, by request id.
static NOTES: [AtomicU8; IDS] = [const { AtomicU8::new(0) }; IDS];
/// How each request asked: 1 a signal, 2 a thread.
static NOTE_KIND: [AtomicU8; IDS] = [const { AtomicU8::new(0) }; IDS];
static STRAY_NOTES: AtomicU64 = AtomicU64::new(0);

fn notify_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn on_storm(_sig: libc::c_int) {
    // SAFETY: errno is this thread's; saved and restored around the calls.
    let saved = unsafe { *libc::__errno_location() };
    let cb = WATCHED.with(|w| w.load(Ordering::SeqCst));
    let len = WATCHED_LEN.with(|l| l.load(Ordering::SeqCst)) as isize;
    if !cb.is_null() {
        // SAFETY: the worker keeps the watched aiocb alive, and clears it before it lets go.
        match unsafe { posix::aio_error(cb) } {
            Ok(libc::EINPROGRESS) => {}
            // SAFETY: as above.
            Ok(0) => match unsafe { posix::aio_return(cb) } {
                Ok(n) if n == len => {}
                _ => {
                    BAD_STATUS.fetch_add(1, Ordering::SeqCst);
                }
            },
            _ => {
                BAD_STATUS.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    HANDLED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

fn count_note(id: usize) {
    match NOTES.get(id) {
        Some(n) => {
            n.fetch_add(1, Ordering::SeqCst);
        }
        None => {
            STRAY_NOTES.fetch_add(1, Ordering::SeqCst);
        }
    }
}

extern "C" fn on_note_signal(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    // SAFETY: the kernel's siginfo for a queued signal; si_value is the request's sigev_value.
    let id = unsafe { (*info).si_value().sival_ptr } as usize;
    count_note(id);
}

extern "C" fn on_note_thread(v: sigval) {
    // SAFETY: the value was set from an id.
    count_note(unsafe { v.sival_ptr } as usize);
}

fn install_handlers() {
    // SAFETY: sigaction with handlers that only touch atomics and call async-signal-safe
    // functions; no SA_RESTART, so waits end with EINTR as programs see them.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_storm as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(STORM, &sa, std::ptr::null_mut()), 0);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_note_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(notify_signal(), &sa, std::ptr::null_mut()), 0);
    }
}

/// Asks for a notification for request `id`: a signal (`SIGEV_SIGNAL`) or a thread
/// (`SIGEV_THREAD`).
fn ask_note(cb: &mut aiocb, id: Option<usize>, thread: bool) -> u64 {
    let Some(id) = id else { return 0 };
    NOTE_KIND[id].store(if thread { 2 } else { 1 }, Ordering::SeqCst);
    let ev = &mut cb.aio_sigevent;
    ev.sigev_value = sigval { sival_ptr: id as *mut libc::c_void };
    if thread {
        ev.sigev_notify = aio::sys::posix::SIGEV_THREAD;
        ev.sigev_un.thread =
            sigev_thread { function: Some(on_note_thread), attributes: std::ptr::null_mut() };
    } else {
        ev.sigev_notify = aio::sys::posix::SIGEV_SIGNAL;
        ev.sigev_signo = notify_signal();
    }
    1
}

fn gettid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

// --- The stress ------------------------------------------------------------------------------

struct Stress {
    data: Vec<u8>,
    read_file: File,
    write_file: File,
}

/// What the workers did.
#[derive(Default)]
struct Counts {
    reads: u64,
    writes: u64,
    lists: u64,
    cancels: u64,
    fsyncs: u64,
    forks: u64,
    noted: u64,
}

impl Stress {
    fn new(dir: &Path) -> Stress {
        let data = pattern(READ_BLOCKS * BLOCK, 11);
        std::fs::write(dir.join("read"), &data).expect("write the read file");
        let read_file = File::open(dir.join("read")).expect("open the read file");
        let write_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("write"))
            .expect("open the write file");
        Stress { data, read_file, write_file }
    }

    fn run(&self, length: Duration, progress: &AtomicU64) -> String {
        let until = Instant::now() + length;
        let tids: Vec<AtomicI32> = (0..WORKERS).map(|_| AtomicI32::new(0)).collect();
        let stop = AtomicBool::new(false);
        let next_id = AtomicU64::new(1);
        let counts = std::thread::scope(|s| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|w| {
                    let (tids, next_id) = (&tids, &next_id);
                    s.spawn(move || {
                        tids[w].store(gettid(), Ordering::SeqCst);
                        let counts = self.worker(w, until, next_id, progress);
                        tids[w].store(0, Ordering::SeqCst);
                        counts
                    })
                })
                .collect();
            s.spawn(|| storm(&tids, &stop));
            let forker = s.spawn(|| self.forker(until, progress));
            let mut counts = Counts::default();
            for w in workers {
                let c = w.join().expect("a worker");
                counts.reads += c.reads;
                counts.writes += c.writes;
                counts.lists += c.lists;
                counts.cancels += c.cancels;
                counts.fsyncs += c.fsyncs;
                counts.noted += c.noted;
            }
            counts.forks = forker.join().expect("the forking thread");
            stop.store(true, Ordering::SeqCst);
            counts
        });
        // Every notification arrives, exactly once. (Under ThreadSanitizer, which keeps one
        // pending instance of each signal per thread, queued signals merge: with
        // AIO_STRESS_SIGNALS_MERGE set, as scripts/sanitize.sh sets it, a signal notification
        // must arrive at most once.)
        let merge = std::env::var_os("AIO_STRESS_SIGNALS_MERGE").is_some();
        let ids = (next_id.load(Ordering::SeqCst) as usize).min(IDS);
        let give_up = Instant::now() + Duration::from_secs(20);
        loop {
            let missing: Vec<usize> = (1..ids)
                .filter(|&i| NOTES[i].load(Ordering::SeqCst) == 0)
                .filter(|&i| !merge || NOTE_KIND[i].load(Ordering::SeqCst) != 1)
                .collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > give_up {
                let by_signal =
                    missing.iter().filter(|&&i| NOTE_KIND[i].load(Ordering::SeqCst) == 1).count();
                panic!(
                    "{} notifications never came ({by_signal} signals, {} threads); ids {:?}",
                    missing.len(),
                    missing.len() - by_signal,
                    &missing[..missing.len().min(20)]
                );
            }
            std::thread::sleep(Duration::from_millis(10));
            progress.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(100));
        for (i, n) in NOTES.iter().enumerate().take(ids).skip(1) {
            let got = n.load(Ordering::SeqCst);
            assert!(got <= 1, "request {i}: notified {got} times");
            assert!(got == 1 || merge, "request {i}: not notified");
        }
        assert_eq!(NOTES[0].load(Ordering::SeqCst), 0, "a notification for no request");
        assert_eq!(STRAY_NOTES.load(Ordering::SeqCst), 0, "notifications for no request");
        assert_eq!(
            BAD_STATUS.load(Ordering::SeqCst),
            0,
            "a signal handler saw a status that was neither in progress nor the final one"
        );
        assert!(HANDLED.load(Ordering::SeqCst) > 0, "no storm signal was handled");
        let give_up = Instant::now() + Duration::from_secs(5);
        while posix::in_flight() > 0 {
            assert!(Instant::now() < give_up, "{} requests still in flight", posix::in_flight());
            std::thread::sleep(Duration::from_millis(5));
        }
        format!(
            "{} reads, {} writes, {} lists, {} cancelled pipe reads, {} fsyncs, {} forks, {} \
             notifications, {} signals handled",
            counts.reads,
            counts.writes,
            counts.lists,
            counts.cancels,
            counts.fsyncs,
            counts.forks,
            counts.noted,
            HANDLED.load(Ordering::SeqCst)
        )
    }

    /// One worker: rounds of single reads and writes, lists, cancelled pipe reads and fsyncs.
    fn worker(
        &self,
        w: usize,
        until: Instant,
        next_id: &AtomicU64,
        progress: &AtomicU64,
    ) -> Counts {
        let mut counts = Counts::default();
        let mut rng = (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rand = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut bufs = vec![vec![0u8; BLOCK]; 8];
        let mut written = vec![None::<u64>; WRITE_BLOCKS];
        let mut round = 0u64;
        // A request id for a notification, while there are counters left.
        let id = || {
            let i = next_id.fetch_add(1, Ordering::SeqCst) as usize;
            (i < IDS).then_some(i)
        };
        while Instant::now() < until {
            round += 1;
            match rand(5) {
                // One read, maybe notified.
                0 => {
                    let block = rand(READ_BLOCKS);
                    let mut cb = aiocb_for(
                        self.read_file.as_raw_fd(),
                        bufs[0].as_mut_ptr(),
                        BLOCK,
                        (block * BLOCK) as i64,
                    );
                    let notified = rand(4) == 0;
                    if notified {
                        counts.noted += ask_note(&mut cb, id(), rand(2) == 0);
                    }
                    self.submit_and_wait(&mut cb, false, progress);
                    assert_eq!(return_of(&mut *cb), BLOCK as isize, "worker {w} read");
                    assert_eq!(
                        bufs[0],
                        self.data[block * BLOCK..][..BLOCK],
                        "worker {w} read {block}"
                    );
                    counts.reads += 1;
                }
                // One write of a block of its own, checked with pread.
                1 => {
                    let k = rand(WRITE_BLOCKS);
                    let block = w * WRITE_BLOCKS + k;
                    let seed = (w as u64) << 32 | round;
                    bufs[0] = pattern(BLOCK, seed);
                    let mut cb = aiocb_for(
                        self.write_file.as_raw_fd(),
                        bufs[0].as_mut_ptr(),
                        BLOCK,
                        (block * BLOCK) as i64,
                    );
                    if rand(4) == 0 {
                        counts.noted += ask_note(&mut cb, id(), rand(2) == 0);
                    }
                    self.submit_and_wait(&mut cb, true, progress);
                    assert_eq!(return_of(&mut *cb), BLOCK as isize, "worker {w} write");
                    written[k] = Some(seed);
                    let mut back = vec![0u8; BLOCK];
                    self.write_file
                        .read_exact_at(&mut back, (block * BLOCK) as u64)
                        .expect("pread");
                    assert_eq!(back, bufs[0], "worker {w} block {block} after its write");
                    counts.writes += 1;
                }
                // A list of reads and writes (distinct blocks), LIO_WAIT or LIO_NOWAIT.
                2 => {
                    let n = 1 + rand(8);
                    let mut cbs: Vec<Box<aiocb>> = Vec::with_capacity(n);
                    let mut seeds = Vec::with_capacity(n);
                    let first = rand(WRITE_BLOCKS);
                    for (i, buf) in bufs.iter_mut().enumerate().take(n) {
                        let write = i % 2 == 1;
                        let (fd, off, seed) = if write {
                            let k = (first + i) % WRITE_BLOCKS;
                            let seed = (w as u64) << 32 | round << 8 | i as u64;
                            *buf = pattern(BLOCK, seed);
                            (
                                self.write_file.as_raw_fd(),
                                (w * WRITE_BLOCKS + k) * BLOCK,
                                Some((k, seed)),
                            )
                        } else {
                            (self.read_file.as_raw_fd(), rand(READ_BLOCKS) * BLOCK, None)
                        };
                        let mut cb = aiocb_for(fd, buf.as_mut_ptr(), BLOCK, off as i64);
                        cb.aio_lio_opcode = if write { libc::LIO_WRITE } else { libc::LIO_READ };
                        if rand(8) == 0 {
                            counts.noted += ask_note(&mut cb, id(), rand(2) == 0);
                        }
                        seeds.push(seed);
                        cbs.push(cb);
                    }
                    let list: Vec<*mut aiocb> =
                        cbs.iter_mut().map(|cb| &mut **cb as *mut aiocb).collect();
                    let mode = if rand(2) == 0 { libc::LIO_WAIT } else { libc::LIO_NOWAIT };
                    // SAFETY: the aiocbs and buffers outlive the requests (waited for below).
                    match unsafe { posix::lio_listio(mode, &list, std::ptr::null()) } {
                        Ok(()) | Err(Errno::EINTR) => {}
                        Err(e) => panic!("worker {w}: lio_listio: errno {e}"),
                    }
                    let ptrs: Vec<*const aiocb> = list.iter().map(|&p| p.cast_const()).collect();
                    wait_all(&ptrs, progress);
                    for (i, cb) in cbs.iter_mut().enumerate() {
                        assert_eq!(error_of(&**cb), 0, "worker {w} list entry {i}");
                        assert_eq!(
                            return_of(&mut **cb),
                            BLOCK as isize,
                            "worker {w} list entry {i}"
                        );
                        let off = cb.aio_offset as usize;
                        match seeds[i] {
                            Some((k, seed)) => written[k] = Some(seed),
                            None => assert_eq!(
                                bufs[i],
                                self.data[off..][..BLOCK],
                                "worker {w} list read {i}"
                            ),
                        }
                    }
                    counts.lists += 1;
                }
                // A read of an empty pipe, cancelled (or fed, if it cannot be).
                3 => {
                    let (r, wr) = pipe();
                    let mut byte = 0u8;
                    let mut cb = aiocb_for(r.as_raw_fd(), &mut byte, 1, 0);
                    if rand(3) == 0 {
                        counts.noted += ask_note(&mut cb, id(), rand(2) == 0);
                    }
                    // SAFETY: the aiocb and byte outlive the request (waited for below).
                    unsafe { posix::aio_read(&mut *cb) }.expect("aio_read of a pipe");
                    let target =
                        if rand(2) == 0 { std::ptr::null_mut() } else { &mut *cb as *mut aiocb };
                    // SAFETY: a live aiocb, or null.
                    let answer = unsafe { posix::aio_cancel(r.as_raw_fd(), target) };
                    match answer {
                        Ok(AIO_CANCELED) => {
                            assert_eq!(error_of(&*cb), libc::ECANCELED, "worker {w}: cancelled");
                            assert_eq!(return_of(&mut *cb), -1);
                            counts.cancels += 1;
                        }
                        Ok(AIO_NOTCANCELED) | Ok(AIO_ALLDONE) => {
                            // Running (or done): it reads the byte now written.
                            (&File::from(wr.try_clone().expect("dup")))
                                .write_all(b"x")
                                .expect("write to the pipe");
                            wait_all(&[&*cb as *const aiocb], progress);
                            match error_of(&*cb) {
                                0 => assert_eq!((return_of(&mut *cb), byte), (1, b'x')),
                                libc::ECANCELED => assert_eq!(return_of(&mut *cb), -1),
                                e => panic!("worker {w}: pipe read ended with errno {e}"),
                            }
                        }
                        other => panic!("worker {w}: aio_cancel: {other:?}"),
                    }
                    drop((r, wr));
                }
                // An fsync of the write file, after a write.
                _ => {
                    let mut cb = aiocb_for(self.write_file.as_raw_fd(), std::ptr::null_mut(), 0, 0);
                    if rand(4) == 0 {
                        counts.noted += ask_note(&mut cb, id(), rand(2) == 0);
                    }
                    // SAFETY: the aiocb outlives the request (waited for below).
                    unsafe { posix::aio_fsync(libc::O_DSYNC, &mut *cb) }.expect("aio_fsync");
                    let p = &*cb as *const aiocb;
                    WATCHED_LEN.with(|l| l.store(0, Ordering::SeqCst));
                    WATCHED.with(|x| x.store(p.cast_mut(), Ordering::SeqCst));
                    wait_all(&[p], progress);
                    WATCHED.with(|x| x.store(std::ptr::null_mut(), Ordering::SeqCst));
                    assert_eq!(error_of(p), 0, "worker {w}: fsync");
                    counts.fsyncs += 1;
                }
            }
            progress.fetch_add(1, Ordering::Relaxed);
        }
        // What this worker wrote is there.
        for (k, seed) in written.iter().enumerate() {
            if let Some(seed) = seed {
                let mut back = vec![0u8; BLOCK];
                let off = ((w * WRITE_BLOCKS + k) * BLOCK) as u64;
                self.write_file.read_exact_at(&mut back, off).expect("pread");
                assert_eq!(back, pattern(BLOCK, *seed), "worker {w}: block {k} at the end");
            }
        }
        counts
    }

    /// Submits `cb` (a read, or a write), and waits for it with the storm's handler watching.
    fn submit_and_wait(&self, cb: &mut aiocb, write: bool, progress: &AtomicU64) {
        let p = cb as *mut aiocb;
        // SAFETY: the aiocb and its buffer outlive the request (waited for below).
        let r = unsafe {
            if write {
                posix::aio_write(p)
            } else {
                posix::aio_read(p)
            }
        };
        r.expect("submit");
        WATCHED_LEN.with(|l| l.store(cb.aio_nbytes as i32, Ordering::SeqCst));
        WATCHED.with(|w| w.store(p, Ordering::SeqCst));
        wait_all(&[p.cast_const()], progress);
        WATCHED.with(|w| w.store(std::ptr::null_mut(), Ordering::SeqCst));
    }

    /// Forks now and then: the child reads the file through its own engine, checks the bytes
    /// and exits; the parent waits for it (killing it if it hangs). Returns how many children
    /// ran.
    fn forker(&self, until: Instant, progress: &AtomicU64) -> u64 {
        let mut forks = 0;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            let fd = self.read_file.as_raw_fd();
            let want = &self.data[..BLOCK];
            // SAFETY: the child only runs `child_io` and exits with _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                let code = child_io(fd, want);
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(code) };
            }
            let give_up = Instant::now() + Duration::from_secs(20);
            let status = loop {
                let mut status = 0;
                // SAFETY: our own child.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if r == pid {
                    break status;
                }
                if Instant::now() > give_up {
                    // SAFETY: our own child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    panic!("a forked child did not finish its I/O in 20 s");
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "a forked child failed: status {status:#x}"
            );
            forks += 1;
            progress.fetch_add(1, Ordering::Relaxed);
        }
        forks
    }
}

/// In a forked child: one read through a fresh engine, checked. Returns the exit code.
fn child_io(fd: RawFd, want: &[u8]) -> i32 {
    let mut buf = [0u8; BLOCK];
    // SAFETY: an all-zero aiocb is valid.
    let mut cb: aiocb = unsafe { std::mem::zeroed() };
    cb.aio_fildes = fd;
    cb.aio_buf = buf.as_mut_ptr().cast();
    cb.aio_nbytes = BLOCK;
    cb.aio_sigevent.sigev_notify = aio::sys::posix::SIGEV_NONE;
    // SAFETY: the aiocb and buffer outlive the request (waited for below).
    if unsafe { posix::aio_read(&mut cb) }.is_err() {
        return 10;
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: a live aiocb.
        match unsafe { posix::aio_error(&cb) } {
            Ok(libc::EINPROGRESS) => {}
            Ok(0) => break,
            _ => return 11,
        }
        if Instant::now() > give_up {
            return 12;
        }
        // SAFETY: a live aiocb.
        let _ =
            unsafe { posix::aio_suspend(&[&cb as *const aiocb], Some(Duration::from_millis(10))) };
    }
    // SAFETY: a live aiocb.
    if unsafe { posix::aio_return(&mut cb) } != Ok(BLOCK as isize) {
        return 13;
    }
    if buf[..] != *want {
        return 14;
    }
    0
}

/// Sends the storm's signal to every worker, one after another, every few microseconds.
fn storm(tids: &[AtomicI32], stop: &AtomicBool) {
    // SAFETY: no arguments.
    let pid = unsafe { libc::getpid() };
    while !stop.load(Ordering::SeqCst) {
        for t in tids {
            let tid = t.load(Ordering::SeqCst);
            if tid > 0 {
                // SAFETY: a signal to a thread of this process (a worker, whose handler is set).
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, STORM) };
            }
        }
        std::thread::sleep(Duration::from_micros(20));
    }
}
