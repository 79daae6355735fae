//! Golden vectors of the arena's own bytes: every value of [`Move`],
//! [`ArenaWelcome`] and [`ArenaState`] at the edges where a field changes
//! its encoded length, written to `games/arena/golden/vectors.json` for
//! the browser codec (`games/arena/web/codec.js`, tested by
//! `server/web/test/arena-codec.test.mjs`) to decode and re-encode.
//!
//! The test builds the vectors with the game's own codec and compares them
//! with the committed file, so a change of the arena's types fails here
//! until the file is regenerated with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p arena --test golden
//! ```
//!
//! and then fails the JavaScript tests until `codec.js` follows. Not for
//! the envelope around these bytes (`protocol/tests/golden.rs` has that),
//! and not for the server's hand-written state encoder, which the crate's
//! unit tests hold equal to bincode.

use arena::msg::{ArenaState, ArenaWelcome, Entity, EntityKind, Move};
use game_api::codec::{decode, decode_message, to_vec};
use protocol::golden::{check_file, hex, layout};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the vectors live, relative to this crate.
fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json")
}

/// The values at which a varint changes length, for `u16` fields.
const U16_EDGES: [u16; 5] = [0, 250, 251, 252, u16::MAX];

/// The same for `u32` fields.
const U32_EDGES: [u32; 7] = [0, 250, 251, 65_535, 65_536, 1 << 24, u32::MAX];

/// One arena value of any of its wire types.
#[derive(Debug, Clone, PartialEq)]
enum Wire {
    Move(Move),
    Welcome(ArenaWelcome),
    State(ArenaState),
}

impl Wire {
    /// The type's name, as the JSON file and the JavaScript codec call it.
    fn kind(&self) -> &'static str {
        match self {
            Wire::Move(_) => "Move",
            Wire::Welcome(_) => "ArenaWelcome",
            Wire::State(_) => "ArenaState",
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Wire::Move(m) => to_vec(m),
            Wire::Welcome(w) => to_vec(w),
            Wire::State(s) => to_vec(s),
        }
    }
}

/// Decodes `bytes` as a value of type `kind`, with the limits the server
/// (for a `Move`) or a client (for the rest) decodes with.
fn decode_as(kind: &str, bytes: &[u8]) -> Result<Wire, String> {
    match kind {
        "Move" => decode_message::<Move>(bytes).map(Wire::Move),
        "ArenaWelcome" => decode::<ArenaWelcome>(bytes).map(Wire::Welcome),
        "ArenaState" => decode::<ArenaState>(bytes).map(Wire::State),
        other => panic!("unknown kind {other}"),
    }
    .map_err(|e| e.to_string())
}

fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Player => "Player",
        EntityKind::Pickup => "Pickup",
        EntityKind::DroppedPlayer => "DroppedPlayer",
    }
}

/// The JavaScript codec's shape of a value: camelCase fields, an entity's
/// kind as its variant name. The patterns name every field, so adding one
/// fails to compile here.
fn describe(value: &Wire) -> Value {
    match value {
        Wire::Move(Move { dx, dy }) => json!({"dx": dx, "dy": dy}),
        Wire::Welcome(ArenaWelcome {
            world_width,
            world_height,
            view_radius,
            player_speed,
        }) => json!({
            "worldWidth": world_width,
            "worldHeight": world_height,
            "viewRadius": view_radius,
            "playerSpeed": player_speed,
        }),
        Wire::State(ArenaState { players, entities }) => json!({
            "players": players,
            "entities": entities
                .iter()
                .map(|Entity { id, kind, x, y, score }| json!({
                    "id": id, "kind": kind_name(*kind), "x": x, "y": y, "score": score,
                }))
                .collect::<Vec<_>>(),
        }),
    }
}

fn entity(id: u32, kind: EntityKind, x: u16, y: u16, score: u32) -> Entity {
    Entity {
        id,
        kind,
        x,
        y,
        score,
    }
}

/// Every named vector. Names are unique and stable; they show up in the
/// JavaScript test's failure messages.
fn vectors() -> Vec<(String, Wire)> {
    let mut v = Vec::new();
    for (dx, dy) in [(0, 0), (127, -127), (-128, 127), (-1, 1), (1, -1)] {
        v.push((format!("move_{dx}_{dy}"), Wire::Move(Move { dx, dy })));
    }
    v.push((
        "welcome_default".into(),
        Wire::Welcome(ArenaWelcome {
            world_width: 2000,
            world_height: 2000,
            view_radius: 300,
            player_speed: 8,
        }),
    ));
    for (i, edge) in U16_EDGES.into_iter().enumerate() {
        let other = U16_EDGES[U16_EDGES.len() - 1 - i];
        v.push((
            format!("welcome_edges_{edge}"),
            Wire::Welcome(ArenaWelcome {
                world_width: edge,
                world_height: other,
                view_radius: edge,
                player_speed: other,
            }),
        ));
    }
    v.push((
        "state_empty".into(),
        Wire::State(ArenaState {
            players: 0,
            entities: vec![],
        }),
    ));
    v.push((
        "state_every_kind".into(),
        Wire::State(ArenaState {
            players: 3,
            entities: vec![
                entity(1, EntityKind::Player, 1000, 700, 12),
                entity(4, EntityKind::Pickup, 20, 1999, 0),
                entity(2, EntityKind::DroppedPlayer, 0, 0, 3),
            ],
        }),
    ));
    // Each entity field at each of its edges, the others varying too.
    for (i, id) in U32_EDGES.into_iter().enumerate() {
        let xy = U16_EDGES[i % U16_EDGES.len()];
        let kind = [
            EntityKind::Player,
            EntityKind::Pickup,
            EntityKind::DroppedPlayer,
        ][i % 3];
        v.push((
            format!("state_entity_edges_{id}"),
            Wire::State(ArenaState {
                players: xy,
                entities: vec![entity(
                    id,
                    kind,
                    xy,
                    U16_EDGES[U16_EDGES.len() - 1 - i % U16_EDGES.len()],
                    U32_EDGES[U32_EDGES.len() - 1 - i],
                )],
            }),
        ));
    }
    // Entity counts at the edges of the length prefix.
    for count in [250u32, 251] {
        v.push((
            format!("state_{count}_entities"),
            Wire::State(ArenaState {
                players: 65_535,
                entities: (0..count)
                    .map(|i| {
                        let kind = if i % 2 == 0 {
                            EntityKind::Player
                        } else {
                            EntityKind::Pickup
                        };
                        entity(i * 300, kind, (i * 7) as u16, (i * 260) as u16, i)
                    })
                    .collect(),
            }),
        ));
    }
    v
}

/// Bytes every decoder must reject: (name, kind, bytes, why).
fn invalid() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let mut count_bomb = vec![1, 0xfd];
    count_bomb.extend_from_slice(&(1u64 << 56).to_le_bytes());
    vec![
        ("move_empty", "Move", vec![], "no bytes at all"),
        ("move_one_byte", "Move", vec![0x7f], "a Move without dy"),
        (
            "move_trailing_byte",
            "Move",
            vec![1, 2, 3],
            "a Move followed by one more byte",
        ),
        (
            "welcome_truncated",
            "ArenaWelcome",
            vec![0xfb, 0xd0, 0x07, 0xfb, 0xd0, 0x07, 0xfb, 0x2c],
            "an ArenaWelcome that stops inside view_radius",
        ),
        (
            "welcome_u16_with_u32_marker",
            "ArenaWelcome",
            vec![0xfc, 1, 0, 0, 0, 1, 1, 1],
            "world_width (u16) with the FC marker",
        ),
        (
            "state_unknown_kind",
            "ArenaState",
            vec![1, 1, 5, 3, 0, 0, 0],
            "an entity of kind 3",
        ),
        (
            "state_truncated_entity",
            "ArenaState",
            vec![1, 1, 5, 0, 10, 10],
            "an entity without its score",
        ),
        (
            "state_count_bomb",
            "ArenaState",
            count_bomb,
            "a state claiming 2^56 entities",
        ),
        (
            "state_trailing_byte",
            "ArenaState",
            vec![0, 0, 0],
            "an empty state followed by one more byte",
        ),
        (
            "state_id_u32_with_u64_marker",
            "ArenaState",
            vec![1, 1, 0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            "Entity.id (u32) with the FD marker",
        ),
    ]
}

/// The whole file, as it must be committed.
fn render() -> String {
    let mut names = BTreeSet::new();
    let mut out_vectors = Vec::new();
    for (name, value) in vectors() {
        assert!(names.insert(name.clone()), "duplicate vector name {name}");
        let bytes = value.encode();
        assert_eq!(
            decode_as(value.kind(), &bytes).as_ref(),
            Ok(&value),
            "{name} does not round-trip"
        );
        out_vectors.push(json!({
            "name": name, "kind": value.kind(), "hex": hex(&bytes), "value": describe(&value),
        }));
    }
    let mut out_invalid = Vec::new();
    for (name, kind, bytes, why) in invalid() {
        assert!(
            decode_as(kind, &bytes).is_err(),
            "{name} ({why}) was accepted by the Rust decoder"
        );
        assert!(
            names.insert(name.to_owned()),
            "duplicate vector name {name}"
        );
        out_invalid.push(json!({"name": name, "kind": kind, "hex": hex(&bytes), "why": why}));
    }
    let file = json!({
        "about": concat!(
            "Golden vectors of the arena's game bytes (inside the envelope's Game.data, Welcome.game ",
            "and State.data), written by games/arena/tests/golden.rs; do not edit by hand. ",
            "Regenerate with: UPDATE_GOLDEN=1 cargo test -p arena --test golden. ",
            "'vectors' are valid values: 'kind' names the type (Move, ArenaWelcome, ArenaState), ",
            "'hex' is the exact encoding, 'value' the value in the JavaScript codec's shape ",
            "(camelCase fields, an entity's kind as its variant name). ",
            "'invalid' are bytes every decoder of that kind must reject."
        ),
        "vectors": out_vectors,
        "invalid": out_invalid,
    });
    layout(&file)
}

#[test]
fn every_type_and_entity_kind_is_covered() {
    let vectors = vectors();
    let kinds: BTreeSet<&str> = vectors.iter().map(|(_, v)| v.kind()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["Move", "ArenaWelcome", "ArenaState"])
    );
    let entity_kinds: BTreeSet<&str> = vectors
        .iter()
        .filter_map(|(_, v)| match v {
            Wire::State(s) => Some(s.entities.iter().map(|e| kind_name(e.kind))),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        entity_kinds,
        BTreeSet::from(["Player", "Pickup", "DroppedPlayer"])
    );
}

#[test]
fn golden_file_is_up_to_date() {
    check_file(
        &golden_path(),
        &render(),
        "UPDATE_GOLDEN=1 cargo test -p arena --test golden",
        "games/arena/web/codec.js",
    );
}
