//! The arena's simulated player for `loadgen`: it runs in one of sixteen
//! directions at full deflection, turning now and then, and reads every
//! state to keep its own score, which a resume must never lose.

use crate::msg::{ArenaState, ArenaWelcome, EntityKind, Move};
use game_api::{Bot, BotSpec, PlayerId};

/// Sixteen evenly spaced directions of full deflection.
const DIRECTIONS: [(i8, i8); 16] = [
    (127, 0),
    (117, 49),
    (90, 90),
    (49, 117),
    (0, 127),
    (-49, 117),
    (-90, 90),
    (-117, 49),
    (-127, 0),
    (-117, -49),
    (-90, -90),
    (-49, -117),
    (0, -127),
    (49, -117),
    (90, -90),
    (117, -49),
];

/// One in this many moves turns to a new direction: about every two
/// seconds at loadgen's default 20 moves a second.
const TURN_EVERY: u64 = 40;

/// A simulated arena player.
pub struct ArenaBot {
    /// Our player id, once welcomed.
    player: Option<PlayerId>,
    /// The direction we run in.
    direction: (i8, i8),
    /// Our score in the last state that showed us.
    score: Option<u32>,
}

impl ArenaBot {
    /// A bot whose first direction comes from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            player: None,
            direction: DIRECTIONS[(seed % 16) as usize],
            score: None,
        }
    }
}

/// The player's own entity in a state. Ids are unique per kind only: a
/// pickup may carry the player's number.
fn own_score(state: &ArenaState, player: PlayerId) -> Option<u32> {
    state
        .entities
        .iter()
        .find(|e| {
            e.id == player && matches!(e.kind, EntityKind::Player | EntityKind::DroppedPlayer)
        })
        .map(|e| e.score)
}

impl Bot for ArenaBot {
    fn welcome(&mut self, player: PlayerId, _resumed: bool, data: &[u8]) -> Result<(), String> {
        let welcome: ArenaWelcome = game_api::codec::decode(data).map_err(|e| e.to_string())?;
        if welcome.view_radius == 0 {
            return Err("welcome with a view radius of 0".into());
        }
        self.player = Some(player);
        // Known again from the first state of this connection.
        self.score = None;
        Ok(())
    }

    fn state(&mut self, _tick: u32, data: &[u8]) -> Result<(), String> {
        let state: ArenaState = game_api::codec::decode(data).map_err(|e| e.to_string())?;
        let player = self.player.ok_or("a state before the welcome")?;
        if let Some(score) = own_score(&state, player) {
            self.score = Some(score);
        }
        Ok(())
    }

    fn event(&mut self, _data: &[u8]) -> Result<(), String> {
        Err("the arena sends no events".into())
    }

    /// A move each time it is asked, as a player holding a direction.
    fn streams(&self) -> bool {
        true
    }

    fn act(&mut self, random: u64) -> Option<Vec<u8>> {
        if random.is_multiple_of(TURN_EVERY) {
            self.direction = DIRECTIONS[((random / TURN_EVERY) % 16) as usize];
        }
        let (dx, dy) = self.direction;
        Some(game_api::codec::to_vec(&Move { dx, dy }))
    }

    fn progress(&self) -> Option<u64> {
        self.score.map(u64::from)
    }
}

/// How `loadgen --game arena` plays: quick join, normal pace.
pub const SPEC: BotSpec = BotSpec {
    room_type: "arena",
    options: &[],
    make: |seed| Box::new(ArenaBot::new(seed)),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Entity;

    #[test]
    fn the_bot_finds_its_score_and_ignores_pickups_with_its_number() {
        let e = |id, kind, score| Entity {
            id,
            kind,
            x: 1,
            y: 1,
            score,
        };
        let state = ArenaState {
            players: 2,
            entities: vec![
                e(7, EntityKind::Pickup, 0),
                e(7, EntityKind::Player, 5),
                e(8, EntityKind::Player, 1),
            ],
        };
        let mut bot = ArenaBot::new(1);
        let welcome = ArenaWelcome {
            world_width: 100,
            world_height: 100,
            view_radius: 30,
            player_speed: 8,
        };
        assert!(
            bot.state(1, &game_api::codec::to_vec(&state)).is_err(),
            "no welcome yet"
        );
        bot.welcome(7, false, &game_api::codec::to_vec(&welcome))
            .unwrap();
        assert_eq!(bot.progress(), None);
        bot.state(1, &game_api::codec::to_vec(&state)).unwrap();
        assert_eq!(bot.progress(), Some(5));
        assert!(bot.state(2, &[0xff]).is_err(), "garbage is an error");
        assert!(bot.event(&[]).is_err());
        let m: Move = game_api::codec::decode(&bot.act(3).unwrap()).unwrap();
        assert!(DIRECTIONS.contains(&(m.dx, m.dy)));
    }
}
