//! Process-wide system calls: user ids, resource usage and limits, the umask, and what the
//! kernel says about itself (`uname`).

use std::io;
use std::time::Duration;

/// `getuid()`: the real user id.
#[doc(alias = "getuid")]
pub fn uid() -> u32 {
    // SAFETY: getuid takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

/// `geteuid()`: the effective user id (0 for root).
#[doc(alias = "geteuid")]
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// CPU time used, from `getrusage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rusage {
    /// In user space.
    pub user: Duration,
    /// In the kernel.
    pub system: Duration,
}

/// `getrusage(RUSAGE_SELF)`: the CPU time this process has used, all its threads counted.
#[doc(alias = "getrusage")]
pub fn rusage_self() -> io::Result<Rusage> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Rusage { user: tv(ru.ru_utime), system: tv(ru.ru_stime) })
}

/// What `uname` says about the running kernel and machine (each field as text, bytes that are
/// not UTF-8 replaced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    /// The operating system (`Linux`).
    pub sysname: String,
    /// The host name.
    pub nodename: String,
    /// The kernel release (`6.8.0-45-generic`).
    pub release: String,
    /// The kernel's build version.
    pub version: String,
    /// The hardware (`x86_64`).
    pub machine: String,
}

/// `uname()`.
pub fn uname() -> io::Result<Uname> {
    // SAFETY: an all-zero utsname is a valid value of this plain C struct (empty strings).
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    })
}

/// `umask(mask)`: sets the process's file mode creation mask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask takes a plain integer and cannot fail.
    unsafe { libc::umask(mask) }
}

/// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to the hard limit; returns the
/// new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    rl.rlim_cur = rl.rlim_max;
    // SAFETY: `rl` is a valid rlimit the call only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rl.rlim_cur)
}

/// `pthread_atfork(NULL, NULL, child)`: `child` runs in the child process after every `fork`,
/// before `fork` returns there. It must do only what is async-signal-safe (the child has one
/// thread, and other threads' locks may be held forever).
pub fn at_fork_child(child: extern "C" fn()) -> io::Result<()> {
    // SAFETY: registers a function pointer; no memory is handed over.
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// `atexit(handler)`: `handler` runs when the process exits normally.
pub fn at_exit(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: registers a function pointer; no memory is handed over.
    match unsafe { libc::atexit(handler) } {
        0 => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::OutOfMemory, "atexit: no room for a handler")),
    }
}
