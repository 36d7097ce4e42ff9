//! POSIX AIO (`<aio.h>`) on a real asynchronous engine.
//!
//! glibc implements `aio_read` and friends with threads doing blocking `pread`/`pwrite`, one
//! request at a time per file descriptor. This module keeps glibc's API and ABI — the same
//! `struct aiocb`, results in its `__error_code` and `__return_value` fields — and runs the
//! requests on a [`Driver`]: io_uring when the kernel allows it, else kernel AIO (with its
//! thread pool for buffered files), else the pool ([`select_shared`]; `AIO_ENGINE` forces
//! one). Many requests on one descriptor are in flight at once.
//!
//! The functions here take the C structures by raw pointer and report errors as
//! `Err(`[`Errno`]`)`; the `libposixaio.so` C library wraps them into `-1` and `errno`.
//!
//! # Where things are
//!
//! - `ops`: the nine operations, each reading top to bottom;
//! - `runtime`: the engine behind them, set up on first use (the driver chosen, faults and
//!   statistics applied, fork and exit handled);
//! - `submit`: a request into the table and to the driver, or held, or refused; the inline
//!   path;
//! - `complete`: the reaper role, a request's end, and what follows the state lock's release;
//! - `table`: the request table (each request in flight, per-descriptor write ordering,
//!   `lio_listio` lists);
//! - `wait`: waiting with signals handled, and the helper thread;
//! - `notify`: the `sigevent` notifications;
//! - `errno`: the error type; [`slots`]: a safe owner of aiocbs and their buffers.
//!
//! Every access to a program's `struct aiocb` goes through one view,
//! [`AiocbRef`](crate::sys::posix::AiocbRef), in the raw layer.
//!
//! # How requests progress
//!
//! A request is submitted to the kernel when it is queued (`aio_read`, `aio_write`,
//! `aio_fsync`; `lio_listio` submits its whole list at once), and the submitting thread takes
//! the completions that are ready in the same call to the driver (an io_uring read of cached
//! data is done by then). Before that, a small read or write of cached data is tried in the
//! submitting thread with `RWF_NOWAIT` (the inline path, [`Driver::try_now_raw`]): served
//! there, it never enters the engine's table. A read or write of 128 KiB or more of a buffered
//! file goes to the kernel's workers instead of being copied inside that call, so a submission
//! returns in about the same time whatever its size. Completions are then taken, one thread at
//! a time, by the threads that wait (`aio_suspend`, `lio_listio(LIO_WAIT)`, `aio_cancel`) and
//! by the submitters — every submission, also one served inline, takes what the engine has
//! finished, so a program that polls between its submissions (fio's posixaio engine) sees its
//! requests end without waiting and without the helper; `aio_error` and `aio_return` only read
//! the status, as they must to be async-signal-safe. One helper thread takes them when no one
//! else does: while requests that want a signal or a thread (`SIGEV_SIGNAL`, `SIGEV_THREAD`,
//! `SIGEV_THREAD_ID`) are in flight, and when a program polls `aio_error` for a while (50 µs)
//! in which no thread took completions (no wait, no submission). It runs while requests are in
//! flight and exits a second after the last. It, and any thread the driver starts (the pool's),
//! block every signal, as glibc's helper threads do, so the program's signals go to the
//! program's threads.
//!
//! A waiting thread looks at the statuses with every signal blocked and waits with its own
//! mask installed atomically for the wait (`io_uring_enter` with a signal mask, `ppoll`): a
//! signal the program lets in ends the wait (`EINTR`) whenever it arrives — none is handled
//! between a look and a wait that then goes on for good.
//!
//! # Semantics
//!
//! POSIX's, and glibc's answers where POSIX leaves room, except where this library answers
//! differently on purpose: a never-submitted aiocb, `aio_return` before completion, bad
//! sigevents and null aiocbs refused, `aio_cancel` of a read still waiting on a pipe or socket,
//! `SIGEV_THREAD_ID`, requests inherited across `fork`, [`AIO_MAX`] and [`AIO_LISTIO_MAX`]. The
//! specification — every rule, each deliberate difference from glibc with its reason, the
//! limits — is `docs/posix.md` in the repository; the C suite in `posixaio/tests/` checks it
//! against glibc line by line.
//!
//! Invariants the code keeps: `aio_error` and `aio_return` take no lock, allocate and free
//! nothing and start no thread, so a signal handler may call them; a completion's status is
//! final before its notification is sent; a request reported cancelled moved no byte, and when
//! `aio_cancel` answers, every status it speaks for is final; a request belongs to the process,
//! not to the thread that submitted it.
//!
//! [`Driver`]: crate::driver::Driver
//! [`Driver::try_now_raw`]: crate::driver::Driver::try_now_raw
//! [`select_shared`]: crate::driver::select_shared

mod complete;
mod errno;
mod notify;
mod ops;
mod runtime;
pub mod slots;
mod submit;
mod table;
mod wait;

pub use errno::Errno;
pub use ops::{
    aio_cancel, aio_error, aio_fsync, aio_read, aio_return, aio_suspend, aio_suspend_timespec,
    aio_write, lio_listio,
};
pub use runtime::{aio_init, engine_selection, in_flight, inline_stats};
pub use slots::Slots;

/// Most entries in one `lio_listio` call.
pub const AIO_LISTIO_MAX: usize = 1 << 16;
/// Most requests in flight at once.
pub const AIO_MAX: usize = 1 << 16;
