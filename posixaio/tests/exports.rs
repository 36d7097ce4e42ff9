//! What the library and its header look like from outside: the library exports exactly the
//! POSIX AIO functions (each also in glibc, so the preload replaces them) and its SONAME; the
//! header declares glibc's prototypes, compiles cleanly as C and C++, and with
//! `_FILE_OFFSET_BITS=64` sends calls to the `*64` names, as the system header does. (The
//! structure layouts are compared with the system header's by `layout.c` in the C suite.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// The functions of `<aio.h>`, each exported by glibc 2.34+ at GLIBC_2.34.
const AIO_FUNCTIONS: &[&str] = &[
    "aio_cancel",
    "aio_cancel64",
    "aio_error",
    "aio_error64",
    "aio_fsync",
    "aio_fsync64",
    "aio_init",
    "aio_read",
    "aio_read64",
    "aio_return",
    "aio_return64",
    "aio_suspend",
    "aio_suspend64",
    "aio_write",
    "aio_write64",
    "lio_listio",
    "lio_listio64",
];

/// Our one extension: which engine serves the requests.
const EXTENSIONS: &[&str] = &["posixaio_engine"];

/// The defined dynamic function symbols of `lib` (`objdump -T`), with their versions.
fn exported(lib: &Path) -> Vec<(String, String)> {
    let ran = run(Command::new("objdump").arg("-T").arg(lib), Duration::from_secs(60));
    assert!(ran.status.success(), "objdump -T {}: {}", lib.display(), ran.stderr);
    let mut symbols = Vec::new();
    for line in ran.stdout.lines() {
        // 0000000000047a10 g    DF .text	000000000000002d  Base        aio_read
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 || !line.starts_with(|c: char| c.is_ascii_hexdigit()) {
            continue;
        }
        if line.contains("*UND*") || line.contains("*ABS*") || !line.contains(" DF ") {
            continue;
        }
        let name = fields[fields.len() - 1].to_string();
        let version = fields[fields.len() - 2].trim_matches(|c| c == '(' || c == ')').to_string();
        symbols.push((name, version));
    }
    symbols
}

#[test]
fn exports_exactly_the_aio_functions() {
    if !have("objdump") {
        return skip("exports_exactly_the_aio_functions", "objdump is missing");
    }
    let ours: BTreeSet<String> = exported(&ours().library).into_iter().map(|(n, _)| n).collect();
    let want: BTreeSet<String> =
        AIO_FUNCTIONS.iter().chain(EXTENSIONS).map(|s| s.to_string()).collect();
    assert_eq!(ours, want, "our exported functions (nothing else may be exported)");

    // Each is a glibc function (so a preload takes its place), and glibc's is a real one.
    let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists());
    let Some(libc) = libc else {
        return skip("exports_exactly_the_aio_functions (glibc)", "no libc.so.6 found");
    };
    let glibc = exported(libc);
    for f in AIO_FUNCTIONS {
        let versions: Vec<&str> =
            glibc.iter().filter(|(n, _)| n == f).map(|(_, v)| v.as_str()).collect();
        assert!(!versions.is_empty(), "{f} is not in {}", libc.display());
        note(&format!("glibc {f}: {}", versions.join(" ")));
    }
}

#[test]
fn soname_is_libposixaio() {
    if !have("readelf") {
        return skip("soname_is_libposixaio", "readelf is missing");
    }
    let ran = run(Command::new("readelf").arg("-d").arg(&ours().library), Duration::from_secs(30));
    assert!(ran.status.success(), "readelf -d: {}", ran.stderr);
    assert!(ran.stdout.contains("Library soname: [libposixaio.so]"), "{}", ran.stdout);
}

/// A C file that assigns every function to a pointer of the type glibc's header declares:
/// a prototype that differs fails to compile (incompatible pointer types, with -Werror).
const PROTOTYPES: &str = r#"
#define _GNU_SOURCE
#include <aio.h>
#include <sys/types.h>
int (*p_read)(struct aiocb *) = aio_read;
int (*p_write)(struct aiocb *) = aio_write;
int (*p_fsync)(int, struct aiocb *) = aio_fsync;
int (*p_error)(const struct aiocb *) = aio_error;
ssize_t (*p_return)(struct aiocb *) = aio_return;
int (*p_suspend)(const struct aiocb *const[], int, const struct timespec *) = aio_suspend;
int (*p_cancel)(int, struct aiocb *) = aio_cancel;
int (*p_listio)(int, struct aiocb *const[], int, struct sigevent *) = lio_listio;
void (*p_init)(const struct aioinit *) = aio_init;
int (*p_read64)(struct aiocb64 *) = aio_read64;
int (*p_write64)(struct aiocb64 *) = aio_write64;
int (*p_fsync64)(int, struct aiocb64 *) = aio_fsync64;
int (*p_error64)(const struct aiocb64 *) = aio_error64;
ssize_t (*p_return64)(struct aiocb64 *) = aio_return64;
int (*p_suspend64)(const struct aiocb64 *const[], int, const struct timespec *) = aio_suspend64;
int (*p_cancel64)(int, struct aiocb64 *) = aio_cancel64;
int (*p_listio64)(int, struct aiocb64 *const[], int, struct sigevent *) = lio_listio64;
int main(void)
{
	struct aiocb cb;
	struct sigevent *ev = &cb.aio_sigevent;
	ev->sigev_notify = SIGEV_THREAD_ID;
	ev->_sigev_un._tid = 1;
	return AIO_CANCELED + AIO_NOTCANCELED + AIO_ALLDONE + LIO_READ + LIO_WRITE + LIO_NOP +
	       LIO_WAIT + LIO_NOWAIT + SIGEV_NONE + SIGEV_SIGNAL + SIGEV_THREAD;
}
"#;

fn compile(
    dir: &Path,
    name: &str,
    source: &str,
    compiler: &str,
    args: &[&str],
) -> Result<(), String> {
    let src = dir.join(name);
    std::fs::write(&src, source).expect("write the C source");
    let ran = run(
        Command::new(compiler).args(args).arg("-c").arg(&src).arg("-o").arg(dir.join("out.o")),
        Duration::from_secs(60),
    );
    if ran.status.success() {
        Ok(())
    } else {
        Err(format!("{compiler} {args:?} {name}:\n{}{}", ran.stdout, ran.stderr))
    }
}

#[test]
fn header_declares_glibc_prototypes() {
    if !have("gcc") {
        return skip("header_declares_glibc_prototypes", "gcc is not installed");
    }
    let dir = test_dir("prototypes");
    let ours = format!("-I{}", our_include().display());
    // Ours, and the system's as the check of the check.
    compile(dir.path(), "p.c", PROTOTYPES, "gcc", &["-Wall", "-Wextra", "-Werror", &ours])
        .unwrap_or_else(|e| panic!("{e}"));
    if system_header().is_some() {
        compile(dir.path(), "p.c", PROTOTYPES, "gcc", &["-Wall", "-Wextra", "-Werror"])
            .unwrap_or_else(|e| panic!("the system header: {e}"));
    }
}

#[test]
fn header_compiles_cleanly_as_c_and_cpp() {
    if !have("gcc") {
        return skip("header_compiles_cleanly_as_c_and_cpp", "gcc is not installed");
    }
    let dir = test_dir("header");
    let ours = format!("-I{}", our_include().display());
    let use_it = "#include <aio.h>\nint main(void) { struct aiocb cb; (void)cb; \
                  return (int)sizeof(struct aiocb) - 168; }\n";
    // (g++ defines _GNU_SOURCE itself.)
    let gnu = format!("#ifndef _GNU_SOURCE\n#define _GNU_SOURCE\n#endif\n{use_it}");
    let large = format!("#define _FILE_OFFSET_BITS 64\n{gnu}");
    let mut failures = Vec::new();
    for (std, pedantic) in
        [("c99", true), ("c11", true), ("c17", true), ("gnu89", false), ("gnu11", true)]
    {
        for (name, src) in [("plain.c", use_it), ("gnu.c", gnu.as_str()), ("large.c", &large)] {
            let mut args = vec!["-Wall", "-Wextra", "-Werror", ours.as_str()];
            let flag = format!("-std={std}");
            args.push(&flag);
            if pedantic {
                args.push("-pedantic");
            }
            if let Err(e) = compile(dir.path(), name, src, "gcc", &args) {
                failures.push(e);
            }
        }
    }
    if have("g++") {
        for std in ["c++11", "c++17"] {
            let flag = format!("-std={std}");
            for (name, src) in [("plain.cc", use_it), ("gnu.cc", gnu.as_str())] {
                let args = ["-Wall", "-Wextra", "-Werror", "-pedantic", ours.as_str(), &flag];
                if let Err(e) = compile(dir.path(), name, src, "g++", &args) {
                    failures.push(e);
                }
            }
        }
    } else {
        skip("header_compiles_cleanly_as_c_and_cpp (C++)", "g++ is not installed");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The undefined `aio`/`lio` symbols of an object built from `source` with `args`.
fn referenced(dir: &Path, source: &str, args: &[&str]) -> BTreeSet<String> {
    compile(dir, "refs.c", source, "gcc", args).unwrap_or_else(|e| panic!("{e}"));
    let ran = run(Command::new("nm").arg("-u").arg(dir.join("out.o")), Duration::from_secs(30));
    assert!(ran.status.success(), "nm: {}", ran.stderr);
    ran.stdout
        .split_whitespace()
        .filter(|s| s.starts_with("aio_") || s.starts_with("lio_"))
        .map(String::from)
        .collect()
}

#[test]
fn large_file_offsets_use_the_64_names() {
    if !have("gcc") || !have("nm") {
        return skip("large_file_offsets_use_the_64_names", "gcc or nm is missing");
    }
    let dir = test_dir("redirect");
    let source = "#include <aio.h>\n#include <stddef.h>\nint main(void) {\n\
                  struct aiocb cb; const struct aiocb *l[1] = {&cb}; struct aiocb *m[1] = {&cb};\n\
                  aio_read(&cb); aio_write(&cb); aio_fsync(0, &cb); aio_error(&cb);\n\
                  aio_return(&cb); aio_suspend(l, 1, NULL); aio_cancel(0, &cb);\n\
                  lio_listio(0, m, 1, NULL); return 0; }\n";
    let ours = format!("-I{}", our_include().display());
    let want64: BTreeSet<String> =
        AIO_FUNCTIONS.iter().filter(|f| f.ends_with("64")).map(|s| s.to_string()).collect();
    let plain: BTreeSet<String> = AIO_FUNCTIONS
        .iter()
        .filter(|f| !f.ends_with("64") && **f != "aio_init")
        .map(|s| s.to_string())
        .collect();
    let o64 = ["-D_FILE_OFFSET_BITS=64", "-O0", ours.as_str()];
    assert_eq!(referenced(dir.path(), source, &o64), want64, "ours with _FILE_OFFSET_BITS=64");
    assert_eq!(referenced(dir.path(), source, &["-O0", &ours]), plain, "ours");
    if system_header().is_some() {
        let sys64 = referenced(dir.path(), source, &["-D_FILE_OFFSET_BITS=64", "-O0"]);
        assert_eq!(sys64, want64, "the system header with _FILE_OFFSET_BITS=64");
    }
}
