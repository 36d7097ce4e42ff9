//! The C suite: each program in tests/c/ prints a transcript of what the POSIX AIO functions
//! answer, and is built and run several ways:
//!
//! - (a) built against the system `<aio.h>`, run on glibc: the reference;
//! - (b) the same executable run with `LD_PRELOAD` of our library (io_uring, unless this kernel
//!   refuses it);
//! - (c) built against our `aio.h`, run with our library: must print exactly what (b) prints
//!   (so a program compiled against our header behaves the same; for `layout.c` this compares
//!   our header's layout with the system's member by member);
//! - (d) for the programs in [`ENGINE_PROGRAMS`], (a) run with our library and
//!   `AIO_ENGINE=kernel`, then `AIO_ENGINE=pool`;
//! - (e) (a) run with our library and `AIO_INLINE=0`: no request served at submission, every
//!   one through the asynchronous engine — the same answers (and notifications) as (b).
//!
//! Every program reports on stderr which implementation served it (`engine: glibc`, or our
//! `posixaio_engine()`), and each run is checked to have been served by the one it should: the
//! preload took effect, the engine asked for is the one used.
//!
//! (b), (d) and (e) must print what (a) prints except for the lines in [`DELIBERATE`], where this
//! library answers differently on purpose; each is listed with glibc's line, ours, the engines
//! it applies to, and why.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A line that differs on purpose.
struct Deliberate {
    program: &'static str,
    /// glibc's line.
    glibc: &'static str,
    /// Ours.
    ours: &'static str,
    /// The engines it applies to.
    engines: &'static [&'static str],
    why: &'static str,
}

const ALL: &[&str] = &["uring", "kernel", "pool"];

const NULL_CRASH: &str = "glibc dereferences the null aiocb; ours checks it (EINVAL)";
const NEVER: &str = "glibc returns the never-submitted aiocb's own fields (zeroed: 0); ours \
                     knows it never submitted it (EINVAL)";
const BAD_SIGEVENT: &str = "glibc does not check the sigevent (it takes the request and never \
                            notifies); ours refuses it with EINVAL";
const NO_LIMIT: &str = "glibc has no limit (sysconf says -1); ours takes AIO_MAX (65536) \
                        requests in flight and AIO_LISTIO_MAX (65536) list entries";
const PIPE_CANCEL: &str =
    "a read waiting on an empty pipe has moved nothing and is cancelled (io_uring \
                           cancels it; the thread pool parks it without a thread until the pipe \
                           is ready); glibc's thread is blocked in read(2) and cannot be stopped \
                           (AIO_NOTCANCELED)";
const PER_FD: &str = "glibc runs the requests of one descriptor one after another, so the write \
                      waits behind the read; ours has both in flight at once";
const FORKED: &str = "a request the parent had in flight never completes in the child: glibc \
                      leaves it in progress forever (a wait for it without a timeout never \
                      ends); ours says it is cancelled for the child, and a wait for it ends";

const fn d(
    program: &'static str,
    glibc: &'static str,
    ours: &'static str,
    engines: &'static [&'static str],
    why: &'static str,
) -> Deliberate {
    Deliberate { program, glibc, ours, engines, why }
}

const DELIBERATE: &[Deliberate] = &[
    // errors.c
    d(
        "errors",
        "read SIGEV_THREAD null function = CRASH(SIGSEGV)",
        "read SIGEV_THREAD null function = -1 EINVAL",
        ALL,
        "glibc starts a thread that calls the null function; ours refuses the sigevent",
    ),
    d("errors", "aio_read(NULL) = CRASH(SIGSEGV)", "aio_read(NULL) = -1 EINVAL", ALL, NULL_CRASH),
    d("errors", "aio_error(NULL) = CRASH(SIGSEGV)", "aio_error(NULL) = -1 EINVAL", ALL, NULL_CRASH),
    d("errors", "read sigev_notify 99 = 0", "read sigev_notify 99 = -1 EINVAL", ALL, BAD_SIGEVENT),
    d(
        "errors",
        "read sigev_notify 99 error = 0",
        "read sigev_notify 99 error = EINVAL",
        ALL,
        "refused at once, ours stores EINVAL in the aiocb (as glibc does for a bad aio_reqprio)",
    ),
    d(
        "errors",
        "read sigev_signo 1000 = 0",
        "read sigev_signo 1000 = -1 EINVAL",
        ALL,
        "glibc takes the request and fails to queue the signal afterwards (then stores EINVAL in \
         the aiocb, as ours does at once)",
    ),
    d("errors", "never submitted error = 0", "never submitted error = -1 EINVAL", ALL, NEVER),
    d("errors", "never submitted return = 0", "never submitted return = -1 EINVAL", ALL, NEVER),
    d(
        "errors",
        "in flight return = a value from the aiocb",
        "in flight return = -1 EINPROGRESS",
        ALL,
        "before completion glibc's aio_return gives its __return_value field as it is (0, or -1 \
         while its thread tries pread on the pipe); ours says the request is still in progress",
    ),
    // listio.c
    d(
        "listio",
        "LIO_NOWAIT reqprio -5 = -1 EINVAL",
        "LIO_NOWAIT reqprio -5 = -1 EIO",
        ALL,
        "an entry refused at once: POSIX's EIO (check each entry); glibc passes on the entry's \
         errno, which POSIX reserves for a bad mode or count",
    ),
    // limits.c
    d(
        "limits",
        "lio_listio 65537 null entries = 0",
        "lio_listio 65537 null entries = -1 EINVAL",
        ALL,
        NO_LIMIT,
    ),
    d(
        "limits",
        "requests taken before a refusal = 65537",
        "requests taken before a refusal = 65536",
        ALL,
        NO_LIMIT,
    ),
    d("limits", "refused with = nothing", "refused with = EAGAIN", ALL, NO_LIMIT),
    d(
        "limits",
        "refused request's error = nothing",
        "refused request's error = EAGAIN",
        ALL,
        NO_LIMIT,
    ),
    d("limits", "lio_listio when full = 0", "lio_listio when full = -1 EAGAIN", ALL, NO_LIMIT),
    d(
        "limits",
        "lio_listio when full, entries: EINPROGRESS EINPROGRESS",
        "lio_listio when full, entries: EAGAIN EAGAIN",
        ALL,
        NO_LIMIT,
    ),
    // notify.c
    d(
        "notify",
        "SIGEV_THREAD_ID: no signal (EAGAIN)",
        "SIGEV_THREAD_ID: signo ok = 1, si_code = SI_ASYNCIO, si_value = 99, si_pid ok = 1",
        ALL,
        "glibc's POSIX AIO knows only SIGEV_SIGNAL and SIGEV_THREAD and sends nothing for \
         SIGEV_THREAD_ID; ours queues the signal to that thread",
    ),
    // cancel.c
    d(
        "cancel",
        "cancel pipe read = AIO_NOTCANCELED",
        "cancel pipe read = AIO_CANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "pipe read error after cancel = EINPROGRESS",
        "pipe read error after cancel = ECANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "pipe read error at the end = 0",
        "pipe read error at the end = ECANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "pipe read return at the end = 1",
        "pipe read return at the end = -1 0",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "cancel two pipe reads = AIO_NOTCANCELED",
        "cancel two pipe reads = AIO_CANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "after cancel: first = EINPROGRESS, second = ECANCELED",
        "after cancel: first = ECANCELED, second = ECANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    d(
        "cancel",
        "at the end: first = 0, second = ECANCELED",
        "at the end: first = ECANCELED, second = ECANCELED",
        ALL,
        PIPE_CANCEL,
    ),
    // fork.c
    d(
        "fork",
        "child: parent's request = EINPROGRESS",
        "child: parent's request = ECANCELED",
        ALL,
        FORKED,
    ),
    d(
        "fork",
        "child: aio_suspend on the parent's request = -1 EAGAIN",
        "child: aio_suspend on the parent's request = 0",
        ALL,
        FORKED,
    ),
    d(
        "fork",
        "child: parent's request still = EINPROGRESS",
        "child: parent's request still = ECANCELED",
        ALL,
        FORKED,
    ),
    // bigsize.c
    d(
        "bigsize",
        "aio_suspend {LONG_MAX, 0} until a read completes = -1 EAGAIN",
        "aio_suspend {LONG_MAX, 0} until a read completes = 0",
        ALL,
        "glibc adds the timeout to the clock, which overflows: it times out at once; ours takes \
         a timeout too large to reach as no limit, and waits for the read",
    ),
    // overlap.c
    d(
        "overlap",
        "the write went out while the read waited = no",
        "the write went out while the read waited = yes",
        ALL,
        PER_FD,
    ),
    d(
        "overlap",
        "the write went out while 16 reads waited = no",
        "the write went out while 16 reads waited = yes",
        ALL,
        PER_FD,
    ),
];

/// The programs also run with `AIO_ENGINE=kernel` and `AIO_ENGINE=pool`.
const ENGINE_PROGRAMS: &[&str] = &[
    "readwrite",
    "errors",
    "fsync",
    "suspend",
    "cancel",
    "notify",
    "listio",
    "fork",
    "threads",
    "overlap",
    "init",
    "largefile",
    "sigsafe",
    "eintr",
    "cancelsig",
    "sockets",
    "exhaust",
    "bigsize",
    "bounded",
    "polling",
];

const FLAGS: &[&str] = &["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-ldl"];
const RUN_LIMIT: Duration = Duration::from_secs(180);

struct Built {
    /// Against the system header.
    system: PathBuf,
    /// Against ours.
    ours: PathBuf,
}

fn build(program: &str, dir: &Path) -> Built {
    let src = manifest_dir().join("tests/c").join(format!("{program}.c"));
    let system = dir.join(format!("{program}.sys"));
    gcc(&src, &system, None, FLAGS);
    let ours = dir.join(format!("{program}.ours"));
    gcc(&src, &ours, Some(&our_include()), FLAGS);
    Built { system, ours }
}

/// Runs `exe` one way in a fresh directory; returns (transcript, the engine that served it).
fn run_program(program: &str, exe: &Path, with: With) -> (String, String) {
    let data = test_dir(&format!("data-{program}"));
    let mut cmd = Command::new(exe);
    cmd.arg(data.path());
    with.apply(&mut cmd);
    let ran = run(&mut cmd, RUN_LIMIT);
    let label = with.label();
    assert!(
        ran.status.success() && !ran.stdout.contains("FATAL"),
        "{program} ({label}) failed ({}):\n{}{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
    let engine = ran
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("engine: "))
        .unwrap_or_else(|| {
            panic!("{program} ({label}) did not say what served it:\n{}", ran.stderr)
        })
        .to_string();
    let name = engine.split([' ', ';']).next().unwrap_or_default().to_string();
    match with {
        With::Glibc => assert_eq!(name, "glibc", "{program} ({label}) was served by {engine}"),
        With::Ours(None) | With::OursInlineOff => {
            assert_ne!(name, "glibc", "{program} ({label}): LD_PRELOAD did not take effect");
            if name != "uring" {
                skip(
                    &format!("c_suite {program} on io_uring"),
                    &format!("this kernel refuses io_uring here; ran on {engine}"),
                );
            }
        }
        With::Ours(Some(e)) => {
            assert_eq!(name, e, "{program} ({label}) was served by {engine}")
        }
    }
    (ran.stdout, name)
}

/// Checks the deliberate differences of `program` on `engine` and removes those lines.
fn remove_deliberate(program: &str, engine: &str, glibc: &str, ours: &str) -> (String, String) {
    let mut reference: Vec<&str> = glibc.lines().collect();
    let mut mine: Vec<&str> = ours.lines().collect();
    for d in DELIBERATE.iter().filter(|d| d.program == program && d.engines.contains(&engine)) {
        let gi = reference.iter().position(|l| *l == d.glibc);
        let oi = mine.iter().position(|l| *l == d.ours);
        assert!(gi.is_some(), "{program}: expected glibc to print `{}` ({})", d.glibc, d.why);
        assert!(
            oi.is_some(),
            "{program} on {engine}: expected ours to print `{}` ({})",
            d.ours,
            d.why
        );
        reference.remove(gi.unwrap_or_default());
        mine.remove(oi.unwrap_or_default());
    }
    (reference.join("\n"), mine.join("\n"))
}

fn assert_same(program: &str, want_label: &str, want: &str, got_label: &str, got: &str) {
    if want == got {
        return;
    }
    let diff: Vec<String> = want
        .lines()
        .zip(got.lines().chain(std::iter::repeat("<missing>")))
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  {want_label}: {a}\n  {got_label}: {b}"))
        .take(10)
        .collect();
    panic!(
        "{program}: {got_label} differs from {want_label}:\n{}\n--- {want_label}\n{want}\n--- \
         {got_label}\n{got}",
        diff.join("\n")
    );
}

/// Runs `program` on glibc and on ours (default engine, and the `engines` forced).
fn check_program(program: &str, engines: &[&'static str]) {
    if !have("gcc") {
        return skip(&format!("c_suite {program}"), "gcc is not installed");
    }
    if system_header().is_none() {
        return skip(&format!("c_suite {program}"), "no /usr/include/aio.h (libc6-dev)");
    }
    let dir = test_dir(&format!("build-{program}"));
    let built = build(program, dir.path());
    let (reference, _) = run_program(program, &built.system, With::Glibc);
    assert!(reference.lines().count() > 3, "{program}: a transcript of nothing:\n{reference}");

    let (ours, engine) = run_program(program, &built.system, With::Ours(None));
    let (want, got) = remove_deliberate(program, &engine, &reference, &ours);
    assert_same(program, "glibc", &want, &format!("ours ({engine})"), &got);

    let (ours_header, _) = run_program(program, &built.ours, With::Ours(None));
    // Every request through the asynchronous engine, none served at submission: the same
    // answers.
    let (no_inline, engine_off) = run_program(program, &built.system, With::OursInlineOff);
    let (want, got) = remove_deliberate(program, &engine_off, &reference, &no_inline);
    assert_same(program, "glibc", &want, &format!("ours ({engine_off}, AIO_INLINE=0)"), &got);
    assert_same(program, "system header", &ours, "our header", &ours_header);

    for &e in engines {
        let (forced, _) = run_program(program, &built.system, With::Ours(Some(e)));
        let (want, got) = remove_deliberate(program, e, &reference, &forced);
        assert_same(program, "glibc", &want, &format!("ours (AIO_ENGINE={e})"), &got);
    }
}

macro_rules! programs {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let name = stringify!($name);
                let engines: &[&'static str] =
                    if ENGINE_PROGRAMS.contains(&name) { &["kernel", "pool"] } else { &[] };
                check_program(name, engines);
            }
        )*

        #[test]
        fn every_program_is_run() {
            let listed = [$(stringify!($name)),*];
            let dir = manifest_dir().join("tests/c");
            let mut found = 0;
            for entry in std::fs::read_dir(&dir).expect("read tests/c") {
                let path = entry.expect("a directory entry").path();
                if path.extension().is_some_and(|e| e == "c") {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                    assert!(listed.contains(&stem), "tests/c/{stem}.c is not in c_suite.rs");
                    found += 1;
                }
            }
            assert_eq!(found, listed.len(), "a program listed in c_suite.rs is missing");
            for p in ENGINE_PROGRAMS {
                assert!(listed.contains(p), "ENGINE_PROGRAMS lists {p}, which is not a program");
            }
            for d in DELIBERATE {
                assert!(listed.contains(&d.program), "DELIBERATE lists {}", d.program);
            }
        }
    };
}

programs!(
    layout, readwrite, errors, fsync, suspend, cancel, notify, listio, fork, threads, overlap,
    limits, init, largefile, sigsafe, eintr, cancelsig, sockets, exhaust, bigsize, bounded,
    polling,
);
