//! libaio.so.1's entry points (`libaio/src/exports.rs`) with arbitrary arguments: `io_setup`
//! sizes, `io_submit` counts and iocb arrays (null entries, duplicates, bad opcodes, flags and
//! descriptors, buffers in memory this program owns with lengths up to huge, vectored requests
//! with counts up to huge, bad addresses), `io_getevents`/`io_pgetevents` with any `min_nr`
//! and `nr` and timeouts malformed or none, `io_cancel`, `io_queue_run` with callbacks,
//! `io_destroy` of live, destroyed and made-up contexts.
//!
//! The functions are the library's own (linked from its rlib; their `__libaio_*` labels are
//! the symbols the cdylib exports under libaio's names), called as a C program calls them.
//!
//! Memory: buffers and iovec arrays lie in an arena followed by inaccessible guard pages
//! (`common::Arena`), so no length or count makes the kernel reach memory this program did
//! not give it; the events array has room for more events than can ever be in flight, so any
//! `nr` is safe; callbacks are only ever this program's function or none. Contexts are kept
//! small (the system-wide `aio-max-nr` is shared) and destroyed after each input.
//!
//! Checked: no crash or hang (waits without a timeout are interrupted by a signal); returns
//! are counts in range or `-errno`; every request `io_submit` took completes exactly once —
//! through `io_getevents`, `io_pgetevents` or `io_queue_run`'s callbacks — unless its context
//! was destroyed first; a completion's result is in range for its request.

#![no_main]

mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libc::{c_int, c_long, timespec};
use libfuzzer_sys::fuzz_target;

use aio::sys::{aio_context_t, io_event, iocb};
use aio::sys::{
    IOCB_CMD_FDSYNC, IOCB_CMD_FSYNC, IOCB_CMD_NOOP, IOCB_CMD_POLL, IOCB_CMD_PREAD,
    IOCB_CMD_PREADV, IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV, IOCB_FLAG_IOPRIO, IOCB_FLAG_RESFD,
};

use common::{bad_address, implausible_address, is_errno, Arena, Fds, Interrupted, BUF_LEN, IOVS};

// The library's entry points, by the labels its exports are versioned aliases of.
#[allow(improper_ctypes)]
extern "C" {
    fn __libaio_io_setup_0_4(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int;
    fn __libaio_io_destroy_0_4(ctx: aio_context_t) -> c_int;
    fn __libaio_io_submit(ctx: aio_context_t, nr: c_long, ios: *mut *mut iocb) -> c_int;
    fn __libaio_io_cancel_0_4(ctx: aio_context_t, iocb: *mut iocb, evt: *mut io_event) -> c_int;
    fn __libaio_io_cancel_0_1(ctx: aio_context_t, iocb: *mut iocb) -> c_int;
    fn __libaio_io_getevents_0_4(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *const timespec,
    ) -> c_int;
    fn __libaio_io_getevents_0_1(
        ctx: aio_context_t,
        nr: c_long,
        events: *mut io_event,
        timeout: *const timespec,
    ) -> c_int;
    fn __libaio_io_pgetevents(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *const timespec,
        sigmask: *const libc::sigset_t,
    ) -> c_int;
    fn __libaio_io_queue_init(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int;
    fn __libaio_io_queue_release(ctx: aio_context_t) -> c_int;
    fn __libaio_io_queue_run(ctx: aio_context_t) -> c_int;
    fn __libaio_io_queue_wait_0_4(ctx: aio_context_t, timeout: *const timespec) -> c_int;
}

// Keeps the library's rlib on the link line.
use aio_libaio as _;

const CTXS: usize = 4;
const IOCBS: usize = 16;
/// Room for events: more than can ever be in flight in one input (submissions are capped).
const EVENTS: usize = 512;
const MAX_SUBMITTED: usize = 128;

/// Callback invocations by iocb address (`io_queue_run`).
static CALLBACKS: Mutex<Vec<(u64, i64)>> = Mutex::new(Vec::new());
static CALLBACK_COUNT: AtomicU64 = AtomicU64::new(0);

extern "C-unwind" fn on_event(_ctx: aio_context_t, cb: *mut iocb, res: c_long, _res2: c_long) {
    CALLBACK_COUNT.fetch_add(1, Ordering::SeqCst);
    CALLBACKS.lock().unwrap().push((cb as u64, res));
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Small(u16),
    Buffer,
    Past(u16),
    Huge(u64),
}

#[derive(Arbitrary, Debug, Clone)]
struct Iocb {
    opcode: u8,
    raw_opcode: u16,
    fd: u8,
    raw_fd: i32,
    buf_off: u16,
    bad_buf: Option<u8>,
    len: Len,
    iovs: Vec<(u16, u16)>,
    iov_count: Option<u64>,
    offset: i64,
    small_offset: bool,
    rw_flags: i32,
    flags: u8,
    reqprio: i16,
    callback: bool,
    resfd_ours: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Timeout {
    Null,
    Zero,
    Short(u16),
    Raw(i64, i64),
    Bad(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mask {
    Null,
    Empty,
    Usr1,
    Bad(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ctx {
    Ours(u8),
    Zero,
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Call {
    Setup { maxevents: u8, raw: i32, queue_init: bool },
    Destroy { ctx: Ctx, release: bool },
    Fill { slot: u8, cb: Iocb },
    Submit { ctx: Ctx, nr: i16, slots: Vec<Option<u8>>, huge_nr: bool },
    GetEvents { ctx: Ctx, min_nr: i16, nr: i16, timeout: Timeout, old: bool, events_bad: Option<u8> },
    PGetEvents { ctx: Ctx, min_nr: i16, nr: i16, timeout: Timeout, mask: Mask },
    Cancel { ctx: Ctx, slot: Option<u8>, old: bool, evt: bool },
    QueueRun(Ctx),
    QueueWait(Ctx, Timeout),
    Feed,
}

/// A request `io_submit` took, not yet completed.
struct Taken {
    ctx: aio_context_t,
    /// `aio_data`: 0 for a request without a callback.
    data: u64,
    opcode: u16,
    nbytes: u64,
}

struct Run<'a> {
    fds: &'a Fds,
    ctxs: Vec<aio_context_t>,
    /// Contexts created, destroyed or not.
    created: Vec<aio_context_t>,
    cbs: Vec<Box<iocb>>,
    /// Requests taken, by iocb address: each submission of the same iocb is one.
    taken: HashMap<u64, Vec<Taken>>,
    submitted: usize,
    events: Vec<io_event>,
    /// Contexts whose completions can no longer be matched (see `forget_one`).
    untracked: Vec<aio_context_t>,
}

fn is_ret(r: c_int) -> bool {
    r >= 0 || is_errno(-i64::from(r))
}

impl Run<'_> {
    fn ctx(&self, c: Ctx) -> aio_context_t {
        match c {
            Ctx::Ours(i) if !self.created.is_empty() => self.created[usize::from(i) % self.created.len()],
            Ctx::Ours(_) | Ctx::Zero => 0,
            // Made up: never an address this process maps (the kernel's half, odd values).
            Ctx::Raw(v) => v | 0xffff_0000_0000_0001,
        }
    }

    fn setup(&mut self, maxevents: u8, raw: i32, queue_init: bool) {
        if self.ctxs.len() >= CTXS {
            return;
        }
        // Small, or impossible (negative, zero, above the system-wide limit): never a large
        // share of aio-max-nr, which other programs on this machine need.
        let n = match maxevents % 4 {
            0 | 1 => c_int::from(maxevents % 64) + 1,
            2 => raw.min(0),
            _ => c_int::MAX - (raw & 0xffff),
        };
        let mut ctx: aio_context_t = 0;
        // SAFETY: `ctx` is a writable local.
        let r = unsafe {
            if queue_init {
                __libaio_io_queue_init(n, &mut ctx)
            } else {
                __libaio_io_setup_0_4(n, &mut ctx)
            }
        };
        assert!(is_ret(r), "io_setup {r}");
        if r == 0 {
            assert!(n > 0, "io_setup({n}) succeeded");
            self.ctxs.push(ctx);
            self.created.push(ctx);
        } else {
            assert!(r == -libc::EINVAL || r == -libc::EAGAIN || r == -libc::ENOMEM, "io_setup({n}) = {r}");
        }
    }

    /// Drains a context (what it completes is accounted for), then destroys it.
    fn destroy(&mut self, c: Ctx, release: bool) {
        let ctx = self.ctx(c);
        let ours = self.ctxs.contains(&ctx);
        // SAFETY: any value may be passed; the kernel checks it.
        let r = unsafe {
            if release {
                __libaio_io_queue_release(ctx)
            } else {
                __libaio_io_destroy_0_4(ctx)
            }
        };
        assert!(is_ret(r) && r <= 0, "io_destroy {r}");
        if ours {
            assert_eq!(r, 0, "io_destroy of a live context");
            self.ctxs.retain(|&c| c != ctx);
            // Its requests ended with it, unreported.
            for v in self.taken.values_mut() {
                v.retain(|t| t.ctx != ctx);
            }
        } else {
            assert_eq!(r, -libc::EINVAL, "io_destroy of a context that is not live");
        }
    }

    fn fill(&mut self, slot: u8, f: &Iocb) {
        let arena = Arena::get();
        let opcode = match f.opcode % 10 {
            0 | 1 => IOCB_CMD_PREAD,
            2 => IOCB_CMD_PWRITE,
            3 => IOCB_CMD_PREADV,
            4 => IOCB_CMD_PWRITEV,
            5 => IOCB_CMD_FSYNC,
            6 => IOCB_CMD_FDSYNC,
            7 => IOCB_CMD_POLL,
            8 => IOCB_CMD_NOOP,
            _ => f.raw_opcode,
        };
        let room = BUF_LEN - usize::from(f.buf_off) % BUF_LEN;
        let (buf, nbytes) = match opcode {
            IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
                let segs: Vec<(usize, usize)> =
                    f.iovs.iter().map(|&(o, l)| (usize::from(o) % BUF_LEN, usize::from(l))).collect();
                let iov = arena.set_iovs(&segs);
                let count = f.iov_count.unwrap_or(segs.len().min(IOVS) as u64);
                (iov as u64, count)
            }
            IOCB_CMD_POLL => (u64::from(f.raw_opcode) | libc::POLLIN as u64, 0),
            _ => {
                let buf = match f.bad_buf {
                    Some(b) => bad_address(b),
                    None => arena.at(usize::from(f.buf_off) % BUF_LEN),
                };
                let len = match f.len {
                    Len::Small(n) => u64::from(n),
                    Len::Buffer => room as u64,
                    Len::Past(n) => (room + usize::from(n)) as u64,
                    Len::Huge(n) => n,
                };
                (buf as u64, len)
            }
        };
        let flags = u32::from(f.flags) & (IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO | 0x4);
        let resfd = if f.resfd_ours { self.fds.eventfd.as_raw_fd() } else { f.raw_fd };
        let cb = iocb {
            aio_data: if f.callback { on_event as *const () as u64 } else { 0 },
            aio_key: 0,
            aio_rw_flags: f.rw_flags & 0xff,
            aio_lio_opcode: opcode,
            aio_reqprio: f.reqprio,
            aio_fildes: self.fds.pick(f.fd, f.raw_fd) as u32,
            aio_buf: buf,
            aio_nbytes: nbytes,
            aio_offset: if f.small_offset { f.offset & 0xffff } else { f.offset },
            aio_reserved2: 0,
            aio_flags: flags,
            aio_resfd: resfd as u32,
        };
        *self.cbs[usize::from(slot) % IOCBS] = cb;
    }

    fn submit(&mut self, c: Ctx, nr: i16, slots: &[Option<u8>], huge_nr: bool) {
        if self.submitted >= MAX_SUBMITTED {
            return;
        }
        let ctx = self.ctx(c);
        let mut list: Vec<*mut iocb> = slots
            .iter()
            .take(16)
            .map(|s| match s {
                Some(s) => &mut *self.cbs[usize::from(*s) % IOCBS] as *mut iocb,
                None => std::ptr::null_mut(),
            })
            .collect();
        // `nr` beyond the array only with an array the kernel stops reading at a null entry
        // or at its end: a count the array does not hold is passed only as a huge or
        // negative one (which the kernel refuses before reading).
        let nr = if huge_nr {
            if nr < 0 {
                c_long::from(nr)
            } else {
                c_long::MAX - c_long::from(nr)
            }
        } else {
            c_long::from(nr.unsigned_abs() as i16).clamp(0, list.len() as c_long)
        };
        let fixed: Vec<Option<(u64, u16, u64, u64)>> = list
            .iter()
            .map(|&p| {
                // SAFETY: our iocbs.
                (!p.is_null()).then(|| unsafe {
                    (p as u64, (*p).aio_lio_opcode, (*p).aio_nbytes, (*p).aio_data)
                })
            })
            .collect();
        // The kernel reads up to `nr` (at most the context's size) entries and stops at the
        // first it cannot use: a null one ends the array whatever `nr` says.
        list.push(std::ptr::null_mut());
        let ptr = if list.len() == 1 && !huge_nr { std::ptr::null_mut() } else { list.as_mut_ptr() };
        // A wait inside io_submit (a read that blocks) ends with the interrupt.
        let _wake = Interrupted::after(Duration::from_millis(20));
        // SAFETY: the iocbs, arena and iovecs outlive the requests; `nr` is within the array
        // or one the kernel refuses.
        let r = unsafe { __libaio_io_submit(ctx, nr, ptr) };
        assert!(is_ret(r), "io_submit {r}");
        if r >= 0 {
            assert!(c_long::from(r) <= nr.max(0), "io_submit took {r} of {nr}");
            assert!(self.ctxs.contains(&ctx) || r == 0, "io_submit on a dead context took {r}");
            for entry in fixed.iter().take(r as usize) {
                let (addr, opcode, nbytes, data) = entry.expect("the kernel took a null iocb");
                self.taken.entry(addr).or_default().push(Taken { ctx, data, opcode, nbytes });
            }
            self.submitted += r as usize;
        }
    }

    fn timeout(t: Timeout, ts: &mut timespec) -> *const timespec {
        match t {
            Timeout::Null => std::ptr::null(),
            Timeout::Zero => {
                *ts = timespec { tv_sec: 0, tv_nsec: 0 };
                ts
            }
            Timeout::Short(us) => {
                *ts = timespec { tv_sec: 0, tv_nsec: i64::from(us) * 100 };
                ts
            }
            Timeout::Raw(s, ns) => {
                *ts = timespec { tv_sec: s, tv_nsec: ns };
                ts
            }
            Timeout::Bad(b) => implausible_address(b).cast(),
        }
    }

    /// Accounts for `n` events at the start of `self.events`.
    fn completed(&mut self, ctx: aio_context_t, n: usize, from: &str) {
        for i in 0..n {
            let ev = self.events[i];
            self.complete(ctx, ev.obj, ev.res, from);
        }
    }

    fn complete(&mut self, ctx: aio_context_t, obj: u64, res: i64, from: &str) {
        let found = self.taken.get_mut(&obj).and_then(|l| {
            let i = l.iter().position(|t| t.ctx == ctx)?;
            Some(l.remove(i))
        });
        let Some(t) = found else {
            if self.untracked.contains(&ctx) {
                return;
            }
            panic!("{from}: a completion of {obj:#x}, which has no request in flight");
        };
        match t.opcode {
            IOCB_CMD_PREAD | IOCB_CMD_PWRITE if res >= 0 => {
                assert!(res as u64 <= t.nbytes, "{from}: {res} bytes of {}", t.nbytes)
            }
            _ if res >= 0 => {}
            _ => assert!(is_errno(-res), "{from}: res {res}"),
        }
    }

    fn get_events(&mut self, c: Ctx, min_nr: i16, nr: i16, t: Timeout, old: bool, bad: Option<u8>) {
        let ctx = self.ctx(c);
        let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
        let tp = Self::timeout(t, &mut ts);
        let events = match bad {
            Some(b) => implausible_address(b).cast(),
            None => self.events.as_mut_ptr(),
        };
        let _wake = Interrupted::after(Duration::from_millis(20));
        // SAFETY: `events` has room for EVENTS events, more than can be in flight (any `nr`
        // is safe), or is an address the kernel refuses; the timeout is ours or bad.
        let r = unsafe {
            if old {
                __libaio_io_getevents_0_1(ctx, c_long::from(nr), events, tp)
            } else {
                __libaio_io_getevents_0_4(ctx, c_long::from(min_nr), c_long::from(nr), events, tp)
            }
        };
        assert!(is_ret(r), "io_getevents {r}");
        if r > 0 {
            assert!(bad.is_none(), "io_getevents stored events at a bad address");
            assert!(r <= i32::from(nr), "io_getevents: {r} events for nr {nr}");
            self.completed(ctx, r as usize, "io_getevents");
        }
    }

    fn pget_events(&mut self, c: Ctx, min_nr: i16, nr: i16, t: Timeout, m: Mask) {
        let ctx = self.ctx(c);
        let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
        let tp = Self::timeout(t, &mut ts);
        // SAFETY: sets initialized by sigemptyset/sigaddset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigemptyset(&mut set) };
        let mask: *const libc::sigset_t = match m {
            Mask::Null => std::ptr::null(),
            Mask::Empty => &set,
            Mask::Usr1 => {
                // SAFETY: as above. (Never the interrupt: a wait must stay interruptible.)
                unsafe { libc::sigaddset(&mut set, libc::SIGUSR1) };
                &set
            }
            Mask::Bad(b) => implausible_address(b).cast(),
        };
        let _wake = Interrupted::after(Duration::from_millis(20));
        // SAFETY: as for io_getevents; the mask is ours or bad.
        let r = unsafe {
            __libaio_io_pgetevents(
                ctx,
                c_long::from(min_nr),
                c_long::from(nr),
                self.events.as_mut_ptr(),
                tp,
                mask,
            )
        };
        assert!(is_ret(r), "io_pgetevents {r}");
        if r > 0 {
            assert!(r <= i32::from(nr), "io_pgetevents: {r} events for nr {nr}");
            self.completed(ctx, r as usize, "io_pgetevents");
        }
    }

    fn cancel(&mut self, c: Ctx, slot: Option<u8>, old: bool, evt: bool) {
        let ctx = self.ctx(c);
        let cb = match slot {
            Some(s) => &mut *self.cbs[usize::from(s) % IOCBS] as *mut iocb,
            None => std::ptr::null_mut(),
        };
        let mut ev = io_event::default();
        let evp = if evt { &mut ev as *mut io_event } else { std::ptr::null_mut() };
        // SAFETY: our iocb or null; the event is ours or null.
        let r = unsafe {
            if old {
                __libaio_io_cancel_0_1(ctx, cb)
            } else {
                __libaio_io_cancel_0_4(ctx, cb, evp)
            }
        };
        assert!(is_ret(r) && r <= 0, "io_cancel {r}");
        // Current kernels answer -EINPROGRESS (the completion comes through the ring) or an
        // error; 0 (old kernels) hands the completion back here.
        if r == 0 {
            let obj = if old { cb as u64 } else { ev.obj };
            self.complete(ctx, obj, ev.res, "io_cancel");
        }
    }

    fn queue_run(&mut self, c: Ctx) {
        let ctx = self.ctx(c);
        CALLBACKS.lock().unwrap().clear();
        // SAFETY: callbacks are ours or none (the library answers -EFAULT for none).
        let r = unsafe { __libaio_io_queue_run(ctx) };
        assert!(is_ret(r) && r <= 0, "io_queue_run {r}");
        let calls: Vec<(u64, i64)> = std::mem::take(&mut *CALLBACKS.lock().unwrap());
        for (obj, res) in calls {
            self.complete(ctx, obj, res, "io_queue_run");
        }
        if r == -libc::EFAULT {
            // It consumed an event without a callback: which one is unknown here; it is
            // accounted for as any of the context's requests.
            self.forget_one(ctx);
        }
    }

    /// An event without a callback consumed unseen: one of `ctx`'s requests without one
    /// completed. If there is exactly one, it is that one; otherwise which is unknown, and the
    /// context's completions are no longer matched to requests (its requests are forgotten).
    fn forget_one(&mut self, ctx: aio_context_t) {
        let candidates: Vec<u64> = self
            .taken
            .iter()
            .flat_map(|(&k, v)| v.iter().filter(|t| t.ctx == ctx && t.data == 0).map(move |_| k))
            .collect();
        assert!(!candidates.is_empty(), "an event without a callback, for no such request");
        if let [key] = candidates[..] {
            let v = self.taken.get_mut(&key).expect("just found");
            let i = v.iter().position(|t| t.ctx == ctx && t.data == 0).expect("just found");
            v.remove(i);
        } else {
            self.untracked.push(ctx);
            for v in self.taken.values_mut() {
                v.retain(|t| t.ctx != ctx);
            }
        }
    }

    /// Takes every completion, cancelling what does not come, then destroys the contexts.
    fn finish(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        let mut cancelled = false;
        loop {
            let left: Vec<aio_context_t> = self
                .ctxs
                .iter()
                .copied()
                .filter(|&c| self.taken.values().any(|v| v.iter().any(|t| t.ctx == c)))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < until, "requests never completed: {:?}", self.taken_counts());
            for ctx in left {
                let ts = timespec { tv_sec: 0, tv_nsec: 5_000_000 };
                let _wake = Interrupted::after(Duration::from_millis(50));
                // SAFETY: our events array, a live timespec.
                let r = unsafe {
                    __libaio_io_getevents_0_4(ctx, 1, EVENTS as c_long, self.events.as_mut_ptr(), &ts)
                };
                if r > 0 {
                    self.completed(ctx, r as usize, "io_getevents at the end");
                } else if r == 0 && !cancelled {
                    // Polls (and reads or writes of pipes and sockets) may wait for ever.
                    cancelled = true;
                    let keys: Vec<u64> = self.taken.keys().copied().collect();
                    for k in keys {
                        let mut ev = io_event::default();
                        // SAFETY: the iocb's address; an event of ours.
                        unsafe { __libaio_io_cancel_0_4(ctx, k as *mut iocb, &mut ev) };
                    }
                    self.fds.unblock();
                }
            }
        }
        for ctx in std::mem::take(&mut self.ctxs) {
            // SAFETY: a live context.
            assert_eq!(unsafe { __libaio_io_destroy_0_4(ctx) }, 0);
        }
    }

    fn taken_counts(&self) -> Vec<(u64, usize)> {
        self.taken.iter().filter(|(_, v)| !v.is_empty()).map(|(&k, v)| (k, v.len())).collect()
    }
}

fuzz_target!(|calls: Vec<Call>| {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    common::setup();
    let dir = DIR.get_or_init(|| common::fuzz_dir("libaio"));
    // Pipes and sockets do not block: kernel AIO runs their reads and writes inside
    // io_submit.
    let fds = Fds::new(dir.clone(), true);
    let mut run = Run {
        fds: &fds,
        ctxs: Vec::new(),
        created: Vec::new(),
        cbs: (0..IOCBS).map(|_| Box::new(iocb::default())).collect(),
        taken: HashMap::new(),
        submitted: 0,
        events: vec![io_event::default(); EVENTS],
        untracked: Vec::new(),
    };
    for call in calls.into_iter().take(64) {
        match call {
            Call::Setup { maxevents, raw, queue_init } => run.setup(maxevents, raw, queue_init),
            Call::Destroy { ctx, release } => run.destroy(ctx, release),
            Call::Fill { slot, cb } => run.fill(slot, &cb),
            Call::Submit { ctx, nr, slots, huge_nr } => run.submit(ctx, nr, &slots, huge_nr),
            Call::GetEvents { ctx, min_nr, nr, timeout, old, events_bad } => {
                run.get_events(ctx, min_nr, nr, timeout, old, events_bad)
            }
            Call::PGetEvents { ctx, min_nr, nr, timeout, mask } => {
                run.pget_events(ctx, min_nr, nr, timeout, mask)
            }
            Call::Cancel { ctx, slot, old, evt } => run.cancel(ctx, slot, old, evt),
            Call::QueueRun(ctx) => run.queue_run(ctx),
            Call::QueueWait(ctx, t) => {
                let ctx = run.ctx(ctx);
                let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
                let tp = Run::timeout(t, &mut ts);
                // SAFETY: the timeout is ours or bad.
                let r = unsafe { __libaio_io_queue_wait_0_4(ctx, tp) };
                assert!(is_ret(r) && r <= 0, "io_queue_wait {r}");
            }
            Call::Feed => {
                let bytes = [1u8; 64];
                // SAFETY: non-blocking writes from a live buffer to our pipe and socket.
                unsafe {
                    libc::write(fds.pipe_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                    libc::write(fds.sock_b.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                }
            }
        }
    }
    run.finish();
});
