//! Static files of the browser client, embedded in the binary so that the
//! server runs from a single file with nothing beside it, and looked up by
//! request path: the lobby and the generic session module (`server/web/`),
//! plus the page of every registered room type (each game embeds its own,
//! see `RoomType::page`).
//!
//! Not for anything dynamic, and not for the web client's tests or its
//! `package.json` (those stay in the repository; only what a browser loads
//! is embedded). Adding a file to the lobby means adding it to [`BASE`];
//! the tests below fail if a file a page references, or a page file in
//! `server/web/`, is missing.

use game_api::{RoomType, WebAsset};
use std::collections::HashMap;

/// The lobby and what every game page shares, by request path.
pub const BASE: &[WebAsset] = &[
    WebAsset::html("/index.html", include_bytes!("../web/index.html")),
    WebAsset::js("/lobby.js", include_bytes!("../web/lobby.js")),
    WebAsset::js("/session.js", include_bytes!("../web/session.js")),
    WebAsset::css("/style.css", include_bytes!("../web/style.css")),
    WebAsset::html("/replay.html", include_bytes!("../web/replay.html")),
    WebAsset::js("/replay.js", include_bytes!("../web/replay.js")),
];

/// Every embedded file the server serves.
pub struct Web {
    /// Content type and bytes, by request path.
    files: HashMap<&'static str, (&'static str, &'static [u8])>,
}

impl Web {
    /// The lobby's files and every room type's page; an error names a
    /// path two of them claim, or a page file outside its page's path.
    pub fn new(room_types: &[RoomType]) -> Result<Self, String> {
        let mut files = HashMap::new();
        let mut add = |asset: &WebAsset, owner: &str| {
            if files
                .insert(asset.path, (asset.content_type, asset.body))
                .is_some()
            {
                return Err(format!("{} ({owner}) is served twice", asset.path));
            }
            Ok(())
        };
        for asset in BASE {
            add(asset, "the lobby")?;
        }
        for t in room_types {
            let page = t.page_path().unwrap_or("/");
            for asset in t.assets() {
                if !asset.path.starts_with(page) || page == "/" {
                    return Err(format!(
                        "room type {}: {} is outside its page {page}",
                        t.name(),
                        asset.path
                    ));
                }
                add(asset, t.name())?;
            }
        }
        Ok(Self { files })
    }

    /// The embedded file served at `path` (a request path such as
    /// `/session.js`; a path ending in `/` is that directory's
    /// `index.html`), as its content type and bytes.
    pub fn get(&self, path: &str) -> Option<(&'static str, &'static [u8])> {
        if path.ends_with('/') {
            return self
                .files
                .get(format!("{path}index.html").as_str())
                .copied();
        }
        self.files.get(path).copied()
    }

    /// Every path served, for tests and tools.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.files.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";

    fn web() -> Web {
        Web::new(&[
            arena::room_type(arena::ArenaConfig::default()),
            four::room_type(),
        ])
        .expect("no clashes")
    }

    fn text(web: &Web, path: &str) -> &'static str {
        let (_, body) = web
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not embedded"));
        std::str::from_utf8(body).expect("page files are UTF-8")
    }

    /// The values of `attr="..."` in `html`.
    fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!("{attr}=\"");
        html.match_indices(&needle)
            .filter_map(|(at, _)| {
                let rest = &html[at + needle.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    /// Turns a reference from a page at `base` (a directory path) into a
    /// request path, or `None` for one the server does not serve (another
    /// origin, a data: URL, an in-page anchor).
    fn local_path(base: &str, reference: &str) -> Option<String> {
        if reference.contains(':') || reference.starts_with('#') || reference.starts_with("//") {
            return None;
        }
        let reference = reference.split(['?', '#']).next().unwrap_or_default();
        if let Some(absolute) = reference.strip_prefix('/') {
            return Some(format!("/{absolute}"));
        }
        let mut path = base.to_owned();
        let mut rest = reference;
        loop {
            if let Some(r) = rest.strip_prefix("./") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix("../") {
                let trimmed = path.trim_end_matches('/');
                path = trimmed[..=trimmed.rfind('/').unwrap_or(0)].to_owned();
                rest = r;
            } else {
                break;
            }
        }
        Some(format!("{path}{rest}"))
    }

    #[test]
    fn every_file_a_page_references_is_embedded() {
        let web = web();
        let mut checked = 0;
        for page in ["/", "/arena/", "/four/"] {
            let html = text(&web, page);
            let mut referenced: Vec<String> = ["src", "href"]
                .iter()
                .flat_map(|attr| attribute_values(html, attr))
                .filter_map(|r| local_path(page, r))
                .filter(|p| !p.ends_with('/'))
                .collect();
            // Module scripts import further modules.
            let mut i = 0;
            while i < referenced.len() {
                let path = referenced[i].clone();
                i += 1;
                if !path.ends_with(".js") {
                    continue;
                }
                let base = &path[..=path.rfind('/').unwrap_or(0)];
                let source = text(&web, &path);
                for line in source.lines().filter(|l| l.starts_with("import ")) {
                    if let Some(spec) = line.split(['"', '\'']).nth(1)
                        && let Some(p) = local_path(base, spec)
                        && !referenced.contains(&p)
                    {
                        referenced.push(p);
                    }
                }
            }
            for path in &referenced {
                assert!(
                    web.get(path).is_some(),
                    "{path} (from {page}) is not embedded"
                );
                checked += 1;
            }
        }
        assert!(checked >= 6, "the pages reference their scripts: {checked}");
    }

    #[test]
    fn every_page_file_in_the_web_directory_is_embedded() {
        let web = web();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        for entry in std::fs::read_dir(&dir).expect("server/web exists") {
            let path = entry.expect("readable entry").path();
            let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            // package.json is the tests' manifest, not part of the page.
            if !matches!(ext, "html" | "js" | "css") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 name");
            let (_, body) = web
                .get(&format!("/{name}"))
                .unwrap_or_else(|| panic!("{name} is not embedded"));
            assert_eq!(
                body,
                std::fs::read(&path).expect("readable").as_slice(),
                "{name}"
            );
        }
    }

    #[test]
    fn content_types_let_browsers_run_the_modules() {
        let web = web();
        assert_eq!(web.get("/").map(|a| a.0), Some(HTML));
        assert_eq!(web.get("/index.html"), web.get("/"));
        assert_eq!(web.get("/session.js").map(|a| a.0), Some(JS));
        assert_eq!(web.get("/style.css").map(|a| a.0), Some(CSS));
        assert_eq!(web.get("/arena/").map(|a| a.0), Some(HTML));
        assert_eq!(web.get("/four/game.js").map(|a| a.0), Some(JS));
        assert_eq!(web.get("/package.json"), None);
        assert_eq!(web.get("/test/envelope.test.mjs"), None);
        assert_eq!(web.get("/../Cargo.toml"), None);
    }

    #[test]
    fn clashing_and_misplaced_assets_are_refused() {
        const CLASH: &[WebAsset] = &[WebAsset::js("/session.js", b"")];
        let t = arena::room_type(arena::ArenaConfig::default());
        assert!(
            Web::new(&[t.clone(), t.clone()]).is_err(),
            "two pages at one path"
        );
        let misplaced = t.clone().page("/mine/", CLASH);
        assert!(Web::new(&[misplaced]).err().unwrap().contains("outside"));
        assert_eq!(
            local_path("/four/", "../session.js").as_deref(),
            Some("/session.js")
        );
        assert_eq!(
            local_path("/four/", "./codec.js").as_deref(),
            Some("/four/codec.js")
        );
    }
}
