//! Interop: roomcast's Rust Socket.IO client against a real Node socket.io
//! 4.8 server (tests/interop/node/server.mjs). `make deps` installs it in
//! tests/interop/node_modules; these tests fail, not skip, when it is missing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use roomcast::client::ClientState;
use roomcast::client::socketio::{ConnectError, DisconnectReason, SocketIoClient, SocketIoEvent, SocketIoOptions};
use roomcast::{Args, Data, ErrorKind, Server};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep, timeout};

/// Bound of every single wait.
const WAIT: Duration = Duration::from_secs(5);
/// Bound of a whole test.
const TEST: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The Node server; killed when dropped (its stdin closing also ends it).
struct NodeServer {
    _child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    url: String,
}

async fn node_server() -> NodeServer {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
    assert!(
        dir.join("node_modules/socket.io").is_dir(),
        "socket.io is missing from {}/node_modules: run `make deps`",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("node/server.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e} (run `make deps`)"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(WAIT, stdout.next_line())
        .await
        .expect("the Node server printed its port in time")
        .unwrap()
        .expect("the Node server exited before printing its port");
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the Node server: {line:?}"));
    NodeServer { _child: child, _stdout: stdout, url: format!("http://127.0.0.1:{port}") }
}

/// Short backoff so that reconnection tests stay fast.
fn fast() -> SocketIoOptions {
    let mut opts = SocketIoOptions { connect_timeout: WAIT, ..Default::default() };
    opts.reconnect.base = ms(100);
    opts.reconnect.max = ms(300);
    opts
}

async fn connect(url: &str) -> SocketIoClient {
    timeout(WAIT, SocketIoClient::connect(url, fast())).await.expect("connected in time").unwrap()
}

async fn ack(client: &SocketIoClient, event: &str, args: impl Into<Args>) -> Args {
    client.emit_with_ack(event, args, WAIT).await.unwrap_or_else(|e| panic!("ack of {event}: {e}"))
}

fn args(items: Vec<Data>) -> Args {
    Args::new(items)
}

fn bin(bytes: &'static [u8]) -> Data {
    Data::Binary(Bytes::from_static(bytes))
}

/// The next event `f` accepts, skipping the others.
async fn next_event(rx: &mut broadcast::Receiver<SocketIoEvent>, f: impl Fn(&SocketIoEvent) -> bool) -> SocketIoEvent {
    timeout(WAIT, async {
        loop {
            let event = rx.recv().await.unwrap();
            if f(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event arrived in time")
}

async fn disconnected(rx: &mut broadcast::Receiver<SocketIoEvent>) -> DisconnectReason {
    match next_event(rx, |e| matches!(e, SocketIoEvent::Disconnect { .. })).await {
        SocketIoEvent::Disconnect { reason } => reason,
        _ => unreachable!(),
    }
}

/// No connection change happened (server events, such as the welcome
/// racing a subscription, do not count).
fn assert_quiet(rx: &mut broadcast::Receiver<SocketIoEvent>) {
    while let Ok(event) = rx.try_recv() {
        assert!(matches!(event, SocketIoEvent::Event { .. }), "unexpected {event:?}");
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    timeout(WAIT, rx.recv()).await.expect("received in time").expect("sender alive")
}

#[tokio::test]
async fn connects_with_an_id_and_sees_the_welcome() {
    timeout(TEST, async {
        let server = node_server().await;
        let opts = SocketIoOptions { auth: Some(json!({"user": "ann"})), ..fast() };
        let client = SocketIoClient::new(&server.url, opts).unwrap();
        assert_eq!(client.state(), ClientState::Disconnected);
        // Registered before open(), so the event sent on connection is not missed.
        let (tx, mut welcome) = mpsc::unbounded_channel();
        client.on("welcome", move |args: Args| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(args.json());
            }
        });
        let mut events = client.events();
        timeout(WAIT, client.open()).await.unwrap().unwrap();
        assert_eq!(client.state(), ClientState::Connected);
        let id = client.id().expect("an id once connected");
        assert_eq!(client.namespace(), "/");
        assert_eq!(recv(&mut welcome).await, json!({"id": id, "auth": {"user": "ann"}}));
        assert_eq!(events.recv().await.unwrap(), SocketIoEvent::Connect { id: id.clone() });
        // open() while connected changes nothing.
        client.open().await.unwrap();
        assert_eq!(client.id(), Some(id));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn echo_with_any_number_of_arguments() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        let several = args(vec![
            Data::from(json!(1)),
            Data::from("two"),
            Data::from(json!({"three": [3]})),
            Data::Null,
            Data::from(json!(true)),
        ]);
        assert_eq!(ack(&client, "echo", several.clone()).await, several);
        assert_eq!(ack(&client, "echo", ()).await, Args::none());
        assert_eq!(ack(&client, "echo", json!({"one": 1})).await, Args::one(json!({"one": 1})));
        // Without an ack the server emits `echo` back; with no handler it reaches the event stream.
        let mut events = client.events();
        client.emit("echo", args(vec![Data::from("a"), Data::from(json!(2))])).unwrap();
        let back = next_event(&mut events, |e| matches!(e, SocketIoEvent::Event { .. })).await;
        assert_eq!(
            back,
            SocketIoEvent::Event { event: "echo".into(), args: args(vec![Data::from("a"), Data::from(json!(2))]) }
        );
        assert_eq!(client.emit("connect", ()).unwrap_err().kind(), ErrorKind::InvalidArgument);
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ack_timeout() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        let start = Instant::now();
        let err = client.emit_with_ack("never_acks", Args::one(Data::from("x")), ms(300)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let took = start.elapsed();
        assert!(took >= ms(300) && took < ms(2000), "{took:?}");
        // The connection is fine afterwards.
        assert_eq!(client.state(), ClientState::Connected);
        assert_eq!(ack(&client, "echo", Data::from("still here")).await, Args::one(Data::from("still here")));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn server_to_client_acks() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        client.on("question", |args: Args| async move {
            let n = args.json_at(1).as_i64().unwrap_or(0);
            Args::new(vec![
                Data::from(format!("answer to {}", args.json_at(0).as_str().unwrap_or("?"))),
                Data::from(json!(n + 1)),
            ])
        });
        let reply = ack(&client, "ask", args(vec![Data::from("life"), Data::from(json!(41))])).await;
        // emitWithAck on the server resolves with the first ack argument.
        assert_eq!(reply.json(), json!({"answer": "answer to life"}));

        // A handler returning nothing acks without arguments.
        client.on("question", |_args: Args| async move {});
        assert_eq!(ack(&client, "ask", ()).await.json(), json!({}));

        // The catch-all answers when no specific handler exists.
        let other = connect(&server.url).await;
        other.on_any(|event: String, args: Args| async move { json!({"via": "any", "event": event, "n": args.len()}) });
        let reply = ack(&other, "ask", args(vec![Data::from("a"), Data::from("b")])).await;
        assert_eq!(reply.json(), json!({"answer": {"via": "any", "event": "question", "n": 2}}));
        client.close().await;
        other.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn binary_both_ways() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;

        // Client -> server binary event, server -> client binary ack.
        let payload = args(vec![
            bin(&[1, 2, 3]),
            Data::from("text"),
            Data::Object([("nested".to_owned(), Data::Array(vec![bin(&[4]), bin(&[])]))].into()),
        ]);
        assert_eq!(ack(&client, "echo", payload.clone()).await, payload);
        let described = ack(&client, "describe", args(vec![bin(&[0xab, 0xcd]), Data::from("x")])).await;
        assert_eq!(described.json(), json!(["buffer:abcd", "string"]));

        // Server -> client binary event.
        let (tx, mut blobs) = mpsc::unbounded_channel();
        client.on("blob", move |args: Args| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(args);
            }
        });
        client.emit("send_blob", ()).unwrap();
        let blob = recv(&mut blobs).await;
        let nested = Data::Object([("nested".to_owned(), Data::Array(vec![bin(&[4, 5])]))].into());
        assert_eq!(blob, args(vec![bin(&[1, 2, 3]), nested]));

        // Client -> server binary ack.
        client.on("binq", |args: Args| async move {
            assert_eq!(args.get(0), Some(&bin(&[9])));
            Args::one(bin(&[0xca, 0xfe]))
        });
        assert_eq!(ack(&client, "ask_binary", ()).await.json(), json!({"isBuffer": true, "hex": "cafe"}));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn namespace_auth_accepts_and_refuses() {
    timeout(TEST, async {
        let server = node_server().await;
        let admin = format!("{}/admin", server.url);

        let ok = SocketIoOptions { auth: Some(json!({"token": "secret"})), ..fast() };
        let client = timeout(WAIT, SocketIoClient::connect(&admin, ok)).await.unwrap().unwrap();
        assert_eq!(client.namespace(), "/admin");
        let who = ack(&client, "whoami", ()).await.json();
        assert_eq!(who, json!({"nsp": "/admin", "id": client.id().unwrap()}));
        client.close().await;

        for auth in [Some(json!({"token": "wrong"})), None] {
            let refused = SocketIoClient::new(&admin, SocketIoOptions { auth, ..fast() }).unwrap();
            let mut events = refused.events();
            let err = timeout(WAIT, refused.open()).await.unwrap().unwrap_err();
            assert_eq!((err.kind(), err.message()), (ErrorKind::Refused, "not authorized"));
            let detail = ConnectError::of(&err).expect("the server's refusal");
            assert_eq!(detail.data, Some(json!({"code": 42})));
            assert_eq!(
                events.recv().await.unwrap(),
                SocketIoEvent::ConnectError { message: "not authorized".into(), data: Some(json!({"code": 42})) }
            );
            assert_eq!(refused.state(), ClientState::Disconnected);
            assert_eq!(refused.emit("x", ()).unwrap_err().kind(), ErrorKind::Closed);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_namespace_is_refused() {
    timeout(TEST, async {
        let server = node_server().await;
        let err =
            timeout(WAIT, SocketIoClient::connect(&format!("{}/nope", server.url), fast())).await.unwrap().unwrap_err();
        assert_eq!((err.kind(), err.message()), (ErrorKind::NotFound, "Invalid namespace"));
        assert_eq!(ConnectError::of(&err).unwrap().message, "Invalid namespace");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn no_server_is_an_io_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err =
        timeout(WAIT, SocketIoClient::connect(&format!("http://127.0.0.1:{port}"), fast())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_an_abandoned_open_leaves_no_trace() {
    // Accepts TCP connections (the backlog does) but never answers the upgrade.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let client = SocketIoClient::new(&url, SocketIoOptions { connect_timeout: ms(300), ..fast() }).unwrap();
    let err = timeout(WAIT, client.open()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(client.state(), ClientState::Disconnected);
    // The caller gives up first: the client is Disconnected again and can retry.
    assert!(timeout(ms(100), client.open()).await.is_err());
    assert_eq!(client.state(), ClientState::Disconnected);
    assert_eq!(client.emit("x", ()).unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(timeout(WAIT, client.open()).await.unwrap().unwrap_err().kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn kick_is_io_server_disconnect_without_reconnection() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        let first = client.id().unwrap();
        let mut events = client.events();
        let pending = {
            let client = client.clone();
            tokio::spawn(async move { client.emit_with_ack("never_acks", (), WAIT).await })
        };
        sleep(ms(100)).await; // the pending emit is written
        client.emit("kick_me", ()).unwrap();
        assert_eq!(disconnected(&mut events).await, DisconnectReason::IoServerDisconnect);
        assert_eq!(client.state(), ClientState::Disconnected);
        assert_eq!(pending.await.unwrap().unwrap_err().kind(), ErrorKind::Closed);
        // Well past the backoff: still no reconnection.
        sleep(ms(600)).await;
        assert_eq!((client.state(), client.id()), (ClientState::Disconnected, None));
        assert_quiet(&mut events);
        assert_eq!(client.emit("echo", ()).unwrap_err().kind(), ErrorKind::Closed);
        // Coming back is the application's call, as with socket.io-client's connect().
        timeout(WAIT, client.open()).await.unwrap().unwrap();
        assert_ne!(client.id().unwrap(), first);
        assert_eq!(ack(&client, "echo", Data::from("back")).await, Args::one(Data::from("back")));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn transport_loss_reconnects_and_delivers_buffered_emits_in_order() {
    timeout(TEST, async {
        let server = node_server().await;
        let mut opts = fast();
        opts.reconnect.base = ms(300);
        opts.reconnect.jitter = 0.0;
        opts.offline_queue = 6;
        let client = timeout(WAIT, SocketIoClient::connect(&server.url, opts)).await.unwrap().unwrap();
        let first = client.id().unwrap();
        let mut events = client.events();

        client.emit("drop_transport", ()).unwrap();
        assert_eq!(disconnected(&mut events).await, DisconnectReason::TransportClose);
        assert_eq!((client.state(), client.id()), (ClientState::Reconnecting, None));
        // Offline: buffered, bounded, in order.
        for i in 1..=5 {
            client.emit("record", args(vec![Data::from("loss"), Data::from(json!(i))])).unwrap();
        }
        let buffered_ack = {
            let client = client.clone();
            tokio::spawn(async move { client.emit_with_ack("echo", Data::from("buffered"), WAIT).await })
        };
        sleep(ms(20)).await;
        let full = client.emit("record", args(vec![Data::from("loss"), Data::from(json!(6))])).unwrap_err();
        assert_eq!(full.kind(), ErrorKind::QueueFull);

        let SocketIoEvent::Connect { id } =
            next_event(&mut events, |e| matches!(e, SocketIoEvent::Connect { .. })).await
        else {
            unreachable!()
        };
        assert_ne!(id, first);
        assert_eq!((client.state(), client.id()), (ClientState::Connected, Some(id)));
        assert_eq!(buffered_ack.await.unwrap().unwrap(), Args::one(Data::from("buffered")));
        client.emit("record", args(vec![Data::from("loss"), Data::from(json!(7))])).unwrap();
        assert_eq!(ack(&client, "records", Data::from("loss")).await.json(), json!([1, 2, 3, 4, 5, 7]));
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn heartbeats_keep_the_connection() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        let id = client.id();
        let mut events = client.events();
        // The server pings every 300 ms and drops a client silent for 1 s past a ping.
        sleep(ms(2000)).await;
        assert_quiet(&mut events);
        assert_eq!((client.state(), client.id()), (ClientState::Connected, id));
        assert_eq!(ack(&client, "echo", ()).await, Args::none());
        client.close().await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn close_is_io_client_disconnect() {
    timeout(TEST, async {
        let server = node_server().await;
        let client = connect(&server.url).await;
        let mut events = client.events();
        let pending = {
            let client = client.clone();
            tokio::spawn(async move { client.emit_with_ack("never_acks", (), WAIT).await })
        };
        sleep(ms(100)).await;
        timeout(WAIT, client.close()).await.unwrap();
        assert_eq!(disconnected(&mut events).await, DisconnectReason::IoClientDisconnect);
        assert_eq!((client.state(), client.id()), (ClientState::Disconnected, None));
        assert_eq!(pending.await.unwrap().unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(client.emit("echo", ()).unwrap_err().kind(), ErrorKind::Closed);
        // No reconnection after close().
        sleep(ms(500)).await;
        assert_eq!(client.state(), ClientState::Disconnected);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn reconnection_gives_up_after_max_attempts() {
    timeout(TEST, async {
        let server = node_server().await;
        let mut opts = fast();
        opts.reconnect.max_attempts = Some(2);
        let client = timeout(WAIT, SocketIoClient::connect(&server.url, opts)).await.unwrap().unwrap();
        let mut events = client.events();
        drop(server);
        let reason = disconnected(&mut events).await;
        assert!(matches!(reason, DisconnectReason::TransportClose | DisconnectReason::TransportError), "{reason}");
        for _ in 0..2 {
            let e = next_event(&mut events, |e| !matches!(e, SocketIoEvent::Event { .. })).await;
            assert!(matches!(e, SocketIoEvent::ConnectError { data: None, .. }), "{e:?}");
        }
        assert_eq!(events.recv().await.unwrap(), SocketIoEvent::ReconnectFailed);
        let mut state = client.watch_state();
        timeout(WAIT, state.wait_for(|s| *s == ClientState::Disconnected)).await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

/// The same client against roomcast's own server: the two halves of the crate agree.
#[tokio::test]
async fn roomcast_server_too() {
    timeout(TEST, async {
        let server = Server::builder().ping_interval(ms(200)).ping_timeout(ms(300)).build().unwrap();
        server.on_connection(|socket| async move {
            let _ = socket.emit("welcome", json!({"id": socket.id().as_str()}));
        });
        server.on("echo", |_s, args| async move { args });
        server
            .on("ask", |s, args| async move { s.emit_args_with_ack("question", args, WAIT).await.unwrap_or_default() });
        server.on("kick_me", |s, _a| async move { s.disconnect() });
        let addr = server.listen("127.0.0.1:0").await.unwrap();

        let client = SocketIoClient::new(&format!("http://{addr}"), fast()).unwrap();
        let (tx, mut welcome) = mpsc::unbounded_channel();
        client.on("welcome", move |args: Args| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(args.json());
            }
        });
        client.on("question", |args: Args| async move {
            Args::new(vec![Data::from("answer"), args.get(0).cloned().unwrap()])
        });
        timeout(WAIT, client.open()).await.unwrap().unwrap();
        assert_eq!(recv(&mut welcome).await, json!({"id": client.id().unwrap()}));
        let payload = args(vec![Data::from("x"), bin(&[1, 2]), Data::from(json!({"a": [1]}))]);
        assert_eq!(ack(&client, "echo", payload.clone()).await, payload);
        assert_eq!(ack(&client, "ask", bin(&[7])).await, args(vec![Data::from("answer"), bin(&[7])]));
        // Several of the server's 200 ms pings go by.
        let mut events = client.events();
        sleep(ms(800)).await;
        assert_quiet(&mut events);
        client.emit("kick_me", ()).unwrap();
        assert_eq!(disconnected(&mut events).await, DisconnectReason::IoServerDisconnect);
        assert_eq!(client.state(), ClientState::Disconnected);
    })
    .await
    .unwrap();
}
