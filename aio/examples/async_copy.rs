//! Copies a file through the async API: 32 copy loops run as futures on one thread, each
//! reading a 1 MiB block and writing it, so many reads and writes are in flight at once. Works
//! for any size, with `--direct` too (O_DIRECT: aligned buffers, the tail padded and the file
//! cut back). The driver is chosen at run time; `AIO_ENGINE=uring|kernel|pool` forces one.
//!
//! ```text
//! cargo run --release -p aio --example async_copy -- SRC DST [--direct]
//! ```

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use aio::{AlignedBuf, File, IoBuf, Reactor};

const BLOCK: usize = 1 << 20;
const DEPTH: usize = 32;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let direct = args.iter().any(|a| a == "--direct");
    if let Some(bad) = args.iter().find(|a| a.starts_with("--") && *a != "--direct") {
        eprintln!("async_copy: unknown option {bad}\nusage: async_copy SRC DST [--direct]");
        return ExitCode::from(2);
    }
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [src, dst] = paths[..] else {
        eprintln!("usage: async_copy SRC DST [--direct]");
        return ExitCode::from(2);
    };
    let reactor = match Reactor::global() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("async_copy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    match reactor.block_on(copy(src, dst, direct)) {
        Ok(bytes) => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "copied {bytes} bytes from {src} to {dst}{} in {secs:.3} s ({:.1} MiB/s) with the {} driver",
                if direct { " with O_DIRECT" } else { "" },
                bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
                reactor.selection().map_or_else(|| reactor.driver().name().to_string(), |s| s.to_string()),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("async_copy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn context(what: &str, path: &str) -> impl Fn(io::Error) -> io::Error {
    let (what, path) = (what.to_string(), path.to_string());
    move |e| io::Error::new(e.kind(), format!("{what} {path}: {e}"))
}

async fn copy(src_path: &str, dst_path: &str, direct: bool) -> io::Result<u64> {
    let src = File::options().read(true).direct(direct).open(src_path)?;
    let meta = src.std().metadata().map_err(context("stat", src_path))?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{src_path} is not a regular file"),
        ));
    }
    if let Ok(d) = std::fs::metadata(dst_path) {
        use std::os::unix::fs::MetadataExt;
        if (d.dev(), d.ino()) == (meta.dev(), meta.ino()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{src_path} and {dst_path} are the same file"),
            ));
        }
    }
    let dst =
        File::options().write(true).create(true).truncate(true).direct(direct).open(dst_path)?;
    let size = meta.len();
    let align = match (src.dio_align(), dst.dio_align()) {
        (Some(a), Some(b)) => a.buffer_align().max(b.buffer_align()),
        _ => 4096,
    };
    let next = Rc::new(Cell::new(0u64));
    let lanes: Vec<Pin<Box<dyn Future<Output = io::Result<()>>>>> = (0..DEPTH)
        .map(|_| {
            let (src, dst, next) = (src.clone(), dst.clone(), Rc::clone(&next));
            let (src_path, dst_path) = (src_path.to_string(), dst_path.to_string());
            Box::pin(async move {
                let mut buf = AlignedBuf::new(BLOCK, align);
                loop {
                    let off = next.get();
                    if off >= size {
                        return Ok(());
                    }
                    next.set(off + BLOCK as u64);
                    let len = BLOCK.min((size - off) as usize);
                    let padded = if direct { len.next_multiple_of(align) } else { len };
                    // Read the block, again after short reads.
                    let mut got = 0;
                    while got < len {
                        let (res, s) = src.read_at(buf.slice(got..padded), off + got as u64).await;
                        buf = s.into_inner();
                        match res.map_err(context(
                            &format!("read at offset {}", off + got as u64),
                            &src_path,
                        ))? {
                            0 => {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    format!("{src_path} ended early, at {}", off + got as u64),
                                ))
                            }
                            n => got += n,
                        }
                    }
                    buf.set_len(len);
                    // O_DIRECT writes whole blocks: pad with zeros, the file is cut back later.
                    buf.resize(padded, 0);
                    let (res, b) = dst.write_all_at(buf, off).await;
                    buf = b;
                    res.map_err(context(&format!("write at offset {off}"), &dst_path))?;
                }
            }) as Pin<Box<dyn Future<Output = io::Result<()>>>>
        })
        .collect();
    join_all(lanes).await?;
    if direct {
        dst.std().set_len(size).map_err(context("truncate", dst_path))?;
    }
    dst.sync_all().await.map_err(context("fsync", dst_path))?;
    Ok(size)
}

/// Runs all the futures to completion; the first error wins.
async fn join_all(mut futs: Vec<Pin<Box<dyn Future<Output = io::Result<()>>>>>) -> io::Result<()> {
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
