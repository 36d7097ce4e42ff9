//! The fault log: one JSON object per line for each fault injected.
//!
//! ```text
//! {"seq":17,"rule":0,"op":"read","path":"/a.bad","offset":0,"len":4096,"action":"error","errno":"EIO"}
//! {"seq":40,"rule":1,"op":"write","path":"/db","offset":8192,"len":4096,"action":"torn","bytes":512}
//! {"seq":41,"rule":2,"op":"fsync","path":"/db","action":"delay","delay_us":200000}
//! {"note":"crash"}
//! ```
//!
//! `seq` numbers the operations decided on while rules were armed (from 0), `rule` is the
//! rule's number, `offset` and `len` appear for reads and writes, `path` when known. A rule
//! that both delays and acts has `delay_us` beside its action. Each line is written with one
//! `write` and flushed, so a reader sees whole lines while the program runs.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::{errno_name, Event, Outcome};

/// Where fired rules are written, as JSON lines.
pub struct FaultLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl FaultLog {
    /// Appends to the file at `path` (created if missing).
    pub fn create(path: &Path) -> io::Result<FaultLog> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(FaultLog::new(Box::new(file)))
    }

    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> FaultLog {
        FaultLog { out: Mutex::new(out) }
    }

    pub(super) fn write(
        &self,
        seq: u64,
        rule: u64,
        ev: &Event<'_>,
        outcome: Outcome,
        delay: Duration,
    ) {
        let mut line = format!(r#"{{"seq":{seq},"rule":{rule},"op":"{}""#, ev.op.name());
        if let Some(p) = ev.path {
            line.push_str(r#","path":"#);
            push_json_string(&mut line, p);
        }
        if let Some(off) = ev.offset {
            line.push_str(&format!(r#","offset":{off},"len":{}"#, ev.len));
        }
        match outcome {
            Outcome::Pass => line.push_str(r#","action":"delay""#),
            Outcome::Fail(e) => {
                line.push_str(&format!(r#","action":"error","errno":"{}""#, errno_name(e)))
            }
            Outcome::Short(b) => line.push_str(&format!(r#","action":"short","bytes":{b}"#)),
            Outcome::Torn(b) => line.push_str(&format!(r#","action":"torn","bytes":{b}"#)),
            Outcome::Crash => line.push_str(r#","action":"crash""#),
        }
        if !delay.is_zero() {
            line.push_str(&format!(r#","delay_us":{}"#, delay.as_micros()));
        }
        line.push_str("}\n");
        self.emit(&line);
    }

    pub(super) fn write_note(&self, what: &str) {
        let mut line = String::from(r#"{"note":"#);
        push_json_string(&mut line, what);
        line.push_str("}\n");
        self.emit(&line);
    }

    fn emit(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A log that cannot be written must not stop the I/O it describes.
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::{FaultOp, Faults};
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_json() {
        let sink = Shared::default();
        let f = Faults::new(3, Some(FaultLog::new(Box::new(sink.clone()))));
        f.add("op=read,path=*.bad,errno=EIO".parse().unwrap());
        f.add("op=write,torn=512,delay=2ms".parse().unwrap());
        f.add("op=fsync,nth=2,delay=200ms".parse().unwrap());
        f.decide(&Event::data(FaultOp::Read, Some("/dir/a\"q.bad"), 0, 4096));
        f.decide(&Event::data(FaultOp::Read, Some("/ok"), 0, 4096));
        f.decide(&Event::data(FaultOp::Write, Some("/w"), 4096, 1024));
        f.decide(&Event::new(FaultOp::Fsync, Some("/w")));
        f.decide(&Event::new(FaultOp::Fsync, Some("/w")));
        f.log_event("crash");
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"seq":0,"rule":0,"op":"read","path":"/dir/a\"q.bad","offset":0,"len":4096,"action":"error","errno":"EIO"}"#,
                r#"{"seq":2,"rule":1,"op":"write","path":"/w","offset":4096,"len":1024,"action":"torn","bytes":512,"delay_us":2000}"#,
                r#"{"seq":4,"rule":2,"op":"fsync","path":"/w","action":"delay","delay_us":200000}"#,
                r#"{"note":"crash"}"#,
            ]
        );
    }
}
