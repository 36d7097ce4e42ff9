//! `aio run`, run as a program on C programs built for the test: which library each AIO call
//! binds to, the environment it sets, the programs it refuses, exit statuses and signals passed
//! through, the seed program, a script, and fio when it is installed.
//!
//! The `aio` binary and the two libraries are laid out as an install tree
//! (`bin/aio`, `lib/aio/`) under cargo's target tmp directory, which is also how `aio run`
//! finds them.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{run_limited, skip, test_dir, Run};

/// The install tree the tests run `aio` from.
struct Tree {
    aio: PathBuf,
    posix: PathBuf,
    libaio: PathBuf,
}

/// Where cargo put the artifact `name` of this build (beside the test, or one level up).
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("deps");
    [deps.join(name), deps.join("..").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} was not built beside {}", deps.display()))
}

/// Copies `from` to `to` through a temporary name, so a program using the old copy keeps it.
fn install(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let part = to.with_extension(format!("part{}", std::process::id()));
    std::fs::copy(from, &part).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::rename(&part, to).unwrap();
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aio-run-tree");
        let t = Tree {
            aio: root.join("bin/aio"),
            posix: root.join("lib/aio/libposixaio.so"),
            libaio: root.join("lib/aio/libaio.so.1"),
        };
        install(Path::new(env!("CARGO_BIN_EXE_aio")), &t.aio);
        install(&built("libposixaio.so"), &t.posix);
        install(&built("libaio_libaio.so"), &t.libaio);
        t
    })
}

/// The test programs, built once.
struct Progs {
    posix: PathBuf,
    posix_static: Result<PathBuf, String>,
    libaio: PathBuf,
    /// libaio_prog with a DT_RPATH to a directory holding the system's libaio.so.1, if any.
    libaio_rpath: Result<PathBuf, String>,
    neither: PathBuf,
}

fn gcc(args: &[&str]) -> Result<(), String> {
    let ran = aio_testkit::run(Command::new("gcc").args(args), Duration::from_secs(120));
    if ran.status.success() {
        Ok(())
    } else {
        Err(format!("gcc {args:?}: {}{}", ran.stdout, ran.stderr))
    }
}

fn system_libaio() -> Option<PathBuf> {
    ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64"]
        .iter()
        .flat_map(|d| ["libaio.so.1", "libaio.so.1t64"].map(|n| Path::new(d).join(n)))
        .find(|p| p.exists())
}

/// None when gcc is missing.
fn progs() -> Option<&'static Progs> {
    static PROGS: OnceLock<Option<Progs>> = OnceLock::new();
    PROGS
        .get_or_init(|| {
            if !aio_testkit::have("gcc") {
                return None;
            }
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aio-run-progs");
            std::fs::create_dir_all(&out).unwrap();
            let s = |n: &str| src.join(n).to_str().unwrap().to_string();
            let o = |n: &str| out.join(n);
            gcc(&[&s("posix_prog.c"), "-o", o("posix_prog").to_str().unwrap(), "-ldl"]).unwrap();
            gcc(&[&s("neither.c"), "-o", o("neither").to_str().unwrap()]).unwrap();
            let posix_static = gcc(&[
                &s("posix_prog.c"),
                "-DSTATIC",
                "-static",
                "-o",
                o("posix_static").to_str().unwrap(),
            ])
            .map(|()| o("posix_static"));
            // libaio_prog against our header, linked with -laio from a directory whose
            // libaio.so is ours.
            let link = out.join("link");
            std::fs::create_dir_all(&link).unwrap();
            let _ = std::fs::remove_file(link.join("libaio.so"));
            std::os::unix::fs::symlink(&tree().libaio, link.join("libaio.so")).unwrap();
            let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../libaio/include");
            let inc = format!("-I{}", include.display());
            let l = format!("-L{}", link.display());
            gcc(&[
                &inc,
                &s("libaio_prog.c"),
                "-o",
                o("libaio_prog").to_str().unwrap(),
                &l,
                "-laio",
                "-ldl",
            ])
            .unwrap();
            let libaio_rpath = match system_libaio() {
                None => Err("no system libaio.so.1 to put on an RPATH".to_string()),
                Some(sys) => {
                    let other = out.join("other");
                    std::fs::create_dir_all(&other).unwrap();
                    // As libaio.so.1 whatever its name here (Debian's libaio.so.1t64 too):
                    // the name the program's DT_NEEDED looks for on the RPATH.
                    install(&sys, &other.join("libaio.so.1"));
                    let rpath = format!("-Wl,--disable-new-dtags,-rpath,{}", other.display());
                    gcc(&[
                        &inc,
                        &s("libaio_prog.c"),
                        "-o",
                        o("libaio_rpath").to_str().unwrap(),
                        &format!("-L{}", other.display()),
                        &l,
                        &rpath,
                        "-laio",
                        "-ldl",
                    ])
                    .map(|()| o("libaio_rpath"))
                }
            };
            Some(Progs {
                posix: o("posix_prog"),
                posix_static,
                libaio: o("libaio_prog"),
                libaio_rpath,
                neither: o("neither"),
            })
        })
        .as_ref()
}

/// Runs `aio ARGS` from the tree in `cwd`, with `env` set, under a time limit.
fn aio_run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(&tree().aio);
    cmd.args(args).current_dir(cwd).env_remove("LD_PRELOAD").env_remove("LD_LIBRARY_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_limited(&mut cmd, Duration::from_secs(120))
}

/// A data file to read.
fn data_file(dir: &Path) -> String {
    let p = dir.join("data.bin");
    std::fs::write(&p, common::pattern(8192, 3)).unwrap();
    p.to_str().unwrap().to_string()
}

/// The value of the line `KEY VALUE` or `KEY=VALUE` in `out`.
fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(['=', ' ', ':']))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{out}"))
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

macro_rules! need_gcc {
    ($name:expr) => {
        match progs() {
            Some(p) => p,
            None => {
                skip($name, "gcc is not installed");
                return;
            }
        }
    };
}

#[test]
fn a_posix_aio_program_binds_to_libposixaio() {
    let p = need_gcc!("a_posix_aio_program_binds_to_libposixaio");
    let dir = test_dir();
    let data = data_file(dir.path());
    let prog = p.posix.to_str().unwrap();
    // Alone: glibc serves it.
    let mut alone = Command::new(prog);
    alone.args([&data, "exit=0"]).env_remove("LD_PRELOAD");
    let alone = run_limited(&mut alone, Duration::from_secs(60));
    alone.expect_code(0, "the program alone");
    assert!(value(&alone.stdout, "aio_read from").contains("libc.so"), "{}", alone.stdout);
    assert_eq!(value(&alone.stdout, "engine"), "glibc");

    let run =
        aio_run(dir.path(), &["run", "--", prog, &data, "exit=0"], &[("LD_DEBUG", "bindings")]);
    run.expect_code(0, "aio run");
    let ours = canonical(&tree().posix);
    assert_eq!(value(&run.stdout, "aio_read from"), ours);
    assert_eq!(value(&run.stdout, "aio_read:"), "1024 bytes");
    assert_eq!(value(&run.stdout, "LD_PRELOAD"), ours, "only the library it uses");
    assert_ne!(value(&run.stdout, "engine"), "glibc");
    assert_eq!(value(&run.stdout, "SIGPIPE"), "default", "aio's ignored SIGPIPE leaked");
    // The loader's own word: the program's aio_read, aio_error and aio_return are ours.
    for sym in ["aio_read", "aio_error", "aio_return"] {
        let bound = run.stderr.lines().any(|l| {
            l.contains(&format!("binding file {prog} [0] to {ours} [0]: normal symbol `{sym}'"))
        });
        assert!(bound, "LD_DEBUG shows no binding of {sym} to {ours}");
    }
}

#[test]
fn a_libaio_program_binds_to_ours_even_with_an_rpath() {
    let p = need_gcc!("a_libaio_program_binds_to_ours_even_with_an_rpath");
    let dir = test_dir();
    let data = data_file(dir.path());
    let ours = canonical(&tree().libaio);
    let mut progs = vec![p.libaio.clone()];
    match &p.libaio_rpath {
        Ok(r) => progs.push(r.clone()),
        Err(why) => skip("a_libaio_program_binds_to_ours_even_with_an_rpath (RPATH)", why),
    }
    for prog in &progs {
        let prog = prog.to_str().unwrap();
        let run = aio_run(dir.path(), &["run", "-v", "--", prog, &data], &[]);
        run.expect_code(0, &format!("aio run {prog}"))
            .expect_stderr("links libaio; on libaio.so.1")
            .expect_stderr(&format!("aio run: LD_PRELOAD={ours}\n"));
        assert_eq!(value(&run.stdout, "io_getevents:"), "1 event, res 4096");
        assert_eq!(value(&run.stdout, "io_submit from"), ours, "{prog}");
    }
    if let Ok(r) = &p.libaio_rpath {
        // What LD_LIBRARY_PATH alone would have given: the library on the RPATH.
        let mut cmd = Command::new(r);
        cmd.arg(&data).env("LD_LIBRARY_PATH", tree().libaio.parent().unwrap());
        let alone = run_limited(&mut cmd, Duration::from_secs(60));
        alone.expect_code(0, "with LD_LIBRARY_PATH");
        assert_ne!(value(&alone.stdout, "io_submit from"), ours, "RPATH did not win: test void");
    }
}

#[test]
fn the_options_set_the_environment_the_libraries_read() {
    let p = need_gcc!("the_options_set_the_environment_the_libraries_read");
    let dir = test_dir();
    let data = data_file(dir.path());
    let prog = p.posix.to_str().unwrap();
    let ours = canonical(&tree().posix);
    let other = canonical(&tree().libaio);
    let run = aio_run(
        dir.path(),
        &[
            "run",
            "--engine",
            "pool",
            "--stats",
            "--fault",
            "op=read,errno=EIO",
            "--seed",
            "7",
            "--",
            prog,
            &data,
            "exit=0",
        ],
        &[("LD_PRELOAD", &other)],
    );
    run.expect_code(0, "aio run with options");
    assert_eq!(value(&run.stdout, "AIO_ENGINE"), "pool");
    assert!(value(&run.stdout, "engine").starts_with("pool"), "{}", run.stdout);
    assert_eq!(value(&run.stdout, "AIO_STATS"), "1");
    assert_eq!(value(&run.stdout, "AIO_FAULT"), "op=read,errno=EIO");
    // The rule reached the library: the program's read failed, and the statistics say so.
    assert!(run.stdout.contains("aio_read: -1 bytes"), "{}", run.stdout);
    assert!(
        run.stderr.contains("libposixaio: 1 requests (read 1) on pool with 1 fault rule(s): ")
            && run.stderr.contains("errors 1 (EIO 1)"),
        "{}",
        run.stderr
    );
    assert_eq!(value(&run.stdout, "LD_PRELOAD"), format!("{ours} {other}"), "kept after ours");
    // Without them, nothing is set.
    let run = aio_run(dir.path(), &["run", prog, &data, "exit=0"], &[]);
    run.expect_code(0, "aio run without options or --");
    for k in ["AIO_ENGINE", "AIO_STATS", "AIO_FAULT"] {
        assert_eq!(value(&run.stdout, k), "(unset)");
    }
    for engine in ["uring", "kernel"] {
        let run = aio_run(dir.path(), &["run", "--engine", engine, prog, &data, "exit=0"], &[]);
        run.expect_code(0, engine);
        assert!(value(&run.stdout, "engine").starts_with(engine), "{}", run.stdout);
    }
    aio_run(dir.path(), &["run", "--fault", "", prog, &data, "exit=0"], &[])
        .expect_code(2, "an empty fault spec")
        .expect_stderr("the fault SPEC is empty");
    aio_run(dir.path(), &["run", "--fault", "op=reed,errno=EIO", prog, &data, "exit=0"], &[])
        .expect_code(2, "a malformed fault spec")
        .expect_stderr("reed");
    aio_run(dir.path(), &["run", "--engine", "sync", prog], &[]).expect_code(2, "a bad engine");
    aio_run(dir.path(), &["run"], &[]).expect_code(2, "no PROGRAM");
}

#[test]
fn programs_on_which_nothing_would_change_are_refused() {
    let p = need_gcc!("programs_on_which_nothing_would_change_are_refused");
    let dir = test_dir();
    let d = dir.path();
    let data = data_file(d);
    match &p.posix_static {
        Ok(st) => {
            // It works alone, with glibc's AIO linked in.
            let mut alone = Command::new(st);
            alone.args([&data, "exit=0"]);
            run_limited(&mut alone, Duration::from_secs(60)).expect_code(0, "static alone");
            for extra in [&[][..], &["--posix"][..], &["--force"][..]] {
                let mut args = vec!["run"];
                args.extend_from_slice(extra);
                args.extend_from_slice(&[st.to_str().unwrap(), &data, "exit=0"]);
                aio_run(d, &args, &[])
                    .expect_code(1, &format!("a static program {extra:?}"))
                    .expect_stderr("aio run: ")
                    .expect_stderr("posix_static is statically linked: no dynamic loader runs it");
            }
        }
        Err(why) => skip("programs_on_which_nothing_would_change_are_refused (static)", why),
    }
    let neither = p.neither.to_str().unwrap();
    aio_run(d, &["run", neither], &[])
        .expect_code(1, "a program with no AIO")
        .expect_stderr("neither links libaio (libaio.so.1) nor calls the POSIX AIO functions")
        .expect_stderr("nothing would change");
    aio_run(d, &["run", "--force", neither], &[]).expect_code(0, "--force").expect_stdout("hello");
    let posix = p.posix.to_str().unwrap();
    aio_run(d, &["run", "--libaio", posix, &data, "exit=0"], &[])
        .expect_code(1, "--libaio on a POSIX AIO program")
        .expect_stderr("does not link libaio (libaio.so.1): --libaio would change nothing");
    aio_run(d, &["run", "--posix", p.libaio.to_str().unwrap(), &data], &[])
        .expect_code(1, "--posix on a libaio program")
        .expect_stderr("does not call the POSIX AIO functions");
    aio_run(d, &["run", "no-such-program-here"], &[])
        .expect_code(1, "a missing program")
        .expect_stderr("aio run: cannot run no-such-program-here: not found in PATH");
    std::fs::write(d.join("notes.txt"), "text").unwrap();
    aio_run(d, &["run", "./notes.txt"], &[])
        .expect_code(1, "a file that is not executable")
        .expect_stderr("cannot run ./notes.txt: it is not executable");
    std::fs::set_permissions(
        d.join("notes.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    aio_run(d, &["run", "./notes.txt"], &[])
        .expect_code(1, "neither ELF nor script")
        .expect_stderr("is neither an ELF program nor a script");
}

#[test]
fn exit_statuses_and_signals_pass_through() {
    let p = need_gcc!("exit_statuses_and_signals_pass_through");
    let dir = test_dir();
    let data = data_file(dir.path());
    let prog = p.posix.to_str().unwrap();
    for code in [0, 1, 42, 255] {
        aio_run(dir.path(), &["run", prog, &data, &format!("exit={code}")], &[])
            .expect_code(code, &format!("exit {code}"));
    }
    // Death by a signal: aio run's caller sees that signal (common::Run shows it as 128 + N).
    for sig in [libc::SIGUSR1, libc::SIGABRT] {
        aio_run(dir.path(), &["run", prog, &data, &format!("signal={sig}")], &[])
            .expect_code(128 + sig, &format!("death by signal {sig}"));
    }
    // Signals sent to aio run reach the program.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut child = Command::new(&tree().aio)
            .args(["run", prog, &data, "wait"])
            .env_remove("LD_PRELOAD")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut text = String::new();
            let mut byte = [0u8; 1];
            // Up to "ready" (the program's handlers are installed), then the rest.
            while !text.ends_with("ready\n") && out.read(&mut byte).unwrap_or(0) == 1 {
                text.push(byte[0] as char);
            }
            let _ = ready_tx.send(());
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
            text + &rest
        });
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not say it was ready within 30 s");
        }
        // SAFETY: kill with our own child's pid and a valid signal.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "signal {sig} did not end it");
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = reader.join().unwrap();
        assert!(out.contains(&format!("got signal {sig}\n")), "signal {sig}: {out}");
        assert_eq!(status.code(), Some(100 + sig), "signal {sig}: {status:?}");
        assert_eq!(status.signal(), None);
    }
}

#[test]
fn the_seed_program_runs_on_libposixaio() {
    let name = "the_seed_program_runs_on_libposixaio";
    need_gcc!(name);
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(seed) = aio_testkit::seed_file(&ws, "posix_aio_read.c") else {
        skip(name, "posix_aio_read.c is absent");
        return;
    };
    let dir = test_dir();
    let exe = dir.path().join("posix_aio_read");
    gcc(&[seed.to_str().unwrap(), "-o", exe.to_str().unwrap(), "-w"]).unwrap();
    std::fs::write(dir.path().join("test.txt"), common::pattern(4096, 9)).unwrap();
    let run = aio_run(dir.path(), &["run", "./posix_aio_read"], &[("LD_DEBUG", "bindings")]);
    run.expect_code(0, "the seed on aio run");
    assert!(run.stdout.ends_with("返回值为:1024"), "{}", run.stdout);
    let ours = canonical(&tree().posix);
    for sym in ["aio_read", "aio_error", "aio_return"] {
        assert!(
            run.stderr.contains(&format!("to {ours} [0]: normal symbol `{sym}'")),
            "{sym} not bound to ours"
        );
    }
}

#[test]
fn a_script_is_run_unchecked_and_its_programs_inherit_the_libraries() {
    let p = need_gcc!("a_script_is_run_unchecked_and_its_programs_inherit_the_libraries");
    let dir = test_dir();
    let data = data_file(dir.path());
    let script = dir.path().join("start.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexec {} {data} exit=7\n", p.posix.display()))
        .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = aio_run(dir.path(), &["run", "-v", "./start.sh"], &[]);
    run.expect_code(7, "a script").expect_stderr("a script (not checked)");
    assert_eq!(value(&run.stdout, "aio_read from"), canonical(&tree().posix));
    assert_eq!(
        value(&run.stdout, "LD_PRELOAD"),
        format!("{} {}", canonical(&tree().posix), canonical(&tree().libaio))
    );
}

#[test]
fn a_missing_library_is_named_with_where_it_was_looked_for() {
    let p = need_gcc!("a_missing_library_is_named_with_where_it_was_looked_for");
    let dir = test_dir();
    let lonely = dir.path().join("bin/aio");
    install(&tree().aio, &lonely);
    let data = data_file(dir.path());
    let mut cmd = Command::new(&lonely);
    cmd.args(["run", p.posix.to_str().unwrap(), &data, "exit=0"]);
    run_limited(&mut cmd, Duration::from_secs(60))
        .expect_code(1, "no library beside aio")
        .expect_stderr("aio run: cannot find libposixaio.so beside the aio binary (looked in ")
        .expect_stderr("cargo xtask install");
}

#[test]
fn fio_runs_on_both_libraries() {
    let name = "fio_runs_on_both_libraries";
    if !aio_testkit::have("fio") {
        skip(name, "fio is not installed (scripts/install-test-deps.sh installs it)");
        return;
    }
    let dir = test_dir();
    for (engine, lib) in [("libaio", &tree().libaio), ("posixaio", &tree().posix)] {
        let mut cmd = Command::new(&tree().aio);
        cmd.args(["run", "-v", "--", "fio"]).env_remove("LD_PRELOAD").env("LD_DEBUG", "bindings");
        let out = aio_testkit::fio_job(
            cmd,
            dir.path(),
            engine,
            &[&format!("--ioengine={engine}"), "--size=8m", "--bs=4k", "--iodepth=8"],
            &["--rw=randread", "--io_size=4m"],
        );
        let ours = canonical(lib);
        let sym = if engine == "libaio" { "io_submit" } else { "aio_read64" };
        assert!(
            out.contains(&format!("to {ours} [0]: normal symbol `{sym}'")),
            "fio's {sym} is not bound to {ours}"
        );
    }
}
