//! Linux asynchronous I/O in Rust.
//!
//! The crate implements the layers of Linux asynchronous file I/O:
//!
//! - [`sys`]: the raw kernel ABI (`struct iocb`, `struct io_event`, the completion ring) and one
//!   wrapper per system call. The one module where `unsafe` lives.
//! - [`kernel`]: native kernel AIO (`io_setup`, `io_submit`, `io_getevents`, …), the interface
//!   libaio wraps, with a safe layer whose requests own their buffers.
//! - [`buf`] and [`align`]: owned buffers and the `O_DIRECT` alignment they need.
//! - [`driver`]: the driver contract (a device's `aio_read`/`aio_write`/`aio_fsync`) and its
//!   drivers: io_uring, kernel AIO, a thread pool, a RAM disk and a fault injector.
//! - [`eventfd`]: completion notification an epoll loop or async runtime can watch.

#![deny(missing_docs)]

pub mod align;
pub mod buf;
pub mod driver;
pub mod eventfd;
pub mod kernel;
pub mod sys;

pub use align::DioAlign;
pub use buf::{AlignedBuf, IoBuf, IoBufMut, Slice};
pub use eventfd::EventFd;
