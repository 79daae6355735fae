//! The games loadgen can play, each through the bot that lives with the
//! game (`--game NAME`). Adding a game to loadgen is one line here: its
//! crate's `BotSpec`.

use game_api::BotSpec;

/// Every game loadgen can play, by the name `--game` takes (which is also
/// the room type it quick-joins).
pub const BOTS: &[BotSpec] = &[arena::bot::SPEC, four::bot::SPEC, place::bot::SPEC];

/// The bot of the game named `name`.
pub fn find(name: &str) -> Option<BotSpec> {
    BOTS.iter().find(|b| b.room_type == name).copied()
}

/// The names `--game` accepts, for help and error messages.
pub fn names() -> Vec<&'static str> {
    BOTS.iter().map(|b| b.room_type).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bot_is_found_by_its_name() {
        for b in BOTS {
            assert_eq!(find(b.room_type).map(|f| f.room_type), Some(b.room_type));
        }
        assert!(find("chess").is_none());
        assert_eq!(names(), ["arena", "four", "place"]);
    }
}
