//! At-least-once emits: roomcast's Socket.IO and JSON clients with `retries`
//! send each event again until it is acked (after an ack timeout, and after
//! their connection is cut by a proxy), and the server runs each event's
//! handler once, in order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::{start, within};
use parking_lot::Mutex;
use roomcast::client::socketio::{SocketIoClient, SocketIoOptions};
use roomcast::client::{Client, ClientOptions, ReconnectPolicy};
use roomcast::{Args, Data, Server, Socket};
use serde_json::{Value, json};

const N: i64 = 30;

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        base: Duration::from_millis(20),
        max: Duration::from_millis(50),
        jitter: 0.0,
        ..ReconnectPolicy::default()
    }
}

/// A server whose `n` handler records its argument; every fifth takes
/// longer than the clients' ack timeout, so it is retried while it runs.
async fn recording_server() -> (Server, std::net::SocketAddr, Arc<Mutex<Vec<i64>>>) {
    let (server, addr) = start(Server::builder()).await;
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let s = seen.clone();
    server.on("n", move |_socket: Socket, args: Args| {
        let s = s.clone();
        async move {
            let n = args.json().as_i64().unwrap_or(-1);
            s.lock().push(n);
            if n % 5 == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Args::one(Data::from(json!(n * 10)))
        }
    });
    (server, addr, seen)
}

/// Cut every connection through `proxy` a few times while the clients emit.
fn cut_now_and_then(proxy: Arc<Proxy>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            proxy.cut();
        }
    })
}

#[tokio::test]
async fn the_socketio_client_with_retries_has_each_event_handled_once_in_order() {
    let (server, addr, seen) = recording_server().await;
    let proxy = Arc::new(Proxy::start(addr).await);
    let opts = SocketIoOptions {
        retries: 20,
        ack_timeout: Duration::from_millis(100),
        reconnect: fast_reconnect(),
        ..Default::default()
    };
    let client = SocketIoClient::connect(&format!("http://{}", proxy.addr), opts).await.unwrap();
    let cutting = cut_now_and_then(proxy.clone());
    for n in 0..N {
        client.emit("n", Args::one(Data::from(json!(n)))).unwrap();
    }
    // One at a time, in order: once the last is acked, all were.
    let last = client.emit_with_ack("n", Args::one(Data::from(json!(N))), Duration::from_secs(30));
    assert_eq!(within(last).await.unwrap().json(), json!(N * 10));
    within(cutting).await.unwrap();
    assert_eq!(*seen.lock(), (0..=N).collect::<Vec<_>>(), "each event once, in order");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_json_client_with_retries_has_each_event_handled_once_in_order() {
    let (server, addr, seen) = recording_server().await;
    let proxy = Arc::new(Proxy::start(addr).await);
    let opts = ClientOptions {
        retries: 20,
        ack_timeout: Duration::from_millis(100),
        reconnect: fast_reconnect(),
        ..Default::default()
    };
    let client = Client::connect(&format!("ws://{}/ws", proxy.addr), opts).await.unwrap();
    let cutting = cut_now_and_then(proxy.clone());
    for n in 0..N {
        client.emit("n", json!(n)).unwrap();
    }
    assert_eq!(within(client.emit_with_ack("n", json!(N))).await.unwrap(), json!(N * 10));
    within(cutting).await.unwrap();
    assert_eq!(*seen.lock(), (0..=N).collect::<Vec<_>>(), "each event once, in order");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_event_never_acked_fails_after_its_last_try_and_the_next_goes_on() {
    let (server, addr) = start(Server::builder()).await;
    let tries: Arc<Mutex<Vec<Value>>> = Arc::default();
    let t = tries.clone();
    // Handlers that never answer: the ack of `stuck` never comes.
    server.on("stuck", move |_s: Socket, args: Args| {
        t.lock().push(args.json());
        std::future::pending::<()>()
    });
    server.on("ok", |_s: Socket, _args: Args| async { Args::one(Data::from("fine")) });
    let opts = SocketIoOptions { retries: 2, ack_timeout: Duration::from_millis(50), ..Default::default() };
    let client = SocketIoClient::connect(&format!("http://{addr}"), opts).await.unwrap();
    let stuck = client.emit_with_ack("stuck", Args::one(Data::from(json!(1))), Duration::from_secs(30));
    let err = within(stuck).await.unwrap_err();
    assert_eq!(err.kind(), roomcast::ErrorKind::Timeout, "{err}");
    assert_eq!(tries.lock().len(), 1, "the repeats were recognised: the handler ran once");
    assert_eq!(server.stats().retries_deduplicated, 2, "three tries: two repeats");
    let ok = client.emit_with_ack("ok", Args::none(), Duration::from_secs(30));
    assert_eq!(within(ok).await.unwrap().json(), json!("fine"));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_retries_nothing_is_resent_and_no_key_is_sent() {
    let (server, addr) = start(Server::builder()).await;
    let keys: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let k = keys.clone();
    server.on_connection(move |socket: Socket| {
        k.lock().push(socket.handshake().query_param("client_key").map(str::to_owned));
        async {}
    });
    let plain = SocketIoClient::connect(&format!("http://{addr}"), SocketIoOptions::default()).await.unwrap();
    let retrying = SocketIoOptions { retries: 1, ..Default::default() };
    let retrying = SocketIoClient::connect(&format!("http://{addr}"), retrying).await.unwrap();
    let keys = keys.lock().clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], None);
    assert!(keys[1].as_ref().is_some_and(|k| k.len() == 32), "{keys:?}");
    plain.close().await;
    retrying.close().await;
    server.shutdown().await;
}
