//! loadgen against a real cluster: a `redis-server` on a free port and two
//! in-process nodes sharing it as their room directory, every client
//! entering through node A. Arena rooms hold 8 players here, so that 40
//! clients need five rooms and the cluster opens some of them on node B
//! (a new room goes to the least-loaded node): those clients are
//! redirected, welcomed on B, and must resume on B after a drop. A node
//! killed mid-run must cost its players their sessions (they come back as
//! new players through A), and nothing else.
//!
//! Needs `redis-server` on the `PATH` (`scripts/test` installs Debian's).

use loadgen::report::Report;
use loadgen::{RunConfig, run};
use server::testing::{TestRedis, TestServer};
use std::time::Duration;

/// Seats in an arena room: small, so that 40 players fill several rooms.
const ROOM_CAPACITY: u16 = 8;

/// Clients in each run.
const CLIENTS: usize = 40;

/// The built-in games with small arena rooms.
fn games() -> Vec<server::game_api::RoomType> {
    vec![
        arena::room_type(arena::ArenaConfig::default()).capacity(ROOM_CAPACITY),
        four::room_type(),
    ]
}

fn config(url: String, secs: f64) -> RunConfig {
    RunConfig {
        // Slow enough that rooms open one after another and each node's
        // record shows its players before the next new room is placed.
        ramp_up: Duration::from_secs(2),
        duration: Duration::from_secs_f64(secs),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        ..RunConfig::new(url, CLIENTS)
    }
}

/// A node on a tokio runtime of its own, so that it can die all at once
/// as a killed process does: every socket closed without a close frame,
/// its directory record no longer refreshed. (`TestServer::kill` only
/// stops the server's main task; its connections would live on.)
struct Node {
    url: String,
    runtime: tokio::runtime::Runtime,
    server: TestServer,
}

impl Node {
    /// Starts a node of `redis` on a new one-thread runtime.
    fn start(redis: &TestRedis) -> Self {
        let redis_url = redis.url();
        // A runtime cannot be entered from the test's own: build it on a
        // plain thread.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            let server = runtime.block_on(TestServer::start_node(games(), &redis_url, &[]));
            Self {
                url: server.url(),
                runtime,
                server,
            }
        })
        .join()
        .expect("the node started")
    }

    /// Ends every task of the node at once, sockets and heartbeat with them.
    fn kill(self) {
        self.runtime.shutdown_background();
        // Its stop signal now goes nowhere.
        drop(self.server);
    }
}

/// The node counts of `url` (zero if the report has none).
fn node(r: &Report, url: &str) -> loadgen::report::NodeCounts {
    r.nodes.get(url).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_entering_through_one_node_play_on_both_and_resume_at_home() {
    let redis = TestRedis::start().await;
    let a = TestServer::start_node(games(), &redis.url(), &[]).await;
    let b = TestServer::start_node(games(), &redis.url(), &[]).await;
    let (a_url, b_url) = (a.url(), b.url());
    let mut cfg = config(a_url.clone(), 6.0);
    cfg.chaos_drop_rate = 0.1;
    // Two seconds without chaos at the end: every client cut is back.
    cfg.chaos_calm = Duration::from_secs(2);
    let r = run(cfg).await.unwrap();
    let c = &r.counters;
    println!("{}", r.summary());
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(r.connected_at_end, CLIENTS, "every client is playing");
    let (at_a, at_b) = (node(&r, &a_url), node(&r, &b_url));
    assert_eq!(r.nodes.len(), 2, "{:?}", r.nodes);
    assert!(
        at_a.connected_at_end > 0 && at_b.connected_at_end > 0,
        "both nodes hold players: {:?}",
        r.nodes
    );
    assert_eq!(at_a.connected_at_end + at_b.connected_at_end, CLIENTS);
    // Every client entered through A, so B welcomed only redirected joins
    // (one redirect each) and resumes of its own sessions.
    assert!(c.redirects > 0, "some joins were redirected to B");
    assert_eq!(r.latency["connect_redirected"].count, c.redirects);
    assert_eq!(r.latency["connect"].count + c.redirects, c.connects);
    assert_eq!(at_a.welcomes + at_b.welcomes, c.connects);
    assert!(
        at_b.welcomes > c.redirects,
        "B welcomed resumes too: {} welcomes, {} redirects",
        at_b.welcomes,
        c.redirects
    );
    // Every resume went home and got its player back; no home was lost.
    assert!(c.drops >= 5, "chaos cut clients: {}", c.drops);
    assert!(c.resumes_ok > 0);
    assert_eq!(
        (
            c.resumes_failed,
            c.resumes_lost_state,
            c.rejoins,
            c.home_lost
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        (c.directory_unavailable, c.invalid_tickets),
        (0, 0),
        "Redis stayed up and every ticket was used in time"
    );
    let summary = r.summary();
    assert!(summary.contains("cluster: redirects"), "{summary}");
    assert!(summary.contains(&format!("node {b_url}:")), "{summary}");
    assert!(a.stop().await && b.stop().await, "nodes stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_of_a_killed_node_come_back_as_new_players_through_the_entry() {
    let redis = TestRedis::start().await;
    let a = TestServer::start_node(games(), &redis.url(), &[]).await;
    let b = Node::start(&redis);
    let (a_url, b_url) = (a.url(), b.url.clone());
    let killer = tokio::spawn(async move {
        // After the ramp-up, with players settled on both nodes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        b.kill();
    });
    let r = run(config(a_url.clone(), 9.0)).await.unwrap();
    killer.await.unwrap();
    let c = &r.counters;
    println!("{}", r.summary());
    // A lost connection to the killed node is explained by its death; a
    // redirect to it while its record lived on is a failed attempt,
    // retried. Neither is an error.
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    let (at_a, at_b) = (node(&r, &a_url), node(&r, &b_url));
    assert!(at_b.welcomes > 0, "B held players before it died");
    assert_eq!(at_b.connected_at_end, 0);
    assert_eq!(at_a.connected_at_end, CLIENTS, "every client is back, on A");
    assert_eq!(r.connected_at_end, CLIENTS);
    // Each of B's players gave its home up once and joined again as a new
    // player; nobody else lost a session.
    assert!(c.home_lost > 0, "B's players lost their home");
    assert!(
        c.home_lost <= at_b.welcomes,
        "{} homes lost, {} welcomes on B",
        c.home_lost,
        at_b.welcomes
    );
    assert_eq!(c.rejoins, c.home_lost);
    assert_eq!(c.resumes_failed, 0, "A forgot no session");
    assert!(
        c.reconnect_failures >= 3 * c.home_lost,
        "three failed resumes before each home was given up"
    );
    assert!(a.stop().await, "node A stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_of_a_node_restarting_with_its_state_wait_for_it_and_resume() {
    let redis = TestRedis::start().await;
    let dir = std::env::temp_dir().join(format!("loadgen-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("b.state");
    let state_arg = state.to_str().unwrap().to_owned();
    let a = TestServer::start_node(games(), &redis.url(), &[]).await;
    let b = TestServer::start_node(games(), &redis.url(), &["--state-file", &state_arg]).await;
    let (a_url, b_url, b_addr) = (a.url(), b.url(), b.addr.to_string());
    let redis_url = redis.url();
    let restarter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(b.stop().await, "B stops cleanly and saves its sessions");
        // Down for longer than three back-offs (100, 200, 400 ms caps) last.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let public = format!("ws://{b_addr}/");
        let args = ["--directory", &redis_url, "--public-url", &public];
        let args = [&args[..], &["--state-file", &state_arg]].concat();
        TestServer::start_on(&b_addr, games(), &args).await
    });
    let r = run(config(a_url.clone(), 10.0)).await.unwrap();
    let b = restarter.await.unwrap();
    let c = &r.counters;
    println!("{}", r.summary());
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(r.connected_at_end, CLIENTS);
    let at_b = node(&r, &b_url);
    assert!(at_b.connected_at_end > 0, "B's players came back to B");
    // They waited for their home through its restart: no session lost, no
    // home given up, although their resumes failed for seconds.
    assert!(c.server_restarts_seen > 0, "B's players saw the 1012");
    assert_eq!((c.home_lost, c.rejoins, c.resumes_failed), (0, 0, 0));
    assert!(c.reconnect_failures >= 3, "resumes failed while B was down");
    assert!(a.stop().await && b.stop().await);
    let _ = std::fs::remove_dir_all(&dir);
}
