//! Which caller pointers this library may dereference itself.
//!
//! The kernel checks user pointers and answers `EFAULT`; this library cannot. Where it reads or
//! writes caller memory itself (the user-space reaping path of `io_getevents`, the `*ctxp = 0` of
//! `io_queue_init`) it first asks [`plausible`]: a pointer that is null, in the never-mapped
//! first page, past the end of user space or misaligned goes to the kernel instead (or gets
//! `-EFAULT` where the kernel would not see it), so the answer is the kernel's and nothing
//! crashes. A pointer into unmapped user memory that passes this test is dereferenced, as the C
//! libaio dereferences it too (it reads `*timeout` and the ring header itself).

/// Lowest address treated as mappable: the first page is never mapped (`vm.mmap_min_addr` is
/// at least 4096 on every distribution; where it is lower, such pointers just take the system
/// call path).
const USER_LOW: usize = 4096;

/// End of user space with 4-level page tables (x86_64: 2^47 minus the guard page).
#[cfg(target_arch = "x86_64")]
const USER_END: usize = (1 << 47) - 4096;
/// End of user space with 48-bit virtual addresses.
#[cfg(not(target_arch = "x86_64"))]
const USER_END: usize = 1 << 48;

/// Whether `len` bytes at `p` may be caller memory this library can access with alignment
/// `align`: non-null, above the first page, below the end of user space, aligned.
pub(crate) fn plausible<T>(p: *const T, len: usize, align: usize) -> bool {
    let addr = p as usize;
    addr >= USER_LOW
        && addr.is_multiple_of(align)
        && addr.checked_add(len).is_some_and(|end| end <= USER_END)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_null_low_high_and_misaligned() {
        let x = 0u64;
        assert!(plausible(&x, 8, 8));
        assert!(!plausible(std::ptr::null::<u64>(), 8, 8));
        assert!(!plausible(std::ptr::without_provenance::<u64>(8), 8, 8));
        assert!(!plausible(std::ptr::without_provenance::<u8>(usize::MAX), 1, 1));
        assert!(!plausible(std::ptr::without_provenance::<u8>(USER_END - 4), 8, 1));
        assert!(!plausible(((&x as *const u64 as usize) + 1) as *const u64, 8, 8));
        assert!(!plausible(&x, usize::MAX, 8));
    }
}
