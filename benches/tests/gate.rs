//! The regression gate trips on a deliberate slowdown and passes on an
//! unchanged build. (This test uses the test profile's binary with a
//! baseline it records itself; CI runs the release binary against the
//! committed `benches/baseline.json`.)

use std::process::Command;

fn gate(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-gate"))
        .args(args)
        .output()
        .expect("run bench-gate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_doubled_encode_trips_the_gate_and_an_unchanged_build_passes() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        panic!("valgrind is required for the instruction-count gate: apt-get install valgrind");
    }
    let dir = std::env::temp_dir().join(format!("bench-gate-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.json");
    let baseline = baseline.to_str().unwrap();
    // A small world keeps callgrind quick on a debug build.
    let small = ["--players", "100"];
    let with = |extra: &[&str]| -> Vec<String> {
        small.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str]| {
        let args = with(extra);
        gate(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(run(&["--update", "--baseline", baseline]).0, Some(0));

    let (code, out) = run(&["--baseline", baseline]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("every count is within its tolerance"), "{out}");

    let (code, out) = run(&["--baseline", baseline, "--slowdown", "encode"]);
    assert_eq!(code, Some(1), "{out}");
    let tick = out
        .lines()
        .find(|l| l.starts_with("tick_instructions"))
        .unwrap();
    assert!(tick.ends_with("REGRESSION"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("message_decode_instructions") && l.ends_with("ok")),
        "{out}"
    );

    // A baseline of another size is refused rather than compared.
    let (code, out) = gate(&["--players", "50", "--baseline", baseline]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("measured with 100 players"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
