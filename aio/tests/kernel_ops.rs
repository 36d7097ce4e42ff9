//! Round trips of every native AIO operation on real files, with O_DIRECT where the directory
//! supports it and buffered otherwise.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aio::kernel::{Completion, Context, IoClass, IoPriority, Iocb, Op, RwFlags};
use aio::{AlignedBuf, IoBuf};
use common::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn reap_all<B: Send + 'static>(ctx: &Context<B>, n: usize) -> Vec<Completion<B>> {
    let mut done = Vec::new();
    while done.len() < n {
        let got = ctx.get_events(n - done.len(), n - done.len(), WAIT).expect("get_events");
        assert!(!got.is_empty(), "timed out waiting for {} completions", n - done.len());
        done.extend(got);
    }
    assert_eq!(ctx.in_flight(), 0);
    done.sort_by_key(|c| c.user_data());
    done
}

#[test]
fn direct_pwrite_fsync_pread_roundtrip() {
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip("direct_pwrite_fsync_pread_roundtrip", &reason),
    };
    let path = dir.path().join("data");
    let file = open_direct(&path);
    let ctx = Context::<AlignedBuf>::new(16).unwrap();
    let block = 64 << 10;
    let offsets = [0u64, 3 * block as u64, block as u64, 10 * block as u64];

    let mut writes: Vec<_> = offsets
        .iter()
        .enumerate()
        .map(|(i, &off)| {
            let buf = AlignedBuf::from_slice(&pattern(block, i as u64), align.buffer_align());
            Iocb::pwrite(&file, buf, off).user_data(i as u64).check_alignment(align)
        })
        .collect();
    let ids = ctx.submit_batch(&mut writes).unwrap();
    assert_eq!(ids.len(), offsets.len(), "io_submit should take the whole batch");
    assert!(writes.is_empty());
    for (i, c) in reap_all(&ctx, offsets.len()).into_iter().enumerate() {
        assert_eq!(c.user_data(), i as u64);
        assert_eq!(c.op(), Op::Pwrite);
        assert_eq!(c.result().unwrap(), block);
        assert_eq!(&c.into_buf().unwrap()[..], &pattern(block, i as u64)[..]);
    }

    ctx.submit(Iocb::fsync(&file).user_data(100)).unwrap();
    ctx.submit(Iocb::fdsync(&file).user_data(101)).unwrap();
    for c in reap_all(&ctx, 2) {
        assert_eq!(c.result().unwrap(), 0, "{:?}", c.op());
        assert!(c.into_buf().is_none());
    }

    for (i, &off) in offsets.iter().enumerate() {
        let req =
            Iocb::pread(&file, align.buffer(block), off).user_data(i as u64).check_alignment(align);
        ctx.submit(req).unwrap();
    }
    for (i, c) in reap_all(&ctx, offsets.len()).into_iter().enumerate() {
        assert_eq!(c.result().unwrap(), block);
        let buf = c.into_buf().unwrap();
        assert_eq!(buf.len(), block, "a read sets the buffer's length");
        assert_eq!(&buf[..], &pattern(block, i as u64)[..], "block {i}");
    }

    // An independent reader sees the same bytes, and the hole between blocks reads as zeros.
    let plain = File::open(&path).unwrap();
    let mut back = vec![0u8; block];
    plain.read_exact_at(&mut back, offsets[3]).unwrap();
    assert_eq!(back, pattern(block, 3));
    plain.read_exact_at(&mut back, 2 * block as u64).unwrap();
    assert!(back.iter().all(|&b| b == 0));
}

#[test]
fn direct_pwritev_preadv_roundtrip() {
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip("direct_pwritev_preadv_roundtrip", &reason),
    };
    let file = open_direct(&dir.path().join("vec"));
    let ctx = Context::<AlignedBuf>::new(4).unwrap();
    let a = align.buffer_align();
    let data = pattern(6 * a, 7);
    let parts = [a, 2 * a, 3 * a];
    let mut at = 0;
    let bufs: Vec<AlignedBuf> = parts
        .iter()
        .map(|&n| {
            at += n;
            AlignedBuf::from_slice(&data[at - n..at], a)
        })
        .collect();
    let offset = 16 * a as u64;
    ctx.submit(Iocb::pwritev(&file, bufs, offset).check_alignment(align)).unwrap();
    let c = reap_all(&ctx, 1).pop().unwrap();
    assert_eq!(c.op(), Op::Pwritev);
    assert_eq!(c.result().unwrap(), data.len());
    assert_eq!(c.into_bufs().len(), 3);

    // Read back into differently sized buffers; the last one is larger than what is left.
    let sizes = [2 * a, a, 4 * a];
    let bufs = sizes.iter().map(|&n| AlignedBuf::new(n, a)).collect();
    ctx.submit(Iocb::preadv(&file, bufs, offset).check_alignment(align)).unwrap();
    let c = reap_all(&ctx, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), data.len(), "short read at end of file");
    let bufs = c.into_bufs();
    assert_eq!(bufs.iter().map(|b| b.len()).collect::<Vec<_>>(), [2 * a, a, 3 * a]);
    let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(joined, data);
}

#[test]
fn direct_short_read_at_end_of_file() {
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip("direct_short_read_at_end_of_file", &reason),
    };
    let path = dir.path().join("short");
    let data = pattern(5000, 3);
    make_file(&path, &data);
    let file = open_direct(&path);
    let ctx = Context::<AlignedBuf>::new(4).unwrap();
    let cap = align.round_up(8192) as usize;
    ctx.submit(Iocb::pread(&file, align.buffer(cap), 0).user_data(0)).unwrap();
    ctx.submit(Iocb::pread(&file, align.buffer(cap), cap as u64).user_data(1)).unwrap();
    let done = reap_all(&ctx, 2);
    assert_eq!(done[0].result().unwrap(), 5000);
    assert_eq!(done[1].result().unwrap(), 0, "a read past the end returns 0");
    let mut done = done.into_iter();
    assert_eq!(&done.next().unwrap().into_buf().unwrap()[..], &data[..]);
    assert!(done.next().unwrap().into_buf().unwrap().is_empty());
}

#[test]
fn buffered_ops_with_vec_box_and_slices() {
    let dir = test_dir();
    let path = dir.path().join("buffered");
    let file = open_rw(&path);

    let ctx = Context::<Vec<u8>>::new(8).unwrap();
    ctx.submit(Iocb::pwrite(&file, pattern(10_000, 1), 0).user_data(1)).unwrap();
    let c = reap_all(&ctx, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), 10_000);

    // A read fills up to the Vec's capacity and sets its length.
    ctx.submit(Iocb::pread(&file, Vec::with_capacity(4096), 100).user_data(2)).unwrap();
    // A read of more than is left is short.
    ctx.submit(Iocb::pread(&file, Vec::with_capacity(8192), 6000).user_data(3)).unwrap();
    let done = reap_all(&ctx, 2);
    assert_eq!(done[0].result().unwrap(), 4096);
    assert_eq!(done[1].result().unwrap(), 4000);
    let mut done = done.into_iter();
    assert_eq!(done.next().unwrap().into_buf().unwrap(), pattern(10_000, 1)[100..4196]);
    assert_eq!(done.next().unwrap().into_buf().unwrap(), pattern(10_000, 1)[6000..]);

    // Vectored, with Vecs.
    ctx.submit(Iocb::pwritev(&file, vec![b"hello ".to_vec(), b"world".to_vec()], 20_000)).unwrap();
    assert_eq!(reap_all(&ctx, 1)[0].result().unwrap(), 11);
    let bufs = vec![Vec::with_capacity(3), Vec::with_capacity(100)];
    ctx.submit(Iocb::preadv(&file, bufs, 20_000)).unwrap();
    let c = reap_all(&ctx, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), 11);
    assert_eq!(c.into_bufs(), [b"hel".to_vec(), b"lo world".to_vec()]);

    // Boxed slices are fixed-size: a read fills what it can and says how much.
    let boxed = Context::<Box<[u8]>>::new(2).unwrap();
    boxed.submit(Iocb::pread(&file, vec![0u8; 64].into_boxed_slice(), 20_001)).unwrap();
    let c = reap_all(&boxed, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), 10);
    let back = c.into_buf().unwrap();
    assert_eq!(&back[..10], b"ello world");
    assert!(back[10..].iter().all(|&b| b == 0));

    // Slices of a buffer read and write only their range.
    let sliced = Context::<aio::Slice<Vec<u8>>>::new(2).unwrap();
    let src = b"0123456789".to_vec();
    sliced.submit(Iocb::pwrite(&file, src.slice(2..5), 30_000)).unwrap();
    assert_eq!(reap_all(&sliced, 1)[0].result().unwrap(), 3);
    let dst = vec![b'.'; 10];
    sliced.submit(Iocb::pread(&file, dst.slice(4..7), 30_000)).unwrap();
    let c = reap_all(&sliced, 1).pop().unwrap();
    assert_eq!(c.result().unwrap(), 3);
    assert_eq!(c.into_buf().unwrap().into_inner(), b"....234...");
}

#[test]
fn rw_flags_dsync_sync_hipri_append_nowait() {
    let dir = test_dir();
    let path = dir.path().join("flags");
    let file = open_rw(&path);
    let ctx = Context::<Vec<u8>>::new(8).unwrap();
    for (i, flags) in [RwFlags::DSYNC, RwFlags::SYNC, RwFlags::HIPRI].into_iter().enumerate() {
        let data = pattern(4096, i as u64);
        ctx.submit(Iocb::pwrite(&file, data, 4096 * i as u64).rw_flags(flags)).unwrap();
        assert_eq!(reap_all(&ctx, 1)[0].result().unwrap(), 4096, "{flags:?}");
    }
    // RWF_APPEND writes at the end whatever the offset says.
    ctx.submit(Iocb::pwrite(&file, b"tail".to_vec(), 0).rw_flags(RwFlags::APPEND)).unwrap();
    assert_eq!(reap_all(&ctx, 1)[0].result().unwrap(), 4);
    let contents = std::fs::read(&path).unwrap();
    assert_eq!(contents.len(), 3 * 4096 + 4);
    assert_eq!(&contents[..4096], &pattern(4096, 0)[..]);
    assert_eq!(&contents[3 * 4096..], b"tail");

    // RWF_NOWAIT on cached data either works or says it would block / is not supported.
    ctx.submit(Iocb::pread(&file, Vec::with_capacity(4096), 0).rw_flags(RwFlags::NOWAIT)).unwrap();
    let c = reap_all(&ctx, 1).pop().unwrap();
    match c.result() {
        Ok(n) => {
            assert_eq!(n, 4096);
            assert_eq!(c.into_buf().unwrap(), pattern(4096, 0));
        }
        Err(e) => assert!(
            matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EOPNOTSUPP)),
            "RWF_NOWAIT gave {e}"
        ),
    }
}

#[test]
fn io_priorities() {
    let dir = test_dir();
    let path = dir.path().join("prio");
    make_file(&path, &pattern(8192, 9));
    let file = File::open(&path).unwrap();
    let ctx = Context::<Vec<u8>>::new(8).unwrap();
    let prios = [
        IoPriority::new(IoClass::BestEffort, 0),
        IoPriority::new(IoClass::BestEffort, 7),
        IoPriority::new(IoClass::Idle, 0),
        IoPriority::new(IoClass::RealTime, 3),
    ];
    for (i, p) in prios.iter().enumerate() {
        let req = Iocb::pread(&file, Vec::with_capacity(4096), 4096).ioprio(*p).user_data(i as u64);
        match ctx.submit(req) {
            Ok(_) => {}
            // The real-time class needs privilege.
            Err(e) if i == 3 && e.error().raw_os_error() == Some(libc::EPERM) => {
                skip("io_priorities (real-time class)", "EPERM: not privileged");
            }
            Err(e) => panic!("priority {p:?}: {e}"),
        }
    }
    for c in reap_all(&ctx, ctx.in_flight()) {
        assert_eq!(c.result().unwrap(), 4096);
        assert_eq!(c.into_buf().unwrap(), pattern(8192, 9)[4096..]);
    }
}

#[test]
fn callbacks_chain_reads_into_writes() {
    let dir = test_dir();
    let src_path = dir.path().join("src");
    let dst_path = dir.path().join("dst");
    let data = pattern(64 * 1024 + 77, 11);
    make_file(&src_path, &data);
    let src = Arc::new(File::open(&src_path).unwrap());
    let dst = Arc::new(open_rw(&dst_path));
    let ctx = Context::<Vec<u8>>::new(32).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let block = 4096;
    let blocks = data.len().div_ceil(block);
    for i in 0..blocks {
        let (dst, calls) = (Arc::clone(&dst), Arc::clone(&calls));
        let off = (i * block) as u64;
        let req = Iocb::pread(&*src, Vec::with_capacity(block), off).on_complete(move |ctx, c| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert!(c.result().is_ok());
            let buf = c.into_buf().unwrap();
            let calls = Arc::clone(&calls);
            let write = Iocb::pwrite(&*dst, buf, off).on_complete(move |_, c| {
                assert!(c.result().is_ok());
                calls.fetch_add(1, Ordering::SeqCst);
            });
            ctx.submit(write).unwrap();
        });
        ctx.submit(req).unwrap();
    }
    while ctx.in_flight() > 0 {
        ctx.run(1, WAIT).unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2 * blocks, "each callback runs exactly once");
    assert!(ctx.get_events(0, 10, Some(Duration::ZERO)).unwrap().is_empty());
    assert_eq!(std::fs::read(&dst_path).unwrap(), data);
}
