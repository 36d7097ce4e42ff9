//! The SPEC grammar: a [`Rule`] from `key=value,key=value`. The keys are documented in
//! `docs/mount.md` ("Fault rules"), with examples in the module documentation of
//! [`crate::faults`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::errno::{errno_name, parse_errno};
use super::glob::Glob;

/// The operations a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// A read of file data.
    Read,
    /// A write of file data.
    Write,
    /// `fsync` (`op=fsync` also matches `fdatasync`).
    Fsync,
    /// `fdatasync`.
    Fdatasync,
    /// Opening a file (or creating one: `op=open` also matches `create`).
    Open,
    /// Creating a file.
    Create,
    /// Creating a directory.
    Mkdir,
    /// Removing a file.
    Unlink,
    /// Removing a directory.
    Rmdir,
    /// Renaming.
    Rename,
    /// Changing a file's size (`truncate`, `ftruncate`, `O_TRUNC`).
    Truncate,
    /// `fallocate`.
    Fallocate,
    /// Reading attributes (`stat`).
    Getattr,
    /// Changing attributes other than the size (`chmod`, `chown`, `utimes`).
    Setattr,
    /// Listing a directory.
    Readdir,
    /// Reading or changing extended attributes.
    Xattr,
    /// Hard and symbolic links.
    Link,
}

/// Every operation with its name in a SPEC, in the order documented.
const OPS: &[(&str, FaultOp)] = &[
    ("read", FaultOp::Read),
    ("write", FaultOp::Write),
    ("fsync", FaultOp::Fsync),
    ("fdatasync", FaultOp::Fdatasync),
    ("open", FaultOp::Open),
    ("create", FaultOp::Create),
    ("mkdir", FaultOp::Mkdir),
    ("unlink", FaultOp::Unlink),
    ("rmdir", FaultOp::Rmdir),
    ("rename", FaultOp::Rename),
    ("truncate", FaultOp::Truncate),
    ("fallocate", FaultOp::Fallocate),
    ("getattr", FaultOp::Getattr),
    ("setattr", FaultOp::Setattr),
    ("readdir", FaultOp::Readdir),
    ("xattr", FaultOp::Xattr),
    ("link", FaultOp::Link),
];

impl FaultOp {
    /// The name a SPEC and the fault log use.
    pub fn name(self) -> &'static str {
        OPS.iter().find(|&&(_, op)| op == self).map_or("?", |&(n, _)| n)
    }

    fn bit(self) -> u32 {
        1 << OPS.iter().position(|&(_, op)| op == self).unwrap_or(0)
    }

    /// Whether the operation moves file data (and so has an offset and a length).
    pub fn has_range(self) -> bool {
        matches!(self, FaultOp::Read | FaultOp::Write)
    }
}

/// A set of operations (`op=read|write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSet(u32);

impl OpSet {
    /// Every operation (`op=any`, or no `op` key).
    pub const ALL: OpSet = OpSet(u32::MAX);

    /// Whether `op` is in the set.
    pub fn contains(self, op: FaultOp) -> bool {
        self.0 & op.bit() != 0
    }

    fn parse(s: &str) -> Result<OpSet, String> {
        let mut bits = 0;
        for name in s.split('|') {
            let name = name.trim().to_ascii_lowercase();
            if name == "any" || name == "*" {
                return Ok(OpSet::ALL);
            }
            let Some(&(_, op)) = OPS.iter().find(|(n, _)| *n == name) else {
                let all: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "op={s}: unknown operation {name:?} (one of {}, any; several joined with |)",
                    all.join(", ")
                ));
            };
            bits |= op.bit();
            // The general name covers its special case.
            if op == FaultOp::Fsync {
                bits |= FaultOp::Fdatasync.bit();
            }
            if op == FaultOp::Open {
                bits |= FaultOp::Create.bit();
            }
        }
        Ok(OpSet(bits))
    }
}

/// What a rule does to an operation it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fail with this errno; nothing of the operation is done.
    Error(i32),
    /// Transfer only this many bytes (a read or write), and say so; `None`: a number drawn
    /// from the seed, between 1 and the length less one (a multiple of 4096 when the length
    /// is over 8192, so `O_DIRECT` alignment holds).
    Short(Option<u64>),
    /// A write of which only the first this-many bytes persist, while the whole length is
    /// reported written; `None`: drawn from the seed, a multiple of 512 below the length.
    Torn(Option<u64>),
    /// Only the delay (`delay=`): the operation itself runs normally.
    Delay,
    /// The operation runs, then the power fails: what was not synced is lost (where the
    /// user of the rules holds unsynced data; see `aio mount --lose-unsynced`).
    Crash,
}

/// One fault rule: which operations it matches, when it fires, and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The operations it matches.
    pub ops: OpSet,
    /// The paths it matches (`None`: any, and operations whose path is unknown).
    pub path: Option<Glob>,
    /// The byte range `[start, end)` an operation must touch (`end` `None`: to the end of any
    /// file). Operations without a range (fsync, open, …) never match a rule with one.
    pub offset: Option<(u64, Option<u64>)>,
    /// Fire on a match with this probability, drawn from the seed.
    pub prob: Option<f64>,
    /// Fire on the Nth match only (1 is the first).
    pub nth: Option<u64>,
    /// Fire at most this many times.
    pub count: Option<u64>,
    /// What it does.
    pub action: Action,
    /// Added latency: fixed (both ends equal) or drawn from the range with the seed.
    pub delay: Option<(Duration, Duration)>,
}

/// The keys a SPEC may use, in the order the documentation gives them.
pub const KEYS: &[&str] =
    &["op", "path", "offset", "prob", "nth", "count", "errno", "short", "torn", "delay", "action"];

impl FromStr for Rule {
    type Err = String;

    /// Parses a SPEC (see the [module documentation](crate::faults)). Errors name the key and
    /// value at fault.
    fn from_str(spec: &str) -> Result<Rule, String> {
        let mut ops = None;
        let mut path = None;
        let mut offset = None;
        let mut prob = None;
        let mut nth = None;
        let mut count = None;
        let mut errno = None;
        let mut short = None;
        let mut torn = None;
        let mut delay = None;
        let mut action = None;
        let mut seen: Vec<&str> = Vec::new();
        if spec.trim().is_empty() {
            return Err("the fault rule is empty (example: op=read,path=*.bad,errno=EIO)".into());
        }
        for pair in spec.split(',') {
            let pair = pair.trim();
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!(
                    "{pair:?} is not key=value (keys: {}; example: op=write,errno=ENOSPC)",
                    KEYS.join(", ")
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let key_lc = key.to_ascii_lowercase();
            let Some(&known) = KEYS.iter().find(|k| **k == key_lc) else {
                return Err(format!("unknown key {key:?} (keys: {})", KEYS.join(", ")));
            };
            if seen.contains(&known) {
                return Err(format!("{known}= is given twice"));
            }
            seen.push(known);
            if value.is_empty() {
                return Err(format!("{known}= has no value"));
            }
            match known {
                "op" => ops = Some(OpSet::parse(value)?),
                "path" => path = Some(Glob::new(value)?),
                "offset" => offset = Some(parse_range(value)?),
                "prob" => {
                    let p: f64 = value
                        .parse()
                        .map_err(|_| format!("prob={value}: not a number between 0 and 1"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("prob={value}: must be between 0 and 1"));
                    }
                    prob = Some(p);
                }
                "nth" => nth = Some(parse_count("nth", value)?),
                "count" => count = Some(parse_count("count", value)?),
                "errno" => errno = Some(parse_errno(value)?),
                "short" => short = Some(parse_bytes_or_random("short", value)?),
                "torn" => torn = Some(parse_bytes_or_random("torn", value)?),
                "delay" => delay = Some(parse_delay(value)?),
                "action" => action = Some(value.to_ascii_lowercase()),
                _ => unreachable!("every key is handled"),
            }
        }
        let given: Vec<&str> = [
            errno.map(|_| "errno"),
            short.map(|_| "short"),
            torn.map(|_| "torn"),
            action.as_deref().filter(|a| *a == "crash").map(|_| "action=crash"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            return Err(format!(
                "{} are different actions: one per rule (add another rule for the other)",
                given.join(" and ")
            ));
        }
        let action = match action.as_deref() {
            None => match (errno, short, torn) {
                (Some(e), _, _) => Action::Error(e),
                (_, Some(s), _) => Action::Short(s),
                (_, _, Some(t)) => Action::Torn(t),
                _ if delay.is_some() => Action::Delay,
                _ => {
                    return Err("the rule does nothing: give errno=, short=, torn=, delay= or \
                                action=crash"
                        .into())
                }
            },
            Some("error" | "errno" | "fail") => Action::Error(errno.unwrap_or(libc::EIO)),
            Some("short") => Action::Short(short.flatten()),
            Some("torn") => Action::Torn(torn.flatten()),
            Some("delay") => {
                if delay.is_none() {
                    return Err("action=delay needs delay= (example: delay=200ms)".into());
                }
                Action::Delay
            }
            Some("crash") => Action::Crash,
            Some(other) => {
                return Err(format!(
                    "action={other}: unknown action (error, short, torn, delay, crash)"
                ))
            }
        };
        // An action key that contradicts a value key (action=short,errno=EIO).
        match (action, errno, short, torn) {
            (Action::Error(_), _, None, None)
            | (Action::Short(_), None, _, None)
            | (Action::Torn(_), None, None, _)
            | (Action::Delay | Action::Crash, None, None, None) => {}
            _ => return Err("action= names a different action than errno=/short=/torn=".into()),
        }
        let ops = ops.unwrap_or(OpSet::ALL);
        let only = |allowed: &[FaultOp]| {
            OPS.iter().all(|&(_, op)| !ops.contains(op) || allowed.contains(&op))
        };
        match action {
            Action::Short(_) if !only(&[FaultOp::Read, FaultOp::Write]) => {
                return Err(
                    "short= applies to data transfers only: give op=read, write or read|write"
                        .into(),
                )
            }
            Action::Torn(_) if !only(&[FaultOp::Write]) => {
                return Err("torn= applies to writes only: give op=write".into())
            }
            _ => {}
        }
        if nth.is_some() && count.is_some() {
            return Err("nth= fires once already: count= does not go with it".into());
        }
        Ok(Rule { ops, path, offset, prob, nth, count, action, delay })
    }
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{key}={value}: expected a whole number from 1")),
    }
}

/// A byte count as sizes are written (`4096`, `4k`, `1M`).
fn parse_size(key: &str, s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{key}={s}: not a size (examples: 4096, 4k, 1M)")),
    };
    let n: u64 =
        num.parse().map_err(|_| format!("{key}={s}: not a size (examples: 4096, 4k, 1M)"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{key}={s}: too large"))
}

fn parse_bytes_or_random(key: &str, s: &str) -> Result<Option<u64>, String> {
    if s.eq_ignore_ascii_case("random") {
        Ok(None)
    } else {
        parse_size(key, s).map(Some)
    }
}

/// `START-END` (end excluded), `START-` (to any end), or `N` (the one byte N).
fn parse_range(s: &str) -> Result<(u64, Option<u64>), String> {
    match s.split_once('-') {
        Some((a, "")) => Ok((parse_size("offset", a)?, None)),
        Some((a, b)) => {
            let (start, end) = (parse_size("offset", a)?, parse_size("offset", b)?);
            if end <= start {
                return Err(format!("offset={s}: the end must be above the start"));
            }
            Ok((start, Some(end)))
        }
        None => {
            let n = parse_size("offset", s)?;
            Ok((n, Some(n + 1)))
        }
    }
}

/// A duration with a unit (`200ms`, `1s`, `50us`), or a range of two (`10ms-50ms`).
fn parse_delay(s: &str) -> Result<(Duration, Duration), String> {
    let one = |t: &str| -> Result<Duration, String> {
        let t = t.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let scale = match unit.to_ascii_lowercase().as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "" => return Err(format!("delay={s}: give a unit (examples: 200ms, 1s, 50us)")),
            _ => return Err(format!("delay={s}: unknown unit {unit:?} (ns, us, ms, s)")),
        };
        let v: f64 = num.parse().map_err(|_| format!("delay={s}: not a duration"))?;
        let secs = v * scale;
        if !secs.is_finite() || !(0.0..=3600.0).contains(&secs) {
            return Err(format!("delay={s}: must be between 0 and an hour"));
        }
        Ok(Duration::from_secs_f64(secs))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (one(a)?, one(b)?);
            if hi < lo {
                return Err(format!("delay={s}: the range is backwards"));
            }
            Ok((lo, hi))
        }
        None => {
            let d = one(s)?;
            Ok((d, d))
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

impl fmt::Display for Rule {
    /// The rule as a SPEC, every key it uses spelled out (parses back to the same rule).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.ops != OpSet::ALL {
            let mut names: Vec<&str> =
                OPS.iter().filter(|&&(_, op)| self.ops.contains(op)).map(|&(n, _)| n).collect();
            // Written back in the short form that parses to the same set.
            if names.contains(&"fsync") {
                names.retain(|n| *n != "fdatasync");
            }
            if names.contains(&"open") {
                names.retain(|n| *n != "create");
            }
            parts.push(format!("op={}", names.join("|")));
        }
        if let Some(g) = &self.path {
            parts.push(format!("path={}", g.as_str()));
        }
        match self.offset {
            Some((a, Some(b))) if b == a + 1 => parts.push(format!("offset={a}")),
            Some((a, Some(b))) => parts.push(format!("offset={a}-{b}")),
            Some((a, None)) => parts.push(format!("offset={a}-")),
            None => {}
        }
        if let Some(p) = self.prob {
            parts.push(format!("prob={p}"));
        }
        if let Some(n) = self.nth {
            parts.push(format!("nth={n}"));
        }
        if let Some(n) = self.count {
            parts.push(format!("count={n}"));
        }
        let bytes = |b: Option<u64>| b.map_or_else(|| "random".to_string(), |b| b.to_string());
        match self.action {
            Action::Error(e) => parts.push(format!("errno={}", errno_name(e))),
            Action::Short(b) => parts.push(format!("short={}", bytes(b))),
            Action::Torn(b) => parts.push(format!("torn={}", bytes(b))),
            Action::Delay => {}
            Action::Crash => parts.push("action=crash".into()),
        }
        if let Some((lo, hi)) = self.delay {
            if lo == hi {
                parts.push(format!("delay={}", fmt_duration(lo)));
            } else {
                parts.push(format!("delay={}-{}", fmt_duration(lo), fmt_duration(hi)));
            }
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<Rule>().expect_err(s)
    }

    #[test]
    fn the_documented_examples_parse() {
        let r = rule("op=read,path=*.bad,errno=EIO");
        assert!(r.ops.contains(FaultOp::Read) && !r.ops.contains(FaultOp::Write));
        assert_eq!(r.action, Action::Error(libc::EIO));
        assert!(r.path.as_ref().unwrap().matches("/x.bad"));
        let r = rule("op=write,prob=0.01,errno=ENOSPC");
        assert_eq!((r.prob, r.action), (Some(0.01), Action::Error(libc::ENOSPC)));
        let r = rule("op=fsync,nth=3,delay=200ms");
        assert_eq!(r.action, Action::Delay);
        assert_eq!(r.delay, Some((Duration::from_millis(200), Duration::from_millis(200))));
        assert!(r.ops.contains(FaultOp::Fdatasync), "fsync covers fdatasync");
        let r = rule("op=write,nth=1000,action=crash");
        assert_eq!((r.nth, r.action), (Some(1000), Action::Crash));
        let r = rule("op=read|write,offset=8k-12k,short=512");
        assert_eq!(r.offset, Some((8192, Some(12288))));
        assert_eq!(r.action, Action::Short(Some(512)));
        let r = rule("op=write,torn=4096");
        assert_eq!(r.action, Action::Torn(Some(4096)));
        let r = rule("op=write,action=torn");
        assert_eq!(r.action, Action::Torn(None));
        let r = rule("delay=1ms-5ms,op=any");
        assert_eq!(r.delay, Some((Duration::from_millis(1), Duration::from_millis(5))));
        assert_eq!(r.ops, OpSet::ALL);
        assert_eq!(rule("action=error").action, Action::Error(libc::EIO));
        assert_eq!(rule("op=open,errno=EACCES,count=2").count, Some(2));
        assert!(rule("op=open,errno=EROFS").ops.contains(FaultOp::Create));
        assert_eq!(rule("offset=100,errno=EIO").offset, Some((100, Some(101))));
        assert_eq!(rule("offset=1M-,errno=EIO").offset, Some((1 << 20, None)));
    }

    #[test]
    fn display_parses_back() {
        for s in [
            "op=read,path=*.bad,errno=EIO",
            "op=write,prob=0.01,errno=ENOSPC",
            "op=fsync,nth=3,delay=200ms",
            "op=write,nth=1000,action=crash",
            "op=read|write,offset=8192-12288,short=random",
            "op=write,offset=0-,torn=4096,delay=1ms-3ms",
            "op=open,count=2,errno=EDQUOT",
        ] {
            let r = rule(s);
            assert_eq!(r.to_string(), s);
            assert_eq!(rule(&r.to_string()), r);
        }
    }

    #[test]
    fn errors_name_the_key_and_value() {
        for (spec, needle) in [
            ("op=reed,errno=EIO", "reed"),
            ("op=read,errno=EBOGUS", "errno=EBOGUS"),
            ("op=read,prob=1.5,errno=EIO", "prob=1.5"),
            ("op=read,prob=x,errno=EIO", "prob=x"),
            ("op=read,nth=0,errno=EIO", "nth=0"),
            ("op=read,offset=9-3,errno=EIO", "offset=9-3"),
            ("op=read,offset=abc,errno=EIO", "offset=abc"),
            ("op=fsync,delay=200", "delay=200"),
            ("op=fsync,delay=9ms-1ms", "delay=9ms-1ms"),
            ("op=read,colour=red,errno=EIO", "colour"),
            ("op=read,errno", "errno"),
            ("op=read,errno=", "errno"),
            ("op=read", "does nothing"),
            ("", "empty"),
            ("op=read,errno=EIO,short=5", "errno and short"),
            ("op=read,action=boom", "action=boom"),
            ("op=fsync,short=10", "short="),
            ("op=read,torn=10", "torn="),
            ("op=read,errno=EIO,errno=EIO", "twice"),
            ("op=read,path=[x,errno=EIO", "never closed"),
            ("op=read,nth=2,count=3,errno=EIO", "count="),
            ("action=short,errno=EIO", "different action"),
        ] {
            let e = err(spec);
            assert!(e.contains(needle), "{spec:?} gave {e:?}, without {needle:?}");
        }
    }
}
