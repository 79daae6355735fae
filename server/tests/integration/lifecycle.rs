//! Graceful shutdown.

use crate::common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn graceful_shutdown_sends_1001_to_every_client_and_returns_in_time() {
    let server = start(&["--room-capacity", "2", "--shutdown-timeout", "5s"]).await;
    let addr = server.addr;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut conn, _) = server.join().await;
        next_snapshot(&mut conn).await.unwrap();
        clients.push(conn);
    }
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    for conn in &mut clients {
        assert_eq!(close_code(conn).await, 1001);
    }
    let clean = within("server stop", stopping).await.unwrap();
    assert!(clean, "every task finished within the shutdown timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The port no longer accepts connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
