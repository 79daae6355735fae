//! Static files of the browser client, embedded in the binary so that the
//! server runs from a single file with nothing beside it.

/// The page served at `/`.
pub const INDEX_HTML: &str = include_str!("../web/index.html");
