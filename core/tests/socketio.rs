//! Engine.IO / Socket.IO protocol edge cases with raw HTTP requests and
//! WebSocket frames, against a roomcast server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{start, within};
use futures_util::{SinkExt, StreamExt};
use roomcast::{DisconnectReason, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct HttpResponse {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    within(s.read_to_end(&mut out)).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    // Bodies are small: undo chunked encoding if hyper used it.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut rest = body;
        let mut out = String::new();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    HttpResponse { status, headers: head.to_ascii_lowercase(), body }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Read until the server ends the connection (text frames are skipped);
/// true when it did so with a close frame or by dropping it.
async fn ended(ws: &mut Ws) -> bool {
    let end = within(async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => continue,
                other => return other,
            }
        }
    })
    .await;
    matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_)))
}

/// Polling handshake: returns the Engine.IO sid and the open packet.
async fn handshake(addr: SocketAddr) -> (String, Value) {
    let r = http(addr, "GET", "/socket.io/?EIO=4&transport=polling&t=abc", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let open: Value = serde_json::from_str(r.body.strip_prefix('0').expect("open packet")).unwrap();
    (open["sid"].as_str().unwrap().to_owned(), open)
}

fn poll_path(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

#[tokio::test]
async fn open_packet_has_exactly_the_spec_fields() {
    let (_server, addr) = start(Server::builder()).await;
    let (_, open) = handshake(addr).await;
    let mut keys: Vec<_> = open.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!((open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()), (Some(25000), Some(20000)));
    assert_eq!(open["maxPayload"], 1_000_000);
    // Over WebSocket: no upgrades. Query order does not matter.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?transport=websocket&foo=1&EIO=4"))
            .await
            .unwrap();
    let Some(Ok(Message::Text(t))) = within(ws.next()).await else { panic!("open packet") };
    let open: Value = serde_json::from_str(t.as_str().strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
}

#[tokio::test]
async fn http_errors_use_engineio_bodies() {
    let (_server, addr) = start(Server::builder()).await;
    let cases = [
        ("GET", "/socket.io/?EIO=4&transport=carrier-pigeon", 400, json!({"code": 0, "message": "Transport unknown"})),
        ("GET", "/socket.io/?EIO=4", 400, json!({"code": 0, "message": "Transport unknown"})),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&sid=nope",
            400,
            json!({"code": 1, "message": "Session ID unknown"}),
        ),
        ("POST", "/socket.io/?EIO=4&transport=polling", 400, json!({"code": 2, "message": "Bad handshake method"})),
        (
            "GET",
            "/socket.io/?EIO=3&transport=polling",
            400,
            json!({"code": 5, "message": "Unsupported protocol version"}),
        ),
        ("GET", "/socket.io/?transport=polling", 400, json!({"code": 5, "message": "Unsupported protocol version"})),
        ("GET", "/socket.io/?EIO=4&transport=websocket", 400, json!({"code": 3, "message": "Bad request"})),
    ];
    for (method, path, status, body) in cases {
        let r = http(addr, method, path, &[], "").await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), body, "{method} {path}");
    }
    let (sid, _) = handshake(addr).await;
    let r = http(addr, "PUT", &poll_path(&sid), &[], "").await;
    assert_eq!((r.status, serde_json::from_str::<Value>(&r.body).unwrap()["code"].as_u64()), (400, Some(3)));
}

#[tokio::test]
async fn polling_connect_event_ack_and_binary() {
    let (server, addr) = start(Server::builder()).await;
    server.on("echo", |_s, args| async move { args });
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    // Two packets in one POST, joined by the record separator.
    let r = http(addr, "POST", &path, &[], "40\u{1e}42[\"ignored before connect?\"]").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = http(addr, "GET", &path, &[], "").await;
    assert!(r.body.starts_with("40{\"sid\":"), "{}", r.body);
    // An event with an ack id, and a binary event (base64 attachment).
    http(
        addr,
        "POST",
        &path,
        &[],
        "421[\"echo\",\"hi\"]\u{1e}451-2[\"echo\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID",
    )
    .await;
    let mut got = String::new();
    while !got.contains("bAQID") {
        got.push_str(&http(addr, "GET", &path, &[], "").await.body);
        got.push('\u{1e}');
    }
    assert!(got.contains("431[\"hi\"]"), "{got}");
    assert!(got.contains("461-2[{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID"), "{got}");
}

#[tokio::test]
async fn handlers_know_whether_the_client_asked_for_an_ack() {
    let (server, addr) = start(Server::builder()).await;
    let (tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
    server.on("wants", move |_s, _args: roomcast::Args| {
        let tx = tx.clone();
        async move {
            tokio::task::yield_now().await; // still known after an await
            let _ = tx.send(roomcast::wants_ack());
            json!(roomcast::wants_ack())
        }
    });
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    http(addr, "POST", &path, &[], "40\u{1e}42[\"wants\"]\u{1e}427[\"wants\"]").await;
    let mut got = String::new();
    while !got.contains("437[true]") {
        got.push_str(&http(addr, "GET", &path, &[], "").await.body);
    }
    assert_eq!(within(asked.recv()).await, Some(false));
    assert_eq!(within(asked.recv()).await, Some(true));
    assert!(!roomcast::wants_ack(), "false outside a handler");
}

#[tokio::test]
async fn second_concurrent_get_closes_the_session() {
    let (_server, addr) = start(Server::builder()).await;
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    let p = path.clone();
    let first = tokio::spawn(async move { http(addr, "GET", &p, &[], "").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = http(addr, "GET", &path, &[], "").await;
    assert_eq!(second.status, 400);
    let first = within(first).await.unwrap();
    assert_eq!(first.body, "1", "the pending poll gets the close packet");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(http(addr, "GET", &path, &[], "").await.status, 400, "session gone");
}

#[tokio::test]
async fn upgrade_probe_then_old_sid_refused_and_second_websocket_closed() {
    let (server, addr) = start(Server::builder()).await;
    server.on("echo", |_s, args| async move { args });
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    http(addr, "POST", &path, &[], "40").await;
    assert!(http(addr, "GET", &path, &[], "").await.body.starts_with("40"));
    // A poll is pending when the upgrade starts; it is released with a noop.
    let p = path.clone();
    let pending = tokio::spawn(async move { http(addr, "GET", &p, &[], "").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(within(ws.next()).await.unwrap().unwrap(), Message::text("3probe"));
    assert_eq!(within(pending).await.unwrap().body, "6");
    ws.send(Message::text("5")).await.unwrap();
    ws.send(Message::text("421[\"echo\",\"over ws\"]")).await.unwrap();
    loop {
        match within(ws.next()).await.unwrap().unwrap() {
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            Message::Text(t) => {
                assert_eq!(t.as_str(), "431[\"over ws\"]");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(http(addr, "GET", &path, &[], "").await.status, 400, "polling with the upgraded sid");
    let (mut second, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let end = within(second.next()).await;
    assert!(matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))), "second websocket closed: {end:?}");
}

#[tokio::test]
async fn missing_pong_closes_after_interval_plus_timeout() {
    let (server, addr) =
        start(Server::builder().ping_interval(Duration::from_millis(100)).ping_timeout(Duration::from_millis(100)))
            .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server.on_disconnect(move |_s, reason| {
        let _ = tx.send(reason);
        async {}
    });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    ws.next().await; // open
    ws.send(Message::text("40")).await.unwrap();
    let started = std::time::Instant::now();
    let mut pings = 0;
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => pings += 1, // never answered
            Some(Ok(Message::Text(_))) => {}
            _ => break,
        }
    }
    assert_eq!(pings, 1);
    assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
    assert_eq!(within(rx.recv()).await, Some(DisconnectReason::PingTimeout));
}

#[tokio::test]
async fn disconnect_connection_tells_every_namespace_then_closes() {
    let (server, addr) = start(Server::builder()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for nsp in ["/", "/admin"] {
        let tx = tx.clone();
        server.of(nsp).on_disconnect(move |s, reason| {
            let _ = tx.send((s.namespace().to_owned(), reason));
            async {}
        });
    }
    server.of("/admin").on("bye", |s, _args: roomcast::Args| async move { s.disconnect_connection() });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    ws.next().await;
    ws.send(Message::text("40")).await.unwrap();
    ws.send(Message::text("40/admin,")).await.unwrap();
    let mut connected = 0;
    while connected < 2 {
        let Some(Ok(Message::Text(t))) = within(ws.next()).await else { panic!("closed early") };
        connected += usize::from(t.as_str().starts_with("40"));
    }
    ws.send(Message::text("42/admin,[\"bye\"]")).await.unwrap();
    // Both namespaces get a DISCONNECT, then the connection closes.
    let mut got = Vec::new();
    while let Some(Ok(msg)) = within(ws.next()).await {
        match msg {
            Message::Text(t) => got.push(t.as_str().to_owned()),
            Message::Close(frame) => {
                assert_eq!(frame.map(|f| f.reason.to_string()).as_deref(), Some("forced server close"));
                break;
            }
            _ => {}
        }
    }
    got.sort();
    assert_eq!(got, ["41", "41/admin,"]);
    let mut reasons = vec![within(rx.recv()).await.unwrap(), within(rx.recv()).await.unwrap()];
    reasons.sort_by(|a, b| a.0.cmp(&b.0));
    let server_disconnect = DisconnectReason::ServerDisconnect;
    assert_eq!(reasons, [("/".to_owned(), server_disconnect), ("/admin".to_owned(), server_disconnect)]);
}

#[tokio::test]
async fn client_close_packet_and_namespace_disconnect_reasons() {
    let (server, addr) = start(Server::builder()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server.on_disconnect(move |_s, reason| {
        let _ = tx.send(reason);
        async {}
    });
    let connect = || async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .await
            .unwrap();
        ws.next().await;
        ws.send(Message::text("40")).await.unwrap();
        let Some(Ok(Message::Text(t))) = within(ws.next()).await else { panic!() };
        assert!(t.as_str().starts_with("40{\"sid\""));
        ws
    };
    let mut ws = connect().await;
    ws.send(Message::text("41")).await.unwrap();
    assert_eq!(within(rx.recv()).await, Some(DisconnectReason::ClientNamespaceDisconnect));
    let mut ws = connect().await;
    ws.send(Message::text("1")).await.unwrap();
    assert_eq!(within(rx.recv()).await, Some(DisconnectReason::TransportClose));
    let mut ws2 = connect().await;
    ws2.send(Message::text("42{\"not\":\"an array\"}")).await.unwrap();
    assert_eq!(within(rx.recv()).await, Some(DisconnectReason::ParseError));
    drop(ws);
}

#[tokio::test]
async fn invalid_packets_close_only_that_connection() {
    let (server, addr) = start(Server::builder()).await;
    server.on("echo", |_s, args| async move { args });
    let connect = || async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .await
            .unwrap();
        ws.next().await;
        ws.send(Message::text("40")).await.unwrap();
        ws.next().await;
        ws
    };
    let mut good = connect().await;
    for bad in [
        "49",                                             // bad socket.io type
        "42[\"echo\"",                                    // bad JSON
        "42[]",                                           // empty event array
        "42\"echo\"",                                     // not an array
        "4399[\"never issued\"]",                         // unknown ack id
        "4511-[\"e\",{\"_placeholder\":true,\"num\":0}]", // too many attachments
        "9",                                              // bad engine.io type
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("42[\"{}\"]", "e".repeat(257))])
    // event name over 256 bytes
    {
        let mut ws = connect().await;
        ws.send(Message::text(bad.clone())).await.unwrap();
        assert!(ended(&mut ws).await, "{bad}");
    }
    good.send(Message::text("421[\"echo\",1]")).await.unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = within(good.next()).await else { panic!("good connection still open") };
        if t.as_str() == "431[1]" {
            break;
        }
    }
}

#[tokio::test]
async fn unknown_namespace_and_middleware_refusal() {
    let (server, addr) = start(Server::builder()).await;
    server.of("/private").auth(|hs| async move {
        match hs.auth.get("token").and_then(Value::as_str) {
            Some("ok") => Ok(roomcast::Identity::user("u1")),
            _ => Err(roomcast::Rejection { message: "nope".into(), data: Some(json!({"retry": false})) }),
        }
    });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    ws.next().await;
    let mut send_recv = async |text: &str| {
        ws.send(Message::text(text.to_owned())).await.unwrap();
        let Some(Ok(Message::Text(t))) = within(ws.next()).await else { panic!() };
        t.as_str().to_owned()
    };
    assert_eq!(send_recv("40/nope,").await, "44/nope,{\"message\":\"Invalid namespace\"}");
    assert_eq!(
        send_recv("40/private,{\"token\":\"bad\"}").await,
        "44/private,{\"data\":{\"retry\":false},\"message\":\"nope\"}"
    );
    assert!(send_recv("40/private,{\"token\":\"ok\"}").await.starts_with("40/private,{\"sid\":"));
}

#[tokio::test]
async fn no_connect_within_connect_timeout_closes() {
    let (_server, addr) = start(Server::builder().connect_timeout(Duration::from_millis(150))).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    ws.next().await;
    assert!(ended(&mut ws).await);
}

#[tokio::test]
async fn cors_for_polling_and_origin_check_for_websocket() {
    let (_server, addr) = start(Server::builder().allowed_origin("http://app.example")).await;
    let good = [("Origin", "http://app.example")];
    let r = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", &good, "").await;
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("access-control-allow-origin: http://app.example"), "{}", r.headers);
    assert!(r.headers.contains("access-control-allow-credentials: true"));
    let pre = http(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", "http://app.example"), ("Access-Control-Request-Headers", "content-type")],
        "",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert!(pre.headers.contains("access-control-allow-headers: content-type"));
    let bad = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", &[("Origin", "http://evil.example")], "").await;
    assert_eq!((bad.status, serde_json::from_str::<Value>(&bad.body).unwrap()["code"].as_u64()), (403, Some(4)));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket"
    ))
    .unwrap();
    req.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err(), "websocket origin refused");
}

#[tokio::test]
async fn oversize_polling_post_is_refused() {
    let (_server, addr) = start(Server::builder().max_payload(100)).await;
    let (sid, _) = handshake(addr).await;
    let r = http(addr, "POST", &poll_path(&sid), &[], &format!("42[\"{}\"]", "x".repeat(200))).await;
    assert_eq!(r.status, 413);
}

/// Poll `path` until the session is gone (400, sid unknown), within 5 s.
async fn session_gone(addr: SocketAddr, path: &str) {
    within(async {
        while http(addr, "GET", path, &[], "").await.status != 400 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A POST whose body is still on its way (`Content-Length` says more).
async fn unfinished_post(addr: SocketAddr, path: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n42[\"part");
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s
}

#[tokio::test]
async fn overlapping_or_abandoned_polling_posts_close_only_that_session() {
    let (_server, addr) = start(Server::builder()).await;
    let (bystander, _) = handshake(addr).await;
    let bystander = poll_path(&bystander);
    assert_eq!(http(addr, "POST", &bystander, &[], "40").await.body, "ok");
    assert!(http(addr, "GET", &bystander, &[], "").await.body.starts_with("40"));

    // Two POSTs at once: the second is refused and the session closed, so a
    // client cannot pile up bodies (each up to max_payload) on one session.
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    let _held = unfinished_post(addr, &path).await;
    assert_eq!(http(addr, "POST", &path, &[], "40").await.status, 400);
    session_gone(addr, &path).await;

    // A POST given up midway closes its session as a transport error.
    let (sid, _) = handshake(addr).await;
    let path = poll_path(&sid);
    drop(unfinished_post(addr, &path).await);
    session_gone(addr, &path).await;

    assert_eq!(http(addr, "POST", &bystander, &[], "3").await.body, "ok", "the other session goes on");
}

/// A raw Socket.IO client over WebSocket that answers pings.
struct Sio {
    ws: Ws,
}

impl Sio {
    async fn connect(addr: SocketAddr, connect: &str) -> (Sio, String) {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .await
            .unwrap();
        ws.next().await;
        let mut sio = Sio { ws };
        sio.send(connect).await;
        let reply = sio.recv().await;
        (sio, reply)
    }

    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    async fn recv(&mut self) -> String {
        loop {
            match within(self.ws.next()).await {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn dynamic_namespaces_share_the_parents_handlers() {
    let (server, addr) = start(Server::builder()).await;
    let teams = server.dynamic_namespace("/team-*");
    teams.on("where", |s, _a| async move { json!(s.namespace()) });
    let (mut a, hello) = Sio::connect(addr, "40/team-red,").await;
    assert!(hello.starts_with("40/team-red,{\"sid\":"), "{hello}");
    a.send("42/team-red,1[\"where\"]").await;
    assert_eq!(a.recv().await, "43/team-red,1[\"/team-red\"]");
    let (mut b, _) = Sio::connect(addr, "40/team-blue,").await;
    let (_, refused) = Sio::connect(addr, "40/teams,").await;
    assert_eq!(refused, "44/teams,{\"message\":\"Invalid namespace\"}");
    // A broadcast on the parent reaches every child namespace, each in its own name.
    assert_eq!(teams.emit("news", "hi").unwrap(), 2);
    assert_eq!(a.recv().await, "42/team-red,[\"news\",\"hi\"]");
    assert_eq!(b.recv().await, "42/team-blue,[\"news\",\"hi\"]");
    // Children go away with their last socket: invented names cost nothing.
    drop(b);
    common::eventually(|| server.stats().sockets == 1).await;
    assert_eq!(teams.emit("news", "again").unwrap(), 1);
    let pred = server.dynamic_namespace_fn(|name| name.len() == 4);
    pred.on("len", |_s, _a| async move { json!(4) });
    let (mut c, _) = Sio::connect(addr, "40/abc,").await;
    c.send("42/abc,7[\"len\"]").await;
    assert_eq!(c.recv().await, "43/abc,7[4]");
}

#[tokio::test]
async fn event_middleware_and_catch_all() {
    let (server, addr) = start(Server::builder()).await;
    server.on_connection(|socket| async move {
        socket.use_middleware(|_s, event, args| async move {
            if event == "forbidden" { Err("not allowed") } else { Ok(args) }
        });
        socket.on_any(|_s, event, _a| async move { json!(format!("any:{event}")) });
    });
    server.on("known", |_s, _a| async move { json!("known") });
    let (mut c, _) = Sio::connect(addr, "40").await;
    c.send("421[\"known\"]").await;
    assert_eq!(c.recv().await, "431[\"known\"]");
    c.send("422[\"other\"]").await;
    assert_eq!(c.recv().await, "432[\"any:other\"]");
    c.send("423[\"forbidden\"]").await;
    c.send("424[\"known\"]").await;
    assert_eq!(c.recv().await, "434[\"known\"]", "the refused event got no ack");
    // JSON-protocol clients see the refusal as an error.
    let mut j = common::Tc::connect(addr, "").await;
    j.send(json!({"type":"event","event":"forbidden","id":5})).await;
    let e = j.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_u64(), e["message"].as_str()),
        (Some("refused"), Some(5), Some("not allowed"))
    );
}

#[tokio::test]
async fn broadcast_with_acks_uses_one_id_and_collects_replies() {
    let (server, addr) = start(Server::builder()).await;
    let (mut a, _) = Sio::connect(addr, "40").await;
    let (mut b, _) = Sio::connect(addr, "40").await;
    let mut j = common::Tc::connect(addr, "").await;
    let srv = server.clone();
    let pending = tokio::spawn(async move {
        srv.broadcast().emit_with_ack("poll", roomcast::Args::one(json!("?")), Duration::from_millis(500)).await
    });
    let (pa, pb) = (a.recv().await, b.recv().await);
    assert_eq!(pa, pb, "encoded once: same packet, same id");
    let id: String = pa.trim_start_matches("42").chars().take_while(char::is_ascii_digit).collect();
    a.send(&format!("43{id}[\"yes\"]")).await;
    let q = j.recv().await;
    assert_eq!(q["event"], "poll");
    j.send(json!({"type":"ack","id":q["id"],"data":"oui"})).await;
    // b never answers.
    let results = within(pending).await.unwrap();
    let mut answers: Vec<String> = results
        .iter()
        .map(|(_, r)| match r {
            Ok(args) => args.json().as_str().unwrap().to_owned(),
            Err(e) => format!("{:?}", e.kind()),
        })
        .collect();
    answers.sort();
    assert_eq!(answers, ["Timeout", "oui", "yes"]);
    drop(b);
}

#[tokio::test]
async fn rate_limit_drops_then_closes_socketio_sessions() {
    let limit =
        roomcast::RateLimit { messages_per_sec: 1.0, message_burst: 2.0, max_violations: 3, ..Default::default() };
    let (server, addr) = start(Server::builder().rate_limit(limit)).await;
    server.on("echo", |_s, args| async move { args });
    let (mut flood, _) = Sio::connect(addr, "40").await; // the CONNECT took one token
    let (mut calm, _) = Sio::connect(addr, "40").await;
    flood.send("421[\"echo\",1]").await;
    assert_eq!(flood.recv().await, "431[1]");
    for _ in 0..10 {
        let _ = flood.ws.send(Message::text("422[\"echo\",2]")).await;
    }
    let end = within(async {
        loop {
            match flood.ws.next().await {
                Some(Ok(Message::Text(t))) => assert_ne!(t.as_str(), "432[2]", "over the limit: dropped"),
                other => return other,
            }
        }
    })
    .await;
    assert!(matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))));
    calm.send("423[\"echo\",3]").await;
    assert_eq!(calm.recv().await, "433[3]");
    assert!(server.stats().rate_limited >= 4);
}

#[tokio::test]
async fn connect_hooks_refuse_or_admit_with_what_they_sent_after_the_connect_answer() {
    let (server, addr) = start(Server::builder()).await;
    let disconnects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = disconnects.clone();
    server.on_disconnect(move |_s, _r| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {}
    });
    let root = server.of("/");
    root.on_connect(|socket| async move {
        match socket.handshake().auth.get("token").and_then(Value::as_str) {
            Some("good") => {
                socket.join("members").unwrap();
                socket.emit("welcome", "held until connected").unwrap();
                Ok(())
            }
            _ => Err(roomcast::Rejection { message: "bad token".into(), data: Some(json!({"retry": false})) }),
        }
    });
    let open = || async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .await
            .unwrap();
        within(ws.next()).await;
        ws
    };
    let text = |m: Option<Result<Message, _>>| match m {
        Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    };
    let mut refused = open().await;
    refused.send(Message::text(r#"40{"token":"bad"}"#)).await.unwrap();
    assert_eq!(text(within(refused.next()).await), r#"44{"data":{"retry":false},"message":"bad token"}"#);
    let mut ok = open().await;
    ok.send(Message::text(r#"40{"token":"good"}"#)).await.unwrap();
    assert!(text(within(ok.next()).await).starts_with("40{\"sid\""), "the connect answer comes first");
    assert_eq!(text(within(ok.next()).await), r#"42["welcome","held until connected"]"#);
    server.to("members").emit("news", 1).unwrap();
    assert_eq!(text(within(ok.next()).await), r#"42["news",1]"#);
    assert_eq!(server.of("/").len(), 1, "the refused socket is gone");
    drop(ok);
    common::eventually(|| disconnects.load(std::sync::atomic::Ordering::SeqCst) == 1).await;
    drop(refused);
}

#[tokio::test]
async fn a_polling_session_refuses_requests_from_another_origin() {
    let (server, addr) = start(Server::builder()).await; // every origin allowed
    server.on("echo", |_s, args| async move { args });
    // A same-origin page: its handshake GET carries no Origin, its POST does.
    let (sid, _) = handshake(addr).await;
    let app = [("Origin", "http://app.example"), ("Content-Type", "text/plain")];
    assert_eq!(http(addr, "POST", &poll_path(&sid), &app, "40").await.status, 200);
    assert!(http(addr, "GET", &poll_path(&sid), &app, "").await.body.starts_with("40"));
    // A page elsewhere that learnt the sid can neither read nor write the stream, nor upgrade it.
    let evil = [("Origin", "http://evil.example"), ("Content-Type", "text/plain")];
    for method in ["GET", "POST"] {
        let r = http(addr, method, &poll_path(&sid), &evil, r#"42["echo",1]"#).await;
        assert_eq!(r.status, 403, "{method}");
        assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap()["message"], "session of another origin");
    }
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}"
    ))
    .unwrap();
    req.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err(), "upgrade from another origin refused");
    // The owner goes on.
    assert_eq!(http(addr, "POST", &poll_path(&sid), &app, r#"421["echo",7]"#).await.status, 200);
    assert_eq!(http(addr, "GET", &poll_path(&sid), &app, "").await.body, "431[7]");
}

#[tokio::test]
async fn engineio_handshakes_count_against_the_connection_rate_but_polls_do_not() {
    let rate = roomcast::ConnectionRate::new(0.01).burst(1);
    let (server, addr) = start(Server::builder().connection_rate_per_ip(rate)).await;
    server.on("echo", |_s, args| async move { args });
    let (sid, _) = handshake(addr).await;
    let refused = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", &[], "").await;
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("too many new connections"), "{}", refused.body);
    // The session admitted before polls on as often as it likes.
    let text = [("Content-Type", "text/plain")];
    assert_eq!(http(addr, "POST", &poll_path(&sid), &text, "40").await.status, 200);
    assert!(http(addr, "GET", &poll_path(&sid), &[], "").await.body.starts_with("40"));
    for i in 0..5 {
        assert_eq!(http(addr, "POST", &poll_path(&sid), &text, &format!(r#"42{i}["echo",{i}]"#)).await.status, 200);
        assert_eq!(http(addr, "GET", &poll_path(&sid), &[], "").await.body, format!("43{i}[{i}]"));
    }
}

#[tokio::test]
async fn attachments_adding_up_past_max_payload_close_only_that_connection() {
    let (server, addr) = start(Server::builder().max_payload(1000)).await;
    server.on("echo", |_s, args| async move { args });
    let connect = || async {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.next().await;
        ws.send(Message::text("40")).await.unwrap();
        ws.next().await;
        ws
    };
    let two = r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    // Within the bound, the binary packet comes back whole.
    let mut good = connect().await;
    good.send(Message::text(two.replace("452-[", "452-1["))).await.unwrap();
    for _ in 0..2 {
        good.send(Message::binary(vec![7u8; 400])).await.unwrap();
    }
    let Some(Ok(Message::Text(ack))) = within(good.next()).await else { panic!("an ack") };
    assert!(ack.starts_with("462-1["), "{ack}");
    // Each frame is under max_payload, together they are over: the connection closes.
    let mut bad = connect().await;
    bad.send(Message::text(two)).await.unwrap();
    for _ in 0..2 {
        let _ = bad.send(Message::binary(vec![7u8; 600])).await;
    }
    assert!(ended(&mut bad).await, "closed");
    good.send(Message::text("421[\"echo\",1]")).await.unwrap();
    loop {
        let Some(Ok(msg)) = within(good.next()).await else { panic!("good connection still open") };
        if msg.to_text().is_ok_and(|t| t == "431[1]") {
            break;
        }
    }
}
