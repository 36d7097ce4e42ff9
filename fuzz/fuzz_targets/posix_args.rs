//! The POSIX AIO entry points (`aio::posix`, what libposixaio.so exports) with arbitrary
//! arguments: aiocb fields (descriptors good, bad and negative; opcodes; priorities; buffers
//! inside memory this program owns with lengths up to huge, or bad addresses; offsets up to
//! negative and huge; every kind of sigevent), `lio_listio` lists with nulls, duplicates and
//! `LIO_NOP`, `aio_suspend` timeouts malformed or huge, `aio_cancel` with a mismatched
//! descriptor.
//!
//! Memory: buffers lie in an arena followed by inaccessible guard pages (`common::Arena`), so
//! whatever length the input gives, a transfer stops at the guard; bad addresses are ones the
//! kernel refuses (null, the guard, kernel or non-canonical addresses). Waits that could last
//! for ever (no timeout, a huge one, `LIO_WAIT` on an empty pipe) are interrupted by a signal.
//!
//! Checked: no crash or hang; every return follows the documented errno conventions; a request
//! accepted ends exactly once — its status becomes final, and its notification (a signal or a
//! thread, carrying a unique value) arrives once — and one refused is never notified;
//! `aio_cancel`'s answer holds (statuses final when it says cancelled or all done); results
//! are consistent (`aio_return` is -1 exactly when `aio_error` names an error; a read or write
//! reports no more than it asked for); nothing is left in flight after each input.

#![no_main]

mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use aio::posix::{self, Errno};
use aio::sys::posix::{
    aiocb, sigev_thread, sigevent, sigval, AIO_ALLDONE, AIO_CANCELED, AIO_NOTCANCELED, LIO_NOP,
    LIO_NOWAIT, LIO_READ, LIO_WAIT, LIO_WRITE, MAX_RW_COUNT, SIGEV_NONE, SIGEV_SIGNAL,
    SIGEV_THREAD, SIGEV_THREAD_ID,
};

use common::{bad_address, is_errno, Arena, Fds, Interrupted, BUF_LEN};

const SLOTS: usize = 8;
/// Notification values: the id of the request that asked (0 is never used).
const IDS: usize = 4096;
static NOTES: [AtomicU32; IDS] = [const { AtomicU32::new(0) }; IDS];
static STRAY: AtomicU32 = AtomicU32::new(0);
/// The input being run: notification values carry it above the id (`value >> 16`), so one
/// that arrives after its input ended (a request whose notification was only possible) is
/// not counted for the next.
static GEN: AtomicU32 = AtomicU32::new(0);
static LATE: AtomicU32 = AtomicU32::new(0);

fn value_of(id: usize) -> sigval {
    let v = (GEN.load(Ordering::SeqCst) as usize) << 16 | id;
    sigval { sival_ptr: v as *mut libc::c_void }
}

fn note_signal() -> i32 {
    libc::SIGRTMIN() + 2
}

fn count(value: usize) {
    if (value >> 16) as u32 != GEN.load(Ordering::SeqCst) {
        LATE.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let id = value & 0xffff;
    match NOTES.get(id) {
        Some(n) if id > 0 => {
            n.fetch_add(1, Ordering::SeqCst);
        }
        _ => {
            STRAY.fetch_add(1, Ordering::SeqCst);
        }
    }
}

extern "C" fn on_note(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo; si_value is the request's sigev_value.
    count(unsafe { (*info).si_value().sival_ptr } as usize);
}

extern "C" fn on_thread(v: sigval) {
    // SAFETY: set from an id.
    count(unsafe { v.sival_ptr } as usize);
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Notify {
    None,
    Signal,
    SignalZero,
    SignalBad(i32),
    ThreadId,
    ThreadIdBad(i32),
    Thread,
    ThreadNull,
    Raw(i32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Small(u16),
    Buffer,
    Past(u16),
    Rw,
    Huge(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Offset {
    Small(u16),
    Negative(i16),
    Huge(i64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Fields {
    fd: u8,
    raw_fd: i32,
    opcode: i8,
    reqprio: i8,
    buf_off: u16,
    bad_buf: Option<u8>,
    len: Len,
    offset: Offset,
    notify: Notify,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Timeout {
    Null,
    Zero,
    Short(u16),
    Raw(i64, i64),
    Huge,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Read(u8, Fields),
    Write(u8, Fields),
    Fsync(u8, i32, Fields),
    Error(u8),
    Return(u8),
    Fresh,
    Null,
    Suspend(Vec<Option<u8>>, Timeout),
    Cancel { fd: u8, raw_fd: i32, slot: Option<u8>, fd_of_slot: bool },
    Listio { mode: u8, raw_mode: i32, entries: Vec<Option<(u8, Option<Fields>)>>, sig: Option<Notify> },
    FeedPipe(u8),
}

/// What may be notified, by id: `certain` notifications must arrive, up to `possible` more may.
#[derive(Default, Clone, Copy)]
struct Expect {
    certain: u32,
    possible: u32,
}

struct Run<'a> {
    fds: &'a Fds,
    cbs: Vec<Box<aiocb>>,
    /// The id carried by each slot's current request (0: none).
    ids: [usize; SLOTS],
    next_id: usize,
    expect: HashMap<usize, Expect>,
    /// Descriptors requests were submitted on (to cancel at the end).
    used_fds: Vec<i32>,
    /// Each slot's fields when last written (for checking results).
    fields: [Option<(Fields, i32, usize)>; SLOTS],
    /// Slots ever submitted.
    submitted: [bool; SLOTS],
}

fn err_of(cb: *const aiocb) -> Result<i32, i32> {
    // SAFETY: our live aiocbs.
    unsafe { posix::aio_error(cb) }.map_err(Errno::raw)
}

impl Run<'_> {
    fn cb(&mut self, slot: u8) -> *mut aiocb {
        &mut *self.cbs[usize::from(slot) % SLOTS]
    }

    fn in_progress(&self, slot: usize) -> bool {
        err_of(&*self.cbs[slot]) == Ok(libc::EINPROGRESS)
    }

    /// Whether the notification is one that will be sent (a signal or a thread).
    fn notify_async(n: Notify) -> Option<bool> {
        // Some(true): sends; Some(false): none; None: refused.
        match n {
            Notify::None | Notify::SignalZero => Some(false),
            Notify::Signal | Notify::ThreadId | Notify::Thread => Some(true),
            Notify::SignalBad(_) | Notify::ThreadIdBad(_) | Notify::ThreadNull => None,
            Notify::Raw(v) => match v {
                SIGEV_NONE => Some(false),
                SIGEV_SIGNAL | SIGEV_THREAD_ID | SIGEV_THREAD => Some(true),
                _ => None,
            },
        }
    }

    fn set_sigevent(&mut self, ev: &mut sigevent, n: Notify, id: usize) {
        // SAFETY: all-zero is a valid sigevent.
        *ev = unsafe { std::mem::zeroed() };
        ev.sigev_value = value_of(id);
        let tid = gettid();
        match n {
            Notify::None => ev.sigev_notify = SIGEV_NONE,
            Notify::Signal => {
                ev.sigev_notify = SIGEV_SIGNAL;
                ev.sigev_signo = note_signal();
            }
            Notify::SignalZero => ev.sigev_notify = SIGEV_SIGNAL,
            Notify::SignalBad(s) => {
                ev.sigev_notify = SIGEV_SIGNAL;
                ev.sigev_signo = if s < 0 { s } else { libc::SIGRTMAX() + 1 + (s & 0xfff) };
            }
            Notify::ThreadId => {
                ev.sigev_notify = SIGEV_THREAD_ID;
                ev.sigev_signo = note_signal();
                ev.sigev_un.tid = tid;
            }
            Notify::ThreadIdBad(t) => {
                ev.sigev_notify = SIGEV_THREAD_ID;
                ev.sigev_signo = note_signal();
                // Zero, negative, or far above any thread id.
                ev.sigev_un.tid = if t <= 0 { t } else { 0x3fff_0000 | (t & 0xffff) };
            }
            Notify::Thread => {
                ev.sigev_notify = SIGEV_THREAD;
                ev.sigev_un.thread =
                    sigev_thread { function: Some(on_thread), attributes: std::ptr::null_mut() };
            }
            Notify::ThreadNull => {
                ev.sigev_notify = SIGEV_THREAD;
                ev.sigev_un.thread = sigev_thread { function: None, attributes: std::ptr::null_mut() };
            }
            Notify::Raw(v) => {
                ev.sigev_notify = v;
                ev.sigev_signo = note_signal();
                match v {
                    SIGEV_THREAD_ID => ev.sigev_un.tid = tid,
                    SIGEV_THREAD => {
                        ev.sigev_un.thread = sigev_thread {
                            function: Some(on_thread),
                            attributes: std::ptr::null_mut(),
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Writes `f` into slot `slot` (which is not in flight); returns the request's id.
    fn fill(&mut self, slot: usize, f: &Fields, opcode: i32) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        let arena = Arena::get();
        let fd = self.fds.pick(f.fd, f.raw_fd);
        let buf = match f.bad_buf {
            Some(b) => bad_address(b),
            None => arena.at(usize::from(f.buf_off) % BUF_LEN),
        };
        let room = BUF_LEN - (usize::from(f.buf_off) % BUF_LEN);
        let nbytes = match f.len {
            Len::Small(n) => usize::from(n),
            Len::Buffer => room,
            Len::Past(n) => room + usize::from(n),
            Len::Rw => MAX_RW_COUNT + 1,
            Len::Huge(n) => n as usize,
        };
        let offset = match f.offset {
            Offset::Small(o) => i64::from(o),
            Offset::Negative(o) => -i64::from(o.unsigned_abs()).max(1),
            Offset::Huge(o) => o,
        };
        let cb = &mut *self.cbs[slot];
        // SAFETY: all-zero is a valid aiocb; this one is not in flight.
        *cb = unsafe { std::mem::zeroed() };
        cb.aio_fildes = fd;
        cb.aio_lio_opcode = opcode;
        cb.aio_reqprio = i32::from(f.reqprio);
        cb.aio_buf = buf.cast();
        cb.aio_nbytes = nbytes;
        cb.aio_offset = offset;
        let mut ev = cb.aio_sigevent;
        self.set_sigevent(&mut ev, f.notify, id);
        self.cbs[slot].aio_sigevent = ev;
        self.ids[slot] = id;
        self.fields[slot] = Some((*f, fd, nbytes));
        if !self.used_fds.contains(&fd) {
            self.used_fds.push(fd);
        }
        id
    }

    fn submit(&mut self, slot: u8, kind: u8, op: i32, f: &Fields) {
        let slot = usize::from(slot) % SLOTS;
        let busy = self.in_progress(slot);
        if !busy {
            self.fill(slot, f, LIO_READ);
        }
        let cb: *mut aiocb = &mut *self.cbs[slot];
        // SAFETY: the aiocb and the arena outlive the request (everything ends before the
        // aiocbs go).
        let r = unsafe {
            match kind {
                0 => posix::aio_read(cb).map_err(Errno::raw),
                1 => posix::aio_write(cb).map_err(Errno::raw),
                _ => posix::aio_fsync(op, cb).map_err(Errno::raw),
            }
        };
        self.submitted[slot] = true;
        match r {
            Ok(()) => {
                // (If it was in flight when looked at, it ended since: the aiocb, not
                // rewritten, went in again with the fields it had.)
                let Some((f, _, _)) = self.fields[slot] else {
                    // Never written: no descriptor, no notification.
                    return;
                };
                assert!(
                    kind >= 2 || (0..=20).contains(&f.reqprio),
                    "aio_reqprio {} was accepted",
                    f.reqprio
                );
                if Self::notify_async(f.notify) == Some(true) {
                    self.expect.entry(self.ids[slot]).or_default().certain += 1;
                }
                assert!(
                    Self::notify_async(f.notify).is_some(),
                    "a bad sigevent was accepted: {:?}",
                    f.notify
                );
            }
            Err(e) => {
                assert!(
                    matches!(e, libc::EINVAL | libc::EAGAIN | libc::EBADF),
                    "submission failed with errno {e}"
                );
                if busy {
                    let fsync_ok = kind >= 2 && e == libc::EBADF;
                    assert!(e == libc::EINVAL || fsync_ok, "resubmitting an aiocb in flight: {e}");
                } else if e == libc::EINVAL && kind < 2 {
                    // Refused at once: -1 and the errno in the aiocb too.
                    assert_eq!(err_of(cb), Ok(libc::EINVAL), "a refusal's status");
                    // SAFETY: our aiocb.
                    assert_eq!(unsafe { posix::aio_return(cb) }.map_err(Errno::raw), Ok(-1), "a refusal's return");
                }
            }
        }
    }

    fn status(&mut self, slot: u8) {
        let cb = self.cb(slot);
        match err_of(cb) {
            Ok(e) => assert!(e == 0 || e == libc::EINPROGRESS || is_errno(i64::from(e)), "aio_error {e}"),
            Err(e) => assert_eq!(e, libc::EINVAL, "aio_error failed with {e}"),
        }
    }

    fn ret(&mut self, slot: u8) {
        let cb = self.cb(slot);
        let before = err_of(cb);
        // SAFETY: our aiocb.
        let r = unsafe { posix::aio_return(cb) }.map_err(Errno::raw);
        match r {
            Ok(v) => {
                assert!(v >= -1, "aio_return {v}");
                if let Ok(e) = before {
                    if e != libc::EINPROGRESS {
                        assert_eq!(v == -1, e != 0, "aio_return {v} with aio_error {e}");
                    }
                }
            }
            Err(e) => assert!(matches!(e, libc::EINPROGRESS | libc::EINVAL), "aio_return failed with {e}"),
        }
    }

    fn suspend(&mut self, list: &[Option<u8>], t: Timeout) {
        let list: Vec<*const aiocb> = list
            .iter()
            .take(16)
            .map(|s| match s {
                Some(s) => &*self.cbs[usize::from(*s) % SLOTS] as *const aiocb,
                None => std::ptr::null(),
            })
            .collect();
        let ts = match t {
            Timeout::Null => None,
            Timeout::Zero => Some(libc::timespec { tv_sec: 0, tv_nsec: 0 }),
            Timeout::Short(us) => Some(libc::timespec { tv_sec: 0, tv_nsec: i64::from(us) * 100 }),
            Timeout::Raw(s, ns) => Some(libc::timespec { tv_sec: s, tv_nsec: ns }),
            Timeout::Huge => Some(libc::timespec { tv_sec: i64::MAX, tv_nsec: 999_999_999 }),
        };
        let malformed = ts.is_some_and(|t| t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec));
        let tp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let _wake = Interrupted::after(Duration::from_millis(20));
        // SAFETY: live aiocbs and timespec.
        let r = unsafe { posix::aio_suspend_timespec(&list, tp) }.map_err(Errno::raw);
        match r {
            Ok(()) => {}
            Err(libc::EAGAIN) | Err(libc::EINTR) => {}
            Err(libc::EINVAL) => assert!(malformed, "EINVAL from aio_suspend with a good timeout"),
            Err(e) => panic!("aio_suspend failed with {e}"),
        }
    }

    fn cancel(&mut self, fd: u8, raw_fd: i32, slot: Option<u8>, fd_of_slot: bool) {
        let cb = match slot {
            Some(s) => self.cb(s),
            None => std::ptr::null_mut(),
        };
        let fd = match (slot, fd_of_slot) {
            // SAFETY: our aiocb.
            (Some(_), true) => unsafe { (*cb).aio_fildes },
            _ => self.fds.pick(fd, raw_fd),
        };
        let _wake = Interrupted::after(Duration::from_millis(5));
        // SAFETY: our aiocb, or null.
        let r = unsafe { posix::aio_cancel(fd, cb) }.map_err(Errno::raw);
        match r {
            Ok(AIO_CANCELED) | Ok(AIO_ALLDONE) => {
                if !cb.is_null() {
                    assert_ne!(err_of(cb), Ok(libc::EINPROGRESS), "aio_cancel said {r:?}, yet in progress");
                } else {
                    for slot in 0..SLOTS {
                        if self.cbs[slot].aio_fildes == fd && self.submitted[slot] {
                            assert_ne!(
                                err_of(&*self.cbs[slot]),
                                Ok(libc::EINPROGRESS),
                                "aio_cancel({fd}, NULL) said {r:?}, yet slot {slot} is in progress"
                            );
                        }
                    }
                }
            }
            Ok(AIO_NOTCANCELED) => {}
            Ok(v) => panic!("aio_cancel answered {v}"),
            Err(libc::EBADF) => {
                // SAFETY: F_GETFL only asks.
                assert!(fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFL) } == -1, "EBADF for open fd");
            }
            // SAFETY: our aiocb.
            Err(libc::EINVAL) => assert!(!cb.is_null() && unsafe { (*cb).aio_fildes } != fd),
            Err(e) => panic!("aio_cancel failed with {e}"),
        }
    }

    fn listio(&mut self, mode: u8, raw_mode: i32, entries: &[Option<(u8, Option<Fields>)>], sig: Option<Notify>) {
        let mode = match mode % 4 {
            0 | 1 => LIO_NOWAIT,
            2 => LIO_WAIT,
            _ => raw_mode,
        };
        // Which slots were in flight before the call, and how the entries are written.
        let busy: Vec<bool> = (0..SLOTS).map(|s| self.in_progress(s)).collect();
        let mut list: Vec<*mut aiocb> = Vec::new();
        // (slot, sends a notification, valid) for each non-null entry.
        let mut seen: Vec<(usize, bool, bool)> = Vec::new();
        let mut written = [false; SLOTS];
        for e in entries.iter().take(12) {
            match e {
                None => list.push(std::ptr::null_mut()),
                Some((s, f)) => {
                    let slot = usize::from(*s) % SLOTS;
                    if !busy[slot] && !written[slot] {
                        if let Some(f) = f {
                            let op = match f.opcode.rem_euclid(5) {
                                0 => LIO_READ,
                                1 => LIO_WRITE,
                                2 => LIO_NOP,
                                _ => i32::from(f.opcode),
                            };
                            self.fill(slot, f, op);
                            written[slot] = true;
                        }
                    }
                    list.push(&mut *self.cbs[slot]);
                    seen.push((slot, false, false));
                }
            }
        }
        // What each entry asks, from the aiocbs as the call sees them (a later entry may
        // have rewritten an earlier one's aiocb).
        for (slot, sends, valid) in seen.iter_mut() {
            let cb = &self.cbs[*slot];
            let notify = self.fields[*slot].map(|(f, _, _)| Self::notify_async(f.notify));
            *valid = cb.aio_lio_opcode != LIO_NOP
                && (0..=20).contains(&cb.aio_reqprio)
                && notify.is_some_and(|n| n.is_some());
            *sends = notify == Some(Some(true));
        }
        let list_id = self.next_id;
        self.next_id += 1;
        // SAFETY: all-zero is a valid sigevent.
        let mut ev: sigevent = unsafe { std::mem::zeroed() };
        if let Some(n) = sig {
            self.set_sigevent(&mut ev, n, list_id);
        }
        let sigp = if sig.is_some() { &ev as *const sigevent } else { std::ptr::null() };
        let _wake = Interrupted::after(Duration::from_millis(20));
        // SAFETY: the aiocbs and arena outlive the requests; `sigp` is null or live.
        let r = unsafe { posix::lio_listio(mode, &list, sigp) }.map_err(Errno::raw);
        for &s in &seen {
            self.submitted[s.0] = true;
        }
        let sig_async = sig.map(Self::notify_async);
        match r {
            Ok(()) | Err(libc::EIO) | Err(libc::EAGAIN) | Err(libc::EINTR) => {
                assert!(mode == LIO_WAIT || mode == LIO_NOWAIT, "lio_listio took mode {mode}");
                assert!(
                    mode == LIO_WAIT || sig_async != Some(None),
                    "lio_listio took a bad sigevent: {sig:?}"
                );
                if mode == LIO_NOWAIT && sig_async == Some(Some(true)) {
                    self.expect.entry(list_id).or_default().certain += 1;
                }
                let mut first = [true; SLOTS];
                for &(slot, sends, valid) in &seen {
                    if !valid || !sends {
                        continue;
                    }
                    let e = self.expect.entry(self.ids[slot]).or_default();
                    if busy[slot] || !first[slot] {
                        e.possible += 1;
                    } else {
                        e.certain += 1;
                    }
                    first[slot] = false;
                }
                if mode == LIO_WAIT && r == Ok(()) {
                    for &(slot, _, valid) in &seen {
                        if valid && !busy[slot] {
                            assert_eq!(err_of(&*self.cbs[slot]), Ok(0), "LIO_WAIT succeeded, slot {slot} not");
                        }
                    }
                }
            }
            Err(libc::EINVAL) => {
                let bad_mode = mode != LIO_WAIT && mode != LIO_NOWAIT;
                let bad_sig = mode == LIO_NOWAIT && sig_async == Some(None);
                assert!(bad_mode || bad_sig, "lio_listio EINVAL with mode {mode}, sig {sig:?}");
            }
            Err(e) => panic!("lio_listio failed with {e}"),
        }
    }

    /// Waits (bounded) for every request to end; cancels and unblocks what does not.
    fn finish(&mut self) {
        let all: Vec<*const aiocb> = self.cbs.iter().map(|cb| &**cb as *const aiocb).collect();
        let pending = |cbs: &[*const aiocb]| cbs.iter().any(|&cb| err_of(cb) == Ok(libc::EINPROGRESS));
        let wait = |limit: Duration| {
            let until = Instant::now() + limit;
            while pending(&all) && Instant::now() < until {
                let list: Vec<*const aiocb> =
                    all.iter().copied().filter(|&cb| err_of(cb) == Ok(libc::EINPROGRESS)).collect();
                // SAFETY: live aiocbs.
                let _ = unsafe { posix::aio_suspend(&list, Some(Duration::from_millis(5))) };
            }
        };
        wait(Duration::from_millis(100));
        if pending(&all) {
            for &fd in &self.used_fds.clone() {
                let _wake = Interrupted::after(Duration::from_millis(5));
                // SAFETY: null: every request on the descriptor.
                let _ = unsafe { posix::aio_cancel(fd, std::ptr::null_mut()) };
            }
            self.fds.unblock();
            // Reads waiting on the pipe get bytes; writes waiting for room get it.
            let until = Instant::now() + Duration::from_secs(10);
            let mut sink = vec![0u8; 1 << 16];
            while pending(&all) && Instant::now() < until {
                let bytes = [0u8; 64];
                // SAFETY: non-blocking transfers between live buffers and our pipe.
                unsafe {
                    let w = self.fds.pipe_w.as_raw_fd();
                    let r = self.fds.pipe_r.as_raw_fd();
                    libc::fcntl(w, libc::F_SETFL, libc::O_NONBLOCK);
                    libc::fcntl(r, libc::F_SETFL, libc::O_NONBLOCK);
                    libc::write(w, bytes.as_ptr().cast(), bytes.len());
                    libc::read(r, sink.as_mut_ptr().cast(), sink.len());
                }
                wait(Duration::from_millis(5));
            }
        }
        for (slot, cb) in self.cbs.iter_mut().enumerate() {
            let e = err_of(&**cb);
            assert_ne!(e, Ok(libc::EINPROGRESS), "slot {slot} never ended");
            if let (Ok(e), Some((f, _, nbytes))) = (e, self.fields[slot]) {
                // SAFETY: our aiocb.
                let r = unsafe { posix::aio_return(&mut **cb) }.expect("aio_return of an ended request");
                assert_eq!(r == -1, e != 0, "slot {slot}: return {r}, error {e}");
                if r >= 0 {
                    assert!(r as usize <= nbytes.min(MAX_RW_COUNT), "slot {slot}: {r} bytes of {nbytes} ({f:?})");
                }
            }
        }
        let until = Instant::now() + Duration::from_secs(5);
        while posix::in_flight() > 0 {
            assert!(Instant::now() < until, "{} requests still in flight", posix::in_flight());
            std::thread::sleep(Duration::from_millis(1));
        }
        // Notifications: each arrives (they follow the final status), exactly as many as
        // accepted requests asked for.
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let short = self
                .expect
                .iter()
                .filter(|(&id, e)| NOTES[id].load(Ordering::SeqCst) < e.certain)
                .count();
            if short == 0 {
                break;
            }
            assert!(Instant::now() < until, "{short} notifications never came");
            std::thread::sleep(Duration::from_millis(1));
        }
        let possible = self.expect.values().any(|e| e.possible > 0);
        std::thread::sleep(Duration::from_millis(if possible { 20 } else { 2 }));
        for (id, n) in NOTES.iter().enumerate() {
            let got = n.load(Ordering::SeqCst);
            let e = self.expect.get(&id).copied().unwrap_or_default();
            assert!(
                got >= e.certain && got <= e.certain + e.possible,
                "request {id}: {got} notifications, expected {} to {}",
                e.certain,
                e.certain + e.possible
            );
        }
        assert_eq!(STRAY.load(Ordering::SeqCst), 0, "notifications for no request");
    }
}

fn gettid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

fn setup() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    common::setup();
    DIR.get_or_init(|| {
        // SAFETY: a handler that only counts.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_note as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(note_signal(), &sa, std::ptr::null_mut()), 0);
        }
        common::fuzz_dir("posix")
    })
}

fuzz_target!(|calls: Vec<Call>| {
    let dir = setup();
    for n in NOTES.iter() {
        n.store(0, Ordering::SeqCst);
    }
    STRAY.store(0, Ordering::SeqCst);
    GEN.fetch_add(1, Ordering::SeqCst);
    // Pipes and sockets block, so reads wait (and are cancelled, or fed, or interrupted).
    let fds = Fds::new(dir.to_path_buf(), false);
    let mut run = Run {
        fds: &fds,
        cbs: (0..SLOTS)
            .map(|_| {
                // SAFETY: all-zero is a valid aiocb.
                let mut cb: Box<aiocb> = Box::new(unsafe { std::mem::zeroed() });
                // No descriptor: an entry never written fails with EBADF.
                cb.aio_fildes = -1;
                cb
            })
            .collect(),
        ids: [0; SLOTS],
        next_id: 1,
        expect: HashMap::new(),
        used_fds: Vec::new(),
        fields: [None; SLOTS],
        submitted: [false; SLOTS],
    };
    for call in calls.into_iter().take(64) {
        if run.next_id >= IDS - 16 {
            break;
        }
        match call {
            Call::Read(s, f) => run.submit(s, 0, 0, &f),
            Call::Write(s, f) => run.submit(s, 1, 0, &f),
            Call::Fsync(s, op, f) => {
                let op = match op.rem_euclid(3) {
                    0 => libc::O_SYNC,
                    1 => libc::O_DSYNC,
                    _ => op,
                };
                run.submit(s, 2, op, &f)
            }
            Call::Error(s) => run.status(s),
            Call::Return(s) => run.ret(s),
            Call::Fresh => {
                // SAFETY: a zeroed aiocb this library never saw.
                let mut fresh: aiocb = unsafe { std::mem::zeroed() };
                assert_eq!(err_of(&fresh), Err(libc::EINVAL));
                // SAFETY: as above.
                assert_eq!(unsafe { posix::aio_return(&mut fresh) }, Err(Errno::EINVAL));
            }
            Call::Null => {
                assert_eq!(err_of(std::ptr::null()), Err(libc::EINVAL));
                // SAFETY: null is refused.
                assert_eq!(unsafe { posix::aio_read(std::ptr::null_mut()) }, Err(Errno::EINVAL));
            }
            Call::Suspend(list, t) => run.suspend(&list, t),
            Call::Cancel { fd, raw_fd, slot, fd_of_slot } => run.cancel(fd, raw_fd, slot, fd_of_slot),
            Call::Listio { mode, raw_mode, entries, sig } => run.listio(mode, raw_mode, &entries, sig),
            Call::FeedPipe(n) => {
                let bytes = [7u8; 256];
                // SAFETY: a write from a live buffer to our pipe.
                unsafe {
                    let fl = libc::fcntl(fds.pipe_w.as_raw_fd(), libc::F_GETFL);
                    libc::fcntl(fds.pipe_w.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
                    libc::write(fds.pipe_w.as_raw_fd(), bytes.as_ptr().cast(), usize::from(n));
                    libc::fcntl(fds.pipe_w.as_raw_fd(), libc::F_SETFL, fl);
                }
            }
        }
    }
    run.finish();
});
