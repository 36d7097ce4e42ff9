//! Linux asynchronous I/O in Rust.
//!
//! The crate implements the layers of Linux asynchronous file I/O:
//!
//! - [`sys`]: the raw kernel ABI (`struct iocb`, `struct io_event`, the completion ring) and one
//!   wrapper per system call. The one module where `unsafe` lives.
//! - [`kernel`]: native kernel AIO (`io_setup`, `io_submit`, `io_getevents`, …), the interface
//!   libaio wraps, with a safe layer whose requests own their buffers.
//! - [`posix`]: POSIX AIO (`aio_read`, `aio_suspend`, `lio_listio`, …) on glibc's ABI, run on
//!   a driver; [`posix::Slots`] owns a set of requests and their buffers, for safe use.
//! - [`buf`] and [`align`]: owned buffers and the `O_DIRECT` alignment they need.
//! - [`driver`]: the driver contract (a device's `aio_read`/`aio_write`/`aio_fsync`) and its
//!   drivers: io_uring, kernel AIO, a thread pool, a RAM disk and a fault injector.
//! - [`mod@file`] and [`rt`]: the async API — [`File`] with owned-buffer futures (`read_at`,
//!   `write_at`, …) on any executor, driven by a [`Reactor`] over a driver.
//! - [`faults`]: fault rules as data (`op=read,path=*.bad,errno=EIO`), decided from a seed and
//!   logged as JSON lines: the SPECs of `aio mount` and `AIO_FAULT`; and [`stats`]: the
//!   counters the C libraries print with `AIO_STATS=1`.
//! - [`eventfd`]: completion notification an epoll loop or async runtime can watch.
//! - [`flags`]: the `RWF_*` flags and I/O priorities every layer shares.
//!
//! The design, each face's semantics and the benchmarks are described in the repository's
//! `docs/` directory (`design.md`, `drivers.md`, `posix.md`, `libaio.md`, `benchmarks.md`).

#![deny(missing_docs)]

mod deadline;
pub mod stats;

pub mod align;
pub mod buf;
pub mod driver;
pub mod eventfd;
pub mod faults;
pub mod file;
pub mod flags;
pub mod kernel;
pub mod posix;
pub mod rt;
pub mod sys;

pub use align::DioAlign;
pub use buf::{AlignedBuf, IoBuf, IoBufMut, Slice};
pub use eventfd::EventFd;
pub use file::{File, OpenOptions};
pub use rt::{block_on, Reactor};

// The Rust examples of the README and of docs/ are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../../docs/design.md")]
mod design_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../../docs/drivers.md")]
mod drivers_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../../docs/libaio.md")]
mod libaio_doctests {}
