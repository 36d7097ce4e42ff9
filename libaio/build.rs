//! Link arguments that make the cdylib `libaio.so.1`: its SONAME and the version nodes of
//! libaio.map (symbols get their versions from `.symver` directives in src/exports.rs).

fn main() {
    let map = concat!(env!("CARGO_MANIFEST_DIR"), "/libaio.map");
    println!("cargo:rerun-if-changed=libaio.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libaio.so.1");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
    // rustc passes its own anonymous version script (`{ global: …; local: *; }`). GNU ld
    // refuses to combine it with named version nodes; lld merges them, which is what we need:
    // the named nodes define LIBAIO_0.1/0.4/0.5 and rustc's `local: *` hides every other
    // symbol. rustc links with its bundled rust-lld by default on x86_64 Linux since 1.90; this
    // asks for lld explicitly so an older toolchain or another target uses a system lld rather
    // than failing with GNU ld.
    println!("cargo:rustc-cdylib-link-arg=-fuse-ld=lld");
}
