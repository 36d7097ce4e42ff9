//! The kernel's native AIO ABI, from `<linux/aio_abi.h>` and `fs/aio.c`.
//!
//! Layouts are the kernel's exactly; the asserts at the bottom of this file fail the build if a
//! size or an offset drifts.

#![allow(non_camel_case_types)]

use std::mem::{offset_of, size_of};

/// `aio_context_t`: the handle `io_setup` returns. It is the user-space address of the
/// completion ring the kernel maps into the process.
pub type aio_context_t = libc::c_ulong;

/// `IOCB_CMD_PREAD`: read into one buffer.
pub const IOCB_CMD_PREAD: u16 = 0;
/// `IOCB_CMD_PWRITE`: write from one buffer.
pub const IOCB_CMD_PWRITE: u16 = 1;
/// `IOCB_CMD_FSYNC`: `fsync(2)` the file.
pub const IOCB_CMD_FSYNC: u16 = 2;
/// `IOCB_CMD_FDSYNC`: `fdatasync(2)` the file.
pub const IOCB_CMD_FDSYNC: u16 = 3;
/// `IOCB_CMD_POLL`: wait for the poll events in `aio_buf` (since Linux 4.18).
pub const IOCB_CMD_POLL: u16 = 5;
/// `IOCB_CMD_NOOP`: defined by the ABI, refused by the kernel with `EINVAL`.
pub const IOCB_CMD_NOOP: u16 = 6;
/// `IOCB_CMD_PREADV`: read into an `iovec` array (`aio_buf` points at it, `aio_nbytes` counts it).
pub const IOCB_CMD_PREADV: u16 = 7;
/// `IOCB_CMD_PWRITEV`: write from an `iovec` array.
pub const IOCB_CMD_PWRITEV: u16 = 8;

/// `IOCB_FLAG_RESFD`: signal the eventfd in `aio_resfd` when the request completes.
pub const IOCB_FLAG_RESFD: u32 = 1 << 0;
/// `IOCB_FLAG_IOPRIO`: `aio_reqprio` holds an I/O priority (`IOPRIO_PRIO_VALUE`).
pub const IOCB_FLAG_IOPRIO: u32 = 1 << 1;

/// `RWF_HIPRI`: high-priority (polled) I/O; kernel AIO accepts it and does not poll.
pub const RWF_HIPRI: i32 = 0x0000_0001;
/// `RWF_DSYNC`: per-request `O_DSYNC`.
pub const RWF_DSYNC: i32 = 0x0000_0002;
/// `RWF_SYNC`: per-request `O_SYNC`.
pub const RWF_SYNC: i32 = 0x0000_0004;
/// `RWF_NOWAIT`: fail with `EAGAIN` instead of blocking.
pub const RWF_NOWAIT: i32 = 0x0000_0008;
/// `RWF_APPEND`: per-request `O_APPEND`.
pub const RWF_APPEND: i32 = 0x0000_0010;

/// `IOPRIO_CLASS_SHIFT`: where the class sits in an I/O priority value.
pub const IOPRIO_CLASS_SHIFT: u16 = 13;
/// `IOPRIO_CLASS_RT`: real-time class.
pub const IOPRIO_CLASS_RT: u16 = 1;
/// `IOPRIO_CLASS_BE`: best-effort class.
pub const IOPRIO_CLASS_BE: u16 = 2;
/// `IOPRIO_CLASS_IDLE`: idle class.
pub const IOPRIO_CLASS_IDLE: u16 = 3;

/// `AIO_RING_MAGIC`: the first word of a valid completion ring header.
pub const AIO_RING_MAGIC: u32 = 0xa10a_10a1;
/// `AIO_RING_INCOMPAT_FEATURES`: the incompatible-feature bits this reader understands.
pub const AIO_RING_INCOMPAT_FEATURES: u32 = 0;

/// `struct iocb`: one request, 64 bytes on every architecture.
///
/// The layout is the little-endian one (`aio_key` before `aio_rw_flags`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct iocb {
    /// Returned unchanged in `io_event::data`.
    pub aio_data: u64,
    /// Set by the kernel at submission (`KIOCB_KEY`, 0); `io_cancel` reads it back.
    pub aio_key: u32,
    /// `RWF_*` flags for reads and writes.
    pub aio_rw_flags: i32,
    /// One of the `IOCB_CMD_*` values.
    pub aio_lio_opcode: u16,
    /// I/O priority when `IOCB_FLAG_IOPRIO` is set.
    pub aio_reqprio: i16,
    /// The file descriptor.
    pub aio_fildes: u32,
    /// Buffer address, `iovec` array address, or poll event mask.
    pub aio_buf: u64,
    /// Byte count, or `iovec` count for the vectored commands.
    pub aio_nbytes: u64,
    /// File offset.
    pub aio_offset: i64,
    /// Reserved, must be 0.
    pub aio_reserved2: u64,
    /// `IOCB_FLAG_*`.
    pub aio_flags: u32,
    /// The eventfd to signal when `IOCB_FLAG_RESFD` is set.
    pub aio_resfd: u32,
}

/// `struct io_event`: one completion, 32 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct io_event {
    /// The request's `aio_data`.
    pub data: u64,
    /// The user-space address of the request's `iocb`, as submitted.
    pub obj: u64,
    /// Bytes transferred, the poll mask, or a negated errno.
    pub res: i64,
    /// Secondary result (0 in current kernels).
    pub res2: i64,
}

/// `struct aio_ring`: the header of the completion ring mapped at the `aio_context_t` address.
/// `nr` events of type [`io_event`] follow it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct aio_ring {
    /// Kernel-internal index.
    pub id: u32,
    /// Number of event slots in the ring.
    pub nr: u32,
    /// Next slot to consume; written by whoever reaps.
    pub head: u32,
    /// Next slot the kernel fills.
    pub tail: u32,
    /// [`AIO_RING_MAGIC`].
    pub magic: u32,
    /// Compatible feature bits (1 on current kernels).
    pub compat_features: u32,
    /// Incompatible feature bits; a reader must understand all of them.
    pub incompat_features: u32,
    /// Size of this header: the offset of the first event.
    pub header_length: u32,
}

/// `struct __aio_sigset`: the signal-mask argument of `io_pgetevents`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aio_sigset {
    /// The mask to apply while waiting.
    pub sigmask: *const libc::sigset_t,
    /// Size of the kernel's sigset, in bytes (8 on Linux).
    pub sigsetsize: usize,
}

/// The size of the kernel's signal set (`_NSIG / 8`), which `io_pgetevents` insists on.
pub const KERNEL_SIGSET_SIZE: usize = 8;

/// `io_pgetevents` is missing from the libc crate's x86_64 table.
#[cfg(target_arch = "x86_64")]
pub const SYS_IO_PGETEVENTS: libc::c_long = 333;
/// `io_pgetevents` on the generic syscall table.
#[cfg(target_arch = "aarch64")]
pub const SYS_IO_PGETEVENTS: libc::c_long = 292;

const _: () = {
    assert!(size_of::<iocb>() == 64);
    assert!(offset_of!(iocb, aio_data) == 0);
    assert!(offset_of!(iocb, aio_key) == 8);
    assert!(offset_of!(iocb, aio_rw_flags) == 12);
    assert!(offset_of!(iocb, aio_lio_opcode) == 16);
    assert!(offset_of!(iocb, aio_reqprio) == 18);
    assert!(offset_of!(iocb, aio_fildes) == 20);
    assert!(offset_of!(iocb, aio_buf) == 24);
    assert!(offset_of!(iocb, aio_nbytes) == 32);
    assert!(offset_of!(iocb, aio_offset) == 40);
    assert!(offset_of!(iocb, aio_reserved2) == 48);
    assert!(offset_of!(iocb, aio_flags) == 56);
    assert!(offset_of!(iocb, aio_resfd) == 60);

    assert!(size_of::<io_event>() == 32);
    assert!(offset_of!(io_event, data) == 0);
    assert!(offset_of!(io_event, obj) == 8);
    assert!(offset_of!(io_event, res) == 16);
    assert!(offset_of!(io_event, res2) == 24);

    assert!(size_of::<aio_ring>() == 32);
    assert!(offset_of!(aio_ring, nr) == 4);
    assert!(offset_of!(aio_ring, head) == 8);
    assert!(offset_of!(aio_ring, tail) == 12);
    assert!(offset_of!(aio_ring, magic) == 16);
    assert!(offset_of!(aio_ring, incompat_features) == 24);
    assert!(offset_of!(aio_ring, header_length) == 28);

    assert!(size_of::<aio_sigset>() == 16);
};

#[cfg(not(target_endian = "little"))]
compile_error!("the iocb layout here is the little-endian one");

impl iocb {
    /// `io_prep_pread`: read `len` bytes at `offset` into `buf`.
    pub fn pread(fd: i32, buf: *mut u8, len: usize, offset: i64) -> Self {
        Self::rw(IOCB_CMD_PREAD, fd, buf as u64, len as u64, offset)
    }

    /// `io_prep_pwrite`: write `len` bytes from `buf` at `offset`.
    pub fn pwrite(fd: i32, buf: *const u8, len: usize, offset: i64) -> Self {
        Self::rw(IOCB_CMD_PWRITE, fd, buf as u64, len as u64, offset)
    }

    /// `io_prep_preadv`: read at `offset` into the `iovcnt` buffers of `iov`.
    pub fn preadv(fd: i32, iov: *const libc::iovec, iovcnt: usize, offset: i64) -> Self {
        Self::rw(IOCB_CMD_PREADV, fd, iov as u64, iovcnt as u64, offset)
    }

    /// `io_prep_pwritev`: write the `iovcnt` buffers of `iov` at `offset`.
    pub fn pwritev(fd: i32, iov: *const libc::iovec, iovcnt: usize, offset: i64) -> Self {
        Self::rw(IOCB_CMD_PWRITEV, fd, iov as u64, iovcnt as u64, offset)
    }

    /// `io_prep_fsync`.
    pub const fn fsync(fd: i32) -> Self {
        Self::rw(IOCB_CMD_FSYNC, fd, 0, 0, 0)
    }

    /// `io_prep_fdsync`.
    pub const fn fdsync(fd: i32) -> Self {
        Self::rw(IOCB_CMD_FDSYNC, fd, 0, 0, 0)
    }

    /// `io_prep_poll`: complete when any of `events` (`POLLIN`, …) is ready on `fd`.
    pub const fn poll(fd: i32, events: u16) -> Self {
        Self::rw(IOCB_CMD_POLL, fd, events as u64, 0, 0)
    }

    /// A request with the given opcode and fields, everything else zero.
    pub const fn rw(opcode: u16, fd: i32, buf: u64, nbytes: u64, offset: i64) -> Self {
        iocb {
            aio_data: 0,
            aio_key: 0,
            aio_rw_flags: 0,
            aio_lio_opcode: opcode,
            aio_reqprio: 0,
            aio_fildes: fd as u32,
            aio_buf: buf,
            aio_nbytes: nbytes,
            aio_offset: offset,
            aio_reserved2: 0,
            aio_flags: 0,
            aio_resfd: 0,
        }
    }

    /// `io_set_eventfd`: signal `fd` when this request completes.
    pub const fn with_resfd(mut self, fd: i32) -> Self {
        self.aio_flags |= IOCB_FLAG_RESFD;
        self.aio_resfd = fd as u32;
        self
    }
}
