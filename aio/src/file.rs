//! [`File`]: asynchronous positioned I/O with owned buffers, on any executor.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! aio::block_on(async {
//!     let file = aio::File::open("/etc/hostname")?;
//!     let (res, buf) = file.read_at(Vec::with_capacity(4096), 0).await;
//!     println!("{} bytes: {:?}", res?, String::from_utf8_lossy(&buf));
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Buffers go in by value and come back with the result — also on error — so the kernel never
//! writes into memory the program can see or has freed, even when a future is dropped before
//! it completes. Any [`IoBuf`]/[`IoBufMut`] works: `Vec<u8>`, `Box<[u8]>`, [`AlignedBuf`]
//! (for `O_DIRECT`), [`FixedBuf`](crate::driver::FixedBuf) and [`Slice`]s of them.
//!
//! A read fills the buffer from its start up to its capacity ([`IoBuf::bytes_total`]) and
//! records the bytes read ([`IoBufMut::set_init`]: a `Vec`'s length grows to cover them); a
//! write sends the buffer's data ([`IoBuf::bytes_init`]).

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::align::DioAlign;
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Buf, CancelOutcome, Request};
use crate::rt::{Operation, Reactor};

#[allow(unused_imports)] // for the module documentation
use crate::buf::{AlignedBuf, Slice};

/// A file open for asynchronous I/O through a [`Reactor`].
#[derive(Clone)]
pub struct File {
    inner: Arc<std::fs::File>,
    reactor: Arc<Reactor>,
    align: Option<DioAlign>,
}

/// Options for opening a [`File`], like [`std::fs::OpenOptions`] plus `O_DIRECT` and the
/// reactor to use.
#[derive(Clone)]
pub struct OpenOptions {
    std: std::fs::OpenOptions,
    flags: i32,
    direct: bool,
    reactor: Option<Arc<Reactor>>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Nothing set: say what access you want.
    pub fn new() -> OpenOptions {
        OpenOptions { std: std::fs::OpenOptions::new(), flags: 0, direct: false, reactor: None }
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.std.read(on);
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.std.write(on);
        self
    }
    /// Open for appending (`O_APPEND`: every write goes to the end).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.std.append(on);
        self
    }
    /// Create the file if it does not exist.
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.std.create(on);
        self
    }
    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.std.create_new(on);
        self
    }
    /// Truncate the file to 0 bytes.
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.std.truncate(on);
        self
    }
    /// Permission bits for a file created (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.std.mode(mode);
        self
    }
    /// Open with `O_DIRECT`: I/O bypasses the page cache, and buffers, lengths and offsets must
    /// be aligned ([`File::dio_align`] says to what).
    pub fn direct(&mut self, on: bool) -> &mut Self {
        self.direct = on;
        self
    }
    /// Other `open(2)` flags.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.flags = flags;
        self
    }
    /// Use this reactor instead of the [global one](Reactor::global).
    pub fn reactor(&mut self, reactor: Arc<Reactor>) -> &mut Self {
        self.reactor = Some(reactor);
        self
    }

    /// Opens `path`. With `O_DIRECT` on a filesystem that refuses it (tmpfs), the error says so.
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let mut std = self.std.clone();
        std.custom_flags(self.flags | if self.direct { libc::O_DIRECT } else { 0 });
        let file = std.open(path).map_err(|e| {
            if self.direct && e.raw_os_error() == Some(libc::EINVAL) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "open {} with O_DIRECT: {e} (this filesystem does not support O_DIRECT; \
                         tmpfs does not)",
                        path.display()
                    ),
                )
            } else {
                io::Error::new(e.kind(), format!("open {}: {e}", path.display()))
            }
        })?;
        let reactor = match &self.reactor {
            Some(r) => Arc::clone(r),
            None => Reactor::global()?,
        };
        File::with_reactor(file, reactor)
    }
}

impl File {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates (or truncates) `path` for writing.
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path)
    }

    /// Options to open a file with.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// An open file, on the [global reactor](Reactor::global).
    pub fn from_std(file: std::fs::File) -> io::Result<File> {
        File::with_reactor(file, Reactor::global()?)
    }

    /// An open file, on `reactor`. Whether it is `O_DIRECT` is asked of the descriptor.
    pub fn with_reactor(file: std::fs::File, reactor: Arc<Reactor>) -> io::Result<File> {
        let direct = crate::sys::fs::status_flags(file.as_fd())? & libc::O_DIRECT != 0;
        let align = if direct { Some(DioAlign::of(&file)?) } else { None };
        Ok(File { inner: Arc::new(file), reactor, align })
    }

    /// The reactor its I/O goes through.
    pub fn reactor(&self) -> &Arc<Reactor> {
        &self.reactor
    }

    /// For an `O_DIRECT` file, the alignment its I/O needs; `None` for a buffered file.
    pub fn dio_align(&self) -> Option<DioAlign> {
        self.align
    }

    /// The file as a standard one, for metadata, `set_len` and the like.
    pub fn std(&self) -> &std::fs::File {
        &self.inner
    }

    fn op<T>(&self, req: Request, finish: fn(i64, Buf) -> T) -> IoFuture<T> {
        let req = req.keep_alive(Arc::clone(&self.inner) as _);
        IoFuture(Operation::new(Arc::clone(&self.reactor), req, finish))
    }

    fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Reads into `buf` (up to its capacity) at `pos`; resolves to the byte count (0 at end of
    /// file, fewer than asked near it) and the buffer.
    pub fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> IoFuture<(io::Result<usize>, B)> {
        self.op(Request::read(self.fd(), Buf::for_read(buf), pos, 0), finish_read::<B>)
    }

    /// Writes `buf`'s data at `pos`; resolves to the byte count (possibly fewer than asked) and
    /// the buffer.
    pub fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> IoFuture<(io::Result<usize>, B)> {
        self.op(Request::write(self.fd(), Buf::for_write(buf), pos, 0), finish_take::<B>)
    }

    /// Reads at `pos` into `bufs`, filling each before the next.
    pub fn readv_at<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> IoFuture<(io::Result<usize>, Vec<B>)> {
        self.op(Request::read(self.fd(), Buf::for_readv(bufs), pos, 0), finish_readv::<B>)
    }

    /// Writes `bufs` one after another at `pos`.
    pub fn writev_at<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> IoFuture<(io::Result<usize>, Vec<B>)> {
        self.op(Request::write(self.fd(), Buf::for_writev(bufs), pos, 0), finish_take::<Vec<B>>)
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub fn sync_all(&self) -> IoFuture<io::Result<()>> {
        self.op(Request::fsync(self.fd(), 0), finish_sync)
    }

    /// Flushes data, and the metadata needed to read it, to the device (`fdatasync`).
    pub fn sync_data(&self) -> IoFuture<io::Result<()>> {
        self.op(Request::fdatasync(self.fd(), 0), finish_sync)
    }

    /// Reads until `buf` is full (its capacity), reading again after short reads; fails with
    /// `UnexpectedEof` if the file ends first. The buffer comes back either way.
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_total();
        let mut done = 0;
        while done < total {
            let (res, slice) = self.read_at(buf.slice(done..), pos + done as u64).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let msg = format!("end of file after {done} of {total} bytes at offset {pos}");
                    return (Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)), buf);
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes all of `buf`'s data, writing again after short writes. The buffer comes back
    /// either way.
    pub async fn write_all_at<B: IoBuf>(&self, mut buf: B, pos: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut done = 0;
        while done < total {
            let (res, slice) = self.write_at(buf.slice(done..total), pos + done as u64).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let msg =
                        format!("wrote nothing after {done} of {total} bytes at offset {pos}");
                    return (Err(io::Error::new(io::ErrorKind::WriteZero, msg)), buf);
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.inner.as_raw_fd())
            .field("driver", &self.reactor.driver().name())
            .field("direct", &self.align.is_some())
            .finish()
    }
}

fn result(res: i64) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res as i32))
    } else {
        Ok(res as usize)
    }
}

fn finish_read<B: IoBufMut>(res: i64, buf: Buf) -> (io::Result<usize>, B) {
    let filled = res.max(0) as usize;
    // SAFETY: every read request of this module carries a Buf made by `Buf::for_read` from a
    // `B`, and `res` is what the driver reported read (the Driver contract: never more than
    // was written into the buffer), or an error (nothing recorded).
    let b = unsafe { buf.take_filled::<B>(filled) };
    (result(res), b.expect("a read's buffer comes back with it"))
}

fn finish_readv<B: IoBufMut>(res: i64, buf: Buf) -> (io::Result<usize>, Vec<B>) {
    let filled = res.max(0) as usize;
    // SAFETY: as in `finish_read`, for `Buf::for_readv` from a `Vec<B>`.
    let b = unsafe { buf.take_filled_vec::<B>(filled) };
    (result(res), b.expect("a read's buffers come back with it"))
}

fn finish_take<T: 'static>(res: i64, buf: Buf) -> (io::Result<usize>, T) {
    (result(res), buf.take::<T>().expect("a write's buffer comes back with it"))
}

fn finish_sync(res: i64, _: Buf) -> io::Result<()> {
    result(res).map(drop)
}

/// The future of one operation on a [`File`].
///
/// Dropping it before it completes is safe: the request's buffers stay with the driver until
/// the kernel is done with them, then are dropped. [`cancel`](IoFuture::cancel) asks the driver
/// to stop it; the future then resolves to what really happened.
#[must_use = "futures do nothing unless polled"]
pub struct IoFuture<T>(Operation<T>);

impl<T> IoFuture<T> {
    /// Asks for the operation to be cancelled. The future still resolves, to `ECANCELED` if the
    /// request was stopped in time (always, if it was never polled) or to its real result if it
    /// had already run or cannot be stopped (file I/O already submitted, usually).
    pub fn cancel(&mut self) -> io::Result<CancelOutcome> {
        self.0.cancel()
    }
}

impl<T> Future for IoFuture<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}
