//! What `aio bench` prints: a table per job and a summary side by side for people, or one JSON
//! document (`--output-format=json`) for scripts.

use std::time::Duration;

use serde::Serialize;

use super::engine::Stats;
use super::job::Job;
use crate::util::{human_bytes, human_ns, CpuTime};

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `aio` version.
    pub version: &'static str,
    /// `uname -srm`.
    pub kernel: String,
    /// `/proc/loadavg` before and after.
    pub load_before: String,
    /// See `load_before`.
    pub load_after: String,
    /// The file the jobs ran on.
    pub file: FileReport,
    /// One per job.
    pub jobs: Vec<JobReport>,
    /// Remarks: engines skipped, how each engine works, noise.
    pub notes: Vec<String>,
}

/// The file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// Its path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The filesystem it is on.
    pub filesystem: String,
    /// Whether `aio bench` made it for this run (and removed it afterwards).
    pub temporary: bool,
}

/// One job's results.
#[derive(Debug, Serialize)]
pub struct JobReport {
    /// Short name.
    pub name: String,
    /// In words.
    pub title: String,
    /// `--rw`.
    pub rw: String,
    /// `--random_distribution`: `random` or `zipf:THETA`.
    pub random_distribution: String,
    /// `--rwmixread`.
    pub rwmixread: u32,
    /// `--bs`, bytes.
    pub bs: usize,
    /// `--iodepth`.
    pub iodepth: usize,
    /// `--iodepth_batch`.
    pub iodepth_batch: usize,
    /// `--direct`.
    pub direct: bool,
    /// `--numjobs`.
    pub numjobs: usize,
    /// `--size`, bytes.
    pub size: u64,
    /// `--runtime`, seconds per engine.
    pub runtime_s: Option<f64>,
    /// `--io-size`, bytes per thread per engine.
    pub io_size: Option<u64>,
    /// Rounds each engine's time was split into (engines alternate round by round).
    pub rounds: usize,
    /// One per engine asked for, in table order.
    pub engines: Vec<EngineReport>,
}

/// One engine's results on one job.
#[derive(Debug, Serialize)]
pub struct EngineReport {
    /// `uring`, `kernel`, `pool`, `posix` or `sync`.
    pub engine: String,
    /// `ok` or `skipped`.
    pub status: &'static str,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// What it is.
    pub detail: String,
    /// Requests completed.
    pub ios: u64,
    /// Reads completed.
    pub read_ios: u64,
    /// Writes completed.
    pub write_ios: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Time measured, seconds (all rounds).
    pub seconds: f64,
    /// Requests per second.
    pub iops: f64,
    /// MiB per second (reads and writes).
    pub mib_s: f64,
    /// Completion latency (queue to reap), nanoseconds.
    pub lat_ns: Option<Latency>,
    /// CPU time of the whole process (all threads) while this engine ran.
    pub cpu: Option<Cpu>,
    /// IOPS over the sync engine's IOPS on the same job.
    pub vs_sync: Option<f64>,
    /// How the engine's inline path served the requests (absent: no request asked it).
    pub inline: Option<InlineReport>,
    /// The latency percentile curve for `--plot`: (fraction of requests, nanoseconds), from
    /// the median's left to as far into the tail as the requests measured reach.
    #[serde(skip)]
    pub percentiles: Vec<(f64, u64)>,
}

/// What the inline path (small buffered requests served at submission) did with the requests.
#[derive(Debug, Serialize)]
pub struct InlineReport {
    /// Served at submission.
    pub served: u64,
    /// Tried and refused (not in the page cache): sent to the engine.
    pub missed: u64,
    /// Not tried after misses on the descriptor: sent to the engine.
    pub skipped: u64,
    /// Not eligible (`O_DIRECT`, large, the path off): sent to the engine.
    pub ineligible: u64,
}

/// Latency figures, nanoseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

/// CPU use: seconds, and percent of one CPU over the time measured (200% = two CPUs busy).
#[derive(Debug, Serialize)]
pub struct Cpu {
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub sys_s: f64,
    /// User time, % of one CPU.
    pub user_pct: f64,
    /// System time, % of one CPU.
    pub sys_pct: f64,
}

impl JobReport {
    /// The job's settings, with no engine yet.
    pub fn new(job: &Job, rounds: usize) -> JobReport {
        JobReport {
            name: job.name.clone(),
            title: job.title(),
            rw: job.rw.to_string(),
            random_distribution: job.dist.to_string(),
            rwmixread: job.rwmixread,
            bs: job.bs,
            iodepth: job.iodepth,
            iodepth_batch: job.iodepth_batch,
            direct: job.direct,
            numjobs: job.numjobs,
            size: job.size,
            runtime_s: job.runtime.map(|d| d.as_secs_f64()),
            io_size: job.io_size,
            rounds,
            engines: Vec::new(),
        }
    }

    /// Fills in each engine's ratio to sync.
    pub fn set_ratios(&mut self) {
        let sync = self.engines.iter().find(|e| e.engine == "sync" && e.status == "ok");
        let Some(base) = sync.map(|s| s.iops).filter(|&v| v > 0.0) else { return };
        for e in &mut self.engines {
            if e.status == "ok" {
                e.vs_sync = Some(e.iops / base);
            }
        }
    }
}

impl EngineReport {
    /// An engine that did not run, and why.
    pub fn skipped(engine: &str, detail: String, reason: String) -> EngineReport {
        EngineReport {
            engine: engine.to_string(),
            status: "skipped",
            reason: Some(reason),
            detail,
            ios: 0,
            read_ios: 0,
            write_ios: 0,
            read_bytes: 0,
            write_bytes: 0,
            seconds: 0.0,
            iops: 0.0,
            mib_s: 0.0,
            lat_ns: None,
            cpu: None,
            vs_sync: None,
            inline: None,
            percentiles: Vec::new(),
        }
    }

    /// An engine's measurements.
    pub fn measured(
        engine: &str,
        detail: String,
        stats: &Stats,
        time: Duration,
        cpu: CpuTime,
    ) -> EngineReport {
        let secs = time.as_secs_f64().max(1e-9);
        let ios = stats.read_ios + stats.write_ios;
        let bytes = stats.read_bytes + stats.write_bytes;
        let h = &stats.hist;
        let lat = (!h.is_empty()).then(|| Latency {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        });
        EngineReport {
            engine: engine.to_string(),
            status: "ok",
            reason: None,
            detail,
            ios,
            read_ios: stats.read_ios,
            write_ios: stats.write_ios,
            read_bytes: stats.read_bytes,
            write_bytes: stats.write_bytes,
            seconds: secs,
            iops: ios as f64 / secs,
            mib_s: bytes as f64 / secs / (1u64 << 20) as f64,
            lat_ns: lat,
            cpu: Some(Cpu {
                user_s: cpu.user.as_secs_f64(),
                sys_s: cpu.system.as_secs_f64(),
                user_pct: cpu.user.as_secs_f64() / secs * 100.0,
                sys_pct: cpu.system.as_secs_f64() / secs * 100.0,
            }),
            vs_sync: None,
            inline: (stats.inline.total() > 0).then_some(InlineReport {
                served: stats.inline.inline,
                missed: stats.inline.missed,
                skipped: stats.inline.skipped,
                ineligible: stats.inline.ineligible,
            }),
            percentiles: percentile_curve(h),
        }
    }
}

/// Points of the percentile curve of `h`: evenly spaced on a scale of "nines" (1/(1-p)), from
/// 0% to 99.999%, stopping where fewer than one request lies beyond the percentile.
fn percentile_curve(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, u64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let top = (n as f64).min(1e5);
    const STEPS: u32 = 150;
    let mut out = Vec::new();
    for i in 0..=STEPS {
        let x = 10f64.powf(5.0 * f64::from(i) / f64::from(STEPS));
        if x > top {
            break;
        }
        let p = 1.0 - 1.0 / x;
        out.push((p, h.value_at_quantile(p)));
    }
    out
}

fn pad(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            line.push_str(&format!("{c:<w$}"));
        } else {
            line.push_str(&format!("  {c:>w$}"));
        }
    }
    line.trim_end().to_string()
}

/// The table of one job, for people.
pub fn job_table(job: &JobReport) -> String {
    let header: Vec<String> = [
        "engine", "IOPS", "MiB/s", "lat mean", "p50", "p99", "p99.9", "max", "usr%", "sys%",
        "vs sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for e in &job.engines {
        if e.status != "ok" {
            skipped.push(format!("{:<8}skipped: {}", e.engine, e.reason.as_deref().unwrap_or("?")));
            continue;
        }
        let (mean, p50, p99, p999, max) = match &e.lat_ns {
            Some(l) => (
                human_ns(l.mean),
                human_ns(l.p50 as f64),
                human_ns(l.p99 as f64),
                human_ns(l.p99_9 as f64),
                human_ns(l.max as f64),
            ),
            None => Default::default(),
        };
        let (usr, sys) = match &e.cpu {
            Some(c) => (format!("{:.0}", c.user_pct), format!("{:.0}", c.sys_pct)),
            None => Default::default(),
        };
        rows.push(vec![
            e.engine.clone(),
            format!("{:.0}", e.iops),
            format!("{:.1}", e.mib_s),
            mean,
            p50,
            p99,
            p999,
            max,
            usr,
            sys,
            e.vs_sync.map_or("-".to_string(), |r| format!("{r:.2}x")),
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    out.push_str(&pad(&header, &widths));
    out.push('\n');
    for r in &rows {
        out.push_str(&pad(r, &widths));
        out.push('\n');
    }
    for s in skipped {
        out.push_str(&s);
        out.push('\n');
    }
    out
}

/// Every job side by side: IOPS and the ratio to sync, per engine.
pub fn summary_table(jobs: &[JobReport], short: &[String]) -> String {
    let mut engines: Vec<&str> = Vec::new();
    for j in jobs {
        for e in &j.engines {
            if !engines.contains(&e.engine.as_str()) {
                engines.push(&e.engine);
            }
        }
    }
    let mut header = vec!["engine".to_string()];
    header.extend(short.iter().map(|s| format!("{s}: IOPS (vs sync)")));
    let mut rows = Vec::new();
    for name in engines {
        let mut row = vec![name.to_string()];
        for j in jobs {
            row.push(match j.engines.iter().find(|e| e.engine == name) {
                Some(e) if e.status == "ok" => match e.vs_sync {
                    Some(r) => format!("{:.0} ({r:.2}x)", e.iops),
                    None => format!("{:.0}", e.iops),
                },
                Some(_) => "skipped".to_string(),
                None => "-".to_string(),
            });
        }
        rows.push(row);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = pad(&header, &widths);
    out.push('\n');
    for r in &rows {
        out.push_str(&pad(r, &widths));
        out.push('\n');
    }
    out
}

/// The header line of a job's table.
pub fn job_heading(job: &JobReport, file: &FileReport, per_engine: &str) -> String {
    format!(
        "{}: {} of {} on {}; {per_engine}",
        job.title,
        human_bytes(job.size),
        file.path,
        file.filesystem
    )
}
