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

use std::env;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// One C library of the distribution.
struct DistLib {
    /// The cargo package that builds it.
    package: &'static str,
    /// The cdylib cargo produces in `target/release/`.
    artifact: &'static str,
    /// The file name it is installed under in `lib/` (its SONAME).
    soname: &'static str,
    /// Development symlinks to it in `lib/` (`libaio.so` for `-laio`).
    links: &'static [&'static str],
    /// Headers, relative to the workspace root, installed in `include/`.
    headers: &'static [&'static str],
}

const DIST_LIBS: &[DistLib] = &[
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
        Some("dist") => dist(),
        _ => {
            eprintln!("usage: cargo xtask dist    build the C libraries and lay out target/dist");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask's parent directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").into()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
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

fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
