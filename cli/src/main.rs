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
//! - `aio run -- PROGRAM [ARGS...]`: an unmodified program on the project's C libraries.
//!
//! Exit status: 0 success, 1 failure at run time, 2 bad usage.
//!
//! No `unsafe` here: every system call goes through the library's raw layer, [`aio::sys`].

#![forbid(unsafe_code)]

mod bench;
mod cleanup;
mod cp;
mod cptemp;
mod generate;
mod info;
mod mount;
mod run;
mod ui;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Linux asynchronous I/O: benchmarks, copies, what this system supports, and any program on
/// the project's libraries.
#[derive(Debug, Parser)]
#[command(name = "aio", version, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the same fio-style job on every engine (uring, kernel, pool, posix, file, sync) and
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
    /// Run an unmodified program on the project's libaio.so.1 and libposixaio.so.
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    // `aio __generate man|completions DIR`, for `cargo xtask install`: outside the definitions
    // it writes, so that neither the pages nor the completions offer it.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == generate::COMMAND) {
        return match generate::run(&argv[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => {
                eprintln!("aio {}: {}", generate::COMMAND, f.msg);
                ExitCode::from(f.code)
            }
        };
    }
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Bench(a) => ("bench", bench::run(a)),
        Command::Cp(a) => ("cp", cp::run(a)),
        Command::Info(a) => ("info", info::run(a)),
        Command::Mount(a) => ("mount", mount::run(a)),
        Command::Fault(a) => ("fault", mount::run_fault(a)),
        Command::Run(a) => ("run", run::run(a)),
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
