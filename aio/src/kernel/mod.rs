//! Native kernel AIO: what libaio wraps, as a Rust API that makes the system calls itself.
//!
//! - [`Context`] is the safe layer: requests ([`Iocb`], built like libaio's `io_prep_*`
//!   helpers) own their buffers while the kernel works on them and give them back in their
//!   [`Completion`]; callbacks ([`Iocb::on_complete`]) play the part of `io_set_callback` and
//!   [`Context::run`] that of `io_queue_run`.
//! - [`RawContext`] is the unsafe layer beneath it, for callers that manage request memory
//!   themselves: `io_submit` and `io_cancel` on raw [`iocb`](crate::sys::iocb)s.
//!
//! Both reap from the mmapped completion ring in user space when its header is valid
//! ([`ReapMode::Ring`]) and fall back to `io_getevents` otherwise.
//!
//! Kernel AIO is truly asynchronous only for `O_DIRECT` files (and block devices): on a buffered
//! file `io_submit` does the I/O before it returns. Direct I/O needs aligned buffers, lengths
//! and offsets: see [`crate::align::DioAlign`] and [`crate::AlignedBuf`].
//!
//! See io_setup(2), io_submit(2), io_getevents(2), io_cancel(2), io_destroy(2) and aio(7).

mod context;
mod raw;
mod request;

pub use context::{CancelStatus, Context};
pub use raw::{RawContext, ReapMode};
pub use request::{
    Callback, Completion, IoClass, IoPriority, Iocb, Op, PollFlags, RequestId, RwFlags, SubmitError,
};
