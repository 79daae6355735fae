//! `--plot FILE.svg`: latency percentile curves, drawn as a standalone SVG.
//!
//! The x axis is the percentile on HdrHistogram's usual log scale (each
//! step right is another nine: 90 %, 99 %, 99.9 % …), so the tail is as
//! wide as the body; the y axis is latency in milliseconds on a log scale,
//! so a 0.3 ms ping and a 3 s reconnect fit one chart. No plotting
//! dependency: the chart is a few polylines.

use crate::report::Report;
use std::fmt::Write as _;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Rightmost percentile shown: 99.999 % (five nines).
const MAX_NINES: f64 = 5.0;
/// Points per curve.
const POINTS: usize = 200;
/// One colour per metric, so that no two curves share one.
const COLOURS: [&str; crate::stats::METRICS] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f",
];

/// Renders the report's latency curves as SVG text.
pub fn svg(report: &Report) -> anyhow::Result<String> {
    let mut curves = Vec::new();
    for (name, latency) in &report.latency {
        if latency.count == 0 {
            continue;
        }
        let h = latency.histogram()?;
        // Beyond log10(count) nines the histogram has no information left.
        let nines = (latency.count as f64).log10().clamp(1.0, MAX_NINES);
        let pts: Vec<(f64, f64)> = (0..=POINTS)
            .map(|i| {
                let x = nines * i as f64 / POINTS as f64;
                let q = 1.0 - 10f64.powf(-x);
                (x, (h.value_at_quantile(q).max(1) as f64) / 1000.0)
            })
            .collect();
        curves.push((name.clone(), pts));
    }
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (_, pts) in &curves {
        for &(_, y) in pts {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    if curves.is_empty() {
        (lo, hi) = (0.1, 1.0);
    }
    let (lo_e, hi_e) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / MAX_NINES * plot_w;
    let py = |ms: f64| TOP + plot_h - (ms.log10() - lo_e) / (hi_e - lo_e) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="15">Latency by percentile — {} clients, {:.0} s, {}</text>"#,
        report.clients,
        report.elapsed_s,
        xml_escape(&report.url)
    );
    for nine in 0..=MAX_NINES as u32 {
        let x = px(f64::from(nine));
        let label = match nine {
            0 => "0%".to_owned(),
            n => format!("{}%", 100.0 - 100.0 * 10f64.powi(-(n as i32))),
        };
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    let mut e = lo_e;
    while e <= hi_e {
        let y = py(10f64.powf(e));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{} ms</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            10f64.powf(e)
        );
        e += 1.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    for (i, (name, pts)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + plot_w + 15.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            xml_escape(name)
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Interval, Metric};

    #[test]
    fn the_plot_has_one_curve_per_measured_metric() {
        let mut total = Interval::new();
        for v in 1..=5000u64 {
            total.hist[Metric::InputAck as usize]
                .record(v * 10)
                .unwrap();
            total.hist[Metric::PingRtt as usize].record(v).unwrap();
        }
        let mut report = crate::test_report();
        report.fill_from(&total);
        let svg = svg(&report).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(
            svg.matches("<polyline").count(),
            2,
            "connect, jitter and reconnect have no samples"
        );
        assert!(svg.contains(">input_ack<") && svg.contains(">ping_rtt<"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
