//! `aio`: Linux asynchronous I/O from the command line, on the `aio` crate's driver layer.
//!
//! - `aio bench`: fio-style jobs on every engine (io_uring, kernel AIO, thread pool, POSIX AIO,
//!   pread/pwrite) side by side.
//! - `aio cp SRC DST`: a pipelined asynchronous copy that keeps holes and never leaves a
//!   half-written DST.
//! - `aio info [PATH]`: what this kernel and PATH's filesystem support, and which engine is
//!   chosen for it.
//! - `aio mount BACKING_DIR MOUNTPOINT`: a FUSE mirror of BACKING_DIR served by the driver
//!   layer, with fault rules (`--fault SPEC`), held unsynced writes and simulated crashes;
//!   `aio fault MOUNTPOINT …` changes its rules at run time.
//!
//! Exit status: 0 success, 1 failure at run time, 2 bad usage.

mod bench;
mod cleanup;
mod cp;
mod info;
mod mount;
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
    /// Mirror BACKING_DIR at MOUNTPOINT through FUSE, every read, write and fsync served by the
    /// driver layer, with fault rules and crash simulation.
    Mount(mount::MountArgs),
    /// Add, list or clear the fault rules of a running `aio mount`, or crash it.
    Fault(mount::FaultArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Bench(a) => ("bench", bench::run(a)),
        Command::Cp(a) => ("cp", cp::run(a)),
        Command::Info(a) => ("info", info::run(a)),
        Command::Mount(a) => ("mount", mount::run(a)),
        Command::Fault(a) => ("fault", mount::run_fault(a)),
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
