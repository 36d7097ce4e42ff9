//! The driver contract (`aio/src/driver/mod.rs`) under random sequences of calls, on
//! `MemDriver` and on `FaultDriver<MemDriver>` with faults taken from the input.
//!
//! Checked, for every sequence:
//!
//! - every accepted request completes exactly once (by `user_data`), through `reap`/`poll` —
//!   except, on a `FaultDriver` that has crashed, those it swallowed (never reported, as the
//!   crash is documented to do);
//! - a rejected request comes back with its buffer, and a completion with its own;
//! - every owned buffer is dropped exactly once, whichever way it came back (or with the
//!   driver);
//! - a read never reports more bytes than its buffers hold, and the bytes it reports are the
//!   disk's (checked against a model of the RAM disk, where the model knows the bytes);
//! - `in_flight()` is accepted minus completed;
//! - nothing waits longer than its timeout (the calls use zero or short ones; libFuzzer's
//!   `-timeout` catches a hang).

#![no_main]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use aio::driver::{
    Buf, CancelOutcome, Completion, Driver, FaultConfig, FaultDriver, MemDriver, Rejected, Request,
};
use aio::{IoBuf, IoBufMut};

/// Drop counts of the buffers of one run, by buffer id.
static DROPS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// A buffer that records its drop.
struct Counted {
    id: usize,
    data: Vec<u8>,
    /// Bytes of data (for a write), or of capacity filled by a read (`set_init`).
    init: usize,
}

const FILL: u8 = 0xA5;

impl Counted {
    fn new(len: usize, init: usize, byte: u8) -> Counted {
        let mut drops = DROPS.lock().unwrap();
        let id = drops.len();
        drops.push(0);
        Counted { id, data: vec![byte; len], init: init.min(len) }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut drops = DROPS.lock().unwrap_or_else(|e| e.into_inner());
        drops[self.id] += 1;
        let n = drops[self.id];
        drop(drops);
        assert_eq!(n, 1, "buffer {} dropped twice", self.id);
    }
}

// SAFETY: a Vec's heap storage, which does not move while the Counted lives.
unsafe impl IoBuf for Counted {
    fn stable_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.init
    }
    fn bytes_total(&self) -> usize {
        self.data.len()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Counted {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        self.init = len.min(self.data.len());
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Read,
    Write,
    Fsync,
    Fdatasync,
    /// A read into a buffer made for writing: refused as read-only.
    ReadIntoReadOnly,
}

#[derive(Arbitrary, Debug)]
enum Offset {
    Small(u16),
    Near(u8),
    Huge(u64),
}

#[derive(Arbitrary, Debug)]
enum Call {
    Queue { kind: Kind, offset: Offset, segs: Vec<u16>, many: bool, byte: u8 },
    Flush,
    Reap { min: u8, max: u8, wait_us: Option<u8> },
    Poll { max: u8 },
    Cancel { pick: u16, unknown: bool },
    WaitReady { wait_us: Option<u8> },
    Wake,
    Eventfd,
}

#[derive(Arbitrary, Debug)]
struct Faults {
    seed: u64,
    fail: u8,
    errnos: Vec<i16>,
    short: u8,
    latency_us: Option<(u8, u8)>,
    crash_after: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    size: u16,
    faults: Option<Faults>,
    calls: Vec<Call>,
}

/// What the model knows of one accepted request.
struct Pending {
    kind: Kind,
    offset: u64,
    /// Buffer lengths.
    lens: Vec<usize>,
    /// Reads: the disk's bytes at queue time (None: not known); writes: the data.
    bytes: Vec<Option<u8>>,
    /// Writes: the sequence number stamped on the bytes it covers.
    seq: u64,
    /// A vectored request (its buffer is a `Vec<Counted>`).
    vectored: bool,
}

struct Model {
    /// The RAM disk's bytes, where known.
    disk: Vec<Option<u8>>,
    /// The write that last covered each byte.
    writer: Vec<u64>,
}

struct Run<'a> {
    driver: &'a dyn Driver,
    fault: Option<&'a FaultDriver<MemDriver>>,
    model: Model,
    pending: HashMap<u64, Pending>,
    done: HashMap<u64, i64>,
    next_user_data: u64,
    accepted: usize,
    completed: usize,
    /// Whether faults may shorten or fail requests (reads then prove less).
    faulty: bool,
}

impl Run<'_> {
    fn crashed(&self) -> bool {
        self.fault.is_some_and(|f| f.crashed())
    }

    fn queue(&mut self, kind: Kind, offset: Offset, segs: &[u16], many: bool, byte: u8) {
        let size = self.model.disk.len() as u64;
        let offset = match offset {
            Offset::Small(o) => u64::from(o),
            Offset::Near(d) => size.saturating_sub(u64::from(d)),
            Offset::Huge(o) => o,
        };
        let mut lens: Vec<usize> = segs.iter().take(4).map(|&l| usize::from(l) % 20_000).collect();
        if many {
            // More segments than IOV_MAX: refused.
            lens = vec![1; 1025];
        }
        if matches!(kind, Kind::Fsync | Kind::Fdatasync) {
            lens.clear();
        }
        let user_data = self.next_user_data;
        self.next_user_data += 1;
        let vectored = lens.len() != 1 && !matches!(kind, Kind::Fsync | Kind::Fdatasync);
        let (req, bytes) = match kind {
            Kind::Read | Kind::ReadIntoReadOnly => {
                let read_only = matches!(kind, Kind::ReadIntoReadOnly);
                let bufs: Vec<Counted> = lens
                    .iter()
                    .map(|&l| Counted::new(l, if read_only { l } else { 0 }, FILL))
                    .collect();
                let buf = match (vectored, read_only) {
                    (false, false) => Buf::for_read(bufs.into_iter().next().unwrap()),
                    (false, true) => Buf::for_write(bufs.into_iter().next().unwrap()),
                    (true, false) => Buf::for_readv(bufs),
                    (true, true) => Buf::for_writev(bufs),
                };
                let total: usize = lens.iter().sum();
                let bytes = (0..total)
                    .map(|i| {
                        offset
                            .checked_add(i as u64)
                            .filter(|&o| o < size)
                            .and_then(|o| self.model.disk[o as usize])
                    })
                    .collect();
                (Request::read(-1, buf, offset, user_data), bytes)
            }
            Kind::Write => {
                let mut k = 0u8;
                let mut data = Vec::new();
                let bufs: Vec<Counted> = lens
                    .iter()
                    .map(|&l| {
                        let mut c = Counted::new(l, l, 0);
                        for b in c.data.iter_mut() {
                            *b = byte.wrapping_add(k);
                            k = k.wrapping_add(1);
                        }
                        data.extend(c.data.iter().map(|&b| Some(b)));
                        c
                    })
                    .collect();
                let buf = if vectored {
                    Buf::for_writev(bufs)
                } else {
                    Buf::for_write(bufs.into_iter().next().unwrap())
                };
                (Request::write(-1, buf, offset, user_data), data)
            }
            Kind::Fsync => (Request::fsync(-1, user_data), Vec::new()),
            Kind::Fdatasync => (Request::fdatasync(-1, user_data), Vec::new()),
        };
        let crashed_before = self.crashed();
        match self.driver.queue(req) {
            Ok(()) => {
                self.accepted += 1;
                let seq = user_data + 1;
                if matches!(kind, Kind::Write) && !crashed_before {
                    // Executed now (the RAM disk completes inline); what it wrote is known when
                    // its completion says how much.
                    let total: usize = lens.iter().sum();
                    for i in 0..total as u64 {
                        if let Some(o) = offset.checked_add(i).filter(|&o| o < size) {
                            self.model.disk[o as usize] = None;
                            self.model.writer[o as usize] = seq;
                        }
                    }
                }
                self.pending.insert(
                    user_data,
                    Pending { kind, offset, lens, bytes, seq, vectored },
                );
            }
            Err(rejected) => self.rejected(rejected, user_data, &lens, vectored),
        }
    }

    fn rejected(&mut self, r: Rejected, user_data: u64, lens: &[usize], vectored: bool) {
        assert_eq!(r.request.user_data(), user_data, "the rejected request is not the one queued");
        assert!(!r.is_full(), "a RAM disk is never full");
        let buf = r.into_buf();
        take_back(buf, lens, vectored, user_data);
    }

    fn completion(&mut self, c: Completion) {
        let Some(p) = self.pending.remove(&c.user_data) else {
            match self.done.get(&c.user_data) {
                Some(res) => panic!("request {} completed twice (first {res})", c.user_data),
                None => panic!("a completion for no request: {}", c.user_data),
            }
        };
        self.done.insert(c.user_data, c.res);
        self.completed += 1;
        let total: usize = p.lens.iter().sum();
        match p.kind {
            Kind::Read => {
                if c.res >= 0 {
                    let n = c.res as usize;
                    assert!(n <= total, "read {}: {n} bytes reported into {total}", c.user_data);
                    let got = gathered(&c.buf, n);
                    for (i, (&g, want)) in got.iter().zip(&p.bytes).enumerate() {
                        if let Some(w) = want {
                            assert_eq!(g, *w, "read {} byte {i} at {}", c.user_data, p.offset);
                        }
                    }
                    if !self.faulty {
                        let size = self.model.disk.len() as u64;
                        let want = size.saturating_sub(p.offset).min(total as u64) as usize;
                        assert_eq!(n, want, "read {} at {} of {total}", c.user_data, p.offset);
                    }
                } else {
                    assert!(c.res >= -4095, "read {}: res {}", c.user_data, c.res);
                    if !self.faulty {
                        panic!("read {} failed on a RAM disk: {}", c.user_data, c.res);
                    }
                }
            }
            Kind::Write => {
                if c.res >= 0 {
                    let n = c.res as usize;
                    assert!(n <= total, "write {}: {n} bytes reported of {total}", c.user_data);
                    let size = self.model.disk.len() as u64;
                    for i in 0..n {
                        let Some(o) = p.offset.checked_add(i as u64).filter(|&o| o < size) else {
                            panic!("write {}: byte {i} reported written past the end", c.user_data)
                        };
                        if self.model.writer[o as usize] == p.seq {
                            self.model.disk[o as usize] = p.bytes[i];
                        }
                    }
                    if !self.faulty {
                        let want = size.saturating_sub(p.offset).min(total as u64) as usize;
                        assert_eq!(n, want, "write {} at {} of {total}", c.user_data, p.offset);
                    }
                } else {
                    assert!(c.res >= -4095, "write {}: res {}", c.user_data, c.res);
                    if !self.faulty {
                        let size = self.model.disk.len() as u64;
                        assert!(
                            c.res == -i64::from(libc::ENOSPC) && p.offset >= size && total > 0,
                            "write {} at {} failed on a RAM disk: {}",
                            c.user_data,
                            p.offset,
                            c.res
                        );
                    }
                }
            }
            Kind::Fsync | Kind::Fdatasync => {
                assert!(c.res <= 0, "sync {}: res {}", c.user_data, c.res);
            }
            Kind::ReadIntoReadOnly => panic!("a read into a read-only buffer was accepted"),
        }
        take_back(c.buf, &p.lens, p.vectored, c.user_data);
    }

    fn take(&mut self, out: Vec<Completion>) {
        for c in out {
            self.completion(c);
        }
    }

    fn check_in_flight(&self) {
        assert_eq!(
            self.driver.in_flight(),
            self.accepted - self.completed,
            "in_flight() is not accepted ({}) minus completed ({})",
            self.accepted,
            self.completed
        );
    }
}

/// The first `n` bytes the completion's buffers hold.
fn gathered(buf: &Buf, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; buf.len()];
    let got = buf.gather(&mut out);
    out.truncate(got.min(n));
    out
}

/// Takes the owned buffers back out of `buf` (as the right type), which drops them.
fn take_back(buf: Buf, lens: &[usize], vectored: bool, user_data: u64) {
    if lens.is_empty() && !vectored {
        assert_eq!(buf.segments(), 0);
        return;
    }
    if vectored {
        let bufs: Vec<Counted> =
            buf.take().unwrap_or_else(|| panic!("request {user_data}: not its Vec back"));
        assert_eq!(bufs.len(), lens.len());
    } else {
        let b: Counted = buf.take().unwrap_or_else(|| panic!("request {user_data}: not its buffer"));
        assert_eq!(b.data.len(), lens[0]);
    }
}

fn short_wait(us: Option<u8>) -> Option<Duration> {
    Some(Duration::from_micros(us.map_or(0, |u| u64::from(u) * 10)))
}

fn run(input: Input) {
    DROPS.lock().unwrap().clear();
    let size = usize::from(input.size) % 65_536;
    let mem = MemDriver::new(size);
    let faults = input.faults.map(|f| {
        let errnos: Vec<i32> = f.errnos.iter().take(4).map(|&e| i32::from(e)).collect();
        let latency = f.latency_us.map(|(a, b)| {
            let (lo, hi) = (u64::from(a.min(b)), u64::from(a.max(b)));
            (Duration::from_micros(lo * 4), Duration::from_micros(hi * 4))
        });
        FaultConfig {
            seed: f.seed,
            fail_rate: f64::from(f.fail) / 255.0,
            fail_errnos: errnos,
            short_rate: f64::from(f.short) / 255.0,
            latency,
            crash_after: f.crash_after.map(u64::from),
            rules: None,
        }
    });
    let fault_driver = faults.clone().map(|cfg| FaultDriver::new(MemDriver::new(size), cfg));
    let driver: &dyn Driver = match &fault_driver {
        Some(f) => f,
        None => &mem,
    };
    let faulty = faults.as_ref().is_some_and(|f| f.fail_rate > 0.0 || f.short_rate > 0.0);
    let mut run = Run {
        driver,
        fault: fault_driver.as_ref(),
        model: Model { disk: vec![Some(0); size], writer: vec![0; size] },
        pending: HashMap::new(),
        done: HashMap::new(),
        next_user_data: 0,
        accepted: 0,
        completed: 0,
        faulty,
    };
    for call in input.calls.into_iter().take(200) {
        match call {
            Call::Queue { kind, offset, segs, many, byte } => {
                run.queue(kind, offset, &segs, many, byte)
            }
            Call::Flush => driver.flush().expect("flush"),
            Call::Reap { min, max, wait_us } => {
                let mut out = Vec::new();
                let (min, max) = (usize::from(min % 8), usize::from(max % 16));
                // A signal (libFuzzer's timer) may end a wait: Interrupted, having moved none.
                let n = match driver.reap(min, max, short_wait(wait_us), &mut out) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                    r => r.expect("reap"),
                };
                assert_eq!(n, out.len(), "reap's count is not what it moved");
                assert!(n <= max, "reap moved {n}, more than max {max}");
                run.take(out);
            }
            Call::Poll { max } => {
                let mut out = Vec::new();
                let max = usize::from(max % 16);
                let n = driver.poll(max, &mut out).expect("poll");
                assert_eq!(n, out.len());
                assert!(n <= max);
                run.take(out);
            }
            Call::Cancel { pick, unknown } => {
                let target = if unknown || run.pending.is_empty() {
                    u64::from(pick) + 1_000_000
                } else {
                    let mut keys: Vec<u64> = run.pending.keys().copied().collect();
                    keys.sort_unstable();
                    keys[usize::from(pick) % keys.len()]
                };
                let outcome = driver.cancel(target).expect("cancel");
                if !run.pending.contains_key(&target) {
                    assert_eq!(outcome, CancelOutcome::NotFound, "cancel of {target}: not ours");
                }
            }
            Call::WaitReady { wait_us } => {
                let _ = driver.wait_ready(short_wait(wait_us), None);
            }
            Call::Wake => driver.wake(),
            Call::Eventfd => {
                driver.eventfd().expect("eventfd");
            }
        }
        run.check_in_flight();
    }
    // Drain: everything accepted completes, unless the device crashed.
    let give_up = Instant::now() + Duration::from_secs(5);
    while !run.pending.is_empty() && !run.crashed() {
        assert!(
            Instant::now() < give_up,
            "{} requests never completed: {:?}",
            run.pending.len(),
            run.pending.keys().collect::<Vec<_>>()
        );
        let mut out = Vec::new();
        match driver.reap(1, 64, Some(Duration::from_millis(5)), &mut out) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => {
                r.expect("reap");
            }
        }
        run.take(out);
    }
    if run.crashed() {
        // Nothing more is reported once crashed.
        let mut out = Vec::new();
        let _ = driver.reap(0, 64, Some(Duration::from_millis(1)), &mut out);
        assert!(out.is_empty(), "a crashed device reported {} completions", out.len());
    }
    run.check_in_flight();
    let leftover = run.pending.len();
    drop(run);
    drop(fault_driver);
    drop(mem);
    let drops = DROPS.lock().unwrap();
    for (id, d) in drops.iter().enumerate() {
        assert_eq!(
            *d, 1,
            "buffer {id} not dropped exactly once ({leftover} requests left with the driver)"
        );
    }
}

fuzz_target!(|input: Input| run(input));
