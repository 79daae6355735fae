//! The choices of routing, apart from Redis and sockets: which open room
//! of another node a quick join fills, which node a new room goes to, and
//! how players on their way (tickets sent, not yet in a node's record)
//! count towards both.

use super::NodeRecord;
use crate::room::RoomId;
use crate::room::lobby::RoomSummary;

/// Players on their way, by tickets this node sent: per node and per
/// room, counting the tickets sent after the target's record was written,
/// and those sent up to [`IN_FLIGHT_MS`] before it (their players may not
/// have arrived when it was written). A player counted twice for a moment
/// makes a room look full a little early, and a new room opens on the
/// least-loaded node; a player not counted would overfill the room, and
/// the overflow would open rooms on that node instead.
pub(super) struct Pending(pub(super) Vec<(u64, String, Option<RoomId>)>);

impl Pending {
    fn counts(&self, node: &NodeRecord, at: u64) -> bool {
        at.saturating_add(IN_FLIGHT_MS) >= node.written_unix_ms
    }

    pub(super) fn to_node(&self, node: &NodeRecord) -> u64 {
        self.0
            .iter()
            .filter(|(at, n, _)| *n == node.id && self.counts(node, *at))
            .count() as u64
    }

    pub(super) fn to_room(&self, node: &NodeRecord, room: RoomId) -> u32 {
        let n = self
            .0
            .iter()
            .filter(|(at, n, r)| *n == node.id && *r == Some(room) && self.counts(node, *at))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// How long a redirected player may take from its ticket to its seat, for
/// [`Pending`]: a redirect is a new connection, 1 to 2 ms on an idle
/// machine and hundreds under load.
const IN_FLIGHT_MS: u64 = 500;

/// What a quick join asks for.
pub(super) struct Wanted<'a> {
    pub(super) room_type: &'a str,
    pub(super) options: &'a [(String, String)],
    /// The type's filter keys: the options a room must match.
    pub(super) filter: &'a [String],
}

/// The open room of another node that a quick join should fill: public,
/// unlocked, of the type, matching on the filter keys, with a seat even
/// counting the players on their way, on a node that is not draining; the
/// fullest such room (rooms fill before new ones open), on a tie the one
/// of the lower node id.
pub(super) fn fullest_open_room<'a>(
    nodes: &'a [NodeRecord],
    pending: &Pending,
    me: &str,
    wanted: &Wanted<'_>,
) -> Option<(&'a NodeRecord, &'a RoomSummary)> {
    let seated =
        |n: &NodeRecord, r: &RoomSummary| r.players.saturating_add(pending.to_room(n, r.id));
    let matches = |n: &NodeRecord, r: &RoomSummary| {
        r.room_type == wanted.room_type
            && !r.private
            && !r.locked
            && seated(n, r) < u32::from(r.capacity)
            && wanted
                .filter
                .iter()
                .all(|key| option(&r.options, key) == option(wanted.options, key))
    };
    nodes
        .iter()
        .filter(|n| n.id != me && !n.draining)
        .flat_map(|n| {
            n.rooms
                .iter()
                .filter(move |r| matches(n, r))
                .map(move |r| (n, r))
        })
        .max_by_key(|(n, r)| (seated(n, r), std::cmp::Reverse(&n.id)))
}

/// The node a new room goes to: the least loaded (players, counting those
/// on their way) of those that take rooms; on a tie this node (`me`, no
/// redirect to pay), then the one with fewer rooms, then the lower id.
pub(super) fn least_loaded<'a>(
    nodes: &'a [NodeRecord],
    pending: &Pending,
    me: &str,
) -> Option<&'a NodeRecord> {
    nodes
        .iter()
        .filter(|n| !n.draining && n.rooms_left > 0)
        .min_by_key(|n| {
            (
                n.players() + pending.to_node(n),
                n.id != me,
                n.rooms.len(),
                &n.id,
            )
        })
}

/// The value of `key` among `options`.
fn option<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: RoomId, players: u32, options: &[(&str, &str)]) -> RoomSummary {
        RoomSummary {
            id,
            room_type: "arena".into(),
            private: false,
            locked: false,
            players,
            capacity: 10,
            invite_code: None,
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            metadata: Default::default(),
        }
    }

    fn node(id: &str, rooms: Vec<RoomSummary>) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            url: format!("ws://{id}/ws"),
            draining: false,
            rooms_left: 100,
            room_ids_to: 0,
            rooms,
            written_unix_ms: 10_000,
        }
    }

    /// Tickets sent at `at` ms to `node` (and `room`).
    fn sent(tickets: &[(u64, &str, Option<RoomId>)]) -> Pending {
        Pending(
            tickets
                .iter()
                .map(|&(at, n, r)| (at, n.to_owned(), r))
                .collect(),
        )
    }

    const NONE: Pending = Pending(Vec::new());

    fn quick<'a>(options: &'a [(String, String)], filter: &'a [String]) -> Wanted<'a> {
        Wanted {
            room_type: "arena",
            options,
            filter,
        }
    }

    #[test]
    fn quick_join_fills_the_fullest_open_matching_room_of_another_live_node() {
        let nodes = vec![
            node("me", vec![room(1, 9, &[])]),
            node(
                "b",
                vec![room(2, 3, &[]), room(3, 10, &[]), room(4, 7, &[])],
            ),
            node("c", vec![room(5, 5, &[])]),
        ];
        let pick = |nodes: &[NodeRecord], pending: &Pending| {
            fullest_open_room(nodes, pending, "me", &quick(&[], &[]))
                .map(|(n, r)| (n.id.clone(), r.id))
        };
        // Never this node's own (the lobby serves those), never a full one.
        assert_eq!(pick(&nodes, &NONE), Some(("b".into(), 4)));
        // Private, locked, another type, a draining node: not joined.
        for change in 0..4 {
            let mut nodes = nodes.clone();
            let r = &mut nodes[1].rooms[2];
            match change {
                0 => r.private = true,
                1 => r.locked = true,
                2 => r.room_type = "four".into(),
                _ => nodes[1].draining = true,
            }
            // Room 4 out: the fullest left is c's (5 players, b's other
            // has 3).
            assert_eq!(
                pick(&nodes, &NONE),
                Some(("c".into(), 5)),
                "change {change}"
            );
        }
        // No open room anywhere else: none.
        assert_eq!(pick(&nodes[..1], &NONE), None);
    }

    #[test]
    fn players_on_their_way_fill_a_room_before_its_record_says_so() {
        let nodes = vec![
            node("me", vec![]),
            node("b", vec![room(4, 7, &[]), room(2, 3, &[])]),
        ];
        let pick = |pending: &Pending| {
            fullest_open_room(&nodes, pending, "me", &quick(&[], &[])).map(|(_, r)| r.id)
        };
        // Two tickets into room 4 after its record: 9 of 10, the fullest.
        let two = sent(&[(10_001, "b", Some(4)), (10_002, "b", Some(4))]);
        assert_eq!(pick(&two), Some(4));
        // A third: full, so the next fullest.
        let three = sent(&[
            (10_001, "b", Some(4)),
            (10_002, "b", Some(4)),
            (10_003, "b", Some(4)),
        ]);
        assert_eq!(pick(&three), Some(2));
        // Tickets long before the record are in it already; those just
        // before it may not be (their players still on the way).
        let old = sent(&[
            (1_000, "b", Some(4)),
            (2_000, "b", Some(4)),
            (3_000, "b", Some(4)),
        ]);
        assert_eq!(pick(&old), Some(4));
        let just_before = 10_000 - IN_FLIGHT_MS;
        let recent = sent(&[
            (just_before, "b", Some(4)),
            (9_900, "b", Some(4)),
            (9_999, "b", Some(4)),
        ]);
        assert_eq!(pick(&recent), Some(2));
    }

    #[test]
    fn quick_join_matches_the_filter_keys_only() {
        let nodes = vec![
            node("me", vec![]),
            node("b", vec![room(2, 5, &[("mode", "ctf"), ("map", "x")])]),
            node("c", vec![room(3, 1, &[("mode", "dm"), ("map", "x")])]),
        ];
        let filter = vec!["mode".to_owned()];
        let options = vec![
            ("mode".to_owned(), "dm".to_owned()),
            ("map".to_owned(), "y".to_owned()),
        ];
        let picked = fullest_open_room(&nodes, &NONE, "me", &quick(&options, &filter));
        assert_eq!(
            picked.map(|(_, r)| r.id),
            Some(3),
            "mode matches; map is no filter key"
        );
        let options = vec![("mode".to_owned(), "race".to_owned())];
        assert!(fullest_open_room(&nodes, &NONE, "me", &quick(&options, &filter)).is_none());
    }

    #[test]
    fn new_rooms_go_to_the_least_loaded_node_that_takes_rooms() {
        let pick = |nodes: &[NodeRecord], pending: &Pending| {
            least_loaded(nodes, pending, "me").map(|n| n.id.clone())
        };
        let nodes = vec![
            node("me", vec![room(1, 6, &[])]),
            node("b", vec![room(2, 4, &[])]),
            node("c", vec![room(3, 5, &[])]),
        ];
        assert_eq!(pick(&nodes, &NONE).as_deref(), Some("b"));
        // Tickets sent to b since its record count: 4 + 2 > 5.
        let to_b = sent(&[(10_500, "b", None), (10_600, "b", None)]);
        assert_eq!(pick(&nodes, &to_b).as_deref(), Some("c"));
        // A tie goes to this node, then to fewer rooms, then to the lower id.
        let tie = vec![
            node("me", vec![room(1, 4, &[])]),
            node("b", vec![room(2, 4, &[])]),
        ];
        assert_eq!(pick(&tie, &NONE).as_deref(), Some("me"));
        let tie = vec![
            node("me", vec![room(1, 5, &[])]),
            node("c", vec![room(2, 2, &[]), room(3, 2, &[])]),
            node("d", vec![room(4, 4, &[])]),
            node("b", vec![room(5, 4, &[])]),
        ];
        assert_eq!(pick(&tie, &NONE).as_deref(), Some("b"));
        // Draining nodes and nodes at their room limit take none.
        let mut nodes = nodes;
        nodes[1].draining = true;
        nodes[2].rooms_left = 0;
        assert_eq!(pick(&nodes, &NONE).as_deref(), Some("me"));
        nodes[0].rooms_left = 0;
        assert_eq!(pick(&nodes, &NONE), None);
    }
}
