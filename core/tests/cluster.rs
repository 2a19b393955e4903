//! Several roomcast nodes on one real redis-server (started by the tests on
//! free ports): broadcasts, interest routing, presence, dead nodes, Redis
//! outages. Nodes run in this process, and as `roomcast serve --redis`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::redis::Redis;
use common::serve::Serve;
use common::{Tc, eventually, within};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use roomcast::{Identity, JwtVerifier, LostSocket, RedisConfig, Server};
use serde_json::{Value, json};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn redis_config(redis: &Redis) -> RedisConfig {
    let mut c = RedisConfig::new(redis.url());
    c.node_ttl = ms(1000);
    c.request_timeout = ms(1000);
    c
}

/// A node whose clients name their user with `?user=`; presence in `lobby`.
async fn node(redis: &Redis) -> (Server, SocketAddr) {
    node_with(redis_config(redis)).await
}

async fn node_with(config: RedisConfig) -> (Server, SocketAddr) {
    let b = Server::builder()
        .shutdown_timeout(ms(500))
        .auth(|hs| async move {
            Ok(match hs.query_param("user") {
                Some(u) => Identity::user(u),
                None => Identity::anonymous(),
            })
        })
        .redis(config);
    let (server, addr) = common::start(b).await;
    server.of("/").enable_presence_in("lobby");
    server.on("away", |s, _| async move {
        s.set_presence(json!({"status": "away", "note": "lunch"})).unwrap();
    });
    (server, addr)
}

async fn three_nodes(redis: &Redis) -> [(Server, SocketAddr); 3] {
    [node(redis).await, node(redis).await, node(redis).await]
}

async fn event(tc: &mut Tc, name: &str) -> Value {
    loop {
        let m = tc.recv_type("event").await;
        if m["event"] == name {
            return m["data"].clone();
        }
    }
}

/// Emit "after" to `room` from `server` every 300 ms until `tc` gets one
/// (cross-node delivery resuming after an outage or a slot move).
async fn emit_until_received(server: &Server, room: &str, tc: &mut Tc) {
    within(async {
        for n in 0.. {
            server.to(room).emit("after", n).unwrap();
            if tokio::time::timeout(ms(300), event(tc, "after")).await.is_ok() {
                break;
            }
        }
    })
    .await;
}

/// The names of the next `n` events, sorted.
async fn events(tc: &mut Tc, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        names.push(tc.recv_type("event").await["event"].as_str().unwrap().to_owned());
    }
    names.sort();
    names
}

#[tokio::test]
async fn a_broadcast_reaches_every_client_on_every_node_exactly_once() {
    let redis = Redis::start();
    let [(a, a_addr), (b, b_addr), (c, c_addr)] = three_nodes(&redis).await;
    let mut a1 = Tc::connect(a_addr, "").await;
    let mut b1 = Tc::connect(b_addr, "").await;
    let mut c1 = Tc::connect(c_addr, "").await;
    let mut c2 = Tc::connect(c_addr, "").await;
    a1.join("r").await;
    b1.join("r").await;
    b1.join("s").await;
    c1.join("s").await;

    // Two rooms, one member in both, members on three nodes: once each.
    assert_eq!(a.to("r").to("s").emit("news", 1).unwrap(), 1, "one local recipient on A");
    for tc in [&mut a1, &mut b1, &mut c1] {
        assert_eq!(event(tc, "news").await, 1);
    }
    // Namespace-wide from B, an exception across nodes, volatile: local
    // deliveries may overtake remote ones, so compare what each got.
    b.emit("all", 2).unwrap();
    c.broadcast().except("s").emit("not-s", 3).unwrap();
    a.to("r").volatile().emit("vol", 4).unwrap();
    assert_eq!(events(&mut a1, 3).await, ["all", "not-s", "vol"]);
    assert_eq!(events(&mut b1, 2).await, ["all", "vol"]);
    assert_eq!(events(&mut c1, 1).await, ["all"]);
    assert_eq!(events(&mut c2, 2).await, ["all", "not-s"]);
    // A socket's own room, on another node (socket.io's `io.to(socket.id)`).
    a.to(c2.id.clone()).emit("direct", 5).unwrap();
    assert_eq!(events(&mut c2, 1).await, ["direct"]);
    // A JSON client's room message crosses nodes; the sender is skipped.
    a1.send(json!({"type": "message", "room": "r", "payload": {"text": "hi"}})).await;
    let m = b1.recv_type("message").await;
    assert_eq!(
        (m["room"].as_str(), m["from"].as_str(), &m["payload"]["text"]),
        (Some("r"), Some(a1.id.as_str()), &json!("hi"))
    );
    // Nothing twice, nothing to those not targeted.
    for tc in [&mut a1, &mut b1, &mut c1, &mut c2] {
        tc.silent(300).await;
    }
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_node_receives_a_rooms_traffic_only_while_it_hosts_a_member() {
    let redis = Redis::start();
    let [(a, a_addr), (b, b_addr), (c, c_addr)] = three_nodes(&redis).await;
    let mut a1 = Tc::connect(a_addr, "").await;
    let mut b1 = Tc::connect(b_addr, "").await;
    let mut c1 = Tc::connect(c_addr, "").await;
    a1.join("r").await;
    b1.join("r").await;
    // Let the join notices (JSON clients get `user_joined`) go through first.
    a1.recv_type("user_joined").await;
    tokio::time::sleep(ms(200)).await;
    let (b0, c0) = (b.stats().cluster_messages_in, c.stats().cluster_messages_in);
    for i in 0..50 {
        a.to("r").emit("tick", i).unwrap();
    }
    for i in 0..50 {
        assert_eq!(event(&mut b1, "tick").await, i, "in order");
    }
    assert_eq!(b.stats().cluster_messages_in - b0, 50, "B hosts a member: every broadcast");
    assert_eq!(c.stats().cluster_messages_in, c0, "C hosts no member of r: no traffic for r");
    // C gains a member: it subscribes (before the join is answered) and receives.
    c1.join("r").await;
    tokio::time::sleep(ms(200)).await;
    let c_joined = c.stats().cluster_messages_in;
    a.to("r").emit("tick", 50).unwrap();
    assert_eq!(event(&mut c1, "tick").await, 50);
    assert_eq!(event(&mut b1, "tick").await, 50);
    assert_eq!(c.stats().cluster_messages_in, c_joined + 1);
    // ... and loses it: no more traffic for r.
    c1.send(json!({"type": "leave", "room": "r"})).await;
    c1.recv_type("left").await;
    tokio::time::sleep(ms(200)).await;
    let (b1_count, c1_count) = (b.stats().cluster_messages_in, c.stats().cluster_messages_in);
    a.to("r").emit("tick", 51).unwrap();
    assert_eq!(event(&mut b1, "tick").await, 51);
    tokio::time::sleep(ms(200)).await;
    assert_eq!(c.stats().cluster_messages_in, c1_count, "unsubscribed when the last member left");
    assert_eq!(b.stats().cluster_messages_in, b1_count + 1);
    assert!(a.stats().cluster_messages_out >= 52);
    // Each publish's latency went into the histogram.
    let metrics = a.metrics();
    let publishes = common::gauge(&metrics, "roomcast_redis_publish_seconds_count").unwrap();
    assert!(publishes >= 1, "{metrics}");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn presence_is_per_user_across_nodes() {
    let redis = Redis::start();
    let (a, a_addr) = node(&redis).await;
    let (b, b_addr) = node(&redis).await;
    let mut bob = Tc::connect(b_addr, "?user=bob").await;
    bob.join("lobby").await;
    let mut alice1 = Tc::connect(a_addr, "?user=alice").await;
    alice1.join("lobby").await;
    let joined = bob.recv_type("user_joined").await;
    assert_eq!((joined["room"].as_str(), joined["userId"].as_str()), (Some("lobby"), Some("alice")));
    assert_eq!(joined["member"]["connections"], 1);
    assert_eq!(joined["member"]["meta"]["status"], "online");
    // A second tab on the other node: the same member, no new join.
    let mut alice2 = Tc::connect(b_addr, "?user=alice").await;
    alice2.join("lobby").await;
    bob.silent(300).await;
    let mut members = b.of("/").presence("lobby").await.unwrap();
    members.sort_by(|x, y| x.user_id.cmp(&y.user_id));
    let summary: Vec<_> = members.iter().map(|m| (m.user_id.as_str(), m.connections)).collect();
    assert_eq!(summary, vec![("alice", 2), ("bob", 1)]);
    assert!(members[0].joined_at > 0 && members[0].last_seen >= members[0].joined_at);
    assert_eq!(a.of("/").presence_count("lobby").await.unwrap(), 2);
    assert!(a.is_online("bob").await.unwrap());
    let online = a.online_users(&["alice".into(), "carol".into()]).await.unwrap();
    assert_eq!(online, vec![("alice".to_owned(), true), ("carol".to_owned(), false)]);
    // Metadata changes reach the room on every node and are stored.
    bob.send(json!({"type": "event", "event": "away", "data": null})).await;
    let update = alice1.recv_type("presence").await;
    assert_eq!(bob.recv_type("presence").await, update, "the whole room hears it, bob too");
    assert_eq!(
        (update["member"]["userId"].as_str(), &update["member"]["meta"]["status"]),
        (Some("bob"), &json!("away"))
    );
    eventually_async(|| async {
        a.of("/").presence("lobby").await.unwrap().iter().any(|m| m.user_id == "bob" && m.meta["note"] == "lunch")
    })
    .await;
    // One tab closes: still a member. The last closes: a leave on every node.
    drop(alice1);
    bob.silent(400).await;
    assert_eq!(b.of("/").presence_count("lobby").await.unwrap(), 2);
    drop(alice2);
    let left = bob.recv_type("user_left").await;
    assert_eq!(left["userId"], "alice");
    assert!(!b.is_online("alice").await.unwrap());
    assert_eq!(a.of("/").presence_count("lobby").await.unwrap(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

async fn eventually_async<F: Future<Output = bool>>(mut cond: impl FnMut() -> F) {
    within(async {
        while !cond().await {
            tokio::time::sleep(ms(50)).await;
        }
    })
    .await
}

fn jwt(secret: &str, sub: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `roomcast serve --redis` in its own process (JWTs signed with `secret`).
fn serve_node(redis_url: &str, secret: &str, node_ttl_ms: u64) -> Serve {
    Serve::start(&["--redis", redis_url, "--node-ttl-ms", &node_ttl_ms.to_string(), "--jwt-secret", secret])
}

#[tokio::test]
async fn a_killed_node_leaves_presence_within_the_ttl_and_its_sockets_are_reported_once() {
    let redis = Redis::start();
    let secret = "cluster-secret";
    let dead = serve_node(&redis.url(), secret, 1000);
    let mut cfg = redis_config(&redis);
    cfg.node_ttl = ms(1000);
    let survivor =
        Server::builder().jwt(JwtVerifier::hs256(secret)).redis(cfg).shutdown_timeout(ms(500)).build().unwrap();
    survivor.of("/").enable_presence();
    let lost = Arc::new(Mutex::new(Vec::<LostSocket>::new()));
    let seen = lost.clone();
    survivor.on_node_lost(move |s| {
        let seen = seen.clone();
        async move { seen.lock().push(s) }
    });
    let s_addr = survivor.listen("127.0.0.1:0").await.unwrap();
    let mut bob = Tc::connect(s_addr, &format!("?token={}", jwt(secret, "bob"))).await;
    bob.join("lobby").await;
    let mut alice = Tc::connect(dead.addr, &format!("?token={}", jwt(secret, "alice"))).await;
    alice.join("lobby").await;
    assert_eq!(bob.recv_type("user_joined").await["userId"], "alice");
    // Cross-process room traffic.
    alice.send(json!({"type": "message", "room": "lobby", "payload": "from the other process"})).await;
    assert_eq!(bob.recv_type("message").await["payload"], "from the other process");
    assert!(survivor.is_online("alice").await.unwrap());

    dead.signal("-KILL");
    let started = std::time::Instant::now();
    let left = bob.recv_type("user_left").await;
    assert_eq!(left["userId"], "alice");
    assert!(started.elapsed() < ms(1000) * 4, "within the TTL and a heartbeat or two: {:?}", started.elapsed());
    eventually(|| !lost.lock().is_empty()).await;
    let reported = lost.lock().clone();
    assert_eq!(reported.len(), 1, "one socket on the dead node, reported once: {reported:?}");
    assert_eq!((reported[0].user_id.as_deref(), reported[0].namespace.as_str()), (Some("alice"), "/"));
    assert!(!survivor.is_online("alice").await.unwrap());
    let members = survivor.of("/").presence("lobby").await.unwrap();
    assert_eq!(members.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(), vec!["bob"]);
    survivor.shutdown().await;
}

#[tokio::test]
async fn local_traffic_survives_a_redis_outage_and_the_cluster_recovers() {
    let mut redis = Redis::start();
    let (a, a_addr) = node(&redis).await;
    let (b, b_addr) = node(&redis).await;
    let mut alice = Tc::connect(a_addr, "?user=alice").await;
    let mut bob = Tc::connect(b_addr, "?user=bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    alice.recv_type("user_joined").await;
    a.to("lobby").emit("before", 1).unwrap();
    assert_eq!(event(&mut bob, "before").await, 1);

    redis.kill();
    // Local delivery and local joins go on without Redis.
    let mut alice2 = Tc::connect(a_addr, "?user=carol").await;
    within(alice2.join("lobby")).await;
    a.to("lobby").emit("during", 2).unwrap();
    assert_eq!(event(&mut alice, "during").await, 2);
    assert_eq!(event(&mut alice2, "during").await, 2);

    redis.restart();
    // Cross-node delivery resumes once fred has reconnected and resubscribed.
    emit_until_received(&a, "lobby", &mut bob).await;
    // Presence is written again from each node's own state (Redis came back empty).
    eventually_async(|| async {
        let mut users: Vec<String> =
            b.of("/").presence("lobby").await.unwrap_or_default().into_iter().map(|m| m.user_id).collect();
        users.sort();
        users == ["alice", "bob", "carol"]
    })
    .await;
    assert!(b.is_online("carol").await.unwrap());
    assert!(a.stats().cluster_errors > 0, "the outage is counted");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_redis_cluster_carries_sharded_broadcasts_and_presence() {
    let redis = common::redis::RedisCluster::start();
    let mut cfg = RedisConfig::new(redis.url());
    cfg.node_ttl = ms(1000);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let b = Server::builder()
            .shutdown_timeout(ms(500))
            .auth(|hs| async move { Ok(hs.query_param("user").map_or_else(Identity::anonymous, Identity::user)) })
            .redis(cfg.clone());
        let (server, addr) = common::start(b).await;
        server.of("/").enable_presence();
        nodes.push((server, addr));
    }
    let (a, a_addr) = &nodes[0];
    let (b, b_addr) = &nodes[1];
    // Rooms whose channels hash to different slots, on different masters.
    let rooms = ["alpha", "bravo", "charlie", "delta"];
    let mut on_a = Tc::connect(*a_addr, "?user=ann").await;
    let mut on_b = Tc::connect(*b_addr, "?user=ben").await;
    for room in rooms {
        for tc in [&mut on_a, &mut on_b] {
            // Presence notices may come before the answer.
            tc.send(json!({"type": "join", "room": room})).await;
            assert_eq!(tc.recv_type("joined").await["room"], room);
        }
    }
    for (i, room) in rooms.iter().enumerate() {
        a.to(*room).emit("shard", i).unwrap();
    }
    let mut got = Vec::new();
    for _ in rooms {
        got.push(event(&mut on_b, "shard").await.as_u64().unwrap());
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3], "every room's broadcast crossed, once");
    b.emit("everyone", true).unwrap();
    assert_eq!(event(&mut on_a, "everyone").await, true);
    assert_eq!(event(&mut on_b, "everyone").await, true);
    let mut users: Vec<String> = b.of("/").presence("charlie").await.unwrap().into_iter().map(|m| m.user_id).collect();
    users.sort();
    assert_eq!(users, ["ann", "ben"]);
    assert!(a.is_online("ben").await.unwrap());
    assert_eq!(a.stats().cluster_errors, 0);
    for (s, _) in nodes {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_room_keeps_crossing_nodes_after_its_slot_moves_to_another_master() {
    let redis = common::redis::RedisCluster::start();
    let mut cfg = RedisConfig::new(redis.url());
    cfg.prefix = "slots".into();
    cfg.node_ttl = ms(500);
    let (a, a_addr) = node_with(cfg.clone()).await;
    let (b, b_addr) = node_with(cfg).await;
    let mut on_a = Tc::connect(a_addr, "?user=ann").await;
    let mut on_b = Tc::connect(b_addr, "?user=ben").await;
    on_a.join("alpha").await;
    on_b.join("alpha").await;
    a.to("alpha").emit("before", 1).unwrap();
    assert_eq!(event(&mut on_b, "before").await, 1);

    // The channel of room alpha on namespace "/" (see cluster::Node::channel_room).
    redis.move_slot_of("slots#/#alpha#");
    emit_until_received(&a, "alpha", &mut on_b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn cluster_queries_span_nodes_and_a_frozen_node_gives_a_partial_answer_in_time() {
    let redis = Redis::start();
    // Nobody dies here: a long TTL keeps a busy machine from burying a node.
    let mut config = redis_config(&redis);
    config.node_ttl = Duration::from_secs(30);
    let (a, a_addr) = node_with(config.clone()).await;
    let (b, b_addr) = node_with(config).await;
    b.on_server_event("ping-node", |args| async move { args });
    let mut a1 = Tc::connect(a_addr, "?user=ann").await;
    let mut b1 = Tc::connect(b_addr, "?user=ben").await;
    a1.join("r").await;
    b1.join("r").await;
    a1.recv_type("user_joined").await;

    // fetch_sockets: both nodes, with handshake, rooms and node.
    let found = a.to("r").fetch_sockets().await.unwrap();
    assert!(found.is_complete());
    let mut users: Vec<_> = found.value.iter().map(|s| (s.user_id.clone().unwrap(), s.node.clone().unwrap())).collect();
    users.sort();
    assert_eq!(
        users,
        [("ann".to_owned(), a.node_id().unwrap().to_owned()), ("ben".to_owned(), b.node_id().unwrap().to_owned())]
    );
    let ben = found.value.iter().find(|s| s.user_id.as_deref() == Some("ben")).unwrap();
    assert_eq!((ben.id.as_str(), ben.rooms.contains(&"r".to_owned())), (b1.id.as_str(), true));
    assert_eq!(ben.handshake.query, [("user".to_owned(), "ben".to_owned())]);
    // Remote join and leave, room list and counts.
    assert_eq!(a.to("r").sockets_join("extra").await.unwrap().value, 2);
    let rooms = a.of("/").rooms_everywhere().await.unwrap();
    assert!(rooms.value.contains(&"extra".to_owned()) && rooms.value.contains(&"user:ben".to_owned()), "{rooms:?}");
    assert_eq!(b.of("/").len_everywhere().await.unwrap().value, 2);
    assert_eq!(a.to("extra").sockets_leave("extra").await.unwrap().value, 2);
    assert!(!b.of("/").named_rooms().contains(&"extra".to_owned()));
    // Broadcast with acks collected across nodes.
    let acks = tokio::spawn({
        let a = a.clone();
        async move { a.to("r").emit_with_ack_everywhere("q", json!("?"), ms(2000)).await.unwrap() }
    });
    for tc in [&mut a1, &mut b1] {
        let q = tc.recv_type("event").await;
        assert_eq!(q["event"], "q");
        tc.send(json!({"type": "ack", "id": q["id"], "data": format!("from {}", tc.id)})).await;
    }
    let acks = within(acks).await.unwrap();
    assert!(acks.is_complete());
    let mut replies: Vec<_> = acks.value.iter().map(|r| (r.sid.clone(), r.reply.clone().unwrap())).collect();
    replies.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![
        (a1.id.clone(), vec![json!(format!("from {}", a1.id))]),
        (b1.id.clone(), vec![json!(format!("from {}", b1.id))]),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(replies, expected);
    // Server-to-server events with acks.
    let answers = a.server_emit("ping-node", json!({"n": 1})).await.unwrap();
    assert_eq!(answers.value.len(), 1);
    assert_eq!((answers.value[0].0.as_str(), answers.value[0].1.json()), (b.node_id().unwrap(), json!({"n": 1})));
    // Remote disconnect.
    assert_eq!(a.to("user:ben").disconnect_sockets(false).await.unwrap().value, 1);
    assert!(b1.closed().await.is_some());

    // A third node in its own process, frozen with SIGSTOP: answers come
    // back partial, within the request timeout, naming it.
    // Started off the runtime's thread: blocking it longer than the TTL
    // would stop A's and B's heartbeats, and the new node would bury them.
    let url = redis.url();
    let frozen = tokio::task::spawn_blocking(move || serve_node(&url, "s", 30_000)).await.unwrap();
    let nodes_before = a.nodes().await.unwrap();
    assert_eq!(nodes_before.len(), 3, "{nodes_before:?}");
    let frozen_id: Vec<String> = nodes_before
        .into_iter()
        .filter(|n| Some(n.as_str()) != a.node_id() && Some(n.as_str()) != b.node_id())
        .collect();
    frozen.signal("-STOP");
    let started = std::time::Instant::now();
    let partial = a.of("/").broadcast().fetch_sockets().await.unwrap();
    assert_eq!(partial.missing, frozen_id, "the frozen node is named: {:?} in {:?}", partial.value, started.elapsed());
    assert_eq!(partial.value.len(), 1, "ann, on A; ben is gone");
    assert!(started.elapsed() < ms(1000) * 4, "bounded by the request timeout: {:?}", started.elapsed());
    assert!(a.stats().cluster_request_timeouts >= 1);
    frozen.signal("-CONT");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_dynamic_namespace_broadcast_reaches_its_children_on_every_node() {
    let redis = Redis::start();
    let (a, _) = node(&redis).await;
    let (b, b_addr) = node(&redis).await;
    let teams_a = a.dynamic_namespace("/team-*");
    b.dynamic_namespace("/team-*");
    // The child /team-7 exists only on B, where its client is.
    let mut t7 = Tc::connect(b_addr, "?namespace=/team-7").await;
    let mut t8 = Tc::connect(b_addr, "?namespace=/team-8").await;
    t8.join("ops").await;
    teams_a.emit("all-teams", 1).unwrap();
    teams_a.to("ops").emit("ops-only", 2).unwrap();
    assert_eq!(events(&mut t7, 1).await, ["all-teams"]);
    assert_eq!(events(&mut t8, 2).await, ["all-teams", "ops-only"]);
    t7.silent(300).await;
    a.shutdown().await;
    b.shutdown().await;
}
