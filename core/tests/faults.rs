//! Faults, each bounded in time: Redis partitioned from the nodes (a proxy
//! the test pauses: connections open, nothing through) and its connections
//! dropped, a node frozen past its TTL and thawed, clients vanishing without
//! a close. Each test asserts what survives and that nothing promised is
//! lost. Redis killed and restarted, and nodes SIGKILLed, are in cluster.rs
//! and cluster_recovery.rs.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::redis::Redis;
use common::serve::Serve;
use common::{Tc, WAIT, eventually, start, within};
use parking_lot::Mutex;
use roomcast::client::socketio::{SocketIoClient, SocketIoEvent, SocketIoOptions};
use roomcast::{Args, DisconnectReason, Identity, LostSocket, RecoveryConfig, RedisConfig, Server};
use serde_json::{Value, json};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A node on Redis at `url` whose clients name their user with `?user=`;
/// presence in `lobby`.
async fn node(url: &str) -> (Server, SocketAddr) {
    let mut c = RedisConfig::new(url);
    c.node_ttl = ms(1000);
    c.request_timeout = ms(1000);
    let b = Server::builder()
        .shutdown_timeout(ms(500))
        .auth(|hs| async move { Ok(hs.query_param("user").map_or_else(Identity::anonymous, Identity::user)) })
        .redis(c);
    let (server, addr) = start(b).await;
    server.of("/").enable_presence_in("lobby");
    (server, addr)
}

/// Emit `event` on `from` to `lobby` until `to` receives it (cross-node
/// delivery is back once fred has reconnected and resubscribed).
async fn until_delivered(from: &Server, to: &mut Tc, event: &str) {
    within(async {
        loop {
            from.to("lobby").emit(event, 0).unwrap();
            if let Ok(m) = tokio::time::timeout(ms(200), to.recv_type("event")).await
                && m["event"] == event
            {
                return;
            }
        }
    })
    .await
}

async fn presence_users(server: &Server) -> Vec<String> {
    let mut users: Vec<String> =
        server.of("/").presence("lobby").await.unwrap_or_default().into_iter().map(|m| m.user_id).collect();
    users.sort();
    users
}

/// Poll an async condition until it holds (bounded by WAIT).
async fn eventually_async<F: Future<Output = bool>>(mut cond: impl FnMut() -> F) {
    within(async {
        while !cond().await {
            tokio::time::sleep(ms(50)).await;
        }
    })
    .await
}

async fn event(tc: &mut Tc, name: &str) -> Value {
    loop {
        let m = tc.recv_type("event").await;
        if m["event"] == name {
            return m["data"].clone();
        }
    }
}

#[tokio::test]
async fn a_redis_partition_longer_than_the_node_ttl_heals() {
    let redis = Redis::start();
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let url = format!("redis://{}", proxy.addr);
    let (a, a_addr) = node(&url).await;
    let (b, b_addr) = node(&url).await;
    let mut alice = Tc::connect(a_addr, "?user=alice").await;
    let mut bob = Tc::connect(b_addr, "?user=bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    alice.recv_type("user_joined").await;
    until_delivered(&a, &mut bob, "before").await;

    proxy.pause();
    // Local traffic goes on; cluster queries answer within the request
    // timeout (an error, or what this node knows), they do not hang.
    a.to("lobby").emit("local", 1).unwrap();
    assert_eq!(event(&mut alice, "local").await, 1);
    let started = std::time::Instant::now();
    let _ = within(a.to("lobby").fetch_sockets()).await;
    let _ = within(a.nodes()).await;
    assert!(started.elapsed() < ms(8000), "bounded: {:?}", started.elapsed());
    // Past the node TTL: Redis forgets both nodes' heartbeats meanwhile.
    tokio::time::sleep(ms(1500)).await;

    proxy.resume();
    until_delivered(&a, &mut bob, "after").await;
    until_delivered(&b, &mut alice, "after-b").await;
    // Both nodes are members again and presence holds both users on both.
    eventually_async(|| async { a.nodes().await.is_ok_and(|n| n.len() == 2) }).await;
    eventually_async(|| async { presence_users(&a).await == ["alice", "bob"] }).await;
    eventually_async(|| async { presence_users(&b).await == ["alice", "bob"] }).await;
    // The clients never noticed: same connections.
    alice.send(json!({"type": "ping"})).await;
    assert_eq!(alice.recv_type("pong").await["type"], "pong");
    assert!(a.stats().cluster_errors + a.stats().cluster_request_timeouts > 0, "the partition is counted");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn dropped_redis_connections_are_reopened_and_nothing_stored_is_lost() {
    let redis = Redis::start();
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let url = format!("redis://{}", proxy.addr);
    let (a, a_addr) = node(&url).await;
    let (b, b_addr) = node(&url).await;
    let mut alice = Tc::connect(a_addr, "?user=alice").await;
    let mut bob = Tc::connect(b_addr, "?user=bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    alice.recv_type("user_joined").await;
    until_delivered(&a, &mut bob, "before").await;

    for round in 0..3 {
        proxy.cut();
        until_delivered(&a, &mut bob, &format!("after-{round}")).await;
        until_delivered(&b, &mut alice, &format!("back-{round}")).await;
    }
    // Redis itself kept everything: presence is whole without a rewrite,
    // and nobody was reported lost.
    assert_eq!(presence_users(&a).await, ["alice", "bob"]);
    assert_eq!(presence_users(&b).await, ["alice", "bob"]);
    assert_eq!(a.nodes().await.unwrap().len(), 2);
    let found = a.to("lobby").fetch_sockets().await.unwrap();
    assert!(found.is_complete() && found.value.len() == 2, "{found:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_frozen_past_its_ttl_is_buried_then_rejoins_when_thawed() {
    let redis = Redis::start();
    let frozen = tokio::task::spawn_blocking({
        let url = redis.url();
        move || Serve::start(&["--redis", &url, "--node-ttl-ms", "1000", "--ping-interval-ms", "60000"])
    })
    .await
    .unwrap();
    let (a, a_addr) = node(&redis.url()).await;
    let lost = Arc::new(Mutex::new(Vec::<LostSocket>::new()));
    let seen = lost.clone();
    a.on_node_lost(move |s| {
        let seen = seen.clone();
        async move { seen.lock().push(s) }
    });
    let mut on_frozen = Tc::connect(frozen.addr, "").await;
    on_frozen.join("lobby").await;
    let mut on_a = Tc::connect(a_addr, "?user=ann").await;
    on_a.join("lobby").await;
    until_delivered(&a, &mut on_frozen, "before").await;
    assert_eq!(a.nodes().await.unwrap().len(), 2);

    frozen.signal("-STOP");
    // A buries it: its socket is reported lost once, its node gone.
    eventually(|| lost.lock().len() == 1).await;
    assert_eq!(lost.lock()[0].sid, on_frozen.id);
    eventually_async(|| async { a.nodes().await.is_ok_and(|n| n.len() == 1) }).await;
    // A serves its own clients meanwhile.
    a.to("lobby").emit("during", 1).unwrap();
    assert_eq!(event(&mut on_a, "during").await, 1);

    frozen.signal("-CONT");
    // Thawed, it heartbeats again and is a member; its open connection
    // gets the cluster's broadcasts again, and A's answers reach it.
    eventually_async(|| async { a.nodes().await.is_ok_and(|n| n.len() == 2) }).await;
    until_delivered(&a, &mut on_frozen, "after").await;
    assert_eq!(lost.lock().len(), 1, "reported once");
    a.shutdown().await;
}

#[tokio::test]
async fn a_client_that_vanishes_without_a_close_is_reaped_and_others_are_told() {
    let b = Server::builder()
        .ping_interval(ms(200))
        .ping_timeout(ms(300))
        .auth(|hs| async move { Ok(hs.query_param("user").map_or_else(Identity::anonymous, Identity::user)) });
    let (server, addr) = start(b).await;
    server.of("/").enable_presence_in("lobby");
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    server.on_disconnect(move |_s, reason| {
        r.lock().push(reason);
        async {}
    });
    let proxy = Proxy::start(addr).await;
    let mut bob = Tc::connect(addr, "?user=bob").await;
    bob.join("lobby").await;
    let mut ghost = Tc::connect(proxy.addr, "?user=ghost").await;
    ghost.join("lobby").await;
    assert_eq!(bob.recv_type("user_joined").await["userId"], "ghost");
    let socketio = SocketIoClient::connect(
        &format!("http://{}", proxy.addr),
        SocketIoOptions {
            reconnect: roomcast::client::ReconnectPolicy { enabled: false, ..Default::default() },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually(|| server.of("/").len() == 3).await;

    // Both vanish: no FIN, no close frame, nothing more from them.
    proxy.pause();
    assert_eq!(bob.recv_type("user_left").await["userId"], "ghost");
    eventually(|| server.of("/").len() == 1).await;
    assert_eq!(*reasons.lock(), [DisconnectReason::PingTimeout, DisconnectReason::PingTimeout]);
    // The survivor's room traffic goes on.
    server.to("lobby").emit("still", 1).unwrap();
    assert_eq!(event(&mut bob, "still").await, 1);
    drop(socketio);
    server.shutdown().await;
}

/// A Socket.IO client whose connection is partitioned (not closed) loses
/// no event emitted meanwhile: the server reaps it by the heartbeat, the
/// client notices the silence by its own, reconnects and recovers.
#[tokio::test]
async fn a_partitioned_socketio_client_recovers_everything_it_missed() {
    let recovery = RecoveryConfig { max_disconnection_duration: Duration::from_secs(60), ..Default::default() };
    let b = Server::builder().ping_interval(ms(200)).ping_timeout(ms(300)).connection_state_recovery(recovery);
    let (server, addr) = start(b).await;
    server.on_connection(|s| async move {
        if !s.recovered() {
            s.join("r").unwrap();
        }
    });
    let proxy = Proxy::start(addr).await;
    let mut opts = SocketIoOptions { connect_timeout: WAIT, ..Default::default() };
    opts.reconnect.base = ms(50);
    opts.reconnect.max = ms(100);
    let client = SocketIoClient::new(&format!("http://{}", proxy.addr), opts).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    client.on("n", move |args: Args| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(args.json_at(0).as_u64().unwrap());
        }
    });
    within(client.open()).await.unwrap();
    let mut events = client.events();
    eventually(|| server.to("r").sockets().len() == 1).await;
    server.to("r").emit("n", 0).unwrap();
    assert_eq!(within(rx.recv()).await, Some(0));

    proxy.pause();
    eventually(|| server.to("r").sockets().is_empty()).await;
    for n in 1..=3 {
        server.to("r").emit("n", n).unwrap();
    }
    proxy.resume();
    within(async {
        loop {
            if let Ok(SocketIoEvent::Connect { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(within(rx.recv()).await.unwrap());
    }
    assert_eq!(got, [1, 2, 3], "each missed event, in order, once");
    assert!(client.recovered());
    client.close().await;
    server.shutdown().await;
}
