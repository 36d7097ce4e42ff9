//! A safe, owned way to keep POSIX AIO requests in flight: [`Slots`].
//!
//! [`crate::posix`]'s functions take raw `aiocb` pointers, and the caller must keep each aiocb
//! and its buffer valid, unmoved and untouched until the request completes. [`Slots`] owns a
//! fixed set of aiocbs and one buffer for each, and keeps those promises itself: a slot's aiocb
//! and buffer are only reachable while no request uses them, and dropping the set waits for
//! every request still in flight before anything is freed.
//!
//! ```no_run
//! use std::fs::File;
//! use std::os::fd::AsFd;
//! use aio::posix::slots::{Slots, Status};
//! use aio::AlignedBuf;
//!
//! let file = File::open("/etc/hostname")?;
//! let mut slots = Slots::new((0..4).map(|_| AlignedBuf::new(4096, 4096)).collect())?;
//! for i in 0..4 {
//!     slots.submit_read(i, file.as_fd(), i as u64 * 4096, 4096).expect("aio_read");
//! }
//! while slots.in_flight() > 0 {
//!     let _ = slots.suspend(None);
//!     for i in 0..slots.len() {
//!         if let Status::Done(result) = slots.status(i) {
//!             println!("slot {i}: {result:?}");
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::TryReserveError;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::{null, NonNull};
use std::time::Duration;

use super::Errno;
use crate::sys::posix::aiocb;
use crate::AlignedBuf;

/// What became of a slot's request, as [`Slots::status`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No request: never submitted, or its result was already taken.
    Idle,
    /// Submitted and not yet complete.
    InProgress,
    /// Complete: the bytes transferred (`aio_return`) or the request's errno (`aio_error`). The
    /// slot is idle again.
    Done(Result<usize, Errno>),
}

/// A fixed set of POSIX AIO requests, each with its own `aiocb` and buffer, owned together.
///
/// Slot `i` is submitted with [`submit_read`](Self::submit_read) or
/// [`submit_write`](Self::submit_write), waited for with [`suspend`](Self::suspend), and its
/// result taken with [`status`](Self::status); its buffer is reachable
/// ([`buf`](Self::buf), [`buf_mut`](Self::buf_mut)) only while no request uses it. The aiocbs
/// live in one heap allocation that never moves (the library knows a request by its aiocb's
/// address), so the set itself may be moved while requests are in flight.
///
/// Dropping the set waits for every request in flight first, in bounded waits repeated until
/// none is left: a request that never completes (a read of a pipe no one writes to) keeps the
/// drop waiting; [`cancel`](Self::cancel) it first.
///
/// Slot indexes must be below [`len`](Self::len); methods panic otherwise.
pub struct Slots {
    /// `len` aiocbs from a leaked `Box<[aiocb]>` (freed in `drop`), reached only through this
    /// pointer: the library and its engine write into those of requests in flight.
    cbs: NonNull<aiocb>,
    bufs: Box<[AlignedBuf]>,
    /// The descriptor each slot's request was submitted on (for `aio_cancel`).
    fds: Box<[RawFd]>,
    /// `aio_suspend`'s list: the aiocb of each slot in flight, null for the others.
    list: Box<[*const aiocb]>,
    in_flight: usize,
}

/// A zeroed `aiocb`: no request, no notification.
fn zeroed_aiocb() -> aiocb {
    // SAFETY: aiocb is a C struct of integers, raw pointers and unions of those; all-zero bytes
    // are a valid value of each (null pointers, zero integers, SIGEV_SIGNAL with signal 0,
    // which asks for no notification).
    unsafe { std::mem::MaybeUninit::<aiocb>::zeroed().assume_init() }
}

impl Slots {
    /// One slot for each of `bufs`. `Err` if the allocator refuses the aiocb table (its size
    /// follows the number of buffers, which may come from the user).
    pub fn new(bufs: Vec<AlignedBuf>) -> Result<Slots, TryReserveError> {
        let n = bufs.len();
        let mut cbs = Vec::new();
        cbs.try_reserve_exact(n)?;
        cbs.extend((0..n).map(|_| zeroed_aiocb()));
        let mut list = Vec::new();
        list.try_reserve_exact(n)?;
        list.resize(n, null());
        let mut fds = Vec::new();
        fds.try_reserve_exact(n)?;
        fds.resize(n, -1);
        let cbs = NonNull::new(Box::into_raw(cbs.into_boxed_slice()).cast::<aiocb>())
            .expect("Box::into_raw is never null");
        Ok(Slots {
            cbs,
            bufs: bufs.into_boxed_slice(),
            fds: fds.into_boxed_slice(),
            list: list.into_boxed_slice(),
            in_flight: 0,
        })
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// How many slots have a request in flight (submitted, result not yet taken).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether slot `i` has a request in flight.
    pub fn is_in_flight(&self, i: usize) -> bool {
        !self.list[i].is_null()
    }

    /// Slot `i`'s buffer, `None` while a request uses it.
    pub fn buf(&self, i: usize) -> Option<&AlignedBuf> {
        (!self.is_in_flight(i)).then(|| &self.bufs[i])
    }

    /// Slot `i`'s buffer, mutably (to fill it before a write), `None` while a request uses it.
    pub fn buf_mut(&mut self, i: usize) -> Option<&mut AlignedBuf> {
        if self.is_in_flight(i) {
            return None;
        }
        Some(&mut self.bufs[i])
    }

    /// The address of slot `i`'s aiocb.
    fn cb(&self, i: usize) -> *mut aiocb {
        assert!(i < self.len(), "slot {i} of {}", self.len());
        // SAFETY: `i` is within the allocation of `len` aiocbs.
        unsafe { self.cbs.as_ptr().add(i) }
    }

    /// `aio_read`: reads `len` bytes at `offset` of `fd` into the start of slot `i`'s buffer
    /// (then reachable again once [`status`](Self::status) reports it done). `Err(EINVAL)` if the
    /// slot is in flight, `len` exceeds the buffer's capacity or `offset` the largest file
    /// offset; otherwise `aio_read`'s errors (`EAGAIN`: too many requests in flight).
    pub fn submit_read(
        &mut self,
        i: usize,
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Result<(), Errno> {
        self.submit(i, fd, offset, len, false)
    }

    /// `aio_write`: writes the first `len` bytes of slot `i`'s buffer (whatever its length) at
    /// `offset` of `fd`. Errors as for [`submit_read`](Self::submit_read).
    pub fn submit_write(
        &mut self,
        i: usize,
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Result<(), Errno> {
        self.submit(i, fd, offset, len, true)
    }

    fn submit(
        &mut self,
        i: usize,
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        write: bool,
    ) -> Result<(), Errno> {
        let cb = self.cb(i);
        if self.is_in_flight(i) || len > self.bufs[i].capacity() {
            return Err(Errno::EINVAL);
        }
        let offset = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let buf = self.bufs[i].as_full_mut_slice().as_mut_ptr();
        let mut new = zeroed_aiocb();
        new.aio_fildes = fd.as_raw_fd();
        new.aio_buf = buf.cast();
        new.aio_nbytes = len;
        new.aio_offset = offset;
        // SAFETY: `cb` is slot `i`'s aiocb, in bounds, and no request uses it (not in flight),
        // so nothing else reads or writes it now.
        unsafe { cb.write(new) };
        // SAFETY: the aiocb and the `len` bytes of buffer it names (within the capacity) belong
        // to `self` and do not move (heap allocations); neither is reachable through `self`
        // until the request's result is taken in `status`, and dropping `self` waits for every
        // request in flight before freeing them.
        let r = unsafe {
            if write {
                super::aio_write(cb)
            } else {
                super::aio_read(cb)
            }
        };
        r?;
        self.list[i] = cb;
        self.fds[i] = fd.as_raw_fd();
        self.in_flight += 1;
        Ok(())
    }

    /// Where slot `i`'s request is (`aio_error`), taking its result (`aio_return`) when it is
    /// complete: [`Status::Done`] is reported once, and the slot is idle after it.
    pub fn status(&mut self, i: usize) -> Status {
        let cb = self.cb(i);
        if !self.is_in_flight(i) {
            return Status::Idle;
        }
        // SAFETY: `cb` is slot `i`'s aiocb, submitted and alive (owned by `self`).
        let error = match unsafe { super::aio_error(cb) } {
            Ok(libc::EINPROGRESS) => return Status::InProgress,
            Ok(e) => e,
            Err(e) => e.raw(),
        };
        // SAFETY: as above; the request is complete, so its result can be taken.
        let ret = unsafe { super::aio_return(cb) };
        self.list[i] = null();
        self.in_flight -= 1;
        Status::Done(match (error, ret) {
            (0, Ok(n)) if n >= 0 => Ok(n as usize),
            (0, Ok(_)) => Err(Errno::EIO),
            (0, Err(e)) => Err(e),
            (e, _) => Err(Errno::from_raw(e)),
        })
    }

    /// `aio_suspend` on the slots in flight: waits until one of them is complete, or `timeout`
    /// (`None`: no limit) passes (`Err(EAGAIN)`), or a signal arrives (`Err(EINTR)`). Returns at
    /// once if one is complete, or if none is in flight.
    pub fn suspend(&self, timeout: Option<Duration>) -> Result<(), Errno> {
        // SAFETY: the list holds null or aiocbs of `self` that were submitted and are alive.
        unsafe { super::aio_suspend(&self.list, timeout) }
    }

    /// `aio_cancel` of slot `i`'s request: `AIO_CANCELED` (it will complete with `ECANCELED`),
    /// `AIO_NOTCANCELED` (it is moving data and will complete), `AIO_ALLDONE` (complete, or
    /// none in flight). The result is then taken with [`status`](Self::status) as usual.
    pub fn cancel(&mut self, i: usize) -> Result<i32, Errno> {
        let cb = self.cb(i);
        if !self.is_in_flight(i) {
            return Ok(crate::sys::posix::AIO_ALLDONE);
        }
        // SAFETY: `cb` is slot `i`'s aiocb, submitted on `self.fds[i]` and alive in `self`.
        unsafe { super::aio_cancel(self.fds[i], cb) }
    }

    /// Waits until no request is in flight, taking (and dropping) their results.
    fn wait_all(&mut self) {
        while self.in_flight > 0 {
            match self.suspend(Some(Duration::from_millis(100))) {
                Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // Not a wait: do not spin on it.
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
            for i in 0..self.len() {
                let _ = self.status(i);
            }
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // The engine writes into the aiocbs and buffers until each request completes.
        self.wait_all();
        let all = std::ptr::slice_from_raw_parts_mut(self.cbs.as_ptr(), self.len());
        // SAFETY: `cbs` came from `Box::into_raw` of a boxed slice of `len` aiocbs in `new`,
        // and no request uses any of them any more.
        drop(unsafe { Box::from_raw(all) });
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("len", &self.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;
    use std::time::Instant;

    const BS: usize = 4096;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    fn slots(n: usize) -> Slots {
        Slots::new((0..n).map(|_| AlignedBuf::new(BS, 512)).collect()).expect("slots")
    }

    fn wait(slots: &mut Slots, i: usize) -> Result<usize, Errno> {
        loop {
            if let Status::Done(r) = slots.status(i) {
                return r;
            }
            assert!(slots.is_in_flight(i));
            match slots.suspend(Some(Duration::from_secs(10))) {
                Ok(()) | Err(Errno::EINTR) => {}
                Err(e) => panic!("aio_suspend: {e}"),
            }
        }
    }

    #[test]
    fn reads_bring_back_the_files_bytes() {
        let mut file = tempfile::tempfile().expect("temporary file");
        let data = pattern(8 * BS, 7);
        file.write_all(&data).expect("write");
        let mut slots = slots(8);
        for i in 0..8 {
            slots.submit_read(i, file.as_fd(), (i * BS) as u64, BS).expect("aio_read");
            assert!(slots.buf(i).is_none() && slots.buf_mut(i).is_none());
        }
        assert_eq!(slots.in_flight(), 8);
        for i in (0..8).rev() {
            assert_eq!(wait(&mut slots, i), Ok(BS));
            assert_eq!(slots.status(i), Status::Idle);
            let buf = slots.buf(i).expect("idle");
            assert_eq!(&buf.as_full_slice()[..BS], &data[i * BS..(i + 1) * BS], "slot {i}");
        }
        assert_eq!(slots.in_flight(), 0);
        // Past the end: nothing more to read.
        slots.submit_read(0, file.as_fd(), data.len() as u64, BS).expect("aio_read");
        assert_eq!(wait(&mut slots, 0), Ok(0));
    }

    #[test]
    fn writes_land_and_errors_are_reported() {
        let file = tempfile::tempfile().expect("temporary file");
        let mut slots = slots(2);
        let data = pattern(BS, 3);
        slots.buf_mut(1).expect("idle").as_full_mut_slice().copy_from_slice(&data);
        slots.submit_write(1, file.as_fd(), BS as u64, BS).expect("aio_write");
        assert_eq!(slots.submit_write(1, file.as_fd(), 0, BS), Err(Errno::EINVAL), "in flight");
        assert_eq!(wait(&mut slots, 1), Ok(BS));
        let mut back = vec![0u8; BS];
        file.read_exact_at(&mut back, BS as u64).expect("read back");
        assert_eq!(back, data);

        assert_eq!(slots.submit_read(0, file.as_fd(), 0, BS + 1), Err(Errno::EINVAL));
        assert_eq!(slots.submit_read(0, file.as_fd(), u64::MAX, BS), Err(Errno::EINVAL));
        // A read of a descriptor open for writing only fails in its status.
        let wronly = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .expect("reopen for writing");
        slots.submit_read(0, wronly.as_fd(), 0, BS).expect("aio_read");
        assert_eq!(wait(&mut slots, 0), Err(Errno::EBADF));
    }

    #[test]
    fn dropping_waits_for_requests_in_flight() {
        // A read of an empty pipe stays in flight until the writer writes, after the drop
        // has started: the drop must wait for it, and the read must take the bytes.
        let (mut rx, mut tx) = std::io::pipe().expect("pipe");
        let mut slots = slots(2);
        slots.submit_read(0, rx.as_fd(), 0, BS).expect("aio_read");
        let file = tempfile::tempfile().expect("temporary file");
        file.write_all_at(&pattern(BS, 1), 0).expect("write");
        slots.submit_read(1, file.as_fd(), 0, BS).expect("aio_read");
        let delay = Duration::from_millis(300);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            tx.write_all(b"late").expect("write to the pipe");
            tx
        });
        let start = Instant::now();
        drop(slots);
        assert!(start.elapsed() >= delay, "the drop returned before the read completed");
        let tx = writer.join().expect("writer");
        drop(tx);
        let mut rest = Vec::new();
        rx.read_to_end(&mut rest).expect("read the pipe");
        assert!(rest.is_empty(), "the read in flight took the bytes, not {rest:?}");
    }

    #[test]
    fn cancelled_reads_let_the_drop_end() {
        let (rx, _tx) = std::io::pipe().expect("pipe");
        let mut slots = slots(1);
        slots.submit_read(0, rx.as_fd(), 0, BS).expect("aio_read");
        assert_eq!(slots.status(0), Status::InProgress);
        let r = slots.cancel(0).expect("aio_cancel");
        assert_eq!(r, crate::sys::posix::AIO_CANCELED);
        assert_eq!(wait(&mut slots, 0), Err(Errno::ECANCELED));
        assert_eq!(slots.cancel(0), Ok(crate::sys::posix::AIO_ALLDONE));
    }
}
