//! Golden-vector files, shared by the envelope's vectors
//! (`protocol/tests/golden.rs`) and each game's (`games/*/tests/golden.rs`):
//! one JSON layout and one check that the committed file is what the Rust
//! encoder writes today. The JavaScript codecs are tested against these
//! files, so a stale one would let the two drift apart.
//!
//! Only for tests (the `golden` feature); nothing at run time reads them.

use serde_json::Value;
use std::path::Path;

/// Lower-case hex of `bytes`, the form the files use.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lays a file out one array item per line, so that a change shows up in a
/// diff as the vectors it changed and nothing else.
pub fn layout(file: &Value) -> String {
    let compact = |v: &Value| serde_json::to_string(v).expect("JSON values serialize");
    let object = file.as_object().expect("the file is an object");
    let fields: Vec<String> = object
        .iter()
        .map(|(key, value)| match value {
            Value::Array(items) => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|i| format!("    {}", compact(i)))
                    .collect();
                format!(
                    "  {}: [\n{}\n  ]",
                    compact(&Value::from(key.as_str())),
                    lines.join(",\n")
                )
            }
            other => format!(
                "  {}: {}",
                compact(&Value::from(key.as_str())),
                compact(other)
            ),
        })
        .collect();
    format!("{{\n{}\n}}\n", fields.join(",\n"))
}

/// Checks that the file at `path` equals `fresh`, or writes it when
/// `UPDATE_GOLDEN=1`. `regenerate` is the command that rewrites it and
/// `codec` the JavaScript that must follow a change; both go in the failure
/// message.
///
/// # Panics
///
/// When the file is missing or stale: this runs inside a test.
pub fn check_file(path: &Path, fresh: &str, regenerate: &str, codec: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create golden/");
        std::fs::write(path, fresh).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with: {regenerate}",
            path.display()
        )
    });
    if committed != fresh {
        let first_diff = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "lengths differ".to_owned(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "{} is stale (first difference at {first_diff}). If the change is intended, regenerate \
             it with `{regenerate}`, commit it, and update {codec} until the web tests \
             (scripts/test-web) pass.",
            path.display()
        );
    }
}
