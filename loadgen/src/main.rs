//! The `loadgen` command line: `loadgen [run options]` runs a load and
//! prints a summary; `loadgen merge` combines reports. Exit codes: 0 when
//! every check passed, 1 when an `--assert` or `--baseline` check failed,
//! 2 when the run could not be made (bad options, resource limits).

use clap::{Args, Parser, Subcommand};
use loadgen::report::Report;
use loadgen::verdict::{self, Assertion};
use loadgen::{RunConfig, plot};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// Plays thousands of simulated players of any game against the game
/// server, measures latency with HdrHistogram, breaks connections on
/// purpose, and fails when a run misses its targets.
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Merge JSON reports of runs made at the same time (e.g. from several
    /// machines) into one: histograms are added, not percentiles averaged.
    Merge {
        /// Reports to merge.
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Write the merged report here.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Also draw the merged percentile curves here.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Checks on the merged report, as for a run.
        #[arg(long = "assert", value_name = "CHECK", value_parser = verdict::parse_assertion)]
        asserts: Vec<Assertion>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// WebSocket URL of the server; for a cluster, the entry URL: new
    /// players start there and follow redirects, and each resumes on the
    /// node that welcomed it.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// The game to play (the room type quick-joined), through its bot.
    #[arg(long, default_value = "arena",
          value_parser = clap::builder::PossibleValuesParser::new(loadgen::bots::names()))]
    game: String,
    /// Simulated players.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Players start evenly spread over this time.
    #[arg(long, default_value = "5s", value_parser = duration)]
    ramp_up: Duration,
    /// How long to run after the ramp-up.
    #[arg(long, default_value = "30s", value_parser = duration)]
    duration: Duration,
    /// Times per second each player's bot is asked for a game message
    /// (a turn-based bot sends one only when it is its turn).
    #[arg(long, default_value_t = 20.0)]
    input_hz: f64,
    /// App-level pings per second per player.
    #[arg(long, default_value_t = 1.0)]
    ping_hz: f64,
    /// How a player writes its inputs: per-state (a bot that streams them,
    /// the arena's, writes at most once per state interval it sees, inputs
    /// due meanwhile going out together) or off (each written when due;
    /// the default, so that runs of other scripts keep their load).
    #[arg(long, value_enum, default_value = "off")]
    input_batching: loadgen::InputBatching,
    /// Reconnect back-off: the first delay bound, doubling per attempt, with
    /// full jitter (the browser client's policy).
    #[arg(long, default_value = "1s", value_parser = duration)]
    backoff_base: Duration,
    /// Reconnect back-off: the largest delay bound.
    #[arg(long, default_value = "30s", value_parser = duration)]
    backoff_max: Duration,
    /// Each second, cut this share of connected players abruptly (no close
    /// frame); they reconnect and resume.
    #[arg(long, default_value_t = 0.0)]
    chaos_drop_rate: f64,
    /// Stop the chaos this long before the end of the run, so that every
    /// client cut can be back (and counted connected) by the end.
    #[arg(long, default_value = "0s", value_parser = duration)]
    chaos_calm: Duration,
    /// Seed for movement, schedule phases and chaos choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Deadline for connect + upgrade + Hello/Welcome.
    #[arg(long, default_value = "10s", value_parser = duration)]
    connect_timeout: Duration,
    /// Write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write HdrHistogram interval logs (one per metric) into this directory.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Draw latency percentile curves into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// A check the run must pass, e.g. 'input_ack.p99<=50ms' or 'errors==0'
    /// (repeatable). Metrics: any number of the JSON report by dotted path,
    /// with shorthands (input_ack.p99, resumes_ok, errors, ack_ratio).
    #[arg(long = "assert", value_name = "CHECK", value_parser = verdict::parse_assertion)]
    asserts: Vec<Assertion>,
    /// Compare with this earlier JSON report.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Largest tolerated regression against --baseline.
    #[arg(long, default_value = "15%", value_parser = verdict::parse_fraction)]
    max_regression: f64,
    /// Live progress line: auto (only on a terminal and outside CI), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    progress: String,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// mimalloc, as the server's (see its `main.rs`): thousands of players'
/// buffers and messages from per-thread pages of objects of one size.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Merge {
            reports,
            output,
            plot,
            asserts,
        }) => merge(&reports, output, plot, &asserts),
        None => run(cli.run),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read_report(path: &PathBuf) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a loadgen report: {e}", path.display()))
}

fn write_outputs(
    report: &Report,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = svg {
        std::fs::write(&path, plot::svg(report)?)?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

/// Prints every failed check; true if there were none.
fn verdict(failures: &[String]) -> bool {
    for f in failures {
        println!("{f}");
    }
    if failures.is_empty() {
        true
    } else {
        println!("{} check(s) failed", failures.len());
        false
    }
}

fn merge(
    paths: &[PathBuf],
    output: Option<PathBuf>,
    svg: Option<PathBuf>,
    asserts: &[Assertion],
) -> anyhow::Result<bool> {
    let reports = paths
        .iter()
        .map(read_report)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = Report::merge(&reports)?;
    print!("{}", merged.summary());
    write_outputs(&merged, output, svg)?;
    Ok(verdict(&verdict::check_assertions(&merged, asserts)))
}

fn run(args: RunArgs) -> anyhow::Result<bool> {
    let baseline = args.baseline.as_ref().map(read_report).transpose()?;
    let progress = match args.progress.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
    };
    let game = loadgen::bots::find(&args.game)
        .ok_or_else(|| anyhow::anyhow!("no bot for game {:?}", args.game))?;
    let config = RunConfig {
        url: args.url,
        game,
        clients: args.clients,
        ramp_up: args.ramp_up,
        duration: args.duration,
        input_hz: args.input_hz,
        ping_hz: args.ping_hz,
        input_batching: args.input_batching,
        backoff_base: args.backoff_base,
        backoff_max: args.backoff_max,
        chaos_drop_rate: args.chaos_drop_rate,
        chaos_calm: args.chaos_calm,
        seed: args.seed,
        connect_timeout: args.connect_timeout,
        hdr_log_dir: args.hdr_log,
        progress,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let report = runtime.build()?.block_on(loadgen::run(config))?;
    print!("{}", report.summary());
    write_outputs(&report, args.report, args.plot)?;
    let mut failures = verdict::check_assertions(&report, &args.asserts);
    if let Some(base) = &baseline {
        failures.extend(verdict::compare_with_baseline(
            &report,
            base,
            args.max_regression,
        ));
    }
    Ok(verdict(&failures))
}
