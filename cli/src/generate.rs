//! `aio __generate man|completions DIR` (hidden): the man pages and shell completions made from
//! the command-line definitions, which `cargo xtask install` installs. Made by the binary
//! itself so that they always describe the options it has.
//!
//! - `man`: `aio.1` and a page per subcommand (`aio-bench.1`, `aio-cp.1`, ...), by `clap_mangen`.
//! - `completions`: `aio.bash`, `_aio` (zsh) and `aio.fish`, by `clap_complete`.

use std::ffi::OsString;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::util::{path_error, Failure};

/// The hidden first argument that asks for them.
pub const COMMAND: &str = "__generate";

/// The completion files: shell and file name.
pub const COMPLETIONS: [(Shell, &str); 3] =
    [(Shell::Bash, "aio.bash"), (Shell::Zsh, "_aio"), (Shell::Fish, "aio.fish")];

/// Runs `aio __generate WHAT DIR` (`args`: WHAT and DIR).
pub fn run(args: &[OsString]) -> Result<(), Failure> {
    let [what, dir] = args else {
        return Err(Failure::usage(format!("usage: aio {COMMAND} man|completions DIR")));
    };
    let dir = Path::new(dir);
    if !dir.is_dir() {
        return Err(Failure::run(format!("{} is not a directory", dir.display())));
    }
    match what.to_str() {
        Some("man") => clap_mangen::generate_to(crate::Cli::command(), dir)
            .map_err(|e| Failure::run(path_error("cannot write man pages in", dir, &e))),
        Some("completions") => {
            for (shell, name) in COMPLETIONS {
                let mut text = Vec::new();
                clap_complete::generate(shell, &mut crate::Cli::command(), "aio", &mut text);
                write(&dir.join(name), &text)?;
            }
            Ok(())
        }
        _ => {
            Err(Failure::usage(format!("{}: expected man or completions", what.to_string_lossy())))
        }
    }
}

fn write(path: &Path, text: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure::run(path_error("cannot write", path, &e)))
}
