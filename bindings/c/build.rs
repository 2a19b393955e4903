//! libroomcast.so carries a versioned soname, so programs linked against
//! it load a compatible major version.
fn main() {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    // Before 1.0 the minor version is the compatibility line.
    let soname = if major == "0" { format!("libroomcast.so.0.{minor}") } else { format!("libroomcast.so.{major}") };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
}
