//! The drivers under test, each set up over a file (or a RAM disk) with known contents.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aio::driver::{
    Buf, Completion, Driver, FaultConfig, FaultDriver, KernelDriver, KernelOptions, MemDriver,
    PoolDriver, PoolOptions, Request, UringDriver, UringOptions,
};
use aio::{AlignedBuf, IoBuf};

use super::*;

/// One driver, serving one file or RAM disk.
pub struct Target {
    pub name: String,
    pub driver: Arc<dyn Driver>,
    /// The file, open read-write (with O_DIRECT for direct targets); None for the RAM disk.
    pub file: Option<File>,
    /// The same file opened read-only (writes to it fail with EBADF).
    pub read_only: Option<File>,
    pub path: Option<PathBuf>,
    /// Offsets, lengths and buffer addresses must be multiples of this.
    pub unit: usize,
    pub size: usize,
    /// Whether the driver tries small buffered requests inline (and counts them).
    pub inline: bool,
}

impl Target {
    pub fn fd(&self) -> RawFd {
        self.file.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// A buffer to read exactly `len` bytes into (a slice of an aligned buffer).
    pub fn read_buf(&self, len: usize) -> Buf {
        Buf::for_read(AlignedBuf::new(len, self.unit.max(64)).slice(..len))
    }

    /// A buffer holding `data` to write.
    pub fn write_buf(&self, data: &[u8]) -> Buf {
        Buf::for_write(AlignedBuf::from_slice(data, self.unit.max(64)))
    }

    /// What the storage holds now, read without the driver (the RAM disk: through it).
    pub fn contents(&self) -> Vec<u8> {
        match &self.path {
            Some(p) => std::fs::read(p).unwrap(),
            None => read_all(&*self.driver, self.size),
        }
    }
}

/// Reads `size` bytes through a driver, in 64 KiB requests.
pub fn read_all(driver: &dyn Driver, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let chunk = 64 << 10;
    for (i, off) in (0..size).step_by(chunk).enumerate() {
        let buf = Buf::for_read(AlignedBuf::new(chunk, 4096));
        driver.queue(Request::read(-1, buf, off as u64, i as u64)).unwrap();
    }
    let n = size.div_ceil(chunk);
    for c in reap_n(driver, n) {
        let off = c.user_data as usize * chunk;
        let len = c.result().unwrap();
        let buf: AlignedBuf = c.buf.take().unwrap();
        out[off..off + len].copy_from_slice(&buf.as_full_slice()[..len]);
    }
    out
}

/// Reaps exactly `n` completions, failing the test after 20 s.
pub fn reap_n(driver: &dyn Driver, n: usize) -> Vec<Completion> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let got = driver
            .reap(n - out.len(), n - out.len(), Some(Duration::from_secs(20)), &mut out)
            .expect("reap");
        assert!(got > 0, "{}: timed out with {} of {n} completions", driver.name(), out.len());
    }
    out
}

/// Which targets to build.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Uring,
    UringDirect,
    Kernel,
    KernelBuffered,
    Pool,
    PoolDirect,
    Mem,
    FaultPassUring,
    UringNoInline,
    PoolNoInline,
}

pub const ALL: [Kind; 10] = [
    Kind::Uring,
    Kind::UringDirect,
    Kind::Kernel,
    Kind::KernelBuffered,
    Kind::Pool,
    Kind::PoolDirect,
    Kind::Mem,
    Kind::FaultPassUring,
    Kind::UringNoInline,
    Kind::PoolNoInline,
];

/// Builds each target over a fresh file holding `data`. Targets that cannot run here are left
/// out with a SKIP line naming the test.
pub fn targets(test: &str, dir: &std::path::Path, data: &[u8]) -> Vec<Target> {
    let direct = direct_support(dir);
    let mut out = Vec::new();
    for (i, kind) in ALL.into_iter().enumerate() {
        let wants_direct = matches!(kind, Kind::UringDirect | Kind::Kernel | Kind::PoolDirect);
        if wants_direct {
            if let Err(reason) = &direct {
                skip(&format!("{test} [{}]", kind_name(kind)), reason);
                continue;
            }
        }
        if kind == Kind::Mem {
            out.push(Target {
                name: "mem".into(),
                driver: Arc::new(MemDriver::with_contents(data.to_vec())),
                file: None,
                read_only: None,
                path: None,
                unit: 1,
                size: data.len(),
                inline: false,
            });
            continue;
        }
        let path = dir.join(format!("target-{i}"));
        make_file(&path, data);
        let file = if wants_direct { open_direct(&path) } else { open_rw(&path) };
        let read_only = if wants_direct {
            std::fs::OpenOptions::new().read(true).custom_flags_direct().open(&path).unwrap()
        } else {
            File::open(&path).unwrap()
        };
        let unit = if wants_direct { direct.as_ref().unwrap().buffer_align() } else { 1 };
        let driver: Arc<dyn Driver> = match kind {
            Kind::Uring | Kind::UringDirect => match UringDriver::new(UringOptions::default()) {
                Ok(d) => Arc::new(d),
                Err(e) => {
                    skip(&format!("{test} [{}]", kind_name(kind)), &e.to_string());
                    continue;
                }
            },
            Kind::Kernel | Kind::KernelBuffered => {
                Arc::new(KernelDriver::new(KernelOptions::default()).unwrap())
            }
            Kind::Pool | Kind::PoolDirect => Arc::new(PoolDriver::new(PoolOptions::default())),
            Kind::FaultPassUring => match UringDriver::new(UringOptions::default()) {
                Ok(d) => Arc::new(FaultDriver::new(d, FaultConfig::default())),
                Err(e) => {
                    skip(&format!("{test} [{}]", kind_name(kind)), &e.to_string());
                    continue;
                }
            },
            Kind::UringNoInline => {
                match UringDriver::new(UringOptions { inline: false, ..UringOptions::default() }) {
                    Ok(d) => Arc::new(d),
                    Err(e) => {
                        skip(&format!("{test} [{}]", kind_name(kind)), &e.to_string());
                        continue;
                    }
                }
            }
            Kind::PoolNoInline => {
                Arc::new(PoolDriver::new(PoolOptions { inline: false, ..PoolOptions::default() }))
            }
            Kind::Mem => unreachable!(),
        };
        let inline = aio::driver::inline_enabled()
            && matches!(kind, Kind::Uring | Kind::KernelBuffered | Kind::Pool);
        out.push(Target {
            name: kind_name(kind).into(),
            driver,
            file: Some(file),
            read_only: Some(read_only),
            path: Some(path),
            unit,
            size: data.len(),
            inline,
        });
    }
    out
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Uring => "uring",
        Kind::UringDirect => "uring+direct",
        Kind::Kernel => "kernel+direct",
        Kind::KernelBuffered => "kernel+buffered(pool)",
        Kind::Pool => "pool",
        Kind::PoolDirect => "pool+direct",
        Kind::Mem => "mem",
        Kind::FaultPassUring => "fault(uring, no faults)",
        Kind::UringNoInline => "uring (inline off)",
        Kind::PoolNoInline => "pool (inline off)",
    }
}

pub trait DirectExt {
    fn custom_flags_direct(&mut self) -> &mut Self;
}

impl DirectExt for std::fs::OpenOptions {
    fn custom_flags_direct(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_DIRECT)
    }
}
