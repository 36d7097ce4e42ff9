//! `aio cp`'s temporary files: `.NAME.aio-cp.PID.XXXXXX` in DST's directory, where NAME is
//! DST's file name and PID the copying process. The copy holds an exclusive `flock` on its
//! temporary file from the moment it is made until the process ends (the lock goes with the
//! last descriptor, so even `SIGKILL` releases it).
//!
//! A temporary file is *stale* when both say its owner is gone: no process PID runs (as this
//! process's PID namespace sees it) and nobody holds its lock. The PID covers the instant
//! between creating the file and locking it; the lock covers a copy whose PID means something
//! else here (another PID namespace on the same directory) and a PID used again since. A file
//! whose owner cannot be told for sure is kept. Only names of exactly this shape are
//! considered: files made by older versions without a PID in their name are left alone.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What follows NAME in a temporary file's name, before the PID.
const MARK: &str = ".aio-cp.";

/// Characters of the random suffix.
const SUFFIX_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Length of the random suffix.
const SUFFIX_LEN: usize = 6;

/// How many times (20 ms apart) the lock of a file whose process is gone is tried.
const LOCK_TRIES: u32 = 25;

/// The temporary file name for DST name `name`, made by process `pid`, with `suffix`.
pub fn temp_name(name: &OsStr, pid: u32, suffix: &str) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!("{MARK}{pid}.{suffix}"));
    s
}

/// A random suffix for [`temp_name`], from `state`.
pub fn random_suffix(state: &mut u64) -> String {
    (0..SUFFIX_LEN)
        .map(|_| {
            let i = crate::util::splitmix64(state) % SUFFIX_CHARS.len() as u64;
            SUFFIX_CHARS[i as usize] as char
        })
        .collect()
}

/// Takes the ownership lock on a temporary file just made. Where the filesystem has no
/// `flock`, the PID in the name is the only mark of ownership (and the file is then never
/// removed as stale while that PID runs).
pub fn lock(file: &File) {
    let _ = file.try_lock();
}

/// The parts of a temporary file name: (DST name, PID), if `file_name` has the shape
/// [`temp_name`] gives.
pub fn parse(file_name: &OsStr) -> Option<(&OsStr, u32)> {
    let b = file_name.as_bytes();
    let rest = b.strip_prefix(b".")?;
    // From the end: the suffix, a dot, the PID, then MARK.
    if rest.len() < SUFFIX_LEN + 1 {
        return None;
    }
    let (head, suffix) = rest.split_at(rest.len() - SUFFIX_LEN);
    if !suffix.iter().all(|c| SUFFIX_CHARS.contains(c)) {
        return None;
    }
    let head = head.strip_suffix(b".")?;
    let digits = head.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let (head, pid) = head.split_at(head.len() - digits);
    let pid: u32 = std::str::from_utf8(pid).ok()?.parse().ok()?;
    let name = head.strip_suffix(MARK.as_bytes())?;
    if name.is_empty() {
        return None;
    }
    Some((OsStr::from_bytes(name), pid))
}

/// What became of one temporary file found.
#[derive(Debug)]
pub enum Found {
    /// Removed: its owner (this PID) is gone.
    Removed(PathBuf, u32),
    /// Kept, and why.
    Kept(PathBuf, String),
}

/// Looks at the temporary files in `dir` — those for DST name `name`, or for every name when
/// `None` — and removes the stale ones. Temporary files of this process are never touched.
pub fn clean(dir: &Path, name: Option<&OsStr>) -> io::Result<Vec<Found>> {
    let mut out = Vec::new();
    let me = std::process::id();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name();
        let Some((for_name, pid)) = parse(&file_name) else { continue };
        if name.is_some_and(|n| n != for_name) || pid == me {
            continue;
        }
        // As people wrote it: `NAME` in the current directory, not `./NAME`.
        let path =
            if dir == Path::new(".") { PathBuf::from(&file_name) } else { dir.join(&file_name) };
        match remove_if_stale(&path, pid) {
            Ok(None) => out.push(Found::Removed(path, pid)),
            Ok(Some(why)) => out.push(Found::Kept(path, why)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => out.push(Found::Kept(path, crate::util::cause(&e))),
        }
    }
    out.sort_by(|a, b| found_path(a).cmp(found_path(b)));
    Ok(out)
}

fn found_path(f: &Found) -> &Path {
    match f {
        Found::Removed(p, _) | Found::Kept(p, _) => p,
    }
}

/// Removes `path` (made by process `pid`) if its owner is gone: `Ok(None)` when removed,
/// `Ok(Some(reason))` when kept.
fn remove_if_stale(path: &Path, pid: u32) -> io::Result<Option<String>> {
    let md = std::fs::symlink_metadata(path)?;
    if !md.file_type().is_file() {
        return Ok(Some("not a regular file".to_string()));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        return Ok(Some(format!("process {pid} is running")));
    }
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    // A copy killed a moment ago may still hold the lock: the kernel closes the files of its
    // io_uring requests when the ring's teardown, which runs after the process is gone, ends.
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Ok(Some("another process holds its lock (a copy in progress)".to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Ok(Some(format!("cannot lock it: {}", crate::util::cause(&e))));
            }
        }
    }
    // Locked by us: no copy owns it. Remove it if the name still means this file.
    let now = std::fs::symlink_metadata(path)?;
    let held = file.metadata()?;
    if now.dev() != held.dev() || now.ino() != held.ino() {
        return Ok(Some("it was replaced while being looked at".to_string()));
    }
    std::fs::remove_file(path)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_not_taken() {
        let mut state = 1;
        let suffix = random_suffix(&mut state);
        let n = temp_name(OsStr::new("data.bin"), 4242, &suffix);
        assert_eq!(parse(&n), Some((OsStr::new("data.bin"), 4242)));
        let n = temp_name(OsStr::new("a.aio-cp.7.abcdef"), 9, "zzzzzz");
        assert_eq!(parse(&n), Some((OsStr::new("a.aio-cp.7.abcdef"), 9)));
        for other in [
            ".data.bin.aio-cp.abcdef",             // an older version's name: no PID
            "data.bin.aio-cp.12.abcdef",           // no leading dot
            ".data.bin.aio-cp.12.abc",             // short suffix
            ".data.bin.aio-cp.12.abc-ef",          // not the suffix's characters
            ".data.bin.aio-cp..abcdef",            // no PID
            ".aio-cp.12.abcdef",                   // no name
            ".data.bin.aio-cpx12.abcdef",          // not the mark
            ".data.bin.aio-cp.99999999999.abcdef", // not a PID
        ] {
            assert_eq!(parse(OsStr::new(other)), None, "{other}");
        }
    }
}
