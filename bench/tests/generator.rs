//! The generator's B1 and B3 logic, in-process with tiny parameters, against
//! the roomcast benchmark app (both protocols) and the limit server: every
//! delivery arrives once and in order, every ack matches. B4 against two
//! in-process nodes of the app on a real `redis-server` started here (the
//! test fails if it cannot start: `make deps-redis` installs it).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use roomcast_bench::proto::Proto;
use roomcast_bench::scenario::b1::{self, B1Params};
use roomcast_bench::scenario::b3::{self, B3Params};
use roomcast_bench::scenario::b4::{self, B4Params, ClusterTarget};
use roomcast_bench::scenario::{Target, b2};

/// Serve on a runtime of its own, on its own thread (the generator below runs
/// on a current-thread runtime, like the real one).
fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

fn roomcast_server() -> SocketAddr {
    spawn_server(|listener| async move {
        let server = roomcast_bench::app::build().unwrap();
        server.serve(listener).unwrap();
        std::future::pending::<()>().await;
    })
}

/// A node of the app on the Redis at `url`, listening once Redis answered.
fn roomcast_node(url: String) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let server = roomcast_bench::app::build_with(Some(&url), false).unwrap();
            tx.send(server.listen("127.0.0.1:0").await.unwrap()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(15)).unwrap()
}

fn limit_server() -> SocketAddr {
    spawn_server(roomcast_bench::limit::serve)
}

fn generator() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn tiny_b1() -> B1Params {
    B1Params {
        subscribers: 20,
        window: 16,
        warmup: Duration::from_millis(150),
        measure: Duration::from_millis(500),
        latency_rate: 100.0,
        latency_duration: Duration::from_millis(300),
        stall_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(10),
    }
}

fn check_b1(addr: SocketAddr, proto: Proto) {
    let target = Target { addr, proto, pid: None };
    let r = generator().block_on(b1::run(target, &tiny_b1(), &|_| {})).unwrap();
    assert_eq!(r.failure, None, "{proto:?}: {r:?}");
    assert_eq!(r.errors, 0, "{proto:?}: {:?}", r.error_samples);
    assert!(r.tally.is_clean(), "{proto:?}: {}", r.tally);
    assert!(r.sent > 0);
    assert_eq!(r.tally.expected, r.sent * 20);
    assert_eq!(r.tally.received, r.tally.expected);
    let t = r.throughput.as_ref().unwrap();
    assert!(t.deliveries > 0 && t.deliveries_per_sec > 0.0);
    assert_eq!(t.server_us_per_delivery, None); // no server pid in-process
    let l = r.latency.as_ref().unwrap();
    assert!(l.p50_us > 0.0 && l.p99_us >= l.p50_us, "{l:?}");
}

fn check_b3(addr: SocketAddr, proto: Proto) {
    let target = Target { addr, proto, pid: None };
    let params = B3Params {
        clients: 10,
        warmup: Duration::from_millis(100),
        measure: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(10),
    };
    let r = generator().block_on(b3::run(target, &params, &|_| {})).unwrap();
    assert_eq!(r.errors, 0, "{proto:?}: {:?}", r.error_samples);
    assert!(r.round_trips > 10, "{proto:?}: {r:?}");
    assert!(r.p99_us >= r.p50_us && r.p50_us > 0.0);
}

#[test]
fn roomcast_socketio_fanout_and_acks() {
    let addr = roomcast_server();
    check_b1(addr, Proto::SocketIo);
    check_b3(addr, Proto::SocketIo);
}

#[test]
fn roomcast_json_fanout_and_acks() {
    let addr = roomcast_server();
    check_b1(addr, Proto::Json);
    check_b3(addr, Proto::Json);
}

#[test]
fn limit_fanout() {
    check_b1(limit_server(), Proto::Raw);
}

#[test]
fn idle_memory_needs_a_pid_and_measures_this_process() {
    let addr = roomcast_server();
    let params =
        b2::B2Params { clients: 50, settle: Duration::from_millis(50), connect_timeout: Duration::from_secs(10) };
    let rt = generator();
    let no_pid = Target { addr, proto: Proto::SocketIo, pid: None };
    assert!(rt.block_on(b2::run(no_pid, &params, &|_| {})).is_err());
    let own = Target { addr, proto: Proto::SocketIo, pid: Some(std::process::id()) };
    let r = rt.block_on(b2::run(own, &params, &|_| {})).unwrap();
    assert_eq!(r.clients, 50);
    assert!(r.rss_after_kib > 0);
}

#[test]
fn cluster_fanout_across_two_nodes() {
    let rt = generator();
    let log = std::env::temp_dir().join(format!("roomcast-bench-test-redis-{}.log", std::process::id()));
    let redis = rt.block_on(roomcast_bench::redis::RedisServer::start(None, log.clone())).unwrap();
    let (a, b) = (roomcast_node(redis.url()), roomcast_node(redis.url()));
    let params = B4Params {
        subscribers: 20,
        window: 16,
        warmup: Duration::from_millis(150),
        measure: Duration::from_millis(500),
        latency_rate: 100.0,
        latency_duration: Duration::from_millis(300),
        settle: Duration::from_millis(200),
        stall_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(10),
    };
    for proto in [Proto::SocketIo, Proto::Json] {
        let cluster = ClusterTarget {
            a: Target { addr: a, proto, pid: None },
            b: Target { addr: b, proto, pid: None },
            redis_pid: Some(redis.pid),
        };
        let r = rt.block_on(b4::run(cluster, &params, &|_| {})).unwrap();
        assert_eq!(r.failure, None, "{proto:?}: {r:?}");
        assert_eq!(r.errors, 0, "{proto:?}: {:?}", r.error_samples);
        assert!(r.tally.is_clean() && r.cross_tally.is_clean(), "{proto:?}: {} / {}", r.tally, r.cross_tally);
        assert!(r.sent > 0);
        assert_eq!((r.subscribers, r.on_node_b), (20, 10));
        assert_eq!(r.tally.received, r.sent * 20);
        assert_eq!(r.cross_tally.received, r.sent * 10);
        let t = r.throughput.as_ref().unwrap();
        assert!(t.cross_deliveries > 0 && t.deliveries_per_sec >= t.cross_deliveries_per_sec, "{t:?}");
        // Only Redis's pid is known here: its CPU is measured, the nodes' are not.
        assert!(t.processes.redis_s.is_some() && t.processes.node_a_s.is_none(), "{t:?}");
        let l = r.latency.as_ref().unwrap();
        assert!(l.p50_us > 0.0 && l.p99_us >= l.p50_us, "{l:?}");
    }
    assert!(redis.alive());
    rt.block_on(redis.stop());
    let _ = std::fs::remove_file(log);
}
