//! `cargo xtask install` and `cargo xtask uninstall`: the `aio` command, the two C libraries,
//! their headers, pkg-config files, man pages and shell completions, under a prefix
//! (`/usr/local` by default), as `make install` lays them out:
//!
//! ```text
//! PREFIX/bin/aio
//! PREFIX/lib/aio/libaio.so.1, libaio.so -> libaio.so.1, libposixaio.so
//! PREFIX/lib/aio/install-manifest.txt            what was installed, for uninstall
//! PREFIX/include/aio/libaio.h, aio.h
//! PREFIX/lib/pkgconfig/aio-libaio.pc, aio-posixaio.pc
//! PREFIX/share/man/man1/aio.1, aio-bench.1, aio-cp.1, aio-info.1, aio-run.1
//! PREFIX/share/bash-completion/completions/aio
//! PREFIX/share/zsh/site-functions/_aio
//! PREFIX/share/fish/vendor_completions.d/aio.fish
//! ```
//!
//! The libraries have a directory of their own (`lib/aio/`, which the loader does not search),
//! so installing never puts our `libaio.so.1` under every program of the system: a program gets
//! it through `aio run`, or by being built with the pkg-config files (`-L`, `-Wl,-rpath` and
//! `-I` into those directories). The headers, named like the system's, are in `include/aio/`
//! for the same reason.
//!
//! `--destdir DIR` stages the tree under DIR, as GNU make's `DESTDIR` does: files go to
//! `DIR/PREFIX/...` while the paths written inside them (pkg-config files) say `PREFIX/...`.
//! The man pages and completions come from the `aio` binary itself (`aio __generate`), so they
//! describe the options it has.
//!
//! Uninstall reads the manifest and removes exactly the files and links it lists, then the
//! directories install created, if they are empty.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::{target_dir, with_context, workspace_root, DIST_LIBS};

/// Where the manifest is, under the prefix.
const MANIFEST: &str = "lib/aio/install-manifest.txt";

/// The options of both tasks.
#[derive(Debug)]
pub struct Options {
    /// `--prefix` (absolute).
    pub prefix: PathBuf,
    /// `--destdir`, if any.
    pub destdir: Option<PathBuf>,
    /// `--no-build`: install what is already built.
    pub no_build: bool,
    /// `--from`: the directory of the built `aio` and libraries (default `target/release`).
    pub from: Option<PathBuf>,
}

impl Options {
    /// Parses the task's arguments; `install` accepts `--no-build` and `--from` too.
    pub fn parse(args: &[String], install: bool) -> Result<Options, String> {
        let mut o =
            Options { prefix: "/usr/local".into(), destdir: None, no_build: false, from: None };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let mut value = || -> Result<PathBuf, String> {
                let v = inline.clone().or_else(|| it.next().cloned());
                match v {
                    Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                    _ => Err(format!("{name} needs a directory")),
                }
            };
            match name {
                "--prefix" => o.prefix = value()?,
                "--destdir" => o.destdir = Some(value()?),
                "--from" if install => o.from = Some(value()?),
                "--no-build" if install && inline.is_none() => o.no_build = true,
                _ => return Err(format!("unknown option {a}")),
            }
        }
        if !o.prefix.is_absolute() {
            return Err(format!("--prefix {} is not an absolute path", o.prefix.display()));
        }
        if o.prefix.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("--prefix {} has a '..'", o.prefix.display()));
        }
        Ok(o)
    }

    /// Where the prefix path `p` (absolute) is on this machine: under `--destdir` if given.
    fn real(&self, p: &Path) -> PathBuf {
        match &self.destdir {
            Some(d) => d.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A directory install made (removed by uninstall if empty).
    Dir(PathBuf),
    /// A regular file.
    File(PathBuf),
    /// A symbolic link.
    Link(PathBuf),
}

impl Entry {
    fn line(&self) -> String {
        match self {
            Entry::Dir(p) => format!("dir {}", p.display()),
            Entry::File(p) => format!("file {}", p.display()),
            Entry::Link(p) => format!("link {}", p.display()),
        }
    }

    fn parse(line: &str) -> Option<Entry> {
        let (kind, path) = line.split_once(' ')?;
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return None;
        }
        match kind {
            "dir" => Some(Entry::Dir(path)),
            "file" => Some(Entry::File(path)),
            "link" => Some(Entry::Link(path)),
            _ => None,
        }
    }
}

/// What install is writing: the manifest's entries so far.
struct Installer<'a> {
    o: &'a Options,
    entries: Vec<Entry>,
}

impl Installer<'_> {
    /// Makes the directory `dir` (a prefix path) and its parents, recording those it creates.
    fn dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut made = Vec::new();
        let mut p = dir.to_path_buf();
        while !self.o.real(&p).exists() {
            made.push(p.clone());
            if !p.pop() {
                break;
            }
        }
        for d in made.into_iter().rev() {
            let real = self.o.real(&d);
            fs::create_dir(&real).map_err(|e| with_context(e, &real.display().to_string()))?;
            if d != Path::new("/") {
                self.note(Entry::Dir(d));
            }
        }
        Ok(())
    }

    fn note(&mut self, e: Entry) {
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
    }

    /// Installs `from` as the prefix path `to` with `mode`, through a temporary file and a
    /// rename (a program running the old file keeps it intact).
    fn file(&mut self, from: &Path, to: &Path, mode: u32) -> io::Result<()> {
        self.dir(to.parent().expect("a file in a directory"))?;
        let real = self.o.real(to);
        let tmp = real.with_extension("tmp-xtask");
        fs::copy(from, &tmp).map_err(|e| {
            with_context(e, &format!("copying {} to {}", from.display(), tmp.display()))
        })?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(|e| with_context(e, &tmp.display().to_string()))?;
        fs::rename(&tmp, &real)
            .map_err(|e| with_context(e, &format!("renaming to {}", real.display())))?;
        println!("{}", real.display());
        self.note(Entry::File(to.to_path_buf()));
        Ok(())
    }

    /// Installs `text` as the prefix path `to`.
    fn text(&mut self, text: &str, to: &Path, scratch: &Path) -> io::Result<()> {
        let name = to.file_name().expect("a file name");
        let staged = scratch.join(name);
        fs::write(&staged, text).map_err(|e| with_context(e, &staged.display().to_string()))?;
        self.file(&staged, to, 0o644)
    }

    /// Makes the symbolic link `at` (a prefix path) pointing to `target`.
    fn link(&mut self, target: &str, at: &Path) -> io::Result<()> {
        let real = self.o.real(at);
        match fs::remove_file(&real) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_context(e, &real.display().to_string())),
        }
        symlink(target, &real).map_err(|e| with_context(e, &real.display().to_string()))?;
        println!("{} -> {target}", real.display());
        self.note(Entry::Link(at.to_path_buf()));
        Ok(())
    }
}

/// The manifest of an earlier install at this prefix, if any.
fn read_manifest(o: &Options) -> io::Result<Option<Vec<Entry>>> {
    let path = o.real(&o.prefix.join(MANIFEST));
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_context(e, &path.display().to_string())),
    };
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let e = Entry::parse(line).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: not a manifest line: {line:?}", path.display(), n + 1),
            )
        })?;
        // Only paths under the prefix (and, for directories install made, the prefix's own
        // parents): a manifest never sends uninstall elsewhere.
        let (Entry::Dir(p) | Entry::File(p) | Entry::Link(p)) = &e;
        let inside =
            p.starts_with(&o.prefix) || (matches!(e, Entry::Dir(_)) && o.prefix.starts_with(p));
        if !inside || p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}:{}: {} is not under {}",
                    path.display(),
                    n + 1,
                    p.display(),
                    o.prefix.display()
                ),
            ));
        }
        entries.push(e);
    }
    Ok(Some(entries))
}

/// The pkg-config file of one library.
fn pkg_config(o: &Options, name: &str, description: &str, lib: &str) -> String {
    format!(
        "prefix={prefix}\n\
         libdir=${{prefix}}/lib/aio\n\
         includedir=${{prefix}}/include/aio\n\
         \n\
         Name: {name}\n\
         Description: {description}\n\
         Version: {version}\n\
         Libs: -L${{libdir}} -Wl,-rpath,${{libdir}} -l{lib}\n\
         Cflags: -I${{includedir}}\n",
        prefix = o.prefix.display(),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// A built artifact: in `from`, or in its `deps/` (where `cargo test` leaves libraries of
/// packages it built only as dependencies).
fn artifact(from: &Path, name: &str) -> io::Result<PathBuf> {
    [from.join(name), from.join("deps").join(name)].into_iter().find(|p| p.is_file()).ok_or_else(
        || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is not built in {} (run without --no-build)", from.display()),
            )
        },
    )
}

/// `cargo xtask install`.
pub fn install(o: &Options) -> io::Result<()> {
    let root = workspace_root();
    let from = match &o.from {
        Some(f) => f.clone(),
        None => target_dir(&root).join("release"),
    };
    if !o.no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(&root).args(["build", "--release", "-p", "aio-cli"]);
        for lib in DIST_LIBS {
            build.args(["-p", lib.package]);
        }
        let status = build.status().map_err(|e| with_context(e, "running cargo build"))?;
        if !status.success() {
            return Err(io::Error::other(format!("cargo build --release failed ({status})")));
        }
    }
    let aio = artifact(&from, "aio")?;
    let mut libs = Vec::new();
    for lib in DIST_LIBS {
        libs.push((lib, artifact(&from, lib.artifact)?));
    }

    // The man pages and completions, from the binary being installed.
    let scratch = std::env::temp_dir().join(format!("aio-xtask-install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    for sub in ["man", "completions", "text"] {
        fs::create_dir_all(scratch.join(sub))
            .map_err(|e| with_context(e, &scratch.display().to_string()))?;
    }
    let result = install_from(o, &root, &aio, &libs, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn install_from(
    o: &Options,
    root: &Path,
    aio: &Path,
    libs: &[(&crate::DistLib, PathBuf)],
    scratch: &Path,
) -> io::Result<()> {
    for what in ["man", "completions"] {
        let out = Command::new(aio)
            .args(["__generate", what])
            .arg(scratch.join(what))
            .output()
            .map_err(|e| with_context(e, &format!("running {}", aio.display())))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{} __generate {what} failed: {}",
                aio.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }

    let p = &o.prefix;
    let mut inst = Installer { o, entries: Vec::new() };
    // Directories an earlier install made stay recorded.
    if let Some(old) = read_manifest(o)? {
        inst.entries.extend(old.into_iter().filter(|e| matches!(e, Entry::Dir(_))));
    }
    inst.file(aio, &p.join("bin/aio"), 0o755)?;
    let lib_dir = p.join("lib/aio");
    for (lib, built) in libs {
        inst.file(built, &lib_dir.join(lib.soname), 0o755)?;
        for link in lib.links {
            inst.link(lib.soname, &lib_dir.join(link))?;
        }
        for header in lib.headers {
            let src = root.join(header);
            let name = src.file_name().expect("a header file name");
            inst.file(&src, &p.join("include/aio").join(name), 0o644)?;
        }
    }
    let text = scratch.join("text");
    inst.text(
        &pkg_config(
            o,
            "aio-libaio",
            "libaio.so.1 from the aio project: libaio's API and ABI on native kernel AIO",
            "aio",
        ),
        &p.join("lib/pkgconfig/aio-libaio.pc"),
        &text,
    )?;
    inst.text(
        &pkg_config(
            o,
            "aio-posixaio",
            "libposixaio.so from the aio project: glibc's POSIX AIO API and ABI on io_uring",
            "posixaio",
        ),
        &p.join("lib/pkgconfig/aio-posixaio.pc"),
        &text,
    )?;
    let mut pages: Vec<PathBuf> = fs::read_dir(scratch.join("man"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    pages.sort();
    for page in pages {
        let name = page.file_name().expect("a page name");
        inst.file(&page, &p.join("share/man/man1").join(name), 0o644)?;
    }
    let comp = scratch.join("completions");
    inst.file(&comp.join("aio.bash"), &p.join("share/bash-completion/completions/aio"), 0o644)?;
    inst.file(&comp.join("_aio"), &p.join("share/zsh/site-functions/_aio"), 0o644)?;
    inst.file(&comp.join("aio.fish"), &p.join("share/fish/vendor_completions.d/aio.fish"), 0o644)?;

    // The manifest last: directories first (as made), then files and links.
    let mut text_out = String::from(
        "# Written by `cargo xtask install`; `cargo xtask uninstall` removes what it lists.\n",
    );
    for e in inst.entries.iter().filter(|e| matches!(e, Entry::Dir(_))) {
        text_out.push_str(&e.line());
        text_out.push('\n');
    }
    for e in inst.entries.iter().filter(|e| !matches!(e, Entry::Dir(_))) {
        text_out.push_str(&e.line());
        text_out.push('\n');
    }
    let manifest = o.real(&p.join(MANIFEST));
    fs::write(&manifest, text_out).map_err(|e| with_context(e, &manifest.display().to_string()))?;
    println!("{}", manifest.display());
    Ok(())
}

/// `cargo xtask uninstall`.
pub fn uninstall(o: &Options) -> io::Result<()> {
    let manifest = o.real(&o.prefix.join(MANIFEST));
    let Some(entries) = read_manifest(o)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no install manifest at {}: nothing was installed there", manifest.display()),
        ));
    };
    for e in &entries {
        if let Entry::File(p) | Entry::Link(p) = e {
            let real = o.real(p);
            match fs::remove_file(&real) {
                Ok(()) => println!("removed {}", real.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_context(e, &real.display().to_string())),
            }
        }
    }
    fs::remove_file(&manifest).map_err(|e| with_context(e, &manifest.display().to_string()))?;
    println!("removed {}", manifest.display());
    let mut dirs: Vec<&PathBuf> =
        entries.iter().filter_map(|e| if let Entry::Dir(p) = e { Some(p) } else { None }).collect();
    // Deepest first.
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        let real = o.real(d);
        match fs::remove_dir(&real) {
            Ok(()) => println!("removed {}/", real.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                println!("kept {}/: not empty", real.display());
            }
            Err(e) => return Err(with_context(e, &real.display().to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = Options::parse(&args(&[]), true).unwrap();
        assert_eq!(o.prefix, Path::new("/usr/local"));
        let o =
            Options::parse(&args(&["--prefix=/opt/aio", "--destdir", "/tmp/d"]), false).unwrap();
        assert_eq!(o.real(&o.prefix.join("bin/aio")), Path::new("/tmp/d/opt/aio/bin/aio"));
        assert!(Options::parse(&args(&["--prefix", "rel"]), true).is_err());
        assert!(Options::parse(&args(&["--prefix", "/a/../b"]), true).is_err());
        assert!(Options::parse(&args(&["--no-build"]), false).is_err());
        assert!(Options::parse(&args(&["--destdir"]), true).is_err());
        assert!(Options::parse(&args(&["--bogus"]), true).is_err());
    }

    #[test]
    fn manifest_lines() {
        for e in [Entry::Dir("/a/b".into()), Entry::File("/a/b/c".into()), Entry::Link("/x".into())]
        {
            assert_eq!(Entry::parse(&e.line()), Some(e));
        }
        assert_eq!(Entry::parse("file relative/path"), None);
        assert_eq!(Entry::parse("socket /a"), None);
    }
}
