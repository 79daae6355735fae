//! Keeps `PROTOCOL.md` honest: every worked example, the size table, the
//! close-code table and the checked constants in the document are compared
//! with what this crate's code actually does.
//!
//! Conventions the document follows, so that this test can read it:
//!
//! - A worked example is a line `<!-- example: NAME -->`, then a fenced
//!   block with info string `hex` holding the message's bytes as two-digit
//!   hex, then a breakdown table whose first column holds those same bytes in
//!   backticks, row by row. Each `NAME` is one of [`expected_examples`]; the
//!   test encodes the value built there and compares the bytes, decodes the
//!   document's bytes and compares the value, and checks that the breakdown
//!   covers exactly the bytes of the block. A missing, duplicated or unknown
//!   example fails the test.
//! - `<!-- close-codes -->` precedes the close-code table
//!   (`| code | `name` | `Variant` | meaning | Retry |`), which must list
//!   every [`CloseCode`] exactly once with its name and retry policy.
//! - `<!-- sizes -->` precedes the size table (`| what | min | typical | max |`).
//! - `<!-- check: key=value ... -->` states constants; see [`checked_values`].
//!
//! Failures print what the code produces, ready to paste into the document.

mod common;

use common::Msg;
use protocol::wire::{self, MAX_ENTITY_BYTES, MAX_SNAPSHOT_HEADER_BYTES};
use protocol::{
    ClientMsg, CloseCode, Entity, EntityKind, Hello, Input, MAX_CLIENT_MSG_BYTES,
    MAX_SERVER_MSG_BYTES, PROTOCOL_VERSION, Ping, Pong, ResumeToken, ServerMsg, Snapshot, Welcome,
};
use std::collections::BTreeMap;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md");

fn read_doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// The token used by every example that carries one.
const TOKEN: ResumeToken = ResumeToken([
    0x3f, 0x9a, 0x0c, 0x51, 0xe2, 0x7b, 0x44, 0x18, 0xa6, 0xd0, 0x95, 0x2e, 0x6c, 0xf1, 0x03, 0xb7,
]);

/// Milliseconds since the Unix epoch, a typical `u64` on the wire.
const EPOCH_MS: u64 = 1_700_000_000_000;

fn welcome_example() -> Welcome {
    Welcome {
        version: 1,
        player_id: 70_000,
        room_id: 3,
        resume_token: TOKEN,
        resumed: false,
        tick_hz: 30,
        world_width: 2000,
        world_height: 2000,
        view_radius: 300,
    }
}

/// An entity of the documented typical size: id and positions of 251 ..=
/// 65,535, a score below 251.
const TYPICAL_ENTITY: Entity = Entity {
    id: 300,
    kind: EntityKind::Player,
    x: 1000,
    y: 1500,
    score: 12,
};

/// The examples the document must contain, by name, with the values they
/// show.
fn expected_examples() -> Vec<(&'static str, Msg)> {
    vec![
        (
            "hello_new",
            Msg::Client(ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                resume: None,
            })),
        ),
        (
            "hello_resume",
            Msg::Client(ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                resume: Some(TOKEN),
            })),
        ),
        (
            "input_negative",
            Msg::Client(ClientMsg::Input(Input {
                seq: 1000,
                dx: -127,
                dy: 64,
            })),
        ),
        (
            "input_small",
            Msg::Client(ClientMsg::Input(Input {
                seq: 1,
                dx: 0,
                dy: -1,
            })),
        ),
        ("ping", Msg::Client(ClientMsg::Ping(Ping { t: EPOCH_MS }))),
        (
            "welcome",
            Msg::Server(ServerMsg::Welcome(welcome_example())),
        ),
        (
            "snapshot_two",
            Msg::Server(ServerMsg::Snapshot(Snapshot {
                tick: 123_456,
                ack: 1000,
                players: 2,
                entities: vec![
                    TYPICAL_ENTITY,
                    Entity {
                        id: 5,
                        kind: EntityKind::Pickup,
                        x: 17,
                        y: 250,
                        score: 0,
                    },
                ],
            })),
        ),
        (
            "snapshot_empty",
            Msg::Server(ServerMsg::Snapshot(Snapshot {
                tick: 42,
                ack: 0,
                players: 1,
                entities: vec![],
            })),
        ),
        (
            "pong",
            Msg::Server(ServerMsg::Pong(Pong {
                t: 42,
                server_time_ms: EPOCH_MS,
            })),
        ),
    ]
}

/// The values that `<!-- check: ... -->` lines may state, all of which must
/// be stated somewhere.
fn checked_values() -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("protocol_version", u64::from(PROTOCOL_VERSION)),
        ("max_client_msg_bytes", MAX_CLIENT_MSG_BYTES as u64),
        ("max_server_msg_bytes", MAX_SERVER_MSG_BYTES as u64),
    ])
}

fn len_client(m: ClientMsg) -> usize {
    Msg::Client(m).encode().len()
}

fn len_server(m: ServerMsg) -> usize {
    Msg::Server(m).encode().len()
}

fn entity_len(e: Entity) -> usize {
    let mut out = Vec::new();
    wire::encode_entity(&e, &mut out);
    out.len()
}

fn header_len(tick: u32, ack: u32, players: u16, count: usize) -> usize {
    let mut out = Vec::new();
    wire::encode_snapshot_header(tick, ack, players, count, &mut out);
    out.len()
}

const MIN_ENTITY: Entity = Entity {
    id: 0,
    kind: EntityKind::Player,
    x: 0,
    y: 0,
    score: 0,
};

const MAX_ENTITY: Entity = Entity {
    id: u32::MAX,
    kind: EntityKind::DroppedPlayer,
    x: u16::MAX,
    y: u16::MAX,
    score: u32::MAX,
};

/// Typical snapshot header values: tick and ack of 251 ..= 65,535, fewer
/// than 251 players and entities.
const TYPICAL_TICK: u32 = 10_000;
const TYPICAL_ACK: u32 = 5_000;
const TYPICAL_PLAYERS: u16 = 50;

fn snapshot20(tick: u32, ack: u32, players: u16, e: Entity) -> ServerMsg {
    ServerMsg::Snapshot(Snapshot {
        tick,
        ack,
        players,
        entities: vec![e; 20],
    })
}

/// Rows of the size table: (min, typical, max) in bytes, by the row's first
/// cell with backticks removed.
fn expected_sizes() -> BTreeMap<&'static str, [usize; 3]> {
    let hello = |version, resume| len_client(ClientMsg::Hello(Hello { version, resume }));
    let input = |seq, dx, dy| len_client(ClientMsg::Input(Input { seq, dx, dy }));
    let ping = |t| len_client(ClientMsg::Ping(Ping { t }));
    let pong = |t, server_time_ms| len_server(ServerMsg::Pong(Pong { t, server_time_ms }));
    let welcome = |w| len_server(ServerMsg::Welcome(w));
    let welcome_min = Welcome {
        version: 0,
        player_id: 0,
        room_id: 0,
        resume_token: ResumeToken([0; 16]),
        resumed: false,
        tick_hz: 0,
        world_width: 0,
        world_height: 0,
        view_radius: 0,
    };
    let welcome_max = Welcome {
        version: u16::MAX,
        player_id: u32::MAX,
        room_id: u32::MAX,
        resume_token: ResumeToken([0xff; 16]),
        resumed: true,
        tick_hz: u16::MAX,
        world_width: u16::MAX,
        world_height: u16::MAX,
        view_radius: u16::MAX,
    };

    // The bounds the crate itself states must agree with what it encodes.
    assert_eq!(entity_len(MAX_ENTITY), MAX_ENTITY_BYTES);
    assert_eq!(
        header_len(u32::MAX, u32::MAX, u16::MAX, usize::MAX),
        MAX_SNAPSHOT_HEADER_BYTES
    );

    BTreeMap::from([
        (
            "Hello",
            [
                hello(PROTOCOL_VERSION, None),
                hello(PROTOCOL_VERSION, Some(TOKEN)),
                hello(u16::MAX, Some(TOKEN)),
            ],
        ),
        (
            "Input",
            [
                input(0, 0, 0),
                input(1000, -127, 64),
                input(u32::MAX, -128, -128),
            ],
        ),
        ("Ping", [ping(0), ping(EPOCH_MS), ping(u64::MAX)]),
        (
            "Welcome",
            [
                welcome(welcome_min),
                welcome(welcome_example()),
                welcome(welcome_max),
            ],
        ),
        (
            "Pong",
            [
                pong(0, 0),
                pong(EPOCH_MS, EPOCH_MS),
                pong(u64::MAX, u64::MAX),
            ],
        ),
        (
            "Snapshot header",
            [
                header_len(0, 0, 0, 0),
                header_len(TYPICAL_TICK, TYPICAL_ACK, TYPICAL_PLAYERS, 20),
                header_len(u32::MAX, u32::MAX, u16::MAX, usize::MAX),
            ],
        ),
        (
            "Snapshot entity",
            [
                entity_len(MIN_ENTITY),
                entity_len(TYPICAL_ENTITY),
                entity_len(MAX_ENTITY),
            ],
        ),
        (
            "Snapshot with 20 entities",
            [
                len_server(snapshot20(0, 0, 0, MIN_ENTITY)),
                len_server(snapshot20(
                    TYPICAL_TICK,
                    TYPICAL_ACK,
                    TYPICAL_PLAYERS,
                    TYPICAL_ENTITY,
                )),
                len_server(snapshot20(u32::MAX, u32::MAX, u16::MAX, MAX_ENTITY)),
            ],
        ),
    ])
}

// ---------------------------------------------------------------------------
// Reading the document.

/// A worked example as the document shows it.
#[derive(Debug)]
struct DocExample {
    name: String,
    /// 1-based line of the `<!-- example: -->` marker.
    line: usize,
    /// The bytes of the ```hex block.
    bytes: Vec<u8>,
    /// The bytes of the breakdown table's first column, concatenated.
    breakdown: Vec<u8>,
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    text.split_whitespace()
        .map(|tok| {
            if tok.len() == 2 && tok.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(u8::from_str_radix(tok, 16).expect("checked hex digits"))
            } else {
                Err(format!("`{tok}` is not a two-digit hex byte"))
            }
        })
        .collect()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cells of a Markdown table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

fn strip_ticks(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn is_separator_row(row: &str) -> bool {
    cells(row)
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// The data rows (with 1-based line numbers) of the first table at or after
/// line index `from`, which must come before any heading or marker comment.
fn table_after(lines: &[&str], from: usize) -> Result<Vec<(usize, String)>, String> {
    let mut i = from;
    while i < lines.len() && !lines[i].trim_start().starts_with('|') {
        let l = lines[i].trim_start();
        if l.starts_with('#') || l.starts_with("<!--") || l.starts_with("```") {
            return Err(format!("line {}: expected a table before this", i + 1));
        }
        i += 1;
    }
    if i + 1 >= lines.len() || !is_separator_row(lines[i + 1]) {
        return Err(format!(
            "line {}: expected a table header and separator row",
            i + 1
        ));
    }
    Ok(lines[i + 2..]
        .iter()
        .enumerate()
        .take_while(|(_, l)| l.trim_start().starts_with('|'))
        .map(|(k, l)| (i + 3 + k, l.to_string()))
        .collect())
}

/// Every `<!-- example: NAME -->` in the document, or the reasons some
/// could not be read.
fn parse_examples(doc: &str) -> (Vec<DocExample>, Vec<String>) {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if !t.starts_with("<!-- example") {
            continue;
        }
        let Some(name) = t
            .strip_prefix("<!-- example:")
            .and_then(|r| r.strip_suffix("-->"))
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            errors.push(format!("line {}: malformed example marker `{t}`", i + 1));
            continue;
        };
        match parse_example_body(&lines, i + 1) {
            Ok((bytes, breakdown)) => found.push(DocExample {
                name: name.to_string(),
                line: i + 1,
                bytes,
                breakdown,
            }),
            Err(e) => errors.push(format!("example `{name}` (line {}): {e}", i + 1)),
        }
    }
    (found, errors)
}

/// Reads the ```hex block starting at line index `at` and the breakdown
/// table after it.
fn parse_example_body(lines: &[&str], at: usize) -> Result<(Vec<u8>, Vec<u8>), String> {
    if lines.get(at).map(|l| l.trim()) != Some("```hex") {
        return Err("the marker must be followed directly by a ```hex block".into());
    }
    let end = (at + 1..lines.len())
        .find(|&j| lines[j].trim() == "```")
        .ok_or("unterminated ```hex block")?;
    let bytes = parse_hex(&lines[at + 1..end].join(" "))?;
    if bytes.is_empty() {
        return Err("empty ```hex block".into());
    }
    let mut breakdown = Vec::new();
    for (n, row) in table_after(lines, end + 1)? {
        let first = cells(&row)[0];
        let inner = strip_ticks(first)
            .ok_or_else(|| format!("line {n}: first cell `{first}` is not hex in backticks"))?;
        breakdown.extend(parse_hex(inner).map_err(|e| format!("line {n}: {e}"))?);
    }
    Ok((bytes, breakdown))
}

/// Checks the worked examples; returns one message per problem.
fn check_examples(doc: &str) -> Vec<String> {
    let (found, mut errors) = parse_examples(doc);
    let expected = expected_examples();

    for ex in &found {
        if !expected.iter().any(|(name, _)| *name == ex.name) {
            errors.push(format!(
                "line {}: example `{}` is not one the test knows; add it to expected_examples()",
                ex.line, ex.name
            ));
        }
    }
    for (name, value) in &expected {
        let matching: Vec<&DocExample> = found.iter().filter(|e| e.name == *name).collect();
        let want = value.encode();
        let ex = match matching.as_slice() {
            [] => {
                errors.push(format!(
                    "example `{name}` is missing from PROTOCOL.md; the code encodes {value:?} as:\n    {}",
                    hex_string(&want)
                ));
                continue;
            }
            [ex] => ex,
            more => {
                let at: Vec<usize> = more.iter().map(|e| e.line).collect();
                errors.push(format!(
                    "example `{name}` appears more than once (lines {at:?})"
                ));
                continue;
            }
        };
        if ex.bytes != want {
            errors.push(format!(
                "example `{name}` (line {}): the document says\n    {}\nbut the code encodes {value:?} as\n    {}",
                ex.line,
                hex_string(&ex.bytes),
                hex_string(&want)
            ));
        }
        match value.decode_like(&ex.bytes) {
            Ok(decoded) if decoded == *value => {}
            Ok(decoded) => errors.push(format!(
                "example `{name}` (line {}): the document's bytes decode to {decoded:?}, not {value:?}",
                ex.line
            )),
            Err(e) => errors.push(format!(
                "example `{name}` (line {}): the document's bytes do not decode: {e}",
                ex.line
            )),
        }
        if ex.breakdown != ex.bytes {
            errors.push(format!(
                "example `{name}` (line {}): the breakdown table covers\n    {}\nnot the example's bytes\n    {}",
                ex.line,
                hex_string(&ex.breakdown),
                hex_string(&ex.bytes)
            ));
        }
    }
    errors
}

/// The line index just after the only line that is exactly `marker`.
fn after_marker(lines: &[&str], marker: &str) -> Result<usize, String> {
    let at: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == marker)
        .collect();
    match at.as_slice() {
        [i] => Ok(i + 1),
        [] => Err(format!("marker `{marker}` not found")),
        _ => Err(format!("marker `{marker}` appears more than once")),
    }
}

fn check_close_codes(doc: &str) -> Vec<String> {
    let lines: Vec<&str> = doc.lines().collect();
    let rows =
        match after_marker(&lines, "<!-- close-codes -->").and_then(|i| table_after(&lines, i)) {
            Ok(rows) => rows,
            Err(e) => return vec![format!("close-code table: {e}")],
        };
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (n, row) in &rows {
        let c = cells(row);
        let Some(code) = c.first().and_then(|s| s.parse::<u16>().ok()) else {
            errors.push(format!("line {n}: first cell is not a close code"));
            continue;
        };
        let Some(cc) = CloseCode::from_code(code) else {
            errors.push(format!("line {n}: {code} is not a code in close.rs"));
            continue;
        };
        seen.push(code);
        let name = c.get(1).and_then(|s| strip_ticks(s));
        if name != Some(cc.name()) {
            errors.push(format!(
                "line {n}: {code} is named `{}` in close.rs",
                cc.name()
            ));
        }
        let variant = c.get(2).and_then(|s| strip_ticks(s));
        if variant != Some(format!("{cc:?}").as_str()) {
            errors.push(format!(
                "line {n}: {code} is `CloseCode::{cc:?}` in close.rs"
            ));
        }
        let retry = c.last().copied().unwrap_or_default();
        if retry != format!("{:?}", cc.retry()) {
            errors.push(format!(
                "line {n}: {code} has retry `{retry}` in the document, `{:?}` in close.rs",
                cc.retry()
            ));
        }
    }
    for cc in CloseCode::ALL {
        match seen.iter().filter(|&&s| s == cc.code()).count() {
            1 => {}
            0 => errors.push(format!(
                "close code {} (`{}`) is missing from the table",
                cc.code(),
                cc.name()
            )),
            _ => errors.push(format!("close code {} is listed more than once", cc.code())),
        }
    }
    errors
}

fn check_sizes(doc: &str) -> Vec<String> {
    let lines: Vec<&str> = doc.lines().collect();
    let rows = match after_marker(&lines, "<!-- sizes -->").and_then(|i| table_after(&lines, i)) {
        Ok(rows) => rows,
        Err(e) => return vec![format!("size table: {e}")],
    };
    let expected = expected_sizes();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (n, row) in &rows {
        let c = cells(row);
        let key = strip_ticks(c[0]).unwrap_or(c[0]);
        let Some(want) = expected.get(key) else {
            errors.push(format!("line {n}: unknown size row `{key}`"));
            continue;
        };
        seen.push(key.to_string());
        let got: Vec<Option<usize>> = c[1..].iter().map(|s| s.parse().ok()).collect();
        if got != want.iter().map(|&w| Some(w)).collect::<Vec<_>>() {
            errors.push(format!(
                "line {n}: `{key}` should read | {} | {} | {} | (min, typical, max)",
                want[0], want[1], want[2]
            ));
        }
    }
    for key in expected.keys() {
        if !seen.iter().any(|s| s == key) {
            errors.push(format!("size row `{key}` is missing"));
        }
    }
    errors
}

fn check_values(doc: &str) -> Vec<String> {
    let expected = checked_values();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        let Some(body) = line
            .trim()
            .strip_prefix("<!-- check:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        for pair in body.split_whitespace() {
            let Some((k, v)) = pair.split_once('=') else {
                errors.push(format!("line {}: `{pair}` is not key=value", i + 1));
                continue;
            };
            seen.push(k.to_string());
            match expected.get(k) {
                None => errors.push(format!("line {}: unknown check `{k}`", i + 1)),
                Some(want) if v.parse::<u64>().ok() != Some(*want) => {
                    errors.push(format!("line {}: {k} is {want}, not {v}", i + 1));
                }
                Some(_) => {}
            }
        }
    }
    for key in expected.keys() {
        if !seen.iter().any(|s| s == key) {
            errors.push(format!("check `{key}` is not stated anywhere"));
        }
    }
    errors
}

fn all_errors(doc: &str) -> Vec<String> {
    let mut errors = check_examples(doc);
    errors.extend(check_close_codes(doc));
    errors.extend(check_sizes(doc));
    errors.extend(check_values(doc));
    errors
}

fn assert_clean(errors: &[String]) {
    assert!(
        errors.is_empty(),
        "PROTOCOL.md disagrees with the code:\n\n{}",
        errors.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn worked_examples_match_the_encoder_and_decoder() {
    assert_clean(&check_examples(&read_doc()));
}

#[test]
fn close_code_table_matches_close_rs() {
    assert_clean(&check_close_codes(&read_doc()));
}

#[test]
fn size_table_matches_the_encoder() {
    assert_clean(&check_sizes(&read_doc()));
}

#[test]
fn stated_constants_match_the_code() {
    assert_clean(&check_values(&read_doc()));
}

/// Edits the real document and expects the checker to notice, so that a
/// checker that silently finds nothing cannot pass.
fn assert_caught(what: &str, from: &str, to: &str, expect: &str) {
    let doc = read_doc();
    assert!(
        doc.contains(from),
        "{what}: the document no longer contains `{from}`; update this test"
    );
    let errors = all_errors(&doc.replacen(from, to, 1));
    assert!(
        errors.iter().any(|e| e.contains(expect)),
        "{what}: expected an error mentioning `{expect}`, got {errors:#?}"
    );
}

#[test]
fn the_checker_notices_disagreements() {
    assert_caught(
        "a wrong byte",
        "```hex\n01 2a 00 01 00\n```",
        "```hex\n01 2a 00 02 00\n```",
        "example `snapshot_empty`",
    );
    assert_caught(
        "a trailing byte",
        "```hex\n00 01 00\n```",
        "```hex\n00 01 00 00\n```",
        "example `hello_new`",
    );
    assert_caught(
        "a breakdown that skips a byte",
        "| `ff`  | `dy`",
        "| ``  | `dy`",
        "breakdown table",
    );
    assert_caught(
        "a missing example",
        "<!-- example: pong -->",
        "",
        "`pong` is missing",
    );
    assert_caught(
        "an unknown example",
        "<!-- example: pong -->",
        "<!-- example: pong2 -->",
        "`pong2` is not one the test knows",
    );
    assert_caught(
        "a wrong retry policy",
        "| `InvalidResumeToken` | The resume token is unknown, or its grace period has ended. No player was created.            | Rejoin |",
        "| `InvalidResumeToken` | The resume token is unknown, or its grace period has ended. No player was created.            | Resume |",
        "4002 has retry `Resume`",
    );
    assert_caught(
        "a missing close code",
        "| 4008 |",
        "| 4009 |",
        "4008 (`handshake_timeout`) is missing",
    );
    assert_caught(
        "a wrong size",
        "| Snapshot entity              | 5   | 11      | 17  |",
        "| Snapshot entity              | 7   | 11      | 17  |",
        "`Snapshot entity` should read",
    );
    assert_caught(
        "a wrong constant",
        "max_client_msg_bytes=256",
        "max_client_msg_bytes=255",
        "max_client_msg_bytes is 256",
    );
}
