//! What the seed's `posix_aio_read.c` does, with native kernel AIO: submit one read of the first
//! 1024 bytes of a file, wait for it, print the byte count.
//!
//! ```text
//! cargo run --release -p aio --example read_file -- PATH
//! ```

use std::fs::File;
use std::process::ExitCode;

use aio::kernel::{Context, Iocb};

const BUFFER_SIZE: usize = 1024;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: read_file PATH");
        return ExitCode::from(2);
    };
    let shown = path.to_string_lossy().into_owned();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("read_file: cannot open {shown}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = match Context::<Vec<u8>>::new(1) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("read_file: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = ctx.submit(Iocb::pread(&file, Vec::with_capacity(BUFFER_SIZE), 0)) {
        eprintln!("read_file: io_submit of a read of {shown}: {e}");
        return ExitCode::FAILURE;
    }
    let done = match ctx.get_events(1, 1, None) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("read_file: io_getevents: {e}");
            return ExitCode::FAILURE;
        }
    };
    match done[0].result() {
        Ok(n) => {
            println!("read {n} bytes from {shown}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("read_file: read of {shown}: {e}");
            ExitCode::FAILURE
        }
    }
}
