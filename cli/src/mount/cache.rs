//! Unsynced writes (`--lose-unsynced`): what programs wrote but have not yet fsynced, held in
//! the daemon's memory, visible to reads, written to the backing file by `fsync`/`fdatasync`
//! (or a clean unmount), and dropped by a simulated power failure.
//!
//! A file's held state is a stack of layers over its backing file, oldest first. Each layer has
//! the extents written while it was current, the lowest size the file was truncated to, and the
//! file's size. Reading applies them in order to what the backing file holds: bytes at or past a
//! layer's truncation become zeros, then its extents are copied in. An fsync seals the current
//! layer (new writes start a new one), writes the sealed layer to the backing file, and drops it
//! once the backing file is synced; reads meanwhile still see it over the backing file.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A backing file: `(st_dev, st_ino)`.
pub type FileKey = (u64, u64);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Default)]
struct Layer {
    id: u64,
    sealed: bool,
    /// The lowest size the file was truncated to while this layer was current.
    truncated_to: Option<u64>,
    /// The file's size with this layer applied.
    size: u64,
    /// Non-overlapping written ranges, by start.
    extents: Arc<BTreeMap<u64, Vec<u8>>>,
}

impl Layer {
    fn held_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// Removes what `[start, end)` covers from the extents (splitting those that straddle it).
    fn cut(&mut self, start: u64, end: u64) {
        let ext = Arc::make_mut(&mut self.extents);
        let hit: Vec<u64> = ext
            .range(..end)
            .filter(|(&s, v)| s + v.len() as u64 > start)
            .map(|(&s, _)| s)
            .collect();
        for s in hit {
            let v = ext.remove(&s).expect("present");
            let e = s + v.len() as u64;
            if s < start {
                ext.insert(s, v[..(start - s) as usize].to_vec());
            }
            if e > end {
                ext.insert(end, v[(end - s) as usize..].to_vec());
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.cut(offset, offset + data.len() as u64);
        Arc::make_mut(&mut self.extents).insert(offset, data.to_vec());
        self.size = self.size.max(offset + data.len() as u64);
    }

    fn truncate(&mut self, size: u64) {
        self.cut(size, u64::MAX);
        self.truncated_to = Some(self.truncated_to.map_or(size, |t| t.min(size)));
        self.size = size;
    }

    /// Applies this layer to `buf`, which holds the file's bytes from `offset`.
    fn apply(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        if let Some(t) = self.truncated_to {
            if t < end {
                let from = t.saturating_sub(offset) as usize;
                buf[from..].fill(0);
            }
        }
        for (&s, v) in self.extents.range(..end) {
            let e = s + v.len() as u64;
            if e <= offset {
                continue;
            }
            let (lo, hi) = (s.max(offset), e.min(end));
            buf[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&v[(lo - s) as usize..(hi - s) as usize]);
        }
    }
}

struct FileState {
    /// The backing file (`O_PATH`), kept so held data can be written back even after the
    /// kernel forgets the inode.
    fd: Arc<OwnedFd>,
    layers: Vec<Layer>,
}

impl FileState {
    fn size(&self) -> u64 {
        self.layers.last().map_or(0, |l| l.size)
    }

    /// The current (unsealed) layer, started on top of the others if needed.
    fn current(&mut self, next_id: &mut u64) -> &mut Layer {
        if self.layers.last().is_none_or(|l| l.sealed) {
            let size = self.size();
            *next_id += 1;
            self.layers.push(Layer { id: *next_id, size, ..Layer::default() });
        }
        self.layers.last_mut().expect("just made")
    }
}

/// A sealed layer on its way to the backing file.
pub struct SyncJob {
    /// The backing file (`O_PATH`).
    pub fd: Arc<OwnedFd>,
    /// Truncate the backing file to this size first.
    pub truncate_to: Option<u64>,
    /// Then write these.
    pub extents: Arc<BTreeMap<u64, Vec<u8>>>,
    /// Then set the size to this.
    pub size: u64,
    key: FileKey,
    layer: u64,
}

/// What a read must take from the backing file before the held layers go over it.
pub struct ReadPlan {
    /// Bytes the read returns (clamped to the file's size).
    pub len: usize,
    /// How many of them come from the backing file (the rest start as zeros).
    pub backing_len: usize,
}

/// The held writes of every file.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    files: HashMap<FileKey, FileState>,
    next_layer: u64,
}

impl Cache {
    /// Holds a write of `data` at `offset`. `fd` and `backing_size` describe the backing file
    /// for a file not held yet.
    pub fn write(
        &self,
        key: FileKey,
        fd: &Arc<OwnedFd>,
        backing_size: u64,
        offset: u64,
        data: &[u8],
    ) {
        let mut inner = lock(&self.inner);
        let Inner { files, next_layer } = &mut *inner;
        let st = files.entry(key).or_insert_with(|| FileState {
            fd: Arc::clone(fd),
            layers: vec![Layer { size: backing_size, sealed: true, ..Layer::default() }],
        });
        st.current(next_layer).write(offset, data);
    }

    /// Holds a change of size.
    pub fn truncate(&self, key: FileKey, fd: &Arc<OwnedFd>, backing_size: u64, size: u64) {
        let mut inner = lock(&self.inner);
        let Inner { files, next_layer } = &mut *inner;
        let st = files.entry(key).or_insert_with(|| FileState {
            fd: Arc::clone(fd),
            layers: vec![Layer { size: backing_size, sealed: true, ..Layer::default() }],
        });
        let cur = st.current(next_layer);
        if size < cur.size {
            cur.truncate(size);
        } else {
            cur.size = size;
        }
    }

    /// The file's size, if anything of it is held.
    pub fn size(&self, key: FileKey) -> Option<u64> {
        lock(&self.inner).files.get(&key).map(FileState::size)
    }

    /// How a read of `len` bytes at `offset` is served, if anything of the file is held
    /// (`backing_size`: the backing file's size now).
    pub fn plan_read(
        &self,
        key: FileKey,
        offset: u64,
        len: usize,
        backing_size: u64,
    ) -> Option<ReadPlan> {
        let inner = lock(&self.inner);
        let st = inner.files.get(&key)?;
        let size = st.size();
        let len = (size.saturating_sub(offset)).min(len as u64) as usize;
        let visible = st.layers.iter().filter_map(|l| l.truncated_to).fold(backing_size, u64::min);
        let backing_len = visible.saturating_sub(offset).min(len as u64) as usize;
        Some(ReadPlan { len, backing_len })
    }

    /// Applies the held layers to `buf` (the file's bytes from `offset`, backing data first).
    pub fn overlay(&self, key: FileKey, offset: u64, buf: &mut [u8]) {
        let inner = lock(&self.inner);
        if let Some(st) = inner.files.get(&key) {
            for layer in &st.layers {
                layer.apply(offset, buf);
            }
        }
    }

    /// Seals the file's current layer for writing back, if it has one.
    pub fn seal(&self, key: FileKey) -> Option<SyncJob> {
        let mut inner = lock(&self.inner);
        let st = inner.files.get_mut(&key)?;
        let layer = st.layers.iter_mut().rfind(|l| !l.sealed)?;
        layer.sealed = true;
        Some(SyncJob {
            fd: Arc::clone(&st.fd),
            truncate_to: layer.truncated_to,
            extents: Arc::clone(&layer.extents),
            size: layer.size,
            key,
            layer: layer.id,
        })
    }

    /// The job's layer is in the backing file and synced: stop holding it (and the file, when
    /// nothing else of it is held).
    pub fn synced(&self, job: &SyncJob) {
        let mut inner = lock(&self.inner);
        if let Some(st) = inner.files.get_mut(&job.key) {
            st.layers.retain(|l| l.id != job.layer);
            // The base layer (id 0) only carries the backing size.
            if st.layers.iter().all(|l| l.id == 0) {
                inner.files.remove(&job.key);
            }
        }
    }

    /// The power fails: everything held is gone. Returns the bytes lost.
    pub fn crash(&self) -> u64 {
        let mut inner = lock(&self.inner);
        let lost = inner.files.values().flat_map(|s| &s.layers).map(Layer::held_bytes).sum();
        inner.files.clear();
        lost
    }

    /// Stops holding a file that no longer exists.
    pub fn forget(&self, key: FileKey) {
        lock(&self.inner).files.remove(&key);
    }

    /// The files held now.
    pub fn keys(&self) -> Vec<FileKey> {
        lock(&self.inner).files.keys().copied().collect()
    }

    /// Files and bytes held.
    pub fn held(&self) -> (usize, u64) {
        let inner = lock(&self.inner);
        let bytes = inner.files.values().flat_map(|s| &s.layers).map(Layer::held_bytes).sum();
        (inner.files.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/").unwrap().into())
    }

    /// What a read of the whole file gives, over `backing`.
    fn read(c: &Cache, key: FileKey, backing: &[u8]) -> Vec<u8> {
        let plan = c.plan_read(key, 0, 1 << 20, backing.len() as u64).unwrap();
        let mut buf = vec![0u8; plan.len];
        buf[..plan.backing_len].copy_from_slice(&backing[..plan.backing_len]);
        c.overlay(key, 0, &mut buf);
        buf
    }

    #[test]
    fn writes_overlay_and_truncate() {
        let c = Cache::default();
        let k = (1, 2);
        let f = fd();
        let backing = b"0123456789".to_vec();
        assert!(c.plan_read(k, 0, 10, 10).is_none());
        c.write(k, &f, 10, 2, b"ab");
        assert_eq!(read(&c, k, &backing), b"01ab456789");
        c.write(k, &f, 10, 12, b"XY");
        assert_eq!(read(&c, k, &backing), b"01ab456789\0\0XY");
        c.truncate(k, &f, 10, 3);
        assert_eq!(read(&c, k, &backing), b"01a");
        c.truncate(k, &f, 10, 6);
        assert_eq!(read(&c, k, &backing), b"01a\0\0\0");
        c.write(k, &f, 10, 1, b"zzzz");
        assert_eq!(read(&c, k, &backing), b"0zzzz\0");
        assert_eq!(c.size(k), Some(6));
    }

    #[test]
    fn sync_seals_and_crash_drops() {
        let c = Cache::default();
        let k = (1, 3);
        let f = fd();
        let mut backing = b"aaaaaaaa".to_vec();
        c.write(k, &f, 8, 0, b"BB");
        let job = c.seal(k).unwrap();
        // Writes after the seal go to a new layer, over the sealed one.
        c.write(k, &f, 8, 1, b"C");
        assert_eq!(read(&c, k, &backing), b"BCaaaaaa");
        // The job's extents reach the backing file, then it is dropped.
        for (&off, v) in job.extents.iter() {
            backing[off as usize..off as usize + v.len()].copy_from_slice(v);
        }
        c.synced(&job);
        assert_eq!(read(&c, k, &backing), b"BCaaaaaa");
        assert_eq!(c.held(), (1, 1));
        assert_eq!(c.crash(), 1);
        assert!(c.plan_read(k, 0, 8, 8).is_none());
        assert_eq!(backing, b"BBaaaaaa");
        assert!(c.seal(k).is_none());
    }

    #[test]
    fn a_synced_file_is_not_held() {
        let c = Cache::default();
        let k = (1, 4);
        let f = fd();
        c.write(k, &f, 0, 0, b"x");
        let job = c.seal(k).unwrap();
        c.synced(&job);
        assert_eq!(c.held(), (0, 0));
        assert!(c.size(k).is_none());
    }
}
