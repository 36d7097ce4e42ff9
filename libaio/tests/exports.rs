//! What the library looks like from outside: its exported symbols and their versions (as the
//! system libaio's), its SONAME, a header that compiles cleanly as C and C++, and the seed's
//! libaio_copy.c, which must build unchanged against our header and behave as with the
//! system's library.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// The dynamic symbols of libaio 0.3.113 (Debian's libaio1): (name, version, default). A
/// default version is what a program linked today binds to (`@@`); the others are compat
/// symbols kept for binaries linked against old releases (`@`).
const EXPECTED: &[(&str, &str, bool)] = &[
    ("io_setup", "LIBAIO_0.4", true),
    ("io_destroy", "LIBAIO_0.4", true),
    ("io_getevents", "LIBAIO_0.4", true),
    ("io_cancel", "LIBAIO_0.4", true),
    ("io_queue_wait", "LIBAIO_0.4", true),
    ("io_submit", "LIBAIO_0.1", true),
    ("io_queue_init", "LIBAIO_0.1", true),
    ("io_queue_release", "LIBAIO_0.1", true),
    ("io_queue_run", "LIBAIO_0.1", true),
    ("io_getevents", "LIBAIO_0.1", false),
    ("io_cancel", "LIBAIO_0.1", false),
    ("io_queue_wait", "LIBAIO_0.1", false),
    ("io_pgetevents", "LIBAIO_0.5", true),
];

type Symbols = BTreeSet<(String, String, bool)>;

/// The defined dynamic symbols of `lib` from `objdump -T`, without the version-definition
/// symbols GNU ld adds (`LIBAIO_0.1 LIBAIO_0.1` in the `*ABS*` section).
fn exported(lib: &Path) -> Symbols {
    let ran = run(Command::new("objdump").arg("-T").arg(lib), Duration::from_secs(60));
    assert!(ran.status.success(), "objdump -T {}: {}", lib.display(), ran.stderr);
    let mut symbols = Symbols::new();
    for line in ran.stdout.lines() {
        // 0000000000014300 g    DF .text	0000000000000043  LIBAIO_0.4  io_destroy
        // 0000000000014180 g    DF .text	0000000000000054 (LIBAIO_0.1) io_cancel
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 || !line.starts_with(|c: char| c.is_ascii_hexdigit()) {
            continue;
        }
        let name = fields[fields.len() - 1];
        let version = fields[fields.len() - 2];
        if line.contains("*UND*") || line.contains("*ABS*") {
            continue;
        }
        let default = !version.starts_with('(');
        let version = version.trim_matches(|c| c == '(' || c == ')');
        symbols.insert((name.to_string(), version.to_string(), default));
    }
    symbols
}

fn expected() -> Symbols {
    EXPECTED.iter().map(|&(n, v, d)| (n.to_string(), v.to_string(), d)).collect()
}

#[test]
fn exports_the_system_libaio_symbols_at_its_versions() {
    if !have("objdump") {
        return skip("exports_the_system_libaio_symbols_at_its_versions", "objdump is missing");
    }
    let ours = exported(&ours().library);
    assert_eq!(ours, expected(), "our exported symbols (nothing else may be exported)");
    match system_lib() {
        Some(sys) => assert_eq!(exported(&sys), expected(), "the system libaio's symbols"),
        None => skip(
            "exports_the_system_libaio_symbols_at_its_versions (system)",
            "no system libaio.so.1 to compare with; checked against the list of 0.3.113",
        ),
    }
}

#[test]
fn soname_and_version_definitions() {
    if !have("objdump") {
        return skip("soname_and_version_definitions", "objdump is missing");
    }
    let ran = run(Command::new("objdump").arg("-p").arg(&ours().library), Duration::from_secs(60));
    assert!(ran.status.success(), "objdump -p: {}", ran.stderr);
    let soname = ran.stdout.lines().find_map(|l| l.trim().strip_prefix("SONAME")).map(str::trim);
    assert_eq!(soname, Some("libaio.so.1"));
    let defs: Vec<&str> = ran
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Version definitions:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(defs, ["libaio.so.1", "LIBAIO_0.1", "LIBAIO_0.4", "LIBAIO_0.5"], "{}", ran.stdout);
}

/// A program using every type and helper of the header.
const HEADER_USER: &str = r#"
#include <libaio.h>
#include <poll.h>
#include <sys/uio.h>
static void cb(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx; (void)iocb; (void)res; (void)res2;
}
int use_everything(io_context_t ctx, int fd, sigset_t *mask)
{
	struct iocb io, *list[1];
	struct io_event ev[1];
	struct iovec iov[1];
	char buf[16];
	io_callback_t f = cb;
	io_iocb_cmd_t cmd = IO_CMD_PREAD;
	struct io_sigset s;
	struct io_sigset_compat sc;
	int r = 0;
	list[0] = &io;
	iov[0].iov_base = buf;
	iov[0].iov_len = sizeof(buf);
	s.ss = 0; s.ss_len = 8; sc.ss = 0; sc.ss_len = 8;
	io_prep_pread(&io, fd, buf, sizeof(buf), 0);
	io_prep_pwrite(&io, fd, buf, sizeof(buf), 0);
	io_prep_preadv(&io, fd, iov, 1, 0);
	io_prep_pwritev(&io, fd, iov, 1, 0);
	io_prep_preadv2(&io, fd, iov, 1, 0, 0);
	io_prep_pwritev2(&io, fd, iov, 1, 0, 0);
	io_prep_fsync(&io, fd);
	io_prep_fdsync(&io, fd);
	io_prep_poll(&io, fd, POLLIN);
	io_set_callback(&io, f);
	io_set_eventfd(&io, fd);
	r += io.u.v.nr + io.u.poll.events + (int)io.u.c.nbytes + (int)io.key + io.aio_rw_flags;
	r += io_poll(ctx, &io, cb, fd, POLLIN);
	r += io_fsync(ctx, &io, cb, fd);
	r += io_fdsync(ctx, &io, cb, fd);
	r += io_submit(ctx, 1, list) + io_cancel(ctx, &io, ev);
	r += io_getevents(ctx, 1, 1, ev, 0) + io_pgetevents(ctx, 1, 1, ev, 0, mask);
	r += io_queue_init(1, &ctx) + io_queue_run(ctx) + io_queue_wait(ctx, 0);
	r += io_queue_release(ctx) + io_setup(1, &ctx) + io_destroy(ctx);
	return r + (int)cmd + (int)ev[0].res + (int)sizeof(s) + (int)sizeof(sc);
}
"#;

#[test]
fn header_compiles_cleanly_as_c_and_cpp() {
    let dir = test_dir("header");
    let src = dir.path().join("user.c");
    std::fs::write(&src, HEADER_USER).expect("write the test source");
    let include = format!("-I{}", our_include().display());
    let mut checked = 0;
    // Strict ISO modes need _POSIX_C_SOURCE for sigset_t, as with the system header.
    let posix = "-D_POSIX_C_SOURCE=200809L";
    for (compiler, std) in [
        ("gcc", "-std=c99"),
        ("gcc", "-std=c11"),
        ("gcc", "-std=gnu89"),
        ("gcc", "-std=gnu17"),
        ("g++", "-std=c++11"),
        ("g++", "-std=c++17"),
    ] {
        if !have(compiler) {
            skip(&format!("header_compiles_cleanly_as_c_and_cpp ({compiler})"), "not installed");
            continue;
        }
        let mut cmd = Command::new(compiler);
        cmd.args([&include, std, posix, "-Wall", "-Wextra", "-Werror", "-fsyntax-only"]);
        if compiler == "g++" {
            cmd.args(["-x", "c++"]);
        } else if std != "-std=gnu89" {
            // (C90 has no long long, which the kernel's layout needs: no -pedantic there.)
            cmd.arg("-pedantic");
        }
        cmd.arg(&src);
        let ran = run(&mut cmd, Duration::from_secs(60));
        assert!(ran.status.success(), "{compiler} {std}: {}{}", ran.stdout, ran.stderr);
        checked += 1;
    }
    assert!(checked > 0, "no compiler ran");
}

/// The seed's libaio_copy.c (see `aio_testkit::seed_file`).
fn seed_source() -> std::path::PathBuf {
    aio_testkit::seed_file(&manifest_dir().join(".."), "libaio_copy.c")
        .unwrap_or_else(|| manifest_dir().join("../seed/libaio_copy.c"))
}

/// Runs the seed program (built against our header) on a fresh 4 KiB SRC and an empty DST;
/// returns its output and DST's contents.
fn run_seed(exe: &Path, lib_path: Option<&Path>, dir: &Path) -> (String, Vec<u8>) {
    let src = dir.join("src.bin");
    let dst = dir.join("dst.bin");
    let data: Vec<u8> = (0..4096u32).map(|i| b'A' + (i % 26) as u8).collect();
    std::fs::write(&src, data).expect("write SRC");
    std::fs::write(&dst, b"").expect("create DST");
    let mut cmd = Command::new(exe);
    cmd.arg(&src).arg(&dst).env_remove("LD_PRELOAD");
    match lib_path {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let ran = run(&mut cmd, Duration::from_secs(60));
    // The seed's main is `void main`: its exit status is whatever printf left behind.
    assert!(ran.status.code().is_some(), "{exe:?} was killed: {}", ran.status);
    (ran.stdout, std::fs::read(&dst).expect("read DST"))
}

#[test]
fn seed_libaio_copy_behaves_as_with_the_system_libaio() {
    let name = "seed_libaio_copy_behaves_as_with_the_system_libaio";
    let seed = seed_source();
    if !seed.exists() {
        return skip(name, &format!("{} is absent", seed.display()));
    }
    if !have("gcc") {
        return skip(name, "gcc is not installed");
    }
    let dir = test_dir("seed");
    let ours = ours();
    // Unchanged source, our header; the seed is old-style C, so its warnings are not ours.
    let mine = dir.path().join("copy-ours");
    gcc(&seed, &mine, Some(&our_include()), &Link::Dir(ours.lib_dir.clone()), &["-w"]);
    assert_eq!(
        loaded_libaio(&mine, Some(&ours.lib_dir)),
        Some(std::fs::canonicalize(&ours.library).expect("canonical path"))
    );
    let run_dir = test_dir("seed-ours");
    let (out, dst) = run_seed(&mine, Some(&ours.lib_dir), run_dir.path());
    assert!(out.contains("\n1 io_request completed"), "output with ours:\n{out}");
    assert_eq!(dst.len(), 1024, "DST length with ours; output:\n{out}");
    assert!(dst.starts_with(b"abcdefg"), "DST starts with {:?}", &dst[..16]);

    let Some(sys) = system_lib() else {
        return skip(name, "no system libaio.so.1 to compare with; ours checked alone");
    };
    let theirs = dir.path().join("copy-system");
    gcc(&seed, &theirs, Some(&our_include()), &Link::Path(sys), &["-w"]);
    let run_dir = test_dir("seed-system");
    let (sys_out, sys_dst) = run_seed(&theirs, None, run_dir.path());
    assert!(sys_out.contains("\n1 io_request completed"), "output with the system's:\n{sys_out}");
    assert_eq!(dst, sys_dst, "DST differs between our library and the system's");
    // The transcripts match except the callback address the seed prints with %x.
    let strip = |s: &str| -> Vec<String> {
        s.lines().filter(|l| !l.contains("].data = ")).map(str::to_owned).collect()
    };
    assert_eq!(strip(&out), strip(&sys_out));
}
