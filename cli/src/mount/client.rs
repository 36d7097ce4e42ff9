//! `aio fault MOUNTPOINT add SPEC|list|clear|crash|status`: changes the fault rules of a running
//! `aio mount`, or crashes it, over its control socket.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::control;
use crate::util::Failure;

/// `aio fault`: talk to a running `aio mount`.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Where the `aio mount` is mounted.
    mountpoint: PathBuf,
    #[command(subcommand)]
    command: FaultCommand,
}

#[derive(Debug, Subcommand)]
enum FaultCommand {
    /// Add a fault rule (a SPEC such as op=read,path=*.bad,errno=EIO).
    Add {
        /// The rule: comma-separated key=value pairs (see `aio mount --help`).
        spec: String,
    },
    /// List the rules, with how often each matched and fired.
    List,
    /// Remove every rule.
    Clear,
    /// Simulate a power failure now: unsynced writes are lost (needs --lose-unsynced).
    Crash,
    /// Show the driver, requests in flight and held data.
    Status,
}

/// Runs `aio fault`.
pub fn run(args: FaultArgs) -> Result<(), Failure> {
    let line = match &args.command {
        FaultCommand::Add { spec } => {
            // Checked here first, so a typo is a usage error whether or not a daemon runs.
            spec.parse::<aio::faults::Rule>()
                .map_err(|e| Failure::usage(format!("bad fault rule {spec:?}: {e}")))?;
            format!("add {spec}")
        }
        FaultCommand::List => "list".into(),
        FaultCommand::Clear => "clear".into(),
        FaultCommand::Crash => "crash".into(),
        FaultCommand::Status => "status".into(),
    };
    match control::request(&args.mountpoint, &line) {
        Ok(body) => {
            print!("{body}");
            Ok(())
        }
        Err(msg) => Err(Failure::run(msg)),
    }
}
