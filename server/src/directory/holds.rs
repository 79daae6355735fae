//! Seats held across nodes. When a node sends a player to another, it
//! first asks that node, over the node's Redis channel, to hold a seat for
//! the player's room request; the other node places it in its lobby (the
//! seat counts in the room from then on, like any join on its way), keeps
//! the [`Reservation`] under a fresh random ticket, and answers with the
//! ticket or with its refusal. The player then presents the ticket there
//! ([`protocol::RoomRequest::Reserved`]) and takes the seat; a ticket not
//! presented within [`super::TICKET_TTL`] gives its seat back.
//!
//! Each node listens on `game:rpc:<node id>`; requests and answers are
//! JSON [`Rpc`] messages, an answer going to the asking node's channel
//! with the request's number. Tickets live only in the memory of the node
//! that holds the seat: a ticket is good there once, and nowhere else.

use crate::room::lobby::Reservation;
use protocol::{CloseCode, RoomRequest, SeatTicket};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A node's channel.
pub(super) fn channel(node: &str) -> String {
    format!("game:rpc:{node}")
}

/// A message on a node's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Rpc {
    /// Hold a seat for `request`; answer on `from`'s channel.
    Hold {
        /// The asker's number for this request.
        id: u64,
        /// The asking node.
        from: String,
        /// Where to seat the player (never `Reserved`).
        request: RoomRequest,
    },
    /// The answer to a `Hold`.
    Held {
        /// The `Hold`'s number.
        id: u64,
        /// The ticket (hex) when the seat is held, or why not.
        answer: Answer,
    },
}

/// What a node answered to a `Hold`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Answer {
    /// The seat is held under this ticket (hex).
    Ticket(String),
    /// Refused with this close code and reason, as a join there would be.
    Refused(u16, String),
}

impl Answer {
    /// The answer for a placement attempt's outcome, holding the seat in
    /// `held` when there is one.
    pub(super) fn of(placed: Result<Reservation, crate::room::Refusal>, held: &Held) -> Self {
        match placed {
            Ok(reservation) => Self::Ticket(held.hold(reservation).to_hex()),
            Err(refusal) => Self::Refused(refusal.code.code(), refusal.reason.into_owned()),
        }
    }

    /// The refusal to pass on to the player, or the ticket.
    pub(super) fn into_result(self) -> Result<SeatTicket, crate::room::Refusal> {
        match self {
            Self::Ticket(hex) => SeatTicket::from_hex(&hex).ok_or_else(|| {
                crate::room::Refusal::new(CloseCode::InternalError, "a node answered a bad ticket")
            }),
            Self::Refused(code, reason) => Err(crate::room::Refusal::new(
                CloseCode::from_code(code).unwrap_or(CloseCode::InternalError),
                reason,
            )),
        }
    }
}

/// Seats this node holds for players other nodes are sending here.
#[derive(Default)]
pub(super) struct Held {
    seats: Mutex<HashMap<SeatTicket, (Instant, Reservation)>>,
    /// Seats given back because their ticket was never presented.
    pub(super) expired: AtomicU64,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SeatTicket, (Instant, Reservation)>> {
        self.seats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `reservation` under a fresh ticket.
    pub(super) fn hold(&self, reservation: Reservation) -> SeatTicket {
        let ticket = SeatTicket(crate::room::random_bytes());
        self.lock().insert(ticket, (Instant::now(), reservation));
        ticket
    }

    /// The seat held under `ticket`, once.
    pub(super) fn take(&self, ticket: &SeatTicket) -> Option<Reservation> {
        self.lock().remove(ticket).map(|(_, r)| r)
    }

    /// Gives back the seats whose tickets are older than `ttl`.
    pub(super) fn expire(&self, ttl: Duration) {
        let stale: Vec<Reservation> = {
            let mut seats = self.lock();
            let old: Vec<SeatTicket> = seats
                .iter()
                .filter(|(_, (at, _))| at.elapsed() > ttl)
                .map(|(t, _)| *t)
                .collect();
            old.iter()
                .filter_map(|t| seats.remove(t).map(|(_, r)| r))
                .collect()
        };
        self.expired.fetch_add(stale.len() as u64, Relaxed);
        // Dropped outside the lock: giving a seat back takes the lobby's.
        drop(stale);
    }

    /// Seats held now.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Answers this node is waiting for, by request number.
#[derive(Default)]
pub(super) struct Waiting {
    next: AtomicU64,
    senders: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answer>>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new request number, and where its answer will arrive.
    pub(super) fn open(&self) -> (u64, oneshot::Receiver<Answer>) {
        let id = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        (id, rx)
    }

    /// Stops waiting for `id` (it failed or timed out).
    pub(super) fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands an answer to whoever waits for it (nobody, if it came late).
    pub(super) fn answer(&self, id: u64, answer: Answer) {
        if let Some(tx) = self.lock().remove(&id) {
            let _ = tx.send(answer);
        }
    }
}
