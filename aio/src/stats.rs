//! What a C library did, counted when `AIO_STATS=1` is in its environment and printed as one
//! line on stderr at exit: requests by operation, how many were served inline (at submission)
//! or asynchronously, errors by errno, refusals, cancellations, and the most in flight at once.
//! Off, a request costs one load of a flag; on, two uncontended atomic additions (the count of
//! its operation, and the number in flight, taken back when it ends) and a load.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};

/// The operations counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatOp {
    /// Reads (vectored or not).
    Read,
    /// Writes.
    Write,
    /// `fsync`.
    Fsync,
    /// `fdatasync`.
    Fdatasync,
    /// Anything else (a poll, a no-op).
    Other,
}

const OPS: [(StatOp, &str); 5] = [
    (StatOp::Read, "read"),
    (StatOp::Write, "write"),
    (StatOp::Fsync, "fsync"),
    (StatOp::Fdatasync, "fdatasync"),
    (StatOp::Other, "other"),
];

// `request` indexes the counters by the operation's discriminant.
const _: () = {
    let mut i = 0;
    while i < OPS.len() {
        assert!(OPS[i].0 as usize == i);
        i += 1;
    }
};

/// Errnos counted one by one (Linux's are below 134); others are counted as "other".
const ERRNOS: usize = 134;

/// A library's counters. Meant for a `static`.
pub struct Stats {
    /// 0: not asked yet; 1: off; 2: on.
    state: AtomicU8,
    ops: [AtomicU64; 5],
    inline: AtomicU64,
    refused: AtomicU64,
    cancelled: AtomicU64,
    /// Handed to the engine and not ended (signed: an end counted without its start, which
    /// cannot happen, would not wrap).
    in_flight: AtomicI64,
    max_in_flight: AtomicI64,
    errors: [AtomicU64; ERRNOS + 1],
    printed: AtomicBool,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

impl Stats {
    /// Counters at zero; whether they count is read from `AIO_STATS` on first use.
    pub const fn new() -> Stats {
        Stats {
            state: AtomicU8::new(0),
            ops: [const { AtomicU64::new(0) }; 5],
            inline: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            max_in_flight: AtomicI64::new(0),
            errors: [const { AtomicU64::new(0) }; ERRNOS + 1],
            printed: AtomicBool::new(false),
        }
    }

    /// Back to zero (in a child after `fork`: its counts are its own). Async-signal-safe.
    pub fn reset(&self) {
        let all = self.ops.iter().chain(&self.errors).chain([
            &self.inline,
            &self.refused,
            &self.cancelled,
        ]);
        for c in all {
            c.store(0, Ordering::Relaxed);
        }
        self.in_flight.store(0, Ordering::Relaxed);
        self.max_in_flight.store(0, Ordering::Relaxed);
        self.printed.store(false, Ordering::Relaxed);
    }

    /// Whether counting is on (`AIO_STATS=1`, or any value but empty and `0`).
    #[inline]
    pub fn on(&self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let on = std::env::var("AIO_STATS").is_ok_and(|v| !v.is_empty() && v != "0");
                self.state.store(if on { 2 } else { 1 }, Ordering::Relaxed);
                on
            }
        }
    }

    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// A request accepted: served at submission (`inline`) or handed to the engine (then it
    /// is in flight until [`done`](Self::done)).
    pub fn request(&self, op: StatOp, inline: bool) {
        if !self.on() {
            return;
        }
        // (`OPS` lists the operations in declaration order.)
        Self::add(&self.ops[op as usize], 1);
        if inline {
            Self::add(&self.inline, 1);
        } else {
            // Asynchronous requests are the total less the inline ones (derived when printed).
            let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            // A new maximum is rare: a load first, the read-modify-write only then.
            if now > self.max_in_flight.load(Ordering::Relaxed) {
                self.max_in_flight.fetch_max(now, Ordering::Relaxed);
            }
        }
    }

    /// A request handed to the engine ended with `res` (bytes, or a negated errno).
    pub fn done(&self, res: i64) {
        if !self.on() {
            return;
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.result(res);
    }

    /// A request's result, counted as an error if it is one (for requests served inline).
    pub fn result(&self, res: i64) {
        if res < 0 && self.on() {
            let e = usize::try_from(-res).unwrap_or(ERRNOS).min(ERRNOS);
            Self::add(&self.errors[e], 1);
        }
    }

    /// A request refused at submission (not accepted at all).
    pub fn refused(&self) {
        if self.on() {
            Self::add(&self.refused, 1);
        }
    }

    /// A request cancelled by the program.
    pub fn cancelled(&self, n: u64) {
        if self.on() {
            Self::add(&self.cancelled, n);
        }
    }

    /// The line: `LIB: N requests (read …) on ENGINE: I inline, A asynchronous; errors E (EIO
    /// 2, …); refused R; cancelled C; most in flight M`.
    pub fn line(&self, lib: &str, engine: &str) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ops: Vec<String> = OPS
            .iter()
            .zip(&self.ops)
            .filter(|(_, c)| get(c) > 0)
            .map(|((_, name), c)| format!("{name} {}", get(c)))
            .collect();
        let total: u64 = self.ops.iter().map(get).sum();
        let errors: Vec<String> = self
            .errors
            .iter()
            .enumerate()
            .filter(|(_, c)| get(c) > 0)
            .map(|(e, c)| {
                let name = if e == ERRNOS {
                    "other".to_string()
                } else {
                    crate::faults::errno_name(e as i32)
                };
                format!("{name} {}", get(c))
            })
            .collect();
        let error_total: u64 = self.errors.iter().map(get).sum();
        format!(
            "{lib}: {total} requests ({}) on {engine}: {} inline, {} asynchronous; errors {}{}; \
             refused {}; cancelled {}; most in flight {}",
            if ops.is_empty() { "none".to_string() } else { ops.join(", ") },
            get(&self.inline),
            total.saturating_sub(get(&self.inline)),
            error_total,
            if errors.is_empty() { String::new() } else { format!(" ({})", errors.join(", ")) },
            get(&self.refused),
            get(&self.cancelled),
            self.max_in_flight.load(Ordering::Relaxed).max(0),
        )
    }

    /// Prints [`line`](Self::line) on stderr, once, if counting is on (for an `atexit`
    /// handler).
    pub fn print(&self, lib: &str, engine: &str) {
        if self.on() && !self.printed.swap(true, Ordering::SeqCst) {
            eprintln!("{}", self.line(lib, engine));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_the_line() {
        let s = Stats::new();
        s.state.store(2, Ordering::Relaxed);
        s.request(StatOp::Read, true);
        s.request(StatOp::Read, false);
        s.request(StatOp::Write, false);
        s.done(4096);
        s.done(-i64::from(libc::EIO));
        s.result(-i64::from(libc::EBADF));
        s.refused();
        s.cancelled(1);
        assert_eq!(
            s.line("lib", "uring"),
            "lib: 3 requests (read 2, write 1) on uring: 1 inline, 2 asynchronous; errors 2 \
             (EIO 1, EBADF 1); refused 1; cancelled 1; most in flight 2"
        );
        let off = Stats::new();
        off.state.store(1, Ordering::Relaxed);
        off.request(StatOp::Read, true);
        assert!(off.line("lib", "x").starts_with("lib: 0 requests (none)"));
    }
}
