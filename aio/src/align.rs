//! `O_DIRECT` alignment, discovered per file rather than assumed.
//!
//! Direct I/O moves data between the device and the program's memory without the page cache,
//! so the buffer address, the length and the file offset must be multiples of what the
//! filesystem and device can handle. [`DioAlign::of`] asks, in order: `statx(STATX_DIOALIGN)`
//! (Linux 6.1+, on filesystems that report it), the logical block size of the block device the
//! file is (`BLKSSZGET`) or lives on (`/sys/dev/block/MAJ:MIN/queue/logical_block_size`), and
//! otherwise assumes 4096.

use std::fmt;
use std::io;
use std::os::fd::AsFd;

use crate::buf::AlignedBuf;
use crate::sys;

/// Where an alignment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignSource {
    /// `statx(2)` with `STATX_DIOALIGN`.
    Statx,
    /// The logical block size of the block device (`BLKSSZGET`, or sysfs for a file on one).
    BlockDevice,
    /// Nothing could be asked; 4096 is assumed.
    Default,
}

/// The alignments `O_DIRECT` I/O on one file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DioAlign {
    /// Buffer addresses must be multiples of this.
    pub memory: usize,
    /// File offsets and lengths must be multiples of this.
    pub offset: usize,
    /// How it was found.
    pub source: AlignSource,
}

/// What [`DioAlign::of`] assumes when nothing can be asked.
pub const DEFAULT_ALIGN: usize = 4096;

impl DioAlign {
    /// Finds the `O_DIRECT` alignment of an open file (it need not be opened with `O_DIRECT`).
    ///
    /// Fails with `ErrorKind::Unsupported` when the filesystem reports that the file does not
    /// support direct I/O at all.
    pub fn of(file: impl AsFd) -> io::Result<DioAlign> {
        let fd = file.as_fd();
        match sys::fs::statx_dioalign(fd) {
            Ok(Some((0, _) | (_, 0))) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this file's filesystem does not support O_DIRECT (statx reports no alignment)",
                ))
            }
            Ok(Some((mem, off))) => {
                return Ok(DioAlign {
                    memory: mem as usize,
                    offset: off as usize,
                    source: AlignSource::Statx,
                })
            }
            // Older kernel or a filesystem that does not say: ask the device.
            Ok(None) | Err(_) => {}
        }
        DioAlign::of_device(fd)
    }

    /// The alignment from the device alone, without asking `statx`: the logical block size of
    /// the block device `file` is (`BLKSSZGET`) or lives on (sysfs), else 4096. This is what
    /// [`of`](Self::of) falls back to on kernels before 6.1.
    pub fn of_device(file: impl AsFd) -> io::Result<DioAlign> {
        let fd = file.as_fd();
        let st = sys::fs::fstat(fd)?;
        let from_device = if st.st_mode & libc::S_IFMT == libc::S_IFBLK {
            sys::fs::logical_block_size(fd).ok()
        } else {
            sysfs_logical_block_size(st.st_dev)
        };
        Ok(match from_device {
            Some(size) if size.is_power_of_two() => DioAlign {
                memory: size as usize,
                offset: size as usize,
                source: AlignSource::BlockDevice,
            },
            _ => DioAlign {
                memory: DEFAULT_ALIGN,
                offset: DEFAULT_ALIGN,
                source: AlignSource::Default,
            },
        })
    }

    /// The alignment to allocate buffers with: it satisfies both the address rule and, for
    /// lengths that are whole buffers, the length rule.
    pub fn buffer_align(&self) -> usize {
        self.memory.max(self.offset)
    }

    /// A zeroed buffer of at least `capacity` bytes fit for `O_DIRECT` on this file.
    pub fn buffer(&self, capacity: usize) -> AlignedBuf {
        AlignedBuf::new(capacity, self.buffer_align())
    }

    /// Rounds `n` up to a multiple of the offset alignment.
    pub fn round_up(&self, n: u64) -> u64 {
        n.next_multiple_of(self.offset as u64)
    }

    /// Checks one `O_DIRECT` transfer: buffer address, length and file offset. The error names
    /// what is misaligned and what it must be a multiple of.
    pub fn check(&self, addr: usize, len: usize, offset: u64) -> io::Result<()> {
        let problem = if !addr.is_multiple_of(self.memory) {
            Some(format!("buffer address {addr:#x} is not a multiple of {}", self.memory))
        } else if !len.is_multiple_of(self.offset) {
            Some(format!("length {len} is not a multiple of {}", self.offset))
        } else if !offset.is_multiple_of(self.offset as u64) {
            Some(format!("file offset {offset} is not a multiple of {}", self.offset))
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(p) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("misaligned O_DIRECT request: {p} ({self})"),
            )),
        }
    }
}

impl fmt::Display for DioAlign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            AlignSource::Statx => "from statx",
            AlignSource::BlockDevice => "the device's logical block size",
            AlignSource::Default => "assumed",
        };
        write!(f, "memory alignment {}, offset alignment {}, {source}", self.memory, self.offset)
    }
}

/// The logical block size of the block device `dev` (a `st_dev`), from sysfs; a partition's
/// queue settings are its parent disk's.
fn sysfs_logical_block_size(dev: libc::dev_t) -> Option<u32> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let base = format!("/sys/dev/block/{major}:{minor}");
    ["queue/logical_block_size", "../queue/logical_block_size"]
        .iter()
        .find_map(|rel| std::fs::read_to_string(format!("{base}/{rel}")).ok())
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_fallback_matches_sysfs() {
        let file = std::fs::File::open(env!("CARGO_MANIFEST_DIR")).unwrap();
        let st = sys::fs::fstat(file.as_fd()).unwrap();
        let a = DioAlign::of_device(&file).unwrap();
        match sysfs_logical_block_size(st.st_dev) {
            Some(size) => {
                assert_eq!(a.source, AlignSource::BlockDevice);
                assert_eq!((a.memory, a.offset), (size as usize, size as usize));
            }
            None => assert_eq!(a.source, AlignSource::Default),
        }
        assert!(a.offset.is_power_of_two());
    }

    #[test]
    fn check_names_the_problem() {
        let a = DioAlign { memory: 512, offset: 4096, source: AlignSource::Default };
        assert!(a.check(4096, 8192, 4096).is_ok());
        let e = a.check(4096 + 512, 100, 0).unwrap_err().to_string();
        assert!(e.contains("length 100"), "{e}");
        let e = a.check(3, 4096, 0).unwrap_err().to_string();
        assert!(e.contains("buffer address 0x3"), "{e}");
        let e = a.check(0, 4096, 512).unwrap_err().to_string();
        assert!(e.contains("file offset 512"), "{e}");
        assert_eq!(a.round_up(1), 4096);
        assert_eq!(a.buffer_align(), 4096);
    }
}
