//! include/roomcast.h is what cbindgen generates from this crate; with
//! ROOMCAST_BLESS=1 the test rewrites it instead of failing.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let header = crate_dir.join("../../include/roomcast.h");
    if std::env::var_os("ROOMCAST_BLESS").is_some() {
        std::fs::write(&header, &generated).expect("write include/roomcast.h");
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/roomcast.h is stale: run `ROOMCAST_BLESS=1 cargo test -p roomcast-c --test header` and commit it"
    );
}
