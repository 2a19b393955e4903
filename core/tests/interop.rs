//! Interop: real socket.io clients (socket.io-client from npm, python-socketio
//! from PyPI) against a roomcast server hosted here. `make test` installs
//! them (tests/interop/node_modules, .venv); these tests fail, not skip,
//! when they are missing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Tc;
use roomcast::{Args, Data, Identity, Rejection, Server};
use serde_json::json;
use tokio::process::Command;
use tokio::sync::mpsc;

/// examples/rust/chat.rs, for its `create_server`.
#[path = "../../examples/rust/chat.rs"]
mod chat_example;

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// `join(room)` puts the client in `room`, acked with "ok".
fn on_join(server: &Server) {
    server
        .on("join", |s, args| async move { s.join(args.json_at(0).as_str().unwrap_or("none")).map(|()| json!("ok")) });
}

/// The app every interop client talks to.
fn app(restart: mpsc::UnboundedSender<()>) -> Server {
    let server = Server::builder()
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    server.on_connection(|socket| async move {
        let _ = socket.emit("welcome", json!({"id": socket.id().as_str()}));
    });
    server.on("echo", |_s, args| async move { args });
    on_join(&server);
    let srv = server.clone();
    server.on("to_room", move |_s, args| {
        let srv = srv.clone();
        async move {
            let mut items = args.into_vec();
            let room = match items.first() {
                Some(Data::String(r)) => r.clone(),
                _ => return Err("room expected"),
            };
            items.remove(0);
            Ok(json!(srv.to(room).emit_args("room_msg", items)))
        }
    });
    server.on("ask", |s, args| async move {
        match s.emit_args_with_ack("question", args, Duration::from_millis(200)).await {
            Ok(reply) => reply,
            Err(_) => Args::one(json!("timeout")),
        }
    });
    server.on("never_acks", |_s, _a| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    server.on("binary", |_s, args| async move { args });
    server.on("send_blob", |s, _a| async move {
        let _ = s.emit_args("blob", Args::one(Data::Binary(bytes::Bytes::from_static(&[1, 2, 3]))));
    });
    server.on("disconnect_me", |s, _a| async move { s.disconnect() });
    server.on("restart_server", move |_s, _a| {
        let _ = restart.send(());
        async {}
    });
    let admin = server.of("/admin");
    admin.auth(|hs| async move {
        if hs.auth.get("token").and_then(|t| t.as_str()) == Some("secret") {
            Ok(Identity::user("admin"))
        } else {
            Err(Rejection { message: "not authorized".into(), data: Some(json!({"code": 42})) })
        }
    });
    admin.on("whoami", |s, _a| async move { json!(s.namespace()) });
    server
}

/// Host the app on 127.0.0.1, restarting it on the same port when a client
/// asks, while `client` runs; returns the client's result.
async fn host<F, Fut>(client: F) -> (bool, String)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = (bool, String)>,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = app(tx.clone());
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let restarter = tokio::spawn(async move {
        let mut server = server;
        while rx.recv().await.is_some() {
            server.shutdown().await;
            server = app(tx.clone());
            server.listen(addr).await.unwrap();
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(120), client(addr)).await.expect("client finished in time");
    restarter.abort();
    out
}

async fn run(cmd: &mut Command) -> (bool, String) {
    let out =
        cmd.kill_on_drop(true).output().await.unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run `make deps`)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Run a client suite (`cmd`, told the server's URL and `transports`) against
/// the app while a JSON-protocol client sits in the room the suite's "mixed"
/// case broadcasts to; the JSON client must get that broadcast too.
async fn client_suite(suite: &str, transports: &str, mut cmd: Command) {
    let (ok, output) = host(|addr| async move {
        let mut json_client = Tc::connect(addr, "").await;
        json_client.send(json!({"type": "join", "room": "mixed"})).await;
        json_client.recv_type("joined").await;
        // Keep reading (and so answering pings) while the suite runs.
        let mixed = tokio::spawn(async move { json_client.recv_type("event").await });
        let result =
            run(cmd.env("ROOMCAST_URL", format!("http://{addr}")).env("ROOMCAST_TRANSPORTS", transports)).await;
        let m = mixed.await.unwrap();
        assert_eq!((m["event"].as_str(), &m["data"]), (Some("room_msg"), &json!("to everyone")));
        result
    })
    .await;
    println!("{output}");
    assert!(ok, "{suite} suite failed ({transports})");
}

async fn node_client(transports: &str) {
    let dir = interop_dir();
    assert!(dir.join("node_modules/socket.io-client").is_dir(), "socket.io-client missing: run `make deps`");
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "node/client.test.mjs"]).current_dir(dir);
    client_suite("socket.io-client", transports, cmd).await;
}

/// The venv with python-socketio: ROOMCAST_PYTHON, else `<repo>/.venv/bin/python`.
fn python() -> PathBuf {
    let python = std::env::var_os("ROOMCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        python.is_file(),
        "python-socketio interpreter {} missing: run `make deps-python` (or set ROOMCAST_PYTHON)",
        python.display()
    );
    python
}

async fn python_client(transports: &str) {
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pytest", "-v", "-p", "no:cacheprovider", "test_client.py"])
        .current_dir(interop_dir().join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    client_suite("python-socketio", transports, cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_client_default_transports() {
    node_client("polling,websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_client_websocket_only() {
    node_client("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_client_polling_only() {
    node_client("polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_client_websocket_only() {
    python_client("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_client_polling_only() {
    python_client("polling").await;
}

/// The app of the recovery suite: `join` a room, `stream` N events to room
/// `r` at an interval, `room_size`.
fn recovery_app(window: Duration) -> Server {
    let server = Server::builder()
        .connection_state_recovery(roomcast::RecoveryConfig {
            max_disconnection_duration: window,
            ..roomcast::RecoveryConfig::default()
        })
        .build()
        .unwrap();
    on_join(&server);
    let srv = server.clone();
    server.on("stream", move |_s, args| {
        let srv = srv.clone();
        async move {
            let (n, every) = (args.json_at(0).as_u64().unwrap_or(0), args.json_at(1).as_u64().unwrap_or(0));
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = srv.to("r").emit("n", i);
                    tokio::time::sleep(Duration::from_millis(every)).await;
                }
            });
        }
    });
    let srv = server.clone();
    server.on("room_size", move |_s, args| {
        let srv = srv.clone();
        async move { json!(srv.to(args.json_at(0).as_str().unwrap_or("").to_owned()).sockets().len()) }
    });
    server
}

#[tokio::test]
async fn node_socketio_client_recovers_missed_events() {
    let dir = interop_dir();
    assert!(dir.join("node_modules/socket.io-client").is_dir(), "socket.io-client missing: run `make deps`");
    let (long, short) = (recovery_app(Duration::from_secs(60)), recovery_app(Duration::from_millis(300)));
    let (a, b) = (long.listen("127.0.0.1:0").await.unwrap(), short.listen("127.0.0.1:0").await.unwrap());
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-timeout=15000", "--test-reporter=spec", "node/recovery.test.mjs"])
        .current_dir(dir)
        .env("ROOMCAST_URL", format!("http://{a}"))
        .env("ROOMCAST_SHORT_URL", format!("http://{b}"));
    let (ok, output) = tokio::time::timeout(Duration::from_secs(60), run(&mut cmd)).await.expect("suite in time");
    println!("{output}");
    assert!(ok, "socket.io-client recovery suite failed");
    long.shutdown().await;
    short.shutdown().await;
}

#[tokio::test]
async fn node_socketio_clients_chat_on_the_rust_example() {
    let dir = interop_dir();
    assert!(dir.join("node_modules/socket.io-client").is_dir(), "socket.io-client missing: run `make deps`");
    let server = chat_example::create_server().unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "node/rust_example.test.mjs"])
        .current_dir(dir)
        .env("ROOMCAST_URL", format!("http://{addr}"));
    let (ok, output) = tokio::time::timeout(Duration::from_secs(60), run(&mut cmd)).await.expect("suite in time");
    println!("{output}");
    assert!(ok, "the Rust chat example suite failed");
    server.shutdown().await;
}
