//! `aio bench`: the same fio-style job on every engine, side by side.
//!
//! With no job option it runs the built-in default: a 256 MiB file under `--dir`, 4 KiB random
//! reads with `O_DIRECT` at QD 32, then page-cache-hot 4 KiB random reads at QD 1, every engine
//! for 3 s on each, and a summary with each engine's ratio to `sync`.
//!
//! Each engine's time on a job is split into rounds, and the engines take turns round by round
//! in a rotating order, so drift on a shared machine hits them alike. Every round uses its own
//! offset sequence, the same for every engine in it.

mod engine;
mod job;
mod layout;
mod plot;
mod report;
mod zipf;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use aio::DioAlign;
use clap::{Args, ValueEnum};

use crate::ui::Progress;
use crate::util::{
    self, human_bytes, parse_bool, parse_duration, parse_size, splitmix64, CpuTime, Failure,
};
pub use engine::PRETEND_NO_URING;
use engine::{Budget, EngineKind, Stats, ThreadCtx};
use job::{Distribution, Job, Pattern};
use layout::BenchFile;
use report::{EngineReport, FileReport, JobReport, Report};

/// Size of the default run's file.
const DEFAULT_SIZE: u64 = 256 << 20;
/// Time per engine per job of the default run.
const DEFAULT_SUITE_RUNTIME: Duration = Duration::from_secs(3);
/// Time per engine of a custom job without `--runtime` or `--io-size`.
const DEFAULT_JOB_RUNTIME: Duration = Duration::from_secs(5);
/// Rounds when several engines run.
const DEFAULT_ROUNDS: usize = 3;

/// `--output-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables for people.
    Normal,
    /// One JSON document for scripts.
    Json,
}

/// The engines `--engine` asked for.
#[derive(Debug, Clone)]
pub struct Engines {
    list: Vec<EngineKind>,
    /// `all`: engines that cannot run are skipped with a reason, not an error.
    all: bool,
}

fn parse_engines(s: &str) -> Result<Engines, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(Engines { list: EngineKind::ALL.to_vec(), all: true });
    }
    let mut list: Vec<EngineKind> = Vec::new();
    for part in s.split(',') {
        let e: EngineKind = part.parse()?;
        if !list.contains(&e) {
            list.push(e);
        }
    }
    list.sort();
    Ok(Engines { list, all: false })
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// `aio bench`: fio's habits, every engine.
#[derive(Debug, Args)]
#[command(
    after_help = "With no job option (--rw, --bs, --iodepth, --direct, --numjobs, --filename, \
--rwmixread, --io-size) it runs the default: 4 KiB random reads with O_DIRECT at QD 32 and \
page-cache-hot at QD 1, every engine for 3 s each, on a 256 MiB file made under --dir and \
removed afterwards. Engines: uring, kernel, pool (aio's drivers), posix (aio::posix: \
aio_read/aio_suspend), file (aio::File futures on aio::block_on), sync (pread/pwrite). \
AIO_INLINE=0 in the environment turns the inline path (small buffered requests served at \
submission when the page cache has them) off, for comparison."
)]
pub struct BenchArgs {
    /// I/O pattern.
    #[arg(long, value_enum)]
    rw: Option<Pattern>,
    /// Percent of reads for --rw randrw.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    rwmixread: Option<u32>,
    /// How random offsets spread over the file, in fio's syntax: random (uniform, the
    /// default) or zipf:THETA — the block of popularity rank k drawn with probability
    /// proportional to 1/k^THETA (zipf:1.2: a small hot set takes most requests), the popular
    /// blocks scattered over the whole file by a fixed permutation.
    #[arg(long = "random_distribution", alias = "random-distribution", value_name = "random|zipf:THETA", value_parser = Distribution::parse)]
    random_distribution: Option<Distribution>,
    /// Seed of the offsets: the same seed, the same offsets (and the same Zipf hot set) in
    /// every run; without it each run draws its own.
    #[arg(long)]
    randseed: Option<u64>,
    /// Bytes per request (4k, 64k, 1M...).
    #[arg(long, value_parser = size_arg)]
    bs: Option<u64>,
    /// Requests in flight per job.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65536))]
    iodepth: Option<u64>,
    /// Requests the driver engines queue before starting them together (1: each at once, as
    /// fio's iodepth_batch_submit; at most --iodepth).
    #[arg(long = "iodepth_batch", alias = "iodepth-batch", default_value = "1", value_parser = clap::value_parser!(u64).range(1..=65536))]
    iodepth_batch: u64,
    /// Bytes of the file to do I/O in (the file is made this large if needed).
    #[arg(long, value_parser = size_arg)]
    size: Option<u64>,
    /// Time per engine (3, 3s, 500ms, 1m).
    #[arg(long, value_parser = parse_duration)]
    runtime: Option<Duration>,
    /// Bytes each job transfers per engine, instead of (or as well as) a time limit.
    #[arg(long = "io-size", alias = "io_size", value_parser = size_arg)]
    io_size: Option<u64>,
    /// O_DIRECT: bypass the page cache (--direct, --direct=1, --direct=0).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "1", value_parser = parse_bool)]
    direct: Option<bool>,
    /// Threads, each with its own engine instance, on the same file.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    numjobs: Option<u64>,
    /// The file (created and filled with pseudo-random data when missing; kept afterwards).
    #[arg(long)]
    filename: Option<PathBuf>,
    /// Where the temporary file goes when there is no --filename (not tmpfs for --direct).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// uring, kernel, pool, posix, file, sync, a comma-separated list, or all.
    #[arg(long, alias = "ioengine", default_value = "all", value_parser = parse_engines)]
    engine: Engines,
    /// Rounds each engine's time is split into, engines alternating (default 3 with several
    /// engines, 1 with one).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    rounds: Option<u64>,
    /// normal (tables) or json.
    #[arg(long = "output-format", value_enum, default_value = "normal")]
    output_format: OutputFormat,
    /// Also draw the run as an SVG picture: per job, each engine's latency percentile curve
    /// and its IOPS with the ratio to sync.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

impl BenchArgs {
    /// Whether any option describing a job was given (else: the default run).
    fn is_custom(&self) -> bool {
        self.rw.is_some()
            || self.rwmixread.is_some()
            || self.bs.is_some()
            || self.iodepth.is_some()
            || self.direct.is_some()
            || self.numjobs.is_some()
            || self.filename.is_some()
            || self.io_size.is_some()
    }
}

/// The jobs to run, the file's path (and whether it is temporary).
fn plan(args: &BenchArgs) -> Result<(Vec<Job>, PathBuf, bool), Failure> {
    let (mut jobs, path, temporary) = plan_jobs(args)?;
    let dist = args.random_distribution.unwrap_or(Distribution::Uniform);
    for (ji, job) in jobs.iter_mut().enumerate() {
        if dist != Distribution::Uniform && !job.rw.is_random() {
            return Err(Failure::usage(format!(
                "--random_distribution {dist} applies to random patterns (--rw randread, \
                 randwrite or randrw), not {}",
                job.rw
            )));
        }
        job.dist = dist;
        let mut s = seed_base(args) ^ (ji as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03);
        job.seed = splitmix64(&mut s);
        if dist != Distribution::Uniform {
            job.name.push_str(&format!("-{dist}").replace(':', ""));
        }
    }
    Ok((jobs, path, temporary))
}

/// What every seed of the run comes from: `--randseed`, else the process id (each run its
/// own offsets).
fn seed_base(args: &BenchArgs) -> u64 {
    args.randseed.unwrap_or(u64::from(std::process::id()) << 20)
}

fn plan_jobs(args: &BenchArgs) -> Result<(Vec<Job>, PathBuf, bool), Failure> {
    let temp_path = || args.dir.join(format!("aio-bench-{}.dat", std::process::id()));
    if !args.is_custom() {
        let size = args.size.unwrap_or(DEFAULT_SIZE);
        let runtime = args.runtime.unwrap_or(DEFAULT_SUITE_RUNTIME);
        let base = Job {
            name: String::new(),
            rw: Pattern::RandRead,
            rwmixread: 50,
            bs: 4096,
            iodepth: 32,
            iodepth_batch: args.iodepth_batch as usize,
            direct: true,
            numjobs: 1,
            size,
            runtime: Some(runtime),
            io_size: None,
            dist: Distribution::Uniform,
            seed: 0,
            warm: false,
            path_shown: String::new(),
        };
        let direct = Job { name: "direct-randread-qd32".into(), ..base.clone() };
        let cached = Job {
            name: "cached-randread-qd1".into(),
            iodepth: 1,
            direct: false,
            warm: true,
            ..base
        };
        if size < 4096 {
            return Err(Failure::usage(
                "--size must be at least 4 KiB (the default run's block size)",
            ));
        }
        return Ok((vec![direct, cached], temp_path(), true));
    }
    let bs = args.bs.unwrap_or(4096);
    if bs == 0 || bs > (1 << 30) {
        return Err(Failure::usage("--bs must be between 1 byte and 1 GiB"));
    }
    let rw = args.rw.unwrap_or(Pattern::Read);
    if args.rwmixread.is_some() && rw != Pattern::RandRw {
        return Err(Failure::usage("--rwmixread applies to --rw randrw only"));
    }
    let (path, temporary) = match &args.filename {
        Some(p) => (p.clone(), false),
        None => (temp_path(), true),
    };
    let size = match args.size {
        Some(s) => s,
        None => match std::fs::metadata(&path) {
            Ok(md) if md.is_file() && md.len() > 0 => md.len(),
            _ => DEFAULT_SIZE,
        },
    };
    if size < bs {
        return Err(Failure::usage(format!(
            "--size {} is smaller than --bs {}",
            human_bytes(size),
            human_bytes(bs)
        )));
    }
    let runtime = match (args.runtime, args.io_size) {
        (None, None) => Some(DEFAULT_JOB_RUNTIME),
        (r, _) => r,
    };
    let direct = args.direct.unwrap_or(false);
    let iodepth = args.iodepth.unwrap_or(1) as usize;
    let numjobs = args.numjobs.unwrap_or(1) as usize;
    let name = format!(
        "{}{}-bs{}-qd{iodepth}{}",
        if direct { "direct-" } else { "" },
        rw,
        bs,
        if numjobs > 1 { format!("-x{numjobs}") } else { String::new() }
    );
    let job = Job {
        name,
        rw,
        rwmixread: args.rwmixread.unwrap_or(50),
        bs: bs as usize,
        iodepth,
        iodepth_batch: args.iodepth_batch as usize,
        direct,
        numjobs,
        size,
        runtime,
        io_size: args.io_size,
        dist: Distribution::Uniform,
        seed: 0,
        warm: false,
        path_shown: String::new(),
    };
    Ok((vec![job], path, temporary))
}

/// Runs `aio bench`.
pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let (mut jobs, path, temporary) = plan(&args)?;
    let json = args.output_format == OutputFormat::Json;
    let custom = args.is_custom();
    let mut notes: Vec<String> = Vec::new();
    let mut inline_notes: Vec<String> = Vec::new();

    // Where the picture goes: found out now, not after the run.
    if let Some(plot) = &args.plot {
        if plot.is_dir() {
            return Err(Failure::run(format!("--plot {} is a directory", plot.display())));
        }
        let parent = match plot.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        if !parent.is_dir() {
            return Err(Failure::run(format!(
                "cannot write {}: {} is not a directory",
                plot.display(),
                parent.display()
            )));
        }
    }

    // Where the file goes: it must exist, and not be tmpfs for O_DIRECT.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir_handle = File::open(&dir)
        .map_err(|e| Failure::run(util::path_error("cannot use directory", &dir, &e)))?;
    if !dir_handle.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Failure::run(format!("{} is not a directory", dir.display())));
    }
    let fs = util::filesystem(&dir_handle)
        .map_err(|e| Failure::run(util::path_error("cannot statfs", &dir, &e)))?;
    let is_block_dev = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
        .unwrap_or(false);
    if jobs.iter().any(|j| j.direct) && fs.is_memory() && !is_block_dev {
        let which = if custom { "--direct" } else { "the default run's O_DIRECT job" };
        let shown = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
        return Err(Failure::run(format!(
            "{} is on {}, a filesystem in memory: {which} needs a filesystem on a disk (ext4, \
             xfs, btrfs) — O_DIRECT there bypasses nothing and measures memory copies. Run from \
             a directory on a disk, or pass --dir DIR (or --filename FILE) there.",
            shown.display(),
            fs.name
        )));
    }

    // Which engines can run which job.
    let max_size = jobs.iter().map(|j| j.size).max().unwrap_or(0);
    let mut usable: Vec<Vec<(EngineKind, Result<(), String>)>> = Vec::new();
    for job in &jobs {
        let mut row = Vec::new();
        for &e in &args.engine.list {
            let check = e.check(job);
            if let Err(why) = &check {
                if !args.engine.all {
                    return Err(Failure::run(format!("engine {e} cannot run this job: {why}")));
                }
            }
            row.push((e, check));
        }
        usable.push(row);
    }

    // Every thread of a job has --iodepth buffers of --bs bytes while an engine runs: refuse
    // what this machine cannot hold before making the file.
    let shown = match (std::fs::canonicalize(&dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.clone(),
    };
    for job in &jobs {
        let each = aio::AlignedBuf::for_io_size(job.bs, 4096) as u64;
        let (n, depth) = (job.numjobs as u64, job.iodepth as u64);
        let total = n.saturating_mul(depth).saturating_mul(each);
        util::check_buffer_memory(total, &util::buffers_text(n, depth, job.bs as u64), &shown)
            .map_err(Failure::run)?;
    }

    // The file.
    let progress = if json { Progress::hidden() } else { Progress::line() };
    progress.message(format!("laying out {} ({})", path.display(), human_bytes(max_size)));
    let mut layout_notes = Vec::new();
    let file = BenchFile::layout(&path, max_size, temporary, &mut |n| layout_notes.push(n))
        .map_err(Failure::run)?;
    notes.extend(layout_notes);
    let shown = std::fs::canonicalize(&path).unwrap_or(path.clone()).display().to_string();
    let file_fs = File::open(&path)
        .ok()
        .and_then(|f| util::filesystem(&f).ok())
        .map_or(fs.to_string(), |f| f.to_string());
    for j in &mut jobs {
        j.path_shown = shown.clone();
    }
    let file_report = FileReport {
        path: shown.clone(),
        size: file.len,
        filesystem: file_fs,
        temporary: file.temporary,
    };

    let (_, load_before) = util::loadavg();
    let engines_run = args.engine.list.len();
    let rounds =
        args.rounds.map_or(if engines_run > 1 { DEFAULT_ROUNDS } else { 1 }, |r| r as usize);
    let total_slices: usize =
        usable.iter().map(|row| row.iter().filter(|(_, ok)| ok.is_ok()).count() * rounds).sum();
    let mut slice_no = 0usize;

    let mut job_reports = Vec::new();
    for (ji, job) in jobs.iter().enumerate() {
        let handle = layout::open_for_job(&path, job.rw.writes(), job.direct).map_err(|e| {
            let mut msg = util::path_error(
                if job.direct { "cannot open with O_DIRECT" } else { "cannot open" },
                &path,
                &e,
            );
            if job.direct && e.raw_os_error() == Some(libc::EINVAL) {
                msg.push_str(&format!(" ({} does not support O_DIRECT)", fs.name));
            }
            Failure::run(msg)
        })?;
        let mut align = 4096usize;
        if job.direct {
            let a = DioAlign::of(&handle)
                .map_err(|e| Failure::run(format!("O_DIRECT alignment of {shown}: {e}")))?;
            if !job.bs.is_multiple_of(a.offset) {
                return Err(Failure::usage(format!(
                    "--bs {} is not a multiple of the O_DIRECT alignment of {shown} ({a})",
                    job.bs
                )));
            }
            align = align.max(a.buffer_align());
        }
        if job.warm {
            progress.message(format!("reading {} into the page cache", human_bytes(job.size)));
            layout::warm(&path, job.size)
                .map_err(|e| Failure::run(util::path_error("cannot read", &path, &e)))?;
        }
        let mut report = JobReport::new(job, rounds);
        let runnable: Vec<EngineKind> =
            usable[ji].iter().filter(|(_, ok)| ok.is_ok()).map(|(e, _)| *e).collect();
        let mut totals: Vec<(Stats, Duration, CpuTime)> =
            runnable.iter().map(|_| (Stats::new(), Duration::ZERO, CpuTime::default())).collect();
        let budget = Budget {
            time: job.runtime.map(|t| t / rounds as u32),
            ios: job.io_size.map(|b| (b / job.bs as u64 / rounds as u64).max(1)),
        };
        for round in 0..rounds {
            // The same offsets for every engine of a round; other ones in other rounds and runs
            // (so a device or host cache is not handed the blocks of earlier runs).
            let seed = (ji as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (round as u64 + 1)
                ^ seed_base(&args);
            for k in 0..runnable.len() {
                let i = (k + round + ji) % runnable.len();
                let kind = runnable[i];
                slice_no += 1;
                let label = format!(
                    "[{slice_no}/{total_slices}] {}: {kind}, round {}/{rounds}",
                    job.short(),
                    round + 1
                );
                let (stats, time, cpu) =
                    run_slice(kind, job, &handle, align, budget, seed, &progress, &label)
                        .map_err(Failure::run)?;
                let t = &mut totals[i];
                t.0.merge(&stats);
                t.1 += time;
                t.2.user += cpu.user;
                t.2.system += cpu.system;
            }
        }
        for (i, e) in runnable.iter().enumerate() {
            let s = totals[i].0.inline;
            if s.total() > 0 {
                inline_notes.push(format!(
                    "{}: {e}: {} of {} requests served inline at submission (page cache, \
                     RWF_NOWAIT); to the engine: {} missed, {} skipped after misses, {} not \
                     eligible",
                    job.short(),
                    s.inline,
                    s.total(),
                    s.missed,
                    s.skipped,
                    s.ineligible
                ));
            }
        }
        for (e, check) in &usable[ji] {
            let detail = e.describe(job);
            report.engines.push(match check {
                Err(why) => EngineReport::skipped(e.name(), detail, why.clone()),
                Ok(()) => {
                    let i = runnable.iter().position(|r| r == e).expect("a runnable engine");
                    let (stats, time, cpu) = &totals[i];
                    EngineReport::measured(e.name(), detail, stats, *time, *cpu)
                }
            });
        }
        report.set_ratios();
        job_reports.push(report);
    }
    progress.clear();
    drop(file); // removes a temporary file

    let (_, load_after) = util::loadavg();
    notes.extend(inline_notes);
    if !aio::driver::inline_enabled() {
        notes.push("the inline path is off (AIO_INLINE=0)".to_string());
    }
    for e in &args.engine.list {
        if let Some(job) = jobs.first() {
            notes.push(format!("{e}: {}", e.describe(job)));
        }
    }
    notes.push(format!(
        "latency: from queue to reap, per request; usr%/sys%: CPU time of the whole process \
         (all threads) as % of one CPU while the engine ran; engines alternate in {rounds} \
         round(s) in a rotating order"
    ));
    notes.push(format!(
        "load average before {load_before}, after {load_after}: on a shared or busy machine \
         figures move from run to run"
    ));
    if file_report.temporary {
        notes.push(format!("{} was made for this run and removed", file_report.path));
    }
    if let Some(plot) = &args.plot {
        notes.push(format!("plot: {}", plot.display()));
    }
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        kernel: util::kernel_version(),
        load_before,
        load_after,
        file: file_report,
        jobs: job_reports,
        notes,
    };
    if let Some(plot) = &args.plot {
        plot::write(&report, plot).map_err(Failure::run)?;
    }
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::run(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print_tables(&report, &jobs, rounds);
    }
    Ok(())
}

fn print_tables(report: &Report, jobs: &[Job], rounds: usize) {
    for (j, job) in report.jobs.iter().zip(jobs) {
        let per_engine = match (job.runtime, job.io_size) {
            (Some(t), None) => format!("{} s per engine in {rounds} round(s)", fmt_secs(t)),
            (None, Some(b)) => {
                format!("{} per job per engine in {rounds} round(s)", human_bytes(b))
            }
            (Some(t), Some(b)) => format!(
                "{} s or {} per job per engine in {rounds} round(s)",
                fmt_secs(t),
                human_bytes(b)
            ),
            (None, None) => String::new(),
        };
        println!("{}", report::job_heading(j, &report.file, &per_engine));
        print!("{}", report::job_table(j));
        println!();
    }
    if report.jobs.len() > 1 {
        let short: Vec<String> = jobs.iter().map(Job::short).collect();
        print!("{}", report::summary_table(&report.jobs, &short));
        println!();
    }
    for n in &report.notes {
        println!("note: {n}");
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.2}")
    }
}

/// Runs `kind` on `job` once: `numjobs` threads, each with its own engine, started together.
/// Returns the merged figures, the time from the start to the last thread's end, and the CPU
/// time the process used meanwhile.
#[allow(clippy::too_many_arguments)]
fn run_slice(
    kind: EngineKind,
    job: &Job,
    file: &File,
    align: usize,
    budget: Budget,
    seed: u64,
    progress: &Progress,
    label: &str,
) -> Result<(Stats, Duration, CpuTime), String> {
    let done = AtomicU64::new(0);
    let barrier = Barrier::new(job.numjobs + 1);
    // The POSIX engine is the process's: what its inline path served during this slice.
    let posix_inline = (kind == EngineKind::Posix).then(aio::posix::inline_stats);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for thread in 0..job.numjobs {
            let (barrier, done) = (&barrier, &done);
            let spawned = std::thread::Builder::new()
                .name(format!("bench-{kind}-{thread}"))
                .spawn_scoped(s, move || -> Result<(Stats, Instant), String> {
                    let prepared = engine::prepare(kind, job);
                    barrier.wait();
                    let prepared = prepared?;
                    let ctx = ThreadCtx { job, file, align, thread, seed, progress: done };
                    let stats = engine::run(&prepared, &ctx, budget)?;
                    let end = Instant::now();
                    drop(prepared);
                    Ok((stats, end))
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Let the threads already started go: they wait at the barrier.
                    for _ in handles.len()..job.numjobs {
                        barrier.wait();
                    }
                    return Err(format!("cannot start a thread: {e}"));
                }
            }
        }
        barrier.wait();
        let cpu0 = CpuTime::now();
        let t0 = Instant::now();
        if progress.is_shown() {
            let total = match budget.time {
                Some(t) => format!(" of {} s", fmt_secs(t)),
                None => String::new(),
            };
            while !handles.iter().all(|h| h.is_finished()) {
                std::thread::sleep(Duration::from_millis(100));
                let secs = t0.elapsed().as_secs_f64();
                let iops = done.load(Ordering::Relaxed) as f64 / secs.max(1e-3);
                progress.message(format!("{label}: {secs:.1} s{total}, {iops:.0} IOPS"));
            }
        }
        let mut stats = Stats::new();
        let mut end = t0;
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(Ok((s, e))) => {
                    stats.merge(&s);
                    end = end.max(e);
                }
                Ok(Err(msg)) => {
                    failure.get_or_insert(msg);
                }
                Err(_) => {
                    failure.get_or_insert(format!("{kind}: a benchmark thread panicked"));
                }
            }
        }
        let cpu = CpuTime::now().since(cpu0);
        if let Some(before) = posix_inline {
            stats.inline = aio::posix::inline_stats() - before;
        }
        match failure {
            Some(msg) => Err(msg),
            None => Ok((stats, end.duration_since(t0), cpu)),
        }
    })
}
