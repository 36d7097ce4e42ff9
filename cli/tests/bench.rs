//! `aio bench`, run as a program on real files: every engine, the report's fields, the default
//! run, and the failures (bad options, unusable engines, tmpfs with O_DIRECT, a full disk).

mod common;

use common::{
    aio, aio_env, aio_on_terminal, aio_ulimit, fs_type, mount_tmpfs, names, skip, test_dir,
};
use serde_json::Value;

const ENGINES: [&str; 6] = ["uring", "kernel", "pool", "posix", "file", "sync"];

/// Checks one engine's entry of a JSON report: it ran, did I/O, and its figures make sense.
fn check_engine(e: &Value, name: &str) {
    assert_eq!(e["engine"], name);
    assert_eq!(e["status"], "ok", "{name} did not run: {e}");
    let iops = e["iops"].as_f64().expect("iops");
    assert!(iops > 0.0, "{name}: iops {iops}");
    assert!(e["ios"].as_u64().unwrap() > 0);
    assert!(e["mib_s"].as_f64().unwrap() > 0.0);
    assert!(e["seconds"].as_f64().unwrap() > 0.0);
    let lat = &e["lat_ns"];
    let v =
        |k: &str| lat[k].as_u64().unwrap_or_else(|| panic!("{name}: lat_ns.{k} missing: {lat}"));
    let (min, p50, p99, p999, max) = (v("min"), v("p50"), v("p99"), v("p99_9"), v("max"));
    assert!(min > 0, "{name}: min latency {min}");
    assert!(
        min <= p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{name}: percentiles out of order: {lat}"
    );
    let mean = lat["mean"].as_f64().unwrap();
    assert!(mean >= min as f64 && mean <= max as f64, "{name}: mean {mean} outside min..max");
    let cpu = &e["cpu"];
    for k in ["user_s", "sys_s", "user_pct", "sys_pct"] {
        let x = cpu[k].as_f64().unwrap_or_else(|| panic!("{name}: cpu.{k} missing: {cpu}"));
        assert!(x >= 0.0, "{name}: cpu.{k} = {x}");
    }
    assert!(
        cpu["user_s"].as_f64().unwrap() + cpu["sys_s"].as_f64().unwrap() > 0.0,
        "{name}: no CPU time at all: {cpu}"
    );
}

#[test]
fn every_engine_alone_on_an_o_direct_file() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    for engine in ENGINES {
        let run = aio(
            dir.path(),
            &[
                "bench",
                "--dir",
                d,
                "--size",
                "8M",
                "--runtime",
                "0.3",
                "--rw",
                "randread",
                "--iodepth",
                "8",
                "--direct",
                "--engine",
                engine,
                "--output-format=json",
            ],
        );
        run.expect_code(0, engine);
        let report = run.json();
        let job = &report["jobs"][0];
        assert_eq!(job["rw"], "randread");
        assert_eq!(job["bs"], 4096);
        assert_eq!(job["iodepth"], 8);
        assert_eq!(job["direct"], true);
        let engines = job["engines"].as_array().unwrap();
        assert_eq!(engines.len(), 1, "{engine}: {engines:?}");
        check_engine(&engines[0], engine);
        assert_eq!(job["rounds"], 1);
        // Reads only.
        assert_eq!(engines[0]["write_ios"], 0);
        // The temporary file is gone.
        assert_eq!(names(dir.path()), Vec::<String>::new(), "{engine} left files behind");
    }
}

#[test]
fn all_engines_side_by_side_in_a_table() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let run = aio(
        dir.path(),
        &[
            "bench",
            "--dir",
            d,
            "--size",
            "8M",
            "--runtime",
            "0.6",
            "--rw",
            "randread",
            "--iodepth",
            "16",
            "--direct",
        ],
    );
    run.expect_code(0, "bench --engine all (table)");
    let out = &run.stdout;
    let header = out.lines().find(|l| l.starts_with("engine")).expect("a table header");
    for col in
        ["IOPS", "MiB/s", "lat mean", "p50", "p99", "p99.9", "max", "usr%", "sys%", "vs sync"]
    {
        assert!(header.contains(col), "header lacks {col}: {header}");
    }
    for engine in ENGINES {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(engine))
            .unwrap_or_else(|| panic!("no row for {engine}:\n{out}"));
        let iops: f64 = row.split_whitespace().nth(1).unwrap().parse().expect("IOPS is a number");
        assert!(iops > 0.0, "{row}");
        assert!(row.trim_end().ends_with('x'), "no ratio to sync: {row}");
    }
    assert!(out.contains("O_DIRECT 4 KiB random reads, QD 16, 1 job"), "{out}");
    assert!(out.contains("in 3 round(s)"), "{out}");
    assert!(out.contains("figures move"), "no noise note:\n{out}");
    // Not a terminal: no progress line, no escape sequences.
    assert!(!out.contains('\r') && !out.contains('\x1b'), "progress output on a pipe:\n{out:?}");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn mixed_reads_and_writes_with_two_jobs_and_an_io_amount() {
    let dir = test_dir();
    let file = dir.path().join("data.bin");
    let f = file.to_str().unwrap();
    let run = aio(
        dir.path(),
        &[
            "bench",
            "--filename",
            f,
            "--size",
            "4M",
            "--rw",
            "randrw",
            "--rwmixread",
            "70",
            "--bs",
            "8k",
            "--iodepth",
            "4",
            "--numjobs",
            "2",
            "--io-size",
            "2M",
            "--engine",
            "uring,pool,sync",
            "--rounds",
            "2",
            "--output-format=json",
        ],
    );
    run.expect_code(0, "randrw with --io-size");
    let report = run.json();
    let job = &report["jobs"][0];
    assert_eq!(job["numjobs"], 2);
    assert_eq!(job["rwmixread"], 70);
    assert_eq!(job["io_size"], 2 << 20);
    assert_eq!(job["rounds"], 2);
    for e in job["engines"].as_array().unwrap() {
        let name = e["engine"].as_str().unwrap();
        check_engine(e, name);
        // 2 threads x 2 MiB of 8 KiB requests, split in 2 rounds of 128 each.
        assert_eq!(e["ios"], 2 * 256, "{name}: {e}");
        let reads = e["read_ios"].as_u64().unwrap();
        let writes = e["write_ios"].as_u64().unwrap();
        assert!(
            reads > writes && writes > 0,
            "{name}: {reads} reads, {writes} writes for 70% reads"
        );
        assert_eq!(e["read_bytes"].as_u64().unwrap(), reads * 8192);
    }
    // --filename was made and is kept, filled with data, not zeros.
    let data = std::fs::read(&file).expect("the file is kept");
    assert_eq!(data.len(), 4 << 20);
    assert!(
        data.iter().filter(|&&b| b == 0).count() < data.len() / 100,
        "file is not filled with data"
    );
    assert_eq!(report["file"]["temporary"], false);
}

#[test]
fn sequential_writes_buffered_and_direct() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    for direct in ["--direct=0", "--direct=1"] {
        let run = aio(
            dir.path(),
            &[
                "bench",
                "--dir",
                d,
                "--size",
                "4M",
                "--rw",
                "write",
                "--bs",
                "64k",
                "--iodepth",
                "4",
                direct,
                "--runtime",
                "0.2",
                "--engine",
                "uring,kernel,posix,sync",
                "--output-format=json",
            ],
        );
        run.expect_code(0, direct);
        for e in run.json()["jobs"][0]["engines"].as_array().unwrap() {
            let name = e["engine"].as_str().unwrap();
            check_engine(e, name);
            assert_eq!(e["read_ios"], 0);
            assert!(e["write_bytes"].as_u64().unwrap() >= 65536);
        }
    }
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn the_default_run_shortened() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    // The default jobs, with a smaller file and less time per engine.
    let run = aio(dir.path(), &["bench", "--dir", d, "--size", "8M", "--runtime", "0.45"]);
    run.expect_code(0, "default run");
    let out = &run.stdout;
    assert!(out.contains("O_DIRECT 4 KiB random reads, QD 32, 1 job"), "{out}");
    assert!(out.contains("page-cache-hot 4 KiB random reads, QD 1, 1 job"), "{out}");
    // The summary: both jobs side by side, ratio to sync.
    let summary = out
        .lines()
        .find(|l| l.starts_with("engine") && l.contains("IOPS (vs sync)"))
        .unwrap_or_else(|| panic!("no summary table:\n{out}"));
    assert!(
        summary.contains("O_DIRECT 4KiB randread QD 32")
            && summary.contains("cached 4KiB randread QD 1"),
        "{summary}"
    );
    let uring = out.lines().rfind(|l| l.starts_with("uring")).expect("a uring summary row");
    assert_eq!(uring.matches("x)").count(), 2, "{uring}");
    // Kernel AIO runs both, and says that on the cached file io_submit does the read itself.
    let kernel = out.lines().rfind(|l| l.starts_with("kernel")).expect("a kernel summary row");
    assert_eq!(kernel.matches("x)").count(), 2, "{kernel}");
    assert!(out.contains("io_submit does the I/O itself before returning"), "{out}");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "the default run's file was not removed");

    let run = aio(
        dir.path(),
        &["bench", "--dir", d, "--size", "8M", "--runtime", "0.3", "--output-format", "json"],
    );
    run.expect_code(0, "default run, json");
    let report = run.json();
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["name"], "direct-randread-qd32");
    assert_eq!(jobs[1]["name"], "cached-randread-qd1");
    assert_eq!(jobs[0]["iodepth"], 32);
    assert_eq!(jobs[1]["direct"], false);
    for (i, job) in jobs.iter().enumerate() {
        for e in job["engines"].as_array().unwrap() {
            let name = e["engine"].as_str().unwrap();
            let _ = i;
            check_engine(e, name);
            assert!(e["vs_sync"].as_f64().unwrap() > 0.0);
        }
    }
    assert_eq!(report["file"]["temporary"], true);
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn bad_options_exit_2_with_a_message() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 14] = [
        (&["--rw", "sideways"], "invalid value 'sideways'"),
        (&["--bs", "0"], "--bs must be"),
        (&["--bs", "4x"], "is not a size"),
        (&["--iodepth", "0"], "--iodepth"),
        (&["--rwmixread", "150", "--rw", "randrw"], "--rwmixread"),
        (&["--rwmixread", "30", "--rw", "randread"], "--rwmixread applies to --rw randrw only"),
        (&["--engine", "warp"], "unknown engine \"warp\""),
        (&["--runtime", "soon"], "is not a duration"),
        (&["--output-format", "xml"], "invalid value 'xml'"),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (&["--random_distribution", "zipf:0"], "the zipf exponent must be above 0"),
        (&["--random_distribution", "zipf"], "zipf needs its exponent"),
        (&["--random_distribution", "pareto:0.5"], "random or zipf:THETA"),
        (
            &["--random_distribution", "zipf:1.2", "--rw", "read"],
            "--random_distribution zipf:1.2 applies to random patterns",
        ),
    ];
    for (args, msg) in cases {
        let mut all = vec!["bench", "--dir", d];
        all.extend_from_slice(args);
        aio(dir.path(), &all).expect_code(2, &format!("{args:?}")).expect_stderr(msg);
    }
    let run = aio(dir.path(), &["bench", "--dir", d, "--size", "1k", "--bs", "4k"]);
    run.expect_code(2, "size < bs").expect_stderr("smaller than --bs");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn unusable_engines_are_refused_or_skipped_with_the_reason() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let base = ["bench", "--dir", d, "--size", "4M", "--runtime", "0.2", "--rw", "randread"];

    // Kernel AIO on a buffered file runs as libaio does (io_submit reads synchronously), and
    // the report says so rather than measuring the pool in its place.
    let mut args = base.to_vec();
    args.extend(["--engine", "kernel"]);
    aio(dir.path(), &args)
        .expect_code(0, "kernel, buffered")
        .expect_stdout("io_submit does the I/O itself");

    // io_uring unavailable (pretended): refused when asked for by name...
    let mut args = base.to_vec();
    args.extend(["--direct", "--engine", "uring"]);
    aio_env(dir.path(), &args, &[("AIO_PRETEND_NO_URING", "disabled for this test")])
        .expect_code(1, "uring, unavailable")
        .expect_stderr(
            "engine uring cannot run this job: io_uring is unavailable: disabled for this test",
        );

    // ...skipped with the reason among all engines, the others run.
    let mut args = base.to_vec();
    args.extend(["--direct", "--output-format=json"]);
    let run = aio_env(dir.path(), &args, &[("AIO_PRETEND_NO_URING", "disabled for this test")]);
    run.expect_code(0, "all, uring unavailable");
    let report = run.json();
    for e in report["jobs"][0]["engines"].as_array().unwrap() {
        let name = e["engine"].as_str().unwrap();
        if name == "uring" {
            assert_eq!(e["status"], "skipped");
            assert!(e["reason"].as_str().unwrap().contains("disabled for this test"), "{e}");
        } else {
            check_engine(e, name);
        }
    }

    // Misaligned O_DIRECT blocks.
    let mut args = base.to_vec();
    args.extend(["--direct", "--bs", "1000", "--engine", "sync"]);
    aio(dir.path(), &args)
        .expect_code(2, "bs 1000 direct")
        .expect_stderr("not a multiple of the O_DIRECT alignment");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn tmpfs_with_direct_is_refused_clearly() {
    let shm = std::path::Path::new("/dev/shm");
    if fs_type(shm) != "tmpfs" {
        skip("tmpfs_with_direct_is_refused_clearly", "/dev/shm is not a tmpfs here");
        return;
    }
    let dir =
        tempfile::Builder::new().prefix("aio-cli-").tempdir_in(shm).expect("a dir in /dev/shm");
    let d = dir.path().to_str().unwrap();
    // The default run from a tmpfs directory (its O_DIRECT job).
    aio(dir.path(), &["bench", "--size", "4M", "--runtime", "0.2"])
        .expect_code(1, "default run on tmpfs")
        .expect_stderr("is on tmpfs, a filesystem in memory")
        .expect_stderr("--dir");
    // A custom --direct job with --dir on tmpfs.
    aio(dir.path(), &["bench", "--dir", d, "--size", "4M", "--direct", "--runtime", "0.2"])
        .expect_code(1, "--direct on tmpfs")
        .expect_stderr("--direct needs a filesystem on a disk");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "files left on tmpfs");
    // Buffered I/O there is fine.
    aio(
        dir.path(),
        &[
            "bench",
            "--dir",
            d,
            "--size",
            "4M",
            "--rw",
            "randread",
            "--runtime",
            "0.2",
            "--engine",
            "sync,pool",
        ],
    )
    .expect_code(0, "buffered on tmpfs");
}

#[test]
fn a_full_disk_fails_cleanly() {
    let dir = test_dir();
    let mnt = dir.path().join("small");
    let mount = match mount_tmpfs(&mnt, "1m") {
        Ok(m) => m,
        Err(why) => {
            skip("a_full_disk_fails_cleanly", &why);
            return;
        }
    };
    let d = mount.dir.to_str().unwrap();
    aio(
        dir.path(),
        &[
            "bench",
            "--dir",
            d,
            "--size",
            "8M",
            "--rw",
            "randread",
            "--engine",
            "sync",
            "--runtime",
            "0.2",
        ],
    )
    .expect_code(1, "bench on a full disk")
    .expect_stderr("cannot create")
    .expect_stderr("No space left on device");
    assert_eq!(names(&mount.dir), Vec::<String>::new(), "a partial file was left behind");
    // Writes past the space there is: the write fails, the message says so.
    let file = mount.dir.join("w.bin");
    let f = file.to_str().unwrap();
    std::fs::write(&file, vec![1u8; 512 << 10]).unwrap();
    let run = aio(
        dir.path(),
        &[
            "bench",
            "--filename",
            f,
            "--size",
            "4M",
            "--rw",
            "write",
            "--bs",
            "64k",
            "--engine",
            "uring",
            "--runtime",
            "0.5",
        ],
    );
    run.expect_code(1, "extend on a full disk").expect_stderr("No space left on device");
}

#[test]
fn a_progress_line_on_a_terminal_only() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let args = [
        "bench",
        "--dir",
        d,
        "--size",
        "4M",
        "--rw",
        "randread",
        "--engine",
        "sync,uring",
        "--runtime",
        "0.6",
    ];
    match aio_on_terminal(dir.path(), &args) {
        Err(why) => skip("a_progress_line_on_a_terminal_only", &why),
        Ok((code, out)) => {
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("IOPS"), "{out:?}");
            assert!(out.contains('\x1b'), "no progress line drawn on a terminal: {out:?}");
        }
    }
    // The same run on a pipe: nothing but the report.
    let run = aio(dir.path(), &args);
    run.expect_code(0, "bench on a pipe");
    assert!(!run.stdout.contains('\x1b') && !run.stdout.contains('\r'), "{:?}", run.stdout);
}

#[test]
fn an_interrupted_run_removes_its_file() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aio"))
        .args([
            "bench",
            "--dir",
            d,
            "--size",
            "8M",
            "--rw",
            "randread",
            "--engine",
            "sync",
            "--runtime",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aio bench");
    // Wait until its file is there (and laid out), then interrupt it as Ctrl-C would.
    let start = Instant::now();
    let file = dir.path().join(format!("aio-bench-{}.dat", child.id()));
    while std::fs::metadata(&file).map(|m| m.len() < 8 << 20).unwrap_or(true) {
        assert!(start.elapsed() < Duration::from_secs(20), "the benchmark file never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill with a valid pid of our own child and a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = child.wait().expect("wait for aio bench");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(20), "SIGINT did not stop the run");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "the interrupted run left its file");
}

#[test]
fn buffers_that_cannot_be_allocated_are_an_error_and_the_file_is_removed() {
    let dir = test_dir();
    // Under a 2 GiB address-space limit 4096 buffers of 1 MiB (4 GiB) cannot be had: each
    // engine must say so and remove the file it made, not abort on the allocator.
    for (engine, jobs) in [("uring", "1"), ("kernel", "1"), ("pool", "2"), ("posix", "1")] {
        let args = [
            "bench",
            "--bs",
            "1M",
            "--iodepth",
            "4096",
            "--numjobs",
            jobs,
            "--size",
            "8M",
            "--runtime",
            "1",
            "--engine",
            engine,
        ];
        let run = aio_ulimit(dir.path(), 2 << 20, &args);
        let what = format!("{engine} with 2 GiB of address space");
        if engine == "kernel" && run.stderr.contains("engine kernel cannot run this job") {
            skip("buffers_that_cannot_be_allocated (kernel)", run.stderr.trim());
            continue;
        }
        run.expect_code(1, &what);
        let buffers = if jobs == "1" { "(4096 x 1 MiB)" } else { "(2 jobs x 4096 x 1 MiB)" };
        run.expect_stderr("aio bench: cannot allocate ");
        run.expect_stderr(&format!(" of I/O buffers {buffers} for "));
        run.expect_stderr("aio-bench-");
        assert!(
            run.stderr.contains(": out of memory")
                || run.stderr.contains("more than this machine's memory"),
            "{what}: no cause in {:?}",
            run.stderr
        );
        assert_eq!(names(dir.path()), Vec::<String>::new(), "{what}: the data file was left");
    }
}

#[test]
fn buffers_larger_than_the_machine_are_refused_before_the_file_is_made() {
    let dir = test_dir();
    // 65536 x 1 GiB: 64 TiB, more than any machine has; refused at once, with no file made.
    let run = aio(
        dir.path(),
        &["bench", "--bs", "1G", "--iodepth", "65536", "--size", "1G", "--engine", "sync"],
    );
    run.expect_code(1, "64 TiB of buffers")
        .expect_stderr("aio bench: cannot allocate 64 TiB of I/O buffers (65536 x 1 GiB) for ")
        .expect_stderr("aio-bench-")
        .expect_stderr("more than this machine's memory");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "a file was made");
}

#[test]
fn plot_draws_every_engine_in_a_valid_svg() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    let svg_path = dir.path().join("run.svg");
    let svg_arg = svg_path.to_str().unwrap();
    let run = aio(
        dir.path(),
        &[
            "bench",
            "--dir",
            d,
            "--rw",
            "randread",
            "--size",
            "8M",
            "--runtime",
            "0.6",
            "--engine",
            "uring,pool,posix,sync",
            "--plot",
            svg_arg,
            "--output-format",
            "json",
        ],
    );
    run.expect_code(0, "bench --plot");
    // stdout is still one JSON document.
    let report = run.json();
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG was written");
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<String> = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    let job = &report["jobs"][0];
    assert!(texts.iter().any(|t| t.contains(job["title"].as_str().unwrap())), "{texts:?}");
    assert!(texts.iter().any(|t| t == "IOPS (ratio to sync)"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "99%"), "no percentile axis: {texts:?}");
    for e in job["engines"].as_array().unwrap() {
        let name = e["engine"].as_str().unwrap();
        // Named in the legend and under its bar.
        let named = texts.iter().filter(|t| t.as_str() == name).count();
        assert!(named >= 2, "{name} named {named} times: {texts:?}");
        // Its bar's labels: the IOPS and the ratio to sync.
        let iops = format!("{:.0}", e["iops"].as_f64().unwrap());
        let ratio = format!("{:.2}x", e["vs_sync"].as_f64().unwrap());
        for label in [iops, ratio] {
            assert!(texts.contains(&label), "no bar label {label:?} for {name}: {texts:?}");
        }
    }
    // One latency curve per engine.
    let curves = root.descendants().filter(|n| n.has_tag_name("polyline")).count();
    assert!(curves >= 4, "{curves} polylines");
    // A place it cannot write is refused before the run.
    let bad = dir.path().join("nodir/run.svg");
    aio(dir.path(), &["bench", "--dir", d, "--size", "8M", "--plot", bad.to_str().unwrap()])
        .expect_code(1, "--plot in a missing directory")
        .expect_stderr("aio bench: cannot write ")
        .expect_stderr("is not a directory");
    assert_eq!(names(dir.path()), vec!["run.svg".to_string()]);
}

#[test]
fn zipf_on_every_engine_with_a_fixed_seed() {
    let dir = test_dir();
    let file = dir.path().join("zipf.bin");
    let f = file.to_str().unwrap();
    let run = aio(
        dir.path(),
        &[
            "bench",
            "--filename",
            f,
            "--size",
            "8M",
            "--rw",
            "randread",
            "--random_distribution",
            "zipf:1.2",
            "--randseed",
            "7",
            "--iodepth",
            "4",
            "--numjobs",
            "2",
            "--io-size",
            "1M",
            "--output-format=json",
        ],
    );
    run.expect_code(0, "zipf, all engines");
    let report = run.json();
    let job = &report["jobs"][0];
    assert_eq!(job["random_distribution"], "zipf:1.2");
    assert_eq!(job["name"], "randread-bs4096-qd4-x2-zipf1.2");
    assert!(job["title"].as_str().unwrap().contains("(zipf:1.2)"), "{job}");
    for e in job["engines"].as_array().unwrap() {
        let name = e["engine"].as_str().unwrap();
        check_engine(e, name);
        // 2 threads x 1 MiB of 4 KiB reads, in 3 rounds of 85 each.
        assert_eq!(e["ios"], 2 * 3 * 85, "{name}: {e}");
    }
    // A buffered job: the engines with an inline path say what it served.
    let engines = job["engines"].as_array().unwrap();
    for name in ["uring", "posix", "file"] {
        let e = engines.iter().find(|e| e["engine"] == name).unwrap();
        let inline = &e["inline"];
        let asked: u64 = ["served", "missed", "skipped", "ineligible"]
            .iter()
            .map(|k| inline[k].as_u64().unwrap_or_else(|| panic!("{name}: inline.{k}: {e}")))
            .sum();
        assert_eq!(asked, 2 * 3 * 85, "{name}: {inline}");
    }
    assert!(engines.iter().find(|e| e["engine"] == "sync").unwrap()["inline"].is_null());
}

#[test]
fn the_file_engine_reads_and_writes_through_aio_file() {
    let dir = test_dir();
    let d = dir.path().to_str().unwrap();
    for direct in ["--direct=0", "--direct=1"] {
        let run = aio(
            dir.path(),
            &[
                "bench",
                "--dir",
                d,
                "--size",
                "4M",
                "--rw",
                "randrw",
                "--iodepth",
                "8",
                direct,
                "--io-size",
                "1M",
                "--engine",
                "file",
                "--output-format=json",
            ],
        );
        run.expect_code(0, direct);
        let report = run.json();
        let e = &report["jobs"][0]["engines"][0];
        check_engine(e, "file");
        assert_eq!(e["ios"], 256, "{e}");
        assert!(e["read_ios"].as_u64().unwrap() > 0 && e["write_ios"].as_u64().unwrap() > 0);
        assert!(e["detail"].as_str().unwrap().contains("aio::File"), "{e}");
        if direct == "--direct=1" {
            // O_DIRECT is never served inline.
            assert_eq!(e["inline"]["served"], 0, "{e}");
        }
    }
    assert_eq!(names(dir.path()), Vec::<String>::new());
}
