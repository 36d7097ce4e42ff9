//! The inline path: a buffered read (or write) tried at submission with `preadv2`/`pwritev2`
//! and `RWF_NOWAIT`, which the kernel serves at once when it can do so without waiting — data
//! in the page cache — and refuses (`EAGAIN`) when it would have to wait for the device. A
//! request served there costs one system call and no trip through an asynchronous engine; one
//! refused goes to the engine as usual.
//!
//! Only what can gain is tried:
//!
//! - reads and writes of fewer than [`ASYNC_MIN_LEN`](super::uring::ASYNC_MIN_LEN) bytes (a
//!   larger copy would hold the submitting caller: it goes to the kernel's workers instead);
//! - with no `RWF_*` flags of the request's own;
//! - on regular files and block devices (a read of a socket or a pipe takes the bytes it gets,
//!   so it could not be done again; such reads go to the engine, which waits for them without
//!   a thread), not open with `O_DIRECT` (where `RWF_NOWAIT` still waits for the device), and,
//!   for writes, not with `O_APPEND`.
//!
//! What each descriptor is is asked once (`fstat`, `fcntl(F_GETFL)`) and asked again at every
//! [`RECHECK`]th attempt of a thread, in case the number now names another file. Threads
//! submitting at once share no cache line on a hit: a descriptor's slot is written only when
//! what is known of it changes, and the counters are kept in shards, one owned by each thread
//! while it lives (so counting takes no locked instruction). A request that transfers only part
//! of its bytes is not finished here: the engine does all of it again (the bytes already moved
//! are the same ones, so nothing changes but the time), since a short read here may be the end
//! of the file or pages not in the cache.
//!
//! **Adaptive.** A descriptor whose attempts keep failing (cold data) stops being tried for a
//! while — one request in 2, 4, … up to 1 in [`SKIP_MAX`] — and goes back to every request after
//! one success, so a cold file pays at most a failed system call now and then, and a file that
//! warms up is noticed.
//!
//! `AIO_INLINE=0` in the environment turns the path off for every driver made without saying
//! otherwise (the options' defaults), so the difference can be measured.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::{RawIo, Request};
use crate::sys;

/// A thread asks a descriptor's flags again at every this many attempts.
pub const RECHECK: u64 = 64;
/// Counter shards owned by one thread each, a cache line each. A thread owns one while it
/// lives — no other thread writes it, so a count is a plain load and store: an atomic add
/// right after the kernel's copy into the buffer waits for that copy's stores to drain (about
/// 2% of a cached 4 KiB read). Past `SHARDS` threads at once, the others count with atomic
/// adds in the [`SHARED`] shards after these, taken by turns.
const SHARDS: usize = 64;
/// Shards for threads that own none (see `SHARDS`).
const SHARED: usize = 8;

/// Bit `i` set while a thread owns shard `i` (see `SHARDS`).
static OWNED: AtomicU64 = AtomicU64::new(0);

/// One shard of the counters.
#[derive(Default)]
#[repr(align(64))]
struct Shard {
    inline: AtomicU64,
    missed: AtomicU64,
    skipped: AtomicU64,
    ineligible: AtomicU64,
}

/// A thread's place among the counters, and its attempts so far.
struct Local {
    /// `usize::MAX` until the thread first counts.
    shard: Cell<usize>,
    /// Whether the thread owns `shard` (else it shares it).
    owned: Cell<bool>,
    attempts: Cell<u64>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends: its shard (and what it counted there) goes to the next thread.
        if self.owned.get() {
            OWNED.fetch_and(!(1u64 << self.shard.get()), Ordering::Release);
        }
    }
}

thread_local! {
    static LOCAL: Local = const {
        Local { shard: Cell::new(usize::MAX), owned: Cell::new(false), attempts: Cell::new(0) }
    };
}

/// A shard for a thread: one of its own if one is free, else one of the shared ones by turns.
fn take_shard() -> (usize, bool) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut taken = OWNED.load(Ordering::Relaxed);
    while taken != u64::MAX {
        let free = (!taken).trailing_zeros() as usize;
        match OWNED.compare_exchange_weak(
            taken,
            taken | 1u64 << free,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return (free, true),
            Err(now) => taken = now,
        }
    }
    (SHARDS + NEXT.fetch_add(1, Ordering::Relaxed) % SHARED, false)
}

/// This thread's shard, whether it owns it, and whether this attempt is one at which flags are
/// asked again.
fn local() -> (usize, bool, bool) {
    LOCAL
        .try_with(|l| {
            if l.shard.get() == usize::MAX {
                let (shard, owned) = take_shard();
                l.shard.set(shard);
                l.owned.set(owned);
            }
            let n = l.attempts.get().wrapping_add(1);
            l.attempts.set(n);
            (l.shard.get(), l.owned.get(), n % RECHECK == 0)
        })
        // A thread being torn down: a shared shard, and ask.
        .unwrap_or((SHARDS, false, true))
}
/// At most one request in this many is tried on a descriptor whose attempts keep failing.
pub const SKIP_MAX: u64 = 256;
/// Descriptors below this number keep their flags and history in a table; others ask every
/// time (and are tried every time).
const SLOTS: usize = 4096;

/// Whether the inline path is on by default: unless `AIO_INLINE=0`.
pub fn enabled_by_default() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("AIO_INLINE").map_or(true, |v| v.trim() != "0"))
}

/// How the inline path served requests (for reports and statistics). Adds and subtracts
/// field by field (to sum drivers, or take a difference of two readings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InlineStats {
    /// Served whole at submission.
    pub inline: u64,
    /// Tried and refused (would wait, or moved only part): sent to the engine.
    pub missed: u64,
    /// Not tried because the descriptor's attempts kept failing: sent to the engine.
    pub skipped: u64,
    /// Not eligible (`O_DIRECT`, large, flags, a stream, the path off): sent to the engine.
    pub ineligible: u64,
}

impl InlineStats {
    /// Requests the path was asked about.
    pub fn total(&self) -> u64 {
        self.inline + self.missed + self.skipped + self.ineligible
    }
}

impl std::ops::Add for InlineStats {
    type Output = InlineStats;
    fn add(self, o: InlineStats) -> InlineStats {
        InlineStats {
            inline: self.inline + o.inline,
            missed: self.missed + o.missed,
            skipped: self.skipped + o.skipped,
            ineligible: self.ineligible + o.ineligible,
        }
    }
}

impl std::ops::Sub for InlineStats {
    type Output = InlineStats;
    fn sub(self, o: InlineStats) -> InlineStats {
        InlineStats {
            inline: self.inline.saturating_sub(o.inline),
            missed: self.missed.saturating_sub(o.missed),
            skipped: self.skipped.saturating_sub(o.skipped),
            ineligible: self.ineligible.saturating_sub(o.ineligible),
        }
    }
}

// One descriptor's slot, a u64: what its flags said, its recent misses and
// how many requests to let pass before the next try.
const KNOWN: u64 = 1;
const DIRECT: u64 = 1 << 1;
const APPEND: u64 = 1 << 2;
/// Not a file or block device, or one that refuses `RWF_NOWAIT` reads: never tried (until
/// rechecked).
const NEVER: u64 = 1 << 3;
/// Refuses `RWF_NOWAIT` writes (ext4 buffered writes, before Linux 6.x): writes never tried.
const NO_WRITES: u64 = 1 << 4;
const MISSES_SHIFT: u32 = 16;
const SKIP_SHIFT: u32 = 24;
const FIELD: u64 = 0xff;
const SKIP_FIELD: u64 = 0xffff;

/// The inline path of one driver: the per-descriptor table and the counters.
pub(crate) struct Inline {
    on: bool,
    slots: Box<[AtomicU64]>,
    shards: Box<[Shard]>,
}

/// A read or write to try: the descriptor, the memory, where in the file.
struct Attempt<'a> {
    pub fd: i32,
    pub write: bool,
    pub iov: &'a [libc::iovec],
    pub offset: u64,
    pub flags: i32,
}

impl Inline {
    pub(crate) fn new(on: bool) -> Inline {
        let slots: Box<[AtomicU64]> =
            (0..if on { SLOTS } else { 0 }).map(|_| AtomicU64::new(0)).collect();
        Inline { on, slots, shards: (0..SHARDS + SHARED).map(|_| Shard::default()).collect() }
    }

    pub(crate) fn stats(&self) -> InlineStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.shards.iter().fold(InlineStats::default(), |t, s| {
            t + InlineStats {
                inline: get(&s.inline),
                missed: get(&s.missed),
                skipped: get(&s.skipped),
                ineligible: get(&s.ineligible),
            }
        })
    }

    /// Counts one in `counter` of this thread's shard (`owned`: no other thread writes it).
    fn count(counter: &AtomicU64, owned: bool) {
        if owned {
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        } else {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`Driver::try_now`](super::Driver::try_now) for a driver with this path: a valid read
    /// or write tried once; a request it did not serve is marked, so the driver's `queue` and
    /// `queue_now` do not try it again.
    pub(crate) fn try_now(&self, req: &mut Request) -> Option<i64> {
        req.validate().ok()?;
        let served = self.try_request(req);
        req.inline_tried = served.is_none();
        served
    }

    /// Tries a validated read or write (not one [`try_now`](Self::try_now) already tried): the
    /// result if it was served whole.
    pub(crate) fn try_request(&self, req: &Request) -> Option<i64> {
        if req.inline_tried || !(req.op.is_read() || req.op.is_write()) {
            return None;
        }
        let a = Attempt {
            fd: req.fd,
            write: req.op.is_write(),
            iov: req.buf.iovecs(),
            offset: req.offset,
            flags: req.flags.bits(),
        };
        // SAFETY: the request owns its buffers (or its raw memory's owner vouches for it), and
        // a read's are writable (validated).
        unsafe { self.try_rw(&a) }
    }

    /// [`Driver::try_now_raw`](super::Driver::try_now_raw) for a driver with this path.
    ///
    /// # Safety
    ///
    /// As for `try_now_raw`: `io`'s memory is valid for the call, and untouched by others if
    /// it is read into.
    pub(crate) unsafe fn try_raw(&self, io: &RawIo) -> Option<i64> {
        let iov = [libc::iovec { iov_base: io.ptr.cast(), iov_len: io.len }];
        let a = Attempt { fd: io.fd, write: io.write, iov: &iov, offset: io.offset, flags: 0 };
        // SAFETY: forwarded from the caller.
        unsafe { self.try_rw(&a) }
    }

    /// Tries `a` at once: `Some(bytes)` if it moved all of them (the request is then done),
    /// `None` if it was not tried or not finished (the engine does all of it).
    ///
    /// # Safety
    ///
    /// As for a read or write of `a.iov` by the engine: the memory is valid for the call
    /// (writable for a read) and no one else touches it.
    unsafe fn try_rw(&self, a: &Attempt<'_>) -> Option<i64> {
        if !self.on {
            return None;
        }
        let (shard, owned, recheck) = local();
        let shard = &self.shards[shard];
        let count = |counter: fn(&Shard) -> &AtomicU64| Self::count(counter(shard), owned);
        let len: usize = a.iov.iter().map(|v| v.iov_len).sum();
        if a.flags != 0 || len >= super::uring::ASYNC_MIN_LEN || a.fd < 0 {
            count(|s| &s.ineligible);
            return None;
        }
        let slot = self.slots.get(a.fd as usize);
        let known = slot.map_or(0, |s| s.load(Ordering::Relaxed));
        let mut state = known;
        if state & KNOWN == 0 || recheck {
            let Ok(fl) = sys::fs::status_flags_of(a.fd) else {
                count(|s| &s.ineligible);
                return None;
            };
            state = KNOWN;
            if !matches!(sys::io::file_type(a.fd), Some(libc::S_IFREG | libc::S_IFBLK)) {
                state |= NEVER;
            }
            if fl & libc::O_DIRECT != 0 {
                state |= DIRECT;
            }
            if fl & libc::O_APPEND != 0 {
                state |= APPEND;
            }
        }
        // Written only when it changes: on a hit, threads share nothing.
        let update = |s: u64| {
            if let Some(slot) = slot.filter(|_| s != known) {
                slot.store(s, Ordering::Relaxed);
            }
        };
        if state & (DIRECT | NEVER) != 0 || (a.write && state & (APPEND | NO_WRITES) != 0) {
            update(state);
            count(|s| &s.ineligible);
            return None;
        }
        let skip = (state >> SKIP_SHIFT) & SKIP_FIELD;
        if skip > 0 {
            update((state & !(SKIP_FIELD << SKIP_SHIFT)) | ((skip - 1) << SKIP_SHIFT));
            count(|s| &s.skipped);
            return None;
        }
        let flags = libc::RWF_NOWAIT;
        // SAFETY: the caller's promise about the memory.
        let r = unsafe {
            if a.write {
                sys::io::pwritev2(a.fd, a.iov, a.offset, flags)
            } else {
                sys::io::preadv2(a.fd, a.iov, a.offset, flags)
            }
        };
        let misses = (state >> MISSES_SHIFT) & FIELD;
        match r {
            Ok(n) if n == len => {
                update(state & !(FIELD << MISSES_SHIFT));
                count(|s| &s.inline);
                Some(n as i64)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESPIPE | libc::EOPNOTSUPP)) => {
                let unsupported = e.raw_os_error() == Some(libc::EOPNOTSUPP);
                update(state | if a.write && unsupported { NO_WRITES } else { NEVER });
                count(|s| &s.ineligible);
                None
            }
            _ => {
                // Would wait, moved only part, or failed (the engine says how): a miss. After
                // a few in a row, skip 2^k - 1 requests before the next try.
                let misses = (misses + 1).min(FIELD);
                let skip =
                    if misses >= 2 { (1u64 << (misses - 1).min(8)).min(SKIP_MAX) - 1 } else { 0 };
                let state = (state & !(FIELD << MISSES_SHIFT) & !(SKIP_FIELD << SKIP_SHIFT))
                    | (misses << MISSES_SHIFT)
                    | (skip << SKIP_SHIFT);
                update(state);
                count(|s| &s.missed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn iov(buf: &mut [u8]) -> [libc::iovec; 1] {
        [libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() }]
    }

    #[test]
    fn cached_reads_complete_and_the_switch_turns_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; 4096];
        let on = Inline::new(true);
        let a = Attempt {
            fd: file.as_raw_fd(),
            write: false,
            iov: &iov(&mut buf),
            offset: 0,
            flags: 0,
        };
        // SAFETY: `buf` is ours and alive for the call.
        assert_eq!(unsafe { on.try_rw(&a) }, Some(4096));
        assert_eq!(buf, vec![7u8; 4096]);
        assert_eq!(on.stats().inline, 1);
        let off = Inline::new(false);
        // SAFETY: as above.
        assert_eq!(unsafe { off.try_rw(&a) }, None);
        assert_eq!(off.stats(), InlineStats::default());
        // Past the end: a short read is not finished here.
        let mut tail = vec![0u8; 4096];
        let a = Attempt {
            fd: file.as_raw_fd(),
            write: false,
            iov: &iov(&mut tail),
            offset: 6144,
            flags: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { on.try_rw(&a) }, None);
        assert_eq!(on.stats().missed, 1);
    }

    /// Two threads count in their own shards, and the totals add up; a descriptor whose flags
    /// change (`O_DIRECT` set) is noticed within `RECHECK` attempts of a thread.
    #[test]
    fn threads_count_apart_and_flags_are_asked_again() {
        // On disk (O_DIRECT below): `$AIO_TEST_DIR`, else the build's target directory.
        let base = std::env::var_os("AIO_TEST_DIR").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
            Into::into,
        );
        let dir = tempfile::tempdir_in(base).unwrap();
        let path = dir.path().join("shards");
        std::fs::write(&path, vec![3u8; 8192]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let _ = std::fs::read(&path).unwrap();
        let on = Inline::new(true);
        let fd = file.as_raw_fd();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..100 {
                        let a =
                            Attempt { fd, write: false, iov: &iov(&mut buf), offset: 0, flags: 0 };
                        // SAFETY: `buf` is this thread's and alive for the call.
                        assert_eq!(unsafe { on.try_rw(&a) }, Some(4096));
                    }
                });
            }
        });
        assert_eq!(on.stats().inline, 200);
        // O_DIRECT from now on: within RECHECK attempts, no more tries.
        // SAFETY: fcntl on our own descriptor.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_DIRECT) } != 0 {
            let why = format!("{} refuses O_DIRECT", dir.path().display());
            aio_testkit::skip(
                "threads_count_apart_and_flags_are_asked_again (its second half)",
                &why,
            );
            return;
        }
        let mut buf = crate::AlignedBuf::new(4096, 4096);
        let ptr = crate::IoBufMut::stable_mut_ptr(&mut buf);
        let v = [libc::iovec { iov_base: ptr.cast(), iov_len: 4096 }];
        let a = Attempt { fd, write: false, iov: &v, offset: 0, flags: 0 };
        for _ in 0..=RECHECK {
            // SAFETY: `buf` is ours, aligned, and alive for the call.
            let _ = unsafe { on.try_rw(&a) };
        }
        let before = on.stats();
        // SAFETY: as above.
        assert_eq!(unsafe { on.try_rw(&a) }, None, "tried with O_DIRECT set");
        assert_eq!(on.stats().ineligible, before.ineligible + 1);
    }

    /// More threads at once than there are shards to own: those with a shard of their own
    /// count with plain stores, the others with atomic adds in the shared ones (never in an
    /// owned one, whose plain stores would lose them), and a shard a thread leaves goes to a
    /// later one with its counts — the totals add up.
    #[test]
    fn counts_add_up_with_more_threads_than_shards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many");
        std::fs::write(&path, vec![5u8; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let fd = file.as_raw_fd();
        let on = Inline::new(true);
        let threads = SHARDS + 16;
        let together = std::sync::Barrier::new(threads);
        // The second round's threads take the shards the first round's left.
        for round in 1..=2u64 {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        let mut buf = vec![0u8; 4096];
                        together.wait();
                        let mut served = 0;
                        for _ in 0..50 {
                            let a = Attempt {
                                fd,
                                write: false,
                                iov: &iov(&mut buf),
                                offset: 0,
                                flags: 0,
                            };
                            // SAFETY: `buf` is this thread's and alive for the call.
                            served += u32::from(unsafe { on.try_rw(&a) } == Some(4096));
                        }
                        let (shard, owned, _) = local();
                        // All alive until all have counted: some surely share. (Checked after:
                        // a thread failing before would leave the others waiting here.)
                        together.wait();
                        assert_eq!(served, 50);
                        // An owned shard is only ever written by its owner.
                        assert_eq!(owned, shard < SHARDS, "shard {shard}, owned {owned}");
                    });
                }
            });
            assert_eq!(on.stats().inline, round * threads as u64 * 50);
        }
    }

    #[test]
    fn streams_are_never_tried() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let on = Inline::new(true);
        let mut b = [0u8; 1];
        let a = Attempt {
            fd: reader.as_raw_fd(),
            write: false,
            iov: &iov(&mut b),
            offset: 0,
            flags: 0,
        };
        // Not a file: never tried (a read of a stream could not be done again).
        // SAFETY: `b` is ours.
        assert_eq!(unsafe { on.try_rw(&a) }, None);
        // SAFETY: as above.
        assert_eq!(unsafe { on.try_rw(&a) }, None);
        let s = on.stats();
        assert_eq!((s.inline, s.missed, s.ineligible), (0, 0, 2));
    }

    /// Cold data (evicted from the page cache): misses, then fewer and fewer tries; once the
    /// data is cached again, a try succeeds and every request is tried again.
    #[test]
    fn misses_back_off_and_a_hit_resets() {
        let base = std::env::var_os("AIO_TEST_DIR").map_or_else(std::env::temp_dir, Into::into);
        let dir = tempfile::tempdir_in(base).unwrap();
        let path = dir.path().join("cold");
        std::fs::write(&path, vec![3u8; 1 << 20]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        let evict = || {
            crate::sys::fs::fadvise(
                std::os::fd::AsFd::as_fd(&file),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
            .unwrap()
        };
        evict();
        // No readahead: a miss reads only its own page (in the background), so the other
        // offsets stay cold.
        crate::sys::fs::fadvise(std::os::fd::AsFd::as_fd(&file), 0, 0, libc::POSIX_FADV_RANDOM)
            .unwrap();
        let on = Inline::new(true);
        let mut buf = vec![0u8; 4096];
        let mut tries = |n: usize| {
            for i in 0..n {
                let a = Attempt {
                    fd: file.as_raw_fd(),
                    write: false,
                    iov: &iov(&mut buf),
                    offset: (i as u64 * 8192) % (1 << 20),
                    flags: 0,
                };
                // SAFETY: `buf` is ours.
                let _ = unsafe { on.try_rw(&a) };
            }
        };
        tries(40);
        let s = on.stats();
        if s.missed == 0 {
            // A file system whose pages the advice does not drop (tmpfs): nothing to learn.
            aio_testkit::skip("misses_back_off_and_a_hit_resets", "DONTNEED left the file cached");
            return;
        }
        assert!(s.skipped > s.missed, "backed off: {s:?}");
        assert_eq!(s.missed + s.skipped, 40, "{s:?}");
        // Cached again: within one back-off window a try succeeds, and then every request is
        // tried (and served).
        std::fs::read(&path).unwrap();
        tries(300);
        let after = on.stats();
        assert!(after.inline > 0, "{after:?}");
        let before = after;
        tries(10);
        assert_eq!(on.stats().inline, before.inline + 10, "{:?}", on.stats());
    }
}
