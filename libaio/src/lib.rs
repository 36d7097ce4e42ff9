//! `libaio.so.1`: a drop-in replacement for the libaio C library, in Rust, on [`aio::sys`].
//!
//! Programs linked against libaio (fio, QEMU, databases) run unchanged with this library in its
//! place: the same SONAME, the same symbols at the same versions (LIBAIO_0.1 compat symbols
//! included), the same `-errno` returns, and a header of our own, `include/libaio.h`, that is
//! source-compatible with the system's.
//!
//! - `exports`: the `extern "C"` entry points and the `.symver` directives that version them.
//! - `reap`: `io_getevents` — completions taken from the mmapped ring in user space when no
//!   other thread of the process is inside the system call on the same context, the system call
//!   otherwise.
//! - `registry`: the per-context state that makes that safe (one user-space reaper at a time,
//!   a count of threads inside the system call), created by `io_setup`, dropped by `io_destroy`.
//! - `faults`: `AIO_FAULT` (fault rules, made around the kernel) and `AIO_STATS` (one line of
//!   statistics at exit).
//! - `sys`: the six system calls in their raw C form (pointers passed through to the kernel
//!   unread, results as `-errno`, `errno` untouched), which is what a C ABI needs.
//!
//! No entry point unwinds: a panic unwinding out of an `extern "C"` function aborts the process
//! (guaranteed since Rust 1.81, this crate's `rust-version` is 1.90), and C callbacks run by
//! `io_queue_run` are called through an `extern "C-unwind"` pointer, so a C++ exception thrown
//! by one also ends at that boundary with an abort rather than undefined behaviour.

mod exports;
mod faults;
mod ptr;
mod reap;
mod registry;
mod symver;
mod sys;
