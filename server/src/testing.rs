//! A server running inside the caller's process, for tests of code that
//! talks to it: this crate's integration tests and `loadgen`'s. It binds a
//! real port, serves real sockets, and stops as SIGTERM would; and
//! [`exposition`], which reads its `/metrics` page for them.
//!
//! Not for production embedding ([`crate::Server`] is that API): options
//! come as command-line words (over the documented defaults, never the
//! environment), failures panic with a message, as a test wants, and the
//! module is compiled only with the `testing` feature.

pub mod exposition;

use crate::Server;
use crate::config::Config;
use game_api::RoomType;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on a tokio task of the caller's runtime.
pub struct TestServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Fires the graceful shutdown.
    stop: Option<oneshot::Sender<()>>,
    /// The server's run, returning whether it stopped cleanly.
    task: Option<JoinHandle<bool>>,
}

impl TestServer {
    /// Starts a server with `room_types`, default options plus `args` (as
    /// on the command line), listening on 127.0.0.1:0.
    pub async fn start(room_types: Vec<RoomType>, args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", room_types, args).await
    }

    /// Starts a server on `listen` (an address a stopped server used, to
    /// take over from it) with `room_types` and default options plus
    /// `args`; the seed is 7 unless `args` sets one, so that runs repeat.
    pub async fn start_on(listen: &str, room_types: Vec<RoomType>, args: &[&str]) -> Self {
        let mut argv = vec!["--listen", listen];
        if !args.contains(&"--seed") {
            argv.extend_from_slice(&["--seed", "7"]);
        }
        argv.extend_from_slice(args);
        let config = Config::from_args(&argv).expect("valid test options");
        let server = Server::builder(config)
            .room_types(room_types)
            .bind()
            .await
            .expect("bind");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a cluster node on 127.0.0.1:0 whose room directory is the
    /// Redis at `redis_url`, with `room_types` and default options plus
    /// `args`. Its public URL is its bound address.
    pub async fn start_node(room_types: Vec<RoomType>, redis_url: &str, args: &[&str]) -> Self {
        let mut argv = vec![
            "--directory",
            redis_url,
            "--public-url",
            "ws://127.0.0.1:0/",
        ];
        argv.extend_from_slice(args);
        Self::start(room_types, &argv).await
    }

    /// The game endpoint's URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The server's HTTP root (`http://127.0.0.1:PORT`).
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server as SIGTERM would; returns whether it finished
    /// cleanly within its shutdown timeout (and saved its state file, if it
    /// has one).
    pub async fn stop(mut self) -> bool {
        let _ = self.stop.take().expect("stopped once").send(());
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(std::time::Duration::from_secs(30), task)
            .await
            .expect("the server stops within 30 s")
            .expect("server task")
    }

    /// Ends the server as SIGKILL would, as far as its state file can tell:
    /// the run is abandoned without a graceful shutdown, so nothing is
    /// written.
    pub async fn kill(mut self) {
        self.stop = None;
        let task = self.task.take().expect("killed once");
        task.abort();
        assert!(task.await.expect_err("aborted").is_cancelled());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A real `redis-server` on a free port of 127.0.0.1, without persistence,
/// for tests of the cluster's room directory. Killed when dropped.
pub struct TestRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl TestRedis {
    /// Starts `redis-server` (from `PATH`) and waits until it answers.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (`scripts/test` installs
    /// Debian's) or does not answer within 5 s.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL) and waits for it to end: every key is gone, as
    /// after a crash of a Redis without persistence.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after [`TestRedis::stop`]), empty.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install Debian's redis-server package")
            });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.answers().await {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not answer within 5 s",
                self.port
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Whether it answers PING.
    async fn answers(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        tcp.write_all(b"PING\r\n").await.is_ok()
            && tcp.read_exact(&mut buf).await.is_ok()
            && &buf == b"+PONG\r\n"
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
