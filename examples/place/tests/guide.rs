//! The guide cannot rot: every code block of `docs/your-own-game.md` is
//! either a shell command (a block marked `sh`) or an excerpt of a file of
//! this crate, marked with `<!-- from: examples/place/PATH -->` on the
//! line before it and found verbatim in that file. So a change to the
//! example that the guide quotes fails here until the guide follows.

use std::path::{Path, PathBuf};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fenced code block: its language, the file its marker names (if any)
/// and its text, with the guide's line number for messages.
struct Block {
    line: usize,
    lang: String,
    from: Option<String>,
    text: String,
}

/// Every fenced block of `guide`; a marker not followed by a block is an
/// error in `problems`.
fn blocks(guide: &str, problems: &mut Vec<String>) -> Vec<Block> {
    let mut out = Vec::new();
    let mut marker: Option<(usize, String)> = None;
    let mut lines = guide.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if let Some(path) = line
            .strip_prefix("<!-- from: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            if let Some((at, _)) = marker.replace((i + 1, path.to_owned())) {
                problems.push(format!("line {at}: a marker with no code block after it"));
            }
            continue;
        }
        let Some(lang) = line.strip_prefix("```") else {
            if !line.trim().is_empty()
                && let Some((at, _)) = marker.take()
            {
                problems.push(format!("line {at}: a marker with no code block after it"));
            }
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        out.push(Block {
            line: i + 1,
            lang: lang.trim().to_owned(),
            from: marker.take().map(|(_, path)| path),
            text: body.join("\n"),
        });
    }
    out
}

#[test]
fn every_code_block_of_the_guide_is_a_command_or_a_verbatim_excerpt() {
    let path = repo().join("docs/your-own-game.md");
    let guide = std::fs::read_to_string(&path).expect("docs/your-own-game.md is readable");
    let mut problems = Vec::new();
    let blocks = blocks(&guide, &mut problems);
    for b in &blocks {
        match &b.from {
            None if b.lang == "sh" => {}
            None => problems.push(format!(
                "line {}: a ```{} block with no <!-- from: examples/place/... --> marker",
                b.line, b.lang
            )),
            Some(from) if !from.starts_with("examples/place/") => {
                problems.push(format!("line {}: {from} is not in examples/place/", b.line));
            }
            Some(from) => match std::fs::read_to_string(repo().join(from)) {
                Err(e) => problems.push(format!("line {}: {from}: {e}", b.line)),
                Ok(file) if !file.contains(&b.text) => problems.push(format!(
                    "line {}: this block is not in {from} as it is:\n{}",
                    b.line, b.text
                )),
                Ok(_) => {}
            },
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let excerpts = blocks.iter().filter(|b| b.from.is_some()).count();
    assert!(
        excerpts >= 10,
        "only {excerpts} excerpts: is the guide there?"
    );
}

#[test]
fn markers_and_blocks_are_found_as_documented() {
    let guide = "text\n<!-- from: examples/place/a.rs -->\n```rust\nfn a() {}\n```\n\n```sh\nls\n```\n<!-- from: x -->\nprose\n";
    let mut problems = Vec::new();
    let found = blocks(guide, &mut problems);
    let seen: Vec<_> = found
        .iter()
        .map(|b| (b.line, b.lang.as_str(), b.from.as_deref(), b.text.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (3, "rust", Some("examples/place/a.rs"), "fn a() {}"),
            (7, "sh", None, "ls"),
        ]
    );
    assert_eq!(problems, ["line 10: a marker with no code block after it"]);
}
