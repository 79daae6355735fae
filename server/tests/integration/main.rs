//! Integration tests: a real server on 127.0.0.1 port 0, real sockets, the
//! real client library. One test binary (ripgrep's layout) so the shared
//! helpers in [`common`] are compiled once.

mod common;

mod abuse;
mod cluster;
mod context;
mod echo;
mod events;
mod hardening;
mod hostile;
mod http;
mod lifecycle;
mod record;
mod restart;
mod rooms;
mod sessions;
