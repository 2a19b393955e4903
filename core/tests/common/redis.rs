//! A real `redis-server` on a free loopback port, started by the test and
//! killed when dropped. A test that needs one fails if it cannot start.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut r = Redis { port, child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port, with nothing stored.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ping() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// SIGKILL the server and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 3-master Redis Cluster on free ports (`redis-server --cluster-enabled`
/// joined by `redis-cli --cluster create`), removed when dropped.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        // One directory per cluster: tests of one binary run concurrently.
        static CLUSTERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("roomcast-redis-cluster-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let port = cluster_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let mut cluster = RedisCluster { ports: ports.clone(), children: Vec::new(), dir: dir.clone() };
        for port in &ports {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (make test installs it)");
            cluster.children.push(child);
        }
        for port in &ports {
            let r = Redis { port: *port, child: None };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !r.ping() {
                assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        // `redis-cli --cluster create` waits for the nodes to join without a limit of its own.
        let mut create = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli");
        let deadline = Instant::now() + Duration::from_secs(30);
        let created = loop {
            if let Some(status) = create.try_wait().expect("redis-cli") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = create.kill();
                panic!("redis-cli --cluster create did not finish within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ports.iter().all(|p| cluster_ok(*p)) {
            assert!(Instant::now() < deadline, "the Redis Cluster did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// A `redis-cluster://` URL naming every master.
    pub fn url(&self) -> String {
        let rest: Vec<String> = self.ports[1..].iter().map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{}?{}", self.ports[0], rest.join("&"))
    }
}

/// A free port for a cluster node: Redis also listens on port + 10000 (its
/// cluster bus), so the port must be at most 55535 and that one free too.
fn cluster_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = l.local_addr().expect("addr").port();
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Move the slot of `key` to another master, as a resharding does
    /// (keys first, then the slot's owner on every master).
    pub fn move_slot_of(&self, key: &str) {
        let first = self.ports[0];
        let slot: u16 = cli(first, &["cluster", "keyslot", key]).trim().parse().expect("a slot");
        // `cluster nodes` lines: id, addr@bus, flags, master, ping, pong, epoch, state, slot ranges...
        let nodes: Vec<(String, u16, Vec<String>)> = cli(first, &["cluster", "nodes"])
            .lines()
            .filter(|l| l.contains("master"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let port = f[1].split(['@', ':']).nth(1).expect("port").parse().expect("port");
                (f[0].to_owned(), port, f[8..].iter().map(|r| (*r).to_owned()).collect())
            })
            .collect();
        let owns = |ranges: &[String]| {
            ranges.iter().any(|r| match r.split_once('-') {
                Some((a, b)) => (a.parse().unwrap_or(u16::MAX)..=b.parse().unwrap_or(0)).contains(&slot),
                None => r.parse() == Ok(slot),
            })
        };
        let src = nodes.iter().find(|n| owns(&n.2)).expect("the slot's owner");
        let dst = nodes.iter().find(|n| n.0 != src.0).expect("another master");
        let (slot, dst_port) = (slot.to_string(), dst.1.to_string());
        cli(dst.1, &["cluster", "setslot", &slot, "importing", &src.0]);
        cli(src.1, &["cluster", "setslot", &slot, "migrating", &dst.0]);
        loop {
            let keys = cli(src.1, &["cluster", "getkeysinslot", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["migrate", "127.0.0.1", &dst_port, "", "0", "5000", "keys"];
            args.extend(keys);
            cli(src.1, &args);
        }
        for n in &nodes {
            cli(n.1, &["cluster", "setslot", &slot, "node", &dst.0]);
        }
    }
}

/// `redis-cli -p port args...`'s output; it must succeed.
fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().expect("redis-cli");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // redis-cli exits 0 on an error reply; it prints the error instead.
    assert!(
        out.status.success() && !text.starts_with("ERR") && !text.starts_with("(error)"),
        "redis-cli {args:?}: {text}"
    );
    text
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        .unwrap_or(false)
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
