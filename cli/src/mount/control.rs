//! The control socket: how `aio fault MOUNTPOINT …` reaches a running `aio mount`.
//!
//! A Unix stream socket, owner-only (mode 0600), at `DIR/mount-HASH.sock`: `DIR` is
//! `$AIO_RUN_DIR` if set, else `/run/aio` (root) or `$XDG_RUNTIME_DIR/aio`, else
//! `/tmp/aio-UID`; `HASH` is 16 hex digits of a hash of the mountpoint's absolute path (its
//! parent directory resolved, so the mount itself is never touched). `aio mount` prints the path
//! when it starts and removes the socket when it ends.
//!
//! The protocol: the client sends one line — `add SPEC`, `list`, `clear`, `crash` or `status` —
//! and the daemon answers `ok` or `error MESSAGE` on the first line, then any details, then
//! closes the connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aio::faults::Rule;

use super::fs::Shared;

/// The mountpoint as both sides name it: its parent resolved, its last component as given.
pub fn absolute_mountpoint(mountpoint: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(mountpoint)?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(std::fs::canonicalize(parent)?.join(name)),
        _ => Ok(abs),
    }
}

/// The directory control sockets live in.
fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIO_RUN_DIR") {
        return PathBuf::from(d);
    }
    if super::sys::is_root() {
        return PathBuf::from("/run/aio");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("aio");
    }
    PathBuf::from(format!("/tmp/aio-{}", aio::sys::proc::uid()))
}

/// FNV-1a, 64 bits: a stable hash of the mountpoint's path for the socket's name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The control socket of the mount at `mountpoint`.
pub fn socket_path(mountpoint: &Path) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let abs = absolute_mountpoint(mountpoint)?;
    Ok(run_dir().join(format!("mount-{:016x}.sock", fnv1a(abs.as_os_str().as_bytes()))))
}

/// The listening socket; removed from the file system when dropped.
pub struct Control {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl Control {
    /// Binds the socket for `mountpoint`: fails if another daemon answers there; a stale
    /// socket left by a daemon that died is replaced.
    pub fn bind(mountpoint: &Path) -> Result<Control, String> {
        let path = socket_path(mountpoint)
            .map_err(|e| format!("cannot resolve {}: {}", mountpoint.display(), e))?;
        let dir = path.parent().expect("a socket path has a directory");
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::util::path_error("cannot create", dir, &e))?;
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(format!(
                    "another aio mount answers on {} (is {} mounted already?)",
                    path.display(),
                    mountpoint.display()
                ));
            }
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path)
            .map_err(|e| crate::util::path_error("cannot create the control socket", &path, &e))?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        Ok(Control { listener: Some(listener), path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections on a thread of its own, for as long as the process lives.
    pub fn serve(&mut self, shared: Arc<Shared>) -> io::Result<()> {
        let Some(listener) = self.listener.take() else { return Ok(()) };
        std::thread::Builder::new().name("aio-mount-control".into()).spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = answer(conn, &shared);
            }
        })?;
        Ok(())
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(conn: UnixStream, shared: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&conn).take(64 * 1024).read_line(&mut line)?;
    let reply = match command(line.trim(), shared) {
        Ok(body) => format!("ok\n{body}"),
        Err(e) => format!("error {e}\n"),
    };
    (&conn).write_all(reply.as_bytes())
}

fn command(line: &str, s: &Shared) -> Result<String, String> {
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "add" => {
            let rule: Rule = arg.trim().parse()?;
            if rule.action == aio::faults::Action::Crash && s.cache.is_none() {
                return Err("action=crash needs a mount started with --lose-unsynced".into());
            }
            let text = rule.to_string();
            let id = s.faults.add(rule);
            Ok(format!("rule {id}: {text}\n"))
        }
        "list" => Ok(s
            .faults
            .rules()
            .iter()
            .map(|r| {
                format!("rule {}: {} (matched {}, fired {})\n", r.id, r.rule, r.matched, r.fired)
            })
            .collect()),
        "clear" => Ok(format!("{} rules removed\n", s.faults.clear())),
        "crash" => {
            let lost = s.crash("aio fault crash")?;
            Ok(format!("crashed: {lost} unsynced bytes lost\n"))
        }
        "status" => {
            let st = &s.data.stats;
            let (files, bytes) = s.cache.as_ref().map_or((0, 0), |c| c.held());
            Ok(format!(
                "driver: {}\nseed: {}\nrules: {}\nlose-unsynced: {}\ncrashes: {}\nrequests: {}\n\
                 in flight: {}\nmost in flight: {}\nbacklogged: {}\nheld: {} files, {} bytes\n",
                s.data.driver_name(),
                s.faults.seed(),
                s.faults.rules().len(),
                if s.cache.is_some() { "yes" } else { "no" },
                s.epoch.load(Ordering::SeqCst),
                st.submitted.load(Ordering::Relaxed),
                st.in_flight.load(Ordering::Relaxed),
                st.max_in_flight.load(Ordering::Relaxed),
                st.backlogged.load(Ordering::Relaxed),
                files,
                bytes,
            ))
        }
        "" => Err("empty command".into()),
        other => Err(format!("unknown command {other:?} (add SPEC, list, clear, crash, status)")),
    }
}

/// Sends one command to the daemon of `mountpoint`: its answer's details, or why it failed.
pub fn request(mountpoint: &Path, line: &str) -> Result<String, String> {
    let path = socket_path(mountpoint)
        .map_err(|e| format!("cannot resolve {}: {}", mountpoint.display(), e))?;
    let mut conn = UnixStream::connect(&path).map_err(|e| {
        format!(
            "no aio mount answers for {} (control socket {}: {})",
            mountpoint.display(),
            path.display(),
            crate::util::cause(&e)
        )
    })?;
    let io_err = |e: io::Error| format!("control socket {}: {}", path.display(), e);
    conn.set_read_timeout(Some(Duration::from_secs(30))).map_err(io_err)?;
    conn.write_all(format!("{line}\n").as_bytes()).map_err(io_err)?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).map_err(io_err)?;
    let (first, rest) = answer.split_once('\n').unwrap_or((&answer, ""));
    if first == "ok" {
        Ok(rest.to_string())
    } else if let Some(msg) = first.strip_prefix("error ") {
        Err(msg.to_string())
    } else {
        Err(format!("unexpected answer from {}: {answer:?}", path.display()))
    }
}
