//! Static files of the browser client (`server/web/`), embedded in the
//! binary so that the server runs from a single file with nothing beside
//! it, and looked up by request path.
//!
//! Not for anything dynamic, and not for the web client's tests or its
//! `package.json` (those stay in the repository; only what a browser loads
//! is embedded). Adding a file to the page means adding it to [`ASSETS`];
//! the tests below fail if a file the page references, or a page file in
//! `server/web/`, is missing from it.

/// Content type of HTML pages.
const HTML: &str = "text/html; charset=utf-8";
/// Content type of JavaScript. Browsers refuse to run a module script
/// served with a non-JavaScript type, so this one matters.
const JS: &str = "text/javascript; charset=utf-8";
/// Content type of style sheets.
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file.
struct Asset {
    /// The request path that serves it.
    path: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

/// Every file the page loads, by request path.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: HTML,
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        path: "/arena.js",
        content_type: JS,
        body: include_bytes!("../web/arena.js"),
    },
    Asset {
        path: "/game.js",
        content_type: JS,
        body: include_bytes!("../web/game.js"),
    },
    Asset {
        path: "/style.css",
        content_type: CSS,
        body: include_bytes!("../web/style.css"),
    },
];

/// The embedded file served at `path` (a request path such as `/game.js`;
/// `/` is the page), as its content type and bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS
        .iter()
        .find(|a| a.path == path)
        .map(|a| (a.content_type, a.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn text(path: &str) -> &'static str {
        let (_, body) = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
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

    /// Turns a reference from the page into a request path, or `None` for
    /// one that the server does not serve (another origin, a data: URL, an
    /// in-page anchor).
    fn local_path(reference: &str) -> Option<String> {
        if reference.contains(':') || reference.starts_with('#') || reference.starts_with("//") {
            return None;
        }
        let path = reference.trim_start_matches("./").trim_start_matches('/');
        Some(format!("/{path}"))
    }

    #[test]
    fn every_file_the_page_references_is_embedded() {
        let html = text("/");
        let mut referenced: Vec<String> = ["src", "href"]
            .iter()
            .flat_map(|attr| attribute_values(html, attr))
            .filter_map(local_path)
            .collect();
        // Module scripts import further modules by relative path.
        for script in ASSETS.iter().filter(|a| a.content_type == JS) {
            let source = std::str::from_utf8(script.body).expect("UTF-8");
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                if let Some(spec) = line.split(['"', '\'']).nth(1) {
                    referenced.extend(local_path(spec));
                }
            }
        }
        assert!(
            referenced.contains(&"/game.js".to_owned()),
            "the page loads game.js: {referenced:?}"
        );
        assert!(
            referenced.contains(&"/arena.js".to_owned()),
            "game.js imports arena.js: {referenced:?}"
        );
        for path in &referenced {
            assert!(
                asset(path).is_some(),
                "{path} is referenced but not embedded"
            );
        }
    }

    #[test]
    fn every_page_file_in_the_web_directory_is_embedded() {
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
            let (_, body) =
                asset(&format!("/{name}")).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert_eq!(
                body,
                std::fs::read(&path).expect("readable").as_slice(),
                "{name}"
            );
        }
    }

    #[test]
    fn content_types_let_browsers_run_the_modules() {
        assert_eq!(asset("/").map(|a| a.0), Some(HTML));
        assert_eq!(asset("/index.html"), asset("/"));
        assert_eq!(
            asset("/arena.js").map(|a| a.0),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(asset("/game.js").map(|a| a.0), Some(JS));
        assert_eq!(asset("/style.css").map(|a| a.0), Some(CSS));
        assert_eq!(asset("/package.json"), None);
        assert_eq!(asset("/test/codec.test.mjs"), None);
        assert_eq!(asset("/../Cargo.toml"), None);
    }
}
