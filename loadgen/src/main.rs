//! `loadgen`: the load generator for the game server. This first version
//! only parses its options; the simulated players arrive with the next
//! piece of work (see the issue tracker), and until then it refuses to run
//! rather than pretend to measure anything.

use clap::Parser;

/// Plays thousands of simulated players against the game server and
/// measures latency (not yet functional: prints this help and exits).
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Number of simulated clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
}

fn main() {
    let args = Args::parse();
    eprintln!(
        "loadgen: simulated players are not built yet; nothing was sent to {} ({} clients requested)",
        args.url, args.clients
    );
    std::process::exit(2);
}
