//! The state file: what a planned restart carries over to the next process.
//!
//! With `--state-file`, a graceful shutdown (SIGTERM, SIGINT) closes every
//! client with 1012 (`service_restart`, retry policy *Resume*); each room,
//! as it stops, hands its state to the lobby; once every task has finished,
//! `Server::run` writes the lobby's counters and all rooms here. The next
//! start (`ServerBuilder::bind`) reads the file, recreates each room with
//! its game and its sessions, every player dropped with a full grace period from the
//! start, and renames the file `<name>.restored` so that a later crash
//! cannot restore the same sessions a second time. A file that cannot be
//! decoded is renamed `<name>.corrupt` and the server starts empty: a game
//! server must not refuse to start over a bad state file.
//!
//! This is a hand-over at a planned stop, not a journal: nothing is written
//! while the server runs, so a crash (SIGKILL, power loss) loses the
//! sessions of that process, and clients get 4002 and join anew.
//!
//! # Format (version [`FORMAT_VERSION`])
//!
//! ```text
//! magic    8 bytes   "GAMESTAT"
//! version  4 bytes   u32, little endian
//! body     the rest: a SavedState in bincode 2's standard configuration
//!          (little endian, variable-length integers), in field order:
//!   saved_at_unix_ms  u64
//!   next_player       u32      lobby counter: the next player id to hand out
//!   next_room         u32      lobby counter: the next room id
//!   rooms             Vec<RoomState>
//!     id              u32
//!     room_type       String   the registered type's name
//!     options         Vec<(String, String)>  the options it was created with
//!     seed            u64      the seed the room's game was created with
//!     tick            u32      the room's tick, the number in states
//!     props           RoomProps
//!       capacity      u16
//!       locked        bool
//!       private       bool
//!       metadata      Vec<(String, String)>  (a map, in key order)
//!       invite_code   Option<String>
//!     game            Vec<u8>  the game's own saved form (`Game::save`)
//!     sessions        Vec<SessionState>
//!       player        u32
//!       token         16 bytes the resume token
//!       ack           u32      highest game message sequence applied
//!       connected     bool     whether a connection was attached at the stop
//!       events        SavedEvents
//!         last_seq    u32      the last event's sequence number
//!         unacked     Vec<(u32, Vec<u8>)>  events not yet acknowledged
//! ```
//!
//! The body must use every byte after the header, and is decoded with a
//! byte limit ([`MAX_STATE_BYTES`]): the file is input like any other. The
//! file holds live resume tokens, which are secrets, so it is created
//! readable by its owner only.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every state file, so that any other file is told apart
/// before its contents are decoded.
pub const MAGIC: [u8; 8] = *b"GAMESTAT";

/// Version of the layout described in the module documentation (each
/// game's bytes carry a version of their own). A file of another version
/// is set aside, never misread. Version 1 was the single-game server's.
pub const FORMAT_VERSION: u32 = 2;

/// Largest state file read or written. A full server at the default limits
/// (1,000 rooms of 100 players) saves about 6 MB; the limit leaves ten times
/// that, and bounds what a corrupt length prefix can make the decoder
/// allocate.
pub const MAX_STATE_BYTES: usize = 64 << 20;

/// Length of the header: the magic and the version.
const HEADER_BYTES: usize = MAGIC.len() + 4;

// The saved types are the rooms' own (`room::saved`); this module only
// puts them in a file. They are re-exported here, where the file format
// that lays them out is documented.
pub use crate::room::saved::{RoomState, SavedState, SessionState};

type Limited = Configuration<LittleEndian, Varint, Limit<MAX_STATE_BYTES>>;

fn limited() -> Limited {
    config::standard().with_limit::<MAX_STATE_BYTES>()
}

/// Why a state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or renaming failed.
    #[error("state file I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The file, or the state to write, is larger than [`MAX_STATE_BYTES`].
    #[error("state of {len} bytes exceeds the limit of {MAX_STATE_BYTES} bytes")]
    TooLarge {
        /// Size of the file or of the encoded state.
        len: u64,
    },
    /// The file does not start with [`MAGIC`].
    #[error("not a state file: it does not start with the magic bytes")]
    NotAStateFile,
    /// The file has a version this build does not read.
    #[error("state file has format version {found}; this server reads version {FORMAT_VERSION}")]
    Version {
        /// The version in the file.
        found: u32,
    },
    /// The body does not decode, or has bytes left over.
    #[error("state file is malformed: {0}")]
    Malformed(String),
}

impl StateError {
    /// True when the file's contents are at fault (rather than the file
    /// system): such a file is set aside as `<name>.corrupt`.
    pub fn is_corrupt(&self) -> bool {
        !matches!(self, StateError::Io(_))
    }
}

/// The file's bytes: header, then the bincode body.
pub fn encode(state: &SavedState) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Writing into a Vec cannot fail and these types have no serde errors,
    // so an error here would be a bug, not bad input.
    bincode::serde::encode_into_std_write(state, &mut out, config::standard())
        .expect("encoding the state into a Vec cannot fail");
    out
}

/// Decodes a whole file's bytes.
pub fn decode(bytes: &[u8]) -> Result<SavedState, StateError> {
    if bytes.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge {
            len: bytes.len() as u64,
        });
    }
    if bytes.len() < HEADER_BYTES || bytes[..MAGIC.len()] != MAGIC {
        return Err(StateError::NotAStateFile);
    }
    let version = u32::from_le_bytes(
        bytes[MAGIC.len()..HEADER_BYTES]
            .try_into()
            .expect("the header is long enough, checked above"),
    );
    if version != FORMAT_VERSION {
        return Err(StateError::Version { found: version });
    }
    let body = &bytes[HEADER_BYTES..];
    let (state, used) = bincode::serde::decode_from_slice::<SavedState, _>(body, limited())
        .map_err(|e| StateError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(StateError::Malformed(format!(
            "{} trailing bytes after the state",
            body.len() - used
        )));
    }
    Ok(state)
}

/// Writes `state` to `path` atomically: into a temporary file in the same
/// directory, flushed to disk, then renamed over `path`, so that a crash
/// mid-write leaves either the old file or the new one, never half of one.
/// Returns the number of bytes written.
pub fn write(path: &Path, state: &SavedState) -> Result<usize, StateError> {
    let bytes = encode(state);
    if bytes.len() > MAX_STATE_BYTES {
        // The next start would refuse it; better to say so now.
        return Err(StateError::TooLarge {
            len: bytes.len() as u64,
        });
    }
    let tmp = sibling(path, "tmp");
    let written = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    // The rename is durable only once the directory is; some file systems
    // refuse to sync a directory, and the file itself is safe by now, so a
    // failure here is only worth a note.
    let dir = parent_dir(path);
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(cause = %e, dir = %dir.display(), "could not sync the state file's directory");
    }
    Ok(bytes.len())
}

/// Checks, by creating and removing the temporary file [`write`](fn@write) would
/// use, that the state can be written at all, so that a missing directory
/// or a permission problem shows at start rather than at the shutdown that
/// needed the file.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    let tmp = sibling(path, "tmp");
    open_private(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// Reads and decodes the state file; `Ok(None)` when there is none (a fresh
/// start).
pub fn read(path: &Path) -> Result<Option<SavedState>, StateError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if len > MAX_STATE_BYTES as u64 {
        return Err(StateError::TooLarge { len });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // Bounded again while reading, in case the file grows meanwhile.
    file.take(MAX_STATE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    decode(&bytes).map(Some)
}

/// Renames `path` to `<name>.<suffix>` beside it (replacing an older one)
/// and returns the new path.
pub fn set_aside(path: &Path, suffix: &str) -> std::io::Result<PathBuf> {
    let to = sibling(path, suffix);
    std::fs::rename(path, &to)?;
    Ok(to)
}

/// `<name>.<suffix>` in the same directory as `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory `path` is in ("." for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates (or truncates) a file only its owner can read: it will hold
/// resume tokens.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomProps;
    use crate::room::events::SavedEvents;
    use protocol::ResumeToken;

    fn sample() -> SavedState {
        SavedState {
            saved_at_unix_ms: 1_700_000_000_000,
            next_player: 9,
            next_room: 3,
            rooms: vec![
                RoomState {
                    id: 1,
                    room_type: "four".into(),
                    options: vec![("pace".into(), "fast".into())],
                    seed: u64::MAX,
                    tick: 1234,
                    props: RoomProps {
                        capacity: 2,
                        locked: true,
                        private: true,
                        metadata: [("status".to_owned(), "playing".to_owned())].into(),
                        invite_code: Some("ABCD2345".into()),
                    },
                    game: vec![1, 2, 3],
                    sessions: vec![
                        SessionState {
                            player: 1,
                            token: ResumeToken([7; 16]),
                            ack: 40,
                            connected: true,
                            events: SavedEvents {
                                last_seq: 3,
                                unacked: vec![(3, vec![9, 9])],
                            },
                        },
                        SessionState {
                            player: 8,
                            token: ResumeToken([9; 16]),
                            ack: 0,
                            connected: false,
                            events: SavedEvents {
                                last_seq: 0,
                                unacked: Vec::new(),
                            },
                        },
                    ],
                },
                RoomState {
                    id: 2,
                    room_type: "arena".into(),
                    options: Vec::new(),
                    seed: 5,
                    tick: 0,
                    props: RoomProps {
                        capacity: 100,
                        locked: false,
                        private: false,
                        metadata: Default::default(),
                        invite_code: None,
                    },
                    game: Vec::new(),
                    sessions: Vec::new(),
                },
            ],
        }
    }

    /// A fresh directory under the system temp dir for one test.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("state-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_header_is_as_documented_and_a_state_round_trips() {
        let state = sample();
        let bytes = encode(&state);
        assert_eq!(&bytes[..8], b"GAMESTAT");
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap(), state);
        assert_eq!(state.session_count(), 2);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let good = encode(&sample());
        let check = |bytes: &[u8], want: &str| {
            let err = decode(bytes).expect_err("must be refused");
            assert!(err.is_corrupt(), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        };
        check(b"", "not a state file");
        check(b"GAMESTA", "not a state file");
        check(b"{\"rooms\": []}", "not a state file");
        let mut v1 = good.clone();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        check(&v1, "format version 1");
        check(&good[..good.len() - 1], "malformed");
        check(&good[..HEADER_BYTES], "malformed");
        let mut trailing = good.clone();
        trailing.push(0);
        check(&trailing, "1 trailing bytes");
        // A length prefix claiming 2^60 rooms must fail, not allocate.
        let mut huge = good[..HEADER_BYTES].to_vec();
        huge.extend_from_slice(&[0, 1, 1]);
        // 253: bincode's tag for "a u64 follows".
        huge.push(253);
        huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
        check(&huge, "malformed");
        let io = StateError::Io(std::io::Error::other("disk"));
        assert!(!io.is_corrupt());
    }

    #[test]
    fn write_replaces_the_file_atomically_and_read_gets_it_back() {
        let dir = scratch("write");
        let path = dir.join("game.state");
        assert!(
            read(&path).unwrap().is_none(),
            "a missing file is a fresh start"
        );
        check_writable(&path).unwrap();
        assert!(check_writable(&dir.join("no-such-dir/game.state")).is_err());
        let mut state = sample();
        write(&path, &state).unwrap();
        state.next_player = 10;
        let len = write(&path, &state).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
        assert_eq!(read(&path).unwrap(), Some(state));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["game.state"], "no temporary file is left behind");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "resume tokens are secrets");
        let aside = set_aside(&path, "restored").unwrap();
        assert_eq!(aside, dir.join("game.state.restored"));
        assert!(read(&path).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let dir = scratch("limit");
        let path = dir.join("big.state");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_STATE_BYTES as u64 + 1).unwrap();
        let err = read(&path).expect_err("too large");
        assert!(matches!(err, StateError::TooLarge { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
