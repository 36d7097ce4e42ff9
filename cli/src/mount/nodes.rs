//! The inodes the kernel knows: for each, an `O_PATH` descriptor of the backing file, so names
//! are resolved relative to it (`openat`, `mkdirat`, …) and a rename anywhere never leaves a
//! stale path behind. One inode per backing file (`st_dev`, `st_ino`): hard links share it.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::cache::FileKey;
use super::sys;

/// One inode.
pub struct Node {
    /// The backing file, `O_PATH`.
    pub fd: Arc<OwnedFd>,
    /// Its `(st_dev, st_ino)`.
    pub key: FileKey,
    /// Lookups the kernel has not forgotten.
    lookups: u64,
}

/// The inode table.
pub struct Nodes {
    by_ino: HashMap<u64, Node>,
    by_key: HashMap<FileKey, u64>,
    next: u64,
}

/// The root's inode number (FUSE's).
pub const ROOT: u64 = 1;

/// `(st_dev, st_ino)` of a stat.
pub fn key_of(st: &libc::stat) -> FileKey {
    (st.st_dev, st.st_ino)
}

impl Nodes {
    /// A table holding the root, `root` (an `O_PATH` descriptor of the backing directory).
    pub fn new(root: OwnedFd) -> io::Result<Nodes> {
        let st = sys::fstat(root.as_fd())?;
        let key = key_of(&st);
        let mut by_ino = HashMap::new();
        by_ino.insert(ROOT, Node { fd: Arc::new(root), key, lookups: 1 });
        let mut by_key = HashMap::new();
        by_key.insert(key, ROOT);
        Ok(Nodes { by_ino, by_key, next: ROOT + 1 })
    }

    /// The inode `ino`'s descriptor and key.
    pub fn get(&self, ino: u64) -> Option<(Arc<OwnedFd>, FileKey)> {
        self.by_ino.get(&ino).map(|n| (Arc::clone(&n.fd), n.key))
    }

    /// Counts a lookup of the file `fd` (just opened `O_PATH`, with attributes `st`): the
    /// inode it already has, or a new one holding `fd`.
    pub fn remember(&mut self, fd: OwnedFd, st: &libc::stat) -> u64 {
        let key = key_of(st);
        if let Some(&ino) = self.by_key.get(&key) {
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.lookups += 1;
                return ino;
            }
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, Node { fd: Arc::new(fd), key, lookups: 1 });
        self.by_key.insert(key, ino);
        ino
    }

    /// The kernel forgets `n` lookups of `ino`; returns the node when none is left.
    pub fn forget(&mut self, ino: u64, n: u64) -> Option<Node> {
        if ino == ROOT {
            return None;
        }
        let node = self.by_ino.get_mut(&ino)?;
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return None;
        }
        let node = self.by_ino.remove(&ino)?;
        if self.by_key.get(&node.key) == Some(&ino) {
            self.by_key.remove(&node.key);
        }
        Some(node)
    }

    /// Every inode number.
    pub fn inos(&self) -> Vec<u64> {
        self.by_ino.keys().copied().collect()
    }
}
