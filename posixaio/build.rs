//! Gives the shared library its name as the dynamic linker sees it.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libposixaio.so");
}
