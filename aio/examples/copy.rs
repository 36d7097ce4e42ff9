//! What the seed's `libaio_copy.c` means to do, done right: copy a file with native kernel AIO,
//! 32 requests in flight in 1 MiB blocks, each read's completion submitting its write from a
//! callback and each write's completion the next read. Any size works: empty, not a multiple of
//! the block, not a multiple of the O_DIRECT alignment.
//!
//! ```text
//! cargo run --release -p aio --example copy -- SRC DST [--direct]
//! cargo run --release -p aio --example copy            # demo: makes a file, copies it, checks
//! ```

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aio::buf::{IoBuf, Slice};
use aio::kernel::{Completion, Context};
use aio::{AlignedBuf, DioAlign};

type Iocb = aio::kernel::Iocb<Slice<AlignedBuf>>;
type Ctx = Context<Slice<AlignedBuf>>;

const BLOCK: usize = 1 << 20;
const DEPTH: usize = 32;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let direct = args.iter().any(|a| a == "--direct");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if let Some(bad) = args.iter().find(|a| a.starts_with("--") && *a != "--direct") {
        eprintln!("copy: unknown option {bad}\nusage: copy SRC DST [--direct]");
        return ExitCode::from(2);
    }
    let result = match paths.as_slice() {
        [] => demo(),
        [src, dst] => copy(Path::new(src), Path::new(dst), direct).map(|stats| {
            println!("{}", stats.line(src, dst, direct));
        }),
        _ => {
            eprintln!("usage: copy SRC DST [--direct]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a copy did.
struct Stats {
    bytes: u64,
    seconds: f64,
    reads: u64,
    writes: u64,
}

impl Stats {
    fn line(&self, src: &str, dst: &str, direct: bool) -> String {
        format!(
            "copied {} bytes from {src} to {dst}{} in {:.3} s ({:.1} MiB/s, {} reads, {} writes)",
            self.bytes,
            if direct { " with O_DIRECT" } else { "" },
            self.seconds,
            self.bytes as f64 / (1 << 20) as f64 / self.seconds.max(1e-9),
            self.reads,
            self.writes
        )
    }
}

/// State the callbacks share.
struct Job {
    src: File,
    dst: File,
    src_name: String,
    dst_name: String,
    size: u64,
    /// For O_DIRECT: the alignment lengths are rounded up to.
    align: Option<DioAlign>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Next offset no read has covered yet.
    next: u64,
    /// Ranges to read again after a short read.
    retry: VecDeque<(u64, usize)>,
    in_flight: usize,
    error: Option<String>,
    reads: u64,
    writes: u64,
}

fn copy(src_path: &Path, dst_path: &Path, direct: bool) -> Result<Stats, String> {
    let (src_name, dst_name) = (src_path.display().to_string(), dst_path.display().to_string());
    let flags = if direct { libc::O_DIRECT } else { 0 };
    let how = if direct { " with O_DIRECT" } else { "" };
    let src = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(src_path)
        .map_err(|e| format!("cannot open {src_name}{how}: {}", explain(e, direct)))?;
    let meta = src.metadata().map_err(|e| format!("cannot stat {src_name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{src_name} is not a regular file"));
    }
    if let Ok(dst_meta) = std::fs::metadata(dst_path) {
        use std::os::unix::fs::MetadataExt;
        if dst_meta.dev() == meta.dev() && dst_meta.ino() == meta.ino() {
            return Err(format!("{src_name} and {dst_name} are the same file"));
        }
    }
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(flags)
        .open(dst_path)
        .map_err(|e| format!("cannot create {dst_name}{how}: {}", explain(e, direct)))?;
    let align = if direct {
        let a = DioAlign::of(&src).map_err(|e| format!("{src_name}: {e}"))?;
        let b = DioAlign::of(&dst).map_err(|e| format!("{dst_name}: {e}"))?;
        let pick = if b.buffer_align() > a.buffer_align() { b } else { a };
        if pick.buffer_align() > BLOCK {
            return Err(format!("O_DIRECT alignment {} exceeds the block size", pick));
        }
        Some(pick)
    } else {
        None
    };
    let job = Arc::new(Job {
        src,
        dst,
        src_name,
        dst_name,
        size: meta.len(),
        align,
        state: Mutex::new(State::default()),
    });

    let start = Instant::now();
    let ctx: Ctx = Context::new(2 * DEPTH).map_err(|e| e.to_string())?;
    for _ in 0..DEPTH {
        let buf = AlignedBuf::new(BLOCK, align.map_or(4096, |a| a.buffer_align()));
        read_next(&ctx, &job, buf);
    }
    while job.state.lock().unwrap().in_flight > 0 {
        if let Err(e) = ctx.run(1, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                fail(&job, format!("io_getevents: {e}"));
                break;
            }
        }
    }
    let state = std::mem::take(&mut *job.state.lock().unwrap());
    if let Some(e) = state.error {
        return Err(e);
    }
    // O_DIRECT wrote whole blocks; cut the tail back to the source's size.
    if direct {
        job.dst.set_len(job.size).map_err(|e| format!("truncate {}: {e}", job.dst_name))?;
    }
    job.dst.sync_all().map_err(|e| format!("fsync {}: {e}", job.dst_name))?;
    Ok(Stats {
        bytes: job.size,
        seconds: start.elapsed().as_secs_f64(),
        reads: state.reads,
        writes: state.writes,
    })
}

fn explain(e: io::Error, direct: bool) -> String {
    if direct && e.raw_os_error() == Some(libc::EINVAL) {
        format!("{e} (this filesystem does not support O_DIRECT; tmpfs does not)")
    } else {
        e.to_string()
    }
}

fn fail(job: &Job, msg: String) {
    job.state.lock().unwrap().error.get_or_insert(msg);
}

/// Starts the read of the next range with `buf`, or retires `buf` if everything is covered.
fn read_next(ctx: &Ctx, job: &Arc<Job>, buf: AlignedBuf) {
    let (offset, len) = {
        let mut st = job.state.lock().unwrap();
        if st.error.is_some() {
            return;
        }
        let range = match st.retry.pop_front() {
            Some(r) => r,
            None if st.next < job.size => {
                let r = (st.next, BLOCK.min((job.size - st.next) as usize));
                st.next += r.1 as u64;
                r
            }
            None => return,
        };
        st.in_flight += 1;
        st.reads += 1;
        range
    };
    // O_DIRECT reads whole aligned blocks; the kernel stops at end of file.
    let read_len = job.align.map_or(len, |a| a.round_up(len as u64) as usize);
    let done_job = Arc::clone(job);
    let req = Iocb::pread(&job.src, buf.slice(..read_len), offset)
        .on_complete(move |ctx, c| read_done(ctx, &done_job, offset, len, c));
    submit(ctx, job, req, "read", offset);
}

fn read_done(ctx: &Ctx, job: &Arc<Job>, offset: u64, len: usize, c: Completion<Slice<AlignedBuf>>) {
    let result = c.result();
    let mut buf = c.into_buf().expect("a pread has a buffer").into_inner();
    let n = match result {
        Ok(n) => n.min(len),
        Err(e) => {
            return finish(job, Some(format!("read {} at offset {offset}: {e}", job.src_name)))
        }
    };
    if n == 0 {
        return finish(job, Some(format!("{} ended early, at offset {offset}", job.src_name)));
    }
    if n < len {
        // A short read: the rest is read again later.
        job.state.lock().unwrap().retry.push_back((offset + n as u64, len - n));
    }
    buf.set_len(n);
    let write_len = match job.align {
        Some(a) => {
            // O_DIRECT writes whole blocks; zero the padding. The file is cut back at the end.
            let padded = a.round_up(n as u64) as usize;
            buf.resize(padded, 0);
            padded
        }
        None => n,
    };
    write(ctx, job, buf, offset, 0, write_len);
    job.state.lock().unwrap().in_flight -= 1;
}

/// Writes bytes `from..to` of `buf` at `offset + from`.
fn write(ctx: &Ctx, job: &Arc<Job>, buf: AlignedBuf, offset: u64, from: usize, to: usize) {
    {
        let mut st = job.state.lock().unwrap();
        st.in_flight += 1;
        st.writes += 1;
    }
    let done_job = Arc::clone(job);
    let at = offset + from as u64;
    let req = Iocb::pwrite(&job.dst, buf.slice(from..to), at)
        .on_complete(move |ctx, c| write_done(ctx, &done_job, offset, from, to, c));
    submit(ctx, job, req, "write", at);
}

fn write_done(
    ctx: &Ctx,
    job: &Arc<Job>,
    offset: u64,
    from: usize,
    to: usize,
    c: Completion<Slice<AlignedBuf>>,
) {
    let result = c.result();
    let buf = c.into_buf().expect("a pwrite has a buffer").into_inner();
    let at = offset + from as u64;
    match result {
        Err(e) => return finish(job, Some(format!("write {} at offset {at}: {e}", job.dst_name))),
        Ok(0) => {
            return finish(
                job,
                Some(format!("write {} at offset {at} wrote nothing", job.dst_name)),
            )
        }
        // A short write: write the rest.
        Ok(w) if from + w < to => write(ctx, job, buf, offset, from + w, to),
        Ok(_) => read_next(ctx, job, buf),
    }
    job.state.lock().unwrap().in_flight -= 1;
}

/// A request ended in error: record it and stop starting new ones.
fn finish(job: &Job, error: Option<String>) {
    let mut st = job.state.lock().unwrap();
    if let Some(e) = error {
        st.error.get_or_insert(e);
    }
    st.in_flight -= 1;
}

fn submit(ctx: &Ctx, job: &Job, req: Iocb, what: &str, offset: u64) {
    if let Err(e) = ctx.submit(req) {
        let name = if what == "read" { &job.src_name } else { &job.dst_name };
        finish(job, Some(format!("submit {what} of {name} at offset {offset}: {}", e.error())));
    }
}

/// No arguments: make a file that is not a multiple of the block or of the alignment, copy it
/// with and without O_DIRECT, check both copies, and clean up.
fn demo() -> Result<(), String> {
    let dir = tempdir_here().map_err(|e| format!("cannot make a directory here: {e}"))?;
    let run = || -> Result<(), String> {
        let src = dir.join("source.bin");
        let size = (64 << 20) + 12_345;
        write_random(&src, size).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
        println!("made {} ({size} bytes of random data)", src.display());
        for direct in [true, false] {
            let dst = dir.join(if direct { "copy-direct.bin" } else { "copy-buffered.bin" });
            let stats = copy(&src, &dst, direct)?;
            let (a, b) = (src.display().to_string(), dst.display().to_string());
            println!("{}", stats.line(&a, &b, direct));
            if !same_contents(&src, &dst).map_err(|e| e.to_string())? {
                return Err(format!("{b} differs from {a}"));
            }
            println!("checked: {b} is byte-identical to {a}");
        }
        Ok(())
    };
    let result = run();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempdir_here() -> io::Result<PathBuf> {
    let dir = std::env::current_dir()?.join(format!("aio-copy-demo-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

fn write_random(path: &Path, size: usize) -> io::Result<()> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let mut data = vec![0u8; size];
    for chunk in data.chunks_mut(8) {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    std::fs::write(path, data)
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
