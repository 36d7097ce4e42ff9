//! `aio cp`, run as a program on real files: sizes, holes, permissions, --verify, --direct,
//! and the failures (missing SRC, SRC = DST, directories, no space left) leaving no partial DST.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{
    aio, aio_on_terminal, aio_ulimit, mount_ext4, mount_loop, mount_tmpfs, names, pattern, skip,
    test_dir,
};

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies `data` with `extra` options and checks the copy: same bytes, same mode, no
/// temporary file left.
fn roundtrip(dir: &Path, data: &[u8], mode: u32, extra: &[&str]) {
    let src = dir.join("src.bin");
    let dst = dir.join("dst.bin");
    let _ = fs::remove_file(&dst);
    write_file(&src, data, mode);
    let mut args = vec!["cp", src.to_str().unwrap(), dst.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = aio(dir, &args);
    run.expect_code(0, &format!("cp of {} bytes {extra:?}", data.len()));
    run.expect_stdout(&format!("({} bytes", data.len()));
    let copy = fs::read(&dst).unwrap();
    assert_eq!(copy.len(), data.len(), "{extra:?}");
    assert!(copy == data, "{} bytes {extra:?}: contents differ", data.len());
    assert_eq!(fs::metadata(&dst).unwrap().permissions().mode() & 0o7777, mode, "{extra:?}");
    if extra.contains(&"--verify") {
        run.expect_stdout("have the same checksum");
    }
    let left: Vec<String> = names(dir).into_iter().filter(|n| n.contains("aio-cp")).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn sizes_buffered_and_direct() {
    let dir = test_dir();
    let sizes = [0usize, 1, 4095, 4097, (5 << 20) + 123];
    for (i, &len) in sizes.iter().enumerate() {
        let data = pattern(len, i as u64 + 1);
        roundtrip(dir.path(), &data, 0o640, &["--verify"]);
        roundtrip(dir.path(), &data, 0o755, &["--direct", "--verify"]);
        roundtrip(dir.path(), &data, 0o600, &["--iodepth", "3", "--bs", "4k"]);
        roundtrip(dir.path(), &data, 0o644, &["--direct=1", "--iodepth", "1", "--bs", "8k"]);
    }
}

#[test]
fn sparse_files_keep_their_holes() {
    let dir = test_dir();
    let src = dir.path().join("sparse.bin");
    let f = fs::File::create(&src).unwrap();
    let total: u64 = 64 << 20;
    f.set_len(total).unwrap();
    use std::os::unix::fs::FileExt;
    let pieces: [(u64, usize); 4] =
        [(0, 4096), (8 << 20, 65536 + 17), (40 << 20, 1 << 20), (total - 100, 100)];
    for (i, (off, len)) in pieces.iter().enumerate() {
        f.write_all_at(&pattern(*len, i as u64 + 10), *off).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let src_blocks = fs::metadata(&src).unwrap().blocks();
    if src_blocks * 512 >= total / 2 {
        skip(
            "sparse_files_keep_their_holes",
            &format!("this filesystem did not keep the source sparse ({src_blocks} blocks)"),
        );
        return;
    }
    let expected = fs::read(&src).unwrap();
    for extra in [&[][..], &["--direct"][..], &["--bs", "64k", "--iodepth", "2"][..]] {
        let dst = dir.path().join("copy.bin");
        let _ = fs::remove_file(&dst);
        let mut args = vec!["cp", src.to_str().unwrap(), dst.to_str().unwrap(), "--verify"];
        args.extend_from_slice(extra);
        let run = aio(dir.path(), &args);
        run.expect_code(0, &format!("sparse {extra:?}"));
        run.expect_stdout("in 4 data range(s)");
        let md = fs::metadata(&dst).unwrap();
        assert_eq!(md.len(), total);
        // The copy allocates what the source does (give or take a block per range).
        assert!(
            md.blocks() <= src_blocks + 4 * 8,
            "{extra:?}: copy has {} blocks, source {src_blocks}",
            md.blocks()
        );
        assert!(fs::read(&dst).unwrap() == expected, "{extra:?}: contents differ");
    }
    // A file that is all hole.
    let hole = dir.path().join("hole.bin");
    fs::File::create(&hole).unwrap().set_len(10 << 20).unwrap();
    let dst = dir.path().join("hole-copy.bin");
    aio(dir.path(), &["cp", hole.to_str().unwrap(), dst.to_str().unwrap()])
        .expect_code(0, "all hole")
        .expect_stdout("in 0 data range(s)");
    let md = fs::metadata(&dst).unwrap();
    assert_eq!(md.len(), 10 << 20);
    assert_eq!(md.blocks(), 0);
}

#[test]
fn replaces_an_existing_dst_and_copies_into_a_directory() {
    let dir = test_dir();
    let src = dir.path().join("a.bin");
    let data = pattern(300_000, 3);
    write_file(&src, &data, 0o644);
    let dst = dir.path().join("b.bin");
    write_file(&dst, b"old contents that are longer than nothing", 0o600);
    aio(dir.path(), &["cp", "a.bin", "b.bin"]).expect_code(0, "replace");
    assert!(fs::read(&dst).unwrap() == data);
    assert_eq!(fs::metadata(&dst).unwrap().permissions().mode() & 0o777, 0o644);
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    aio(dir.path(), &["cp", "a.bin", "sub"]).expect_code(0, "into a directory");
    assert!(fs::read(sub.join("a.bin")).unwrap() == data);
    assert_eq!(names(&sub), vec!["a.bin".to_string()]);
}

#[test]
fn errors_name_the_path_and_leave_nothing_behind() {
    let dir = test_dir();
    let d = dir.path();
    write_file(&d.join("f.bin"), &pattern(10_000, 4), 0o644);
    fs::create_dir(d.join("adir")).unwrap();
    let before = names(d);

    aio(d, &["cp", "missing.bin", "x.bin"])
        .expect_code(1, "missing SRC")
        .expect_stderr("aio cp: cannot open missing.bin: No such file or directory");
    aio(d, &["cp", "f.bin", "f.bin"])
        .expect_code(1, "SRC = DST")
        .expect_stderr("are the same file");
    aio(d, &["cp", "f.bin", "./f.bin"])
        .expect_code(1, "SRC = DST by another name")
        .expect_stderr("are the same file");
    fs::hard_link(d.join("f.bin"), d.join("link.bin")).unwrap();
    aio(d, &["cp", "f.bin", "link.bin"])
        .expect_code(1, "hard link")
        .expect_stderr("are the same file");
    fs::remove_file(d.join("link.bin")).unwrap();
    aio(d, &["cp", "adir", "y.bin"])
        .expect_code(1, "SRC a directory")
        .expect_stderr("adir is a directory");
    fs::create_dir(d.join("adir/f.bin")).unwrap();
    aio(d, &["cp", "f.bin", "adir"])
        .expect_code(1, "DST/NAME a directory")
        .expect_stderr("cannot overwrite directory");
    fs::remove_dir(d.join("adir/f.bin")).unwrap();
    aio(d, &["cp", "f.bin", "nodir/x.bin"])
        .expect_code(1, "DST in a missing directory")
        .expect_stderr("cannot open directory nodir: No such file or directory");
    assert_eq!(names(d), before, "an error left something behind");
    assert!(names(&d.join("adir")).is_empty());

    // Usage errors.
    aio(d, &["cp", "f.bin"]).expect_code(2, "no DST").expect_stderr("required");
    aio(d, &["cp", "f.bin", "g.bin", "--bs", "0"]).expect_code(2, "bs 0").expect_stderr("--bs");
    aio(d, &["cp", "f.bin", "g.bin", "--iodepth", "0"])
        .expect_code(2, "iodepth 0")
        .expect_stderr("--iodepth");
    aio(d, &["cp", "f.bin", "g.bin", "--direct", "--bs", "1000"])
        .expect_code(2, "misaligned bs")
        .expect_stderr("not a multiple of the O_DIRECT alignment");
    assert_eq!(names(d), before);
}

#[test]
fn no_space_left_leaves_no_partial_dst() {
    let dir = test_dir();
    let src = dir.path().join("big.bin");
    write_file(&src, &pattern(3 << 20, 5), 0o644);
    let s = src.to_str().unwrap();

    // Buffered, on a 1 MiB tmpfs.
    match mount_tmpfs(&dir.path().join("tiny"), "1m") {
        Err(why) => skip("no_space_left_leaves_no_partial_dst (tmpfs)", &why),
        Ok(m) => {
            let dst = m.dir.join("copy.bin");
            aio(dir.path(), &["cp", s, dst.to_str().unwrap()])
                .expect_code(1, "ENOSPC buffered")
                .expect_stderr("No space left on device");
            assert_eq!(names(&m.dir), Vec::<String>::new(), "partial copy left on tmpfs");
        }
    }

    // O_DIRECT, on a small loop-mounted ext4.
    match mount_ext4(&dir.path().join("ext4.img"), &dir.path().join("ext4"), 4) {
        Err(why) => skip("no_space_left_leaves_no_partial_dst (ext4 --direct)", &why),
        Ok(m) => {
            let dst = m.dir.join("copy.bin");
            // Keep an old DST: it must stay as it was.
            fs::write(&dst, b"previous").unwrap();
            aio(dir.path(), &["cp", s, dst.to_str().unwrap(), "--direct"])
                .expect_code(1, "ENOSPC direct")
                .expect_stderr("No space left on device");
            let left: Vec<String> =
                names(&m.dir).into_iter().filter(|n| n != "lost+found").collect();
            assert_eq!(left, vec!["copy.bin".to_string()], "partial copy left on ext4");
            assert_eq!(fs::read(&dst).unwrap(), b"previous");
        }
    }
}

#[test]
fn no_space_left_while_writing_leaves_no_partial_dst() {
    // ext2 has no fallocate: the space runs out in the middle of the writes, not before them.
    let dir = test_dir();
    let src = dir.path().join("big.bin");
    write_file(&src, &pattern(6 << 20, 6), 0o644);
    let m = match mount_loop("mkfs.ext2", &dir.path().join("ext2.img"), &dir.path().join("ext2"), 4)
    {
        Ok(m) => m,
        Err(why) => {
            skip("no_space_left_while_writing_leaves_no_partial_dst", &why);
            return;
        }
    };
    for extra in [&[][..], &["--direct"][..]] {
        let dst = m.dir.join("copy.bin");
        let mut args = vec!["cp", src.to_str().unwrap(), dst.to_str().unwrap()];
        args.extend_from_slice(extra);
        aio(dir.path(), &args)
            .expect_code(1, &format!("ENOSPC while writing {extra:?}"))
            .expect_stderr("cannot write ")
            .expect_stderr("No space left on device");
        let left: Vec<String> = names(&m.dir).into_iter().filter(|n| n != "lost+found").collect();
        assert!(left.is_empty(), "{extra:?}: partial copy left: {left:?}");
    }
}

#[test]
fn a_progress_bar_on_a_terminal_only() {
    let dir = test_dir();
    let src = dir.path().join("p.bin");
    write_file(&src, &pattern(8 << 20, 7), 0o644);
    // On a pipe (the other tests): one summary line, no control characters.
    let run = aio(dir.path(), &["cp", "p.bin", "q.bin", "--bs", "64k", "--iodepth", "2"]);
    run.expect_code(0, "cp on a pipe");
    assert_eq!(run.stdout.lines().count(), 1, "{:?}", run.stdout);
    assert!(!run.stdout.contains('\x1b') && !run.stdout.contains('\r'));
    match aio_on_terminal(dir.path(), &["cp", "p.bin", "r.bin", "--bs", "64k", "--iodepth", "2"]) {
        Err(why) => skip("a_progress_bar_on_a_terminal_only", &why),
        Ok((code, out)) => {
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("copied 8 MiB"), "{out:?}");
            // indicatif redraws and clears its bar with escape sequences.
            assert!(out.contains('\x1b'), "no progress bar drawn on a terminal: {out:?}");
            assert!(fs::read(dir.path().join("r.bin")).unwrap() == fs::read(&src).unwrap());
        }
    }
}

#[test]
fn buffers_that_cannot_be_allocated_are_an_error_and_leave_nothing_behind() {
    let dir = test_dir();
    let d = dir.path();
    write_file(&d.join("src.bin"), &pattern(3 << 20, 8), 0o644);
    write_file(&d.join("old.bin"), b"previous", 0o644);
    let before = names(d);
    // One 1 GiB buffer under a 768 MiB address-space limit.
    for extra in [&[][..], &["--direct"][..]] {
        for dst in ["new.bin", "old.bin"] {
            let mut args = vec!["cp", "--bs", "1G", "--iodepth", "2", "src.bin", dst];
            args.extend_from_slice(extra);
            aio_ulimit(d, 768 << 10, &args)
                .expect_code(1, &format!("cp to {dst} {extra:?} with 768 MiB of address space"))
                .expect_stderr(
                    "aio cp: cannot allocate 1 GiB of I/O buffers (1 x 1 GiB) for src.bin: out of \
                     memory",
                );
            assert_eq!(names(d), before, "{dst} {extra:?}: something was left behind");
            assert_eq!(fs::read(d.join("old.bin")).unwrap(), b"previous");
        }
    }
}

#[test]
fn buffers_larger_than_the_machine_are_refused_before_copying() {
    let dir = test_dir();
    let d = dir.path();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    // One data range per GiB of this machine's memory and two more, 1 GiB apart: as many
    // requests of 1 GiB, all in flight at --iodepth 4096.
    let n = (kib >> 20) + 2;
    let f = fs::File::create(d.join("sparse.bin")).unwrap();
    use std::os::unix::fs::FileExt;
    for i in 0..n {
        f.write_all_at(b"data", i << 30).unwrap();
    }
    drop(f);
    if fs::metadata(d.join("sparse.bin")).unwrap().blocks() > n * 2048 {
        skip("buffers_larger_than_the_machine_are_refused_before_copying", "no sparse files here");
        return;
    }
    let before = names(d);
    aio(d, &["cp", "--bs", "1G", "--iodepth", "4096", "sparse.bin", "copy.bin"])
        .expect_code(1, &format!("{n} GiB of buffers"))
        .expect_stderr(&format!(
            "aio cp: cannot allocate {n} GiB of I/O buffers ({n} x 1 GiB) for sparse.bin"
        ))
        .expect_stderr("more than this machine's memory");
    assert_eq!(names(d), before, "something was left behind");
}

/// The temporary files of copies to `name` in `dir`.
fn temps(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!(".{name}.aio-cp.");
    names(dir).into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

/// Starts a slow copy (`bs` requests one at a time) of `src` to `dst` in `dir` and waits until
/// its temporary file is there at full size: the child and the file's name.
fn start_slow_copy(
    dir: &Path,
    src: &str,
    dst: &str,
    size: u64,
    bs: &str,
) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let before = temps(dir, dst);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aio"))
        .args(["cp", "--bs", bs, "--iodepth", "1", src, dst])
        .current_dir(dir)
        .env_remove("AIO_ENGINE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aio cp");
    let start = Instant::now();
    loop {
        let new: Vec<String> =
            temps(dir, dst).into_iter().filter(|n| !before.contains(n)).collect();
        if let [name] = &new[..] {
            if fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == size) {
                assert!(name.contains(&format!(".aio-cp.{}.", child.id())), "{name}");
                return (child, name.clone());
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("aio cp ended ({status}) before its temporary file was seen");
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aio cp's temporary file did not appear within 30 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for `child` to end, for at most `secs` seconds.
fn wait_for(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aio cp did not end within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Leaves the temporary file of a copy of `src` to `dst` killed with SIGKILL: its name.
fn killed_copy(dir: &Path, src: &str, dst: &str, size: u64) -> String {
    let (mut child, name) = start_slow_copy(dir, src, dst, size, "4k");
    child.kill().expect("SIGKILL aio cp");
    let status = wait_for(&mut child, 30);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_eq!(fs::metadata(dir.join(&name)).unwrap().len(), size, "the stale file's size");
    // The kernel lets go of the file (and its lock) when the dead copy's io_uring is torn
    // down, which may end a little after the process.
    let f = fs::File::open(dir.join(&name)).unwrap();
    let start = std::time::Instant::now();
    while f.try_lock().is_err() {
        assert!(start.elapsed().as_secs() < 30, "the killed copy's lock was never released");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(f);
    name
}

const BIG: u64 = 64 << 20;

fn big_source(dir: &Path) -> Vec<u8> {
    let data = pattern(BIG as usize, 21);
    write_file(&dir.join("big.bin"), &data, 0o644);
    data
}

#[test]
fn the_next_copy_removes_what_a_killed_copy_left() {
    let dir = test_dir();
    let d = dir.path();
    let data = big_source(d);
    let stale = killed_copy(d, "big.bin", "copy.bin", BIG);
    assert!(!d.join("copy.bin").exists(), "a killed copy put DST in place");
    let run = aio(d, &["cp", "big.bin", "copy.bin"]);
    run.expect_code(0, "the copy after a killed one")
        .expect_stderr(&format!("aio cp: removed {stale}, "))
        .expect_stderr("left by a copy that no longer runs");
    assert_eq!(names(d), vec!["big.bin".to_string(), "copy.bin".to_string()]);
    assert!(fs::read(d.join("copy.bin")).unwrap() == data, "the copy differs");
}

#[test]
fn a_running_copys_temporary_file_is_never_removed() {
    let dir = test_dir();
    let d = dir.path();
    let data = big_source(d);
    write_file(&d.join("small.bin"), &pattern(100_000, 22), 0o644);
    // 512-byte requests: long enough for what follows to happen while it runs.
    let (mut child, running) = start_slow_copy(d, "big.bin", "copy.bin", BIG, "512");
    // Another copy to the same DST, and --clean, while it runs.
    aio(d, &["cp", "small.bin", "copy.bin"]).expect_code(0, "a second copy to DST");
    assert!(d.join(&running).exists(), "a second copy removed the running one's file");
    aio(d, &["cp", "--clean", "copy.bin"])
        .expect_code(0, "--clean while a copy runs")
        .expect_stdout(&format!("kept {running}: process {} is running", child.id()))
        .expect_stdout("0 stale temporary file(s) of copies to ");
    assert!(d.join(&running).exists(), "--clean removed the running copy's file");
    assert!(child.try_wait().unwrap().is_none(), "the slow copy ended early: the checks are void");
    let status = wait_for(&mut child, 300);
    let stderr = {
        use std::io::Read;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert!(status.success(), "the slow copy failed ({status}): {stderr}");
    assert!(fs::read(d.join("copy.bin")).unwrap() == data, "the slow copy's result differs");
    assert!(!d.join(&running).exists());
    // A file whose PID says its copy is gone, but whose lock is held (a copy seen from another
    // PID namespace): kept too.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let locked = format!(".copy.bin.aio-cp.{dead_pid}.abcdef");
    fs::write(d.join(&locked), b"partial").unwrap();
    let holder = fs::File::open(d.join(&locked)).unwrap();
    holder.try_lock().expect("lock the file");
    aio(d, &["cp", "--clean", "copy.bin"])
        .expect_code(0, "--clean with a locked file")
        .expect_stdout("another process holds its lock");
    assert!(d.join(&locked).exists(), "--clean removed a locked file");
    drop(holder);
    // Its lock is free now and its PID long gone: stale.
    aio(d, &["cp", "--clean", "copy.bin"])
        .expect_code(0, "--clean after")
        .expect_stdout(&format!("removed {locked} (process {dead_pid} no longer runs)"));
    assert_eq!(temps(d, "copy.bin"), Vec::<String>::new());
}

#[test]
fn clean_removes_stale_files_without_copying() {
    let dir = test_dir();
    let d = dir.path();
    big_source(d);
    let stale = killed_copy(d, "big.bin", "copy.bin", BIG);
    // An older version's name (no PID) and another DST's stale file.
    fs::write(d.join(".copy.bin.aio-cp.abcdef"), b"old").unwrap();
    let dead = std::process::Command::new("true").spawn().unwrap();
    let mut dead = dead;
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let other = format!(".other.bin.aio-cp.{dead_pid}.zzzzzz");
    fs::write(d.join(&other), b"partial").unwrap();

    let run = aio(d, &["cp", "--clean", "copy.bin"]);
    run.expect_code(0, "--clean DST")
        .expect_stdout(&format!("removed {stale} (process "))
        .expect_stdout("1 stale temporary file(s) of copies to ");
    assert!(!d.join(&stale).exists());
    assert!(!d.join("copy.bin").exists(), "--clean copied");
    assert!(d.join(&other).exists(), "--clean DST removed another DST's file");
    assert!(d.join(".copy.bin.aio-cp.abcdef").exists(), "an older name was removed");
    // A directory: every DST name in it.
    aio(d, &["cp", "--clean", "."])
        .expect_code(0, "--clean DIR")
        .expect_stdout(&format!("removed {other} (process {dead_pid} no longer runs)"));
    assert_eq!(names(d), vec![".copy.bin.aio-cp.abcdef".to_string(), "big.bin".to_string()]);
    // Usage.
    aio(d, &["cp", "--clean", "copy.bin", "x"]).expect_code(2, "--clean with SRC");
    aio(d, &["cp", "--clean"]).expect_code(2, "--clean without DST");
    aio(d, &["cp", "--clean", "nodir/copy.bin"])
        .expect_code(1, "--clean in a missing directory")
        .expect_stderr("aio cp: cannot read directory nodir: No such file or directory");
}
