//! O_DIRECT alignment discovery on a real file and on a block device (a loop device with
//! 4096-byte sectors, when this process may create one).

mod common;

use std::process::Command;

use aio::align::AlignSource;
use aio::kernel::{Context, Iocb};
use aio::{AlignedBuf, DioAlign, IoBuf};
use aio_testkit::note;
use common::*;

#[test]
fn a_file_on_disk_reports_its_alignment() {
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip("a_file_on_disk_reports_its_alignment", &reason),
    };
    assert!(align.memory.is_power_of_two() && align.offset.is_power_of_two());
    assert!(align.offset >= 512 && align.offset <= 4096, "{align}");
    if align.source != AlignSource::Statx {
        skip("a_file_on_disk_reports_its_alignment (statx)", "STATX_DIOALIGN not reported here");
    }
    // What it reports works: aligned to it, O_DIRECT I/O succeeds.
    let file = open_direct(&dir.path().join("f"));
    let ctx = Context::<AlignedBuf>::new(2).unwrap();
    let buf = AlignedBuf::from_slice(&pattern(align.offset, 1), align.memory);
    let req = Iocb::pwrite(&file, buf, align.offset as u64).check_alignment(align);
    ctx.submit(req).unwrap();
    assert_eq!(ctx.get_events(1, 1, None).unwrap()[0].result().unwrap(), align.offset);
}

/// Sets up a loop device over a file, with the given sector size; removes it on drop.
struct Loop(String);

impl Loop {
    fn new(backing: &std::path::Path, sector: u32) -> Result<Loop, String> {
        let out = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on", "--sector-size", &sector.to_string()])
            .arg(backing)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Loop(String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn a_block_device_reports_its_logical_block_size() {
    let dir = test_dir();
    let backing = dir.path().join("disk.img");
    std::fs::write(&backing, vec![0u8; 8 << 20]).unwrap();
    let dev = match Loop::new(&backing, 4096) {
        Ok(d) => d,
        Err(reason) => return skip("a_block_device_reports_its_logical_block_size", &reason),
    };
    let file = open_direct(std::path::Path::new(&dev.0));
    let align = DioAlign::of(&file).unwrap();
    assert_eq!(align.offset, 4096, "{align}");
    let fallback = DioAlign::of_device(&file).unwrap();
    assert_eq!(fallback.source, AlignSource::BlockDevice);
    assert_eq!((fallback.memory, fallback.offset), (4096, 4096));

    // A 512-byte-aligned offset is refused by this device, and the check says so up front.
    let ctx = Context::<AlignedBuf>::new(2).unwrap();
    let err = ctx
        .submit(Iocb::pread(&file, AlignedBuf::new(4096, 4096), 512).check_alignment(align))
        .unwrap_err();
    assert!(err.error().to_string().contains("file offset 512"), "{}", err.error());
    ctx.submit(Iocb::pread(&file, AlignedBuf::new(4096, 4096), 512)).unwrap();
    let c = ctx.get_events(1, 1, None).unwrap().pop().unwrap();
    assert_eq!(c.result().unwrap_err().raw_os_error(), Some(libc::EINVAL));
    // Aligned, kernel AIO on the block device works.
    ctx.submit(Iocb::pread(&file, AlignedBuf::new(8192, 4096), 4096)).unwrap();
    assert_eq!(ctx.get_events(1, 1, None).unwrap()[0].result().unwrap(), 8192);
}

/// The `AnonHugePages` of the mapping of this process that holds `addr`, in KiB.
fn huge_kib_at(addr: usize) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(rest) = line.strip_prefix("AnonHugePages:") {
                return rest.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

#[test]
fn huge_buffers_are_aligned_zeroed_and_carry_o_direct_requests() {
    let name = "huge_buffers_are_aligned_zeroed_and_carry_o_direct_requests";
    let dir = test_dir();
    let align = match direct_support(dir.path()) {
        Ok(a) => a,
        Err(reason) => return skip(name, &reason),
    };
    let mut out = AlignedBuf::huge(3 << 20);
    assert_eq!(out.capacity(), 4 << 20, "rounded up to whole 2 MiB pages");
    assert_eq!(out.stable_ptr() as usize % (2 << 20), 0);
    assert!(out.as_full_slice().iter().all(|&b| b == 0));
    assert_eq!(out.len(), 0);
    let data = pattern(4 << 20, 9);
    out.extend_from_slice(&data);
    match std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(thp) if thp.contains("[never]") => {
            note(&format!("{name}: transparent huge pages are off here: an ordinary buffer"));
        }
        Ok(_) => match huge_kib_at(out.stable_ptr() as usize) {
            Some(kib) if kib >= 2048 => {}
            other => note(&format!("{name}: the kernel gave no huge pages ({other:?} KiB)")),
        },
        Err(e) => note(&format!("{name}: no transparent_hugepage setting: {e}")),
    }
    // A 4 MiB O_DIRECT write from it and a read back into another.
    let file = open_direct(&dir.path().join("huge"));
    let ctx = Context::<AlignedBuf>::new(2).unwrap();
    ctx.submit(Iocb::pwrite(&file, out, 0).check_alignment(align)).unwrap();
    let done = ctx.get_events(1, 1, None).unwrap().pop().unwrap();
    assert_eq!(done.result().unwrap(), 4 << 20);
    ctx.submit(Iocb::pread(&file, AlignedBuf::huge(4 << 20), 0).check_alignment(align)).unwrap();
    let done = ctx.get_events(1, 1, None).unwrap().pop().unwrap();
    assert_eq!(done.result().unwrap(), 4 << 20);
    let back = done.into_buf().expect("the read's buffer");
    assert!(back[..] == data[..], "the bytes read back differ");
}
