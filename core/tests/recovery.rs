//! Connection state recovery on one node: a client that loses its
//! connection and comes back within the window gets its socket back and
//! exactly what it missed, in order; otherwise a clean new session.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::proxy::Proxy;
use common::{Tc, WAIT, eventually, start, within};
use futures_util::{SinkExt, StreamExt};
use roomcast::client::socketio::{SocketIoClient, SocketIoEvent, SocketIoOptions};
use roomcast::client::{Client, ClientEvent, ClientOptions};
use roomcast::{Args, Identity, RecoveryConfig, Server, ServerBuilder};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw Socket.IO connection over WebSocket, as socket.io-client speaks it.
struct Sio {
    ws: Ws,
    connect: Value,
}

impl Sio {
    /// Open a connection and CONNECT the default namespace with `auth`.
    async fn connect(addr: SocketAddr, auth: Value) -> Sio {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
        let open = next_text(&mut ws).await;
        assert!(open.starts_with('0'), "{open}");
        ws.send(Message::text(format!("40{auth}"))).await.unwrap();
        let reply = next_text(&mut ws).await;
        let connect = serde_json::from_str(reply.strip_prefix("40").unwrap_or_else(|| panic!("{reply}"))).unwrap();
        Sio { ws, connect }
    }

    fn sid(&self) -> &str {
        self.connect["sid"].as_str().unwrap()
    }

    fn pid(&self) -> Option<&str> {
        self.connect["pid"].as_str()
    }

    /// The next event's arguments (event name first).
    async fn event(&mut self) -> Vec<Value> {
        loop {
            let t = next_text(&mut self.ws).await;
            if let Some(body) = t.strip_prefix("42") {
                return serde_json::from_str(body).unwrap();
            }
            if t == "2" {
                self.ws.send(Message::text("3")).await.unwrap();
            }
        }
    }

    /// Assert no event arrives within `ms`.
    async fn silent(&mut self, ms: u64) {
        let quiet = tokio::time::timeout(Duration::from_millis(ms), self.event()).await;
        assert!(quiet.is_err(), "expected nothing, got {:?}", quiet.unwrap());
    }
}

async fn next_text(ws: &mut Ws) -> String {
    within(async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected text, got {other:?}"),
            }
        }
    })
    .await
}

/// The event's number and its offset (the last argument).
fn numbered(args: &[Value]) -> (u64, String) {
    assert_eq!(args.len(), 3, "event, number, offset: {args:?}");
    (args[1].as_u64().unwrap(), args[2].as_str().unwrap().to_owned())
}

fn recovery(window: Duration) -> ServerBuilder {
    Server::builder()
        .connection_state_recovery(RecoveryConfig { max_disconnection_duration: window, ..RecoveryConfig::default() })
}

/// Every socket joins `r` when it connects for the first time.
fn join_r(server: &Server) {
    server.on_connection(|s| async move {
        if !s.recovered() {
            s.join("r").unwrap();
        }
    });
}

fn emit_n(server: &Server, room: &str, range: std::ops::Range<u64>) {
    for n in range {
        server.to(room).emit("n", n).unwrap();
    }
}

#[tokio::test]
async fn a_client_back_within_the_window_gets_exactly_what_it_missed_in_order() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    join_r(&server);
    let recovered = Arc::new(AtomicUsize::new(0));
    let r = recovered.clone();
    server.on_connection(move |s| {
        let r = r.clone();
        async move {
            if s.recovered() {
                r.fetch_add(1, Ordering::SeqCst);
                assert!(s.rooms().contains(&"r".to_owned()), "rooms come back before connection handlers run");
                assert_eq!(s.data(), json!({"seen": true}));
            } else {
                s.set_data(json!({"seen": true}));
            }
        }
    });
    let mut c = Sio::connect(addr, json!({})).await;
    let (sid, pid) = (c.sid().to_owned(), c.pid().expect("pid with recovery on").to_owned());
    eventually(|| server.to("r").sockets().len() == 1).await;
    emit_n(&server, "r", 0..3);
    let mut last = String::new();
    for want in 0..3 {
        let (n, offset) = numbered(&c.event().await);
        assert_eq!(n, want);
        last = offset;
    }
    drop(c); // the TCP connection goes without a Socket.IO DISCONNECT
    eventually(|| server.to("r").sockets().is_empty()).await;
    emit_n(&server, "r", 3..8);
    server.to("elsewhere").emit("n", 100).unwrap();
    server.emit("n", 8).unwrap(); // the whole namespace
    server.to(sid.clone()).emit("n", 9).unwrap(); // to the socket itself
    server.to("r").volatile().emit("n", 101).unwrap(); // volatile: not kept

    let mut back = Sio::connect(addr, json!({"pid": pid, "offset": last})).await;
    assert_eq!(back.sid(), sid, "the same socket id");
    assert_eq!(back.pid(), Some(pid.as_str()));
    for want in 3..10 {
        assert_eq!(numbered(&back.event().await).0, want);
    }
    emit_n(&server, "r", 10..11);
    assert_eq!(numbered(&back.event().await).0, 10, "new events after the missed ones");
    back.silent(100).await;
    assert_eq!(recovered.load(Ordering::SeqCst), 1);
    let stats = server.stats();
    assert_eq!((stats.recovery_hits, stats.recovery_misses), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_got_nothing_yet_gets_everything_since_it_connected() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    join_r(&server);
    let c = Sio::connect(addr, json!({})).await;
    let pid = c.pid().unwrap().to_owned();
    eventually(|| server.to("r").sockets().len() == 1).await;
    emit_n(&server, "r", 0..2);
    drop(c); // before reading either
    eventually(|| server.to("r").sockets().is_empty()).await;
    emit_n(&server, "r", 2..4);
    let mut back = Sio::connect(addr, json!({"pid": pid})).await;
    for want in 0..4 {
        assert_eq!(numbered(&back.event().await).0, want);
    }
    back.silent(100).await;
    server.shutdown().await;
}

#[tokio::test]
async fn after_the_window_or_with_a_bad_offset_the_client_gets_a_clean_new_session() {
    let (server, addr) = start(recovery(Duration::from_millis(300))).await;
    join_r(&server);
    let mut c = Sio::connect(addr, json!({})).await;
    let (sid, pid) = (c.sid().to_owned(), c.pid().unwrap().to_owned());
    eventually(|| server.to("r").sockets().len() == 1).await;
    emit_n(&server, "r", 0..1);
    let (_, offset) = numbered(&c.event().await);
    drop(c);
    eventually(|| server.to("r").sockets().is_empty()).await;
    let parked = |s: &Server| common::gauge(&s.metrics(), r#"roomcast_recovery_sessions{namespace="/"}"#);
    assert_eq!(parked(&server), Some(1), "its session is kept for the window");
    emit_n(&server, "r", 1..2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Nothing happened since the window ended: the scrape itself lets it go.
    assert_eq!(parked(&server), Some(0), "expired");
    let mut late = Sio::connect(addr, json!({"pid": pid, "offset": offset})).await;
    assert_ne!(late.sid(), sid, "a new socket");
    assert_ne!(late.pid(), Some(pid.as_str()), "a new session");
    eventually(|| server.to("r").sockets().len() == 1).await; // joined afresh
    emit_n(&server, "r", 2..3);
    assert_eq!(numbered(&late.event().await).0, 2, "nothing replayed");

    for auth in [json!({"pid": late.pid(), "offset": "not-an-offset"}), json!({"pid": "unknown", "offset": "1-0"})] {
        let pid = late.pid().unwrap().to_owned();
        drop(late);
        eventually(|| server.to("r").sockets().is_empty()).await;
        late = Sio::connect(addr, auth.clone()).await;
        assert_ne!(late.pid(), Some(pid.as_str()), "{auth}: a new session");
    }
    let stats = server.stats();
    assert_eq!(
        (stats.recovery_hits, stats.recovery_misses),
        (0, 3),
        "the expired window, the bad offset, the unknown pid"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_recovery_there_is_no_pid_and_no_offset() {
    let (server, addr) = start(Server::builder()).await;
    join_r(&server);
    let mut c = Sio::connect(addr, json!({})).await;
    assert!(c.pid().is_none());
    eventually(|| server.to("r").sockets().len() == 1).await;
    emit_n(&server, "r", 0..1);
    assert_eq!(c.event().await, vec![json!("n"), json!(0)]);
    server.shutdown().await;
}

#[tokio::test]
async fn hooks_are_skipped_on_recovery_unless_configured_otherwise() {
    for skip in [true, false] {
        let calls = Arc::new(AtomicUsize::new(0));
        let n = calls.clone();
        let builder = Server::builder()
            .connection_state_recovery(RecoveryConfig { skip_middlewares: skip, ..RecoveryConfig::default() })
            .auth(move |_| {
                let n = n.clone();
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    Ok(Identity::user("ann"))
                }
            });
        let (server, addr) = start(builder).await;
        let hooks = Arc::new(AtomicUsize::new(0));
        let h = hooks.clone();
        server.of("/").on_connect(move |_| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let admitted = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let a = admitted.clone();
        server.of("/").on_admit(move |s| {
            let a = a.clone();
            async move {
                a.lock().push((s.recovered(), s.skips_middlewares()));
                Ok(())
            }
        });
        let c = Sio::connect(addr, json!({})).await;
        let pid = c.pid().unwrap().to_owned();
        drop(c);
        eventually(|| server.of("/").is_empty()).await;
        let back = Sio::connect(addr, json!({"pid": pid})).await;
        assert_eq!(back.pid(), Some(pid.as_str()), "recovered");
        assert_eq!(calls.load(Ordering::SeqCst), if skip { 1 } else { 2 }, "skip_middlewares = {skip}");
        assert_eq!(hooks.load(Ordering::SeqCst), if skip { 1 } else { 2 }, "connect hooks too");
        assert_eq!(*admitted.lock(), vec![(false, false), (true, skip)], "on_admit runs every time");
        let s = server.socket(back.sid()).unwrap();
        assert_eq!(s.user_id(), Some("ann"), "the user comes back");
        assert!(server.is_online("ann").await.unwrap());
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_sent_away_by_the_server_does_not_recover() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    let c = Sio::connect(addr, json!({})).await;
    let (sid, pid) = (c.sid().to_owned(), c.pid().unwrap().to_owned());
    server.socket(&sid).unwrap().disconnect();
    eventually(|| server.of("/").is_empty()).await;
    drop(c);
    let back = Sio::connect(addr, json!({"pid": pid})).await;
    assert_ne!(back.sid(), sid);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_publishers_reach_every_receiver_in_one_order() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    join_r(&server);
    let mut a = Sio::connect(addr, json!({})).await;
    let mut b = Sio::connect(addr, json!({})).await;
    eventually(|| server.to("r").sockets().len() == 2).await;
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let server = server.clone();
            tokio::spawn(async move {
                for i in 0..50u64 {
                    server.to("r").emit("n", p * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        seen_a.push(numbered(&a.event().await));
        seen_b.push(numbered(&b.event().await));
    }
    assert_eq!(seen_a, seen_b, "the same order, with the same offsets, at every receiver");
    let offsets: Vec<roomcast::recovery::Offset> = seen_a.iter().map(|(_, o)| o.parse().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets grow in delivery order");
    for p in 0..4u64 {
        let from_p: Vec<u64> = seen_a.iter().map(|(n, _)| *n).filter(|n| n / 1000 == p).collect();
        assert_eq!(from_p, (0..50).map(|i| p * 1000 + i).collect::<Vec<_>>(), "each sender's order kept");
    }
    server.shutdown().await;
}

/// roomcast's Socket.IO client reconnects by itself after a network cut,
/// recovers, and its handlers see the missed events without offsets.
#[tokio::test]
async fn the_rust_socketio_client_recovers_after_its_connection_is_cut() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    join_r(&server);
    let proxy = Proxy::start(addr).await;
    let mut opts = SocketIoOptions { connect_timeout: WAIT, ..Default::default() };
    opts.reconnect.base = Duration::from_millis(50);
    opts.reconnect.max = Duration::from_millis(100);
    let client = SocketIoClient::new(&format!("http://{}", proxy.addr), opts).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    client.on("n", move |args: Args| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(args);
        }
    });
    within(client.open()).await.unwrap();
    let sid = client.id().unwrap();
    let mut events = client.events();
    eventually(|| server.to("r").sockets().len() == 1).await;
    emit_n(&server, "r", 0..2);
    for want in 0..2u64 {
        let args = within(rx.recv()).await.unwrap();
        assert_eq!(args.len(), 1, "the offset is taken off: {args:?}");
        assert_eq!(args.json_at(0).as_u64(), Some(want));
    }
    assert!(!client.recovered());
    proxy.cut();
    eventually(|| server.to("r").sockets().is_empty()).await;
    emit_n(&server, "r", 2..5);
    within(async {
        loop {
            if let Ok(SocketIoEvent::Connect { id }) = events.recv().await
                && id == sid
            {
                return;
            }
        }
    })
    .await;
    assert!(client.recovered());
    for want in 2..5u64 {
        let args = within(rx.recv()).await.unwrap();
        assert_eq!(args.json_at(0).as_u64(), Some(want));
    }
    client.close().await;
    server.shutdown().await;
}

/// The JSON protocol: `connected` carries a resume token; a client back
/// with `?resume=<token>&offset=<last>` gets its socket and rooms back and
/// the missed messages and events, each with its offset.
#[tokio::test]
async fn the_json_protocol_resumes_with_a_token_and_offset() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    let mut a = Tc::raw(addr, "", &[]).await.map(|ws| Tc { ws, id: String::new() }).unwrap();
    let hello = a.recv().await;
    let token = hello["resume"].as_str().expect("resume token").to_owned();
    assert!(hello.get("recovered").is_none());
    a.id = hello["clientId"].as_str().unwrap().to_owned();
    a.join("room").await;
    let mut sender = Tc::connect(addr, "").await;
    sender.join("room").await;
    sender.send(json!({"type": "message", "room": "room", "payload": 1})).await;
    let first = a.recv_type("message").await;
    assert_eq!(first["payload"], 1);
    let offset = first["offset"].as_str().expect("offset").to_owned();
    let id = a.id.clone();
    drop(a);
    eventually(|| server.of("/").len() == 1).await;
    sender.send(json!({"type": "message", "room": "room", "payload": 2})).await;
    sender.send(json!({"type": "ping"})).await;
    sender.recv_type("pong").await; // message 2 went out first
    server.to("room").emit("news", "hi").unwrap();

    let ws = Tc::raw(addr, &format!("?resume={token}&offset={offset}"), &[]).await.unwrap();
    let mut back = Tc { ws, id: String::new() };
    let hello = back.recv().await;
    assert_eq!(hello["clientId"], id.as_str(), "the same socket");
    assert_eq!(hello["recovered"], true, "{hello}");
    let m = back.recv().await;
    assert_eq!((m["type"].as_str(), m["payload"].as_u64()), (Some("message"), Some(2)), "{m}");
    let e = back.recv().await;
    assert_eq!((e["event"].as_str(), e["data"].as_str()), (Some("news"), Some("hi")), "{e}");
    assert!(server.to("room").sockets().iter().any(|s| s.recovered()), "back in its room");
    server.shutdown().await;
}

/// roomcast's JSON client resumes by itself after a network cut.
#[tokio::test]
async fn the_rust_json_client_resumes_after_its_connection_is_cut() {
    let (server, addr) = start(recovery(Duration::from_secs(60))).await;
    let proxy = Proxy::start(addr).await;
    let mut opts = ClientOptions { connect_timeout: WAIT, ..Default::default() };
    opts.reconnect.base = Duration::from_millis(50);
    opts.reconnect.max = Duration::from_millis(100);
    let client = within(Client::connect(&format!("ws://{}/ws", proxy.addr), opts)).await.unwrap();
    let mut events = client.events();
    within(client.join("room")).await.unwrap();
    let id = client.id().unwrap();
    let mut sender = Tc::connect(addr, "").await;
    sender.join("room").await;
    sender.send(json!({"type": "message", "room": "room", "payload": 1})).await;
    let payload = |e: ClientEvent| match e {
        ClientEvent::Message { payload, .. } => Some(payload),
        _ => None,
    };
    let first = within(async {
        loop {
            if let Some(p) = payload(events.recv().await.unwrap()) {
                return p;
            }
        }
    })
    .await;
    assert_eq!(first, json!(1));
    proxy.cut();
    eventually(|| server.of("/").len() == 1).await;
    sender.send(json!({"type": "message", "room": "room", "payload": 2})).await;
    sender.send(json!({"type": "message", "room": "room", "payload": 3})).await;
    let mut got = Vec::new();
    within(async {
        while got.len() < 2 {
            if let Some(p) = payload(events.recv().await.unwrap()) {
                got.push(p);
            }
        }
    })
    .await;
    assert_eq!(got, vec![json!(2), json!(3)]);
    assert!(client.recovered());
    assert_eq!(client.id().unwrap(), id, "the same socket");
    client.close().await;
    server.shutdown().await;
}
