//! Dropping completions, requests and whole contexts with requests in flight, thousands of
//! times, never lets the kernel write into memory the program has freed.
//!
//! Each round submits O_DIRECT reads (which the device completes later) and drops the context
//! at once. The memory freed then is immediately reused for buffers filled with a sentinel
//! byte; if the kernel were still writing into the freed buffers, file data would appear in
//! them. Every buffer must also be dropped exactly once.

mod common;

use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio::kernel::{Context, Iocb, PollFlags};
use aio::AlignedBuf;
use common::*;

const SENTINEL: u8 = 0xA5;
const BLOCK: usize = 16 << 10;

fn rounds() -> usize {
    std::env::var("AIO_DROP_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)
}

/// Threads dropping contexts at once: `io_destroy` sleeps for an RCU grace period (tens of
/// milliseconds), so rounds run side by side to fit thousands in a few seconds.
const THREADS: usize = 16;

#[test]
fn dropping_contexts_with_reads_in_flight_never_corrupts_memory() {
    let dir = test_dir();
    let (align, direct) = match direct_support(dir.path()) {
        Ok(a) => (a.buffer_align(), true),
        Err(reason) => {
            skip("dropping_contexts_with_reads_in_flight (O_DIRECT)", &reason);
            (4096, false)
        }
    };
    let path = dir.path().join("drop");
    // File data never contains the sentinel byte.
    let data: Vec<u8> = pattern(32 << 20, 31).into_iter().map(|b| b & 0x7f).collect();
    make_file(&path, &data);
    let file = Arc::new(if direct { open_direct(&path) } else { File::open(&path).unwrap() });

    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let in_flight_at_drop = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let rounds = rounds();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (file, drops, made) = (Arc::clone(&file), Arc::clone(&drops), Arc::clone(&made));
            let in_flight_at_drop = Arc::clone(&in_flight_at_drop);
            std::thread::spawn(move || {
                let mut sentinels: Vec<AlignedBuf> = Vec::new();
                for round in (t..rounds).step_by(THREADS) {
                    let ctx = Context::<Tracked>::new(64).unwrap();
                    for i in 0..16u64 {
                        let off = ((round as u64 * 131 + i * 977) % 2000) * BLOCK as u64;
                        let buf = Tracked::new(BLOCK, align, &drops);
                        made.fetch_add(1, Ordering::SeqCst);
                        ctx.submit(Iocb::pread(&*file, buf, off)).unwrap();
                    }
                    // Some rounds take a few completions first and drop them at once.
                    if round % 3 == 1 {
                        drop(ctx.get_events(1, 4, Some(Duration::from_secs(5))).unwrap());
                    }
                    in_flight_at_drop.fetch_add(ctx.in_flight(), Ordering::SeqCst);
                    drop(ctx);
                    // The freed memory goes straight back into use, holding sentinels.
                    for _ in 0..16 {
                        let mut s = AlignedBuf::new(BLOCK, align);
                        s.resize(BLOCK, SENTINEL);
                        sentinels.push(s);
                    }
                    if sentinels.len() > 16 * 32 {
                        check_and_free(&mut sentinels);
                    }
                }
                // Give any stray write time to land, then check the last ones.
                std::thread::sleep(Duration::from_millis(50));
                check_and_free(&mut sentinels);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a dropping thread failed");
    }
    let (made, in_flight) = (made.load(Ordering::SeqCst), in_flight_at_drop.load(Ordering::SeqCst));
    assert_eq!(drops.load(Ordering::SeqCst), made, "every buffer dropped exactly once");
    eprintln!(
        "{rounds} rounds in {:.1?}: {in_flight} of {made} reads still in flight when their \
         context was dropped",
        start.elapsed()
    );
    if direct {
        assert!(in_flight > 0, "no round dropped a context with reads in flight");
    }
}

fn check_and_free(sentinels: &mut Vec<AlignedBuf>) {
    for (i, s) in sentinels.iter().enumerate() {
        if let Some(pos) = s.iter().position(|&b| b != SENTINEL) {
            panic!("sentinel buffer {i} was overwritten at byte {pos}: {:#x}", s[pos]);
        }
    }
    sentinels.clear();
}

#[test]
fn dropping_a_context_with_polls_and_callbacks_pending() {
    let drops = Arc::new(AtomicUsize::new(0));
    let called = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let (reader, _writer) = std::io::pipe().unwrap();
        let ctx = Context::<Tracked>::new(8).unwrap();
        for _ in 0..4 {
            ctx.submit(Iocb::poll(&reader, PollFlags::IN)).unwrap();
        }
        // A read whose callback holds a buffer and would count a call.
        let f = File::open("/dev/zero").unwrap();
        let buf = Tracked::new(512, 512, &drops);
        let c = Arc::clone(&called);
        ctx.submit(Iocb::pread(&f, buf, 0).on_complete(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        // io_destroy cancels the polls and waits; the callback is dropped uncalled.
        drop(ctx);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 50);
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[test]
fn a_leaked_request_leaks_but_corrupts_nothing() {
    let f = File::open("/dev/zero").unwrap();
    let ctx = Context::<Vec<u8>>::new(4).unwrap();
    let mut req = Iocb::pread(&f, vec![7u8; 64], 0);
    // A request that is built but never submitted is plain data: forgetting it leaks its buffer.
    std::mem::forget(req);
    req = Iocb::pread(&f, vec![7u8; 64], 0);
    ctx.submit(req).unwrap();
    let c = ctx.get_events(1, 1, Some(Duration::from_secs(5))).unwrap().pop().unwrap();
    // Forgetting a completion leaks its buffer too; the kernel is done with it.
    assert_eq!(c.result().unwrap(), 64);
    std::mem::forget(c);
    assert_eq!(ctx.in_flight(), 0);
}
