//! The words kernel AIO, io_uring and the thread pool share for one request: its `RWF_*` flags
//! and its I/O priority. Defined here once, below [`crate::kernel`] and [`crate::driver`] (which
//! both re-export them).

use bitflags::bitflags;

use crate::sys;

bitflags! {
    /// Per-request `RWF_*` flags (`aio_rw_flags`), as for `preadv2(2)`/`pwritev2(2)`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RwFlags: i32 {
        /// `RWF_HIPRI`: high priority; kernel AIO accepts it but does not poll.
        const HIPRI = sys::RWF_HIPRI;
        /// `RWF_DSYNC`: this write is `O_DSYNC`.
        const DSYNC = sys::RWF_DSYNC;
        /// `RWF_SYNC`: this write is `O_SYNC`.
        const SYNC = sys::RWF_SYNC;
        /// `RWF_NOWAIT`: fail with `EAGAIN` rather than block (data not cached, locks held).
        const NOWAIT = sys::RWF_NOWAIT;
        /// `RWF_APPEND`: this write appends, whatever the offset.
        const APPEND = sys::RWF_APPEND;
    }
}

/// An I/O priority (`IOPRIO_PRIO_VALUE(class, level)`), see ioprio_set(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoPriority(u16);

/// I/O scheduling classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoClass {
    /// `IOPRIO_CLASS_RT`: served first (needs `CAP_SYS_ADMIN` or `CAP_SYS_NICE`).
    RealTime,
    /// `IOPRIO_CLASS_BE`: the default class.
    BestEffort,
    /// `IOPRIO_CLASS_IDLE`: served only when nothing else waits.
    Idle,
}

impl IoPriority {
    /// `IOPRIO_PRIO_VALUE(class, level)`; `level` is 0 (highest) to 7, and is clamped.
    pub const fn new(class: IoClass, level: u8) -> IoPriority {
        let class = match class {
            IoClass::RealTime => sys::IOPRIO_CLASS_RT,
            IoClass::BestEffort => sys::IOPRIO_CLASS_BE,
            IoClass::Idle => sys::IOPRIO_CLASS_IDLE,
        };
        let level = if level > 7 { 7 } else { level as u16 };
        IoPriority(class << sys::IOPRIO_CLASS_SHIFT | level)
    }

    /// The raw value, as `aio_reqprio` carries it.
    pub const fn raw(self) -> u16 {
        self.0
    }
}
