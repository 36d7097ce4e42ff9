//! The request table: each request in flight, what it is and where its aiocb is; per
//! descriptor, the writes in flight and the fsyncs held behind them; `lio_listio` lists.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use slab::Slab;

use super::notify::Notify;
use crate::stats::StatOp;
use crate::sys::posix::AiocbRef;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AioOp {
    Read,
    Write,
    Fsync,
    Fdatasync,
    /// A `lio_listio` entry with an opcode that is not `LIO_READ`, `LIO_WRITE` or `LIO_NOP`.
    Invalid,
}

impl AioOp {
    pub(super) fn stat_op(self) -> StatOp {
        match self {
            AioOp::Read => StatOp::Read,
            AioOp::Write => StatOp::Write,
            AioOp::Fsync => StatOp::Fsync,
            AioOp::Fdatasync => StatOp::Fdatasync,
            AioOp::Invalid => StatOp::Other,
        }
    }
}

/// One request in flight.
pub(super) struct Req {
    /// The program's aiocb, where its status goes.
    pub(super) cb: AiocbRef,
    pub(super) fd: i32,
    pub(super) kind: AioOp,
    pub(super) seq: u64,
    pub(super) notify: Notify,
    pub(super) list: Option<usize>,
    /// Whether `aio_cancel` asked the driver to cancel it: only then is an `ECANCELED`
    /// completion the request's end (see [`Runtime::progress`]).
    pub(super) cancel_requested: bool,
    /// The descriptor has no file position (a socket, a pipe, …): the offset is ignored, as
    /// glibc's `read`/`write` fallback does. Learnt from an `ESPIPE`.
    pub(super) stream: bool,
}

#[derive(Default)]
pub(super) struct FdState {
    /// Sequence numbers of writes in flight.
    pub(super) writes: BTreeSet<u64>,
    /// Fsyncs held until the writes queued before them complete: (sequence, request key).
    pub(super) fsyncs: Vec<(u64, usize)>,
}

pub(super) struct List {
    /// Members not yet complete, plus one while the list is being queued.
    pub(super) remaining: usize,
    pub(super) notify: Notify,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) reqs: Slab<Req>,
    /// In-flight requests by aiocb address.
    pub(super) fds: HashMap<i32, FdState, BuildHasherDefault<FdHasher>>,
    pub(super) lists: Slab<List>,
    /// Requests the driver could not take yet (it was full), by key.
    pub(super) backlog: VecDeque<usize>,
    pub(super) seq: u64,
    /// In-flight requests and lists that want a signal or a thread.
    pub(super) async_notify: usize,
    /// Calls of `aio_cancel` waiting for the requests they cancelled to complete.
    pub(super) cancelling: usize,
    /// While there are: the sequence numbers of requests that ended cancelled.
    pub(super) cancelled: Vec<u64>,
}

impl State {
    /// The request `cb` belongs to, if it is in flight here.
    pub(super) fn key_of(&self, cb: AiocbRef) -> Option<usize> {
        let key = cb.key();
        self.reqs.get(key).filter(|r| r.cb == cb).map(|_| key)
    }

    /// Whether `cb`'s request is in flight here (not a copy's, not one that completed).
    pub(super) fn in_flight(&self, cb: AiocbRef) -> bool {
        self.key_of(cb).is_some()
    }
}

/// A hasher for descriptor numbers: they are small and distinct, so the number is the hash.
#[derive(Default)]
pub(super) struct FdHasher(u64);

impl Hasher for FdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = n as u32 as u64;
    }
}
