//! Choosing a driver for a file at run time: io_uring when the kernel has it and allows it,
//! else kernel AIO for an `O_DIRECT` file, else the thread pool — and saying why.
//!
//! `AIO_ENGINE=uring|kernel|pool` in the environment, or [`SelectOptions::engine`], forces one;
//! forcing one that cannot work here is an error, never a silent fallback.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::str::FromStr;
use std::sync::Arc;

use super::{
    Driver, KernelDriver, KernelOptions, PoolDriver, PoolOptions, UringDriver, UringOptions,
};
use crate::sys;

/// The drivers that serve files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// [`UringDriver`].
    Uring,
    /// [`KernelDriver`].
    Kernel,
    /// [`PoolDriver`].
    Pool,
}

impl Engine {
    /// The name `AIO_ENGINE` uses.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Uring => "uring",
            Engine::Kernel => "kernel",
            Engine::Pool => "pool",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<Engine> {
        match s.trim().to_ascii_lowercase().as_str() {
            "uring" | "io_uring" | "iouring" => Ok(Engine::Uring),
            "kernel" | "aio" | "kaio" | "libaio" => Ok(Engine::Kernel),
            "pool" | "threads" => Ok(Engine::Pool),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown engine {s:?}: expected uring, kernel or pool"),
            )),
        }
    }
}

/// How [`select_with`] chooses.
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    /// Use this engine (overrides `AIO_ENGINE`); an error if it cannot work.
    pub engine: Option<Engine>,
    /// Do not read `AIO_ENGINE`.
    pub ignore_env: bool,
    /// Options for the io_uring driver.
    pub uring: UringOptions,
    /// Options for the kernel AIO driver.
    pub kernel: KernelOptions,
    /// Options for the thread pool.
    pub pool: PoolOptions,
    /// Behave as if io_uring were unavailable for this reason (for testing the fallback).
    pub pretend_uring_unavailable: Option<String>,
}

/// Which driver was chosen, and why the better ones were not.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The engine chosen.
    pub engine: Engine,
    /// Whether it was forced (`AIO_ENGINE` or [`SelectOptions::engine`]).
    pub forced: bool,
    /// Engines tried first and passed over, each with the reason.
    pub skipped: Vec<(Engine, String)>,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.engine)?;
        if self.forced {
            write!(f, " (forced)")?;
        }
        for (engine, why) in &self.skipped {
            write!(f, "; not {engine}: {why}")?;
        }
        Ok(())
    }
}

/// [`select_with`] with default options (and `AIO_ENGINE` honoured).
pub fn select(file: impl AsFd) -> io::Result<(Arc<dyn Driver>, Selection)> {
    select_with(file, &SelectOptions::default())
}

/// Picks and builds the best driver for `file`: io_uring if this kernel has it and it is not
/// disabled (`/proc/sys/kernel/io_uring_disabled`, seccomp, `RLIMIT_MEMLOCK`), else kernel AIO
/// if the file is open with `O_DIRECT`, else the thread pool.
pub fn select_with(
    file: impl AsFd,
    opts: &SelectOptions,
) -> io::Result<(Arc<dyn Driver>, Selection)> {
    let direct = sys::fs::status_flags(file.as_fd())? & libc::O_DIRECT != 0;
    let kernel = if direct {
        Ok(opts.kernel.clone())
    } else {
        Err("the file is not open with O_DIRECT, and io_submit would block on it".to_string())
    };
    choose(opts, kernel)
}

/// Picks and builds the best driver for serving many files, `O_DIRECT` or not: io_uring if
/// this kernel has it and allows it, else kernel AIO — which serves `O_DIRECT` files itself and
/// hands the others to its thread pool — else the pool. `AIO_ENGINE` (or
/// [`SelectOptions::engine`]) forces one; forcing io_uring where it cannot work is an error.
pub fn select_shared(opts: &SelectOptions) -> io::Result<(Arc<dyn Driver>, Selection)> {
    let mut kernel = opts.kernel.clone();
    kernel.buffered_pool.get_or_insert_with(|| opts.pool.clone());
    choose(opts, Ok(kernel))
}

/// The forced engine, or the first that works of io_uring, kernel AIO (with these options, or
/// not at all for this reason) and the pool.
fn choose(
    opts: &SelectOptions,
    kernel: Result<KernelOptions, String>,
) -> io::Result<(Arc<dyn Driver>, Selection)> {
    let uring = || -> Result<Arc<dyn Driver>, String> {
        if let Some(why) = &opts.pretend_uring_unavailable {
            return Err(why.clone());
        }
        Ok(Arc::new(UringDriver::new(opts.uring.clone()).map_err(|e| e.to_string())?))
    };
    let kernel = || -> Result<Arc<dyn Driver>, String> {
        Ok(Arc::new(KernelDriver::new(kernel.clone()?).map_err(|e| e.to_string())?))
    };
    let pool = || -> Arc<dyn Driver> { Arc::new(PoolDriver::new(opts.pool.clone())) };

    if let Some(engine) = forced_engine(opts)? {
        let driver = match engine {
            Engine::Uring => uring(),
            Engine::Kernel => kernel(),
            Engine::Pool => Ok(pool()),
        }
        .map_err(|why| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("engine {engine} was asked for: {why}"),
            )
        })?;
        return Ok((driver, Selection { engine, forced: true, skipped: Vec::new() }));
    }
    let mut skipped = Vec::new();
    for (engine, make) in [(Engine::Uring, &uring as &dyn Fn() -> _), (Engine::Kernel, &kernel)] {
        match make() {
            Ok(driver) => return Ok((driver, Selection { engine, forced: false, skipped })),
            Err(why) => skipped.push((engine, why)),
        }
    }
    Ok((pool(), Selection { engine: Engine::Pool, forced: false, skipped }))
}

/// The engine `opts` or `AIO_ENGINE` forces, if any.
fn forced_engine(opts: &SelectOptions) -> io::Result<Option<Engine>> {
    Ok(match (opts.engine, opts.ignore_env) {
        (Some(e), _) => Some(e),
        (None, false) => match std::env::var("AIO_ENGINE") {
            Ok(v) if !v.trim().is_empty() => Some(v.parse::<Engine>().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("AIO_ENGINE: {e}"))
            })?),
            _ => None,
        },
        (None, true) => None,
    })
}
