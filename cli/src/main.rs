//! `aio`: Linux asynchronous I/O from the command line, on the `aio` crate's driver layer.
//!
//! - `aio bench`: fio-style jobs on every engine (io_uring, kernel AIO, thread pool, POSIX AIO,
//!   pread/pwrite) side by side.
//! - `aio cp SRC DST`: a pipelined asynchronous copy that keeps holes and never leaves a
//!   half-written DST.
//! - `aio info [PATH]`: what this kernel and PATH's filesystem support, and which engine is
//!   chosen for it.
//!
//! Exit status: 0 success, 1 failure at run time, 2 bad usage.

mod bench;
mod cleanup;
mod cp;
mod cptemp;
mod info;
mod ui;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Linux asynchronous I/O: benchmarks, copies, and what this system supports.
#[derive(Debug, Parser)]
#[command(name = "aio", version, propagate_version = true, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the same fio-style job on every engine (uring, kernel, pool, posix, sync) and
    /// compare them.
    Bench(bench::BenchArgs),
    /// Copy SRC to DST with asynchronous I/O, many requests in flight.
    Cp(cp::CpArgs),
    /// Show what this kernel supports, and for PATH its filesystem, O_DIRECT and engine.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Bench(a) => ("bench", bench::run(a)),
        Command::Cp(a) => ("cp", cp::run(a)),
        Command::Info(a) => ("info", info::run(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("aio {name}: {}", f.msg);
            if f.code == util::EXIT_USAGE {
                eprintln!("Try 'aio {name} --help' for more information.");
            }
            ExitCode::from(f.code)
        }
    }
}
