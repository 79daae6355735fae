//! Test helpers shared by this crate's integration tests (the golden
//! vectors and the PROTOCOL.md checks): a message of either direction.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use protocol::{ClientMsg, ServerMsg, decode_client, decode_server, encode_client, encode_server};

/// A message in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Client to server.
    Client(ClientMsg),
    /// Server to client.
    Server(ServerMsg),
}

impl Msg {
    /// The message's bytes, checking the encoder's own byte count.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let n = match self {
            Msg::Client(m) => encode_client(m, &mut out),
            Msg::Server(m) => encode_server(m, &mut out),
        };
        assert_eq!(n, out.len(), "encoder's byte count");
        out
    }

    /// Decodes `bytes` in the same direction as `self`.
    pub fn decode_like(&self, bytes: &[u8]) -> Result<Msg, String> {
        match self {
            Msg::Client(_) => decode_client(bytes)
                .map(Msg::Client)
                .map_err(|e| e.to_string()),
            Msg::Server(_) => decode_server(bytes)
                .map(Msg::Server)
                .map_err(|e| e.to_string()),
        }
    }

    /// "client" or "server".
    pub fn direction(&self) -> &'static str {
        match self {
            Msg::Client(_) => "client",
            Msg::Server(_) => "server",
        }
    }
}
