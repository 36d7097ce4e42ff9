//! `aio info`, run as a program: the kernel, io_uring and kernel AIO lines, and for a path its
//! filesystem, O_DIRECT support, alignment and the engine chosen.

mod common;

use common::{aio, aio_env, fs_type, skip, test_dir};

/// The value of the line starting with `label:`.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"))
}

#[test]
fn a_directory_on_a_real_filesystem() {
    let dir = test_dir();
    let run = aio(dir.path(), &["info"]);
    run.expect_code(0, "info");
    let out = &run.stdout;
    assert!(field(out, "kernel").starts_with("Linux "), "{out}");
    let uring = field(out, "io_uring");
    if uring.starts_with("available") {
        let ops = field(out, "opcodes supported");
        assert!(ops.contains("read") && ops.contains("write") && ops.contains("fsync"), "{ops}");
        assert!(field(out, "features").contains("ext_arg"));
    } else {
        assert!(uring.starts_with("unavailable: "), "{uring}");
        skip("a_directory_on_a_real_filesystem (opcodes)", uring);
    }
    let kaio = field(out, "kernel AIO");
    assert!(
        kaio.contains("/proc/sys/fs/aio-nr ") && kaio.contains("/proc/sys/fs/aio-max-nr "),
        "{kaio}"
    );
    assert!(field(out, "path").contains("(directory)"));
    let fs = field(out, "filesystem");
    assert!(fs.contains("statfs magic 0x"), "{fs}");
    let requests = field(out, "device requests");
    if requests.starts_with("up to ") {
        assert!(requests.contains(" segments ("), "{requests}");
        assert!(out.contains("huge pages"), "{out}");
    } else {
        assert!(requests.starts_with("- (not a block device"), "{requests}");
        skip("a_directory_on_a_real_filesystem (device requests)", requests);
    }
    let direct = field(out, "O_DIRECT");
    if direct.starts_with("works") {
        assert!(direct.contains("wrote and read back"), "{direct}");
        let align = field(out, "O_DIRECT alignment");
        assert!(align.contains("memory ") && align.contains("offset and length"), "{align}");
        let engine = field(out, "engine, O_DIRECT");
        assert!(["uring", "kernel"].iter().any(|e| engine.starts_with(e)), "{engine}");
    } else {
        skip("a_directory_on_a_real_filesystem (O_DIRECT)", direct);
    }
    let buffered = field(out, "engine, buffered");
    assert!(["uring", "pool"].iter().any(|e| buffered.starts_with(e)), "{buffered}");
    field(out, "engine, POSIX AIO");
    // The probe file is gone.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn a_file_and_a_missing_path() {
    let dir = test_dir();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 8192]).unwrap();
    let run = aio(dir.path(), &["info", "f.bin"]);
    run.expect_code(0, "info FILE");
    assert!(field(&run.stdout, "path").contains("(file, 8 KiB)"), "{}", run.stdout);
    let direct = field(&run.stdout, "O_DIRECT");
    assert!(direct.starts_with("works (read ") || direct.starts_with("does not work"), "{direct}");
    aio(dir.path(), &["info", "nowhere"])
        .expect_code(1, "missing path")
        .expect_stderr("aio info: cannot open nowhere: No such file or directory");
    aio(dir.path(), &["info", "a", "b"]).expect_code(2, "two paths");
}

#[test]
fn without_io_uring_the_fallback_and_its_reason_are_shown() {
    let dir = test_dir();
    let run =
        aio_env(dir.path(), &["info"], &[("AIO_PRETEND_NO_URING", "switched off for the test")]);
    run.expect_code(0, "info without io_uring");
    let out = &run.stdout;
    assert_eq!(
        field(out, "io_uring"),
        "unavailable: switched off for the test (AIO_PRETEND_NO_URING)"
    );
    let buffered = field(out, "engine, buffered");
    assert!(buffered.starts_with("pool; not uring: switched off for the test"), "{buffered}");
    assert!(buffered.contains("not kernel: the file is not open with O_DIRECT"), "{buffered}");
    if field(out, "O_DIRECT").starts_with("works") {
        let direct = field(out, "engine, O_DIRECT");
        assert!(direct.starts_with("kernel; not uring: switched off"), "{direct}");
    }
}

#[test]
fn tmpfs_is_named_as_memory() {
    let shm = std::path::Path::new("/dev/shm");
    if fs_type(shm) != "tmpfs" {
        skip("tmpfs_is_named_as_memory", "/dev/shm is not a tmpfs here");
        return;
    }
    let run = aio(shm, &["info", "/dev/shm"]);
    run.expect_code(0, "info /dev/shm");
    let fs = field(&run.stdout, "filesystem");
    assert!(fs.starts_with("tmpfs") && fs.contains("in memory"), "{fs}");
}

#[test]
fn json_has_the_facts_of_the_text_report() {
    let dir = test_dir();
    std::fs::write(dir.path().join("f.bin"), vec![1u8; 12288]).unwrap();
    for (args, env) in [
        (&["info"][..], &[][..]),
        (&["info", "f.bin"][..], &[][..]),
        (
            &["info"][..],
            &[("AIO_PRETEND_NO_URING", "off for the test"), ("AIO_ENGINE", "pool")][..],
        ),
    ] {
        let text = aio_env(dir.path(), args, env);
        text.expect_code(0, "text");
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let run = aio_env(dir.path(), &json_args, env);
        run.expect_code(0, "--json");
        let j = run.json();
        let out = &text.stdout;
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_else(|| panic!("{v}")).to_string();
        assert_eq!(s(&j["kernel"]), field(out, "kernel"));
        let uring = &j["io_uring"];
        if uring["available"].as_bool().unwrap() {
            assert!(field(out, "io_uring").starts_with("available"));
            let ops = uring["opcodes_supported"].as_array().unwrap();
            assert!(field(out, "opcodes supported").starts_with(&format!("{} of ", ops.len())));
            assert!(ops.iter().any(|o| o == "read"), "{ops:?}");
        } else {
            let why = s(&uring["unavailable"]);
            assert_eq!(field(out, "io_uring"), format!("unavailable: {why}"));
        }
        let k = &j["kernel_aio"];
        assert!(k["aio_max_nr"]["value"].as_u64().unwrap() > 0, "{k}");
        assert!(field(out, "kernel AIO")
            .contains(&format!("/proc/sys/fs/aio-max-nr {}", k["aio_max_nr"]["value"])));
        let p = &j["path"];
        assert_eq!(format!("{} ({}", s(&p["path"]), s(&p["kind"])), {
            let f = field(out, "path");
            f[..f.find([',', ')']).unwrap()].to_string()
        });
        let fs = &p["filesystem"];
        assert!(field(out, "filesystem").starts_with(&s(&fs["name"])), "{fs}");
        assert!(field(out, "filesystem").contains(&format!("{:#x}", fs["magic"].as_u64().unwrap())));
        let direct = field(out, "O_DIRECT");
        match s(&p["o_direct"]["status"]).as_str() {
            "works" => {
                assert_eq!(direct, format!("works ({})", s(&p["o_direct"]["detail"])));
                let a = &p["alignment"];
                assert!(field(out, "O_DIRECT alignment").starts_with(&format!(
                    "memory {} bytes, offset and length {} bytes",
                    a["memory"], a["offset"]
                )));
                assert_eq!(field(out, "engine, O_DIRECT"), s(&p["engine_direct"]["text"]));
            }
            other => skip("json_has_the_facts_of_the_text_report (O_DIRECT)", other),
        }
        for (label, key) in
            [("engine, buffered", "engine_buffered"), ("engine, POSIX AIO", "engine_posix")]
        {
            assert_eq!(field(out, label), s(&p[key]["text"]), "{label}");
        }
        let buffered = &p["engine_buffered"];
        if env.is_empty() {
            assert!(j["aio_engine"].is_null());
        } else {
            assert_eq!(j["aio_engine"], "pool");
            assert_eq!(buffered["engine"], "pool");
            assert_eq!(buffered["forced"], true);
        }
    }
    aio(dir.path(), &["info", "--json", "nowhere"])
        .expect_code(1, "missing path")
        .expect_stderr("aio info: cannot open nowhere: No such file or directory");
}
