//! Temporary files removed when the process is interrupted (`SIGINT`, `SIGTERM`, `SIGHUP`):
//! `aio bench`'s data file and `aio cp`'s half-made copy. The handler unlinks the registered
//! paths, then lets the signal take its usual course (the process ends with that signal); the
//! mechanism is [`aio::sys::signal::remove_on_signal`].

pub use aio::sys::signal::{remove_on_signal, RemoveOnSignal as Registered};
