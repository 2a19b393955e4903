//! End-to-end tests of the server over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Tc, eventually, http_get, http_status, start, within};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use roomcast::{AuthRejection, ConnectionRate, DisconnectReason, Identity, JwtVerifier, RateLimit, Rejection, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Auth hook for tests: `?user=NAME` becomes the user id.
fn user_from_query() -> roomcast::ServerBuilder {
    Server::builder().auth(|hs| async move {
        Ok(match hs.query_param("user") {
            Some(u) => Identity::user(u),
            None => Identity::anonymous(),
        })
    })
}

#[tokio::test]
async fn room_message_reaches_members_except_sender() {
    let (_server, addr) = start(Server::builder()).await;
    let mut a = Tc::connect(addr, "").await;
    let mut b = Tc::connect(addr, "").await;
    let mut outsider = Tc::connect(addr, "").await;
    a.join("r").await;
    b.join("r").await;
    assert_eq!(a.recv().await, json!({"type":"user_joined","room":"r","clientId": b.id,"userId":null}));
    a.send(json!({"type":"message","room":"r","payload":{"text":"hi"}})).await;
    let m = b.recv().await;
    assert_eq!(m, json!({"type":"message","room":"r","from": a.id,"userId":null,"payload":{"text":"hi"}}));
    a.silent(150).await;
    outsider.silent(50).await;
    // The shape used by hand-rolled ws servers is accepted too.
    b.send(json!({"type":"leave","payload":"r"})).await;
    assert_eq!(b.recv().await, json!({"type":"left","room":"r"}));
    assert_eq!(a.recv().await["type"], "user_left");
}

#[tokio::test]
async fn not_in_room_and_reserved_rooms() {
    let (_server, addr) = start(user_from_query()).await;
    let mut a = Tc::connect(addr, "?user=alice").await;
    let b = Tc::connect(addr, "").await;
    a.send(json!({"type":"message","room":"r","payload":1})).await;
    let e = a.recv().await;
    assert_eq!((e["code"].as_str(), e["room"].as_str()), (Some("not_in_room"), Some("r")));
    for room in ["user:bob", b.id.as_str()] {
        a.send(json!({"type":"join","room":room})).await;
        assert_eq!(a.recv().await["code"], "join_refused", "{room}");
    }
    // Joining your own user room is a no-op, and it cannot be left.
    a.join("user:alice").await;
    a.send(json!({"type":"leave","room":"user:alice"})).await;
    assert_eq!(a.recv().await["code"], "invalid_message");
}

#[tokio::test]
async fn send_to_user_reaches_all_their_connections() {
    let (server, addr) = start(user_from_query()).await;
    let mut tab1 = Tc::connect(addr, "?user=alice").await;
    let mut tab2 = Tc::connect(addr, "?user=alice").await;
    let mut bob = Tc::connect(addr, "?user=bob").await;
    assert_eq!(server.stats().users, 2);
    assert_eq!(server.to_user("alice").emit("dm", json!("psst")).unwrap(), 2);
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(tab.recv().await, json!({"type":"event","event":"dm","data":"psst"}));
    }
    bob.silent(100).await;
    // Sending to one socket is a room emit on its id.
    assert_eq!(server.to(tab1.id.clone()).emit("one", 1).unwrap(), 1);
    assert_eq!(tab1.recv().await["event"], "one");
    tab2.silent(100).await;
}

#[tokio::test]
async fn broadcast_operator_union_except_and_all() {
    let (server, addr) = start(Server::builder()).await;
    let mut c: Vec<Tc> = Vec::new();
    for _ in 0..4 {
        c.push(Tc::connect(addr, "").await);
    }
    let ids: Vec<String> = c.iter().map(|t| t.id.clone()).collect();
    for (id, room) in ids.iter().zip(["a", "a", "b", "x"]) {
        server.socket(id).unwrap().join(room).unwrap();
    }
    server.socket(&ids[1]).unwrap().join("b").unwrap();
    // a = {0,1}, b = {1,2}; union without duplicates, except x.
    assert_eq!(server.to("a").to("b").emit("u", 1).unwrap(), 3);
    assert_eq!(server.to("a").except("b").emit("e", 1).unwrap(), 1);
    assert_eq!(server.emit("all", 1).unwrap(), 4);
    let mut got: Vec<Vec<String>> = Vec::new();
    for t in c.iter_mut() {
        let mut events = Vec::new();
        loop {
            let m = t.recv().await;
            if m["type"] != "event" {
                continue;
            }
            let e = m["event"].as_str().unwrap().to_owned();
            events.push(e.clone());
            if e == "all" {
                break;
            }
        }
        got.push(events);
    }
    assert_eq!(got[0], ["u", "e", "all"]);
    assert_eq!(got[1], ["u", "all"]);
    assert_eq!(got[2], ["u", "all"]);
    assert_eq!(got[3], ["all"]);
    assert_eq!(server.stats().rooms, 3, "a, b, x (socket rooms not counted)");
}

#[tokio::test]
async fn acks_both_ways_with_timeout() {
    let (server, addr) = start(Server::builder()).await;
    server.on("echo", |_s, data| async move { data });
    server.on("fail", |_s, _d| async move { Err::<Value, _>("nope") });
    let mut c = Tc::connect(addr, "").await;
    c.send(json!({"type":"event","event":"echo","data":{"x":1},"id":7})).await;
    assert_eq!(c.recv().await, json!({"type":"ack","id":7,"data":{"x":1}}));
    c.send(json!({"type":"event","event":"fail","id":8})).await;
    let e = c.recv().await;
    assert_eq!((e["code"].as_str(), e["id"].as_u64()), (Some("internal"), Some(8)));
    c.send(json!({"type":"event","event":"missing","id":9})).await;
    let e = c.recv().await;
    assert_eq!((e["code"].as_str(), e["id"].as_u64()), (Some("no_handler"), Some(9)));

    // Server → client ack.
    let socket = server.socket(&c.id).unwrap();
    let s2 = socket.clone();
    let pending = tokio::spawn(async move { s2.emit_with_ack("question", json!("?"), Duration::from_secs(5)).await });
    let q = c.recv().await;
    assert_eq!((q["event"].as_str(), q["data"].as_str()), (Some("question"), Some("?")));
    c.send(json!({"type":"ack","id":q["id"],"data":42})).await;
    assert_eq!(within(pending).await.unwrap().unwrap().json(), json!(42));
    // No reply → Timeout.
    let err = socket.emit_with_ack("question", json!(null), Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err.kind(), roomcast::ErrorKind::Timeout);
}

#[tokio::test]
async fn handlers_see_events_and_disconnect_reason() {
    let (server, addr) = start(Server::builder()).await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    server.on_connection(move |socket| {
        let s = s.clone();
        async move {
            let s2 = s.clone();
            socket.on("chat", move |_sock, data| {
                s2.lock().push(format!("chat:{data}"));
                async {}
            });
            socket.on_disconnect(move |_sock, reason| {
                s.lock().push(format!("bye:{reason}"));
                async {}
            });
        }
    });
    let mut c = Tc::connect(addr, "").await;
    c.send(json!({"type":"event","event":"chat","data":"hello"})).await;
    eventually(|| seen.lock().len() == 1).await;
    c.ws.close(None).await.unwrap();
    eventually(|| seen.lock().len() == 2).await;
    assert_eq!(*seen.lock(), vec!["chat:\"hello\"".to_string(), "bye:transport close".to_string()]);
    eventually(|| server.stats().sockets == 0).await;
}

#[tokio::test]
async fn heartbeat_timeout_closes_a_silent_client() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let (server, addr) =
        start(Server::builder().ping_interval(Duration::from_millis(100)).ping_timeout(Duration::from_millis(100)))
            .await;
    let r = reasons.clone();
    server.on_disconnect(move |_s, reason| {
        r.lock().push(reason);
        async {}
    });
    // A responsive client keeps answering pings (tungstenite pongs while reading).
    let mut alive = Tc::connect(addr, "").await;
    alive.join("r").await;
    // A silent client: upgraded, then never reads, so it never pongs.
    let mut silent = Tc::connect(addr, "").await;
    silent.join("r").await;
    let frozen = silent.ws;
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(alive.recv().await["type"].as_str().unwrap_or_default().to_owned());
        }
        // Keep answering pings for several more intervals.
        alive.silent(500).await;
        (seen, alive)
    });
    let (seen, _alive) = within(watcher).await.unwrap();
    assert_eq!(seen, ["user_joined", "user_left"], "the silent socket left its rooms");
    assert_eq!(*reasons.lock(), vec![DisconnectReason::PingTimeout]);
    assert_eq!(server.stats().sockets, 1, "the responsive client is still connected");
    drop(frozen);
}

#[tokio::test]
async fn slow_reader_is_closed_and_others_go_on() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let (server, addr) = start(Server::builder().outbound_queue(1024, 1024 * 1024)).await;
    let r = reasons.clone();
    server.on_disconnect(move |_s, reason| {
        r.lock().push(reason);
        async {}
    });
    let mut reader = Tc::connect(addr, "").await;
    let stuck = Tc::connect(addr, "").await;
    server.socket(&reader.id).unwrap().join("feed").unwrap();
    server.socket(&stuck.id).unwrap().join("feed").unwrap();
    let stuck_ws = stuck.ws; // never read from again
    let blob = "x".repeat(32 * 1024);
    // The reader keeps reading; it must get every reliable message, in order.
    let reader_task = tokio::spawn(async move {
        let mut next = 0;
        while next < 400 {
            let m = reader.recv_type("event").await;
            if m["event"] == "msg" {
                assert_eq!(m["data"]["i"], next, "in order, none lost");
                next += 1;
            }
        }
    });
    // Volatile messages are dropped for the stuck reader without closing it...
    for i in 0..400 {
        server.to("feed").volatile().emit("tick", json!({"i": i, "blob": blob})).unwrap();
        tokio::task::yield_now().await;
    }
    eventually(|| server.stats().dropped > 0).await;
    assert!(reasons.lock().is_empty(), "volatile overflow does not close");
    // ...but reliable ones overflow its bounded queue and close it.
    for i in 0..400 {
        server.to("feed").emit("msg", json!({"i": i, "blob": blob})).unwrap();
        tokio::task::yield_now().await;
    }
    eventually(|| !reasons.lock().is_empty()).await;
    assert_eq!(*reasons.lock(), vec![DisconnectReason::SlowConsumer]);
    within(reader_task).await.unwrap();
    let s = server.stats();
    assert_eq!((s.slow_consumer_closes, s.sockets), (1, 1));
    drop(stuck_ws);
}

#[tokio::test]
async fn backpressure_is_visible_and_the_drop_policy_keeps_the_socket() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let builder = Server::builder().outbound_queue(64, 256 * 1024).overflow(roomcast::Overflow::Drop);
    let (server, addr) = start(builder).await;
    let r = reasons.clone();
    server.on_disconnect(move |_s, reason| {
        r.lock().push(reason);
        async {}
    });
    let mut stuck = Tc::connect(addr, "").await;
    let socket = server.socket(&stuck.id).unwrap();
    assert_eq!(socket.buffered_amount(), 0);
    within(socket.drained()).await; // nothing buffered: at once
    let blob = "x".repeat(32 * 1024);
    // The client does not read: the kernel buffers fill (enough for them at
    // their largest), then the queue, then (policy Drop) reliable messages
    // are dropped, not the socket.
    for i in 0..1000 {
        socket.emit("msg", json!({"i": i, "blob": blob})).unwrap();
        tokio::task::yield_now().await;
    }
    eventually(|| server.stats().dropped > 0).await;
    // A drop can come while the kernel still has room (the writer had not
    // caught up yet): go on until the queue itself holds data.
    within(async {
        for i in 1000.. {
            if socket.buffered_amount() > 128 * 1024 {
                break;
            }
            socket.emit("msg", json!({"i": i, "blob": blob})).unwrap();
            tokio::task::yield_now().await;
        }
    })
    .await;
    let buffered = socket.buffered_amount();
    assert!(buffered > 128 * 1024, "the queue is near its bound: {buffered}");
    assert!(socket.connected() && reasons.lock().is_empty(), "Drop keeps the socket");
    let waiter = tokio::spawn({
        let socket = socket.clone();
        async move { socket.drained().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "still buffered while the client does not read");
    // The client reads again: what was kept arrives in order, then the drain.
    let reader = tokio::spawn(async move {
        let mut last = -1;
        loop {
            let m = stuck.recv_type("event").await;
            if m["event"] == "end" {
                return last;
            }
            let i = m["data"]["i"].as_i64().unwrap();
            assert!(i > last, "in order");
            last = i;
        }
    });
    within(waiter).await.unwrap();
    assert_eq!(socket.buffered_amount(), 0);
    // Sent after the drain: nothing is dropped anymore.
    let dropped = server.stats().dropped;
    socket.emit("end", json!(null)).unwrap();
    assert!(within(reader).await.unwrap() >= 0);
    assert_eq!(server.stats().dropped, dropped);
    assert!(reasons.lock().is_empty());
}

#[tokio::test]
async fn bad_input_gets_errors_and_connection_stays_usable() {
    let (server, addr) = start(Server::builder()).await;
    server.on("echo", |_s, d| async move { d });
    let mut c = Tc::connect(addr, "").await;
    for (text, code) in [
        ("{not json", "invalid_json"),
        ("[1,2]", "invalid_json"),
        (r#"{"no":"type"}"#, "invalid_message"),
        (r#"{"type":"teleport"}"#, "unknown_type"),
        (r#"{"type":"join","room":42}"#, "invalid_message"),
    ] {
        c.send_text(text).await;
        let e = c.recv().await;
        assert_eq!(e["type"], "error");
        assert_eq!(e["code"], code, "{text}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(c.recv().await["code"], "invalid_message");
    c.send(json!({"type":"event","event":"echo","data":"still here","id":1})).await;
    assert_eq!(c.recv().await["data"], "still here");
    c.send(json!({"type":"ping","data":5})).await;
    assert_eq!(c.recv().await, json!({"type":"pong","data":5}));
}

#[tokio::test]
async fn oversize_message_closes_with_1009_only_that_peer() {
    let (server, addr) = start(Server::builder().max_payload(1024)).await;
    let mut big = Tc::connect(addr, "").await;
    let mut other = Tc::connect(addr, "").await;
    big.send(json!({"type":"ping","data":"x".repeat(2000)})).await;
    let f = big.closed().await.expect("close frame");
    assert_eq!(u16::from(f.code), 1009);
    other.send(json!({"type":"ping"})).await;
    assert_eq!(other.recv().await["type"], "pong");
    eventually(|| server.stats().sockets == 1).await;
}

fn hs_token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn exp() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300
}

#[tokio::test]
async fn jwt_auth_accepts_query_or_bearer_and_rejects_with_401() {
    let (_server, addr) = start(Server::builder().jwt(JwtVerifier::hs256("k"))).await;
    let good = hs_token("k", json!({"sub":"alice","exp":exp()}));
    let c = Tc::connect(addr, &format!("?token={good}")).await;
    assert!(!c.id.is_empty());
    let mut c = Tc::try_connect(addr, "", &[("authorization", &format!("Bearer {good}"))]).await.unwrap();
    c.send(json!({"type":"join","room":"user:alice"})).await;
    assert_eq!(c.recv().await["type"], "joined", "already in user:alice");
    for q in [String::new(), format!("?token={}", hs_token("wrong", json!({"sub":"a","exp":exp()})))] {
        let e = Tc::try_connect(addr, &q, &[]).await.err().expect("refused");
        assert_eq!(http_status(&e), 401);
    }
}

#[tokio::test]
async fn rs256_jwt() {
    let public = include_str!("fixtures/rs256-public.pem");
    let private = include_str!("fixtures/rs256-private.pem");
    let (_server, addr) = start(Server::builder().jwt(JwtVerifier::rs256_pem(public).unwrap())).await;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"sub":"carol","exp":exp()}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut c = Tc::connect(addr, &format!("?token={token}")).await;
    c.send(json!({"type":"ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
    // An HS256 token made with the public key as secret (the classic confusion attack) is refused.
    let forged = hs_token(public, json!({"sub":"mallory","exp":exp()}));
    assert_eq!(http_status(&Tc::try_connect(addr, &format!("?token={forged}"), &[]).await.err().unwrap()), 401);
}

#[tokio::test]
async fn auth_rejection_as_close_4001() {
    let (server, addr) = start(
        Server::builder()
            .auth(|hs| async move {
                match hs.token() {
                    Some("letmein") => Ok(Identity::user("u")),
                    _ => Err(Rejection::new("bad token")),
                }
            })
            .auth_rejection(AuthRejection::CloseFrame),
    )
    .await;
    let mut ws = Tc::raw(addr, "?token=nope", &[]).await.unwrap();
    let f = within(async {
        match ws.next().await {
            Some(Ok(Message::Close(f))) => f,
            other => panic!("a close frame first, got {other:?}"),
        }
    })
    .await
    .expect("close frame");
    assert_eq!((u16::from(f.code), f.reason.as_str()), (4001, "Authentication failed"));
    assert_eq!(server.stats().sockets, 0);
    assert!(Tc::try_connect(addr, "?token=letmein", &[]).await.is_ok());
}

#[tokio::test]
async fn join_hook_can_refuse() {
    let (_server, addr) =
        start(Server::builder().on_join(|_s, room: String| async move {
            if room.starts_with("vip") { Err("members only") } else { Ok(()) }
        }))
        .await;
    let mut c = Tc::connect(addr, "").await;
    c.send(json!({"type":"join","room":"vip-lounge"})).await;
    assert_eq!(
        c.recv().await,
        json!({"type":"error","code":"join_refused","message":"members only","room":"vip-lounge"})
    );
    c.join("lobby").await;
}

#[tokio::test]
async fn rate_limit_errors_then_closes_with_1008() {
    let limit = RateLimit { messages_per_sec: 1.0, message_burst: 3.0, max_violations: 5, ..RateLimit::default() };
    let (server, addr) = start(Server::builder().rate_limit(limit)).await;
    let mut flood = Tc::connect(addr, "").await;
    let mut calm = Tc::connect(addr, "").await;
    for _ in 0..3 {
        flood.send(json!({"type":"ping"})).await;
        assert_eq!(flood.recv().await["type"], "pong");
    }
    flood.send(json!({"type":"ping"})).await;
    assert_eq!(flood.recv().await["code"], "rate_limited");
    for _ in 0..10 {
        let _ = flood.ws.send(Message::text(r#"{"type":"ping"}"#)).await;
    }
    let f = flood.closed().await.expect("close frame");
    assert_eq!(u16::from(f.code), 1008);
    calm.send(json!({"type":"ping"})).await;
    assert_eq!(calm.recv().await["type"], "pong");
    assert!(server.stats().rate_limited >= 6);
}

#[tokio::test]
async fn connection_limits_per_ip_and_total() {
    let (_server, addr) = start(Server::builder().max_connections_per_ip(2)).await;
    let _a = Tc::connect(addr, "").await;
    let b = Tc::connect(addr, "").await;
    assert_eq!(http_status(&Tc::try_connect(addr, "", &[]).await.err().unwrap()), 429);
    drop(b);
    within(async {
        loop {
            if Tc::try_connect(addr, "", &[]).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let (_server, addr) = start(Server::builder().max_connections(1)).await;
    let _a = Tc::connect(addr, "").await;
    assert_eq!(http_status(&Tc::try_connect(addr, "", &[]).await.err().unwrap()), 503);
}

#[tokio::test]
async fn new_connections_per_ip_are_rate_limited() {
    // 1 per 100 s: after the burst of 2, the third is refused until a token comes back.
    let (server, addr) = start(Server::builder().connection_rate_per_ip(ConnectionRate::new(0.01).burst(2))).await;
    let mut a = Tc::connect(addr, "").await;
    drop(Tc::connect(addr, "").await);
    let e = Tc::try_connect(addr, "", &[]).await.err().unwrap();
    assert_eq!(http_status(&e), 429);
    if let tokio_tungstenite::tungstenite::Error::Http(res) = &e {
        let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
        assert_eq!(body["error"], "connection_rate");
    }
    assert_eq!(server.stats().refused_connections, 1);
    // The open connection goes on.
    a.send(json!({"type":"ping"})).await;
    assert_eq!(a.recv().await["type"], "pong");
    assert!(
        Server::builder().connection_rate_per_ip(ConnectionRate::new(1.0).burst(0)).build().is_err(),
        "a zero burst is refused"
    );
    assert!(Server::builder().connection_rate_per_ip(ConnectionRate::new(f64::NAN)).build().is_err());
}

#[tokio::test]
async fn origin_check() {
    let (_server, addr) = start(Server::builder().allowed_origin("http://good.example")).await;
    assert!(Tc::try_connect(addr, "", &[("origin", "http://good.example")]).await.is_ok());
    let e = Tc::try_connect(addr, "", &[("origin", "http://evil.example")]).await.err().unwrap();
    assert_eq!(http_status(&e), 403);
}

#[tokio::test]
async fn unknown_namespace_is_404_and_namespaces_are_isolated() {
    let (server, addr) = start(Server::builder()).await;
    server.of("/chat");
    assert_eq!(http_status(&Tc::try_connect(addr, "?namespace=/nope", &[]).await.err().unwrap()), 404);
    let mut root = Tc::connect(addr, "").await;
    let mut chat = Tc::connect(addr, "?namespace=%2Fchat").await;
    root.join("r").await;
    chat.join("r").await;
    root.silent(100).await; // no user_joined across namespaces
    assert_eq!(server.of("/chat").to("r").emit("x", 1).unwrap(), 1);
    assert_eq!(chat.recv().await["event"], "x");
    root.silent(100).await;
}

#[tokio::test]
async fn graceful_shutdown_drains_then_closes_1001() {
    let (server, addr) = start(Server::builder()).await;
    let mut c = Tc::connect(addr, "").await;
    for i in 0..100 {
        server.to(c.id.clone()).emit("n", i).unwrap();
    }
    let s = server.clone();
    let stop = tokio::spawn(async move { s.shutdown().await });
    for i in 0..100 {
        assert_eq!(c.recv().await["data"], i, "queued frames are written before the close");
    }
    let f = c.closed().await.expect("close frame");
    assert_eq!(u16::from(f.code), 1001);
    within(stop).await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn handshake_timeout_drops_slow_clients() {
    let (_server, addr) = start(Server::builder().handshake_timeout(Duration::from_millis(200))).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // never finishes the headers
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server ends the connection by itself (`within` fails the test otherwise).
    let _ = within(s.read_to_end(&mut buf)).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "not before the timeout");
    assert!(!String::from_utf8_lossy(&buf).contains(" 101 "), "never upgraded");
}

#[tokio::test]
async fn oversize_request_heads_are_refused_and_others_served() {
    let (_server, addr) = start(Server::builder()).await;
    let request = |header_bytes: usize| {
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "a".repeat(header_bytes))
    };
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may stop reading midway and reset the connection: no write or read error is checked.
    let _ = s.write_all(request(64 * 1024).as_bytes()).await;
    let mut buf = Vec::new();
    let _ = within(s.read_to_end(&mut buf)).await;
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    // 16 KiB of headers are fine.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request(16 * 1024).as_bytes()).await.unwrap();
    let mut ok = String::new();
    within(s.read_to_string(&mut ok)).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test]
async fn healthz_landing_page_and_plain_http_to_ws() {
    let (_server, addr) = start(Server::builder()).await;
    let get = |path: &'static str| http_get(addr, path);
    let h = get("/healthz").await;
    assert!(h.starts_with("HTTP/1.1 200") && h.contains(r#"{"status":"ok"}"#), "{h}");
    let page = get("/").await;
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<html"), "landing page");
    assert!(get("/ws").await.starts_with("HTTP/1.1 400"));
    assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_format() {
    let (server, addr) = start(Server::builder().metrics_path("/metrics")).await;
    server.of("/").enable_presence();
    let mut a = Tc::connect(addr, "").await;
    let mut b = Tc::connect(addr, "").await;
    a.join("r").await;
    b.join("r").await;
    // An ack that never comes (the raw client does not answer).
    let socket = server.socket(&a.id).unwrap();
    let asked = socket.emit_with_ack("q", json!(1), Duration::from_millis(50)).await;
    assert_eq!(asked.unwrap_err().kind(), roomcast::ErrorKind::Timeout);
    let text = http_get(addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/openmetrics-text"), "{text}");
    for line in [
        "roomcast_connections 2",
        "roomcast_sockets{namespace=\"/\"} 2",
        "roomcast_rooms{namespace=\"/\"} 1",
        "roomcast_presence_members{namespace=\"/\"} 2",
        "roomcast_ack_timeouts_total 1",
        "roomcast_recovery_hits_total 0",
        "roomcast_redis_publish_seconds_count 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    let s = server.stats();
    assert_eq!((s.connections, s.ack_timeouts), (2, 1));
    let tasks = common::gauge(&text, "roomcast_runtime_tasks");
    assert!(tasks.is_some_and(|n| n >= 3), "the runtime's tasks: accept loop and two sessions at least");
    // The task count moves between two scrapes; the rest is the same as Server::metrics.
    let steady =
        |t: &str| t.lines().filter(|l| !l.starts_with("roomcast_runtime_tasks ")).collect::<Vec<_>>().join("\n");
    assert_eq!(steady(&server.metrics()), steady(text.split("\r\n\r\n").nth(1).unwrap()), "as Server::metrics");
    drop(b);
    eventually(|| server.stats().connections == 1).await;
    let (_plain, plain_addr) = start(Server::builder()).await;
    assert!(http_get(plain_addr, "/metrics").await.starts_with("HTTP/1.1 404"), "off by default");
}

#[tokio::test]
async fn static_dir_is_served() {
    let dir = std::env::temp_dir().join(format!("roomcast-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello static").unwrap();
    let (_server, addr) = start(Server::builder().static_dir(&dir)).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    within(s.read_to_string(&mut out)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("hello static"), "{out}");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    within(s.read_to_string(&mut out)).await.unwrap();
    assert!(!out.starts_with("HTTP/1.1 200"), "no path traversal");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_in_one_room_all_receive() {
    let (server, addr) = start(Server::builder()).await;
    let mut tasks = Vec::new();
    let ready = Arc::new(tokio::sync::Barrier::new(1001));
    for _ in 0..1000 {
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Tc::connect(addr, "").await;
            c.send(json!({"type":"join","room":"big"})).await;
            assert_eq!(c.recv_type("joined").await["room"], "big");
            ready.wait().await;
            // user_joined notifications from later joiners come first.
            let m = c.recv_type("event").await;
            assert_eq!(m["event"], "announce");
            m["data"]["n"].as_u64().unwrap()
        }));
    }
    within(ready.wait()).await;
    assert_eq!(server.stats().sockets, 1000);
    assert_eq!(server.to("big").emit("announce", json!({"n": 7})).unwrap(), 1000);
    for t in tasks {
        assert_eq!(within(t).await.unwrap(), 7);
    }
    assert!(server.stats().messages_out >= 2000, "connected + announce to each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_start_in_arrival_order_even_when_they_wait() {
    let (server, addr) = start(Server::builder()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    server.on("seq", move |_sock, args| {
        // The synchronous part runs in arrival order...
        s.lock().push(args.json().as_u64().unwrap());
        let n = args.json().as_u64().unwrap();
        async move {
            // ...while waiting ones overlap (later ones finish first).
            tokio::time::sleep(Duration::from_millis(20 - n % 20)).await;
            json!(n)
        }
    });
    let mut c = Tc::connect(addr, "").await;
    for n in 0..200u64 {
        c.send(json!({"type":"event","event":"seq","data":n,"id":n})).await;
    }
    let mut acked = Vec::new();
    while acked.len() < 200 {
        acked.push(c.recv_type("ack").await["id"].as_u64().unwrap());
    }
    assert_eq!(*seen.lock(), (0..200).collect::<Vec<_>>());
    assert_ne!(acked, (0..200).collect::<Vec<_>>(), "handlers did overlap");
}

/// Upgrade a raw TCP connection at `/ws` and return it with the response head read.
async fn raw_upgrade(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        within(tcp.read_exact(&mut b)).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Read server frames until a close frame; its status code.
async fn close_code_of(tcp: &mut tokio::net::TcpStream) -> u16 {
    loop {
        let mut h = [0u8; 2];
        within(tcp.read_exact(&mut h)).await.unwrap();
        assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
        let len = match h[1] & 0x7F {
            126 => {
                let mut l = [0u8; 2];
                tcp.read_exact(&mut l).await.unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        within(tcp.read_exact(&mut payload)).await.unwrap();
        if h[0] & 0x0F == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test]
async fn websocket_protocol_violations_close_only_that_connection() {
    let (_server, addr) = start(Server::builder().max_payload(64)).await;
    let mut good = Tc::connect(addr, "").await;
    good.join("r").await;
    let masked = |first: u8, payload: &[u8]| {
        let mut f = vec![first, 0x80 | payload.len() as u8, 1, 2, 3, 4];
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
        f
    };
    for (bad, code) in [
        (vec![0x81, 0x02, b'h', b'i'], 1002),                                    // unmasked
        (masked(0xC1, b"hi"), 1002),         // reserved bit, no extension negotiated
        (masked(0x80, b"hi"), 1002),         // continuation with no message
        (masked(0x09, b"p"), 1002),          // fragmented ping
        (masked(0x81, &[0xC3, 0x28]), 1002), // text that is not UTF-8
        (masked(0x81, &[b'a'; 65]), 1009),   // over max_payload
        ([masked(0x01, &[b'a'; 40]), masked(0x80, &[b'a'; 40])].concat(), 1009), // too big once reassembled
    ] {
        let mut tcp = raw_upgrade(addr).await;
        tcp.write_all(&bad).await.unwrap();
        assert_eq!(close_code_of(&mut tcp).await, code, "{bad:?}");
        // Then the server closes the TCP connection.
        let mut rest = Vec::new();
        within(tcp.read_to_end(&mut rest)).await.unwrap();
    }
    // A client ping is answered with a pong carrying its payload.
    let mut tcp = raw_upgrade(addr).await;
    tcp.write_all(&masked(0x89, b"pp")).await.unwrap();
    let frame = loop {
        let mut h = [0u8; 2];
        within(tcp.read_exact(&mut h)).await.unwrap();
        let mut p = vec![0u8; usize::from(h[1])];
        tcp.read_exact(&mut p).await.unwrap();
        if h[0] == 0x8A {
            break p;
        }
    };
    assert_eq!(frame, b"pp");
    good.send(json!({"type": "ping", "data": 1})).await;
    assert_eq!(good.recv_type("pong").await["data"], 1);
}

#[tokio::test]
async fn json_connect_hooks_refuse_with_4003_or_hold_sends_until_connected() {
    let (server, addr) = start(Server::builder()).await;
    server.of("/").on_connect(|socket| async move {
        if socket.handshake().query_param("pass") == Some("yes") {
            socket.emit("hello", "after connected").unwrap();
            Ok(())
        } else {
            Err(Rejection::new("no pass"))
        }
    });
    let mut refused = Tc::raw(addr, "", &[]).await.unwrap();
    let close = within(async {
        loop {
            match refused.next().await {
                Some(Ok(Message::Close(f))) => return f,
                Some(Ok(Message::Text(t))) => panic!("nothing is sent before the hooks accept: {t}"),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame with a code");
    assert_eq!((u16::from(close.code), close.reason.as_str()), (4003, "no pass"));
    let mut ok = Tc::connect(addr, "?pass=yes").await;
    let event = ok.recv_type("event").await;
    assert_eq!((event["event"].clone(), event["data"].clone()), (json!("hello"), json!("after connected")));
}

#[tokio::test]
async fn a_socket_is_found_by_id_until_its_disconnect_handlers_are_done() {
    let (server, addr) = start(Server::builder()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let srv = server.clone();
    server.on_disconnect(move |socket, _reason| {
        let (srv, tx) = (srv.clone(), tx.clone());
        async move {
            let found = srv.of("/").socket(socket.id().as_str());
            let _ = tx.send((found.is_some_and(|s| !s.connected()), socket.id().as_str().to_owned()));
        }
    });
    let client = Tc::connect(addr, "").await;
    let id = client.id.clone();
    drop(client);
    assert_eq!(within(rx.recv()).await, Some((true, id.clone())), "found, and no longer connected");
    eventually(|| server.of("/").socket(&id).is_none()).await;
}

#[tokio::test]
async fn overlong_names_get_an_error_and_the_connection_goes_on() {
    let (_server, addr) = start(Server::builder()).await;
    let mut c = Tc::connect(addr, "").await;
    c.send(json!({"type":"join","room": "r".repeat(257)})).await;
    let e = c.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (Some("invalid_message"), Some("`room` longer than 256 bytes"))
    );
    c.send(json!({"type":"event","event": "e".repeat(257), "id": 4})).await;
    let e = c.recv_type("error").await;
    assert_eq!((e["code"].as_str(), e["id"].as_u64()), (Some("invalid_message"), Some(4)));
    // At the limit, both are fine.
    c.join(&"r".repeat(256)).await;
}

#[tokio::test]
async fn deeply_nested_json_gets_an_error_and_the_connection_goes_on() {
    let (_server, addr) = start(Server::builder()).await;
    let mut c = Tc::connect(addr, "").await;
    // serde_json stops at 128 levels: no stack overflow, however deep.
    let deep = format!(r#"{{"type":"ping","data":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    c.send_text(&deep).await;
    assert_eq!(c.recv_type("error").await["code"], "invalid_json");
    c.send(json!({"type":"ping","data":[[[1]]]})).await;
    assert_eq!(c.recv_type("pong").await["data"], json!([[[1]]]));
}
