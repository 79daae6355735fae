//! A reader of the Prometheus text exposition format (0.0.4) that
//! `/metrics` writes, so that tests assert on the value of a named sample
//! rather than on a substring of the page (`"game_players 1"` is a
//! substring of `"game_players 10"`).
//!
//! Not for scraping in production: it reads what this server writes (no
//! timestamps kept, no escapes beyond `\\`, `\"` and `\n`) and panics on a
//! line it cannot read, as a test wants.

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (for a histogram, with its `_bucket`, `_sum` or
    /// `_count` suffix).
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the sample carries every one of `labels` (and maybe others).
    fn has_all(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|&(k, v)| self.label(k) == Some(v))
    }
}

/// A parsed `/metrics` page: its families' types and its samples, in the
/// order written.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// `(family, type)` from each `# TYPE` line.
    types: Vec<(String, String)>,
    /// `(family, help)` from each `# HELP` line.
    helps: Vec<(String, String)>,
    /// Every sample line.
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses a page.
    ///
    /// # Panics
    ///
    /// On a line that is neither a comment nor a well-formed sample.
    pub fn parse(text: &str) -> Self {
        let mut page = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                let (keyword, family, rest) = (words.next(), words.next(), words.next());
                match (keyword, family) {
                    (Some("TYPE"), Some(family)) => page
                        .types
                        .push((family.to_owned(), rest.unwrap_or("").to_owned())),
                    (Some("HELP"), Some(family)) => page
                        .helps
                        .push((family.to_owned(), rest.unwrap_or("").to_owned())),
                    _ => {}
                }
                continue;
            }
            let (sample, rest) =
                parse_series(line).unwrap_or_else(|| panic!("unreadable sample line {line:?}"));
            // A timestamp may follow the value; this server writes none.
            let value = rest.split_whitespace().next().and_then(parse_value);
            let value = value.unwrap_or_else(|| panic!("no value in the sample line {line:?}"));
            page.samples.push(Sample { value, ..sample });
        }
        page
    }

    /// Every sample, in the order written.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The value of the sample `name` whose labels are exactly `labels`
    /// (in any order); `None` if the page has no such sample.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.len() == labels.len() && s.has_all(labels))
            .map(|s| s.value)
    }

    /// The value of a sample named as the page writes it: `name` or
    /// `name{label="value",...}` (labels in any order).
    ///
    /// # Panics
    ///
    /// When `series` is not a sample name with optional labels.
    pub fn value(&self, series: &str) -> Option<f64> {
        let (key, _) = parse_series(series)
            .filter(|(_, rest)| rest.trim().is_empty())
            .unwrap_or_else(|| panic!("{series:?} is not a sample name"));
        let labels: Vec<(&str, &str)> = key
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.get(&key.name, &labels)
    }

    /// The samples of `name` that carry every one of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && s.has_all(labels))
    }

    /// The sum of the samples of `name` that carry every one of `labels`:
    /// 0 when there is none (as for a labelled counter the page leaves out
    /// at zero).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The `# TYPE` of `family`, if the page declares it.
    pub fn kind(&self, family: &str) -> Option<&str> {
        self.types
            .iter()
            .find(|(f, _)| f == family)
            .map(|(_, t)| t.as_str())
    }

    /// The `# HELP` text of `family`, if the page has one.
    pub fn help(&self, family: &str) -> Option<&str> {
        self.helps
            .iter()
            .find(|(f, _)| f == family)
            .map(|(_, h)| h.as_str())
    }

    /// The families declared by `# TYPE` lines, in the order written.
    pub fn families(&self) -> Vec<&str> {
        self.types.iter().map(|(f, _)| f.as_str()).collect()
    }
}

/// Reads `name` or `name{label="value",...}` at the start of `text`;
/// returns the sample (value 0) and the text after it.
fn parse_series(text: &str) -> Option<(Sample, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let (name, mut rest) = text.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim().to_owned(), value));
            rest = &after[close + 1..];
        }
    }
    let sample = Sample {
        name: name.to_owned(),
        labels,
        value: 0.0,
    };
    Some((sample, rest))
}

/// A sample value: a float, or `+Inf`, `-Inf`, `NaN`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_and_values() {
        let page = Exposition::parse(
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n\
             # TYPE b gauge\nb{x=\"1\",y=\"q\\\"uote\"} -1.5\nb{x=\"2\"} +Inf\n",
        );
        assert_eq!(page.families(), ["a_total", "b"]);
        assert_eq!(page.kind("b"), Some("gauge"));
        assert_eq!(page.help("a_total"), Some("Things."));
        assert_eq!(page.get("a_total", &[]), Some(3.0));
        assert_eq!(page.value("a_total"), Some(3.0));
        assert_eq!(page.get("b", &[("y", "q\"uote"), ("x", "1")]), Some(-1.5));
        assert_eq!(page.value("b{x=\"2\"}"), Some(f64::INFINITY));
        // Exact labels for a value, a subset for a sum.
        assert_eq!(page.get("b", &[("x", "1")]), None);
        assert_eq!(page.sum("b", &[("y", "q\"uote")]), -1.5);
        assert_eq!(page.sum("b", &[("x", "3")]), 0.0);
        // A name is not a prefix of a longer one.
        assert_eq!(page.get("a", &[]), None);
        assert_eq!(page.samples().len(), 3);
    }

    #[test]
    #[should_panic(expected = "unreadable sample line")]
    fn a_malformed_line_panics() {
        Exposition::parse("b{x=\"1\" 2\n");
    }
}
