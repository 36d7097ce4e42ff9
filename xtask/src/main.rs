//! Project tasks, run as `cargo xtask <task>` (an alias in .cargo/config.toml).
//!
//! - `dist`: builds the C libraries in release mode and lays them out with their headers under
//!   `target/dist/`, ready for `LD_LIBRARY_PATH=target/dist/lib` or
//!   `gcc -I target/dist/include -L target/dist/lib`:
//!
//!   ```text
//!   target/dist/lib/libaio.so.1          the drop-in libaio (SONAME libaio.so.1)
//!   target/dist/lib/libaio.so -> libaio.so.1   so that `-laio` finds it
//!   target/dist/include/libaio.h
//!   target/dist/lib/libposixaio.so       POSIX AIO on io_uring, for LD_PRELOAD in front of glibc
//!   target/dist/include/aio.h            its header: glibc's <aio.h> API and ABI
//!   ```
//!
//! Each library is one entry of [`DIST_LIBS`].
//!
//! - `install [--prefix DIR] [--destdir DIR] [--no-build] [--from DIR]` and
//!   `uninstall [--prefix DIR] [--destdir DIR]`: see [`mod@install`].

use std::env;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod install;

/// One C library of the distribution.
pub(crate) struct DistLib {
    /// The cargo package that builds it.
    pub(crate) package: &'static str,
    /// The cdylib cargo produces in `target/release/`.
    pub(crate) artifact: &'static str,
    /// The file name it is installed under in `lib/` (its SONAME).
    pub(crate) soname: &'static str,
    /// Development symlinks to it in `lib/` (`libaio.so` for `-laio`).
    pub(crate) links: &'static [&'static str],
    /// Headers, relative to the workspace root, installed in `include/`.
    pub(crate) headers: &'static [&'static str],
}

pub(crate) const DIST_LIBS: &[DistLib] = &[
    DistLib {
        package: "aio-libaio",
        artifact: "libaio_libaio.so",
        soname: "libaio.so.1",
        links: &["libaio.so"],
        headers: &["libaio/include/libaio.h"],
    },
    DistLib {
        package: "aio-posixaio",
        artifact: "libposixaio.so",
        soname: "libposixaio.so",
        links: &[],
        headers: &["posixaio/include/aio.h"],
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") if args.len() == 1 => dist(),
        Some("install") => match install::Options::parse(&args[1..], true) {
            Ok(o) => install::install(&o),
            Err(e) => return usage(&e),
        },
        Some("uninstall") => match install::Options::parse(&args[1..], false) {
            Ok(o) => install::uninstall(&o),
            Err(e) => return usage(&e),
        },
        _ => return usage("no task given"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("xtask: {why}");
    eprintln!(
        "usage: cargo xtask dist         build the C libraries and lay out target/dist\n\
        \x20      cargo xtask install [--prefix DIR] [--destdir DIR] [--no-build] [--from DIR]\n\
        \x20      cargo xtask uninstall [--prefix DIR] [--destdir DIR]"
    );
    ExitCode::from(2)
}

/// The workspace root: xtask's parent directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").into()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn dist() -> io::Result<()> {
    let root = workspace_root();
    let target = target_dir(&root);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(&root).args(["build", "--release"]);
    for lib in DIST_LIBS {
        build.args(["-p", lib.package]);
    }
    let status = build.status().map_err(|e| with_context(e, "running cargo build"))?;
    if !status.success() {
        return Err(io::Error::other(format!("cargo build --release failed ({status})")));
    }

    let dist = target.join("dist");
    let lib_dir = dist.join("lib");
    let include_dir = dist.join("include");
    fs::create_dir_all(&lib_dir).map_err(|e| with_context(e, &lib_dir.display().to_string()))?;
    fs::create_dir_all(&include_dir)
        .map_err(|e| with_context(e, &include_dir.display().to_string()))?;
    for lib in DIST_LIBS {
        let built = target.join("release").join(lib.artifact);
        let installed = lib_dir.join(lib.soname);
        install(&built, &installed)?;
        for link in lib.links {
            let path = lib_dir.join(link);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_context(e, &path.display().to_string())),
            }
            symlink(lib.soname, &path).map_err(|e| with_context(e, &path.display().to_string()))?;
            println!("{} -> {}", path.display(), lib.soname);
        }
        for header in lib.headers {
            let src = root.join(header);
            let name = src.file_name().expect("a header file name");
            install(&src, &include_dir.join(name))?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` through a temporary file and a rename, so a program running with the
/// old library mapped keeps its copy intact.
fn install(from: &Path, to: &Path) -> io::Result<()> {
    let tmp = to.with_extension("tmp-xtask");
    fs::copy(from, &tmp).map_err(|e| {
        with_context(e, &format!("copying {} to {}", from.display(), tmp.display()))
    })?;
    fs::rename(&tmp, to).map_err(|e| with_context(e, &format!("renaming to {}", to.display())))?;
    println!("{}", to.display());
    Ok(())
}

pub(crate) fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
