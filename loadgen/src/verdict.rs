//! CI verdicts: `--assert 'METRIC OP VALUE'` checks and the comparison with
//! a baseline report.
//!
//! A metric is any number in the JSON report, named by its dotted path
//! (`latency.input_ack.p99`, `counters.inputs_sent`, `throughput.msgs_in_per_s`,
//! `errors.close_4004`, `server.cpu_cores`, …), with shorthands: a latency
//! name drops `latency.` (`input_ack.p99`), a counter drops `counters.`
//! (`resumes_ok`), `errors` alone is the total, and a few derived ratios
//! exist (`ack_ratio`, `resume_ratio`). An error kind that never happened
//! is 0. Latencies are in microseconds; a value may carry a unit (`us`,
//! `ms`, `s`) and is converted, and a ratio may be given in `%`.

use crate::report::Report;
use std::collections::BTreeMap;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() < 1e-9,
            Op::Ne => (a - b).abs() >= 1e-9,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// One parsed `--assert`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    /// The text as given, for messages.
    pub text: String,
    /// Metric name as written.
    pub metric: String,
    /// The operator.
    pub op: Op,
    /// The right-hand side in the metric's unit (µs for latencies, a
    /// fraction for `%`).
    pub value: f64,
}

/// Parses `METRIC OP VALUE[unit]`, spaces optional.
pub fn parse_assertion(text: &str) -> Result<Assertion, String> {
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (pos, sym, op) = ops
        .iter()
        .filter_map(|(sym, op)| text.find(sym).map(|p| (p, *sym, *op)))
        .min_by_key(|(p, sym, _)| (*p, std::cmp::Reverse(sym.len())))
        .ok_or_else(|| {
            format!("{text:?}: expected METRIC OP VALUE with OP one of < <= > >= == !=")
        })?;
    let metric = text[..pos].trim();
    let raw = text[pos + sym.len()..].trim();
    if metric.is_empty() || raw.is_empty() {
        return Err(format!("{text:?}: expected METRIC OP VALUE"));
    }
    let (number, scale) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 1000.0)
    } else if let Some(n) = raw.strip_suffix("us").or_else(|| raw.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1_000_000.0)
    } else if let Some(n) = raw.strip_suffix('%') {
        // Divided below rather than multiplied by 0.01, which would not
        // round to the same double as the written fraction.
        (n, -100.0)
    } else {
        (raw, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {raw:?} is not a number (units: us, ms, s, %)"))?;
    let value = if scale < 0.0 {
        value / -scale
    } else {
        value * scale
    };
    Ok(Assertion {
        text: text.to_owned(),
        metric: metric.to_owned(),
        op,
        value,
    })
}

/// Every number in a report by dotted path, plus derived ratios.
pub fn metrics_of(report: &Report) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let json = serde_json::to_value(report).expect("a report serialises");
    flatten("", &json, &mut out);
    let c = &report.counters;
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    out.insert(
        "ack_ratio".into(),
        ratio(
            c.inputs_acked,
            c.inputs_sent
                .saturating_sub(c.inputs_lost + c.inputs_in_flight_at_end),
        ),
    );
    out.insert(
        "resume_ratio".into(),
        ratio(
            c.resumes_ok,
            c.resumes_ok + c.resumes_failed + c.resumes_lost_state,
        ),
    );
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, f64>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.insert(prefix.to_owned(), f);
            }
        }
        _ => {}
    }
}

/// Looks a metric up by full path or shorthand.
pub fn lookup(metrics: &BTreeMap<String, f64>, name: &str) -> Option<f64> {
    if name == "errors" {
        return metrics.get("error_count").copied();
    }
    [
        name.to_owned(),
        format!("latency.{name}"),
        format!("counters.{name}"),
        format!("throughput.{name}"),
    ]
    .iter()
    .find_map(|k| metrics.get(k).copied())
    // An error kind that never occurred is absent from the map: it is 0.
    .or_else(|| name.starts_with("errors.").then_some(0.0))
}

/// Checks every assertion; returns one line per failure.
pub fn check_assertions(report: &Report, assertions: &[Assertion]) -> Vec<String> {
    let metrics = metrics_of(report);
    assertions
        .iter()
        .filter_map(|a| match lookup(&metrics, &a.metric) {
            None => Some(format!("FAIL {}: no metric named {:?}", a.text, a.metric)),
            Some(v) if a.op.holds(v, a.value) => None,
            Some(v) => Some(format!(
                "FAIL {}: {} is {}, wanted {} {}",
                a.text,
                a.metric,
                fmt_value(&a.metric, v),
                a.op.symbol(),
                fmt_value(&a.metric, a.value)
            )),
        })
        .collect()
}

fn fmt_value(metric: &str, v: f64) -> String {
    let is_latency = metric
        .split('.')
        .any(|p| matches!(p, "p50" | "p90" | "p99" | "p999" | "max" | "min" | "mean"));
    if is_latency {
        format!("{:.3} ms", v / 1000.0)
    } else {
        format!("{v}")
    }
}

/// Latencies within this much of the baseline never count as regressions,
/// whatever the percentage: on a shared machine a 0.2 ms median can double
/// from scheduling noise alone.
const LATENCY_SLACK_US: f64 = 1000.0;

/// Compares a run with a baseline report. A latency percentile (p50, p90,
/// p99 of every metric both measured) regresses when it is more than
/// `max_regression` (a fraction) above the baseline *and* more than 1 ms
/// above it; throughput regresses when it falls more than `max_regression`
/// below; errors regress when there are more than in the baseline.
pub fn compare_with_baseline(
    report: &Report,
    baseline: &Report,
    max_regression: f64,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, base) in &baseline.latency {
        let Some(now) = report.latency.get(name) else {
            continue;
        };
        if base.count == 0 || now.count == 0 {
            continue;
        }
        for (pct, b, n) in [
            ("p50", base.p50, now.p50),
            ("p90", base.p90, now.p90),
            ("p99", base.p99, now.p99),
        ] {
            let (b, n) = (b as f64, n as f64);
            if n > b * (1.0 + max_regression) && n - b > LATENCY_SLACK_US {
                failures.push(format!(
                    "REGRESSION latency.{name}.{pct}: {:.3} ms vs baseline {:.3} ms (+{:.0}%, limit {:.0}%)",
                    n / 1000.0,
                    b / 1000.0,
                    (n / b - 1.0) * 100.0,
                    max_regression * 100.0
                ));
            }
        }
    }
    for (what, b, n) in [
        (
            "msgs_in_per_s",
            baseline.throughput.msgs_in_per_s,
            report.throughput.msgs_in_per_s,
        ),
        (
            "msgs_out_per_s",
            baseline.throughput.msgs_out_per_s,
            report.throughput.msgs_out_per_s,
        ),
    ] {
        if b > 0.0 && n < b * (1.0 - max_regression) {
            failures.push(format!(
                "REGRESSION throughput.{what}: {n:.0} vs baseline {b:.0} (-{:.0}%, limit {:.0}%)",
                (1.0 - n / b) * 100.0,
                max_regression * 100.0
            ));
        }
    }
    if report.error_count > baseline.error_count {
        failures.push(format!(
            "REGRESSION errors: {} vs baseline {}",
            report.error_count, baseline.error_count
        ));
    }
    failures
}

/// Parses `15%` or `0.15` into a fraction.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let (n, divisor) = match s.trim().strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s.trim(), 1.0),
    };
    let v: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage like 15%"))?;
    let v = v / divisor;
    if !(0.0..=10.0).contains(&v) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_parse_with_and_without_spaces_and_units() {
        let check = |text: &str, metric: &str, op: Op, value: f64| {
            let a = parse_assertion(text).unwrap();
            assert_eq!(
                (a.metric.as_str(), a.op, a.value),
                (metric, op, value),
                "{text}"
            );
        };
        check("input_ack.p99<=50ms", "input_ack.p99", Op::Le, 50_000.0);
        check("errors == 0", "errors", Op::Eq, 0.0);
        check("ping_rtt.p50 < 800us", "ping_rtt.p50", Op::Lt, 800.0);
        check("reconnect.max<2s", "reconnect.max", Op::Lt, 2_000_000.0);
        check("ack_ratio>=99.5%", "ack_ratio", Op::Ge, 0.995);
        check("resumes_ok != 3", "resumes_ok", Op::Ne, 3.0);
        check("counters.states > 10", "counters.states", Op::Gt, 10.0);
        for bad in ["input_ack.p99", "<= 5", "x <= ", "x <= fast"] {
            assert!(parse_assertion(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fractions_parse() {
        assert_eq!(parse_fraction("15%").unwrap(), 0.15);
        assert_eq!(parse_fraction("0.2").unwrap(), 0.2);
        assert!(parse_fraction("lots").is_err());
        assert!(parse_fraction("-5%").is_err());
    }
}
