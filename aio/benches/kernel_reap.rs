//! Per-op cost of submitting and reaping native kernel AIO reads, against plain `pread`.
//!
//! Every operation is a 4 KiB read at a random 4 KiB-aligned offset (xorshift64, the same
//! sequence for every variant) of a 64 MiB file that is in the page cache. On such a buffered
//! file `io_submit` performs the copy itself before it returns, so what is measured is the cost
//! of the interface — system calls, iocb and completion bookkeeping — not device latency.
//!
//! Variants, each at queue depth 1 and 32:
//!
//! - `pread`: `FileExt::read_at`, one read after another (queue depth means nothing to it: it
//!   does the same reads one by one), the baseline every other variant is divided by;
//! - `Context` (the safe layer) with `ReapMode::Ring` (completions taken from the mmapped ring
//!   in user space) and with `ReapMode::Syscall` (always `io_getevents`);
//! - `RawContext` (the unsafe layer: raw iocbs from `aio::sys::iocb::pread` into reused
//!   buffers) with both reap modes, which shows what the safe layer costs.
//!
//! At queue depth N one batch is: N reads submitted in one `io_submit`, then all N reaped with
//! `get_events(N, N, None)`. Buffers are reused (the safe layer's come back in the completions
//! and are resubmitted), so allocating them is not part of the measurement.
//!
//! The machine this runs on may be shared and noisy, so the variants are interleaved: each
//! round measures every variant once (the starting variant rotates from round to round), and
//! the table reports the median over the rounds. One warm-up pass first fixes, per variant, the
//! number of operations that takes about 0.25 s; every round then repeats exactly that count.
//! Before timing anything, each variant reads one batch whose data is checked block by block;
//! during timing every read must return 4096 bytes. Any failure stops the bench with a non-zero
//! exit status.
//!
//! ```text
//! cargo bench -p aio --bench kernel_reap                   # 7 rounds, ~0.25 s per measurement
//! cargo bench -p aio --bench kernel_reap -- --quick        # 3 rounds, ~0.05 s per measurement
//! cargo bench -p aio --bench kernel_reap -- --rounds 15    # more rounds
//! ```
//!
//! The file is created in `$AIO_BENCH_DIR`, or else in the current directory (the crate's
//! directory under `cargo bench`), under a unique name, and is deleted when the bench ends,
//! on error too (not when the process is killed by a signal).

use std::fs::File;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aio::kernel::{Completion, Context, Iocb, RawContext, ReapMode};
use aio::sys::{io_event, iocb};
use aio::{AlignedBuf, IoBufMut};

/// Size of one read, and the alignment of every offset.
const BLOCK: usize = 4096;
/// Size of the file read.
const FILE_SIZE: usize = 64 << 20;
/// Number of `BLOCK`s in the file.
const BLOCKS: u64 = (FILE_SIZE / BLOCK) as u64;
/// Queue depths measured.
const DEPTHS: [usize; 2] = [1, 32];
/// Rounds by default; the brief's minimum.
const DEFAULT_ROUNDS: usize = 7;
/// Rounds with `--quick`.
const QUICK_ROUNDS: usize = 3;
/// Duration of one measurement.
const TARGET: Duration = Duration::from_millis(250);
/// Duration of one measurement with `--quick`.
const QUICK_TARGET: Duration = Duration::from_millis(50);
/// Seed of the offset sequence (any non-zero value).
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("kernel_reap: {msg}");
            eprintln!("usage: kernel_reap [--quick] [--rounds N]");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("kernel_reap: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    rounds: usize,
    target: Duration,
}

impl Options {
    /// `--quick` and `--rounds N` (or `--rounds=N`); anything else, such as the `--bench` that
    /// `cargo bench` passes, is ignored.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut quick = false;
        let mut rounds = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = match arg.as_str() {
                "--quick" => {
                    quick = true;
                    continue;
                }
                "--rounds" => args.next().ok_or("--rounds needs a value")?,
                _ => match arg.strip_prefix("--rounds=") {
                    Some(v) => v.to_string(),
                    None => continue,
                },
            };
            match value.parse::<usize>() {
                Ok(n) if n > 0 => rounds = Some(n),
                _ => return Err(format!("--rounds {value:?}: expected a positive integer")),
            }
        }
        Ok(Options {
            rounds: rounds.unwrap_or(if quick { QUICK_ROUNDS } else { DEFAULT_ROUNDS }),
            target: if quick { QUICK_TARGET } else { TARGET },
        })
    }
}

/// xorshift64: the random offsets, the same sequence for every measurement.
struct Xorshift(u64);

impl Xorshift {
    fn new() -> Xorshift {
        Xorshift(SEED)
    }

    /// The next `BLOCK`-aligned offset inside the file.
    #[inline]
    fn next_offset(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        ((x >> 32) % BLOCKS) * BLOCK as u64
    }
}

/// The first 8 bytes of block `block`: no zero byte, different for (nearly) every block.
fn block_tag(block: u64) -> [u8; 8] {
    ((block ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 0x0101_0101_0101_0101)
        .to_le_bytes()
}

/// The byte that fills the rest of block `block` (never zero).
fn block_fill(block: u64) -> u8 {
    (block % 251) as u8 + 1
}

fn fill_block(out: &mut [u8], block: u64) {
    out[..8].copy_from_slice(&block_tag(block));
    out[8..].fill(block_fill(block));
}

/// Checks that `data` is the whole block at file offset `offset`.
fn check_block(data: &[u8], offset: u64) -> Result<(), String> {
    let block = offset / BLOCK as u64;
    if data.len() != BLOCK {
        return Err(format!("read at offset {offset} gave {} bytes, not {BLOCK}", data.len()));
    }
    let fill = block_fill(block);
    if data[..8] != block_tag(block) || data[8..].iter().any(|&b| b != fill) {
        return Err(format!("read at offset {offset} returned data that is not that block's"));
    }
    Ok(())
}

/// One way of doing reads, at one queue depth.
trait Variant {
    /// Short name for the table, without the queue depth.
    fn name(&self) -> String;

    /// Queue depth: reads per batch.
    fn depth(&self) -> usize;

    /// One batch: `depth()` reads at the next offsets of `rng`, all finished when it returns.
    /// Fails if a read does not return exactly `BLOCK` bytes.
    fn batch(&mut self, rng: &mut Xorshift) -> Result<(), String>;

    /// One batch, as `batch`, whose data is then checked block by block. Returns a note for
    /// the report, if there is something to say.
    fn verify(&mut self, rng: &mut Xorshift) -> Result<Option<String>, String>;

    /// `batches` batches (a default method, so `batch` is called without dynamic dispatch).
    fn run(&mut self, rng: &mut Xorshift, batches: usize) -> Result<(), String> {
        for _ in 0..batches {
            self.batch(rng)?;
        }
        Ok(())
    }
}

/// The baseline: `pread(2)` (std's `read_at`), one read after another.
struct Pread<'f> {
    file: &'f File,
    depth: usize,
    /// One buffer per read of a batch, as the AIO variants have, for the same cache footprint.
    bufs: Vec<Vec<u8>>,
    offsets: Vec<u64>,
}

impl<'f> Pread<'f> {
    fn new(file: &'f File, depth: usize) -> Pread<'f> {
        Pread { file, depth, bufs: vec![vec![0; BLOCK]; depth], offsets: vec![0; depth] }
    }
}

impl Variant for Pread<'_> {
    fn name(&self) -> String {
        "pread".into()
    }

    fn depth(&self) -> usize {
        self.depth
    }

    #[inline]
    fn batch(&mut self, rng: &mut Xorshift) -> Result<(), String> {
        for (buf, slot) in self.bufs.iter_mut().zip(self.offsets.iter_mut()) {
            let offset = rng.next_offset();
            *slot = offset;
            match self.file.read_at(buf, offset) {
                Ok(BLOCK) => {}
                Ok(n) => return Err(format!("pread at offset {offset} returned {n} bytes")),
                Err(e) => return Err(format!("pread at offset {offset}: {e}")),
            }
        }
        Ok(())
    }

    fn verify(&mut self, rng: &mut Xorshift) -> Result<Option<String>, String> {
        self.batch(rng)?;
        for (buf, &offset) in self.bufs.iter().zip(&self.offsets) {
            check_block(buf, offset).map_err(|e| format!("pread: {e}"))?;
        }
        Ok(None)
    }
}

/// The safe layer: requests own their buffers, which come back in the completions.
struct Safe<'f> {
    ctx: Context<AlignedBuf>,
    file: &'f File,
    depth: usize,
    asked: ReapMode,
    /// Buffers not in flight.
    bufs: Vec<AlignedBuf>,
    /// The batch being submitted (kept for its capacity).
    reqs: Vec<Iocb<AlignedBuf>>,
    /// The batch's completions (kept for its capacity).
    done: Vec<Completion<AlignedBuf>>,
}

impl<'f> Safe<'f> {
    fn new(file: &'f File, depth: usize, mode: ReapMode) -> Result<Safe<'f>, String> {
        let ctx = Context::new(depth).map_err(|e| format!("Context::new({depth}): {e}"))?;
        ctx.set_reap_mode(mode);
        Ok(Safe {
            ctx,
            file,
            depth,
            asked: mode,
            bufs: (0..depth).map(|_| AlignedBuf::new(BLOCK, BLOCK)).collect(),
            reqs: Vec::with_capacity(depth),
            done: Vec::with_capacity(depth),
        })
    }

    /// Submits one batch and reaps it, handing each completion's offset and buffer to `each`
    /// before the buffer goes back to the free list. With `PROBE`, returns how many
    /// completions were in the ring when `io_submit` returned (`None` without a valid ring
    /// header); the timed runs do not look.
    #[inline]
    fn batch_with<const PROBE: bool>(
        &mut self,
        rng: &mut Xorshift,
        mut each: impl FnMut(u64, &AlignedBuf) -> Result<(), String>,
    ) -> Result<Option<u32>, String> {
        let depth = self.depth;
        for _ in 0..depth {
            let buf = self.bufs.pop().ok_or("Context: a buffer was not given back")?;
            let offset = rng.next_offset();
            self.reqs.push(Iocb::pread(self.file, buf, offset).user_data(offset));
        }
        let ids = self.ctx.submit_batch(&mut self.reqs).map_err(|e| format!("Context: {e}"))?;
        if ids.len() != depth {
            return Err(format!("Context: io_submit took {} of {depth} requests", ids.len()));
        }
        let pending = if PROBE { self.ctx.raw().ring_pending() } else { None };
        let n = self
            .ctx
            .get_events_into(depth, depth, None, &mut self.done)
            .map_err(|e| format!("Context: {e}"))?;
        if n != depth {
            return Err(format!("Context: get_events gave {n} of {depth} completions"));
        }
        for c in self.done.drain(..) {
            let (res, offset) = (c.res(), c.user_data());
            let buf = c.into_buf().ok_or("Context: a completion without its buffer")?;
            let checked = if res == BLOCK as i64 {
                each(offset, &buf)
            } else {
                Err(format!("Context: read at offset {offset} gave result {res}, not {BLOCK}"))
            };
            self.bufs.push(buf);
            checked?;
        }
        Ok(pending)
    }
}

impl Variant for Safe<'_> {
    fn name(&self) -> String {
        layer_name("Context", self.asked, self.ctx.reap_mode())
    }

    fn depth(&self) -> usize {
        self.depth
    }

    #[inline]
    fn batch(&mut self, rng: &mut Xorshift) -> Result<(), String> {
        self.batch_with::<false>(rng, |_, _| Ok(())).map(drop)
    }

    fn verify(&mut self, rng: &mut Xorshift) -> Result<Option<String>, String> {
        let pending = self.batch_with::<true>(rng, |offset, buf| {
            check_block(buf, offset).map_err(|e| format!("Context: {e}"))
        })?;
        Ok(Some(format!(
            "{} QD {}: reap mode in effect {:?}; completions in the ring when io_submit \
             returned: {}",
            self.name(),
            self.depth,
            self.ctx.reap_mode(),
            pending.map_or("? (no valid ring header)".into(), |n| format!("{n}/{}", self.depth))
        )))
    }
}

/// The unsafe layer: iocbs and buffers owned here, reused batch after batch.
///
/// Field order matters: `ctx` is dropped first, and dropping it (`io_destroy`) waits for every
/// request in flight, so the kernel is done with `iocbs` and `bufs` before they are freed.
struct Raw<'f> {
    ctx: RawContext,
    iocbs: Vec<iocb>,
    ptrs: Vec<*mut iocb>,
    events: Vec<io_event>,
    /// `depth` blocks, one per iocb.
    bufs: AlignedBuf,
    offsets: Vec<u64>,
    /// The file read; borrowed, so it stays open as long as `self` exists.
    file: &'f File,
    depth: usize,
    asked: ReapMode,
    /// Iocbs submitted and not reaped: a batch starts only when it is 0, so no buffer or
    /// iocb is rewritten while the kernel may use it.
    in_flight: usize,
}

impl<'f> Raw<'f> {
    fn new(file: &'f File, depth: usize, mode: ReapMode) -> Result<Raw<'f>, String> {
        let ctx = RawContext::new(depth).map_err(|e| format!("RawContext::new({depth}): {e}"))?;
        ctx.set_reap_mode(mode);
        Ok(Raw {
            ctx,
            iocbs: vec![iocb::default(); depth],
            ptrs: Vec::with_capacity(depth),
            events: vec![io_event::default(); depth],
            bufs: AlignedBuf::new(depth * BLOCK, BLOCK),
            offsets: vec![0; depth],
            file,
            depth,
            asked: mode,
            in_flight: 0,
        })
    }

    /// Submits one batch and reaps it. With `PROBE`, returns how many completions were in the
    /// ring when `io_submit` returned (`None` without a valid ring header); the timed runs do
    /// not look.
    #[inline]
    fn batch_inner<const PROBE: bool>(
        &mut self,
        rng: &mut Xorshift,
    ) -> Result<Option<u32>, String> {
        let depth = self.depth;
        if self.in_flight != 0 {
            return Err("RawContext: a previous batch failed with requests in flight".into());
        }
        let fd = self.file.as_raw_fd();
        let base = self.bufs.stable_mut_ptr();
        for (i, (cb, slot)) in self.iocbs.iter_mut().zip(self.offsets.iter_mut()).enumerate() {
            let offset = rng.next_offset();
            *slot = offset;
            *cb = iocb::pread(fd, base.wrapping_add(i * BLOCK), BLOCK, offset as i64);
            cb.aio_data = i as u64;
        }
        let first = self.iocbs.as_mut_ptr();
        self.ptrs.clear();
        self.ptrs.extend((0..depth).map(|i| first.wrapping_add(i)));
        // SAFETY: each pointer is to an element of `self.iocbs` (in bounds: i < depth, its
        // length), valid and writable for the call, with no Rust reference to the vector alive.
        // Each iocb names block i of `self.bufs` (i * BLOCK + BLOCK <= depth * BLOCK, its
        // capacity) and the fd of `self.file`, open as long as `self` is. Neither the iocbs
        // nor the buffer are touched again until their completions are reaped below:
        // `in_flight` keeps a failed batch from being followed by another, and if we return
        // early with requests in flight, `ctx` is dropped (io_destroy, which waits for them)
        // before `iocbs` and `bufs`, by field order.
        let taken = unsafe { self.ctx.submit(&self.ptrs) }
            .map_err(|e| format!("RawContext: io_submit: {e}"))?;
        self.in_flight = taken;
        if taken != depth {
            return Err(format!("RawContext: io_submit took {taken} of {depth} requests"));
        }
        let pending = if PROBE { self.ctx.ring_pending() } else { None };
        let mut got = 0;
        while got < depth {
            match self.ctx.get_events(depth - got, &mut self.events[got..depth], None) {
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("RawContext: get_events: {e}")),
            }
            self.in_flight = depth - got;
        }
        for ev in &self.events[..depth] {
            let i = ev.data as usize;
            if i >= depth || ev.obj != self.ptrs[i] as u64 {
                return Err(format!("RawContext: completion of an unknown request: {ev:?}"));
            }
            if ev.res != BLOCK as i64 {
                return Err(format!(
                    "RawContext: read at offset {} gave result {}, not {BLOCK}",
                    self.offsets[i], ev.res
                ));
            }
        }
        Ok(pending)
    }
}

impl Variant for Raw<'_> {
    fn name(&self) -> String {
        layer_name("RawContext", self.asked, self.ctx.reap_mode())
    }

    fn depth(&self) -> usize {
        self.depth
    }

    #[inline]
    fn batch(&mut self, rng: &mut Xorshift) -> Result<(), String> {
        self.batch_inner::<false>(rng).map(drop)
    }

    fn verify(&mut self, rng: &mut Xorshift) -> Result<Option<String>, String> {
        let pending = self.batch_inner::<true>(rng)?;
        // Every request of the batch has been reaped: the kernel no longer writes the buffer.
        let data = self.bufs.as_full_slice();
        for (i, &offset) in self.offsets.iter().enumerate() {
            check_block(&data[i * BLOCK..(i + 1) * BLOCK], offset)
                .map_err(|e| format!("RawContext: {e}"))?;
        }
        Ok(Some(format!(
            "{} QD {}: reap mode in effect {:?} (ring of {} events); completions in the ring \
             when io_submit returned: {}",
            self.name(),
            self.depth,
            self.ctx.reap_mode(),
            self.ctx.ring_capacity().map_or("?".into(), |n| n.to_string()),
            pending.map_or("? (no valid ring header)".into(), |n| format!("{n}/{}", self.depth))
        )))
    }
}

/// "Context ring", or "Context ring(!)" when ring reaping was asked for but is not in effect.
fn layer_name(layer: &str, asked: ReapMode, actual: ReapMode) -> String {
    let mode = match asked {
        ReapMode::Ring => "ring",
        ReapMode::Syscall => "syscall",
    };
    let flag = if asked == actual { "" } else { "(!)" };
    format!("{layer} {mode}{flag}")
}

/// Creates the file, fills it, syncs it, and reads it fully once (checking it) so that it is in
/// the page cache.
fn make_file(file: &mut File) -> Result<(), String> {
    const CHUNK: usize = 1 << 20;
    let mut chunk = vec![0u8; CHUNK];
    for c in 0..FILE_SIZE / CHUNK {
        for (j, block) in chunk.chunks_exact_mut(BLOCK).enumerate() {
            fill_block(block, (c * CHUNK / BLOCK + j) as u64);
        }
        file.write_all(&chunk).map_err(|e| format!("writing the bench file: {e}"))?;
    }
    // Write it back now, so that writeback does not happen during the measurements.
    file.sync_all().map_err(|e| format!("fsync of the bench file: {e}"))?;
    for c in 0..FILE_SIZE / CHUNK {
        let offset = (c * CHUNK) as u64;
        file.read_exact_at(&mut chunk, offset)
            .map_err(|e| format!("reading the bench file back: {e}"))?;
        for (j, block) in chunk.chunks_exact(BLOCK).enumerate() {
            check_block(block, offset + (j * BLOCK) as u64)
                .map_err(|e| format!("reading the bench file back: {e}"))?;
        }
    }
    Ok(())
}

/// The share of the file's pages in the page cache (`mincore` on a mapping of it).
fn cached_share(file: &File) -> std::io::Result<f64> {
    // SAFETY: sysconf takes no pointers.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096);
    // SAFETY: a new shared read-only mapping of FILE_SIZE bytes of an open file, at an address
    // the kernel chooses; it overlaps no Rust object, and nothing reads through it.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FILE_SIZE,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let pages = FILE_SIZE.div_ceil(page);
    let mut resident = vec![0u8; pages];
    // SAFETY: `addr` is the page-aligned start of our live mapping of FILE_SIZE bytes, and
    // `resident` holds one writable byte for each of its pages.
    let ret = unsafe { libc::mincore(addr, FILE_SIZE, resident.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: unmaps exactly the mapping made above, which nothing refers to any more.
    unsafe { libc::munmap(addr, FILE_SIZE) };
    if ret != 0 {
        return Err(err);
    }
    let cached = resident.iter().filter(|&&r| r & 1 != 0).count();
    Ok(cached as f64 / pages as f64)
}

/// The name of the filesystem `file` is on, and whether it is backed by a disk.
fn filesystem(file: &File) -> (String, bool) {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable memory for one statfs, which fstatfs fills on success.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return (format!("unknown ({})", std::io::Error::last_os_error()), true);
    }
    // SAFETY: fstatfs returned 0, so it initialized `st`.
    let magic = unsafe { st.assume_init() }.f_type as u32;
    let (name, disk) = match magic {
        0xef53 => ("ext2/3/4", true),
        0x5846_5342 => ("xfs", true),
        0x9123_683e => ("btrfs", true),
        0xf2f5_2010 => ("f2fs", true),
        0x2fc1_2fc1 => ("zfs", true),
        0x0102_1994 => ("tmpfs", false),
        0x8584_58f6 => ("ramfs", false),
        0x794c_7630 => ("overlayfs", true),
        0x6969 => ("nfs", true),
        0x6573_5546 => ("fuse", true),
        _ => ("other", true),
    };
    (format!("{name} (magic {magic:#x})"), disk)
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nanoseconds per operation of `batches` batches.
fn measure(v: &mut dyn Variant, batches: usize) -> Result<f64, String> {
    let mut rng = Xorshift::new();
    let start = Instant::now();
    v.run(&mut rng, batches)?;
    let elapsed = start.elapsed();
    Ok(elapsed.as_nanos() as f64 / (batches * v.depth()) as f64)
}

/// How many batches take about `target`, from a short trial run.
fn calibrate(v: &mut dyn Variant, target: Duration) -> Result<usize, String> {
    let mut rng = Xorshift::new();
    let trial = target / 4;
    let start = Instant::now();
    let mut batches = 0u32;
    while batches == 0 || start.elapsed() < trial {
        v.batch(&mut rng)?;
        batches += 1;
    }
    let per_batch = start.elapsed() / batches;
    Ok((target.as_nanos() / per_batch.as_nanos().max(1)).max(1) as usize)
}

fn run(opts: &Options) -> Result<(), String> {
    let dir = std::env::var_os("AIO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| ".".into());
    let shown = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    // Deleted when dropped: at the end of this function, on success or error.
    let mut tmp = tempfile::Builder::new()
        .prefix(".kernel_reap-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot create the bench file in {}: {e}", shown.display()))?;
    let file_name = tmp.path().file_name().map(|n| shown.join(n)).unwrap_or_default();
    let (fs_name, on_disk) = filesystem(tmp.as_file());
    eprintln!("kernel_reap: writing {} MiB to {} ...", FILE_SIZE >> 20, file_name.display());
    make_file(tmp.as_file_mut())?;
    let cached_before = cached_share(tmp.as_file());
    let file = tmp.as_file();

    let mut variants: Vec<Box<dyn Variant + '_>> = Vec::new();
    for depth in DEPTHS {
        variants.push(Box::new(Pread::new(file, depth)));
        variants.push(Box::new(Safe::new(file, depth, ReapMode::Ring)?));
        variants.push(Box::new(Safe::new(file, depth, ReapMode::Syscall)?));
        variants.push(Box::new(Raw::new(file, depth, ReapMode::Ring)?));
        variants.push(Box::new(Raw::new(file, depth, ReapMode::Syscall)?));
    }

    // Check each variant's data once, then find its operation count.
    let mut notes = Vec::new();
    for v in variants.iter_mut() {
        notes.extend(v.verify(&mut Xorshift::new())?);
    }
    let mut batches = Vec::new();
    for v in variants.iter_mut() {
        batches.push(calibrate(v.as_mut(), opts.target)?);
    }

    let n = variants.len();
    let mut samples = vec![Vec::with_capacity(opts.rounds); n];
    for round in 0..opts.rounds {
        for k in 0..n {
            let i = (round + k) % n;
            samples[i].push(measure(variants[i].as_mut(), batches[i])?);
        }
        eprintln!("kernel_reap: round {}/{} done", round + 1, opts.rounds);
    }
    let cached_after = cached_share(file);

    // The report.
    let medians: Vec<f64> = samples.iter().map(|s| median(s)).collect();
    let share = |r: &std::io::Result<f64>| match r {
        Ok(s) => format!("{:.1}%", s * 100.0),
        Err(e) => format!("? ({e})"),
    };
    println!();
    println!(
        "kernel_reap: {} KiB reads at random offsets of a page-cached {} MiB file",
        BLOCK >> 10,
        FILE_SIZE >> 20
    );
    println!(
        "file: {} on {fs_name}; in the page cache: {} before, {} after measuring",
        file_name.display(),
        share(&cached_before),
        share(&cached_after)
    );
    if !on_disk {
        println!("WARNING: this filesystem is not on a disk; set AIO_BENCH_DIR to one that is");
    }
    println!(
        "{} rounds, each variant once per round for ~{} ms; median over the rounds",
        opts.rounds,
        opts.target.as_millis()
    );
    for note in &notes {
        println!("  {note}");
    }
    if variants.iter().any(|v| v.name().ends_with("(!)")) {
        println!("WARNING: (!) marks a variant that asked for ring reaping but reaps by syscall");
    }
    println!();
    println!(
        "{:>3}  {:<20} {:>9} {:>12} {:>9} {:>12} {:>21}",
        "QD", "variant", "ops/run", "ns/op", "x pread", "ops/s", "min..max ns/op"
    );
    let mut base = 0.0;
    for (i, v) in variants.iter().enumerate() {
        if v.name() == "pread" {
            base = medians[i];
            if i > 0 {
                println!();
            }
        }
        let (lo, hi) =
            samples[i].iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "{:>3}  {:<20} {:>9} {:>12.1} {:>8.2}x {:>12.0} {:>21}",
            v.depth(),
            v.name(),
            batches[i] * v.depth(),
            medians[i],
            medians[i] / base,
            1e9 / medians[i],
            format!("{lo:.1}..{hi:.1}")
        );
    }

    let find = |depth: usize, prefix: &str| {
        variants
            .iter()
            .position(|v| v.depth() == depth && v.name().starts_with(prefix))
            .map(|i| medians[i])
            .unwrap_or(f64::NAN)
    };
    println!();
    println!(
        "ring vs syscall reaping (median ns/op, ring / syscall; below 1 means ring is faster):"
    );
    for depth in DEPTHS {
        for layer in ["Context", "RawContext"] {
            let ring = find(depth, &format!("{layer} ring"));
            let syscall = find(depth, &format!("{layer} syscall"));
            println!(
                "  QD {depth:>2}  {layer:<11} {:>6.2}x  ({:+.1} ns/op)",
                ring / syscall,
                ring - syscall
            );
        }
    }
    println!("safe layer overhead (median ns/op, Context / RawContext, same reap mode):");
    for depth in DEPTHS {
        for mode in ["ring", "syscall"] {
            let safe = find(depth, &format!("Context {mode}"));
            let raw = find(depth, &format!("RawContext {mode}"));
            println!(
                "  QD {depth:>2}  {mode:<11} {:>6.2}x  ({:+.1} ns/op)",
                safe / raw,
                safe - raw
            );
        }
    }

    drop(variants);
    tmp.close().map_err(|e| format!("deleting {}: {e}", file_name.display()))
}
