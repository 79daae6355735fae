//! The rules, tested through the `Game` trait as the room calls it: each
//! call gets fresh `Effects`, and the test looks at what the game asked
//! for. No server, no sockets, no clock: a tick is a number we pass in.

use super::*;
use game_api::codec::{decode, to_vec};
use game_api::{Effects, Target};

/// The room's tick rate, so that the cooldown is [`COOL`] ticks.
const HZ: u16 = TICK_HZ;

/// The cooldown at [`HZ`].
const COOL: u32 = 10;

fn options(pairs: &[(&str, &str)]) -> RoomOptions {
    RoomOptions::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    )
}

/// Every event of `fx`, decoded, with its target.
fn events(fx: &Effects) -> Vec<(Target, PlaceEvent)> {
    fx.events
        .iter()
        .map(|(t, bytes)| (*t, decode(bytes).expect("an event decodes")))
        .collect()
}

fn painted(x: u8, y: u8, color: u8, by: PlayerId) -> (Target, PlaceEvent) {
    let e = PlaceEvent::Painted { x, y, color, by };
    (Target::All, e)
}

fn paint(x: u8, y: u8, color: u8) -> PlaceMsg {
    PlaceMsg::Paint { x, y, color }
}

/// A game with no room around it.
struct Canvas {
    place: Place,
}

impl Canvas {
    /// A room of `size` made as the room makes it, with players 1 to
    /// `players` joined at tick 0.
    fn new(size: u8, players: PlayerId) -> Canvas {
        let size = size.to_string();
        let place = <Place as Game>::create(&(), &options(&[("size", &size)]), 7).unwrap();
        let mut c = Canvas { place };
        for p in 1..=players {
            c.call(0, |g, ctx| g.join(p, ctx));
        }
        c
    }

    fn call(&mut self, tick: u32, f: impl FnOnce(&mut Place, &mut Ctx<'_, PlaceEvent>)) -> Effects {
        let mut fx = Effects::new(tick, HZ);
        f(&mut self.place, &mut Ctx::new(&mut fx));
        fx
    }

    fn step(&mut self, tick: u32, messages: &[(PlayerId, PlaceMsg)]) -> Effects {
        self.call(tick, |g, ctx| g.step(messages, ctx))
    }

    /// The state bytes of `player` as the room builds them.
    fn state(&mut self, player: PlayerId) -> Vec<u8> {
        self.place.prepare_states();
        let mut out = Vec::new();
        self.place.state(player, &mut out);
        out
    }
}

#[test]
fn options_choose_the_size_and_refuse_anything_else() {
    let create = |pairs: &[(&str, &str)]| <Place as Game>::create(&(), &options(pairs), 1);
    assert_eq!(create(&[]).unwrap().size, 32);
    for size in SIZES {
        let s = size.to_string();
        let place = create(&[("size", &s)]).unwrap();
        assert_eq!(place.canvas.len(), usize::from(size) * usize::from(size));
    }
    for bad in ["0", "33", "128", "256", "big", ""] {
        assert!(create(&[("size", bad)]).is_err(), "size={bad}");
    }
    let err = create(&[("colour", "red")]).err().unwrap();
    assert!(err.contains("unknown option"), "{err}");
}

#[test]
fn a_paint_is_broadcast_and_the_cooldown_counts_ticks() {
    let mut c = Canvas::new(16, 2);
    let fx = c.step(5, &[(1, paint(3, 4, 2))]);
    assert_eq!(events(&fx), [painted(3, 4, 2, 1)]);
    assert_eq!(c.place.canvas[4 * 16 + 3], 2);
    // Too early until COOL ticks have passed, and said to that player only.
    for tick in 6..5 + COOL {
        let fx = c.step(tick, &[(1, paint(0, 0, 1))]);
        match &events(&fx)[..] {
            [(Target::Player(1), PlaceEvent::Rejected { reason })] => {
                let wait = format!("wait {} more ticks", 5 + COOL - tick);
                assert!(reason.contains(&wait), "{reason:?} at {tick}");
            }
            other => panic!("tick {tick}: {other:?}"),
        }
    }
    let fx = c.step(5 + COOL, &[(1, paint(0, 0, 1)), (2, paint(0, 0, 2))]);
    assert_eq!(events(&fx), [painted(0, 0, 1, 1), painted(0, 0, 2, 2)]);
    assert_eq!(c.place.painters[&1].pixels, 2);
    assert_eq!(c.place.painters[&2].pixels, 1);
}

#[test]
fn bad_paints_are_rejected_and_change_nothing() {
    let mut c = Canvas::new(32, 2);
    c.step(1, &[]);
    let before = c.place.save();
    for (msg, why) in [
        (paint(32, 0, 1), "off the 32 × 32"),
        (paint(0, 32, 1), "off the"),
        (paint(255, 255, 1), "(255, 255)"),
        (paint(0, 0, 8), "no colour 8"),
        (paint(0, 0, 255), "no colour 255"),
    ] {
        let fx = c.step(1, &[(2, msg)]);
        match &events(&fx)[..] {
            [(Target::Player(2), PlaceEvent::Rejected { reason })] => {
                assert!(reason.contains(why), "{reason:?} should say {why:?}");
            }
            other => panic!("{msg:?}: {other:?}"),
        }
        assert!(fx.metadata.is_none() && fx.kicks.is_empty());
        assert_eq!(c.place.save(), before, "{msg:?} changed the game");
    }
    // A stranger's paint (a message racing its leave) says nothing.
    assert!(c.step(1, &[(9, paint(0, 0, 1))]).is_empty());
    // A bad paint does not start the cooldown.
    assert_eq!(
        events(&c.step(1, &[(2, paint(0, 0, 1))])),
        [painted(0, 0, 1, 2)]
    );
}

#[test]
fn paints_of_one_step_apply_in_order() {
    let mut c = Canvas::new(16, 3);
    let fx = c.step(
        1,
        &[
            (1, paint(2, 2, 1)),
            (2, paint(2, 2, 2)),
            (3, paint(0, 0, 3)),
        ],
    );
    assert_eq!(
        events(&fx),
        [
            painted(2, 2, 1, 1),
            painted(2, 2, 2, 2),
            painted(0, 0, 3, 3)
        ]
    );
    assert_eq!(c.place.canvas[2 * 16 + 2], 2, "the last paint wins");
    assert_eq!(c.place.painted, 3);
}

#[test]
fn the_state_is_the_shared_canvas_plus_the_players_own() {
    let mut c = Canvas::new(16, 2);
    c.step(3, &[(1, paint(1, 0, 5))]);
    let one = c.state(1);
    let two = c.state(2);
    let view = c.place.view(1).unwrap();
    assert_eq!(one, to_vec(&view), "the hand-built bytes are the bincode");
    assert_eq!(decode::<PlaceState>(&two), Ok(c.place.view(2).unwrap()));
    assert_eq!((view.painted, view.canvas[1], view.pixels), (1, 5, 1));
    assert_eq!(view.ready_at, Some(3 + COOL));
    assert_eq!(c.place.view(2).unwrap().ready_at, None);
    // Both states share the canvas bytes; only the tail differs.
    let shared = 1 + 3 + 256;
    assert_eq!(one[..shared], two[..shared]);
    // Unchanged while nothing happens (the room skips those), changed at
    // the tick the cooldown ends, so the player learns it may paint.
    c.step(4, &[]);
    assert_eq!(c.state(1), one);
    c.step(2 + COOL, &[]);
    assert_eq!(c.state(1), one);
    c.step(3 + COOL, &[]);
    assert_eq!(c.place.view(1).unwrap().ready_at, None);
    assert_eq!(
        c.state(1),
        two.iter()
            .copied()
            .take(shared)
            .chain([1, 0])
            .collect::<Vec<_>>()
    );
    assert!(c.state(9).is_empty(), "no state for a stranger");
}

#[test]
fn metadata_follows_the_paint_count() {
    let mut c = Canvas::new(64, 0);
    let fx = c.call(0, |g, ctx| g.join(1, ctx));
    let want =
        |n: &str| Metadata::from([("painted".into(), n.into()), ("size".into(), "64".into())]);
    assert_eq!(fx.metadata, Some(want("0")));
    assert!(
        c.call(0, |g, ctx| g.join(2, ctx)).metadata.is_none(),
        "unchanged"
    );
    assert!(c.step(1, &[]).metadata.is_none());
    assert_eq!(
        c.step(2, &[(1, paint(0, 0, 1)), (2, paint(1, 0, 1))])
            .metadata,
        Some(want("2"))
    );
    assert!(
        c.step(3, &[(1, paint(0, 0, 1))]).metadata.is_none(),
        "rejected"
    );
}

#[test]
fn players_come_and_go() {
    let mut c = Canvas::new(16, 1);
    c.step(1, &[(1, paint(0, 0, 1))]);
    // A second join of the same player changes nothing.
    c.call(2, |g, ctx| g.join(1, ctx));
    assert_eq!(c.place.painters[&1].pixels, 1);
    // Drop and resume are the defaults: a dropped painter keeps its place.
    c.call(2, |g, ctx| g.drop_player(1, ctx));
    c.call(2, |g, ctx| g.resume(1, ctx));
    assert_eq!(c.place.view(1).unwrap().pixels, 1);
    let fx = c.call(3, |g, ctx| g.leave(1, ctx));
    assert!(fx.is_empty() && c.place.view(1).is_none());
    assert_eq!(c.place.canvas[0], 1, "the paint stays");
    assert!(c.call(3, |g, ctx| g.leave(1, ctx)).is_empty());
}

/// One call the room makes, for scripts run on two games at once.
#[derive(Clone, Debug)]
enum Call {
    Join(PlayerId),
    Leave(PlayerId),
    Step(Vec<(PlayerId, PlaceMsg)>),
}

/// A script of joins, paints (some rejected), a leave and a late joiner,
/// one call a tick.
fn script() -> Vec<Call> {
    let p = |player, x, y, color| Call::Step(vec![(player, paint(x, y, color))]);
    let mut calls = vec![Call::Join(1), Call::Join(2), p(1, 0, 0, 1), p(2, 1, 0, 2)];
    calls.extend((0..12u8).map(|i| p(1 + PlayerId::from(i % 2), i, i, i % 8)));
    calls.extend([p(1, 40, 0, 1), Call::Leave(2), Call::Join(3), p(3, 5, 5, 5)]);
    calls.extend((0..12u8).map(|i| p(1 + 2 * PlayerId::from(i % 2), 15 - i, 0, 7)));
    calls
}

/// What the room sees of one call: its events (encoded), its metadata,
/// and the states of players 1 to 3 that follow it.
type Seen = (Vec<(Target, Vec<u8>)>, Option<Metadata>, Vec<Vec<u8>>);

/// Makes `call` at `tick`; returns what the room would see of it.
fn apply(place: &mut Place, tick: u32, call: &Call) -> Seen {
    let mut fx = Effects::new(tick, HZ);
    let ctx = &mut Ctx::new(&mut fx);
    match call {
        Call::Join(p) => place.join(*p, ctx),
        Call::Leave(p) => place.leave(*p, ctx),
        Call::Step(messages) => place.step(messages, ctx),
    }
    place.prepare_states();
    let states = (1..=3)
        .map(|p| {
            let mut out = Vec::new();
            place.state(p, &mut out);
            out
        })
        .collect();
    let events = fx.events.iter().map(|(t, b)| (*t, b.to_vec())).collect();
    (events, fx.metadata, states)
}

#[test]
fn a_restored_game_continues_exactly_as_the_saved_one() {
    let script = script();
    for split in 0..=script.len() {
        let mut original = Canvas::new(16, 0).place;
        for (tick, call) in script[..split].iter().enumerate() {
            apply(&mut original, tick as u32, call);
        }
        let saved = original.save();
        let mut restored = <Place as Game>::restore(&(), &options(&[("size", "16")]), &saved)
            .unwrap_or_else(|e| panic!("after {split} calls: {e}"));
        assert_eq!(restored.save(), saved);
        for (tick, call) in script.iter().enumerate().skip(split) {
            let listed = restored.listed.is_some();
            let (events, metadata, states) = apply(&mut restored, tick as u32, call);
            let want = apply(&mut original, tick as u32, call);
            assert_eq!(
                events, want.0,
                "{call:?} at {tick} after a restore at {split}"
            );
            assert_eq!(
                states, want.2,
                "{call:?} at {tick} after a restore at {split}"
            );
            // A restored room publishes its count at its first chance,
            // then as the original does.
            if listed {
                assert_eq!(metadata, want.1, "{call:?} at {tick}");
            }
        }
        assert_eq!(restored.save(), original.save());
    }
    // The script did paint, reject and let players come and go.
    let mut place = Canvas::new(16, 0).place;
    let rejected: usize = script
        .iter()
        .enumerate()
        .flat_map(|(t, call)| apply(&mut place, t as u32, call).0)
        .filter(|(t, _)| matches!(t, Target::Player(_)))
        .count();
    assert!(
        rejected > 5 && place.painted > 5,
        "{rejected} {}",
        place.painted
    );
}

#[test]
fn restore_refuses_every_truncation_and_survives_bit_flips() {
    let mut place = Canvas::new(16, 0).place;
    for (tick, call) in script().iter().enumerate() {
        apply(&mut place, tick as u32, call);
    }
    let saved = place.save();
    for len in 0..saved.len() {
        assert!(
            Place::restore(&saved[..len]).is_err(),
            "{len} of {} bytes",
            saved.len()
        );
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert!(Place::restore(&longer).is_err(), "a trailing byte");
    let mut accepted = 0;
    for i in 0..saved.len() {
        for bit in 0..8 {
            let mut flipped = saved.clone();
            flipped[i] ^= 1 << bit;
            let Ok(mut restored) = Place::restore(&flipped) else {
                continue;
            };
            accepted += 1;
            // Whatever a flip let through must still play by the rules.
            for (tick, call) in script().iter().enumerate() {
                apply(&mut restored, 1000 + tick as u32, call);
                restored
                    .check()
                    .unwrap_or_else(|e| panic!("byte {i} bit {bit}: {e}"));
            }
        }
    }
    // Some flips make another valid game (a colour, a count), so the loop
    // above did play after a restore.
    assert!(accepted > 0);
}

#[test]
fn restore_refuses_games_that_break_the_rules() {
    fn check(break_it: fn(&mut Place), why: &str) {
        let mut c = Canvas::new(16, 2);
        c.step(1, &[(1, paint(0, 0, 3)), (2, paint(1, 0, 3))]);
        assert_eq!(
            Place::restore(&c.place.save()).map(|p| p.save()),
            Ok(c.place.save())
        );
        break_it(&mut c.place);
        let err = Place::restore(&c.place.save()).expect_err(why);
        assert!(err.contains(why), "{err:?} should say {why:?}");
    }
    check(|p| p.size = 17, "size 17");
    check(|p| p.canvas.push(0), "257 saved pixels");
    check(|p| p.canvas[5] = COLORS, "outside the palette");
    check(|p| p.painted = 1, "1 saved paints");
    check(
        |p| p.painters.get_mut(&1).unwrap().pixels = 5,
        "2 saved paints",
    );
    check(
        |p| p.painters.get_mut(&1).unwrap().ready_at = u32::MAX,
        "cooldown",
    );
    assert!(Place::restore(&[]).unwrap_err().contains("empty"));
    let mut other = Place::new(16).save();
    other[0] = 2;
    assert!(Place::restore(&other).unwrap_err().contains("format 2"));
    // The room's options must match the saved canvas.
    let saved = Place::new(16).save();
    let restore = |pairs: &[(&str, &str)]| <Place as Game>::restore(&(), &options(pairs), &saved);
    assert!(restore(&[("size", "16")]).is_ok());
    assert!(restore(&[]).unwrap_err().contains("not the size"));
    assert!(restore(&[("size", "99")]).is_err());
}

#[test]
fn the_room_type_is_registered_as_documented() {
    let kind = room_type();
    assert_eq!(kind.name(), "place");
    let s = kind.settings();
    assert_eq!(
        (s.capacity, s.tick_hz, s.linger),
        (50, Some(10), Duration::from_secs(60))
    );
    assert!(s.skip_unchanged_states);
    assert_eq!(s.filter_by, ["size"]);
    assert_eq!(kind.page_path(), Some("/place/"));
    let paths: Vec<&str> = kind.assets().iter().map(|a| a.path).collect();
    assert_eq!(
        paths,
        ["/place/index.html", "/place/game.js", "/place/codec.js"]
    );
    assert_eq!(cooldown_ticks(TICK_HZ), COOL);
    assert_eq!(
        (cooldown_ticks(1), cooldown_ticks(30), cooldown_ticks(240)),
        (1, 30, 240)
    );
    // The event backlog reasoning of CAPACITY: a full room's paints over
    // the server's default resume grace stay within its backlog bound.
    assert!(u32::from(CAPACITY) * 15 * TICK_HZ as u32 / COOL < 1024);
    assert!(kind.create(&options(&[("size", "64")]), 1, 8).is_ok());
    assert!(kind.create(&options(&[("size", "8")]), 1, 8).is_err());
}
