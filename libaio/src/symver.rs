//! Exporting a Rust function under a versioned ELF name (`io_getevents@@LIBAIO_0.4`).
//!
//! The functions themselves are ordinary (mangled, unexported) Rust functions. For each one the
//! macro emits, in `global_asm!`, a global alias label and a `.symver` directive that gives the
//! alias its public name and version:
//!
//! ```text
//! .globl __libaio_io_getevents_0_4
//! .type  __libaio_io_getevents_0_4, @function
//! .set   __libaio_io_getevents_0_4, <mangled name of io_getevents_0_4>
//! .symver __libaio_io_getevents_0_4, io_getevents@@LIBAIO_0.4
//! ```
//!
//! `@@` makes the default version (what new programs link to), `@` a compat version (what old
//! binaries asked for). The alias label itself is not exported: rustc's version script ends with
//! `local: *`, and only the versioned names survive in the dynamic symbol table. The version
//! nodes are declared in libaio.map. The result is checked by the `exports` test with
//! `objdump -T`.

/// `symver!(impl_fn => "name@@VERSION");` exports `impl_fn` as `name` at `VERSION`.
macro_rules! symver {
    ($imp:ident => $versioned:literal) => {
        ::core::arch::global_asm!(
            concat!(".globl __libaio_", stringify!($imp)),
            concat!(".type __libaio_", stringify!($imp), ", @function"),
            concat!(".set __libaio_", stringify!($imp), ", {f}"),
            concat!(".symver __libaio_", stringify!($imp), ", ", $versioned),
            f = sym $imp,
        );
    };
}

pub(crate) use symver;
