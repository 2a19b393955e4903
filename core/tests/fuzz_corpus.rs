//! The fuzz targets' checks (fuzz/src/lib.rs) over the committed corpus
//! (fuzz/corpus/<target>/, grown by `make fuzz`): every input the fuzzers
//! kept, crashes they found included, stays checked by `make test`.

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        inputs += 1;
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}

#[test]
fn engineio_corpus() {
    replay("engineio", checks::engineio);
}

#[test]
fn polling_body_corpus() {
    replay("polling_body", checks::polling_body);
}

#[test]
fn socketio_corpus() {
    replay("socketio", checks::socketio);
}

#[test]
fn json_protocol_corpus() {
    replay("json_protocol", checks::json_protocol);
}
