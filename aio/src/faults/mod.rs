//! Fault rules: which operations fail, come back short, wait, tear or crash — as data, decided
//! from a seed, and logged.
//!
//! A rule is written as a SPEC, comma-separated `key=value` pairs:
//!
//! ```text
//! op=read,path=*.bad,errno=EIO         every read of a file ending .bad fails with EIO
//! op=write,prob=0.01,errno=ENOSPC      1% of writes fail with ENOSPC
//! op=fsync,nth=3,delay=200ms           the third fsync takes 200 ms longer
//! op=write,nth=1000,action=crash       the power fails after the 1000th write
//! op=write,offset=1M-2M,torn=4096      writes touching [1 MiB, 2 MiB) keep only their first 4 KiB
//! ```
//!
//! The keys — `op`, `path`, `offset`, `prob`, `nth`, `count`, `errno`, `short`, `torn`, `delay`,
//! `action` — their values and meanings are written down once, in `docs/mount.md` ("Fault
//! rules") in the repository; [`Rule`] is what a SPEC parses into.
//!
//! # Deciding
//!
//! [`Faults::decide`] is called once per operation, before it is carried out. Every rule that
//! matches the operation counts the match; whether it fires is decided from the seed, the
//! rule's number (the order in which rules were added, from 0) and its match count, so the same
//! seed and the same sequence of operations give the same faults, however many rules there are.
//! When several rules fire on one operation their delays add up, and the first rule with
//! another action (in order of addition) decides it; the others do not fire on it.
//!
//! A [`FaultLog`] writes each fired rule as one JSON line: the operation, path, offset, length
//! and what was done.
//!
//! The matcher knows nothing of where operations come from: `aio mount` asks it for each FUSE
//! request, and a C library can ask it with a path from `/proc/self/fd`, or none.

mod errno;
mod glob;
mod log;
mod spec;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use errno::{errno_name, parse_errno};
pub use glob::Glob;
pub use log::FaultLog;
pub use spec::{Action, FaultOp, OpSet, Rule, KEYS};

/// One operation, as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// What it is.
    pub op: FaultOp,
    /// The file's path (from the root of the mount or file system, starting with `/`), if
    /// known.
    pub path: Option<&'a str>,
    /// Where a read or write starts.
    pub offset: Option<u64>,
    /// How many bytes a read or write moves (0 otherwise).
    pub len: u64,
}

impl<'a> Event<'a> {
    /// An operation without a byte range.
    pub fn new(op: FaultOp, path: Option<&'a str>) -> Event<'a> {
        Event { op, path, offset: None, len: 0 }
    }

    /// A read or write of `len` bytes at `offset`.
    pub fn data(op: FaultOp, path: Option<&'a str>, offset: u64, len: u64) -> Event<'a> {
        Event { op, path, offset: Some(offset), len }
    }
}

/// What happens to an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing: carry it out.
    Pass,
    /// Fail it with this errno, doing nothing.
    Fail(i32),
    /// Transfer only this many bytes and report that.
    Short(u64),
    /// Write only the first this-many bytes, report the whole length written.
    Torn(u64),
    /// Carry it out, then simulate a power failure.
    Crash,
}

/// The decision for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Latency to add.
    pub delay: Duration,
    /// What to do.
    pub outcome: Outcome,
}

impl Decision {
    /// No fault.
    pub const PASS: Decision = Decision { delay: Duration::ZERO, outcome: Outcome::Pass };

    /// Whether nothing is to be done differently.
    pub fn is_pass(&self) -> bool {
        *self == Decision::PASS
    }
}

/// A rule as [`Faults::rules`] lists it.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// Its number: the order of addition, from 0 (never reused).
    pub id: u64,
    /// The rule.
    pub rule: Rule,
    /// Operations it matched.
    pub matched: u64,
    /// Times it fired.
    pub fired: u64,
}

/// A set of rules, a seed, and an optional log: decides the fate of each operation.
/// Shared between threads.
pub struct Faults {
    seed: u64,
    rules: Mutex<Rules>,
    /// How many rules there are, read without the lock: no rules, no work.
    armed: AtomicUsize,
    /// Operations decided on while rules were armed, for the log.
    seq: AtomicU64,
    log: Option<FaultLog>,
}

#[derive(Default)]
struct Rules {
    next_id: u64,
    list: Vec<RuleStatus>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("seed", &self.seed)
            .field(
                "rules",
                &lock(&self.rules).list.iter().map(|r| r.rule.to_string()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SplitMix64's finalizer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `k`-th number in [0, 1) for match `n` of rule `id` under `seed`.
fn draw(seed: u64, id: u64, n: u64, k: u64) -> f64 {
    let x = mix(seed ^ mix(id.wrapping_mul(0x1000_0000_01b3) ^ mix(n.wrapping_mul(16) + k)));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Faults {
    /// No rules yet, decisions drawn from `seed`, fired rules written to `log`.
    pub fn new(seed: u64, log: Option<FaultLog>) -> Faults {
        Faults {
            seed,
            rules: Mutex::new(Rules::default()),
            armed: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            log,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a rule after the others; returns its number.
    pub fn add(&self, rule: Rule) -> u64 {
        let mut rules = lock(&self.rules);
        let id = rules.next_id;
        rules.next_id += 1;
        rules.list.push(RuleStatus { id, rule, matched: 0, fired: 0 });
        self.armed.store(rules.list.len(), Ordering::SeqCst);
        id
    }

    /// Removes every rule; returns how many there were. Rule numbers are not reused.
    pub fn clear(&self) -> usize {
        let mut rules = lock(&self.rules);
        let n = rules.list.len();
        rules.list.clear();
        self.armed.store(0, Ordering::SeqCst);
        n
    }

    /// The rules, with how often each matched and fired.
    pub fn rules(&self) -> Vec<RuleStatus> {
        lock(&self.rules).list.clone()
    }

    /// Whether some rule names a path: only then need a caller find an operation's path.
    pub fn wants_path(&self) -> bool {
        self.any() && lock(&self.rules).list.iter().any(|st| st.rule.path.is_some())
    }

    /// Whether any rule is armed (when none is, [`decide`](Self::decide) always passes).
    pub fn any(&self) -> bool {
        self.armed.load(Ordering::Relaxed) > 0
    }

    /// Decides the fate of one operation, counting it against every rule it matches, and logs
    /// the rules that fired.
    pub fn decide(&self, ev: &Event<'_>) -> Decision {
        if !self.any() {
            return Decision::PASS;
        }
        let mut decision = Decision::PASS;
        let mut fired: Vec<(u64, Outcome, Duration)> = Vec::new();
        let mut rules = lock(&self.rules);
        for st in &mut rules.list {
            if !matches(&st.rule, ev) {
                continue;
            }
            st.matched += 1;
            let n = st.matched;
            let r = &st.rule;
            let mut fires = r.nth.is_none_or(|nth| nth == n)
                && r.count.is_none_or(|c| st.fired < c)
                && r.prob.is_none_or(|p| draw(self.seed, st.id, n, 0) < p);
            let outcome = match r.action {
                Action::Delay => Outcome::Pass,
                Action::Error(e) => Outcome::Fail(e),
                Action::Crash => Outcome::Crash,
                Action::Short(b) => match pick_short(b, ev.len, draw(self.seed, st.id, n, 1)) {
                    Some(b) => Outcome::Short(b),
                    None => {
                        fires = false;
                        Outcome::Pass
                    }
                },
                Action::Torn(b) => match pick_torn(b, ev.len, draw(self.seed, st.id, n, 2)) {
                    Some(b) => Outcome::Torn(b),
                    None => {
                        fires = false;
                        Outcome::Pass
                    }
                },
            };
            // A rule whose action is taken by an earlier one does not fire here.
            if outcome != Outcome::Pass && decision.outcome != Outcome::Pass {
                fires = false;
            }
            if !fires {
                continue;
            }
            st.fired += 1;
            let delay = match r.delay {
                Some((lo, hi)) if hi > lo => lo + (hi - lo).mul_f64(draw(self.seed, st.id, n, 3)),
                Some((lo, _)) => lo,
                None => Duration::ZERO,
            };
            decision.delay += delay;
            if outcome != Outcome::Pass {
                decision.outcome = outcome;
            }
            fired.push((st.id, outcome, delay));
        }
        drop(rules);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = &self.log {
            for (id, outcome, delay) in fired {
                log.write(seq, id, ev, outcome, delay);
            }
        }
        decision
    }

    /// Logs something the user of the rules did outside any rule (an explicit crash).
    pub fn log_event(&self, what: &str) {
        if let Some(log) = &self.log {
            log.write_note(what);
        }
    }
}

fn matches(r: &Rule, ev: &Event<'_>) -> bool {
    if !r.ops.contains(ev.op) {
        return false;
    }
    if let Some(glob) = &r.path {
        match ev.path {
            Some(p) if glob.matches(p) => {}
            _ => return false,
        }
    }
    if let Some((start, end)) = r.offset {
        let Some(off) = ev.offset else { return false };
        let last = off.saturating_add(ev.len.max(1) - 1);
        if last < start || end.is_some_and(|e| off >= e) {
            return false;
        }
    }
    true
}

/// The bytes a short transfer keeps, or `None` when it would not be short.
fn pick_short(bytes: Option<u64>, len: u64, r: f64) -> Option<u64> {
    let n = match bytes {
        Some(b) => b,
        None if len < 2 => return None,
        None if len > 8192 => 4096 * (1 + (r * (len / 4096 - 1) as f64) as u64),
        None => 1 + (r * (len - 1) as f64) as u64,
    };
    (n < len).then_some(n)
}

/// The bytes a torn write keeps, or `None` when it would keep them all.
fn pick_torn(bytes: Option<u64>, len: u64, r: f64) -> Option<u64> {
    let n = match bytes {
        Some(b) => b,
        None => 512 * ((r * len.div_ceil(512) as f64) as u64),
    };
    (n < len).then_some(n)
}

/// The rules a library takes from its environment: `AIO_FAULT` (one SPEC, or several separated
/// by `;`), `AIO_FAULT_SEED` (a number; 0 when unset) and `AIO_FAULT_LOG` (a file the fired
/// rules are appended to, one JSON line each). `None` when `AIO_FAULT` is unset or empty;
/// `Err` names what is wrong with a setting.
pub fn from_env() -> Option<Result<Faults, String>> {
    let spec = std::env::var("AIO_FAULT").ok().filter(|s| !s.trim().is_empty())?;
    let build = || -> Result<Faults, String> {
        let seed = match std::env::var("AIO_FAULT_SEED") {
            Ok(s) => s.trim().parse().map_err(|_| format!("AIO_FAULT_SEED={s}: not a number"))?,
            Err(_) => 0,
        };
        let log = match std::env::var_os("AIO_FAULT_LOG") {
            Some(p) => Some(FaultLog::create(std::path::Path::new(&p)).map_err(|e| {
                format!("AIO_FAULT_LOG={}: cannot open it: {e}", p.to_string_lossy())
            })?),
            None => None,
        };
        let faults = Faults::new(seed, log);
        for one in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            faults.add(one.parse().map_err(|e| format!("AIO_FAULT: {one}: {e}"))?);
        }
        Ok(faults)
    };
    Some(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(seed: u64, specs: &[&str]) -> Faults {
        let f = Faults::new(seed, None);
        for s in specs {
            f.add(s.parse().unwrap());
        }
        f
    }

    fn read(path: &str, offset: u64, len: u64) -> Event<'_> {
        Event::data(FaultOp::Read, Some(path), offset, len)
    }

    #[test]
    fn path_and_op_select() {
        let f = faults(1, &["op=read,path=*.bad,errno=EIO"]);
        assert_eq!(f.decide(&read("/a.bad", 0, 10)).outcome, Outcome::Fail(libc::EIO));
        assert!(f.decide(&read("/a.good", 0, 10)).is_pass());
        let w = Event::data(FaultOp::Write, Some("/a.bad"), 0, 10);
        assert!(f.decide(&w).is_pass());
        // Without a path, a path rule never matches.
        assert!(f.decide(&Event::data(FaultOp::Read, None, 0, 10)).is_pass());
    }

    #[test]
    fn offset_ranges_overlap() {
        let f = faults(1, &["op=read,offset=8192-12288,errno=EIO"]);
        assert!(f.decide(&read("/x", 0, 4096)).is_pass());
        assert!(f.decide(&read("/x", 4096, 4096)).is_pass());
        assert!(!f.decide(&read("/x", 4096, 4097)).is_pass());
        assert!(!f.decide(&read("/x", 8192, 4096)).is_pass());
        assert!(!f.decide(&read("/x", 12287, 1)).is_pass());
        assert!(f.decide(&read("/x", 12288, 4096)).is_pass());
        assert!(f.decide(&Event::new(FaultOp::Fsync, Some("/x"))).is_pass());
    }

    #[test]
    fn nth_and_count() {
        let f = faults(1, &["op=fsync,nth=3,delay=200ms"]);
        let sync = Event::new(FaultOp::Fdatasync, Some("/x"));
        let delays: Vec<Duration> = (0..5).map(|_| f.decide(&sync).delay).collect();
        assert_eq!(
            delays,
            [0, 0, 200, 0, 0].map(Duration::from_millis),
            "only the third fsync is delayed"
        );
        let f = faults(1, &["op=open,count=2,errno=EACCES"]);
        let open = Event::new(FaultOp::Open, Some("/x"));
        let fails: Vec<bool> = (0..4).map(|_| !f.decide(&open).is_pass()).collect();
        assert_eq!(fails, [true, true, false, false]);
        let st = &f.rules()[0];
        assert_eq!((st.matched, st.fired), (4, 2));
    }

    #[test]
    fn same_seed_same_faults_with_several_rules() {
        let specs = [
            "op=write,prob=0.1,errno=ENOSPC",
            "op=write,prob=0.2,short=random",
            "op=read|write,prob=0.3,delay=1ms-9ms",
            "op=write,prob=0.05,torn=random",
        ];
        let run = |seed: u64| -> Vec<Decision> {
            let f = faults(seed, &specs);
            (0..2000u64)
                .map(|i| {
                    let op = if i % 3 == 0 { FaultOp::Read } else { FaultOp::Write };
                    f.decide(&Event::data(op, Some("/db"), i * 4096, 16384))
                })
                .collect()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
        let fails = a.iter().filter(|d| matches!(d.outcome, Outcome::Fail(_))).count();
        // About 10% of the 1333 writes.
        assert!((90..180).contains(&fails), "{fails} failures");
        for d in &a {
            match d.outcome {
                Outcome::Short(n) => assert!(n > 0 && n < 16384 && n % 4096 == 0, "{n}"),
                Outcome::Torn(n) => assert!(n < 16384 && n % 512 == 0, "{n}"),
                _ => {}
            }
            assert!(d.delay <= Duration::from_millis(9));
        }
    }

    #[test]
    fn a_rule_decides_the_same_whatever_the_others() {
        // Rule 0 alone and rule 0 beside a rule on other operations: the same draws.
        let alone = faults(7, &["op=write,prob=0.5,errno=EIO"]);
        let both = faults(7, &["op=write,prob=0.5,errno=EIO", "op=read,prob=0.5,errno=EIO"]);
        for i in 0..500 {
            let w = Event::data(FaultOp::Write, None, i, 1);
            let r = Event::data(FaultOp::Read, None, i, 1);
            assert_eq!(alone.decide(&w), both.decide(&w));
            both.decide(&r);
        }
    }

    #[test]
    fn first_action_wins_and_delays_add() {
        let f = faults(
            1,
            &["op=write,delay=5ms", "op=write,errno=EIO", "op=write,errno=ENOSPC,delay=1ms"],
        );
        let d = f.decide(&Event::data(FaultOp::Write, None, 0, 1));
        assert_eq!(d, Decision { delay: Duration::from_millis(5), outcome: Outcome::Fail(5) });
        let st = f.rules();
        assert_eq!(st.iter().map(|s| s.fired).collect::<Vec<_>>(), [1, 1, 0]);
        assert_eq!(f.clear(), 3);
        assert!(!f.any());
        assert!(f.decide(&Event::data(FaultOp::Write, None, 0, 1)).is_pass());
    }

    #[test]
    fn short_and_torn_sizes() {
        assert_eq!(pick_short(Some(100), 4096, 0.5), Some(100));
        assert_eq!(pick_short(Some(4096), 4096, 0.5), None);
        assert_eq!(pick_short(None, 1, 0.5), None);
        assert_eq!(pick_torn(Some(0), 4096, 0.5), Some(0));
        assert_eq!(pick_torn(None, 4096, 0.99), Some(3584));
        assert_eq!(pick_torn(None, 100, 0.7), Some(0));
    }
}
