//! What an operator exposing the server needs: TLS on the same port, the
//! Origin allow-list, the per-IP connection cap and limits on the HTTP
//! request head.

use crate::common::*;
use client::{ClientError, ConnectOptions};
use protocol::RoomRequest;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for `localhost`, written to a fresh directory.
struct SelfSigned {
    dir: std::path::PathBuf,
    cert_pem: String,
}

impl SelfSigned {
    fn new(name: &str) -> Self {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!("tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_pem = cert.cert.pem();
        std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        Self { dir, cert_pem }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tls_serves_wss_and_https_on_the_same_port() {
    let cert = SelfSigned::new("wss");
    let (c, k) = (cert.path("cert.pem"), cert.path("key.pem"));
    let server = start(&["--tls-cert", &c, "--tls-key", &k]).await;
    let port = server.addr.port();
    let tls = client::tls_config_trusting(cert.cert_pem.as_bytes()).unwrap();
    let options = ConnectOptions {
        tls: Some(tls.clone()),
        ..Default::default()
    };

    let mut conn = client::connect_with(&format!("wss://localhost:{port}/ws"), &options)
        .await
        .expect("wss connects with the trusted certificate");
    let welcome = conn.join(RoomRequest::quick("arena")).await.unwrap();
    let snap = next_snapshot(&mut conn).await.unwrap();
    assert!(own(&snap, welcome.player_id).is_some());

    // https: the page and the health check over the same port.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");

    // Plain ws:// to a TLS port fails; so does an untrusted certificate.
    assert!(
        client::connect(&format!("ws://127.0.0.1:{port}/ws"))
            .await
            .is_err()
    );
    let other = SelfSigned::new("other");
    let untrusted = ConnectOptions {
        tls: Some(client::tls_config_trusting(other.cert_pem.as_bytes()).unwrap()),
        ..Default::default()
    };
    match client::connect_with(&format!("wss://localhost:{port}/ws"), &untrusted).await {
        Err(ClientError::Tls(_)) => {}
        other => panic!(
            "an untrusted certificate must fail the handshake, got {:?}",
            other.err()
        ),
    }
}

#[tokio::test]
async fn bad_tls_files_fail_at_start() {
    let dir = std::env::temp_dir().join(format!("tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let argv = [
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let config = server::config::Config::from_args(&argv).unwrap();
    let err = server::Server::builder(config)
        .room_types(games(&[]).0)
        .bind()
        .await
        .err()
        .expect("bind refuses bad TLS files");
    assert!(err.to_string().contains("cert.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn upgrades_from_other_origins_get_403() {
    let server = start(&["--allowed-origin", "https://game.example"]).await;
    let with_origin = |origin: &str| ConnectOptions {
        origin: Some(origin.to_owned()),
        ..Default::default()
    };
    match client::connect_with(&server.url(), &with_origin("https://evil.example")).await {
        Err(ClientError::WebSocket(fastwebsockets::WebSocketError::InvalidStatusCode(403))) => {}
        other => panic!("expected 403, got {:?}", other.err()),
    }
    let mut ok = client::connect_with(&server.url(), &with_origin("https://game.example"))
        .await
        .unwrap();
    ok.join(RoomRequest::quick("arena")).await.unwrap();
    // Clients that are not browsers send no Origin and are let in.
    let (_plain, _) = server.join().await;
    assert_eq!(server.metric("game_origins_refused_total").await, 1.0);
    assert_eq!(server.metric("game_players").await, 2.0);
}

#[tokio::test]
async fn connections_past_the_per_ip_cap_are_closed_at_accept() {
    let server = start(&["--max-connections-per-ip", "3"]).await;
    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(server.join().await);
    }
    assert!(
        client::connect(&server.url()).await.is_err(),
        "a fourth connection from 127.0.0.1 is refused"
    );
    // The players under the cap keep playing.
    let mut seq = 0;
    still_playing(&mut players[0].0, &mut seq).await;
    // Places freed are places available again.
    players.truncate(1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let _again = loop {
        if let Ok(mut conn) = client::connect(&server.url()).await {
            conn.join(RoomRequest::quick("arena")).await.unwrap();
            break conn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed places never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Two connections and this request: under the cap.
    assert!(server.metric("game_connections_refused_per_ip_total").await >= 1.0);
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let server = start(&["--max-header-bytes", "8192"]).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let big = "x".repeat(16 * 1024);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    // The server may close before reading everything; only the answer counts.
    let _ = tcp.write_all(req.as_bytes()).await;
    let mut response = Vec::new();
    let _ = within("431 answer", tcp.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
}

/// Connects, then sends the request head one byte at a time, slower than
/// the header deadline allows; returns when the server hangs up.
async fn slow_loris(addr: std::net::SocketAddr, gap: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head =
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    for byte in head.iter().cycle() {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        // A read of 0 bytes (or an error) means the server hung up.
        let mut buf = [0u8; 64];
        match tokio::time::timeout(gap, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the server never cut the slow-loris client off"
        );
    }
    started.elapsed()
}

#[tokio::test]
async fn slow_loris_handshakes_are_cut_off_while_others_play() {
    let server = start(&["--header-timeout", "1s"]).await;
    let (mut player, _) = server.join().await;
    let addr = server.addr;
    let lorises: Vec<_> = (0..50)
        .map(|_| tokio::spawn(slow_loris(addr, Duration::from_millis(100))))
        .collect();
    let mut seq = 0;
    for _ in 0..10 {
        still_playing(&mut player, &mut seq).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for loris in lorises {
        let lasted = within("slow loris cut off", loris).await.unwrap();
        assert!(
            lasted >= Duration::from_millis(900),
            "cut off by the deadline, not before: {lasted:?}"
        );
        assert!(
            lasted < Duration::from_secs(5),
            "cut off soon after the deadline: {lasted:?}"
        );
    }
    still_playing(&mut player, &mut seq).await;
}

#[tokio::test]
async fn a_thousand_half_open_connections_are_dropped_and_cost_the_players_nothing() {
    let server = start(&["--header-timeout", "2s"]).await;
    let (mut player, _) = server.join().await;
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut seq = 0;
    for _ in 0..10 {
        still_playing(&mut player, &mut seq).await;
    }
    // Every one of them is hung up on after the header deadline.
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let waits: Vec<_> = idle
        .into_iter()
        .map(|mut tcp| {
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(PATIENCE, tcp.read(&mut buf)).await
                {
                    closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in waits {
        w.await.unwrap();
    }
    assert_eq!(closed.load(std::sync::atomic::Ordering::Relaxed), 1000);
    still_playing(&mut player, &mut seq).await;
}
