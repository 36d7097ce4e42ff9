//! [`MemDriver`]: a RAM disk that completes every request inline — the smallest complete
//! driver, and the one to read first.
//!
//! It is a device, not a file: requests address its bytes by offset and their `fd` is ignored.
//! Like a block device, it has a fixed size: a read past the end returns what is there (0 at
//! or beyond the end), a write that starts at or past the end fails with `ENOSPC`, and one that
//! runs past it is short.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use super::ready::Ready;
use super::{CancelOutcome, Completion, Driver, Op, Rejected, Request};
use crate::deadline::deadline;

/// A RAM disk of a fixed size.
pub struct MemDriver {
    data: RwLock<Vec<u8>>,
    ready: Ready,
    /// Accepted and not yet reaped.
    in_flight: AtomicUsize,
}

impl MemDriver {
    /// A zero-filled RAM disk of `size` bytes.
    pub fn new(size: usize) -> MemDriver {
        MemDriver::with_contents(vec![0; size])
    }

    /// A RAM disk holding `data`.
    pub fn with_contents(data: Vec<u8>) -> MemDriver {
        MemDriver {
            data: RwLock::new(data),
            ready: Ready::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.data.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A copy of its contents.
    pub fn contents(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Does the request; returns the completion's result.
    fn execute(&self, req: &mut Request) -> i64 {
        let off = req.offset as usize;
        match req.op {
            Op::Read | Op::Readv => {
                let data = self.data.read().unwrap_or_else(|e| e.into_inner());
                let src = data.get(off..).unwrap_or(&[]);
                req.buf.scatter(src) as i64
            }
            Op::Write | Op::Writev => {
                let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
                if req.buf.is_empty() {
                    return 0;
                }
                if off >= data.len() {
                    return -i64::from(libc::ENOSPC);
                }
                req.buf.gather(&mut data[off..]) as i64
            }
            Op::Fsync | Op::Fdatasync => 0,
        }
    }
}

// SAFETY: buffers are only touched inside `queue`, while the request is ours, and go back with
// the completion; a read reports exactly the bytes `scatter` copied.
unsafe impl Driver for MemDriver {
    fn name(&self) -> &str {
        "mem"
    }

    fn queue(&self, mut req: Request) -> Result<(), Rejected> {
        if let Err(e) = req.validate() {
            return Err(Rejected::new(e, req));
        }
        let res = self.execute(&mut req);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.ready.push([Completion::new(req.user_data, res, req.buf)]);
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion>,
    ) -> io::Result<usize> {
        // Everything completes inline, so waiting only helps if another thread queues meanwhile.
        let n = self.ready.wait(min, max, deadline(timeout), out, true)?;
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
        Ok(n)
    }

    fn wake(&self) {
        self.ready.wake();
    }

    fn cancel(&self, _user_data: u64) -> io::Result<CancelOutcome> {
        // Nothing is ever in progress: it is done, or it never was.
        Ok(CancelOutcome::NotFound)
    }

    fn eventfd(&self) -> io::Result<BorrowedFd<'_>> {
        self.ready.eventfd()
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}
