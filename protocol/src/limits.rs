//! Bounds on what a client may put in a `Hello`, and the invite-code
//! format. The server checks a room request with [`check_request`] before
//! it looks anything up, and closes with 1007 (`invalid_payload`) when the
//! request breaks a bound: these are protocol rules, not game rules.

use crate::msg::RoomRequest;

/// Longest room type name, in bytes. Names are `[a-z0-9_-]+`.
pub const MAX_ROOM_TYPE_BYTES: usize = 32;

/// Most options a request may carry.
pub const MAX_OPTIONS: usize = 8;

/// Longest option key, in bytes. Keys are `[a-z0-9_-]+` and unique.
pub const MAX_OPTION_KEY_BYTES: usize = 24;

/// Longest option value, in bytes (any UTF-8).
pub const MAX_OPTION_VALUE_BYTES: usize = 64;

/// The characters of invite codes: digits and capital letters without the
/// ones people confuse (0/O, 1/I/L) and without U (no accidental words).
pub const CODE_ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in an invite code: 30^8 = 6.6 × 10^11 codes, about 39 bits.
pub const CODE_LEN: usize = 8;

/// Longest code field a request may carry (a code with separators).
pub const MAX_CODE_FIELD_BYTES: usize = 24;

/// Whether `name` is a valid room type name or option key of at most
/// `max` bytes.
pub fn is_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a room request against the bounds above; the error says which
/// bound it broke.
pub fn check_request(request: &RoomRequest) -> Result<(), String> {
    match request {
        RoomRequest::QuickJoin { room_type, options }
        | RoomRequest::Create {
            room_type, options, ..
        } => {
            if !is_name(room_type, MAX_ROOM_TYPE_BYTES) {
                return Err(format!(
                    "room type must be 1 to {MAX_ROOM_TYPE_BYTES} characters of a-z, 0-9, _ and -"
                ));
            }
            check_options(options)
        }
        RoomRequest::JoinById { .. } | RoomRequest::Reserved { .. } => Ok(()),
        RoomRequest::JoinByCode { code } => {
            if code.len() > MAX_CODE_FIELD_BYTES {
                return Err(format!(
                    "an invite code field is at most {MAX_CODE_FIELD_BYTES} bytes"
                ));
            }
            Ok(())
        }
    }
}

/// Checks options as key/value pairs against the bounds above.
pub fn check_options(options: &[(String, String)]) -> Result<(), String> {
    if options.len() > MAX_OPTIONS {
        return Err(format!("at most {MAX_OPTIONS} options"));
    }
    for (i, (key, value)) in options.iter().enumerate() {
        if !is_name(key, MAX_OPTION_KEY_BYTES) {
            return Err(format!(
                "option keys must be 1 to {MAX_OPTION_KEY_BYTES} characters of a-z, 0-9, _ and -"
            ));
        }
        if value.len() > MAX_OPTION_VALUE_BYTES {
            return Err(format!(
                "option {key:?}: values are at most {MAX_OPTION_VALUE_BYTES} bytes"
            ));
        }
        if options[..i].iter().any(|(k, _)| k == key) {
            return Err(format!("option {key:?} is given twice"));
        }
    }
    Ok(())
}

/// The canonical form of an invite code as a person may type it (any case,
/// with spaces or dashes), or `None` if it cannot be a code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(room_type: &str, options: &[(&str, &str)]) -> RoomRequest {
        RoomRequest::quick_with(room_type, options)
    }

    #[test]
    fn requests_within_the_bounds_pass_and_others_say_why() {
        let check = |r: RoomRequest, want: Option<&str>| {
            let got = check_request(&r);
            match want {
                None => assert_eq!(got, Ok(()), "{r:?}"),
                Some(w) => assert!(got.as_ref().is_err_and(|e| e.contains(w)), "{r:?}: {got:?}"),
            }
        };
        check(quick("arena", &[]), None);
        check(quick("four-in_a-row9", &[("speed", "480")]), None);
        check(quick("", &[]), Some("room type"));
        check(quick("Arena", &[]), Some("room type"));
        check(quick(&"a".repeat(33), &[]), Some("room type"));
        check(quick("arena", &[("a", "1"), ("a", "2")]), Some("twice"));
        check(quick("arena", &[("Key", "1")]), Some("option keys"));
        check(
            quick("arena", &[("k", &"v".repeat(65))]),
            Some("at most 64"),
        );
        let many: Vec<(String, String)> = (0..9).map(|i| (format!("k{i}"), "v".into())).collect();
        let r = RoomRequest::Create {
            room_type: "arena".into(),
            options: many,
            private: true,
        };
        check(r, Some("at most 8 options"));
        check(
            RoomRequest::JoinByCode {
                code: "x".repeat(25),
            },
            Some("at most 24"),
        );
        check(RoomRequest::JoinById { room_id: 7 }, None);
    }

    #[test]
    fn codes_normalise_from_what_people_type() {
        assert_eq!(normalize_code("abcd-2345"), Some("ABCD2345".into()));
        assert_eq!(normalize_code(" ab cd 23 45 "), Some("ABCD2345".into()));
        assert_eq!(normalize_code("ABCD234"), None, "too short");
        assert_eq!(
            normalize_code("ABCD23450"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalize_code("ABCD234O"), None, "O is not in the alphabet");
        assert_eq!(normalize_code("ÄBCD2345"), None);
        assert!(!CODE_ALPHABET.contains(&b'I') && !CODE_ALPHABET.contains(&b'L'));
    }
}
