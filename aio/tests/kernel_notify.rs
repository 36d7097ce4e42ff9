//! Poll requests, cancellation and eventfd notification.

mod common;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use aio::kernel::{CancelStatus, Context, Iocb, PollFlags};
use aio::{AlignedBuf, EventFd};
use common::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn poll_on_a_pipe_completes_when_written() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let ctx = Context::<Vec<u8>>::new(4).unwrap();
    ctx.submit(Iocb::poll(&reader, PollFlags::IN).user_data(7)).unwrap();
    assert!(ctx.get_events(1, 1, Some(Duration::from_millis(50))).unwrap().is_empty());
    assert_eq!(ctx.in_flight(), 1);
    writer.write_all(b"x").unwrap();
    let c = ctx.get_events(1, 1, WAIT).unwrap().pop().expect("the poll completes");
    assert_eq!(c.user_data(), 7);
    assert!(c.poll_events().unwrap().contains(PollFlags::IN), "{:?}", c.poll_events());
    assert_eq!(ctx.in_flight(), 0);

    // Writable at once.
    ctx.submit(Iocb::poll(&writer, PollFlags::OUT)).unwrap();
    let c = ctx.get_events(1, 1, WAIT).unwrap().pop().unwrap();
    assert!(c.poll_events().unwrap().contains(PollFlags::OUT));
}

#[test]
fn a_poll_request_can_be_cancelled_and_completes_once() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let ctx = Context::<Vec<u8>>::new(4).unwrap();
    let id = ctx.submit(Iocb::poll(&reader, PollFlags::IN).user_data(3)).unwrap();
    let status = ctx.cancel(id).unwrap();
    assert!(matches!(status, CancelStatus::InProgress | CancelStatus::Completed));
    let done = ctx.get_events(1, 4, WAIT).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].user_data(), 3);
    // Current kernels complete a cancelled poll with no events ready (res 0).
    assert!(done[0].res() == 0 || done[0].res() == -(libc::ECANCELED as i64), "{:?}", done[0]);
    assert!(ctx.get_events(1, 4, Some(Duration::from_millis(50))).unwrap().is_empty());
    assert_eq!(ctx.in_flight(), 0);
    // It is gone: cancelling again is an error.
    assert_eq!(ctx.cancel(id).unwrap_err().raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn file_io_cannot_be_cancelled() {
    let dir = test_dir();
    let path = dir.path().join("nocancel");
    make_file(&path, &pattern(1 << 20, 4));
    let (file, align) = match direct_support(dir.path()) {
        Ok(a) => (open_direct(&path), a.buffer_align()),
        Err(reason) => {
            skip("file_io_cannot_be_cancelled (O_DIRECT)", &reason);
            (File::open(&path).unwrap(), 4096)
        }
    };
    let ctx = Context::<AlignedBuf>::new(4).unwrap();
    let id = ctx.submit(Iocb::pread(&file, AlignedBuf::new(1 << 20, align), 0)).unwrap();
    let err = ctx.cancel(id).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    let c = ctx.get_events(1, 1, WAIT).unwrap().pop().unwrap();
    assert_eq!(c.result().unwrap(), 1 << 20, "the read completes normally");
}

#[test]
fn eventfd_fires_once_per_completion() {
    let dir = test_dir();
    let path = dir.path().join("efd");
    make_file(&path, &pattern(64 << 10, 8));
    let file = File::open(&path).unwrap();
    let efd = EventFd::new().unwrap();
    let ctx = Context::<Vec<u8>>::new(16).unwrap();
    assert_eq!(efd.read().unwrap(), 0);
    let n = 10;
    for i in 0..n {
        ctx.submit(Iocb::pread(&file, Vec::with_capacity(4096), i * 4096).resfd(&efd)).unwrap();
    }
    let mut signalled = 0;
    while signalled < n {
        assert!(efd.wait(Some(Duration::from_secs(10))).unwrap(), "eventfd never fired");
        signalled += efd.read().unwrap();
    }
    assert_eq!(signalled, n, "one signal per completion");
    assert_eq!(ctx.get_events(0, 64, Some(Duration::ZERO)).unwrap().len(), n as usize);
}

/// The pattern of an event loop: epoll watches the eventfd, and each wake-up reaps without
/// blocking.
#[test]
fn eventfd_drives_an_epoll_loop() {
    let dir = test_dir();
    let path = dir.path().join("epoll");
    let data = pattern(256 << 10, 12);
    make_file(&path, &data);
    let (file, align) = match direct_support(dir.path()) {
        Ok(a) => (open_direct(&path), a.buffer_align()),
        Err(reason) => {
            skip("eventfd_drives_an_epoll_loop (O_DIRECT)", &reason);
            (File::open(&path).unwrap(), 4096)
        }
    };
    let efd = EventFd::new().unwrap();
    // SAFETY: epoll_create1 takes no pointers.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 42 };
    // SAFETY: `ev` is a valid epoll_event; both descriptors are open.
    assert_eq!(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, efd.as_raw_fd(), &mut ev) }, 0);

    let ctx = Context::<AlignedBuf>::new(64).unwrap();
    let blocks = data.len() / 4096;
    for i in 0..blocks {
        let req = Iocb::pread(&file, AlignedBuf::new(4096, align), (i * 4096) as u64)
            .user_data(i as u64)
            .resfd(&efd);
        ctx.submit(req).unwrap();
    }
    let mut got = vec![false; blocks];
    let mut count = 0;
    let mut wakeups = 0;
    while count < blocks {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `out` has room for 4 events.
        let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, 10_000) };
        assert!(n > 0, "epoll_wait timed out or failed: {n}");
        assert_eq!({ out[0].u64 }, 42);
        wakeups += 1;
        efd.read().unwrap();
        for c in ctx.get_events(0, blocks, Some(Duration::ZERO)).unwrap() {
            let i = c.user_data() as usize;
            assert!(!got[i], "block {i} twice");
            got[i] = true;
            count += 1;
            assert_eq!(&c.into_buf().unwrap()[..], &data[i * 4096..(i + 1) * 4096]);
        }
    }
    assert!(wakeups >= 1);
    // SAFETY: `ep` is ours and closed once.
    unsafe { libc::close(ep) };
}
