//! The `floor` binary end to end on 127.0.0.1: a server and its clients
//! exchange frames, inputs, pings and pongs, and every count adds up; sizes
//! that differ between the two sides show up as unknown messages.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn floor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floor"))
}

/// `floor serve` on a free port with these extra flags, and its address.
fn serve(extra: &[&str]) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let mut child = floor()
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start floor serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let listening: Value = serde_json::from_str(&line).expect("a JSON line");
    let addr = listening["addr"].as_str().expect("the address").to_string();
    (child, addr, out)
}

/// Stops `floor serve` with SIGTERM and returns its closing line.
fn stop(mut child: Child, mut out: BufReader<std::process::ChildStdout>) -> Value {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(child.wait().unwrap().success());
    serde_json::from_str(&line).expect("the closing JSON line")
}

/// `floor clients` against `addr` with a window of a second and a half;
/// their report.
fn clients(addr: &str, extra: &[&str]) -> Value {
    let report = std::env::temp_dir().join(format!(
        "floor-test-{}-{}.json",
        std::process::id(),
        addr.replace([':', '.'], "-")
    ));
    let out = floor()
        .args([
            "clients",
            "--connect",
            addr,
            "--clients",
            "20",
            "--ramp-up",
            "200ms",
        ])
        .args([
            "--settle",
            "100ms",
            "--duration",
            "1500ms",
            "--threads",
            "1",
        ])
        .args(["--ping-hz", "10", "--input-hz", "10", "--report"])
        .arg(&report)
        .args(extra)
        .output()
        .expect("run floor clients");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn frames_inputs_pings_and_pongs_all_add_up() {
    let (server, addr, out) = serve(&["--tick-hz", "30", "--frame-bytes", "90"]);
    let report = clients(&addr, &["--tick-hz", "30", "--frame-bytes", "90"]);
    let totals = stop(server, out);

    let window = &report["window"];
    // 20 clients at 30 Hz for 1.5 s is 900 frames; allow for a late tick.
    assert!(count(window, "frames") >= 700, "{report}");
    assert_eq!(count(&report, "unknown_messages"), 0, "{report}");
    let (sent, received) = (
        count(&report, "pings_sent"),
        count(&report, "pongs_received"),
    );
    // 20 clients at 10 Hz for about 1.8 s; the last ones' pongs may be in
    // flight when the clients stop.
    assert!(sent >= 300, "{report}");
    assert!(received + 20 >= sent && received <= sent, "{report}");

    assert_eq!(count(&totals, "unknown_in"), 0, "{totals}");
    assert_eq!(count(&totals, "pongs_partial"), 0, "{totals}");
    assert_eq!(
        count(&totals, "pings"),
        sent,
        "every ping was read: {totals}"
    );
    assert_eq!(
        count(&totals, "pongs") + count(&totals, "pongs_dropped"),
        sent,
        "{totals}"
    );
    assert!(count(&totals, "pongs") >= received, "{totals}");
}

#[test]
fn sizes_that_differ_between_the_sides_show_as_unknown_messages() {
    let (server, addr, out) = serve(&["--pong-bytes", "17", "--input-bytes", "7"]);
    // Pongs of 17 bytes read as 20: the stream's boundaries are lost.
    let report = clients(&addr, &["--pong-bytes", "20", "--input-bytes", "9"]);
    let totals = stop(server, out);
    assert!(count(&report, "unknown_messages") > 0, "{report}");
    assert!(count(&totals, "unknown_in") > 0, "{totals}");
}

#[test]
fn linger_keeps_the_clients_running_after_the_window_and_out_of_the_report() {
    let (server, addr, out) = serve(&["--tick-hz", "30"]);
    let report = clients(&addr, &["--tick-hz", "30", "--linger", "1s"]);
    let totals = stop(server, out);

    assert_eq!(report["linger_s"].as_f64(), Some(1.0), "{report}");
    // The window is the 1.5 s asked for; with the linger inside it would
    // be 2.5 s or more.
    let seconds = report["window"]["seconds"].as_f64().unwrap();
    assert!((1.5..2.5).contains(&seconds), "{report}");
    // Pings count over the whole run: 20 clients at 10 Hz for about 2.8 s
    // with the linger (about 1.8 s without it), every one read.
    let sent = count(&report, "pings_sent");
    assert!(sent >= 450, "{report}");
    assert_eq!(count(&totals, "pings"), sent, "{totals}");
    assert_eq!(count(&report, "disconnects"), 0, "{report}");
}
