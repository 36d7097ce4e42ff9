//! The file a benchmark runs on: made (or extended) with real, pseudo-random data in large
//! sequential writes, and removed afterwards when `aio bench` made it for the run.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::util::{cause, fill_random, human_bytes, splitmix64};

/// Bytes per write when filling.
const FILL_CHUNK: usize = 4 << 20;

/// The benchmark file; removed on drop if it is temporary (on success and on error alike).
pub struct BenchFile {
    /// Its path.
    pub path: PathBuf,
    /// Whether it is removed on drop.
    pub temporary: bool,
    /// Its size once laid out.
    pub len: u64,
    /// Removes a temporary file if a signal ends the process.
    _on_signal: Option<crate::cleanup::Registered>,
}

impl Drop for BenchFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl BenchFile {
    /// Makes sure `path` holds at least `size` bytes of data: creates it (and removes it again
    /// on drop, if `temporary`), or extends a shorter regular file. A block device must already
    /// be large enough.
    pub fn layout(
        path: &Path,
        size: u64,
        temporary: bool,
        note: &mut dyn FnMut(String),
    ) -> Result<BenchFile, String> {
        match std::fs::metadata(path) {
            Ok(md) if md.file_type().is_block_device() => {
                let f = File::open(path)
                    .map_err(|e| crate::util::path_error("cannot open", path, &e))?;
                let len = device_size(&f)
                    .map_err(|e| crate::util::path_error("cannot size", path, &e))?;
                if len < size {
                    return Err(format!(
                        "{} is a block device of {}, smaller than --size {}",
                        path.display(),
                        human_bytes(len),
                        human_bytes(size)
                    ));
                }
                Ok(BenchFile { path: path.to_path_buf(), temporary: false, len, _on_signal: None })
            }
            Ok(md) if md.is_dir() => Err(format!(
                "{} is a directory: --filename names a file (use --dir for where to make one)",
                path.display()
            )),
            Ok(md) if !md.is_file() => {
                Err(format!("{} is not a regular file or a block device", path.display()))
            }
            Ok(md) => {
                let len = md.len();
                if len < size {
                    note(format!(
                        "extending {} from {} to {} with pseudo-random data",
                        path.display(),
                        human_bytes(len),
                        human_bytes(size)
                    ));
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| crate::util::path_error("cannot open", path, &e))?;
                    fill(&f, len, size).map_err(|e| {
                        format!(
                            "cannot extend {} to {}: {}",
                            path.display(),
                            human_bytes(size),
                            cause(&e)
                        )
                    })?;
                }
                Ok(BenchFile {
                    path: path.to_path_buf(),
                    temporary: false,
                    len: len.max(size),
                    _on_signal: None,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(path)
                    .map_err(|e| crate::util::path_error("cannot create", path, &e))?;
                // From here on the file is ours: remove it if laying it out fails.
                let made = BenchFile {
                    path: path.to_path_buf(),
                    temporary: true,
                    len: 0,
                    _on_signal: crate::cleanup::remove_on_signal(path),
                };
                reserve(&f, size).and_then(|()| fill(&f, 0, size)).map_err(|e| {
                    format!(
                        "cannot create {} ({}): {}",
                        path.display(),
                        human_bytes(size),
                        cause(&e)
                    )
                })?;
                let mut made = made;
                made.temporary = temporary;
                made.len = size;
                if !temporary {
                    // A --filename made for the user: kept, even when interrupted.
                    made._on_signal = None;
                }
                Ok(made)
            }
            Err(e) => Err(crate::util::path_error("cannot use", path, &e)),
        }
    }
}

/// Reserves `size` bytes (`fallocate`), so a full disk is found before any writing; a
/// filesystem without `fallocate` is fine.
fn reserve(f: &File, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    match aio::sys::fs::fallocate(f.as_fd(), 0, 0, size) {
        Err(e)
            if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// Writes pseudo-random data from `from` to `to`, then fsyncs.
fn fill(f: &File, from: u64, to: u64) -> io::Result<()> {
    let mut buf = vec![0u8; FILL_CHUNK];
    let mut state = 0x00a1_0be2_c4d0_0001 ^ from;
    let mut off = from;
    while off < to {
        let n = ((to - off) as usize).min(FILL_CHUNK);
        fill_random(&mut buf[..n], &mut state);
        splitmix64(&mut state);
        f.write_all_at(&buf[..n], off)?;
        off += n as u64;
    }
    f.sync_all()
}

/// The size of a block device (`BLKGETSIZE64`), or a file's length.
fn device_size(f: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::End(0))
}

/// Reads the first `size` bytes of `path` once, so buffered reads of them hit the page cache.
pub fn warm(path: &Path, size: u64) -> io::Result<()> {
    let f = File::open(path)?;
    let mut buf = vec![0u8; FILL_CHUNK];
    let mut off = 0u64;
    while off < size {
        let n = ((size - off) as usize).min(FILL_CHUNK);
        let got = f.read_at(&mut buf[..n], off)?;
        if got == 0 {
            break;
        }
        off += got as u64;
    }
    Ok(())
}

/// Opens the benchmark file as a job needs it.
pub fn open_for_job(path: &Path, write: bool, direct: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(write);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}
