//! `join_following` against fake cluster nodes: each node is a real
//! WebSocket endpoint on 127.0.0.1 port 0 that answers every `Hello` with
//! the `Welcome` or `Redirect` its test gives it (then closes with 4019,
//! as a node does), and records the `Hello`s it was sent. The real
//! cluster is exercised by `loadgen/tests/cluster.rs`.

use bytes::Bytes;
use client::{ClientError, ConnectOptions, MAX_REDIRECTS, join_following};
use fastwebsockets::{Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use protocol::{
    ClientMsg, CloseCode, Hello, Redirect, Resume, ResumeToken, RoomRequest, SeatTicket, ServerMsg,
    Welcome,
};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What a fake node answers to a `Hello`.
type Answer = Arc<dyn Fn(&Hello) -> ServerMsg + Send + Sync>;

/// A fake node: its URL and the `Hello`s it received.
struct Node {
    url: String,
    hellos: Arc<Mutex<Vec<Hello>>>,
}

impl Node {
    fn hellos(&self) -> Vec<Hello> {
        self.hellos.lock().unwrap().clone()
    }
}

/// Starts a node that answers each `Hello` with `answer`'s message.
async fn node(answer: impl Fn(&Hello) -> ServerMsg + Send + Sync + 'static) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let hellos = Arc::new(Mutex::new(Vec::new()));
    let answer: Answer = Arc::new(answer);
    let seen = hellos.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (answer, seen) = (answer.clone(), seen.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| serve(req, answer.clone(), seen.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Node { url, hellos }
}

async fn serve(
    mut req: hyper::Request<Incoming>,
    answer: Answer,
    seen: Arc<Mutex<Vec<Hello>>>,
) -> Result<hyper::Response<Empty<Bytes>>, fastwebsockets::WebSocketError> {
    let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let mut ws = upgrade.await.unwrap();
        let frame = ws.read_frame().await.unwrap();
        assert_eq!(frame.opcode, OpCode::Binary);
        let ClientMsg::Hello(hello) = protocol::decode_client(&frame.payload).unwrap() else {
            panic!("the first message is not a Hello");
        };
        let msg = answer(&hello);
        seen.lock().unwrap().push(hello);
        let mut buf = Vec::new();
        protocol::encode_server(&msg, &mut buf);
        ws.write_frame(Frame::binary(Payload::Owned(buf)))
            .await
            .unwrap();
        if matches!(msg, ServerMsg::Redirect(_)) {
            let code = CloseCode::Redirected.code();
            let _ = ws.write_frame(Frame::close(code, b"redirected")).await;
        } else {
            // Hold the session until the client goes.
            while ws
                .read_frame()
                .await
                .is_ok_and(|f| f.opcode != OpCode::Close)
            {}
        }
    });
    Ok(response)
}

fn welcome(player_id: u32) -> ServerMsg {
    ServerMsg::Welcome(Welcome {
        version: protocol::PROTOCOL_VERSION,
        player_id,
        room_id: 1,
        room_type: "arena".into(),
        invite_code: None,
        resume_token: ResumeToken([7; 16]),
        resumed: false,
        tick_hz: 30,
        game: vec![],
    })
}

fn redirect(url: &str, ticket: u8) -> ServerMsg {
    ServerMsg::Redirect(Redirect {
        url: url.to_owned(),
        ticket: SeatTicket([ticket; 16]),
    })
}

#[tokio::test]
async fn a_welcome_on_the_first_node_is_a_join_without_redirect() {
    let a = node(|_| welcome(1)).await;
    let joined = join_following(
        &a.url,
        RoomRequest::quick("arena"),
        None,
        &ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((joined.url.as_str(), joined.redirects), (a.url.as_str(), 0));
    assert_eq!(joined.welcome.player_id, 1);
    assert_eq!(a.hellos()[0].room, RoomRequest::quick("arena"));
}

#[tokio::test]
async fn a_redirect_is_followed_with_its_ticket_and_no_resume() {
    let b = node(|_| welcome(2)).await;
    let b_url = b.url.clone();
    let a = node(move |_| redirect(&b_url, 9)).await;
    let resume = Resume {
        token: ResumeToken([1; 16]),
        last_event: 3,
    };
    let joined = join_following(
        &a.url,
        RoomRequest::quick("arena"),
        Some(resume),
        &ConnectOptions::default(),
    )
    .await
    .unwrap();
    // The home is the node that welcomed, not the one first asked.
    assert_eq!((joined.url.as_str(), joined.redirects), (b.url.as_str(), 1));
    assert_eq!(joined.welcome.player_id, 2);
    assert_eq!(a.hellos()[0].resume, Some(resume));
    let at_b = b.hellos();
    assert_eq!(at_b.len(), 1);
    assert_eq!(
        at_b[0].room,
        RoomRequest::Reserved {
            ticket: SeatTicket([9; 16])
        }
    );
    assert_eq!(at_b[0].resume, None, "the ticket stands for the place");
    // The connection is live on the home node.
    let mut conn = joined.conn;
    conn.close(1000, "done").await.unwrap();
}

/// A quick join at `url`, following redirects, that must fail: its error.
async fn quick_join_refused(url: &str) -> ClientError {
    join_following(
        url,
        RoomRequest::quick("arena"),
        None,
        &ConnectOptions::default(),
    )
    .await
    .err()
    .expect("refused")
}

#[tokio::test]
async fn redirects_past_the_limit_are_refused() {
    // A node that sends every client back to itself.
    let url = Arc::new(Mutex::new(String::new()));
    let own = url.clone();
    let a = node(move |_| redirect(&own.lock().unwrap(), 1)).await;
    *url.lock().unwrap() = a.url.clone();
    let err = quick_join_refused(&a.url).await;
    assert!(matches!(err, ClientError::TooManyRedirects), "{err}");
    assert_eq!(a.hellos().len(), 1 + MAX_REDIRECTS as usize);
}

#[tokio::test]
async fn a_bare_hello_returns_the_redirect_as_an_error() {
    let a = node(|_| redirect("ws://127.0.0.1:1/ws", 4)).await;
    let mut conn = client::connect(&a.url).await.unwrap();
    let err = conn.join(RoomRequest::quick("arena")).await.unwrap_err();
    let ClientError::Redirected(r) = err else {
        panic!("{err}");
    };
    assert_eq!(
        (r.url.as_str(), r.ticket),
        ("ws://127.0.0.1:1/ws", SeatTicket([4; 16]))
    );
    // The node closes with 4019 right after.
    match conn.recv().await.unwrap() {
        client::Event::Closed { code, .. } => assert_eq!(code, CloseCode::Redirected.code()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_to_a_node_that_is_gone_fails_the_join() {
    // The second node is gone: the redirect's connect fails.
    let gone = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("ws://{}/ws", l.local_addr().unwrap())
    };
    let a = node(move |_| redirect(&gone, 2)).await;
    let err = quick_join_refused(&a.url).await;
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
}
