//! The result of a run: what it measured, as a human table and as JSON,
//! and the merge of several runs' reports into one.
//!
//! Each latency in the JSON report carries its whole HdrHistogram
//! (V2-deflate serialised, base64), so reports from several loadgen
//! processes merge exactly — by adding histograms, never by averaging
//! percentiles.

use crate::stats::{Counters, Interval, Metric, new_histogram};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Summary of one latency metric, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// The whole histogram, V2-deflate serialised and base64-encoded.
    pub hdr: String,
}

impl Latency {
    /// Summarises `h`.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .expect("serialising into a Vec cannot fail");
        let q = |x| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        Self {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: if h.is_empty() { 0 } else { h.max() },
            hdr: B64.encode(bytes),
        }
    }

    /// The histogram back from its serialised form.
    pub fn histogram(&self) -> anyhow::Result<Histogram<u64>> {
        let bytes = B64.decode(&self.hdr)?;
        let decoded: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..])?;
        // Re-home it in loadgen's bounds so any two reports can be added.
        let mut h = new_histogram();
        h.add(&decoded)?;
        Ok(h)
    }
}

/// Throughput over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Messages received per second.
    pub msgs_in_per_s: f64,
    /// Messages sent per second.
    pub msgs_out_per_s: f64,
    /// Socket writes per second that carried them (0 in a report written
    /// before they were counted).
    #[serde(default)]
    pub writes_out_per_s: f64,
    /// Payload bytes received per second.
    pub bytes_in_per_s: f64,
    /// Payload bytes sent per second.
    pub bytes_out_per_s: f64,
}

/// CPU and memory of a process over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU time used during the run, in seconds (user + system).
    pub cpu_s: f64,
    /// CPU used as a share of one core over the run's wall time.
    pub cpu_cores: f64,
    /// Peak resident memory, in bytes.
    pub peak_rss_bytes: u64,
}

/// A mass disconnection (a server restart, a network cut) and how long it
/// took until the clients were back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// When connected clients fell below 90 % of those before it, in
    /// seconds from the start of the run.
    pub started_at_s: f64,
    /// Clients connected just before the outage.
    pub connected_before: usize,
    /// Fewest clients connected during it.
    pub lowest_connected: usize,
    /// Seconds until as many clients as before were connected again; `None`
    /// if that never happened before the run ended.
    pub all_back_after_s: Option<f64>,
}

/// What happened on one node of a cluster (or on the single server).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    /// Players whose session lived on this node when the run ended (before
    /// they left).
    pub connected_at_end: usize,
    /// `Welcome`s this node sent: joins and resumes that it welcomed.
    pub welcomes: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of loadgen that wrote the report.
    pub loadgen_version: String,
    /// Server URL.
    pub url: String,
    /// Simulated clients.
    pub clients: usize,
    /// Wall time of the run in seconds (ramp-up included).
    pub elapsed_s: f64,
    /// The options that shaped the load.
    pub settings: BTreeMap<String, String>,
    /// Event counts.
    pub counters: Counters,
    /// Most clients connected at once.
    pub connected_peak: usize,
    /// Clients connected when the run ended (before they left).
    pub connected_at_end: usize,
    /// By node URL (the URL each player was welcomed on: the run's `url`
    /// on a single server, each node's own on a cluster).
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeCounts>,
    /// Errors: total and by kind.
    pub errors: BTreeMap<String, u64>,
    /// Total errors.
    pub error_count: u64,
    /// Latencies by metric name, in microseconds.
    pub latency: BTreeMap<String, Latency>,
    /// Throughput.
    pub throughput: Throughput,
    /// Mass disconnections seen.
    pub outages: Vec<Outage>,
    /// loadgen's own CPU and memory.
    pub loadgen: Resources,
    /// The server's CPU and memory, from its `/metrics`, if reachable.
    pub server: Option<Resources>,
    /// Reports merged into this one (1 for a single run).
    pub runs_merged: u32,
}

impl Report {
    /// Builds the counts, latency and throughput parts from a run's totals
    /// (the nodes' `Welcome`s; their connected counts are the run's to set).
    pub fn fill_from(&mut self, total: &Interval) {
        self.counters = total.counters.clone();
        for (url, n) in &total.welcomes {
            self.nodes.entry(url.clone()).or_default().welcomes = *n;
        }
        self.errors = total.errors.clone();
        self.error_count = total.error_count();
        self.latency = Metric::ALL
            .iter()
            .map(|m| {
                (
                    m.name().to_owned(),
                    Latency::from_histogram(&total.hist[*m as usize]),
                )
            })
            .collect();
        let secs = self.elapsed_s.max(1e-9);
        let c = &self.counters;
        self.throughput = Throughput {
            msgs_in_per_s: c.msgs_in as f64 / secs,
            msgs_out_per_s: c.msgs_out as f64 / secs,
            writes_out_per_s: c.writes_out as f64 / secs,
            bytes_in_per_s: c.bytes_in as f64 / secs,
            bytes_out_per_s: c.bytes_out as f64 / secs,
        };
    }

    /// The human summary: a latency table, counts, throughput, resources.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let ms = |us: u64| us as f64 / 1000.0;
        let _ = writeln!(
            out,
            "loadgen {} → {}: {} clients, {:.1} s{}",
            self.loadgen_version,
            self.url,
            self.clients,
            self.elapsed_s,
            if self.runs_merged > 1 {
                format!(" ({} reports merged)", self.runs_merged)
            } else {
                String::new()
            }
        );
        // Only a cluster redirects: without a redirected join, the table
        // is left as a single server's always was.
        let rows: Vec<(Metric, &Latency)> = Metric::ALL
            .iter()
            .filter_map(|&m| self.latency.get(m.name()).map(|l| (m, l)))
            .filter(|(m, l)| l.count > 0 || !m.cluster_only())
            .collect();
        let w = rows
            .iter()
            .map(|(m, _)| m.name().len())
            .max()
            .unwrap_or(0)
            .max(16);
        let _ = writeln!(
            out,
            "\n{:<w$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "mean", "count"
        );
        for (m, l) in rows {
            if l.count == 0 {
                let _ = writeln!(out, "{:<w$} {:>9}", m.name(), "-");
                continue;
            }
            let _ = writeln!(
                out,
                "{:<w$} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
                m.name(),
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                l.mean / 1000.0,
                l.count
            );
        }
        let c = &self.counters;
        let _ = writeln!(
            out,
            "\nconnected: peak {} of {}, {} at the end; connects {}",
            self.connected_peak, self.clients, self.connected_at_end, c.connects
        );
        let _ = writeln!(
            out,
            "inputs: sent {}, acked {}, lost in drops {}, in flight at the end {}",
            c.inputs_sent, c.inputs_acked, c.inputs_lost, c.inputs_in_flight_at_end
        );
        let _ = writeln!(
            out,
            "states: {} ({} after a gap); events: {}; pings {}, pongs {}",
            c.states, c.state_gaps, c.events, c.pings, c.pongs
        );
        let _ = writeln!(
            out,
            "reconnects: drops {}, attempts {} ({} failed), resumes ok {}, failed {}, lost state {}, rejoins {}, server restarts seen {}",
            c.drops,
            c.reconnect_attempts,
            c.reconnect_failures,
            c.resumes_ok,
            c.resumes_failed,
            c.resumes_lost_state,
            c.rejoins,
            c.server_restarts_seen
        );
        if self.is_cluster() {
            let _ = writeln!(
                out,
                "cluster: redirects {}, home nodes lost {}, directory unavailable {}, invalid tickets {}",
                c.redirects, c.home_lost, c.directory_unavailable, c.invalid_tickets
            );
            for (url, n) in &self.nodes {
                let _ = writeln!(
                    out,
                    "node {url}: {} connected at the end, {} welcomes",
                    n.connected_at_end, n.welcomes
                );
            }
        }
        for o in &self.outages {
            let back = o
                .all_back_after_s
                .map_or("not all back by the end".to_owned(), |s| {
                    format!("all back after {s:.1} s")
                });
            let _ = writeln!(
                out,
                "outage at {:.1} s: {} → {} connected, {back}",
                o.started_at_s, o.connected_before, o.lowest_connected
            );
        }
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "throughput: in {:.0} msg/s ({:.2} MB/s), out {:.0} msg/s in {:.0} writes/s ({:.2} MB/s)",
            t.msgs_in_per_s,
            t.bytes_in_per_s / 1e6,
            t.msgs_out_per_s,
            t.writes_out_per_s,
            t.bytes_out_per_s / 1e6
        );
        let res = |r: &Resources| {
            format!(
                "{:.1} s CPU ({:.2} cores), peak RSS {:.1} MB",
                r.cpu_s,
                r.cpu_cores,
                r.peak_rss_bytes as f64 / 1e6
            )
        };
        let _ = writeln!(out, "loadgen: {}", res(&self.loadgen));
        match &self.server {
            Some(s) => {
                let _ = writeln!(out, "server:  {}", res(s));
            }
            None => {
                let _ = writeln!(
                    out,
                    "server:  resources unknown (its /metrics was not reachable)"
                );
            }
        }
        if self.error_count == 0 {
            let _ = writeln!(out, "errors: 0");
        } else {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "errors: {} ({})", self.error_count, kinds.join(", "));
        }
        out
    }

    /// Whether the run met a cluster: more than one node, or anything only
    /// a cluster does. A single server's summary leaves the cluster lines
    /// out.
    pub fn is_cluster(&self) -> bool {
        let c = &self.counters;
        self.nodes.len() > 1
            || c.redirects + c.home_lost + c.directory_unavailable + c.invalid_tickets > 0
    }

    /// Merges reports of runs made at the same time from several processes
    /// (or machines) against one server: histograms and counts add up,
    /// throughputs add up, the wall time is the longest.
    pub fn merge(reports: &[Report]) -> anyhow::Result<Report> {
        let (first, rest) = reports
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
        let mut merged = first.clone();
        let mut hist: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
        for (name, l) in &first.latency {
            hist.insert(name.clone(), l.histogram()?);
        }
        for r in rest {
            merged.clients += r.clients;
            merged.elapsed_s = merged.elapsed_s.max(r.elapsed_s);
            merged.counters.add(&r.counters);
            merged.connected_peak += r.connected_peak;
            merged.connected_at_end += r.connected_at_end;
            for (k, n) in &r.errors {
                *merged.errors.entry(k.clone()).or_default() += n;
            }
            for (url, n) in &r.nodes {
                let m = merged.nodes.entry(url.clone()).or_default();
                m.connected_at_end += n.connected_at_end;
                m.welcomes += n.welcomes;
            }
            merged.error_count += r.error_count;
            for (name, l) in &r.latency {
                let h = hist.entry(name.clone()).or_insert_with(new_histogram);
                h.add(l.histogram()?)?;
            }
            let (a, b) = (&mut merged.throughput, &r.throughput);
            a.msgs_in_per_s += b.msgs_in_per_s;
            a.msgs_out_per_s += b.msgs_out_per_s;
            a.writes_out_per_s += b.writes_out_per_s;
            a.bytes_in_per_s += b.bytes_in_per_s;
            a.bytes_out_per_s += b.bytes_out_per_s;
            merged.outages.extend(r.outages.iter().cloned());
            merged.loadgen.cpu_s += r.loadgen.cpu_s;
            merged.loadgen.cpu_cores += r.loadgen.cpu_cores;
            merged.loadgen.peak_rss_bytes =
                merged.loadgen.peak_rss_bytes.max(r.loadgen.peak_rss_bytes);
            // Every loadgen saw the same server; keep the widest view of it.
            if let Some(s) = &r.server {
                let m = merged.server.get_or_insert_with(Resources::default);
                m.cpu_s = m.cpu_s.max(s.cpu_s);
                m.cpu_cores = m.cpu_cores.max(s.cpu_cores);
                m.peak_rss_bytes = m.peak_rss_bytes.max(s.peak_rss_bytes);
            }
            merged.runs_merged += r.runs_merged;
            if merged.url != r.url {
                merged.url = format!("{} + {}", merged.url, r.url);
            }
        }
        merged.latency = hist
            .iter()
            .map(|(name, h)| (name.clone(), Latency::from_histogram(h)))
            .collect();
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with(samples: &[u64], sent: u64) -> Report {
        let mut total = Interval::new();
        for &s in samples {
            total.hist[Metric::InputAck as usize].record(s).unwrap();
        }
        total.counters.inputs_sent = sent;
        total.errors.insert("close_4004".into(), 1);
        total.welcomes.insert("ws://a/ws".into(), sent);
        let mut r = crate::test_report();
        r.fill_from(&total);
        r
    }

    #[test]
    fn merging_reports_equals_one_histogram_of_all_samples() {
        let a: Vec<u64> = (1..=1000).map(|v| v * 7).collect();
        let b: Vec<u64> = (1..=300).map(|v| v * 101 + 5000).collect();
        let both: Vec<u64> = a.iter().chain(&b).copied().collect();
        let merged = Report::merge(&[report_with(&a, 5), report_with(&b, 7)]).unwrap();
        let direct = report_with(&both, 12);
        let (m, d) = (&merged.latency["input_ack"], &direct.latency["input_ack"]);
        assert_eq!(
            (m.count, m.p50, m.p90, m.p99, m.p999, m.max, m.min),
            (d.count, d.p50, d.p90, d.p99, d.p999, d.max, d.min)
        );
        assert_eq!(merged.counters.inputs_sent, 12);
        assert_eq!(merged.error_count, 2);
        assert_eq!(merged.clients, 20);
        assert_eq!(merged.runs_merged, 2);
        assert_eq!(merged.nodes["ws://a/ws"].welcomes, 12);
    }

    #[test]
    fn reports_survive_a_json_round_trip_with_their_histograms() {
        let r = report_with(&[10, 20, 30, 40_000], 3);
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let h = back.latency["input_ack"].histogram().unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h.value_at_quantile(1.0), h.highest_equivalent(40_000));
    }

    #[test]
    fn the_summary_shows_each_percentile_in_milliseconds() {
        let r = report_with(&[1_000; 10], 10);
        let s = r.summary();
        assert!(s.contains("input_ack"), "{s}");
        assert!(s.contains("1.00"), "{s}");
        assert!(s.contains("errors: 1 (close_4004 1)"), "{s}");
        // One node and no redirect: no cluster lines, no empty
        // connect_redirected row.
        assert!(
            !s.contains("cluster:") && !s.contains("connect_redirected"),
            "{s}"
        );
    }

    #[test]
    fn a_cluster_run_shows_its_nodes_and_redirects() {
        let mut r = report_with(&[1_000; 10], 10);
        r.counters.redirects = 4;
        r.counters.home_lost = 1;
        r.nodes
            .entry("ws://a/ws".into())
            .or_default()
            .connected_at_end = 6;
        r.nodes.insert(
            "ws://b/ws".into(),
            NodeCounts {
                connected_at_end: 4,
                welcomes: 5,
            },
        );
        let s = r.summary();
        assert!(s.contains("cluster: redirects 4, home nodes lost 1"), "{s}");
        assert!(
            s.contains("node ws://a/ws: 6 connected at the end, 10 welcomes"),
            "{s}"
        );
        assert!(
            s.contains("node ws://b/ws: 4 connected at the end, 5 welcomes"),
            "{s}"
        );
    }

    #[test]
    fn a_report_from_before_the_cluster_fields_still_reads() {
        let r = report_with(&[10], 1);
        let mut json = serde_json::to_value(&r).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("nodes");
        let counters = obj["counters"].as_object_mut().unwrap();
        for k in [
            "redirects",
            "home_lost",
            "directory_unavailable",
            "invalid_tickets",
        ] {
            counters.remove(k).expect("a counter of the report");
        }
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.counters, r.counters);
        assert!(back.nodes.is_empty());
    }
}
