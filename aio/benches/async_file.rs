//! The async API against tokio::fs, std's pread and the raw driver: 4 KiB reads at random
//! 4 KiB-aligned offsets of a page-cache-hot file, 32 in flight.
//!
//! Variants, measured in the same run, alternating round by round (the start rotates), medians
//! over the rounds:
//!
//! - `pread`: std's `FileExt::read_at`, one read after another (no queue depth) — baseline;
//! - `tokio::fs`: 32 tasks on a current-thread tokio runtime, each with its own
//!   `tokio::fs::File`, doing `seek` + `read_exact` (tokio::fs runs each on its blocking pool);
//! - `aio::File` (block_on): 32 read loops as futures in one task, on `aio::block_on`;
//! - `aio::File` (tokio): 32 tokio tasks reading through `aio::File`, the reactor driven by a
//!   tokio task on its eventfd (`aio::rt::tokio`);
//! - `raw driver`: the io_uring driver used directly (queue, flush, reap), 32 in flight — what
//!   the async layer adds its cost to.
//!
//! Targets: `aio::File` at least 3x tokio::fs, and within 15% of the raw driver.
//!
//! ```text
//! cargo bench -p aio --bench async_file              # 5 rounds
//! cargo bench -p aio --bench async_file -- --rounds 9
//! cargo bench -p aio --bench async_file -- --only tokio --ops 100000   # fixed count, one variant
//! ```
//!
//! The file (256 MiB) is made in `$AIO_BENCH_DIR` or the current directory and removed at the
//! end.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use aio::driver::{Buf, Completion, Driver, Request, UringDriver, UringOptions};
use aio::{AlignedBuf, Reactor};

const BLOCK: usize = 4096;
/// The file's size; `AIO_BENCH_SIZE_MB` changes it (for profiling runs).
fn size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("AIO_BENCH_SIZE_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(256)
            << 20
    })
}
const DEPTH: usize = 32;

struct Xorshift(u64);

impl Xorshift {
    fn next_offset(&mut self) -> u64 {
        let size = size();
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (size / BLOCK as u64)) * BLOCK as u64
    }
}

type Variant<'a> = (&'static str, Box<dyn FnMut(u64) -> io::Result<()> + 'a>);

fn main() {
    if let Err(e) = run() {
        eprintln!("async_file: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let dir =
        std::env::var_os("AIO_BENCH_DIR").map(PathBuf::from).unwrap_or(std::env::current_dir()?);
    let tmp = tempfile::Builder::new().prefix(".async_file-").tempfile_in(&dir)?;
    let path = tmp.path().to_path_buf();
    eprintln!("async_file: writing {} MiB to {}", size() >> 20, path.display());
    {
        let mut f = std::fs::File::create(&path)?;
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..(size() >> 20) {
            chunk
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i as usize * 31 + j * 7) as u8 | 1);
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    let std_file = std::fs::File::open(&path)?;
    // Read it all once: page-cache hot.
    let mut buf = vec![0u8; 1 << 20];
    for off in (0..size()).step_by(1 << 20) {
        std_file.read_exact_at(&mut buf, off)?;
    }

    let reactor_opts = UringOptions::default();
    let uring = UringDriver::new(reactor_opts.clone())
        .map_err(|e| io::Error::new(e.kind(), format!("io_uring is needed for this bench: {e}")))?;
    let raw_driver = UringDriver::new(UringOptions::default())?;
    let reactor = Reactor::new(Arc::new(uring));
    let aio_file = aio::File::options().read(true).reactor(Arc::clone(&reactor)).open(&path)?;
    let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tokio_reactor = Reactor::new(Arc::new(UringDriver::new(reactor_opts)?));
    let tokio_aio_file =
        aio::File::options().read(true).reactor(Arc::clone(&tokio_reactor)).open(&path)?;
    let driver_task = {
        let _guard = tokio_rt.enter();
        aio::rt::tokio::spawn_driver(Arc::clone(&tokio_reactor))
    };
    let seed = Cell::new(0x9e37_79b9_7f4a_7c15u64);

    let mut variants: Vec<Variant> = vec![
        (
            "pread",
            Box::new(|n| {
                let mut rng = Xorshift(seed.get());
                let mut b = vec![0u8; BLOCK];
                for _ in 0..n {
                    std_file.read_exact_at(&mut b, rng.next_offset())?;
                }
                Ok(())
            }),
        ),
        (
            "tokio::fs",
            Box::new(|n| {
                let path = path.clone();
                let start = seed.get();
                tokio_rt.block_on(async move {
                    let left = Arc::new(AtomicU64::new(n));
                    let tasks: Vec<_> = (0..DEPTH)
                        .map(|lane| {
                            let (path, left) = (path.clone(), Arc::clone(&left));
                            tokio::spawn(async move {
                                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                                let mut f = tokio::fs::File::open(&path).await?;
                                let mut rng = Xorshift(start ^ (lane as u64 + 1));
                                let mut b = vec![0u8; BLOCK];
                                while left
                                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                                        v.checked_sub(1)
                                    })
                                    .is_ok()
                                {
                                    f.seek(SeekFrom::Start(rng.next_offset())).await?;
                                    f.read_exact(&mut b).await?;
                                }
                                io::Result::Ok(())
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.map_err(io::Error::other)??;
                    }
                    Ok(())
                })
            }),
        ),
        (
            "aio::File (block_on)",
            Box::new(|n| {
                let left = Rc::new(Cell::new(n));
                let start = seed.get();
                let lanes: Vec<Pin<Box<dyn Future<Output = io::Result<()>> + '_>>> = (0..DEPTH)
                    .map(|lane| {
                        let (left, file) = (Rc::clone(&left), &aio_file);
                        Box::pin(async move {
                            let mut rng = Xorshift(start ^ (lane as u64 + 1));
                            let mut b = AlignedBuf::new(BLOCK, BLOCK);
                            while left.get() > 0 {
                                left.set(left.get() - 1);
                                let (res, back) = file.read_at(b, rng.next_offset()).await;
                                b = back;
                                if res? != BLOCK {
                                    return Err(io::Error::other("short read"));
                                }
                            }
                            Ok(())
                        })
                            as Pin<Box<dyn Future<Output = io::Result<()>> + '_>>
                    })
                    .collect();
                reactor.block_on(join_all(lanes))
            }),
        ),
        (
            "aio::File (tokio)",
            Box::new(|n| {
                let start = seed.get();
                let file = tokio_aio_file.clone();
                tokio_rt.block_on(async move {
                    let left = Arc::new(AtomicU64::new(n));
                    let tasks: Vec<_> = (0..DEPTH)
                        .map(|lane| {
                            let (file, left) = (file.clone(), Arc::clone(&left));
                            tokio::spawn(async move {
                                let mut rng = Xorshift(start ^ (lane as u64 + 1));
                                let mut b = AlignedBuf::new(BLOCK, BLOCK);
                                while left
                                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                                        v.checked_sub(1)
                                    })
                                    .is_ok()
                                {
                                    let (res, back) = file.read_at(b, rng.next_offset()).await;
                                    b = back;
                                    if res? != BLOCK {
                                        return Err(io::Error::other("short read"));
                                    }
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.map_err(io::Error::other)??;
                    }
                    Ok(())
                })
            }),
        ),
        (
            "raw driver",
            Box::new(|n| {
                let mut rng = Xorshift(seed.get());
                let fd = std_file.as_raw_fd();
                let mut free: Vec<AlignedBuf> =
                    (0..DEPTH).map(|_| AlignedBuf::new(BLOCK, BLOCK)).collect();
                let mut out: Vec<Completion> = Vec::with_capacity(DEPTH);
                let (mut issued, mut done) = (0u64, 0u64);
                while done < n {
                    while issued < n && !free.is_empty() {
                        let b = free.pop().expect("not empty");
                        raw_driver
                            .queue(Request::read(fd, Buf::for_read(b), rng.next_offset(), issued))
                            .map_err(io::Error::from)?;
                        issued += 1;
                    }
                    raw_driver.flush()?;
                    out.clear();
                    raw_driver.reap(1, DEPTH, None, &mut out)?;
                    for c in out.drain(..) {
                        if c.res != BLOCK as i64 {
                            return Err(io::Error::other(format!(
                                "raw driver: read gave {}",
                                c.res
                            )));
                        }
                        free.push(c.buf.take().expect("an AlignedBuf"));
                        done += 1;
                    }
                }
                Ok(())
            }),
        ),
    ];

    // `--only SUBSTRING` keeps the variants whose name contains it (for profiling).
    if let Some(only) = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)) {
        variants.retain(|(name, _)| name.contains(only.as_str()));
    }
    // `--ops N` fixes the reads per measurement (for instruction counts under callgrind).
    let fixed_ops: Option<u64> =
        args.iter().position(|a| a == "--ops").and_then(|i| args.get(i + 1)?.parse().ok());
    // Calibrate: about 0.4 s per measurement.
    let mut counts = Vec::new();
    for (name, f) in variants.iter_mut() {
        let probe = 2000;
        let t = Instant::now();
        f(probe)?;
        let per = t.elapsed().as_secs_f64() / probe as f64;
        counts.push(fixed_ops.unwrap_or(((0.4 / per) as u64).clamp(1000, 2_000_000)));
        eprintln!("async_file: {name}: {:.0} ns/op in the warm-up", per * 1e9);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        seed.set(
            seed.get().wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1,
        );
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let t = Instant::now();
            (variants[i].1)(counts[i])?;
            samples[i].push(t.elapsed().as_secs_f64() * 1e9 / counts[i] as f64);
        }
        eprintln!("async_file: round {}/{rounds} done", round + 1);
    }
    driver_task.abort();

    if variants.len() < 5 {
        for (i, (name, _)) in variants.iter().enumerate() {
            println!("{name}: {:.1} ns/op", median(&samples[i]));
        }
        return Ok(());
    }
    let med: Vec<f64> = samples.iter().map(|s| median(s)).collect();
    println!("\n4 KiB random reads of a page-cache-hot {} MiB file, {DEPTH} in flight (pread: one at a time)", size() >> 20);
    println!(
        "{rounds} rounds, variants alternated, medians; load average before/after: {}",
        loadavg()
    );
    println!(
        "{:<24} {:>10} {:>11} {:>10} {:>18}",
        "variant", "ns/op", "IOPS", "vs pread", "min..max ns/op"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let (lo, hi) = samples[i].iter().fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
        println!(
            "{:<24} {:>10.1} {:>11.0} {:>9.2}x {:>8.0}..{:<8.0}",
            name,
            med[i],
            1e9 / med[i],
            med[0] / med[i],
            lo,
            hi
        );
    }
    let check = |what: &str, ratio: f64, target: f64| {
        let verdict = if ratio >= target { "PASS" } else { "FAIL" };
        println!("  {what:<44} {ratio:>5.2}x  (target >= {target:.2})  {verdict}");
    };
    println!("\ntargets (ratios of IOPS):");
    check("aio::File (block_on) / tokio::fs", med[1] / med[2], 3.0);
    check("aio::File (tokio) / tokio::fs", med[1] / med[3], 3.0);
    check("aio::File (block_on) / raw driver", med[4] / med[2], 0.85);
    check("aio::File (tokio) / raw driver", med[4] / med[3], 0.85);
    Ok(())
}

fn median(s: &[f64]) -> f64 {
    let mut v = s.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs all the futures to completion; the first error wins.
async fn join_all<'a>(
    mut futs: Vec<Pin<Box<dyn Future<Output = io::Result<()>> + 'a>>>,
) -> io::Result<()> {
    let mut done = vec![false; futs.len()];
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, d) in futs.iter_mut().zip(done.iter_mut()) {
            if !*d {
                match f.as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => *d = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await
}
