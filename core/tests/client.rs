//! The Rust client against a real server on 127.0.0.1, over real sockets.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roomcast::client::{Client, ClientEvent, ClientOptions, ClientState, ReconnectPolicy};
use roomcast::{AuthRejection, ErrorKind, Identity, JwtVerifier, Rejection, Server};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Bound of every single wait; a whole test is bounded by twice that.
const WAIT: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Run a test body with a hard deadline.
async fn bounded(body: impl Future<Output = ()>) {
    timeout(WAIT * 2, body).await.expect("test timed out");
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// Short backoff and timeouts so that reconnection tests stay fast.
fn fast() -> ClientOptions {
    ClientOptions {
        reconnect: ReconnectPolicy { base: ms(50), max: ms(200), ..Default::default() },
        ack_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn server() -> Server {
    Server::builder().shutdown_timeout(ms(500)).build().unwrap()
}

async fn connect(addr: SocketAddr) -> Client {
    Client::connect(&url(addr), fast()).await.unwrap()
}

async fn wait_state(c: &Client, state: ClientState) {
    let mut rx = c.watch_state();
    timeout(WAIT, rx.wait_for(|s| *s == state)).await.unwrap_or_else(|_| panic!("never reached {state:?}")).unwrap();
}

/// The next event `f` accepts, skipping the others.
async fn next_event(rx: &mut broadcast::Receiver<ClientEvent>, f: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
    timeout(WAIT, async {
        loop {
            let e = rx.recv().await.unwrap();
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("expected event did not arrive")
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    timeout(WAIT, async {
        while !f() {
            sleep(ms(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never true: {what}"));
}

fn in_room(server: &Server, room: &str, id: &str) -> bool {
    server.to(room).sockets().iter().any(|s| s.id().as_str() == id)
}

#[tokio::test]
async fn connects_and_gets_an_id() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        assert_eq!(c.state(), ClientState::Connected);
        let id = c.id().unwrap();
        assert!(id.len() >= 22, "{id}");
        assert_eq!(c.user_id(), None);
        assert!(server.socket(&id).is_some());
        assert!(c.ping().await.unwrap() < WAIT);
    })
    .await;
}

#[tokio::test]
async fn rooms_relay_messages_and_presence() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let (a, b) = (connect(addr).await, connect(addr).await);
        let mut a_events = a.events();
        a.join("r").await.unwrap();
        b.join("r").await.unwrap();
        assert_eq!(a.rooms(), ["r"]);
        let b_id = b.id().unwrap();
        let joined = next_event(&mut a_events, |e| matches!(e, ClientEvent::UserJoined { .. })).await;
        assert_eq!(
            joined,
            ClientEvent::UserJoined { room: "r".into(), client_id: Some(b_id.clone()), user_id: None, member: None }
        );

        b.send("r", json!({"text": "hi"})).unwrap();
        let msg = next_event(&mut a_events, |e| matches!(e, ClientEvent::Message { .. })).await;
        assert_eq!(
            msg,
            ClientEvent::Message {
                room: "r".into(),
                from: b_id.clone(),
                user_id: None,
                payload: json!({"text": "hi"})
            }
        );

        b.leave("r").await.unwrap();
        assert!(b.rooms().is_empty());
        let left = next_event(&mut a_events, |e| matches!(e, ClientEvent::UserLeft { .. })).await;
        assert_eq!(
            left,
            ClientEvent::UserLeft { room: "r".into(), client_id: Some(b_id), user_id: None, member: None }
        );

        // Errors nobody awaits reach the event stream.
        let mut b_events = b.events();
        b.send("r", json!(1)).unwrap();
        let err = next_event(&mut b_events, |e| matches!(e, ClientEvent::Error { .. })).await;
        assert!(matches!(err, ClientEvent::Error { code, room: Some(r), .. } if code == "not_in_room" && r == "r"));
        assert_eq!(b.send("", json!(1)).unwrap_err().kind(), ErrorKind::InvalidArgument);
    })
    .await;
}

#[tokio::test]
async fn emit_with_ack_reaches_server_handlers() {
    bounded(async {
        let server = server();
        server.on("echo", |_s, d| async move { d });
        server.on("fail", |_s, _d| async move { Err::<Value, _>("boom") });
        server.on("slow", |_s, _d| async move { sleep(Duration::from_secs(3)).await });
        let (tx, mut rx) = mpsc::unbounded_channel();
        server.on("note", move |_s, d| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(d);
            }
        });
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = Client::connect(&url(addr), ClientOptions { ack_timeout: ms(300), ..fast() }).await.unwrap();

        assert_eq!(c.emit_with_ack("echo", json!({"a": [1, 2]})).await.unwrap(), json!({"a": [1, 2]}));
        assert_eq!(c.emit_with_ack("nope", json!(1)).await.unwrap_err().kind(), ErrorKind::NotFound);
        let e = c.emit_with_ack("fail", json!(1)).await.unwrap_err();
        assert_eq!((e.kind(), e.message()), (ErrorKind::Internal, "boom"));
        assert_eq!(c.emit_with_ack("slow", json!(1)).await.unwrap_err().kind(), ErrorKind::Timeout);
        c.emit("note", json!("fire and forget")).unwrap();
        assert_eq!(timeout(WAIT, rx.recv()).await.unwrap().map(|a| a.json()), Some(json!("fire and forget")));
    })
    .await;
}

#[tokio::test]
async fn server_events_reach_client_handlers_and_events() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        c.on("confirm", |d| async move { json!({"yes": d}) });
        c.on("broken", |_d| async move { Err::<Value, _>("nope") });
        let mut events = c.events();
        let socket = server.socket(&c.id().unwrap()).unwrap();

        let answer = socket.emit_with_ack("confirm", json!("delete?"), WAIT).await.unwrap();
        assert_eq!(answer.json(), json!({"yes": "delete?"}));
        assert_eq!(socket.emit_with_ack("broken", json!(1), WAIT).await.unwrap().json(), Value::Null);

        socket.emit("news", json!({"n": 1})).unwrap();
        let e = next_event(&mut events, |e| matches!(e, ClientEvent::Event { .. })).await;
        assert_eq!(e, ClientEvent::Event { event: "news".into(), data: json!({"n": 1}) });
    })
    .await;
}

#[tokio::test]
async fn join_hook_refusal_is_refused() {
    bounded(async {
        let server = Server::builder()
            .on_join(|_s, room| async move { if room == "secret" { Err("members only") } else { Ok(()) } })
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        let e = c.join("secret").await.unwrap_err();
        assert_eq!((e.kind(), e.message()), (ErrorKind::Refused, "members only"));
        assert!(c.rooms().is_empty());
        c.join("open").await.unwrap();
        assert_eq!(c.rooms(), ["open"]);
        // Another user's room is reserved.
        assert_eq!(c.join("user:bob").await.unwrap_err().kind(), ErrorKind::Refused);
    })
    .await;
}

fn jwt(secret: &str, sub: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 60;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_token_accepted_or_refused() {
    bounded(async {
        let server = Server::builder().jwt(JwtVerifier::hs256("s3cret")).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let with = |token: Option<String>| ClientOptions { token, ..fast() };

        let c = Client::connect(&url(addr), with(Some(jwt("s3cret", "alice")))).await.unwrap();
        assert_eq!(c.user_id().as_deref(), Some("alice"));
        assert_eq!(server.socket(&c.id().unwrap()).unwrap().user_id(), Some("alice"));

        for token in [Some(jwt("wrong", "alice")), None] {
            let e = Client::connect(&url(addr), with(token)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        }
    })
    .await;
}

#[tokio::test]
async fn refused_credentials_stop_reconnecting() {
    bounded(async {
        let first = Server::builder().jwt(JwtVerifier::hs256("old")).shutdown_timeout(ms(500)).build().unwrap();
        let addr = first.listen("127.0.0.1:0").await.unwrap();
        let opts = ClientOptions { token: Some(jwt("old", "alice")), ..fast() };
        let c = Client::connect(&url(addr), opts).await.unwrap();
        let mut events = c.events();
        first.shutdown().await;
        wait_state(&c, ClientState::Reconnecting).await;

        // The secret was rotated while the client was away.
        let second = Server::builder().jwt(JwtVerifier::hs256("rotated")).build().unwrap();
        second.listen(addr).await.unwrap();
        wait_state(&c, ClientState::Disconnected).await;
        let e = next_event(&mut events, |e| matches!(e, ClientEvent::Error { .. })).await;
        assert!(matches!(&e, ClientEvent::Error { code, .. } if code == "unauthorized"), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn auth_hook_refusal_after_upgrade_is_unauthorized() {
    bounded(async {
        let server = Server::builder()
            .auth_rejection(AuthRejection::CloseFrame)
            .auth(|hs| async move {
                match hs.token() {
                    Some("good") => Ok(Identity::user("bob")),
                    _ => Err(Rejection::new("bad token")),
                }
            })
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let opts = |t: &str| ClientOptions { token: Some(t.into()), ..fast() };
        let c = Client::connect(&url(addr), opts("good")).await.unwrap();
        assert_eq!(c.user_id().as_deref(), Some("bob"));
        let e = Client::connect(&url(addr), opts("bad")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    })
    .await;
}

#[tokio::test]
async fn connect_failures_have_fitting_kinds() {
    bounded(async {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(Client::connect(&url(closed_addr), fast()).await.unwrap_err().kind(), ErrorKind::Io);

        // Accepts TCP (backlog) but never answers the upgrade.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = ClientOptions { connect_timeout: ms(200), ..fast() };
        let e = Client::connect(&url(silent.local_addr().unwrap()), opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);

        let server = server();
        server.of("/chat").on("where", |s, _d| async move { json!(s.namespace()) });
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let ns = |n: &str| ClientOptions { namespace: Some(n.into()), ..fast() };
        let c = Client::connect(&url(addr), ns("/chat")).await.unwrap();
        assert_eq!(c.emit_with_ack("where", Value::Null).await.unwrap(), json!("/chat"));
        assert_eq!(Client::connect(&url(addr), ns("/nope")).await.unwrap_err().kind(), ErrorKind::NotFound);

        let e = Client::connect(&format!("http://{addr}/ws"), fast()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let bad = ClientOptions { offline_queue: 0, ..fast() };
        assert_eq!(Client::connect(&url(addr), bad).await.unwrap_err().kind(), ErrorKind::Config);
    })
    .await;
}

#[tokio::test]
async fn reconnects_rejoins_and_flushes_the_queue_in_order() {
    bounded(async {
        let first = server();
        let addr = first.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        let mut states = c.events();
        c.join("r").await.unwrap();
        c.join("gone").await.unwrap();
        let old_id = c.id().unwrap();

        first.shutdown().await;
        wait_state(&c, ClientState::Reconnecting).await;
        assert_eq!(c.id(), None);

        // Offline: everything is queued, in order.
        c.emit("log", json!(1)).unwrap();
        c.leave("gone").await.unwrap();
        let pending_join = tokio::spawn({
            let c = c.clone();
            async move { c.join("new").await }
        });
        c.emit("log", json!(2)).unwrap();
        let pending_ack = tokio::spawn({
            let c = c.clone();
            async move { c.emit_with_ack("log", json!(3)).await }
        });
        assert!(c.ping().await.is_err());
        eventually("the spawned calls are queued", || c.rooms() == ["r", "new"]).await;

        let second = server();
        let (tx, mut logged) = mpsc::unbounded_channel();
        second.on("log", move |_s, d| {
            let _ = tx.send(d.clone());
            async move { d }
        });
        assert_eq!(second.listen(addr).await.unwrap(), addr);

        wait_state(&c, ClientState::Connected).await;
        let id = c.id().unwrap();
        assert_ne!(id, old_id);
        pending_join.await.unwrap().unwrap();
        assert_eq!(pending_ack.await.unwrap().unwrap(), json!(3));
        for n in 1..=3 {
            assert_eq!(timeout(WAIT, logged.recv()).await.unwrap().map(|a| a.json()), Some(json!(n)));
        }
        assert_eq!(c.rooms(), ["r", "new"]);
        eventually("server sees the client back in r and new", || in_room(&second, "r", &id) && in_room(&second, "new", &id)).await;
        assert!(!in_room(&second, "gone", &id));

        // Messages flow both ways in the rejoined room.
        let other = connect(addr).await;
        other.join("r").await.unwrap();
        let mut events = c.events();
        other.send("r", json!("welcome back")).unwrap();
        let msg = next_event(&mut events, |e| matches!(e, ClientEvent::Message { .. })).await;
        assert!(matches!(msg, ClientEvent::Message { from, payload, .. } if from == other.id().unwrap() && payload == "welcome back"));

        let mut seen = Vec::new();
        while let Ok(e) = states.try_recv() {
            if let ClientEvent::State(s) = e {
                seen.push(s);
            }
        }
        assert_eq!(seen, [ClientState::Reconnecting, ClientState::Connected]);
    })
    .await;
}

#[tokio::test]
async fn offline_queue_is_bounded() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let opts = ClientOptions {
            offline_queue: 2,
            reconnect: ReconnectPolicy { base: Duration::from_secs(60), ..Default::default() },
            ..fast()
        };
        let c = Client::connect(&url(addr), opts).await.unwrap();
        server.shutdown().await;
        wait_state(&c, ClientState::Reconnecting).await;

        c.send("r", json!(1)).unwrap();
        c.emit("e", json!(2)).unwrap();
        assert_eq!(c.send("r", json!(3)).unwrap_err().kind(), ErrorKind::QueueFull);
        assert_eq!(c.emit("e", json!(4)).unwrap_err().kind(), ErrorKind::QueueFull);
        assert_eq!(c.emit_with_ack("e", json!(5)).await.unwrap_err().kind(), ErrorKind::QueueFull);
        assert_eq!(c.join("r").await.unwrap_err().kind(), ErrorKind::QueueFull);

        c.close().await;
        assert_eq!(c.state(), ClientState::Disconnected);
        assert_eq!(c.send("r", json!(6)).unwrap_err().kind(), ErrorKind::Closed);
    })
    .await;
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let opts = ClientOptions {
            reconnect: ReconnectPolicy { base: ms(20), max: ms(40), max_attempts: Some(3), ..Default::default() },
            ..fast()
        };
        let c = Client::connect(&url(addr), opts).await.unwrap();
        let mut events = c.events();
        server.shutdown().await;
        wait_state(&c, ClientState::Disconnected).await;
        let e = next_event(&mut events, |e| matches!(e, ClientEvent::Error { .. })).await;
        assert!(matches!(e, ClientEvent::Error { code, .. } if code == "reconnect_failed"));
        assert_eq!(c.emit("e", json!(1)).unwrap_err().kind(), ErrorKind::Closed);
    })
    .await;
}

#[tokio::test]
async fn pending_ack_fails_when_the_connection_drops() {
    bounded(async {
        let server = server();
        let (tx, mut started) = mpsc::unbounded_channel();
        server.on("hang", move |_s, _d| {
            let _ = tx.send(());
            async move { sleep(Duration::from_secs(30)).await }
        });
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        let call = tokio::spawn({
            let c = c.clone();
            async move { c.emit_with_ack("hang", json!(1)).await }
        });
        timeout(WAIT, started.recv()).await.unwrap();
        server.shutdown().await;
        let e = timeout(ms(1500), call).await.expect("failed fast, before ack_timeout").unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    })
    .await;
}

#[tokio::test]
async fn close_and_drop_disconnect() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let ns = server.of("/");
        let (a, b) = (connect(addr).await, connect(addr).await);
        a.join("r").await.unwrap();
        b.join("r").await.unwrap();
        let mut b_events = b.events();
        // Queued before close(): still written.
        a.send("r", json!("last words")).unwrap();
        a.close().await;
        let msg = next_event(&mut b_events, |e| matches!(e, ClientEvent::Message { .. })).await;
        assert!(matches!(msg, ClientEvent::Message { payload, .. } if payload == "last words"));
        assert_eq!(a.state(), ClientState::Disconnected);
        assert!(a.rooms().is_empty());
        a.close().await;
        assert_eq!(a.send("r", json!(1)).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(a.join("r").await.unwrap_err().kind(), ErrorKind::Closed);
        eventually("server saw the close", || ns.len() == 1).await;

        drop(b);
        eventually("server saw the drop", || ns.is_empty()).await;
    })
    .await;
}

#[tokio::test]
async fn server_kick_is_not_undone_by_reconnecting() {
    bounded(async {
        let server = server();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let c = connect(addr).await;
        let mut events = c.events();
        server.socket(&c.id().unwrap()).unwrap().disconnect();
        wait_state(&c, ClientState::Disconnected).await;
        let e = next_event(&mut events, |e| matches!(e, ClientEvent::Error { .. })).await;
        assert!(matches!(e, ClientEvent::Error { code, .. } if code == "connection_closed"));
        sleep(ms(200)).await;
        assert!(server.of("/").is_empty());
    })
    .await;
}

#[tokio::test]
async fn heartbeat_close_is_followed_by_a_reconnection() {
    bounded(async {
        // A bare server: the first connection is closed as the roomcast
        // server does on a heartbeat timeout (4000 "ping timeout").
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut open = Vec::new();
            for n in 1.. {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let hello = json!({"type": "connected", "clientId": format!("fake-{n}"), "userId": null});
                ws.send(Message::text(hello.to_string())).await.unwrap();
                if n == 1 {
                    let close = CloseFrame { code: CloseCode::from(4000), reason: "ping timeout".into() };
                    ws.send(Message::Close(Some(close))).await.unwrap();
                }
                open.push(ws);
            }
        });
        let c = connect(addr).await;
        let mut events = c.events();
        assert_eq!(c.id().as_deref(), Some("fake-1"));
        let reconnecting = next_event(&mut events, |e| matches!(e, ClientEvent::State(_))).await;
        assert_eq!(reconnecting, ClientEvent::State(ClientState::Reconnecting));
        let connected = next_event(&mut events, |e| matches!(e, ClientEvent::State(_))).await;
        assert_eq!(connected, ClientEvent::State(ClientState::Connected));
        assert_eq!(c.id().as_deref(), Some("fake-2"));
    })
    .await;
}
