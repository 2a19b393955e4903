//! The hyper accept loop and request routing: `/ws` upgrades, `/healthz`,
//! the Prometheus metrics (when a path is configured), and static files
//! (a landing page by default).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::ServerInner;
use super::session::{self, Accepted};
use crate::config::AuthRejection;
use crate::hub::socket::Handshake;
use crate::metrics::Counters;
use crate::transport::{Frame, close_code, websocket};

pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The JSON protocol's endpoint.
pub const WS_PATH: &str = "/ws";

const LANDING_PAGE: &str = include_str!("../../static/index.html");

/// The most a request line and its headers may take (hyper answers 431
/// beyond it): browsers' requests fit in a few KiB, cookies included.
pub const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// Accept connections until shutdown; each is served on its own task.
pub(crate) async fn accept_loop(listener: TcpListener, server: Arc<ServerInner>) {
    loop {
        let (stream, addr) = tokio::select! {
            () = server.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let srv = server.clone();
        let service = service_fn(move |req| {
            let srv = srv.clone();
            async move { Ok::<_, Infallible>(route(srv, req, addr).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(server.config.handshake_timeout)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let shutdown = server.shutdown.clone();
        server.tracker.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = shutdown.cancelled() => {
                    // Finish the request in flight, then close; upgraded
                    // connections have left hyper already.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::trace!(error = %e, "http connection ended");
            }
        });
    }
}

async fn route(server: Arc<ServerInner>, req: Request<Incoming>, addr: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    let sio_path = server.config.socketio_path.as_str();
    if path == sio_path || Some(path) == sio_path.strip_suffix('/') {
        return super::engine::handle(server, req, addr).await;
    }
    match path {
        WS_PATH => upgrade(server, req, addr).await,
        "/healthz" => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        _ if server.config.metrics_path.as_deref() == Some(path) => metrics(&server),
        _ => static_file(&server, req).await,
    }
}

fn metrics(server: &ServerInner) -> Response<Body> {
    let mut res = Response::new(full(server.metrics()));
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    res.headers_mut().insert(header::CONTENT_TYPE, kind.parse().expect("static header"));
    res
}

async fn static_file(server: &ServerInner, req: Request<Incoming>) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "only GET and HEAD are served");
    }
    match &server.static_dir {
        Some(dir) => match tower_http::services::ServeDir::new(dir).oneshot(req).await {
            Ok(res) => res.map(|b| b.map_err(std::io::Error::other).boxed_unsync()),
            Err(never) => match never {},
        },
        None if matches!(req.uri().path(), "/" | "/index.html") => {
            let mut res = Response::new(full(LANDING_PAGE));
            res.headers_mut().insert(header::CONTENT_TYPE, "text/html; charset=utf-8".parse().expect("static header"));
            res
        }
        None => problem(StatusCode::NOT_FOUND, "not_found", "no such page"),
    }
}

/// Validate, admit and authenticate before answering `101`; the session runs
/// on its own task once hyper hands over the upgraded connection.
async fn upgrade(server: Arc<ServerInner>, mut req: Request<Incoming>, addr: SocketAddr) -> Response<Body> {
    let cfg = &server.config;
    let refused = |status, code, msg: &str| {
        Counters::add(&server.hub.counters.refused_connections, 1);
        problem(status, code, msg)
    };
    if req.method() != Method::GET || !websocket::is_upgrade(req.headers()) {
        return refused(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected a WebSocket upgrade (GET, Upgrade: websocket, version 13)",
        );
    }
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !cfg.origin_allowed(origin) {
        return refused(StatusCode::FORBIDDEN, "forbidden", "origin not allowed");
    }
    let query = parse_query(req.uri().query());
    let ns_name = query.iter().find(|(k, _)| k == "namespace").map_or("/", |(_, v)| v.as_str()).to_owned();
    let Some(ns) = server.hub.get(&ns_name) else {
        return refused(StatusCode::NOT_FOUND, "not_found", "unknown namespace");
    };
    let permit = match server.limiter.try_acquire(addr.ip()) {
        Ok(p) => p,
        Err(refusal) => {
            let (code, message) = refusal.describe();
            return refused(refusal.status(), code, message);
        }
    };
    let handshake = Arc::new(Handshake {
        headers: Arc::new(owned_headers(req.headers())),
        query: query.into(),
        remote_addr: addr,
        path: req.uri().path().to_owned(),
        namespace: ns.name().to_owned(),
        auth: serde_json::Value::Null,
    });
    // Connection state recovery: `?resume=<token>&offset=<last offset>`.
    let resumed = match handshake.query_param("resume") {
        Some(pid) if ns.recovers() => ns.take_session(pid, handshake.query_param("offset"), &server.hub.counters).await,
        _ => None,
    };
    let identity = ns.identify(handshake.clone(), cfg.handshake_timeout, resumed.as_ref()).await;
    if let Err(rej) = &identity {
        tracing::debug!(%addr, reason = %rej.message, "connection refused by auth hook");
        if cfg.auth_rejection == AuthRejection::Http401 {
            Counters::add(&server.hub.counters.refused_connections, 1);
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "unauthorized", "message": rej.message, "data": rej.data}),
            );
        }
    }
    let Some(response) = websocket::switching_protocols::<Body>(req.headers()) else {
        return refused(StatusCode::BAD_REQUEST, "bad_request", "bad Sec-WebSocket-Key");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let srv = server.clone();
    server.tracker.spawn(async move {
        let upgraded = match tokio::time::timeout(srv.config.handshake_timeout, on_upgrade).await {
            Ok(Ok(u)) => u,
            _ => return,
        };
        let Some((reader, writer)) = websocket::accept(upgraded, srv.config.max_payload, srv.hub.counters.clone())
        else {
            return;
        };
        match identity {
            Ok(identity) => {
                let f = session::run(
                    Accepted { server: srv.clone(), ns, handshake, identity, permit, resumed },
                    reader,
                    writer,
                );
                // A task of its own, rather than this one's state plus the session's.
                srv.tracker.spawn(f);
            }
            Err(_) => {
                Counters::add(&srv.hub.counters.refused_connections, 1);
                let close = Frame::Close { code: close_code::AUTH_FAILED, reason: "Authentication failed".into() };
                websocket::send(&writer, &[close], srv.config.shutdown_timeout).await;
            }
        }
    });
    response
}

/// A copy of the request headers that owns its bytes. hyper's header values
/// are slices of the connection's 8 KiB read buffer; keeping them for the
/// socket's life would keep that whole buffer alive for every connection.
/// The values share one allocation rather than one each.
pub(crate) fn owned_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut values = bytes::BytesMut::with_capacity(headers.values().map(|v| v.len()).sum());
    for value in headers.values() {
        values.extend_from_slice(value.as_bytes());
    }
    let values = values.freeze();
    let mut out = http::HeaderMap::with_capacity(headers.len());
    let mut at = 0;
    for (name, value) in headers {
        let end = at + value.len();
        if let Ok(v) = http::HeaderValue::from_maybe_shared(values.slice(at..end)) {
            out.append(name.clone(), v);
        }
        at = end;
    }
    out
}

/// Decoded `key=value` pairs, in order.
pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).map_err(|never| match never {}).boxed_unsync()
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut res = Response::new(full(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().expect("static header"));
    res
}

fn problem(status: StatusCode, error: &str, message: &str) -> Response<Body> {
    json(status, serde_json::json!({"error": error, "message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("token=a%2Bb&namespace=%2Fchat&x=1+2&flag&bad=%zz"));
        assert_eq!(q[0], ("token".into(), "a+b".into()));
        assert_eq!(q[1], ("namespace".into(), "/chat".into()));
        assert_eq!(q[2], ("x".into(), "1 2".into()));
        assert_eq!(q[3], ("flag".into(), "".into()));
        assert_eq!(q[4], ("bad".into(), "%zz".into()));
        assert!(parse_query(None).is_empty());
    }

    #[test]
    fn owned_headers_keep_every_value_in_one_buffer() {
        let mut h = http::HeaderMap::new();
        h.insert(header::HOST, "example.org".parse().unwrap());
        h.append("x-multi", "one".parse().unwrap());
        h.append("x-multi", "two".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        let owned = owned_headers(&h);
        assert_eq!(owned, h);
        let host = owned[header::HOST].as_bytes().as_ptr();
        let auth = owned[header::AUTHORIZATION].as_bytes().as_ptr();
        // Adjacent in one allocation, in iteration order.
        let span = (auth as usize).abs_diff(host as usize);
        assert!(span < 32, "values are not in one buffer");
    }
}
