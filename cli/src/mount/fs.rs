//! The filesystem mirror: every FUSE request on the mount becomes the same operation on the
//! backing directory. Metadata operations run at once in the FUSE worker thread; reads, writes
//! and fsyncs go to the data path (`data.rs`), or to the held writes (`cache.rs`) with
//! `--lose-unsynced`. Each operation is first shown to the fault rules.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aio::driver::{Buf, Request as IoRequest};
use aio::faults::{Decision, Event, FaultOp, Faults, Outcome};
use aio::AlignedBuf;
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::cache::{Cache, FileKey, SyncJob};
use super::data::DataPath;
use super::nodes::{key_of, Nodes, ROOT};
use super::sys;

/// How long the kernel may cache attributes and names.
const TTL: Duration = Duration::from_secs(1);

/// Memory alignment of data buffers (what `O_DIRECT` on the backing files needs).
const BUF_ALIGN: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// An open file on the mount.
pub struct Handle {
    key: FileKey,
    /// The inode's `O_PATH` descriptor.
    node_fd: Arc<OwnedFd>,
    /// The backing file as the program opened it (with `O_DIRECT` if it asked).
    fd: Arc<OwnedFd>,
    /// Without `O_DIRECT`, for requests the backing file's alignment refuses.
    buffered: Option<Arc<OwnedFd>>,
    /// The path from the mount's root, for fault rules.
    path: String,
    /// Crashes before the open: a handle from before a crash answers `EIO`.
    epoch: u64,
}

/// A directory's entries as `opendir` read them: name, type, inode number.
type Listing = Vec<(Vec<u8>, FileType, u64)>;

/// What the mount shares between FUSE threads, the control socket and the signal thread.
pub struct Shared {
    /// The backing directory, canonical.
    pub backing: std::path::PathBuf,
    /// The fault rules.
    pub faults: Arc<Faults>,
    /// The driver and its completion thread.
    pub data: Arc<DataPath>,
    /// Held writes, with `--lose-unsynced`.
    pub cache: Option<Cache>,
    /// Simulated crashes so far.
    pub epoch: AtomicU64,
    /// Taken shared by operations on held data, exclusively by a crash.
    crash_lock: RwLock<()>,
    /// One sync of held data at a time.
    sync_lock: Mutex<()>,
    nodes: Mutex<Nodes>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    next_fh: AtomicU64,
    /// Offsets and lengths the backing files take with `O_DIRECT` are multiples of this.
    dio_align: u64,
    /// Sends inode numbers to invalidate in the kernel's caches after a crash.
    invalidate: OnceLock<Mutex<std::sync::mpsc::Sender<Vec<u64>>>>,
    /// Whether new files are given to the calling user (the daemon runs as root).
    chown_new: bool,
}

impl Shared {
    /// The state for mirroring the directory `root` (an `O_PATH` descriptor of `backing`).
    pub fn new(
        backing: std::path::PathBuf,
        root: OwnedFd,
        faults: Arc<Faults>,
        data: Arc<DataPath>,
        lose_unsynced: bool,
    ) -> io::Result<Shared> {
        let dio_align = {
            let dir = sys::reopen(root.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
            aio::DioAlign::of(&dir).map_or(4096, |a| a.offset.max(512) as u64)
        };
        Ok(Shared {
            backing,
            faults,
            data,
            cache: lose_unsynced.then(Cache::default),
            epoch: AtomicU64::new(0),
            crash_lock: RwLock::new(()),
            sync_lock: Mutex::new(()),
            nodes: Mutex::new(Nodes::new(root)?),
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            dio_align,
            invalidate: OnceLock::new(),
            chown_new: sys::is_root(),
        })
    }

    /// Where the kernel's cached pages and attributes of every inode are dropped after a
    /// crash.
    pub fn set_invalidator(&self, tx: std::sync::mpsc::Sender<Vec<u64>>) {
        let _ = self.invalidate.set(Mutex::new(tx));
    }

    /// Simulates a power failure: held writes are dropped, open files answer `EIO` from now
    /// on, and the kernel forgets what it cached. Returns the bytes lost.
    pub fn crash(&self, why: &str) -> Result<u64, String> {
        let cache = self.cache.as_ref().ok_or_else(|| {
            "the mount holds no unsynced data to lose (start it with --lose-unsynced)".to_string()
        })?;
        let _excl = self.crash_lock.write().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let lost = cache.crash();
        self.faults.log_event(&format!("crash ({why}): {lost} unsynced bytes lost"));
        let inos = lock(&self.nodes).inos();
        if let Some(tx) = self.invalidate.get() {
            let _ = lock(tx).send(inos);
        }
        Ok(lost)
    }

    /// Writes every held file back and syncs it (a clean unmount).
    pub fn write_back_all(&self) -> io::Result<()> {
        let Some(cache) = &self.cache else { return Ok(()) };
        for key in cache.keys() {
            self.sync_held(key, false)?;
        }
        Ok(())
    }

    fn node(&self, ino: u64) -> Result<(Arc<OwnedFd>, FileKey), Errno> {
        lock(&self.nodes).get(ino).ok_or(Errno::ENOENT)
    }

    /// The path of inode `ino` from the mount's root (`/dir/file`), for fault rules.
    fn path_of(&self, fd: &OwnedFd) -> String {
        match sys::fd_path(fd.as_fd()) {
            Ok(p) => match p.strip_prefix(&self.backing) {
                Ok(rel) => format!("/{}", rel.display()),
                Err(_) => p.display().to_string(),
            },
            Err(_) => String::new(),
        }
    }

    /// The path of `name` in directory `parent` (only computed when rules are armed).
    fn child_path(&self, parent: &OwnedFd, name: &OsStr) -> Option<String> {
        if !self.faults.any() {
            return None;
        }
        let dir = self.path_of(parent);
        let sep = if dir.ends_with('/') { "" } else { "/" };
        Some(format!("{dir}{sep}{}", name.to_string_lossy()))
    }

    /// Decides an operation on inode `fd` without a byte range.
    fn decide(&self, op: FaultOp, fd: &OwnedFd) -> Decision {
        if !self.faults.any() {
            return Decision::PASS;
        }
        let path = self.path_of(fd);
        self.faults.decide(&Event::new(op, Some(&path)))
    }

    fn attr(&self, ino: u64, st: &libc::stat) -> FileAttr {
        let size = match &self.cache {
            Some(c) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                c.size(key_of(st)).unwrap_or(st.st_size as u64)
            }
            _ => st.st_size as u64,
        };
        let time = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH - Duration::new(s.unsigned_abs(), 0)
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            crtime: UNIX_EPOCH,
            kind: kind(st.st_mode),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
            flags: 0,
        }
    }

    /// Looks `name` up in `parent` and counts the lookup: the entry for the kernel.
    fn lookup_child(&self, parent: u64, name: &OsStr) -> Result<(u64, FileAttr), Errno> {
        let (pfd, _) = self.node(parent)?;
        let fd = sys::openat(pfd.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)
            .map_err(|e| errno(&e))?;
        let st = sys::fstat(fd.as_fd()).map_err(|e| errno(&e))?;
        let ino = lock(&self.nodes).remember(fd, &st);
        Ok((ino, self.attr(ino, &st)))
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        let h = lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)?;
        if h.epoch != self.epoch.load(Ordering::SeqCst) {
            // Opened before a simulated crash: that file is gone with the power.
            return Err(Errno::EIO);
        }
        Ok(h)
    }

    fn new_handle(&self, ino: u64, flags: i32) -> Result<(u64, FopenFlags), Errno> {
        let (node_fd, key) = self.node(ino)?;
        // Truncation and appending are the kernel's business (it sends sizes and offsets).
        // O_NOFOLLOW: the kernel resolved the name already, and the /proc link reopened here is
        // itself a symbolic link.
        let flags = flags
            & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND | libc::O_NOFOLLOW);
        let direct = flags & libc::O_DIRECT != 0;
        let fd = sys::reopen(node_fd.as_fd(), flags | libc::O_NOCTTY).map_err(|e| errno(&e))?;
        let buffered = if direct {
            Some(Arc::new(
                sys::reopen(node_fd.as_fd(), (flags & !libc::O_DIRECT) | libc::O_NOCTTY)
                    .map_err(|e| errno(&e))?,
            ))
        } else {
            None
        };
        let path = self.path_of(&node_fd);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let h = Handle {
            key,
            node_fd,
            fd: Arc::new(fd),
            buffered,
            path,
            epoch: self.epoch.load(Ordering::SeqCst),
        };
        lock(&self.handles).insert(fh, Arc::new(h));
        let open = if direct {
            // Straight to us, many at once, writes in parallel.
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
        } else {
            FopenFlags::empty()
        };
        Ok((fh, open))
    }

    /// The descriptor for a request at `offset` of `len` bytes: the handle's, unless it is
    /// `O_DIRECT` and the request is not aligned for it.
    fn fd_for(&self, h: &Handle, offset: u64, len: u64) -> Arc<OwnedFd> {
        match &h.buffered {
            Some(b)
                if !offset.is_multiple_of(self.dio_align)
                    || !len.is_multiple_of(self.dio_align) =>
            {
                Arc::clone(b)
            }
            _ => Arc::clone(&h.fd),
        }
    }

    /// Runs `f` after the decision's delay (on the timer thread when there is one).
    fn later(&self, d: &Decision, f: impl FnOnce() + Send + 'static) {
        self.data.timer.after(d.delay, f);
    }

    /// After an operation a rule crashed on: the power fails.
    fn crash_after(self: &Arc<Self>, d: &Decision) {
        if d.outcome == Outcome::Crash {
            if let Err(e) = self.crash("fault rule") {
                eprintln!("aio mount: crash rule: {e}");
            }
        }
    }

    /// Writes the held layer of `key` to the backing file and syncs it.
    fn sync_held(&self, key: FileKey, datasync: bool) -> io::Result<()> {
        let _one = lock(&self.sync_lock);
        let Some(cache) = &self.cache else { return Ok(()) };
        let Some(job) = cache.seal(key) else { return Ok(()) };
        let result = self.write_job(&job, datasync);
        if result.is_ok() {
            cache.synced(&job);
        }
        result
    }

    fn write_job(&self, job: &SyncJob, datasync: bool) -> io::Result<()> {
        let fd = Arc::new(sys::reopen(job.fd.as_fd(), libc::O_WRONLY)?);
        if let Some(t) = job.truncate_to {
            sys::ftruncate(fd.as_fd(), t)?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let mut n = 0;
        for (&off, data) in job.extents.iter() {
            let buf = Buf::for_write(AlignedBuf::from_slice(data, BUF_ALIGN))
                .keep_alive(Arc::clone(&fd) as Arc<dyn std::any::Any + Send + Sync>);
            let want = data.len() as i64;
            let tx = tx.clone();
            self.data.submit(
                IoRequest::write(fd.as_raw_fd(), buf, off, 0),
                Box::new(move |c| {
                    let _ = tx.send((c.res, want, off));
                }),
            );
            n += 1;
        }
        drop(tx);
        let mut first_err = None;
        for _ in 0..n {
            let (res, want, off) =
                rx.recv().map_err(|_| io::Error::from_raw_os_error(libc::EIO))?;
            if res < 0 {
                first_err.get_or_insert(io::Error::from_raw_os_error(-res as i32));
            } else if res < want {
                // The driver reports short writes; write the rest at once.
                let rest = &job.extents[&off][res as usize..];
                if let Err(e) = sys::pwrite_all(fd.as_fd(), rest, off + res as u64) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        sys::ftruncate(fd.as_fd(), job.size)?;
        let req = if datasync {
            IoRequest::fdatasync(fd.as_raw_fd(), 0)
        } else {
            IoRequest::fsync(fd.as_raw_fd(), 0)
        };
        let c = self.data.run(req);
        c.result().map(drop)
    }
}

fn kind(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn timespec(t: TimeOrNow) -> sys::Time {
    match t {
        TimeOrNow::Now => sys::Time::Now,
        TimeOrNow::SpecificTime(st) => {
            let (s, ns) = match st.duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                Err(e) => (-(e.duration().as_secs() as i64), 0),
            };
            sys::Time::At(libc::timespec { tv_sec: s, tv_nsec: ns })
        }
    }
}

/// The FUSE filesystem: the shared state behind `fuser`'s trait.
pub struct Mirror {
    /// The state.
    pub s: Arc<Shared>,
    /// FUSE requests that may be in the background at once.
    pub max_background: u16,
}

/// Replies with an error after the decision's delay, if the decision fails the operation;
/// otherwise gives the reply back.
macro_rules! fault_or {
    ($s:expr, $d:expr, $reply:expr) => {
        if let Outcome::Fail(e) = $d.outcome {
            let reply = $reply;
            $s.later(&$d, move || reply.error(Errno::from_i32(e)));
            return;
        }
    };
}

impl Filesystem for Mirror {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Each is asked for only where the kernel offers it.
        for cap in [InitFlags::FUSE_ASYNC_DIO, InitFlags::FUSE_PARALLEL_DIROPS] {
            let _ = config.add_capabilities(cap);
        }
        let _ = config.set_max_background(self.max_background);
        let _ = config.set_congestion_threshold(self.max_background / 4 * 3);
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.s.write_back_all() {
            eprintln!("aio mount: writing back held data at unmount: {}", crate::util::cause(&e));
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.s.lookup_child(parent.0, name) {
            Ok((_, attr)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let gone = lock(&self.s.nodes).forget(ino.0, nlookup);
        if let (Some(node), Some(cache)) = (gone, &self.s.cache) {
            // A file removed from every directory and forgotten: its held data goes too.
            if sys::fstat(node.fd.as_fd()).is_ok_and(|st| st.st_nlink == 0) {
                cache.forget(node.key);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Getattr, &fd);
        fault_or!(s, d, reply);
        match sys::fstat(fd.as_fd()) {
            Ok(st) => {
                let attr = s.attr(ino.0, &st);
                s.later(&d, move || reply.attr(&TTL, &attr));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let s = &self.s;
        let (fd, key) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let op = if size.is_some() { FaultOp::Truncate } else { FaultOp::Setattr };
        let d = s.decide(op, &fd);
        fault_or!(s, d, reply);
        let result = (|| -> io::Result<()> {
            if let Some(m) = mode {
                sys::chmod(fd.as_fd(), m & 0o7777)?;
            }
            if uid.is_some() || gid.is_some() {
                sys::chown(fd.as_fd(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX))?;
            }
            if let Some(size) = size {
                if let Some(fh) = fh {
                    // A handle from before a crash truncates nothing.
                    s.handle(fh).map_err(|e| io::Error::from_raw_os_error(e.code()))?;
                }
                match &s.cache {
                    Some(cache) => {
                        let _guard = s.crash_lock.read().unwrap_or_else(PoisonError::into_inner);
                        let st = sys::fstat(fd.as_fd())?;
                        cache.truncate(key, &fd, st.st_size as u64, size);
                    }
                    None => {
                        let w = sys::reopen(fd.as_fd(), libc::O_WRONLY)?;
                        sys::ftruncate(w.as_fd(), size)?;
                    }
                }
            }
            if atime.is_some() || mtime.is_some() {
                let t = |x: Option<TimeOrNow>| x.map_or(sys::Time::Omit, timespec);
                sys::utimens(fd.as_fd(), t(atime), t(mtime))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            return reply.error(errno(&e));
        }
        match sys::fstat(fd.as_fd()) {
            Ok(st) => {
                let attr = s.attr(ino.0, &st);
                s.later(&d, move || reply.attr(&TTL, &attr));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .s
            .node(ino.0)
            .and_then(|(fd, _)| sys::readlink(fd.as_fd()).map_err(|e| errno(&e)))
        {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.make(req, parent, name, FaultOp::Create, reply, |dir| {
            sys::mknodat(dir, name, mode, u64::from(rdev))
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.make(req, parent, name, FaultOp::Mkdir, reply, |dir| sys::mkdirat(dir, name, mode));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, false, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, true, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.make(req, parent, link_name, FaultOp::Link, reply, |dir| {
            sys::symlinkat(target.as_os_str(), dir, link_name)
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let s = &self.s;
        let (Ok((from, _)), Ok((to, _))) = (s.node(parent.0), s.node(newparent.0)) else {
            return reply.error(Errno::ENOENT);
        };
        let path = s.child_path(&from, name);
        let d = s.faults.decide(&Event::new(FaultOp::Rename, path.as_deref()));
        fault_or!(s, d, reply);
        match sys::renameat2(from.as_fd(), name, to.as_fd(), newname, flags.bits()) {
            Ok(()) => s.later(&d, move || reply.ok()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let s = &self.s;
        let (Ok((fd, _)), Ok((dir, _))) = (s.node(ino.0), s.node(newparent.0)) else {
            return reply.error(Errno::ENOENT);
        };
        let d = s.decide(FaultOp::Link, &fd);
        fault_or!(s, d, reply);
        if let Err(e) = sys::linkat(fd.as_fd(), dir.as_fd(), newname) {
            return reply.error(errno(&e));
        }
        match s.lookup_child(newparent.0, newname) {
            Ok((_, attr)) => s.later(&d, move || reply.entry(&TTL, &attr, Generation(0))),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Open, &fd);
        fault_or!(s, d, reply);
        match s.new_handle(ino.0, flags.0) {
            Ok((fh, open)) => s.later(&d, move || reply.opened(FileHandle(fh), open)),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = &self.s;
        let h = match s.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let d = if s.faults.any() {
            s.faults.decide(&Event::data(FaultOp::Read, Some(&h.path), offset, u64::from(size)))
        } else {
            Decision::PASS
        };
        fault_or!(s, d, reply);
        let mut len = size as usize;
        if let Outcome::Short(n) = d.outcome {
            len = len.min(n as usize);
        }
        // With held writes: the backing bytes that still show, then the layers over them.
        let plan = s.cache.as_ref().and_then(|c| {
            let backing = sys::fstat(h.fd.as_fd()).map_or(0, |st| st.st_size as u64);
            c.plan_read(h.key, offset, len, backing)
        });
        let (want, total) = match &plan {
            Some(p) => (p.backing_len, Some(p.len)),
            None => (len, None),
        };
        let shared = Arc::clone(s);
        let key = h.key;
        let finish = move |r: Result<(AlignedBuf, usize), Errno>| {
            let (mut data, got) = match r {
                Ok(x) => x,
                Err(e) => return reply.error(e),
            };
            let n = match total {
                Some(total) => {
                    data.set_len(total.max(got));
                    let buf = &mut data.as_full_mut_slice()[..total];
                    buf[got.min(total)..].fill(0);
                    if let Some(c) = &shared.cache {
                        c.overlay(key, offset, buf);
                    }
                    total
                }
                None => got,
            };
            let sh = Arc::clone(&shared);
            shared.later(&d, move || {
                reply.data(&data.as_full_slice()[..n]);
                sh.crash_after(&d);
            });
        };
        let cap = total.unwrap_or(len).max(1);
        let buf = AlignedBuf::new(cap, BUF_ALIGN);
        if want == 0 {
            return finish(Ok((buf, 0)));
        }
        let fd = s.fd_for(&h, offset, want as u64);
        let mut io =
            Buf::for_read(buf).keep_alive(Arc::clone(&fd) as Arc<dyn std::any::Any + Send + Sync>);
        io.truncate(want);
        s.data.submit(
            IoRequest::read(fd.as_raw_fd(), io, offset, 0),
            Box::new(move |c| {
                let res = c.res;
                match c.buf.take::<AlignedBuf>() {
                    Some(_) if res < 0 => finish(Err(Errno::from_i32(-res as i32))),
                    Some(buf) => finish(Ok((buf, res as usize))),
                    None => finish(Err(Errno::EIO)),
                }
            }),
        );
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let s = &self.s;
        let h = match s.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let len = data.len();
        let d = if s.faults.any() {
            s.faults.decide(&Event::data(FaultOp::Write, Some(&h.path), offset, len as u64))
        } else {
            Decision::PASS
        };
        fault_or!(s, d, reply);
        // What reaches the file, and what the program is told.
        let (keep, told) = match d.outcome {
            Outcome::Short(n) => (n as usize, n as usize),
            Outcome::Torn(n) => (n as usize, len),
            _ => (len, len),
        };
        let keep = keep.min(len);
        if let Some(cache) = &s.cache {
            let guard = s.crash_lock.read().unwrap_or_else(PoisonError::into_inner);
            if h.epoch != s.epoch.load(Ordering::SeqCst) {
                return reply.error(Errno::EIO);
            }
            if keep > 0 {
                let backing = sys::fstat(h.fd.as_fd()).map_or(0, |st| st.st_size as u64);
                cache.write(h.key, &h.node_fd, backing, offset, &data[..keep]);
            }
            drop(guard);
            let sh = Arc::clone(s);
            return s.later(&d, move || {
                reply.written(told as u32);
                sh.crash_after(&d);
            });
        }
        if keep == 0 {
            let sh = Arc::clone(s);
            return s.later(&d, move || {
                reply.written(told as u32);
                sh.crash_after(&d);
            });
        }
        let fd = s.fd_for(&h, offset, keep as u64);
        let buf = Buf::for_write(AlignedBuf::from_slice(&data[..keep], BUF_ALIGN))
            .keep_alive(Arc::clone(&fd) as Arc<dyn std::any::Any + Send + Sync>);
        let sh = Arc::clone(s);
        s.data.submit(
            IoRequest::write(fd.as_raw_fd(), buf, offset, 0),
            Box::new(move |c| {
                if c.res < 0 {
                    return reply.error(Errno::from_i32(-c.res as i32));
                }
                // A torn write reports every byte; otherwise what the backing file took.
                let n = if told > keep && (c.res as usize) == keep { told } else { c.res as usize };
                let s2 = Arc::clone(&sh);
                sh.later(&d, move || {
                    reply.written(n as u32);
                    s2.crash_after(&d);
                });
            }),
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.s.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let s = &self.s;
        let h = match s.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let op = if datasync { FaultOp::Fdatasync } else { FaultOp::Fsync };
        let d = if s.faults.any() {
            s.faults.decide(&Event::new(op, Some(&h.path)))
        } else {
            Decision::PASS
        };
        fault_or!(s, d, reply);
        if s.cache.is_some() {
            let r = s.sync_held(h.key, datasync);
            if h.epoch != s.epoch.load(Ordering::SeqCst) {
                return reply.error(Errno::EIO);
            }
            let sh = Arc::clone(s);
            return match r {
                Ok(()) => s.later(&d, move || {
                    reply.ok();
                    sh.crash_after(&d);
                }),
                Err(e) => reply.error(errno(&e)),
            };
        }
        let req = if datasync {
            IoRequest::fdatasync(h.fd.as_raw_fd(), 0)
        } else {
            IoRequest::fsync(h.fd.as_raw_fd(), 0)
        };
        let req = req.keep_alive(Arc::clone(&h.fd) as Arc<dyn std::any::Any + Send + Sync>);
        let sh = Arc::clone(s);
        s.data.submit(
            req,
            Box::new(move |c| {
                if c.res < 0 {
                    return reply.error(Errno::from_i32(-c.res as i32));
                }
                let s2 = Arc::clone(&sh);
                sh.later(&d, move || {
                    reply.ok();
                    s2.crash_after(&d);
                });
            }),
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Readdir, &fd);
        fault_or!(s, d, reply);
        let list = (|| -> io::Result<Listing> {
            let dir = sys::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
            let mut v = vec![
                (b".".to_vec(), FileType::Directory, ino.0),
                (b"..".to_vec(), FileType::Directory, ROOT),
            ];
            for e in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
                let e = e?;
                let ft = e.file_type()?;
                let kind = FileType::from_std(ft).unwrap_or(FileType::RegularFile);
                use std::os::unix::fs::DirEntryExt;
                v.push((e.file_name().as_bytes().to_vec(), kind, e.ino()));
            }
            Ok(v)
        })();
        match list {
            Ok(v) => {
                let fh = s.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&s.dirs).insert(fh, Arc::new(v));
                s.later(&d, move || reply.opened(FileHandle(fh), FopenFlags::empty()));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(list) = lock(&self.s.dirs).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (i, (name, kind, ino)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.s.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.s.node(ino.0).and_then(|(fd, _)| {
            let dir = sys::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| errno(&e))?;
            sys::fsync(dir.as_fd(), datasync).map_err(|e| errno(&e))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let r =
            self.s.node(ROOT).and_then(|(fd, _)| sys::statvfs(fd.as_fd()).map_err(|e| errno(&e)));
        match r {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                st.f_bsize as u32,
                st.f_namemax as u32,
                st.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Xattr, &fd);
        fault_or!(s, d, reply);
        match sys::setxattr(fd.as_fd(), name, value, flags) {
            Ok(()) => s.later(&d, move || reply.ok()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Xattr, &fd);
        fault_or!(s, d, reply);
        let mut buf = vec![0u8; size as usize];
        match sys::getxattr(fd.as_fd(), name, &mut buf) {
            Ok(n) if size == 0 => s.later(&d, move || reply.size(n as u32)),
            Ok(n) => s.later(&d, move || reply.data(&buf[..n])),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; size as usize];
        match sys::listxattr(fd.as_fd(), &mut buf) {
            Ok(n) if size == 0 => reply.size(n as u32),
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let s = &self.s;
        let (fd, _) = match s.node(ino.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let d = s.decide(FaultOp::Xattr, &fd);
        fault_or!(s, d, reply);
        match sys::removexattr(fd.as_fd(), name) {
            Ok(()) => s.later(&d, move || reply.ok()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self
            .s
            .node(ino.0)
            .and_then(|(fd, _)| sys::access(fd.as_fd(), mask.bits()).map_err(|e| errno(&e)))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let s = &self.s;
        let (dir, _) = match s.node(parent.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let path = s.child_path(&dir, name);
        let d = s.faults.decide(&Event::new(FaultOp::Create, path.as_deref()));
        fault_or!(s, d, reply);
        let made = sys::openat(
            dir.as_fd(),
            name,
            (flags & !(libc::O_TRUNC | libc::O_APPEND | libc::O_DIRECT)) | libc::O_CREAT,
            mode,
        );
        let file = match made {
            Ok(f) => f,
            Err(e) => return reply.error(errno(&e)),
        };
        if s.chown_new {
            let _ = sys::chown(file.as_fd(), req.uid(), req.gid());
        }
        drop(file);
        let (ino, attr) = match s.lookup_child(parent.0, name) {
            Ok(x) => x,
            Err(e) => return reply.error(e),
        };
        if let (Some(cache), Ok((_, key))) = (&s.cache, s.node(ino)) {
            // A new file whose inode number an old, removed one had: nothing of that is held.
            if flags & libc::O_EXCL != 0 {
                cache.forget(key);
            }
        }
        match s.new_handle(ino, flags) {
            Ok((fh, open)) => {
                s.later(&d, move || reply.created(&TTL, &attr, Generation(0), FileHandle(fh), open))
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let s = &self.s;
        let h = match s.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let d = if s.faults.any() {
            s.faults.decide(&Event::new(FaultOp::Fallocate, Some(&h.path)))
        } else {
            Decision::PASS
        };
        fault_or!(s, d, reply);
        let r = match &s.cache {
            // Held data: allocation only changes the size; the modes that change data are not
            // modelled.
            Some(cache) if mode & !libc::FALLOC_FL_KEEP_SIZE == 0 => {
                let _guard = s.crash_lock.read().unwrap_or_else(PoisonError::into_inner);
                let st = sys::fstat(h.fd.as_fd());
                st.map(|st| {
                    let size = cache.size(h.key).unwrap_or(st.st_size as u64);
                    if mode & libc::FALLOC_FL_KEEP_SIZE == 0 && offset + length > size {
                        cache.truncate(h.key, &h.node_fd, st.st_size as u64, offset + length);
                    }
                })
            }
            Some(_) => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            None => sys::fallocate(h.fd.as_fd(), mode, offset, length),
        };
        match r {
            Ok(()) => s.later(&d, move || reply.ok()),
            Err(e) => reply.error(errno(&e)),
        }
    }
}

impl Mirror {
    /// Creates `name` in `parent` with `make`, then looks it up for the kernel.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        op: FaultOp,
        reply: ReplyEntry,
        make: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<()>,
    ) {
        let s = &self.s;
        let (dir, _) = match s.node(parent.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let path = s.child_path(&dir, name);
        let d = s.faults.decide(&Event::new(op, path.as_deref()));
        fault_or!(s, d, reply);
        if let Err(e) = make(dir.as_fd()) {
            return reply.error(errno(&e));
        }
        if s.chown_new {
            if let Ok(fd) = sys::openat(dir.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
                let _ = sys::chown(fd.as_fd(), req.uid(), req.gid());
            }
        }
        match s.lookup_child(parent.0, name) {
            Ok((_, attr)) => s.later(&d, move || reply.entry(&TTL, &attr, Generation(0))),
            Err(e) => reply.error(e),
        }
    }

    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let s = &self.s;
        let (pfd, _) = match s.node(parent.0) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let path = s.child_path(&pfd, name);
        let op = if dir { FaultOp::Rmdir } else { FaultOp::Unlink };
        let d = s.faults.decide(&Event::new(op, path.as_deref()));
        fault_or!(s, d, reply);
        match sys::unlinkat(pfd.as_fd(), name, dir) {
            Ok(()) => s.later(&d, move || reply.ok()),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
