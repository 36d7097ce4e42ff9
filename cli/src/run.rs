//! `aio run [OPTIONS] -- PROGRAM [ARGS...]`: runs an unmodified program on the project's C
//! libraries, as `eatmydata` does for its own.
//!
//! - What PROGRAM uses is read from its ELF file: a program without a dynamic loader
//!   (`PT_INTERP`) is statically linked and refused, since no library can be put under it; a
//!   program that needs `libaio.so.1` (`DT_NEEDED`; Debian's `libaio.so.1t64` too) can go on our
//!   libaio, and one whose undefined dynamic symbols include a POSIX AIO function
//!   (`aio_read`, `lio_listio`, … or their `*64` names, in libc since glibc 2.34, in librt
//!   before) on libposixaio. A program that uses neither is refused (nothing would change),
//!   unless `--force`. Only the program's own file is read: a program whose *libraries* do the
//!   AIO, or that loads libaio with `dlopen`, needs `--force`. A script (`#!`) is run without
//!   the check: the programs it starts inherit the environment, and they are what would do the
//!   AIO.
//! - Both libraries are put in front with `LD_PRELOAD` (prepended to any already there).
//!   Preloading libaio, rather than putting its directory on `LD_LIBRARY_PATH`, wins over a
//!   `DT_RPATH` and `/etc/ld.so.cache` alike: the loader takes the preloaded object for the
//!   `DT_NEEDED` entry of the same SONAME, and its symbols come first in any case.
//! - The libraries are looked for beside the `aio` binary: `../lib/aio/` (an install tree,
//!   `cargo xtask install`), the binary's own directory (a cargo build tree: `target/release/`),
//!   then `../dist/lib/` (`cargo xtask dist`'s `target/dist/lib`).
//! - `--engine`, `--stats` and `--fault` set `AIO_ENGINE`, `AIO_STATS=1` and `AIO_FAULT`, which
//!   the libraries read.
//! - Then `aio` replaces itself with PROGRAM (`execve`): PROGRAM has `aio`'s process ID, gets
//!   every signal sent to it, and its exit status — a signal's death included — is the one the
//!   caller sees.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};

use crate::util::{path_error, Failure};

/// `aio run`: an unmodified program on our libraries.
#[derive(Debug, Args)]
#[command(after_help = "With neither --posix nor --libaio, PROGRAM goes on each library it \
uses (read from its ELF file) and is refused if it uses neither. The libraries are found beside \
the aio binary: ../lib/aio (an install tree), the binary's directory (target/release), or \
../dist/lib (target/dist). aio then becomes PROGRAM (same process ID, signals and exit status).")]
pub struct RunArgs {
    /// Put PROGRAM's POSIX AIO calls (aio_read, lio_listio...) on libposixaio.so.
    #[arg(long)]
    posix: bool,
    /// Put PROGRAM's libaio calls (io_submit...) on our libaio.so.1.
    #[arg(long)]
    libaio: bool,
    /// The engine libposixaio.so runs on (sets AIO_ENGINE) [default: the best this system has].
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Each library prints a summary line of what it did to stderr at exit (sets AIO_STATS=1).
    #[arg(long)]
    stats: bool,
    /// Inject faults described by SPEC, the same rules as aio mount's (sets AIO_FAULT; repeat
    /// for several rules).
    #[arg(long, value_name = "SPEC", value_parser = fault_spec)]
    fault: Vec<String>,
    /// The seed every random choice of the fault rules comes from (sets AIO_FAULT_SEED).
    #[arg(long, value_name = "N", requires = "fault")]
    seed: Option<u64>,
    /// Append each injected fault to FILE as a JSON line (sets AIO_FAULT_LOG).
    #[arg(long, value_name = "FILE", requires = "fault")]
    fault_log: Option<std::path::PathBuf>,
    /// Run PROGRAM even when it seems not to use AIO (a program whose libraries do, or that
    /// loads libaio with dlopen).
    #[arg(long)]
    force: bool,
    /// Say on stderr which libraries and variables are set before running PROGRAM.
    #[arg(short, long)]
    verbose: bool,
    /// The program to run (looked up on PATH when it has no '/'), and its arguments.
    #[arg(
        value_name = "PROGRAM",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<OsString>,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// io_uring.
    Uring,
    /// Native kernel AIO (io_submit), for O_DIRECT files; the pool for the others.
    Kernel,
    /// A thread pool doing preadv2/pwritev2.
    Pool,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Uring => "uring",
            Engine::Kernel => "kernel",
            Engine::Pool => "pool",
        }
    }
}

/// A fault SPEC, checked with the parser the libraries use.
fn fault_spec(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the fault SPEC is empty".to_string());
    }
    s.parse::<aio::faults::Rule>()?;
    Ok(s.trim().to_string())
}

/// The POSIX AIO functions: a program calling any of them goes on libposixaio.
const POSIX_AIO: [&str; 17] = [
    "aio_read",
    "aio_write",
    "aio_fsync",
    "aio_error",
    "aio_return",
    "aio_suspend",
    "aio_cancel",
    "lio_listio",
    "aio_read64",
    "aio_write64",
    "aio_fsync64",
    "aio_error64",
    "aio_return64",
    "aio_suspend64",
    "aio_cancel64",
    "lio_listio64",
    "aio_init",
];

/// The SONAMEs of libaio: upstream's, and Debian's since its 64-bit `time_t` transition.
const LIBAIO_SONAMES: [&str; 2] = ["libaio.so.1", "libaio.so.1t64"];

/// One of the two libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    Posix,
    Libaio,
}

impl Lib {
    /// File names to look for, in order: the installed name, then cargo's.
    fn files(self) -> &'static [&'static str] {
        match self {
            Lib::Posix => &["libposixaio.so"],
            Lib::Libaio => &["libaio.so.1", "libaio_libaio.so"],
        }
    }

    fn option(self) -> &'static str {
        match self {
            Lib::Posix => "--posix",
            Lib::Libaio => "--libaio",
        }
    }
}

/// What PROGRAM's file says about it.
#[derive(Debug, Default)]
pub struct Linkage {
    /// A `#!` script: what it links cannot be told.
    pub script: bool,
    /// `PT_INTERP`: the dynamic loader that runs it, if any.
    pub interpreter: Option<String>,
    /// Its `DT_NEEDED` entries.
    pub needed: Vec<String>,
    /// The POSIX AIO functions among its undefined dynamic symbols.
    pub posix_calls: Vec<String>,
    /// A 64-bit x86-64 program (what our libraries are).
    pub native: bool,
    /// What it is, when it is not 64-bit x86-64 (`32-bit`, `aarch64`...).
    pub machine: String,
}

impl Linkage {
    /// Whether it links libaio.
    pub fn uses_libaio(&self) -> bool {
        self.needed.iter().any(|n| LIBAIO_SONAMES.contains(&n.as_str()))
    }

    /// Whether it calls the POSIX AIO functions.
    pub fn uses_posix(&self) -> bool {
        !self.posix_calls.is_empty()
    }
}

/// Reads what `bytes` (a program's file) links.
pub fn linkage(bytes: &[u8]) -> Result<Linkage, String> {
    if bytes.starts_with(b"#!") {
        return Ok(Linkage { script: true, native: true, ..Linkage::default() });
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Err("is neither an ELF program nor a script".to_string());
    }
    let elf =
        goblin::elf::Elf::parse(bytes).map_err(|e| format!("is not a valid ELF file: {e}"))?;
    use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
    if !matches!(elf.header.e_type, ET_EXEC | ET_DYN) {
        return Err("is an ELF file but not a program (a relocatable or core file)".to_string());
    }
    let native = elf.is_64 && elf.header.e_machine == EM_X86_64;
    let machine = format!(
        "{}-bit {}",
        if elf.is_64 { 64 } else { 32 },
        goblin::elf::header::machine_to_str(elf.header.e_machine)
    );
    let mut posix_calls: Vec<String> = elf
        .dynsyms
        .iter()
        .filter(|s| s.st_shndx == goblin::elf::section_header::SHN_UNDEF as usize)
        .filter_map(|s| elf.dynstrtab.get_at(s.st_name))
        .filter(|n| POSIX_AIO.contains(n))
        .map(String::from)
        .collect();
    posix_calls.sort();
    posix_calls.dedup();
    Ok(Linkage {
        script: false,
        interpreter: elf.interpreter.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        posix_calls,
        native,
        machine,
    })
}

/// Finds `program` as `execvp` would: as given when it has a `/`, else the first executable
/// file of that name in `PATH`.
fn find_program(program: &OsStr) -> Result<PathBuf, Failure> {
    let p = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return Ok(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let candidate = dir.join(p);
        if let Ok(md) = std::fs::metadata(&candidate) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(Failure::run(format!(
        "cannot run {}: not found in PATH ({})",
        p.display(),
        path.to_string_lossy()
    )))
}

/// Where the libraries are looked for, in order, beside the binary `exe`.
fn library_dirs(exe: &Path) -> Vec<PathBuf> {
    let Some(bin) = exe.parent() else { return Vec::new() };
    vec![bin.join("../lib/aio"), bin.to_path_buf(), bin.join("../dist/lib")]
}

/// The file of `lib` in the first of `dirs` that has it.
fn find_library(lib: Lib, dirs: &[PathBuf]) -> Result<PathBuf, Failure> {
    for dir in dirs {
        for name in lib.files() {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(std::fs::canonicalize(&p).unwrap_or(p));
            }
        }
    }
    let shown: Vec<String> = dirs
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap_or(d.clone()).display().to_string())
        .collect();
    Err(Failure::run(format!(
        "cannot find {} beside the aio binary (looked in {}): install with `cargo xtask install`, \
         or build with `cargo xtask dist`",
        lib.files()[0],
        shown.join(", ")
    )))
}

/// The real user ID of this process (`/proc/self/status`).
fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
}

/// Runs `aio run`: returns only on failure (on success the process becomes PROGRAM).
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let (program, rest) = args.command.split_first().expect("clap requires PROGRAM");
    let shown = Path::new(program).display().to_string();
    let path = find_program(program)?;
    let md =
        std::fs::metadata(&path).map_err(|e| Failure::run(path_error("cannot run", &path, &e)))?;
    if md.is_dir() {
        return Err(Failure::run(format!("cannot run {shown}: it is a directory")));
    }
    if md.permissions().mode() & 0o111 == 0 {
        return Err(Failure::run(format!("cannot run {shown}: it is not executable")));
    }
    let bytes =
        std::fs::read(&path).map_err(|e| Failure::run(path_error("cannot read", &path, &e)))?;
    let link =
        linkage(&bytes).map_err(|why| Failure::run(format!("cannot run {shown}: it {why}")))?;
    drop(bytes);

    // Which libraries: those asked for, or those PROGRAM uses.
    let asked: Vec<Lib> = match (args.posix, args.libaio) {
        (false, false) => Vec::new(),
        (p, l) => [(p, Lib::Posix), (l, Lib::Libaio)]
            .into_iter()
            .filter_map(|(on, lib)| on.then_some(lib))
            .collect(),
    };
    let libs = choose(&link, &asked, args.force, &shown)?;

    if !link.script {
        if link.interpreter.is_none() {
            return Err(Failure::run(format!(
                "{shown} is statically linked: no dynamic loader runs it, so no library can be \
                 put under it (nothing would change)"
            )));
        }
        if !link.native {
            return Err(Failure::run(format!(
                "{shown} is a {} program: the libraries are 64-bit x86-64 (nothing would change)",
                link.machine
            )));
        }
        if md.mode() & (libc::S_ISUID | libc::S_ISGID) != 0 && real_uid() != Some(md.uid()) {
            return Err(Failure::run(format!(
                "{shown} is set-user-ID or set-group-ID: the dynamic loader ignores LD_PRELOAD \
                 for it (nothing would change)"
            )));
        }
    }

    let exe = std::env::current_exe()
        .map_err(|e| Failure::run(format!("cannot find the aio binary's path: {e}")))?;
    let dirs = library_dirs(&exe);
    let mut preload: Vec<OsString> = Vec::new();
    for lib in &libs {
        let file = find_library(*lib, &dirs)?;
        if file.as_os_str().as_bytes().iter().any(|c| matches!(c, b' ' | b':' | b'\t' | b'\n')) {
            return Err(Failure::run(format!(
                "cannot preload {}: LD_PRELOAD cannot carry a path with a space or a colon",
                file.display()
            )));
        }
        preload.push(file.into_os_string());
    }
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(old);
    }
    let mut cmd = Command::new(&path);
    cmd.arg0(program).args(rest);
    let mut set: Vec<(&str, OsString)> = Vec::new();
    if !preload.is_empty() {
        set.push(("LD_PRELOAD", join(&preload, " ")));
    }
    if let Some(e) = args.engine {
        set.push(("AIO_ENGINE", e.name().into()));
    }
    if args.stats {
        set.push(("AIO_STATS", "1".into()));
    }
    if !args.fault.is_empty() {
        set.push(("AIO_FAULT", args.fault.join(";").into()));
    }
    if let Some(seed) = args.seed {
        set.push(("AIO_FAULT_SEED", seed.to_string().into()));
    }
    if let Some(log) = &args.fault_log {
        set.push(("AIO_FAULT_LOG", log.as_os_str().into()));
    }
    if args.verbose {
        let what: Vec<String> = link_summary(&link, &libs);
        eprintln!("aio run: {shown}: {}", what.join("; "));
        for (k, v) in &set {
            eprintln!("aio run: {k}={}", v.to_string_lossy());
        }
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    // Only returns on failure.
    let e = cmd.exec();
    Err(Failure::run(path_error("cannot run", &path, &e)))
}

/// The libraries to put PROGRAM on.
fn choose(link: &Linkage, asked: &[Lib], force: bool, shown: &str) -> Result<Vec<Lib>, Failure> {
    let uses = |lib: Lib| match lib {
        Lib::Posix => link.uses_posix(),
        Lib::Libaio => link.uses_libaio(),
    };
    if link.script || force {
        return Ok(if asked.is_empty() { vec![Lib::Posix, Lib::Libaio] } else { asked.to_vec() });
    }
    if link.interpreter.is_none() {
        // Statically linked: refused by the caller, whatever it would use.
        return Ok(Vec::new());
    }
    if asked.is_empty() {
        let libs: Vec<Lib> = [Lib::Posix, Lib::Libaio].into_iter().filter(|l| uses(*l)).collect();
        if libs.is_empty() {
            return Err(Failure::run(format!(
                "{shown} neither links libaio (libaio.so.1) nor calls the POSIX AIO functions \
                 (aio_read, lio_listio...): on our libraries nothing would change (--force runs \
                 it anyway, e.g. for a program whose libraries do the AIO)"
            )));
        }
        return Ok(libs);
    }
    for lib in asked {
        if !uses(*lib) {
            let what = match lib {
                Lib::Posix => "does not call the POSIX AIO functions (aio_read, lio_listio...)",
                Lib::Libaio => "does not link libaio (libaio.so.1)",
            };
            return Err(Failure::run(format!(
                "{shown} {what}: {} would change nothing (--force runs it anyway)",
                lib.option()
            )));
        }
    }
    Ok(asked.to_vec())
}

fn link_summary(link: &Linkage, libs: &[Lib]) -> Vec<String> {
    let mut out = Vec::new();
    if link.script {
        out.push("a script (not checked)".to_string());
    } else {
        if link.uses_libaio() {
            out.push("links libaio".to_string());
        }
        if link.uses_posix() {
            out.push(format!("calls {}", link.posix_calls.join(", ")));
        }
    }
    let names: Vec<&str> = libs.iter().map(|l| l.files()[0]).collect();
    out.push(format!(
        "on {}",
        if names.is_empty() { "nothing".into() } else { names.join(" and ") }
    ));
    out
}

fn join(parts: &[OsString], sep: &str) -> OsString {
    let mut out = OsString::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_links_neither_and_has_a_loader() {
        let exe = std::env::current_exe().unwrap();
        let link = linkage(&std::fs::read(exe).unwrap()).unwrap();
        assert!(link.interpreter.is_some(), "{link:?}");
        assert!(link.needed.iter().any(|n| n.starts_with("libc.so")), "{link:?}");
        assert!(!link.uses_libaio() && !link.uses_posix(), "{link:?}");
        assert!(link.native);
    }

    #[test]
    fn scripts_and_other_files() {
        assert!(linkage(b"#!/bin/sh\necho hi\n").unwrap().script);
        assert!(linkage(b"hello").unwrap_err().contains("neither an ELF program nor a script"));
        assert!(linkage(b"\x7fELF\x02\x01").is_err());
    }

    #[test]
    fn choosing_the_libraries() {
        let dynamic = |posix: bool, libaio: bool| Linkage {
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: if libaio { vec!["libaio.so.1t64".into()] } else { vec![] },
            posix_calls: if posix { vec!["aio_read".into()] } else { vec![] },
            native: true,
            ..Linkage::default()
        };
        let both = [Lib::Posix, Lib::Libaio];
        assert_eq!(choose(&dynamic(true, true), &[], false, "p").unwrap(), both);
        assert_eq!(choose(&dynamic(true, false), &[], false, "p").unwrap(), [Lib::Posix]);
        assert_eq!(choose(&dynamic(false, true), &[], false, "p").unwrap(), [Lib::Libaio]);
        let none = choose(&dynamic(false, false), &[], false, "p").unwrap_err();
        assert!(none.msg.contains("nothing would change"), "{}", none.msg);
        assert_eq!(choose(&dynamic(false, false), &[], true, "p").unwrap(), both);
        let e = choose(&dynamic(true, false), &[Lib::Libaio], false, "p").unwrap_err();
        assert!(e.msg.contains("--libaio would change nothing"), "{}", e.msg);
        assert_eq!(
            choose(&dynamic(true, false), &[Lib::Libaio], true, "p").unwrap(),
            [Lib::Libaio]
        );
    }
}
