//! The C examples of the README and of `docs/*.md` are whole programs that build and run: each
//! ```` ```c ```` block is written to a file, compiled with gcc (`-Wall -Wextra -Werror`) against
//! our headers (`libaio/include`, `posixaio/include`) and linked against our `libaio.so.1`, then
//! run in a fresh directory with our library on `LD_LIBRARY_PATH`. Programs that include
//! `<aio.h>` also run with our `libposixaio.so` preloaded, when cargo built it for this run
//! (`cargo test --workspace`); otherwise that run is skipped, and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A C block: where it is (file and line of its opening fence), and its code.
struct Snippet {
    place: String,
    code: String,
}

fn workspace() -> PathBuf {
    manifest_dir().parent().expect("the workspace directory").to_path_buf()
}

/// Every ```` ```c ```` block of README.md and docs/*.md.
fn snippets() -> Vec<Snippet> {
    let ws = workspace();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(ws.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("an entry of docs/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    let mut found = Vec::new();
    for file in std::iter::once(ws.join("README.md")).chain(docs) {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let name = file.strip_prefix(&ws).unwrap_or(&file).display().to_string();
        let mut open: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let fence = line.trim_end();
            if let Some((start, code)) = open.as_mut() {
                if fence == "```" {
                    found.push(Snippet {
                        place: format!("{name}:{start}"),
                        code: std::mem::take(code),
                    });
                    open = None;
                } else {
                    code.push_str(line);
                    code.push('\n');
                }
            } else if fence == "```c" {
                open = Some((i + 1, String::new()));
            }
        }
        assert!(open.is_none(), "{name}: a ```c block is never closed");
    }
    found
}

/// Our libposixaio.so, if cargo built it for this run (next to this test, as it builds ours).
fn posixaio_library() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the deps directory");
    [deps.join("libposixaio.so"), deps.join("../libposixaio.so")].into_iter().find(|p| p.exists())
}

fn compile(snippet: &Snippet, src: &Path, exe: &Path) {
    std::fs::write(src, &snippet.code).expect("write the example");
    let mut cmd = Command::new("gcc");
    cmd.arg(format!("-I{}", manifest_dir().join("include").display()))
        .arg(format!("-I{}", workspace().join("posixaio/include").display()))
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(src)
        .arg("-o")
        .arg(exe)
        .arg(format!("-L{}", ours().lib_dir.display()))
        .args(["-laio", "-lrt"]);
    let ran = run(&mut cmd, Duration::from_secs(120));
    assert!(
        ran.status.success(),
        "the C example at {} does not compile:\n{}{}",
        snippet.place,
        ran.stdout,
        ran.stderr
    );
}

fn run_in_fresh_dir(snippet: &Snippet, exe: &Path, label: &str, preload: Option<&Path>) {
    let dir = test_dir("doc-snippet-run");
    let mut cmd = Command::new(exe);
    cmd.current_dir(dir.path()).env("LD_LIBRARY_PATH", &ours().lib_dir);
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let ran = run(&mut cmd, RUN_LIMIT);
    assert!(
        ran.status.success(),
        "the C example at {} failed {label} ({}):\n{}{}",
        snippet.place,
        ran.status,
        ran.stdout,
        ran.stderr
    );
}

#[test]
fn c_examples_compile_and_run() {
    let found = snippets();
    // docs/libaio.md and docs/posix.md have one each; finding none would mean the parser broke.
    assert!(found.len() >= 2, "expected the C examples of docs/, found {}", found.len());
    let dir = test_dir("doc-snippets");
    let posixaio = posixaio_library();
    for (i, snippet) in found.iter().enumerate() {
        let src = dir.path().join(format!("example{i}.c"));
        let exe = dir.path().join(format!("example{i}"));
        compile(snippet, &src, &exe);
        run_in_fresh_dir(snippet, &exe, "with our libaio.so.1", None);
        if snippet.code.contains("<aio.h>") {
            match &posixaio {
                Some(lib) => run_in_fresh_dir(snippet, &exe, "on our libposixaio.so", Some(lib)),
                None => skip(
                    &format!("doc_snippets {} on libposixaio.so", snippet.place),
                    "cargo did not build libposixaio.so for this run (run the workspace's tests)",
                ),
            }
        }
    }
}
