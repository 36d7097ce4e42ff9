//! What the C-API fuzz targets share: memory the kernel may write into without ever reaching
//! anything else, descriptors of every kind, and a thread that interrupts waits.

#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bytes of the data buffer.
pub const BUF_LEN: usize = 128 << 10;
/// `iovec`s in the array the vectored requests use.
pub const IOVS: usize = 64;
const PAGE: usize = 4096;
/// Inaccessible bytes after each area: any transfer that runs past an area faults there
/// (copies go forward, a page at a time), so no request reaches memory it was not given.
const GUARD: usize = 64 << 10;

/// The areas requests may use: a data buffer and an `iovec` array, each followed by a guard
/// mapped with no access. Never freed.
pub struct Arena {
    /// The data buffer, `BUF_LEN` bytes ending at a guard.
    pub buf: *mut u8,
    /// `IOVS` iovecs ending at a guard.
    pub iovs: *mut libc::iovec,
}

// SAFETY: raw memory of the process's own, shared by design (the kernel writes it).
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

impl Arena {
    pub fn get() -> &'static Arena {
        static ARENA: OnceLock<Arena> = OnceLock::new();
        ARENA.get_or_init(|| {
            let iov_bytes = (IOVS * std::mem::size_of::<libc::iovec>()).next_multiple_of(PAGE);
            let total = BUF_LEN + GUARD + iov_bytes + GUARD;
            // SAFETY: a fresh anonymous mapping.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    total,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED, "mmap the arena");
            let base = base.cast::<u8>();
            // SAFETY: both guards lie inside the mapping.
            unsafe {
                assert_eq!(libc::mprotect(base.add(BUF_LEN).cast(), GUARD, libc::PROT_NONE), 0);
                let end = base.add(BUF_LEN + GUARD + iov_bytes);
                assert_eq!(libc::mprotect(end.cast(), GUARD, libc::PROT_NONE), 0);
            }
            // SAFETY: inside the mapping; the iovec array ends where the second guard starts.
            let iovs = unsafe {
                base.add(BUF_LEN + GUARD + iov_bytes - IOVS * std::mem::size_of::<libc::iovec>())
            };
            Arena { buf: base, iovs: iovs.cast() }
        })
    }

    /// An address `off` bytes into the buffer (at most its end).
    pub fn at(&self, off: usize) -> *mut u8 {
        // SAFETY: `off <= BUF_LEN`: inside the mapping or one past the buffer (the guard).
        unsafe { self.buf.add(off.min(BUF_LEN)) }
    }

    /// The guard right after the buffer: every access faults.
    pub fn guard(&self) -> *mut u8 {
        self.at(BUF_LEN)
    }

    /// Fills the iovec array: `(offset in the buffer, length)` for each of the first entries.
    pub fn set_iovs(&self, segs: &[(usize, usize)]) -> *mut libc::iovec {
        for (i, &(off, len)) in segs.iter().take(IOVS).enumerate() {
            // SAFETY: i < IOVS, inside the array.
            unsafe {
                *self.iovs.add(i) = libc::iovec { iov_base: self.at(off).cast(), iov_len: len };
            }
        }
        let n = segs.len().min(IOVS);
        // SAFETY: the entries used start `n` before the end of the array, so a count read
        // past the end meets the guard.
        let start = unsafe { self.iovs.add(IOVS - n) };
        if n > 0 {
            // SAFETY: both ranges lie in the array; they may overlap.
            unsafe { std::ptr::copy(self.iovs, start, n) };
        }
        start
    }
}

/// Addresses no request can use: null, the guard, the kernel's half, non-canonical ones.
pub fn bad_address(which: u8) -> *mut u8 {
    match which % 4 {
        0 => std::ptr::null_mut(),
        1 => Arena::get().guard(),
        2 => 0xffff_8000_0000_1000usize as *mut u8,
        _ => 0x0000_8000_0000_0000usize as *mut u8,
    }
}

/// Addresses a library checks before it touches them itself (`plausible` in libaio): null,
/// the never-mapped first page, the kernel's half, non-canonical ones. (A plausible address
/// that is not mapped, such as the guard, is dereferenced by design, as the C libaio does.)
pub fn implausible_address(which: u8) -> *mut u8 {
    match which % 4 {
        0 => std::ptr::null_mut(),
        1 => 8usize as *mut u8,
        2 => 0xffff_8000_0000_1000usize as *mut u8,
        _ => 0x0000_8000_0000_0000usize as *mut u8,
    }
}

/// The descriptors a request may name.
pub struct Fds {
    pub dir: PathBuf,
    pub file: OwnedFd,
    pub read_only: OwnedFd,
    pub write_only: OwnedFd,
    pub pipe_r: OwnedFd,
    pub pipe_w: OwnedFd,
    pub sock_a: OwnedFd,
    pub sock_b: OwnedFd,
    pub dev_null: OwnedFd,
    pub directory: OwnedFd,
    pub eventfd: OwnedFd,
}

/// Bytes in the test file at the start of each input.
pub const FILE_LEN: usize = 64 << 10;

fn open(path: &std::path::Path, flags: i32) -> OwnedFd {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    assert!(fd >= 0, "open {}: {}", path.display(), std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn pair(socket: bool, nonblock: bool) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let flags = libc::O_CLOEXEC | if nonblock { libc::O_NONBLOCK } else { 0 };
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe {
        if socket {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | flags, 0, fds.as_mut_ptr())
        } else {
            libc::pipe2(fds.as_mut_ptr(), flags)
        }
    };
    assert_eq!(r, 0, "pipe or socketpair");
    // SAFETY: fresh descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The fuzzing directory: `$AIO_FUZZ_DIR`, else a directory under the system's temporary one
/// (a real filesystem here).
pub fn fuzz_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("AIO_FUZZ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("aio-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the fuzzing directory");
    dir
}

impl Fds {
    /// Fresh descriptors (pipes and sockets non-blocking if `nonblock`), the test file
    /// `FILE_LEN` bytes of a pattern.
    pub fn new(dir: PathBuf, nonblock: bool) -> Fds {
        let path = dir.join("data");
        let file = open(&path, libc::O_RDWR | libc::O_CREAT);
        let content: Vec<u8> = (0..FILE_LEN).map(|i| (i * 7 + 1) as u8).collect();
        // SAFETY: writes from a live buffer; the size is set first.
        unsafe {
            assert_eq!(libc::ftruncate(file.as_raw_fd(), 0), 0);
            let n = libc::pwrite(file.as_raw_fd(), content.as_ptr().cast(), content.len(), 0);
            assert_eq!(n as usize, content.len());
        }
        let read_only = open(&path, libc::O_RDONLY);
        let write_only = open(&path, libc::O_WRONLY);
        let (pipe_r, pipe_w) = pair(false, nonblock);
        let (sock_a, sock_b) = pair(true, nonblock);
        let dev_null = open(std::path::Path::new("/dev/null"), libc::O_RDWR);
        let directory = open(&dir, libc::O_RDONLY | libc::O_DIRECTORY);
        // SAFETY: no pointers.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        assert!(efd >= 0);
        // SAFETY: a fresh descriptor.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        Fds {
            dir,
            file,
            read_only,
            write_only,
            pipe_r,
            pipe_w,
            sock_a,
            sock_b,
            dev_null,
            directory,
            eventfd,
        }
    }

    /// A descriptor by choice: one of ours, or one that is not open.
    pub fn pick(&self, which: u8, raw: i32) -> RawFd {
        match which % 16 {
            0 | 1 | 2 => self.file.as_raw_fd(),
            3 => self.read_only.as_raw_fd(),
            4 => self.write_only.as_raw_fd(),
            5 => self.pipe_r.as_raw_fd(),
            6 => self.pipe_w.as_raw_fd(),
            7 => self.sock_a.as_raw_fd(),
            8 => self.sock_b.as_raw_fd(),
            9 => self.dev_null.as_raw_fd(),
            10 => self.directory.as_raw_fd(),
            11 => self.eventfd.as_raw_fd(),
            12 => -1,
            13 => i32::MIN.wrapping_add(raw & 0xff),
            // Not open: far above anything this process opens.
            14 => 900_000 + (raw & 0xffff),
            _ => raw | i32::MIN, // negative
        }
    }

    /// Ends every wait on the pipes and sockets: shuts the sockets down and fills nothing
    /// (reads then see end of file, writes EPIPE).
    pub fn unblock(&self) {
        // SAFETY: our own sockets.
        unsafe {
            libc::shutdown(self.sock_a.as_raw_fd(), libc::SHUT_RDWR);
            libc::shutdown(self.sock_b.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

// --- The interrupter -------------------------------------------------------------------------

/// The signal that interrupts waits (its handler does nothing; no SA_RESTART).
pub const INTERRUPT: libc::c_int = libc::SIGUSR2;

struct Alarm {
    /// When to start interrupting (None: disarmed).
    at: Option<Instant>,
    target: libc::pid_t,
}

static ALARM: Mutex<Alarm> = Mutex::new(Alarm { at: None, target: 0 });
static ALARM_CV: Condvar = Condvar::new();
pub static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
}

fn gettid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Installs the handlers and starts the interrupter thread, once; ignores SIGPIPE.
pub fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a handler that only counts; SIGPIPE ignored so writes to closed pipes fail
        // with EPIPE rather than end the process.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(INTERRUPT, &sa, std::ptr::null_mut()), 0);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        std::thread::spawn(interrupter);
        let _ = Arena::get();
    });
}

fn interrupter() {
    // Never takes the interrupt itself.
    // SAFETY: a set initialized by sigemptyset/sigaddset, for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, INTERRUPT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    // SAFETY: no arguments.
    let pid = unsafe { libc::getpid() };
    let mut alarm = ALARM.lock().unwrap();
    loop {
        match alarm.at {
            None => alarm = ALARM_CV.wait(alarm).unwrap(),
            Some(at) if Instant::now() < at => {
                alarm = ALARM_CV.wait_timeout(alarm, at - Instant::now()).unwrap().0;
            }
            Some(_) => {
                let target = alarm.target;
                drop(alarm);
                // SAFETY: a thread of this process, whose handler for the signal is set.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, target, INTERRUPT) };
                std::thread::sleep(Duration::from_millis(2));
                alarm = ALARM.lock().unwrap();
            }
        }
    }
}

/// While alive, the calling thread gets [`INTERRUPT`] every 2 ms once `after` has passed: a
/// wait that would otherwise last for ever ends with `EINTR`.
pub struct Interrupted(());

impl Interrupted {
    pub fn after(after: Duration) -> Interrupted {
        let mut alarm = ALARM.lock().unwrap();
        alarm.at = Some(Instant::now() + after);
        alarm.target = gettid();
        ALARM_CV.notify_all();
        Interrupted(())
    }
}

impl Drop for Interrupted {
    fn drop(&mut self) {
        ALARM.lock().unwrap().at = None;
        ALARM_CV.notify_all();
    }
}

/// Whether `e` is an errno value (1 to 4095).
pub fn is_errno(e: i64) -> bool {
    (1..4096).contains(&e)
}

/// A flag for an input's checks that cannot be made (logged once).
pub static WARNED: AtomicBool = AtomicBool::new(false);
