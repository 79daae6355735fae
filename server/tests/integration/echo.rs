//! The `/echo` conformance endpoint: off by default; when on, it echoes text
//! and binary through the same connection layer and limits as `/ws`.

use crate::common::*;
use client::RawEvent;
use fastwebsockets::{Frame, OpCode, Payload};

#[tokio::test]
async fn echo_is_off_unless_enabled() {
    let server = start(&[]).await;
    let url = format!("ws://{}/echo", server.addr);
    assert!(
        client::connect(&url).await.is_err(),
        "no upgrade at /echo by default"
    );
}

#[tokio::test]
async fn echo_returns_text_and_binary_and_keeps_the_limits() {
    let server = start(&["--echo-route", "--max-message-size", "1000"]).await;
    let url = format!("ws://{}/echo", server.addr);
    let mut conn = client::connect(&url).await.unwrap();

    conn.send_frame(Frame::text(Payload::Owned("héllo".as_bytes().to_vec())))
        .await
        .unwrap();
    assert_eq!(
        conn.recv_frame().await.unwrap(),
        RawEvent::Frame {
            opcode: OpCode::Text,
            payload: "héllo".as_bytes().to_vec()
        }
    );
    // A message in fragments that split a character comes back whole.
    let bytes = "ünïcode".as_bytes();
    conn.send_frame(Frame::new(
        false,
        OpCode::Text,
        None,
        Payload::Owned(bytes[..1].to_vec()),
    ))
    .await
    .unwrap();
    conn.send_frame(Frame::new(
        true,
        OpCode::Continuation,
        None,
        Payload::Owned(bytes[1..].to_vec()),
    ))
    .await
    .unwrap();
    assert_eq!(
        conn.recv_frame().await.unwrap(),
        RawEvent::Frame {
            opcode: OpCode::Text,
            payload: bytes.to_vec()
        }
    );
    conn.send_frame(Frame::binary(Payload::Owned(vec![0, 255, 7])))
        .await
        .unwrap();
    assert_eq!(
        conn.recv_frame().await.unwrap(),
        RawEvent::Frame {
            opcode: OpCode::Binary,
            payload: vec![0, 255, 7]
        }
    );

    // Invalid UTF-8 fails at the first bad fragment, before the message ends.
    conn.send_frame(Frame::new(
        false,
        OpCode::Text,
        None,
        Payload::Owned(vec![b'o', b'k', 0xff]),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut conn).await, 1007);

    // The message size limit is the one /ws has.
    let mut conn = client::connect(&url).await.unwrap();
    conn.send_frame(Frame::binary(Payload::Owned(vec![1; 1001])))
        .await
        .unwrap();
    assert_eq!(close_code(&mut conn).await, 1009);

    // A close is echoed with the client's own code.
    let mut conn = client::connect(&url).await.unwrap();
    conn.close(4321, "done").await.unwrap();
    assert_eq!(close_code(&mut conn).await, 4321);
}
