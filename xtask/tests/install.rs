//! `cargo xtask install` and `uninstall`, run on what cargo built for this test run: a round
//! trip into a temporary `--destdir` (every file where it belongs, paths inside files naming the
//! prefix, `aio run` finding the libraries in the tree, then nothing left), and a C program
//! built with `pkg-config --cflags --libs` against an installed prefix, run on our libraries.
//!
//! The install uses `--no-build --from DIR`, DIR being the directory of this build's
//! artifacts: a cargo inside the tests would wait forever on the build lock the outer cargo
//! holds. `cargo test --workspace` builds the `aio` binary and both libraries; a run of this
//! package alone may not have them, and then says SKIP.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aio_testkit::{have, run, skip, Ran};

/// The directory of this build's artifacts (the test runs from its `deps/`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent().and_then(Path::parent).expect("target/PROFILE/deps").to_path_buf()
}

/// Why the artifacts are not there, if they are not.
fn missing_artifacts() -> Option<String> {
    let dir = profile_dir();
    for name in ["aio", "libposixaio.so", "libaio_libaio.so"] {
        if !dir.join(name).exists() && !dir.join("deps").join(name).exists() {
            return Some(format!(
                "{name} is not built in {} (cargo test --workspace builds it)",
                dir.display()
            ));
        }
    }
    None
}

fn xtask(args: &[&str]) -> Ran {
    let ran = run(Command::new(env!("CARGO_BIN_EXE_xtask")).args(args), Duration::from_secs(120));
    ran
}

fn ok(ran: &Ran, what: &str) {
    assert!(ran.status.success(), "{what}: {}\n{}{}", ran.status, ran.stdout, ran.stderr);
}

/// Every path under `root`, relative, sorted; directories end with '/'.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() && !p.is_symlink() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

const FILES: [&str; 17] = [
    "bin/aio",
    "include/aio/aio.h",
    "include/aio/libaio.h",
    "lib/aio/install-manifest.txt",
    "lib/aio/libaio.so",
    "lib/aio/libaio.so.1",
    "lib/aio/libposixaio.so",
    "lib/pkgconfig/aio-libaio.pc",
    "lib/pkgconfig/aio-posixaio.pc",
    "share/bash-completion/completions/aio",
    "share/fish/vendor_completions.d/aio.fish",
    "share/man/man1/aio-bench.1",
    "share/man/man1/aio-cp.1",
    "share/man/man1/aio-info.1",
    "share/man/man1/aio-run.1",
    "share/man/man1/aio.1",
    "share/zsh/site-functions/_aio",
];

#[test]
fn install_and_uninstall_round_trip_into_a_destdir() {
    let name = "install_and_uninstall_round_trip_into_a_destdir";
    if let Some(why) = missing_artifacts() {
        return skip(name, &why);
    }
    let base = aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let dest = aio_testkit::test_dir(&base, "xtask-destdir");
    let d = dest.path();
    // Someone else's file where the install goes: left alone, with its directory.
    std::fs::create_dir_all(d.join("usr/local/bin")).unwrap();
    std::fs::write(d.join("usr/local/bin/other"), "theirs").unwrap();
    let from = profile_dir();
    let args = ["--no-build", "--from", from.to_str().unwrap(), "--destdir", d.to_str().unwrap()];
    let install: Vec<&str> = ["install"].iter().chain(args.iter()).copied().collect();
    ok(&xtask(&install), "install");
    let root = d.join("usr/local");
    for f in FILES {
        assert!(root.join(f).symlink_metadata().is_ok(), "{f} was not installed");
    }
    let link = std::fs::read_link(root.join("lib/aio/libaio.so")).unwrap();
    assert_eq!(link, Path::new("libaio.so.1"));
    let mode = |f: &str| std::fs::metadata(root.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/aio"), 0o755);
    assert_eq!(mode("lib/aio/libposixaio.so"), 0o755);
    assert_eq!(mode("include/aio/aio.h"), 0o644);
    // The files speak of the prefix, never of the staging directory.
    for pc in ["aio-libaio", "aio-posixaio"] {
        let text = std::fs::read_to_string(root.join(format!("lib/pkgconfig/{pc}.pc"))).unwrap();
        assert!(text.contains("prefix=/usr/local\n"), "{text}");
        assert!(text.contains("-Wl,-rpath,${libdir}"), "{text}");
        assert!(!text.contains(d.to_str().unwrap()), "{text}");
    }
    let manifest = std::fs::read_to_string(root.join("lib/aio/install-manifest.txt")).unwrap();
    assert!(!manifest.contains(d.to_str().unwrap()), "{manifest}");
    assert!(manifest.contains("file /usr/local/bin/aio\n"), "{manifest}");
    assert!(!manifest.contains("dir /usr/local/bin\n"), "bin/ was there before: {manifest}");
    // Man pages and completions from the clap definitions.
    let page = std::fs::read_to_string(root.join("share/man/man1/aio-run.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH aio-run 1"), "{page}");
    assert!(page.contains("\\-\\-stats") || page.contains("--stats"), "{page}");
    for f in FILES.iter().filter(|f| f.starts_with("share/") && !f.contains("man1")) {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        for word in ["bench", "cp", "info", "run", "stats", "clean"] {
            assert!(text.contains(word), "{f} lacks {word}");
        }
        assert!(!text.contains("__generate"), "{f} offers the hidden command");
    }
    // The installed aio runs, and finds the libraries beside it.
    let ran = run(Command::new(root.join("bin/aio")).arg("--version"), Duration::from_secs(30));
    ok(&ran, "aio --version");
    assert_eq!(ran.stdout.trim(), format!("aio {}", env!("CARGO_PKG_VERSION")));
    let ran = run(
        Command::new(root.join("bin/aio")).args(["run", "--force", "-v", "--", "true"]),
        Duration::from_secs(30),
    );
    ok(&ran, "aio run from the tree");
    let libs = std::fs::canonicalize(root.join("lib/aio")).unwrap();
    assert!(
        ran.stderr.contains(&format!(
            "LD_PRELOAD={} {}",
            libs.join("libposixaio.so").display(),
            libs.join("libaio.so.1").display()
        )),
        "{}",
        ran.stderr
    );

    // Again over itself: the same tree.
    let before = tree(d);
    ok(&xtask(&install), "install again");
    assert_eq!(tree(d), before);

    let uninstall: Vec<&str> = ["uninstall"].iter().chain(args[3..].iter()).copied().collect();
    ok(&xtask(&uninstall), "uninstall");
    assert_eq!(tree(d), ["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/other"]);
    let again = xtask(&uninstall);
    assert!(!again.status.success());
    assert!(again.stderr.contains("no install manifest at "), "{}", again.stderr);
    // Bad usage.
    let bad = xtask(&["install", "--prefix", "relative"]);
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("not an absolute path"), "{}", bad.stderr);
}

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <string.h>

static const char *owner(const char *sym)
{
    Dl_info info;
    void *p = dlsym(RTLD_DEFAULT, sym);
    return p && dladdr(p, &info) && info.dli_fname ? info.dli_fname : "?";
}

int main(int argc, char **argv)
{
    io_context_t ctx;
    memset(&ctx, 0, sizeof ctx);
    int r = io_setup(4, &ctx);
    printf("io_setup %d\n", r);
    io_destroy(ctx);
    int fd = open(argv[1], O_RDONLY);
    static char buf[512];
    struct aiocb cb;
    memset(&cb, 0, sizeof cb);
    cb.aio_fildes = fd;
    cb.aio_buf = buf;
    cb.aio_nbytes = sizeof buf;
    aio_read(&cb);
    const struct aiocb *list[1] = {&cb};
    while (aio_error(&cb) == EINPROGRESS)
        aio_suspend(list, 1, NULL);
    printf("aio_read %zd\n", aio_return(&cb));
    printf("io_setup from %s\n", owner("io_setup"));
    printf("aio_read from %s\n", owner("aio_read"));
    return 0;
}
"#;

#[test]
fn a_c_program_builds_with_pkg_config_against_the_installed_tree() {
    let name = "a_c_program_builds_with_pkg_config_against_the_installed_tree";
    if let Some(why) = missing_artifacts() {
        return skip(name, &why);
    }
    if !have("pkg-config") {
        return skip(
            name,
            "pkg-config is not installed (scripts/install-test-deps.sh installs it)",
        );
    }
    if !have("gcc") {
        return skip(name, "gcc is not installed");
    }
    let base = aio_testkit::test_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let work = aio_testkit::test_dir(&base, "xtask-prefix");
    let prefix = work.path().join("prefix");
    let from = profile_dir();
    let p = prefix.to_str().unwrap();
    ok(
        &xtask(&["install", "--no-build", "--from", from.to_str().unwrap(), "--prefix", p]),
        "install --prefix",
    );
    let mut pc = Command::new("pkg-config");
    pc.args(["--cflags", "--libs", "aio-libaio", "aio-posixaio"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"));
    let flags = run(&mut pc, Duration::from_secs(30));
    ok(&flags, "pkg-config");
    let flags: Vec<String> = flags.stdout.split_whitespace().map(String::from).collect();
    assert!(flags.contains(&format!("-I{p}/include/aio")), "{flags:?}");
    let src = work.path().join("prog.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = work.path().join("prog");
    // The headers the program was built with: ours.
    let deps = run(Command::new("gcc").arg("-M").arg(&src).args(&flags), Duration::from_secs(60));
    ok(&deps, "gcc -M");
    for h in ["include/aio/aio.h", "include/aio/libaio.h"] {
        assert!(deps.stdout.contains(&format!("{p}/{h}")), "{h} not used:\n{}", deps.stdout);
    }
    let built = run(
        Command::new("gcc").arg(&src).arg("-o").arg(&exe).args(&flags).arg("-ldl"),
        Duration::from_secs(60),
    );
    ok(&built, "gcc with pkg-config's flags");
    let data = work.path().join("data.bin");
    std::fs::write(&data, vec![7u8; 4096]).unwrap();
    // No environment: the RPATH from the .pc files finds our libraries.
    let ran = run(
        Command::new(&exe).arg(&data).env_remove("LD_LIBRARY_PATH").env_remove("LD_PRELOAD"),
        Duration::from_secs(60),
    );
    ok(&ran, "the program");
    assert!(ran.stdout.contains("io_setup 0\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("aio_read 512\n"), "{}", ran.stdout);
    let libs = std::fs::canonicalize(prefix.join("lib/aio")).unwrap();
    assert!(
        ran.stdout.contains(&format!("io_setup from {}\n", libs.join("libaio.so.1").display())),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(&format!("aio_read from {}\n", libs.join("libposixaio.so").display())),
        "{}",
        ran.stdout
    );
    ok(&xtask(&["uninstall", "--prefix", p]), "uninstall --prefix");
    assert!(!prefix.exists(), "uninstall left {:?}", tree(&prefix));
}
