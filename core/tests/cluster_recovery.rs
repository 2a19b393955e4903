//! Connection state recovery across a cluster on a real redis-server: a
//! client comes back on another node, or after its node died, and gets
//! exactly what it missed, in the one order every node delivers.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::redis::Redis;
use common::serve::Serve;
use common::{Tc, eventually, within};
use roomcast::{RecoveryConfig, RedisConfig, Server};
use serde_json::{Value, json};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn node(redis: &Redis) -> (Server, SocketAddr) {
    let mut c = RedisConfig::new(redis.url());
    c.node_ttl = ms(1000);
    c.request_timeout = ms(1000);
    let b = Server::builder().shutdown_timeout(ms(500)).redis(c).connection_state_recovery(RecoveryConfig {
        max_disconnection_duration: ms(30_000),
        ..RecoveryConfig::default()
    });
    common::start(b).await
}

/// Connect with `query`; returns the client and its `connected` frame.
async fn connect(addr: SocketAddr, query: &str) -> (Tc, Value) {
    let ws = Tc::raw(addr, query, &[]).await.unwrap();
    let mut tc = Tc { ws, id: String::new() };
    let hello = tc.recv().await;
    assert_eq!(hello["type"], "connected", "{hello}");
    tc.id = hello["clientId"].as_str().unwrap().to_owned();
    (tc, hello)
}

async fn message(tc: &mut Tc) -> (u64, String) {
    let m = tc.recv_type("message").await;
    (m["payload"].as_u64().unwrap(), m["offset"].as_str().unwrap().to_owned())
}

/// A sender on `addr` in `room` whose messages are numbered.
async fn sender(addr: SocketAddr, room: &str) -> Tc {
    let (mut s, _) = connect(addr, "").await;
    s.join(room).await;
    s
}

async fn send(s: &mut Tc, room: &str, n: u64) {
    s.send(json!({"type": "message", "room": room, "payload": n})).await;
}

#[tokio::test]
async fn a_client_recovers_on_the_other_node_with_exactly_what_it_missed() {
    let redis = Redis::start();
    let (a, a_addr) = node(&redis).await;
    let (b, b_addr) = node(&redis).await;
    let (mut client, hello) = connect(a_addr, "").await;
    let token = hello["resume"].as_str().unwrap().to_owned();
    client.join("room").await;
    // Senders on both nodes: one order for all, whoever sends.
    let mut on_a = sender(a_addr, "room").await;
    let mut on_b = sender(b_addr, "room").await;
    let mut watcher = sender(b_addr, "room").await;
    send(&mut on_a, "room", 0).await;
    assert_eq!(message(&mut client).await.0, 0);
    send(&mut on_b, "room", 1).await;
    let (n, offset) = message(&mut client).await;
    assert_eq!(n, 1);
    drop(client);
    eventually(|| a.to("room").sockets().len() == 1).await;
    for n in 2..6 {
        send(if n % 2 == 0 { &mut on_a } else { &mut on_b }, "room", n).await;
    }
    b.to("room").emit("news", "hi").unwrap();
    // What a member who stayed saw, in its order: messages 0..5 and the news.
    let item = |m: &Value| match m["type"].as_str() {
        Some("message") => Some(m["payload"].to_string()),
        Some("event") => Some(m["data"].to_string()),
        _ => None,
    };
    let mut seen = Vec::new();
    while seen.len() < 7 {
        if let Some(i) = item(&watcher.recv().await) {
            seen.push(i);
        }
    }
    let missed: Vec<String> = seen.into_iter().filter(|i| i != "0" && i != "1").collect();

    let (mut back, hello) = connect(b_addr, &format!("?resume={token}&offset={offset}")).await;
    assert_eq!(hello["recovered"], true, "{hello}");
    assert_eq!(back.id, hello["clientId"].as_str().unwrap());
    let mut replayed = Vec::new();
    while replayed.len() < 5 {
        if let Some(i) = item(&back.recv().await) {
            replayed.push(i);
        }
    }
    assert_eq!(replayed, missed, "exactly the missed ones, in the order every node delivered");
    // Back in its room on node b: new traffic from node a arrives.
    send(&mut on_a, "room", 6).await;
    assert_eq!(message(&mut back).await.0, 6);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn senders_on_two_nodes_reach_receivers_on_both_in_one_order() {
    let redis = Redis::start();
    let (a, a_addr) = node(&redis).await;
    let (b, b_addr) = node(&redis).await;
    let mut ra = sender(a_addr, "r").await;
    let mut rb = sender(b_addr, "r").await;
    let (sa, sb) = (a.clone(), b.clone());
    let pa = tokio::spawn(async move {
        for i in 0..100u64 {
            sa.to("r").emit("n", i).unwrap();
        }
    });
    let pb = tokio::spawn(async move {
        for i in 0..100u64 {
            sb.to("r").emit("n", 1000 + i).unwrap();
        }
    });
    pa.await.unwrap();
    pb.await.unwrap();
    let mut got = [Vec::new(), Vec::new()];
    for (i, tc) in [&mut ra, &mut rb].into_iter().enumerate() {
        while got[i].len() < 200 {
            let e = tc.recv_type("event").await;
            got[i].push((e["data"].as_u64().unwrap(), e["offset"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(got[0], got[1], "both nodes deliver in the stream's order");
    for base in [0u64, 1000] {
        let from: Vec<u64> = got[0].iter().map(|(n, _)| *n).filter(|n| n / 1000 == base / 1000).collect();
        assert_eq!(from, (base..base + 100).collect::<Vec<_>>(), "each sender's order kept");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_client_whose_node_was_killed_recovers_on_a_survivor() {
    let redis = Redis::start();
    let dead = Serve::start(&["--redis", &redis.url(), "--node-ttl-ms", "1000", "--recovery-window-ms", "30000"]);
    let (survivor, s_addr) = node(&redis).await;
    let (mut client, hello) = connect(dead.addr, "").await;
    let token = hello["resume"].as_str().unwrap().to_owned();
    client.join("room").await;
    let mut on_s = sender(s_addr, "room").await;
    send(&mut on_s, "room", 0).await;
    let (_, offset) = message(&mut client).await;
    dead.signal("-KILL");
    for n in 1..4 {
        send(&mut on_s, "room", n).await;
    }
    // At once (before the dead node's TTL): its live record is taken up.
    let (mut back, hello) = connect(s_addr, &format!("?resume={token}&offset={offset}")).await;
    assert_eq!(hello["recovered"], true, "{hello}");
    assert_eq!(back.id, client.id);
    for n in 1..4 {
        assert_eq!(message(&mut back).await.0, n);
    }
    send(&mut on_s, "room", 4).await;
    assert_eq!(within(message(&mut back)).await.0, 4);
    survivor.shutdown().await;
}

#[tokio::test]
async fn while_redis_is_down_recoverable_broadcasts_still_reach_local_members() {
    let mut redis = Redis::start();
    let (a, a_addr) = node(&redis).await;
    let (mut member, _) = connect(a_addr, "").await;
    member.join("room").await;
    a.to("room").emit("n", 0).unwrap();
    let e = member.recv_type("event").await;
    assert!(e["offset"].is_string(), "through the stream while Redis is up: {e}");
    redis.kill();
    // Once the node has noticed, delivery is local and at once, without an offset.
    let mut n = 1;
    let e = within(async {
        loop {
            a.to("room").emit("n", n).unwrap();
            n += 1;
            if let Ok(e) = tokio::time::timeout(ms(300), member.recv_type("event")).await
                && e["offset"].is_null()
            {
                return e;
            }
        }
    })
    .await;
    assert!(e["data"].as_u64().unwrap() >= 1, "{e}");
    a.shutdown().await;
}
