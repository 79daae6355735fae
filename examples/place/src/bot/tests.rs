//! The bot against the game, driven through the `Game` trait the way a
//! room drives it: joins, welcomes, drops with events held for the resume,
//! states sent only when they change (some of them a tick late, as a busy
//! connection may see them), and no server at all.

use super::*;
use crate::Place;
use game_api::codec::decode_message;
use game_api::{Ctx, Effects, Game, RoomOptions, Target};
use std::collections::BTreeMap;

/// The tick rate of the room type.
const HZ: u16 = 10;

/// One player of the miniature room.
struct Seat {
    bot: PlaceBot,
    /// False while dropped.
    connected: bool,
    /// Events for it while dropped, delivered when it resumes.
    held: Vec<Vec<u8>>,
    /// The last state sent: an unchanged one is not sent again.
    last_state: Option<Vec<u8>>,
    /// Its states arrive a tick late, after the next tick's events.
    lagging: bool,
    /// A state waiting to be delivered late.
    late: Option<(u32, Vec<u8>)>,
    /// The highest progress it reported.
    best: u64,
}

/// A room in miniature: the game and its players' bots.
struct Room {
    place: Place,
    tick: u32,
    seats: BTreeMap<PlayerId, Seat>,
}

impl Room {
    fn new() -> Room {
        let place = <Place as Game>::create(&(), &RoomOptions::default(), 1).unwrap();
        Room {
            place,
            tick: 0,
            seats: BTreeMap::new(),
        }
    }

    /// Runs `f` on the game with fresh effects at the current tick and
    /// delivers the events it sent (or holds them for dropped players).
    fn call(&mut self, f: impl FnOnce(&mut Place, &mut Ctx<'_, PlaceEvent>)) {
        let mut fx = Effects::new(self.tick, HZ);
        f(&mut self.place, &mut Ctx::new(&mut fx));
        for (target, bytes) in &fx.events {
            for (&p, seat) in &mut self.seats {
                let to_p = match *target {
                    Target::All => true,
                    Target::Player(q) => q == p,
                    Target::AllExcept(q) => q != p,
                };
                if !to_p {
                    continue;
                }
                if seat.connected {
                    seat.bot
                        .event(bytes)
                        .unwrap_or_else(|e| panic!("player {p}: {e}"));
                } else {
                    seat.held.push(bytes.to_vec());
                }
            }
        }
    }

    fn welcome(&mut self, p: PlayerId, resumed: bool) {
        let mut welcome = Vec::new();
        self.place.welcome(p, &mut welcome);
        let seat = self.seats.get_mut(&p).unwrap();
        seat.bot.welcome(p, resumed, &welcome).unwrap();
    }

    fn join(&mut self, p: PlayerId, lagging: bool) {
        let seat = Seat {
            bot: PlaceBot::new(),
            connected: true,
            held: Vec::new(),
            last_state: None,
            lagging,
            late: None,
            best: 0,
        };
        self.seats.insert(p, seat);
        self.call(|g, ctx| g.join(p, ctx));
        self.welcome(p, false);
    }

    fn drop_player(&mut self, p: PlayerId) {
        self.call(|g, ctx| g.drop_player(p, ctx));
        let seat = self.seats.get_mut(&p).unwrap();
        (seat.connected, seat.late) = (false, None);
    }

    fn resume(&mut self, p: PlayerId) {
        self.welcome(p, true);
        let seat = self.seats.get_mut(&p).unwrap();
        for bytes in std::mem::take(&mut seat.held) {
            seat.bot
                .event(&bytes)
                .unwrap_or_else(|e| panic!("player {p}: {e}"));
        }
        (seat.connected, seat.last_state) = (true, None);
        self.call(|g, ctx| g.resume(p, ctx));
    }

    fn leave(&mut self, p: PlayerId) {
        self.seats.remove(&p);
        self.call(|g, ctx| g.leave(p, ctx));
    }

    /// One tick: each connected bot may paint, the game steps, and every
    /// changed state goes out.
    fn tick(&mut self, random: &mut u64) {
        self.tick += 1;
        let messages: Vec<(PlayerId, PlaceMsg)> = self
            .seats
            .iter_mut()
            .filter(|(_, s)| s.connected)
            .filter_map(|(&p, s)| s.bot.act(splitmix(random)).map(|m| (p, m)))
            .map(|(p, m)| (p, decode_message(&m).expect("the bot's bytes decode")))
            .collect();
        self.call(|g, ctx| g.step(&messages, ctx));
        self.place.prepare_states();
        for (&p, seat) in &mut self.seats {
            if let Some((tick, state)) = seat.late.take() {
                seat.receive(p, tick, &state);
            }
            let mut state = Vec::new();
            self.place.state(p, &mut state);
            if !seat.connected || seat.last_state.as_ref() == Some(&state) {
                continue;
            }
            seat.last_state = Some(state.clone());
            if seat.lagging {
                seat.late = Some((self.tick, state));
            } else {
                seat.receive(p, self.tick, &state);
            }
        }
    }
}

impl Seat {
    /// Hands player `p`'s bot a state; its progress must never go down.
    fn receive(&mut self, p: PlayerId, tick: u32, state: &[u8]) {
        self.bot
            .state(tick, state)
            .unwrap_or_else(|e| panic!("player {p}: {e}"));
        let progress = self.bot.progress().expect("a state says our count");
        assert!(progress >= self.best, "player {p} lost pixels");
        self.best = progress;
    }
}

/// SplitMix64, for the random numbers loadgen would pass.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn bots_paint_keep_the_canvas_and_agree_with_the_game() {
    let mut room = Room::new();
    let mut random = 42;
    for p in 1..=6 {
        room.join(p, p % 3 == 0);
    }
    for t in 0..400u32 {
        // Players 1 to 5 drop in turn, long enough for paints to be held.
        let turn = 1 + t / 40 % 5;
        match t {
            // Late joiners find paints made before them.
            50 => room.join(7, false),
            60 => room.join(8, true),
            200 => room.leave(6),
            _ if t % 40 == 15 => room.drop_player(turn),
            _ if t % 40 == 35 => room.resume(turn),
            _ => {}
        }
        room.tick(&mut random);
    }
    // Everyone is connected again; the late states arrive.
    for (&p, seat) in &mut room.seats {
        if let Some((tick, state)) = seat.late.take() {
            seat.receive(p, tick, &state);
        }
    }
    let place = &room.place;
    assert!(place.painted > 200, "the bots painted: {}", place.painted);
    for (p, seat) in &room.seats {
        assert_eq!(seat.bot.heard, place.painted, "player {p}");
        assert_eq!(seat.bot.canvas.as_ref(), Some(&place.canvas), "player {p}");
        assert_eq!(seat.best, u64::from(place.painters[p].pixels), "player {p}");
        assert!(seat.best > 5, "player {p} painted {}", seat.best);
    }
}

/// A welcomed bot on a 16 × 16 canvas after 3 paints.
fn welcomed() -> PlaceBot {
    let mut bot = PlaceBot::new();
    let welcome = PlaceWelcome {
        size: 16,
        painted: 3,
    };
    bot.welcome(1, false, &to_vec(&welcome)).unwrap();
    bot
}

fn state(painted: u32, canvas: Vec<u8>, ready_at: Option<u32>) -> Vec<u8> {
    to_vec(&PlaceState {
        painted,
        canvas,
        pixels: 0,
        ready_at,
    })
}

fn painted(x: u8, y: u8, color: u8) -> Vec<u8> {
    to_vec(&PlaceEvent::Painted { x, y, color, by: 2 })
}

#[test]
fn the_bot_paints_once_per_ready_state() {
    let mut bot = welcomed();
    assert_eq!(bot.act(1), None, "no state yet");
    bot.state(1, &state(3, vec![0; 256], None)).unwrap();
    let paint: PlaceMsg = decode_message(&bot.act(0x1234_5678).unwrap()).unwrap();
    let PlaceMsg::Paint { x, y, color } = paint;
    assert!(x < 16 && y < 16 && color < COLORS);
    assert_eq!(bot.act(5), None, "one paint until a state shows it");
    bot.state(2, &state(3, vec![0; 256], None)).unwrap();
    assert_eq!(bot.act(5), None, "not applied yet");
    bot.state(3, &state(3, vec![0; 256], Some(13))).unwrap();
    assert_eq!(bot.act(5), None, "cooling down");
    bot.state(13, &state(3, vec![0; 256], None)).unwrap();
    assert!(bot.act(5).is_some());
    // A resume forgets readiness until its first state.
    bot.welcome(
        1,
        true,
        &to_vec(&PlaceWelcome {
            size: 16,
            painted: 3,
        }),
    )
    .unwrap();
    assert_eq!((bot.act(5), bot.progress()), (None, None));
}

#[test]
fn the_bot_checks_the_canvas_against_the_events() {
    let mut bot = welcomed();
    // Events before the first state are counted; the state that covers
    // them becomes the bot's canvas.
    bot.event(&painted(1, 0, 2)).unwrap();
    let mut canvas = vec![0; 256];
    canvas[1] = 2;
    assert!(
        bot.state(1, &state(3, vec![0; 256], None)).is_ok(),
        "an older state"
    );
    assert_eq!(bot.canvas, None);
    bot.state(2, &state(4, canvas.clone(), None)).unwrap();
    bot.event(&painted(15, 15, 7)).unwrap();
    canvas[255] = 7;
    bot.state(3, &state(5, canvas.clone(), None)).unwrap();
    // A state that disagrees with the events is an error.
    let mut wrong = canvas.clone();
    wrong[17] = 1;
    let err = bot.state(4, &state(5, wrong, None)).unwrap_err();
    assert!(err.contains("pixel Some(17)"), "{err}");
    // So is a state ahead of the events: one was lost.
    let err = bot.state(4, &state(6, canvas, None)).unwrap_err();
    assert!(err.contains("event was lost"), "{err}");
}

#[test]
fn malformed_bytes_and_refusals_are_errors() {
    let mut bot = PlaceBot::new();
    assert!(
        bot.state(1, &state(0, vec![0; 256], None)).is_err(),
        "no welcome yet"
    );
    assert!(bot.event(&painted(0, 0, 0)).is_err(), "no welcome yet");
    assert!(bot.welcome(1, false, &[16]).is_err(), "truncated");
    assert!(
        bot.welcome(
            1,
            true,
            &to_vec(&PlaceWelcome {
                size: 16,
                painted: 0
            })
        )
        .is_err()
    );
    let mut bot = welcomed();
    assert!(
        bot.state(1, &state(3, vec![0; 255], None)).is_err(),
        "short canvas"
    );
    assert!(
        bot.state(1, &state(3, vec![COLORS; 256], None)).is_err(),
        "bad colour"
    );
    assert!(bot.state(1, &[0xff]).is_err());
    assert!(bot.event(&painted(16, 0, 1)).is_err(), "off the canvas");
    assert!(bot.event(&painted(0, 0, COLORS)).is_err(), "bad colour");
    let refused = to_vec(&PlaceEvent::Rejected {
        reason: "too early".into(),
    });
    assert!(bot.event(&refused).unwrap_err().contains("too early"));
    assert!(bot.event(&[2]).is_err());
    let other = to_vec(&PlaceWelcome {
        size: 32,
        painted: 3,
    });
    assert!(
        bot.welcome(1, true, &other).is_err(),
        "a resume into another canvas"
    );
}

#[test]
fn the_spec_names_the_room_type() {
    assert_eq!((SPEC.room_type, SPEC.options.len()), ("place", 0));
    assert_eq!(
        (SPEC.make)(1).act(1),
        None,
        "nothing to do before a welcome"
    );
}
