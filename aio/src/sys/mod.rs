//! The raw layer: exact kernel layouts and one function per system call.
//!
//! This is the one module full of `unsafe`: every layout here is the kernel's (asserted at
//! compile time in [`abi`]), every system call has a single wrapper returning `io::Result`, and
//! every `unsafe` block says why it is sound. The layers above ([`crate::kernel`], …) are built
//! on these functions and do not issue system calls of their own; so is the `aio` command,
//! whose file, process and signal calls ([`fs`], [`fsops`], [`proc`], [`signal`]) are here
//! too.

pub mod abi;
pub mod aio;
pub mod fs;
pub mod fsops;
pub mod io;
pub mod posix;
pub mod proc;
pub mod ring;
pub mod signal;
pub mod uring;
pub mod valgrind;

pub use abi::*;
