//! Test helpers: a server on 127.0.0.1:0 and a raw WebSocket test client.
#![allow(dead_code)]

pub mod proxy;
pub mod redis;
pub mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast::{Server, ServerBuilder};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The value of the metric line `name` (labels included) in a Prometheus text.
pub fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn start(b: ServerBuilder) -> (Server, SocketAddr) {
    let server = b.build().expect("valid config");
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    (server, addr)
}

pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// Poll `cond` until it holds (bounded by WAIT).
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    within(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

pub struct Tc {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Tc {
    pub async fn connect(addr: SocketAddr, query: &str) -> Tc {
        Self::try_connect(addr, query, &[]).await.expect("connect")
    }

    /// Connect with extra headers; the error carries the HTTP refusal.
    pub async fn try_connect(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Tc, tungstenite::Error> {
        let ws = Self::raw(addr, query, headers).await?;
        let mut tc = Tc { ws, id: String::new() };
        let hello = tc.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        tc.id = hello["clientId"].as_str().expect("clientId").to_owned();
        Ok(tc)
    }

    /// The upgraded stream before anything is read.
    pub async fn raw(
        addr: SocketAddr,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tungstenite::Error> {
        let mut req = format!("ws://{addr}/ws{query}").into_client_request()?;
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        let (ws, _) = within(tokio_tungstenite::connect_async(req)).await?;
        Ok(ws)
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_owned())).await.expect("send");
    }

    /// The next JSON message (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Value {
        within(async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("JSON from server"),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
        })
        .await
    }

    /// Skip messages until one of type `ty`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == ty {
                return m;
            }
        }
    }

    pub async fn join(&mut self, room: &str) {
        self.send(serde_json::json!({"type": "join", "room": room})).await;
        let m = self.recv().await;
        assert_eq!(m, serde_json::json!({"type": "joined", "room": room}));
    }

    /// Read until the server closes; returns its close frame, if any.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        within(async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(f))) => return f,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }

    /// Assert nothing arrives within `ms`.
    pub async fn silent(&mut self, ms: u64) {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(ms), self.ws.next()).await
            && !matches!(m, Message::Ping(_))
        {
            panic!("expected silence, got {m:?}");
        }
    }
}

/// HTTP status of a refused upgrade.
/// A plain `GET path` to `addr`: the whole response, head and body.
#[allow(dead_code)]
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write the request");
    let mut out = String::new();
    within(s.read_to_string(&mut out)).await.expect("read the response");
    out
}

pub fn http_status(e: &tungstenite::Error) -> u16 {
    match e {
        tungstenite::Error::Http(res) => res.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}
