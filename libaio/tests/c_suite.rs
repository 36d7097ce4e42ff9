//! The C suite: each program in tests/c/ is built and run three ways, and the transcripts must
//! be identical:
//!
//! - (a) our header, linked against the system's libaio.so.1 by path (the reference: needs
//!   only the libaio1 package, not libaio-dev);
//! - (b) our header, linked against our libaio.so.1, run with `LD_LIBRARY_PATH` at it;
//! - (c) the system header (/usr/include/libaio.h, from libaio-dev), linked against ours.
//!
//! (a) against (b) shows our library answers as the C libaio does; (a) against (c) shows a
//! program compiled against the system header runs unchanged on ours (and `layout.c` under (c)
//! prints the system header's layout, so it checks our header's against it). Each run is
//! checked to have loaded the library it should (`LD_TRACE_LOADED_OBJECTS`, what `ldd` uses).
//!
//! Where the transcripts differ on purpose, [`DELIBERATE`] says why: the C libaio dereferences
//! some caller pointers itself and crashes on bad ones, where ours checks them and answers; and
//! with the io_getevents system call blocked (`userspace.c`), ours still takes completions that
//! are already in the ring.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Lines that differ on purpose: (program, case, the system libaio's answer, ours, why). The
/// lines are `<case> = <answer>`.
const DELIBERATE: &[(&str, &str, &str, &str, &str)] = &[
    // The C libaio dereferences these pointers itself and crashes; ours checks them.
    ("badargs", "init_null", CRASH, "-EFAULT", "libaio's io_queue_init writes *ctxp unchecked"),
    ("badargs", "init_bad", CRASH, "-EFAULT", "libaio's io_queue_init writes *ctxp unchecked"),
    ("badargs", "getevents_bad_timeout", CRASH, "-EFAULT", "libaio reads *timeout unchecked"),
    ("badargs", "pgetevents_bad_timeout", CRASH, "-EFAULT", "libaio reads *timeout unchecked"),
    ("badargs", "getevents_bad_ctx_zero", CRASH, "-EINVAL", "libaio reads the ring at ctx"),
    ("badargs", "getevents_bad_ctx", CRASH, "-EINVAL", "libaio reads the ring at ctx"),
    ("badargs", "queue_wait_bad_timeout", CRASH, "-EFAULT", "libaio reads *timeout unchecked"),
    ("badargs", "queue_run_bad_ctx", CRASH, "-EINVAL", "libaio reads the ring at ctx"),
    (
        "badargs",
        "queue_run_no_callback",
        CRASH,
        "-EFAULT",
        "libaio calls the null callback of an event whose data is NULL",
    ),
    ("badargs", "getevents_0_1_bad_timeout", CRASH, "-EFAULT", "libaio copies *timeout unchecked"),
    ("badargs", "queue_wait_0_1_bad_timeout", CRASH, "-EFAULT", "libaio copies *timeout unchecked"),
    ("badargs", "getevents_kernel_timeout", CRASH, "-EFAULT", "libaio reads *timeout unchecked"),
    (
        "badargs",
        "queue_run_after_release",
        CRASH,
        "-EINVAL",
        "libaio reads the unmapped ring of a destroyed context",
    ),
    (
        "badargs",
        "getevents_after_destroy",
        CRASH,
        "-EINVAL",
        "libaio reads the unmapped ring of a destroyed context",
    ),
    // With io_getevents blocked by seccomp: ours takes ready completions from the ring.
    ("userspace", "ready_events", "-ENOSYS", "2", USER_SPACE),
    ("userspace", "ready_events_zero_timeout", "-ENOSYS", "2", USER_SPACE),
    ("userspace", "ready_events_pgetevents_without_mask", "-ENOSYS", "2", USER_SPACE),
    ("userspace", "queue_run", "-ENOSYS", "0", USER_SPACE),
    ("userspace", "callbacks_run", "0", "2", USER_SPACE),
];

const CRASH: &str = "CRASH(SIGSEGV)";
const USER_SPACE: &str = "ours takes completions already in the ring without a system call";

const FLAGS: &[&str] = &["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-ldl"];
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One way of building and running a program.
struct Variant {
    label: &'static str,
    exe: PathBuf,
    /// `LD_LIBRARY_PATH` for the run (`None`: unset).
    lib_path: Option<PathBuf>,
    /// The libaio.so.1 the run must load.
    expect: PathBuf,
}

fn build_variants(program: &str, dir: &Path) -> Vec<Variant> {
    let src = manifest_dir().join("tests/c").join(format!("{program}.c"));
    let ours = ours();
    let mut variants = Vec::new();
    match system_lib() {
        Some(sys) => {
            let exe = dir.join(format!("{program}.a"));
            gcc(&src, &exe, Some(&our_include()), &Link::Path(sys.clone()), FLAGS);
            let expect = std::fs::canonicalize(&sys).expect("canonical system libaio path");
            variants.push(Variant {
                label: "(a) our header, system libaio",
                exe,
                lib_path: None,
                expect,
            });
        }
        None => skip(
            &format!("c_suite {program} (a)"),
            "no system libaio.so.1 to compare with (install libaio1): our results are only \
             checked for running cleanly",
        ),
    }
    let exe = dir.join(format!("{program}.b"));
    gcc(&src, &exe, Some(&our_include()), &Link::Dir(ours.lib_dir.clone()), FLAGS);
    let expect = std::fs::canonicalize(&ours.library).expect("canonical staged path");
    variants.push(Variant {
        label: "(b) our header, our libaio",
        exe,
        lib_path: Some(ours.lib_dir.clone()),
        expect: expect.clone(),
    });
    if system_header().is_some() {
        let exe = dir.join(format!("{program}.c"));
        gcc(&src, &exe, None, &Link::Dir(ours.lib_dir.clone()), FLAGS);
        variants.push(Variant {
            label: "(c) system header, our libaio",
            exe,
            lib_path: Some(ours.lib_dir.clone()),
            expect,
        });
    } else {
        skip(
            &format!("c_suite {program} (c)"),
            "no /usr/include/libaio.h (libaio-dev; scripts/install-test-deps.sh installs it)",
        );
    }
    variants
}

fn run_variant(program: &str, v: &Variant, data: &Path) -> String {
    let loaded = loaded_libaio(&v.exe, v.lib_path.as_deref());
    assert_eq!(loaded.as_deref(), Some(v.expect.as_path()), "{program} {}: wrong libaio", v.label);
    let mut cmd = Command::new(&v.exe);
    cmd.arg(data).env_remove("LD_PRELOAD");
    match &v.lib_path {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let ran = run(&mut cmd, RUN_LIMIT);
    assert!(
        ran.status.success() && !ran.stdout.contains("FATAL"),
        "{program} {} failed ({}):\n{}{}",
        v.label,
        ran.status,
        ran.stdout,
        ran.stderr
    );
    ran.stdout
}

/// Checks the deliberate differences of `program` and removes those lines from both.
fn remove_deliberate(program: &str, reference: &str, ours: &str) -> (String, String) {
    let mut reference: Vec<&str> = reference.lines().collect();
    let mut ours: Vec<&str> = ours.lines().collect();
    for &(_, case, theirs, answer, why) in DELIBERATE.iter().filter(|d| d.0 == program) {
        let sys_line = format!("{case} = {theirs}");
        let our_line = format!("{case} = {answer}");
        let si = reference.iter().position(|l| *l == sys_line);
        let oi = ours.iter().position(|l| *l == our_line);
        assert!(si.is_some(), "{program}: expected the system libaio's {sys_line} ({why})");
        assert!(oi.is_some(), "{program}: expected ours to answer {our_line} ({why})");
        reference.remove(si.unwrap_or_default());
        ours.remove(oi.unwrap_or_default());
    }
    (reference.join("\n"), ours.join("\n"))
}

fn check_program(program: &str) {
    if !have("gcc") {
        return skip(&format!("c_suite {program}"), "gcc is not installed");
    }
    let build = test_dir(&format!("build-{program}"));
    let variants = build_variants(program, build.path());
    let mut transcripts = Vec::new();
    for v in &variants {
        let data = test_dir(&format!("data-{program}"));
        transcripts.push((v.label, run_variant(program, v, data.path())));
    }
    for (label, t) in &transcripts {
        if let Some(line) = t.lines().find(|l| l.starts_with("SKIP")) {
            skip(&format!("c_suite {program} {label}"), line.strip_prefix("SKIP ").unwrap_or(line));
        }
    }
    let (ref_label, reference) = &transcripts[0];
    assert!(reference.lines().count() > 3, "{program}: a transcript of nothing:\n{reference}");
    for (label, t) in &transcripts[1..] {
        let (want, got) = if ref_label.starts_with("(a)") {
            remove_deliberate(program, reference, t)
        } else {
            (reference.clone(), t.clone())
        };
        if want != got {
            let diff: Vec<String> = want
                .lines()
                .zip(got.lines().chain(std::iter::repeat("<missing>")))
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("  {ref_label}: {a}\n  {label}: {b}"))
                .take(10)
                .collect();
            panic!(
                "{program}: {label} differs from {ref_label}:\n{}\n--- {ref_label}\n{want}\n--- \
                 {label}\n{got}",
                diff.join("\n")
            );
        }
    }
}

macro_rules! programs {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_program(stringify!($name));
            }
        )*

        #[test]
        fn every_program_is_run() {
            let listed = [$(stringify!($name)),*];
            let dir = manifest_dir().join("tests/c");
            for entry in std::fs::read_dir(&dir).expect("read tests/c") {
                let path = entry.expect("a directory entry").path();
                if path.extension().is_some_and(|e| e == "c") {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                    assert!(listed.contains(&stem), "tests/c/{stem}.c is not in c_suite.rs");
                }
            }
        }
    };
}

programs!(
    layout, setup, submit, getevents, cancel, eventfd, rwflags, direct, queue, compat, badargs,
    userspace,
);
