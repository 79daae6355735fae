//! One simulated player: connects, plays, and comes back after drops the
//! way the browser client does.
//!
//! A player loops over connections. Each connection runs a writer future
//! (inputs at `--input-hz` on a fixed schedule, pings at `--ping-hz`, chaos
//! drops, the final clean leave) and a reader future (every snapshot and
//! pong, acks, jitter, the player's own state) in one task; the reader's
//! `recv` is never cancelled mid-connection. Between connections it waits
//! out an exponential back-off with full jitter, reset by every successful
//! handshake, and resumes with its token.
//!
//! Latencies are measured from *scheduled* times: an input scheduled at
//! t₀ but sent late because the generator stalled still counts from t₀, so
//! a stalled generator cannot hide latency (coordinated omission).

use crate::RunCtx;
use crate::stats::{Local, Metric};
use client::{ClientError, Connection, Event, Reader, Writer};
use protocol::{
    ClientMsg, CloseCode, EntityKind, Input, Ping, ResumeToken, Retry, ServerMsg, Welcome,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a client moves its batch into the shared stats even when the
/// batch is not full, so the live view and interval logs stay current.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Inputs a connection keeps waiting for their ack; past it the oldest is
/// counted lost. A server that acks nothing for this long (50 s at 20 Hz)
/// has failed anyway.
const MAX_PENDING_INPUTS: usize = 1000;

/// How long the final clean leave may take.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sixteen evenly spaced directions of full deflection, for the movement
/// pattern.
const DIRECTIONS: [(i8, i8); 16] = [
    (127, 0),
    (117, 49),
    (90, 90),
    (49, 117),
    (0, 127),
    (-49, 117),
    (-90, 90),
    (-117, 49),
    (-127, 0),
    (-117, -49),
    (-90, -90),
    (-49, -117),
    (0, -127),
    (49, -117),
    (90, -90),
    (117, -49),
];

/// How the run controls one player from outside.
#[derive(Default)]
pub struct PlayerCtl {
    /// True while the player has a live session.
    pub connected: AtomicBool,
    /// Set by the chaos task to cut the connection.
    pub kill: AtomicBool,
    /// Wakes the player's writer when `kill` is set.
    pub wake: Notify,
}

/// The delay before reconnect attempt `attempt` (0-based): uniformly random
/// in `[0, min(max, base × 2^attempt))` — "full jitter", which spreads a
/// crowd of reconnecting clients instead of letting them retry in waves.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let cap = base
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(max);
    cap.mul_f64(rng.random::<f64>())
}

/// What a player remembers of its session across connections.
#[derive(Clone, Copy, Debug)]
struct Memory {
    /// Token to resume with.
    token: ResumeToken,
    /// The player id the session must keep.
    player: u32,
    /// Score last seen in a snapshot; a resume must not lose it.
    score: u32,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The run is over and the player left cleanly.
    Stopped,
    /// Cut on purpose by chaos.
    ChaosDrop,
    /// The server closed with this code.
    Closed(u16),
    /// The connection failed without a close frame.
    Lost(&'static str),
}

/// Counts kept by the writer future while the reader records the rest.
#[derive(Default)]
struct WriterCounts {
    inputs: u64,
    pings: u64,
    bytes: u64,
}

/// Runs player `id` until the run stops.
pub async fn run_player(id: usize, ctx: Arc<RunCtx>) {
    let ctl = ctx.players[id].clone();
    let cfg = &ctx.config;
    let mut rng =
        SmallRng::seed_from_u64(cfg.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut local = Local::default();
    let mut stop = ctx.stop.clone();
    let mut memory: Option<Memory> = None;
    let mut attempt = 0u32;
    let mut lost_at: Option<Instant> = None;
    let mut ever_connected = false;
    let mut seq = 0u32;
    let mut rejoining = false;
    while !*stop.borrow() {
        let started = Instant::now();
        if lost_at.is_some() {
            local.counters.reconnect_attempts += 1;
        }
        let resume = memory.map(|m| m.token);
        let handshake = tokio::time::timeout(cfg.connect_timeout, connect(&cfg.url, resume)).await;
        match handshake {
            Ok(Ok((conn, welcome))) => {
                local.record(Metric::Connect, micros(started.elapsed()));
                local.counters.connects += 1;
                if let Some(at) = lost_at.take() {
                    local.record(Metric::Reconnect, micros(at.elapsed()));
                }
                if rejoining {
                    local.counters.rejoins += 1;
                    rejoining = false;
                }
                let resumed_from = match memory {
                    Some(m) if welcome.resumed => {
                        if m.player != welcome.player_id {
                            local.error("resume_wrong_player");
                        }
                        Some(m.score)
                    }
                    _ => None,
                };
                memory = Some(Memory {
                    token: welcome.resume_token,
                    player: welcome.player_id,
                    score: memory.filter(|_| welcome.resumed).map_or(0, |m| m.score),
                });
                ever_connected = true;
                attempt = 0;
                ctl.kill.store(false, Relaxed);
                ctl.connected.store(true, Relaxed);
                ctx.stats.connected.fetch_add(1, Relaxed);
                let mem = memory.as_mut().expect("set above");
                let end = play(
                    conn,
                    &welcome,
                    &ctx,
                    &ctl,
                    &mut rng,
                    &mut local,
                    id,
                    &mut seq,
                    mem,
                    resumed_from,
                )
                .await;
                ctx.stats.connected.fetch_sub(1, Relaxed);
                ctl.connected.store(false, Relaxed);
                match end {
                    End::Stopped => break,
                    End::ChaosDrop => {
                        local.counters.drops += 1;
                        lost_at = Some(Instant::now());
                    }
                    End::Lost(kind) => {
                        local.error(kind);
                        lost_at = Some(Instant::now());
                    }
                    End::Closed(code) => {
                        let retry =
                            CloseCode::from_code(code).map_or(Retry::Resume, CloseCode::retry);
                        if code == CloseCode::GoingAway.code()
                            || code == CloseCode::ServiceRestart.code()
                        {
                            local.counters.server_restarts_seen += 1;
                        } else if code == CloseCode::Normal.code() && *stop.borrow() {
                            break;
                        } else {
                            local.error(format!("close_{code}"));
                        }
                        match retry {
                            Retry::Resume => {}
                            Retry::Rejoin => {
                                memory = None;
                                rejoining = true;
                            }
                            Retry::Stop => {
                                // A client told not to come back stays out
                                // for the rest of the run, as a browser would.
                                ctx.stats.flush(id, &mut local);
                                crate::stopped(&mut stop).await;
                                break;
                            }
                        }
                        lost_at = Some(Instant::now());
                    }
                }
            }
            Ok(Err(ClientError::Closed { code, .. }))
                if code == CloseCode::InvalidResumeToken.code() =>
            {
                // The session is gone (expired, or the server restarted
                // without it): join again as a new player.
                local.counters.resumes_failed += 1;
                memory = None;
                rejoining = true;
                continue;
            }
            Ok(Err(e)) => {
                if ever_connected {
                    local.counters.reconnect_failures += 1;
                } else {
                    local.error(connect_error_kind(&e));
                }
            }
            Err(_) => {
                if ever_connected {
                    local.counters.reconnect_failures += 1;
                } else {
                    local.error("connect_timeout");
                }
            }
        }
        let delay = backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max, &mut rng);
        attempt = attempt.saturating_add(1);
        ctx.stats.flush(id, &mut local);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = crate::stopped(&mut stop) => break,
        }
    }
    ctx.stats.flush(id, &mut local);
}

async fn connect(
    url: &str,
    resume: Option<ResumeToken>,
) -> Result<(Connection, Welcome), ClientError> {
    let mut conn = client::connect(url).await?;
    let welcome = conn.hello(resume).await?;
    Ok((conn, welcome))
}

fn connect_error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Connect(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connect_refused".into()
        }
        ClientError::Connect(_) => "connect_io".into(),
        ClientError::Closed { code, .. } => format!("refused_{code}"),
        ClientError::WebSocket(_) => "handshake_failed".into(),
        ClientError::Decode(_) | ClientError::Unexpected(_) => "protocol_error".into(),
        ClientError::BadUrl(_) => "bad_url".into(),
        ClientError::Tls(_) => "tls_failed".into(),
    }
}

/// The player's own entity in a snapshot. Ids are unique per kind only: a
/// pickup may carry the player's number.
fn own_entity(s: &protocol::Snapshot, player: u32) -> Option<&protocol::Entity> {
    s.entities.iter().find(|e| {
        e.id == player && matches!(e.kind, EntityKind::Player | EntityKind::DroppedPlayer)
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Plays one connection until it ends.
#[allow(clippy::too_many_arguments)]
async fn play(
    conn: Connection,
    welcome: &Welcome,
    ctx: &RunCtx,
    ctl: &PlayerCtl,
    rng: &mut SmallRng,
    local: &mut Local,
    id: usize,
    seq: &mut u32,
    memory: &mut Memory,
    resumed_from: Option<u32>,
) -> End {
    let (reader, writer) = conn.split();
    let pending = Mutex::new(VecDeque::<(u32, Instant)>::new());
    let tick_period = Duration::from_secs(1) / u32::from(welcome.tick_hz.max(1));
    let mut wcounts = WriterCounts::default();
    let mut lost = 0u64;
    let end = {
        let reading = read_loop(
            reader,
            ctx,
            local,
            id,
            &pending,
            tick_period,
            memory,
            resumed_from,
        );
        let writing = write_loop(
            writer,
            ctx,
            ctl,
            rng,
            seq,
            &pending,
            &mut wcounts,
            &mut lost,
        );
        tokio::pin!(reading);
        tokio::pin!(writing);
        let end = tokio::select! {
            end = &mut reading => end,
            end = &mut writing => end,
        };
        if end == End::Stopped {
            // The writer sent the leave; let the reader see the answer.
            let _ = tokio::time::timeout(LEAVE_TIMEOUT, &mut reading).await;
            End::Stopped
        } else if *ctx.stop.borrow() && end == End::Closed(CloseCode::Normal.code()) {
            End::Stopped
        } else {
            end
        }
    };
    let left = pending
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .len() as u64;
    let c = &mut local.counters;
    c.inputs_sent += wcounts.inputs;
    c.pings += wcounts.pings;
    c.msgs_out += wcounts.inputs + wcounts.pings;
    c.bytes_out += wcounts.bytes;
    c.inputs_lost += lost;
    if end == End::Stopped {
        c.inputs_in_flight_at_end += left;
    } else {
        c.inputs_lost += left;
    }
    end
}

#[allow(clippy::too_many_arguments)]
async fn write_loop(
    mut writer: Writer,
    ctx: &RunCtx,
    ctl: &PlayerCtl,
    rng: &mut SmallRng,
    seq: &mut u32,
    pending: &Mutex<VecDeque<(u32, Instant)>>,
    counts: &mut WriterCounts,
    lost: &mut u64,
) -> End {
    let cfg = &ctx.config;
    let mut stop = ctx.stop.clone();
    let now = tokio::time::Instant::now();
    // Each client starts its schedules at a random phase so that thousands
    // of clients do not send in lock-step.
    let input_period = Duration::from_secs_f64(1.0 / cfg.input_hz);
    let mut inputs =
        tokio::time::interval_at(now + input_period.mul_f64(rng.random()), input_period);
    let ping_period = Duration::from_secs_f64(1.0 / cfg.ping_hz);
    let mut pings = tokio::time::interval_at(now + ping_period.mul_f64(rng.random()), ping_period);
    let mut direction = DIRECTIONS[rng.random_range(0..DIRECTIONS.len())];
    // Change direction about every two seconds.
    let turn_chance = (1.0 / (2.0 * cfg.input_hz)).min(1.0);
    // Long-lived futures, polled again after each wake-up instead of being
    // rebuilt: this loop runs 20 times a second for every client.
    let stopping = crate::stopped(&mut stop);
    tokio::pin!(stopping);
    let woken = ctl.wake.notified();
    tokio::pin!(woken);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopping => {
                let _ = writer.close(CloseCode::Normal.code(), "run over").await;
                return End::Stopped;
            }
            _ = &mut woken => {
                woken.set(ctl.wake.notified());
                if ctl.kill.swap(false, Relaxed) {
                    return End::ChaosDrop;
                }
            }
            scheduled = inputs.tick() => {
                if rng.random_bool(turn_chance) {
                    direction = DIRECTIONS[rng.random_range(0..DIRECTIONS.len())];
                }
                *seq = seq.wrapping_add(1);
                {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    if p.len() >= MAX_PENDING_INPUTS {
                        p.pop_front();
                        *lost += 1;
                    }
                    p.push_back((*seq, scheduled.into_std()));
                }
                let msg = ClientMsg::Input(Input { seq: *seq, dx: direction.0, dy: direction.1 });
                match writer.send(&msg).await {
                    Ok(n) => {
                        counts.inputs += 1;
                        counts.bytes += n as u64;
                    }
                    Err(_) => return End::Lost("connection_lost"),
                }
            }
            scheduled = pings.tick() => {
                let t = micros(scheduled.into_std().saturating_duration_since(ctx.start));
                match writer.send(&ClientMsg::Ping(Ping { t })).await {
                    Ok(n) => {
                        counts.pings += 1;
                        counts.bytes += n as u64;
                    }
                    Err(_) => return End::Lost("connection_lost"),
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut reader: Reader,
    ctx: &RunCtx,
    local: &mut Local,
    id: usize,
    pending: &Mutex<VecDeque<(u32, Instant)>>,
    tick_period: Duration,
    memory: &mut Memory,
    mut resumed_from: Option<u32>,
) -> End {
    let mut last_snapshot: Option<Instant> = None;
    let mut last_flush = Instant::now();
    loop {
        let event = reader.recv().await;
        let now = Instant::now();
        let mut full = false;
        match event {
            Ok(Event::Msg(ServerMsg::Snapshot(s))) => {
                let c = &mut local.counters;
                c.snapshots += 1;
                c.msgs_in += 1;
                {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    while p.front().is_some_and(|&(seq, _)| seq <= s.ack) {
                        let (_, scheduled) = p.pop_front().expect("checked");
                        local.counters.inputs_acked += 1;
                        full |= local.record(
                            Metric::InputAck,
                            micros(now.saturating_duration_since(scheduled)),
                        );
                    }
                }
                if let Some(prev) = last_snapshot {
                    let gap = now.saturating_duration_since(prev);
                    let jitter = gap.abs_diff(tick_period);
                    full |= local.record(Metric::SnapshotJitter, micros(jitter));
                }
                last_snapshot = Some(now);
                if let Some(me) = own_entity(&s, memory.player) {
                    if let Some(before) = resumed_from.take() {
                        if me.score >= before {
                            local.counters.resumes_ok += 1;
                        } else {
                            local.counters.resumes_lost_state += 1;
                            local.error("resume_lost_score");
                        }
                    }
                    memory.score = me.score;
                }
            }
            Ok(Event::Msg(ServerMsg::Pong(p))) => {
                local.counters.pongs += 1;
                local.counters.msgs_in += 1;
                let sent = ctx.start + Duration::from_micros(p.t);
                full |= local.record(Metric::PingRtt, micros(now.saturating_duration_since(sent)));
            }
            Ok(Event::Msg(ServerMsg::Welcome(_))) => return End::Lost("protocol_error"),
            Ok(Event::Closed { code, .. }) | Err(ClientError::Closed { code, .. }) => {
                local.counters.bytes_in += reader.take_bytes_received();
                return End::Closed(code);
            }
            Err(ClientError::Decode(_) | ClientError::Unexpected(_)) => {
                return End::Lost("protocol_error");
            }
            Err(_) => {
                local.counters.bytes_in += reader.take_bytes_received();
                return End::Lost("connection_lost");
            }
        }
        if full || now.duration_since(last_flush) >= FLUSH_EVERY {
            local.counters.bytes_in += reader.take_bytes_received();
            ctx.stats.flush(id, local);
            last_flush = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_entity_ignores_pickups_with_the_same_number() {
        let e = |id, kind, score| protocol::Entity {
            id,
            kind,
            x: 1,
            y: 1,
            score,
        };
        let s = protocol::Snapshot {
            tick: 1,
            ack: 0,
            players: 2,
            entities: vec![
                e(7, EntityKind::Pickup, 0),
                e(7, EntityKind::Player, 5),
                e(8, EntityKind::Player, 1),
            ],
        };
        assert_eq!(own_entity(&s, 7).map(|e| e.score), Some(5));
        assert_eq!(own_entity(&s, 9), None);
    }

    #[test]
    fn backoff_is_full_jitter_below_a_doubling_cap() {
        let mut rng = SmallRng::seed_from_u64(1);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..10 {
            let cap = (base * 2u32.pow(attempt)).min(max);
            let delays: Vec<_> = (0..2000)
                .map(|_| backoff_delay(attempt, base, max, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| *d < cap), "attempt {attempt}");
            // Full jitter: the delays spread over the whole range.
            assert!(delays.iter().any(|d| *d < cap / 10), "attempt {attempt}");
            assert!(
                delays.iter().any(|d| *d > cap * 9 / 10),
                "attempt {attempt}"
            );
        }
        assert!(
            backoff_delay(200, base, max, &mut rng) < max,
            "huge attempts stay capped"
        );
    }
}
