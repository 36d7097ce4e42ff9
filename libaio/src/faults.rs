//! Faults and statistics for `libaio.so.1`, from the environment (see [`aio::faults`] and
//! [`aio::stats`]): `AIO_FAULT=SPEC` fails, shortens, tears or delays chosen requests, and
//! `AIO_STATS=1` prints what the library did at exit.
//!
//! The library hands iocbs to the kernel, so faults are made around it:
//!
//! - a request that fails is not submitted: its completion event (`res` the negated errno) is
//!   made here and given by the next `io_getevents`, as the kernel's would be;
//! - a short or torn read or write (`IOCB_CMD_PREAD`/`PWRITE`) is submitted with fewer bytes
//!   (the caller's iocb is put back as it was once `io_submit` returns: the kernel copied it);
//!   a torn write's event then reports the whole length;
//! - a delayed request's event is held until it is due;
//! - a crash: the request runs, and every later one fails with `EIO`, as a dead device would
//!   answer.
//!
//! With faults on, completions are taken with the `io_getevents` system call (the ring is not
//! read in user space), so each passes through here. Without `AIO_FAULT`, nothing here runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use libc::{c_long, timespec};

use aio::faults::{Event, FaultOp, Faults, Outcome};
use aio::stats::{StatOp, Stats};
use aio::sys::{aio_context_t, io_event, iocb};

use crate::ptr::plausible;
use crate::sys;

/// What the library did (`AIO_STATS=1`).
pub(crate) static STATS: Stats = Stats::new();

extern "C" fn print_stats() {
    STATS.print("libaio.so.1", "kernel AIO");
}

/// Registers the statistics line at exit, once, if `AIO_STATS` asks for it.
pub(crate) fn stats_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if STATS.on() {
        // SAFETY: registers a handler that reads counters and writes one line.
        ONCE.call_once(|| unsafe {
            libc::atexit(print_stats);
        });
    }
}

/// The operation of an iocb, for the statistics and the rules.
pub(crate) fn op_of(cb: &iocb) -> (StatOp, Option<FaultOp>) {
    match cb.aio_lio_opcode {
        aio::sys::IOCB_CMD_PREAD | aio::sys::IOCB_CMD_PREADV => (StatOp::Read, Some(FaultOp::Read)),
        aio::sys::IOCB_CMD_PWRITE | aio::sys::IOCB_CMD_PWRITEV => {
            (StatOp::Write, Some(FaultOp::Write))
        }
        aio::sys::IOCB_CMD_FSYNC => (StatOp::Fsync, Some(FaultOp::Fsync)),
        aio::sys::IOCB_CMD_FDSYNC => (StatOp::Fdatasync, Some(FaultOp::Fdatasync)),
        _ => (StatOp::Other, None),
    }
}

/// Counts the first `n` iocbs of `ios` as submitted.
///
/// # Safety
///
/// `ios` holds at least `n` pointers to iocbs the kernel just accepted (so, readable).
pub(crate) unsafe fn count_submitted(ios: *const *mut iocb, n: usize) {
    if !STATS.on() {
        return;
    }
    for i in 0..n {
        // SAFETY: the caller's promise. Read as copies, unaligned: the kernel takes arrays and
        // iocbs at any address, and so must this.
        let cb = unsafe { ios.add(i).read_unaligned().read_unaligned() };
        STATS.request(op_of(&cb).0, false);
    }
}

/// Counts reaped events, given by their results.
pub(crate) fn count_reaped(results: impl IntoIterator<Item = i64>) {
    if STATS.on() {
        for res in results {
            STATS.done(res);
        }
    }
}

/// Counts the first `n` events of the caller's array (at any alignment: the kernel writes
/// events at any address, and so a caller may give one).
///
/// # Safety
///
/// `events` holds `n` events the kernel or this library just wrote.
pub(crate) unsafe fn count_reaped_at(events: *const io_event, n: usize) {
    if STATS.on() {
        // SAFETY: the caller's promise; read unaligned.
        count_reaped((0..n).map(|i| unsafe { events.add(i).read_unaligned() }.res));
    }
}

/// The rules, if `AIO_FAULT` names any.
pub(crate) fn rules() -> Option<&'static Faults> {
    static RULES: OnceLock<Option<Faults>> = OnceLock::new();
    RULES
        .get_or_init(|| match aio::faults::from_env()? {
            Ok(f) => Some(f),
            Err(why) => {
                // A library never exits the program: it says so and injects nothing.
                eprintln!("libaio.so.1: {why}; no faults injected");
                None
            }
        })
        .as_ref()
}

#[derive(Default)]
struct State {
    /// Events made here (failures), by context, to give before the kernel's.
    made: HashMap<aio_context_t, VecDeque<io_event>>,
    /// Events held until due, by context.
    held: HashMap<aio_context_t, Vec<(Instant, io_event)>>,
    /// Requests to delay when their event comes: iocb address → latency.
    delayed: HashMap<u64, Duration>,
    /// Torn writes: iocb address → the length to report.
    torn: HashMap<u64, i64>,
    /// A crash rule fired: every later request fails with EIO.
    dead: bool,
}

fn state() -> MutexGuard<'static, State> {
    static STATE: LazyLock<Mutex<State>> = LazyLock::new(Mutex::default);
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `io_submit` with the rules applied (see the module doc).
///
/// # Safety
///
/// The C caller's `io_submit` contract.
pub(crate) unsafe fn submit(
    faults: &Faults,
    ctx: aio_context_t,
    nr: c_long,
    ios: *mut *mut iocb,
) -> c_long {
    let n = match usize::try_from(nr) {
        Ok(n) if n > 0 && plausible(ios, n * size_of::<*mut iocb>(), align_of::<*mut iocb>()) => n,
        // Nothing to decide: the kernel answers (EINVAL, EFAULT, 0).
        // SAFETY: forwarded.
        _ => return unsafe { sys::io_submit(ctx, nr, ios) },
    };
    let mut taken = 0usize;
    // A run of iocbs to hand to the kernel as they are: [start, i).
    let mut start = 0usize;
    // Runs [start, end) of `ios` to the kernel: how many it took, or its error.
    let flush = |start: usize, end: usize| -> c_long {
        if end == start {
            return 0;
        }
        // SAFETY: `ios[start..end]` are the caller's pointers (plausible, checked above).
        let r = unsafe { sys::io_submit(ctx, (end - start) as c_long, ios.add(start)) };
        if r > 0 {
            // SAFETY: the kernel took these, so they are readable.
            unsafe { count_submitted(ios.add(start), r as usize) };
        }
        r
    };
    let finish = |taken: usize, r: c_long| -> c_long {
        if taken > 0 {
            taken as c_long
        } else {
            if r < 0 {
                STATS.refused();
            }
            r
        }
    };
    for i in 0..n {
        // SAFETY: within the caller's array.
        let p = unsafe { *ios.add(i) };
        if !plausible(p, size_of::<iocb>(), align_of::<u64>()) {
            // The kernel says what is wrong with it (EFAULT), after the run before it.
            let r = flush(start, i + 1);
            return finish(taken + r.max(0) as usize, r);
        }
        // SAFETY: plausible, and the caller's io_submit contract makes it a readable iocb.
        let cb = unsafe { &mut *p };
        let decision = decide(faults, cb);
        match decision.outcome {
            Outcome::Fail(errno) => {
                let r = flush(start, i);
                if r < (i - start) as c_long {
                    return finish(taken + r.max(0) as usize, r);
                }
                taken += i - start;
                start = i + 1;
                let ev =
                    io_event { data: cb.aio_data, obj: p as u64, res: -i64::from(errno), res2: 0 };
                STATS.request(op_of(cb).0, false);
                let mut st = state();
                if decision.delay.is_zero() {
                    st.made.entry(ctx).or_default().push_back(ev);
                } else {
                    let due =
                        Instant::now().checked_add(decision.delay).unwrap_or_else(Instant::now);
                    st.held.entry(ctx).or_default().push((due, ev));
                }
                taken += 1;
            }
            Outcome::Short(bytes) | Outcome::Torn(bytes)
                if matches!(
                    cb.aio_lio_opcode,
                    aio::sys::IOCB_CMD_PREAD | aio::sys::IOCB_CMD_PWRITE
                ) =>
            {
                let r = flush(start, i);
                if r < (i - start) as c_long {
                    return finish(taken + r.max(0) as usize, r);
                }
                taken += i - start;
                let full = cb.aio_nbytes;
                if matches!(decision.outcome, Outcome::Torn(_)) {
                    state().torn.insert(p as u64, full as i64);
                }
                if !decision.delay.is_zero() {
                    state().delayed.insert(p as u64, decision.delay);
                }
                cb.aio_nbytes = bytes.min(full);
                let r = flush(i, i + 1);
                // The kernel copied it: the caller's iocb is as it was.
                cb.aio_nbytes = full;
                if r < 1 {
                    let mut st = state();
                    st.torn.remove(&(p as u64));
                    st.delayed.remove(&(p as u64));
                    return finish(taken, r);
                }
                taken += 1;
                start = i + 1;
            }
            outcome => {
                if !decision.delay.is_zero() {
                    state().delayed.insert(p as u64, decision.delay);
                }
                if outcome == Outcome::Crash {
                    // This one runs; every later one fails.
                    state().dead = true;
                }
            }
        }
    }
    let r = flush(start, n);
    if r < (n - start) as c_long {
        return finish(taken + r.max(0) as usize, r);
    }
    (taken + (n - start)) as c_long
}

/// What the rules decide for one iocb (or `EIO` after a crash).
fn decide(faults: &Faults, cb: &iocb) -> aio::faults::Decision {
    if state().dead {
        return aio::faults::Decision { delay: Duration::ZERO, outcome: Outcome::Fail(libc::EIO) };
    }
    let Some(op) = op_of(cb).1 else { return aio::faults::Decision::PASS };
    let fd = cb.aio_fildes as i32;
    let path = faults.wants_path().then(|| aio::sys::fs::fd_path(fd)).flatten();
    let ev = match cb.aio_lio_opcode {
        aio::sys::IOCB_CMD_PREAD | aio::sys::IOCB_CMD_PWRITE => {
            Event::data(op, path.as_deref(), cb.aio_offset as u64, cb.aio_nbytes)
        }
        aio::sys::IOCB_CMD_PREADV | aio::sys::IOCB_CMD_PWRITEV => {
            let iov = cb.aio_buf as *const libc::iovec;
            let cnt = cb.aio_nbytes as usize;
            let len = if cnt <= 1024
                && plausible(iov, cnt * size_of::<libc::iovec>(), align_of::<libc::iovec>())
            {
                // SAFETY: plausible, and the caller's contract makes the array readable.
                unsafe { std::slice::from_raw_parts(iov, cnt) }
                    .iter()
                    .map(|v| v.iov_len as u64)
                    .sum()
            } else {
                0
            };
            Event::data(op, path.as_deref(), cb.aio_offset as u64, len)
        }
        _ => Event::new(op, path.as_deref()),
    };
    faults.decide(&ev)
}

/// `io_getevents` with the rules applied: the events made here first, held ones when due, the
/// kernel's (taken with the system call) with torn writes' lengths put back and delayed ones
/// held.
///
/// # Safety
///
/// The C caller's `io_getevents` contract.
pub(crate) unsafe fn get_events(
    ctx: aio_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *const timespec,
    sigmask: Option<*const libc::sigset_t>,
) -> c_long {
    let plain = |min: c_long, max: c_long, out: *mut io_event, ts: *const timespec| {
        // SAFETY: forwarded from the caller, or our own buffer and timespec.
        unsafe {
            match sigmask {
                None => sys::io_getevents(ctx, min, max, out, ts),
                Some(m) => sys::io_pgetevents(ctx, min, max, out, ts, m),
            }
        }
    };
    let valid = 0 <= min_nr
        && min_nr <= nr
        && usize::try_from(nr).is_ok_and(|n| {
            n == 0 || plausible(events, n * size_of::<io_event>(), align_of::<io_event>())
        })
        && (timeout.is_null() || plausible(timeout, size_of::<timespec>(), align_of::<timespec>()));
    if !valid {
        // The kernel answers for bad arguments.
        return plain(min_nr, nr, events, timeout);
    }
    let nr = nr as usize;
    // SAFETY: plausible, and the caller's contract makes it writable for `nr` events.
    let out = unsafe { std::slice::from_raw_parts_mut(events, nr) };
    let deadline = if timeout.is_null() {
        None
    } else {
        // SAFETY: plausible and readable.
        let ts = unsafe { timeout.read() };
        let d = Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32);
        Some(
            Instant::now()
                .checked_add(d)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40)),
        )
    };
    let mut got = 0usize;
    let mut buf = vec![io_event::default(); nr.max(1)];
    loop {
        {
            let mut st = state();
            let now = Instant::now();
            if let Some(q) = st.made.get_mut(&ctx) {
                while got < nr {
                    let Some(ev) = q.pop_front() else { break };
                    out[got] = ev;
                    got += 1;
                }
            }
            if let Some(h) = st.held.get_mut(&ctx) {
                h.sort_by_key(|(at, _)| *at);
                while got < nr && h.first().is_some_and(|(at, _)| *at <= now) {
                    out[got] = h.remove(0).1;
                    got += 1;
                }
            }
        }
        if got == nr {
            break;
        }
        // Wait in the kernel only for what is still needed, and not past the next held event.
        let next = state().held.get(&ctx).and_then(|h| h.iter().map(|(at, _)| *at).min());
        let need = if (got as c_long) >= min_nr { 0 } else { 1 };
        let until = match (deadline, next) {
            (Some(d), Some(n)) => Some(d.min(n)),
            (d, n) => d.or(n),
        };
        let wait = if need == 0 {
            Some(Duration::ZERO)
        } else {
            until.map(|u| u.saturating_duration_since(Instant::now()))
        };
        let ts = wait.map(|w| timespec {
            tv_sec: w.as_secs() as libc::time_t,
            tv_nsec: w.subsec_nanos().into(),
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const timespec);
        let k = plain(need, (nr - got) as c_long, buf.as_mut_ptr(), ts_ptr);
        if k < 0 {
            count_reaped(out[..got].iter().map(|e| e.res));
            return if got > 0 { got as c_long } else { k };
        }
        let now = Instant::now();
        let mut st = state();
        for mut ev in buf[..k as usize].iter().copied() {
            if let Some(full) = st.torn.remove(&ev.obj) {
                if ev.res >= 0 {
                    ev.res = full;
                }
            }
            if let Some(delay) = st.delayed.remove(&ev.obj) {
                let due = now.checked_add(delay).unwrap_or(now);
                st.held.entry(ctx).or_default().push((due, ev));
                continue;
            }
            out[got] = ev;
            got += 1;
        }
        drop(st);
        if (got as c_long) >= min_nr && (got > 0 || need == 0) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    count_reaped(out[..got].iter().map(|e| e.res));
    got as c_long
}
