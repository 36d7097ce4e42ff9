//! Reading a file with `aio::File` from a tokio runtime: a task drives the reactor through its
//! eventfd, and any number of tasks await reads.
//!
//! ```text
//! cargo run --release -p aio --features tokio --example tokio_read -- PATH
//! ```

use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/etc/os-release".into());
    let reactor = aio::Reactor::global()?;
    let driver = aio::rt::tokio::spawn_driver(Arc::clone(&reactor));
    let file = aio::File::options().read(true).reactor(reactor).open(&path)?;
    let size = file.std().metadata()?.len();
    // Eight tasks, each reading its share of the file.
    let chunk = size.div_ceil(8).max(1);
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let file = file.clone();
            tokio::spawn(async move {
                let (res, buf) = file.read_at(Vec::with_capacity(chunk as usize), i * chunk).await;
                res.map(|n| (i, n, buf))
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        let (i, n, _buf) = t.await.expect("task")?;
        println!("task {i}: {n} bytes at offset {}", i * chunk);
        total += n as u64;
    }
    println!("read {total} of {size} bytes of {path} through {}", file.reactor().driver().name());
    driver.abort();
    Ok(())
}
