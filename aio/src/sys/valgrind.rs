//! Telling valgrind's memcheck what the kernel wrote behind its back.
//!
//! memcheck follows memory through system calls it knows, but not through the io_uring rings
//! or the kernel AIO completion ring read in user space: a read completed there leaves its
//! buffer "uninitialised" to memcheck, and a program that then writes the buffer out gets a
//! false report. When the program runs under valgrind, the drivers mark what a read filled as
//! defined (the `VALGRIND_MAKE_MEM_DEFINED` client request), or take the system call memcheck
//! understands. Natively, a client request is a few instructions that do nothing.

use std::sync::atomic::{AtomicU8, Ordering};

/// `VG_USERREQ__RUNNING_ON_VALGRIND`.
const RUNNING_ON_VALGRIND: usize = 0x1001;
/// `VG_USERREQ__MAKE_MEM_DEFINED`: `VG_USERREQ_TOOL_BASE('M', 'C') + 2`.
const MAKE_MEM_DEFINED: usize = 0x4d43_0002;

/// valgrind's client request: `default` natively, valgrind's answer under it.
#[cfg(target_arch = "x86_64")]
fn client_request(default: usize, request: usize, arg1: usize, arg2: usize) -> usize {
    let args: [usize; 6] = [request, arg1, arg2, 0, 0, 0];
    let mut result = default;
    // SAFETY: valgrind's "special instruction" sequence for amd64: four rotations of rdi by
    // 128 bits in all (rdi ends as it began) and an exchange of rbx with itself — no effect on
    // a real CPU; under valgrind, a request that reads the six words at rax and answers in rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            out("rdi") _,
            options(nostack, preserves_flags),
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(default: usize, _request: usize, _arg1: usize, _arg2: usize) -> usize {
    default
}

/// Whether the program runs under valgrind (asked once).
pub fn running() -> bool {
    static ANSWER: AtomicU8 = AtomicU8::new(0);
    match ANSWER.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = client_request(0, RUNNING_ON_VALGRIND, 0, 0) > 0;
            ANSWER.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Tells memcheck that `len` bytes at `addr` hold data (a read filled them). Nothing natively.
pub fn mark_defined(addr: *const u8, len: usize) {
    if len > 0 && running() {
        client_request(0, MAKE_MEM_DEFINED, addr as usize, len);
    }
}

/// [`mark_defined`] for the first `len` bytes of `iov`, in order.
pub fn mark_iovecs_defined(iov: &[libc::iovec], mut len: usize) {
    if len == 0 || !running() {
        return;
    }
    for v in iov {
        let n = v.iov_len.min(len);
        mark_defined(v.iov_base.cast(), n);
        len -= n;
        if len == 0 {
            break;
        }
    }
}
