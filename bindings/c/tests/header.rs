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

/// docs/c-api.md is the reference generated from include/roomcast.h (its
/// doc comments and declarations); with ROOMCAST_BLESS=1 the test rewrites it.
#[test]
fn c_api_reference_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let header = std::fs::read_to_string(root.join("include/roomcast.h")).expect("read include/roomcast.h");
    let generated = reference(&header);
    let path = root.join("docs/c-api.md");
    if std::env::var_os("ROOMCAST_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/c-api.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/c-api.md is stale: run `ROOMCAST_BLESS=1 cargo test -p roomcast-c --test header` and commit it"
    );
}

/// One documented top-level declaration of the header.
struct Item {
    name: String,
    doc: String,
    code: String,
}

/// The header's documented declarations, in order.
fn items(header: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lines = header.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("/**") || items.is_empty() && header.starts_with(line) {
            continue; // the file's own banner is not an item
        }
        let mut doc = Vec::new();
        let mut current = line;
        loop {
            let text = current.trim_start_matches("/**").trim_end_matches("*/").trim();
            let text = text.strip_prefix("* ").unwrap_or(text.strip_prefix('*').unwrap_or(text));
            if !(current.starts_with("/**") && text.is_empty()) && current.trim() != "*/" {
                doc.push(text.to_owned());
            }
            if current.trim_end().ends_with("*/") {
                break;
            }
            match lines.next() {
                Some(l) => current = l,
                None => break,
            }
        }
        let mut code = Vec::new();
        let mut depth = 0i32;
        for l in lines.by_ref() {
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            code.push(l.to_owned());
            if depth == 0 && l.trim_end().ends_with(';') {
                break;
            }
        }
        let code = code.join("\n");
        items.push(Item { name: declared_name(&code), doc: doc.join("\n").trim().to_owned(), code });
    }
    items
}

/// The name a declaration declares: a function's, a typedef's.
fn declared_name(code: &str) -> String {
    let word = |s: &str| s.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_')).to_owned();
    if let Some(start) = code.find("(*") {
        return word(code[start + 2..].split(')').next().unwrap_or_default());
    }
    if code.starts_with("typedef") {
        let last = code.trim_end().trim_end_matches(';').rsplit([' ', '}']).next().unwrap_or_default();
        return word(last);
    }
    word(code.split('(').next().unwrap_or_default().rsplit([' ', '*']).next().unwrap_or_default())
}

/// The markdown reference of `header`.
fn reference(header: &str) -> String {
    let items = items(header);
    let mut out = String::from(
        "# C API reference\n\nGenerated from [include/roomcast.h](../include/roomcast.h) by \
         `bindings/c/tests/header.rs` (`ROOMCAST_BLESS=1 cargo test -p roomcast-c --test header` \
         rewrites it): do not edit. The conventions (results, NULL arguments, strings, threads) \
         are in [c.md](c.md).\n",
    );
    type Section = (&'static str, fn(&Item) -> bool);
    let sections: [Section; 6] = [
        ("Types", |i| i.code.starts_with("typedef")),
        ("Server configuration", |i| i.name.starts_with("roomcast_server_config_")),
        ("Server", |i| i.name.starts_with("roomcast_server_") && !i.name.starts_with("roomcast_server_config_")),
        ("Events", |i| i.name.starts_with("roomcast_event_")),
        ("Client", |i| i.name.starts_with("roomcast_client_")),
        ("Strings, results and versions", |_| true),
    ];
    let mut done = vec![false; items.len()];
    for (title, belongs) in sections {
        let picked: Vec<usize> = (0..items.len()).filter(|&i| !done[i] && belongs(&items[i])).collect();
        if picked.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {title}\n"));
        for i in picked {
            done[i] = true;
            let item = &items[i];
            // The doc comments' own headings ("# Safety") become bold paragraphs.
            let doc: Vec<String> = item
                .doc
                .lines()
                .map(|l| l.strip_prefix("# ").map_or_else(|| l.to_owned(), |h| format!("**{h}.**")))
                .collect();
            out.push_str(&format!("\n### `{}`\n\n{}\n\n```c\n{}\n```\n", item.name, doc.join("\n"), item.code));
        }
    }
    out
}
