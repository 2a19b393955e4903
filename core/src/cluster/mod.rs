//! Horizontal scaling over Redis (fred): N nodes behind a load balancer
//! share rooms, broadcasts and presence.
//!
//! Without Redis there is no [`Node`] and the hub delivers locally: the
//! memory adapter is the absence of this module, and local delivery is the
//! same code in both cases. With Redis, each broadcast is also published
//! once per target room (or once on the namespace channel), and a node
//! subscribes to a room's channel only while it hosts a member of that room
//! (interest-based routing). Presence lives in Redis (see [`presence`]).

mod bus;
mod presence;
mod requests;
mod streams;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::interfaces::ClusterInterface;
use fred::prelude::{
    Builder, ClientLike, Config, EventInterface, PubsubInterface, ReconnectPolicy, Value as RedisValue,
};
use fred::types::cluster::ClusterRouting;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::presence::Applied;
pub use self::presence::LostSocket;
pub(crate) use self::presence::{Dirty, LostHook};
pub use self::requests::{AckReply, Partial, RemoteHandshake, RemoteSocket};
pub(crate) use self::requests::{Query, Selector, ServerEventHandler, from_wire, to_wire as requests_wire, total};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::Hub;
use crate::hub::packet::Packet;
use crate::hub::socket::Sid;
use crate::metrics::Counters;

/// How a server joins a cluster.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (TLS), `redis-cluster://host:port?node=host:port`
    /// (sharded pub/sub), or `redis-sentinel://host:port?sentinelServiceName=name`.
    pub url: String,
    /// Prefix of every key and channel, so several applications can share a Redis.
    pub prefix: String,
    /// A node whose heartbeat is older than this is dead: the others remove
    /// its members (and tell their rooms) within about this time.
    pub node_ttl: Duration,
    /// How long `listen` waits for Redis before serving local traffic anyway.
    pub connect_timeout: Duration,
    /// How long a cluster query waits for the other nodes' answers; a node
    /// that does not answer in time is listed as missing.
    pub request_timeout: Duration,
}

impl RedisConfig {
    /// Defaults for `url`: prefix `roomcast`, node TTL 10 s, connect and
    /// request timeouts 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "roomcast".into(),
            node_ttl: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Messages waiting for the publisher; beyond this, publishes are dropped
/// and counted (Redis is down or far behind).
const PUBLISH_QUEUE: usize = 65_536;
/// Publishes sent in one pipeline at most.
const PUBLISH_BATCH: usize = 512;

/// What the publisher sends.
enum Outgoing {
    /// A message on a channel.
    Publish(String, Bytes),
    /// A recoverable broadcast: into the stream and out on its channels.
    Recorded(streams::Recorded),
}

enum SubOp {
    Subscribe(String),
    Unsubscribe(String),
}

/// This server's membership of a cluster.
pub(crate) struct Node {
    id: String,
    config: RedisConfig,
    sharded: bool,
    client: fred::prelude::Client,
    subscriber: SubscriberClient,
    hub: OnceLock<Weak<Hub>>,
    counters: OnceLock<Arc<Counters>>,
    started: AtomicBool,
    ready: watch::Sender<bool>,
    /// The first heartbeat went through.
    registered: watch::Sender<bool>,
    publish_tx: mpsc::Sender<Outgoing>,
    publish_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// Connection state recovery: streams and sessions in Redis.
    recovery: Option<crate::recovery::RecoveryConfig>,
    subs_tx: mpsc::UnboundedSender<SubOp>,
    subs_rx: Mutex<Option<mpsc::UnboundedReceiver<SubOp>>>,
    /// Subscription changes asked for, and those Redis has answered: a
    /// client told it joined a room can count on the room's broadcasts.
    subs_requested: AtomicU64,
    subs_done: watch::Sender<u64>,
    dirty: Mutex<HashSet<Dirty>>,
    dirty_wake: Notify,
    applied: Mutex<Applied>,
    /// No presence change is waiting to reach Redis.
    presence_idle: watch::Sender<bool>,
    lost: Mutex<Vec<LostHook>>,
    next_request: AtomicU64,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<(String, serde_json::Value)>>>,
    server_events: RwLock<HashMap<String, ServerEventHandler>>,
    shutdown: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Node {
    /// Prepare a node (no connection yet; [`Node::start`] makes it).
    pub fn new(config: RedisConfig, recovery: Option<crate::recovery::RecoveryConfig>) -> Result<Arc<Self>> {
        let redis = Config::from_url(&config.url)
            .map_err(|e| Error::new(ErrorKind::Config, format!("bad Redis URL {:?}: {e}", config.url)))?;
        let sharded = redis.server.is_clustered();
        let mut builder = Builder::from_config(redis);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_secs(2);
                p.broadcast_channel_capacity = 1 << 16;
            });
        let client = builder.build().map_err(redis_error)?;
        let subscriber = builder.build_subscriber_client().map_err(redis_error)?;
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (subs_tx, subs_rx) = mpsc::unbounded_channel();
        let id = {
            let bytes: [u8; 8] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        Ok(Arc::new(Self {
            id,
            config,
            sharded,
            client,
            subscriber,
            hub: OnceLock::new(),
            counters: OnceLock::new(),
            started: AtomicBool::new(false),
            ready: watch::channel(false).0,
            registered: watch::channel(false).0,
            publish_tx,
            publish_rx: Mutex::new(Some(publish_rx)),
            recovery,
            subs_tx,
            subs_rx: Mutex::new(Some(subs_rx)),
            subs_requested: AtomicU64::new(0),
            subs_done: watch::channel(0).0,
            dirty: Mutex::default(),
            dirty_wake: Notify::new(),
            applied: Mutex::default(),
            presence_idle: watch::channel(true).0,
            lost: Mutex::default(),
            next_request: AtomicU64::new(1),
            pending: Mutex::default(),
            server_events: RwLock::default(),
            shutdown: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        }))
    }

    /// This node's id (random per server).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn attach(&self, hub: Weak<Hub>, counters: Arc<Counters>) {
        let _ = self.hub.set(hub);
        let _ = self.counters.set(counters);
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.hub.get()?.upgrade()
    }

    fn count(&self, pick: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        if let Some(c) = self.counters.get() {
            Counters::add(pick(c), n);
        }
    }

    /// Connect and start the node's tasks (once; needs a runtime).
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let node = self.clone();
        self.tasks.spawn(async move {
            node.client.connect();
            node.subscriber.connect();
            // Polled rather than fred's `wait_for_connect`, which can miss a
            // connection completing between its state check and its subscribe.
            let wait = async {
                while !(node.client.is_connected() && node.subscriber.is_connected()) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::select! {
                () = wait => {}
                () = node.shutdown.cancelled() => return,
            }
            node.spawn_tasks();
        });
    }

    fn spawn_tasks(self: &Arc<Self>) {
        if let Some(rx) = self.publish_rx.lock().take() {
            self.tasks.spawn(self.clone().publisher(rx));
        }
        // Cluster queries: every node hears requests, and answers on the asker's channel.
        self.subscribe(self.request_channel());
        self.subscribe(self.answer_channel(&self.id));
        if let Some(rx) = self.subs_rx.lock().take() {
            self.tasks.spawn(self.clone().subscriptions(rx));
        }
        self.tasks.spawn(self.clone().inbound());
        self.tasks.spawn(self.clone().connection_errors());
        self.tasks.spawn(self.clone().presence_loop());
        self.tasks.spawn(self.clone().liveness_loop());
    }

    /// Wait until Redis answered, this node is registered (other nodes'
    /// queries expect it) and its subscriptions are in place, at most the
    /// configured connect timeout.
    pub async fn ready(&self) {
        let (mut ready, mut registered) = (self.ready.subscribe(), self.registered.subscribe());
        let wait = async {
            let _ = ready.wait_for(|r| *r).await;
            let _ = registered.wait_for(|r| *r).await;
            self.settled().await;
        };
        if tokio::time::timeout(self.config.connect_timeout, wait).await.is_err() {
            tracing::warn!(url = %self.config.url, "Redis not reachable yet; serving local traffic, will keep trying");
        }
    }

    /// With recovery on, a namespace's channels share its stream's hash slot.
    fn channel_ns(&self, ns: &str) -> String {
        match self.recovery {
            Some(_) => format!("{}#", self.slot_tag(ns)),
            None => format!("{}#{ns}#", self.config.prefix),
        }
    }

    fn channel_room(&self, ns: &str, room: &str) -> String {
        match self.recovery {
            Some(_) => format!("{}#{room}#", self.slot_tag(ns)),
            None => format!("{}#{ns}#{room}#", self.config.prefix),
        }
    }

    /// Tell the other nodes about a broadcast this node delivered locally.
    pub fn publish(&self, ns: &str, rooms: &[String], except: &[String], volatile: bool, packet: &Packet) {
        for (channel, message) in self.copies(ns, rooms, except, volatile, packet) {
            self.queue(channel, Some(message));
        }
    }

    /// A broadcast's messages: one on the namespace channel, or one per
    /// target room on that room's channel.
    fn copies(
        &self,
        ns: &str,
        rooms: &[String],
        except: &[String],
        volatile: bool,
        packet: &Packet,
    ) -> Vec<(String, Bytes)> {
        let target = |index| bus::Target {
            origin: self.id.clone(),
            ns: ns.to_owned(),
            rooms: rooms.to_vec(),
            index,
            except: except.to_vec(),
            volatile,
            dynamic: false,
        };
        if rooms.is_empty() {
            return bus::encode(target(0), packet).map(|m| (self.channel_ns(ns), m)).into_iter().collect();
        }
        let mut out = Vec::with_capacity(rooms.len());
        for (i, room) in rooms.iter().enumerate() {
            // A socket's own room has no channel of its own (one
            // subscription per connection would cost every node): it
            // travels on the namespace channel.
            let channel = if Sid::is_shaped(room) { self.channel_ns(ns) } else { self.channel_room(ns, room) };
            out.extend(bus::encode(target(i), packet).map(|m| (channel, m)));
        }
        out
    }

    /// Publish a broadcast of the dynamic namespace `label` (one copy, on
    /// its namespace channel).
    pub fn publish_dynamic(&self, label: &str, rooms: &[String], except: &[String], volatile: bool, packet: &Packet) {
        let target = bus::Target {
            origin: self.id.clone(),
            ns: label.to_owned(),
            rooms: rooms.to_vec(),
            index: 0,
            except: except.to_vec(),
            volatile,
            dynamic: true,
        };
        self.queue(self.channel_ns(label), bus::encode(target, packet));
    }

    fn queue(&self, channel: String, message: Option<Bytes>) {
        let Some(message) = message else { return };
        if self.publish_tx.try_send(Outgoing::Publish(channel, message)).is_err() {
            self.count(|c| &c.cluster_errors, 1);
            tracing::warn!("cluster publish queue full; broadcast not sent to other nodes");
        }
    }

    /// Send what is queued, many at once in one pipeline under load.
    async fn publisher(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, PUBLISH_BATCH) => if n == 0 { return },
                () = self.shutdown.cancelled() => return,
            }
            // In order: plain publishes in pipelines, each run of one
            // namespace's recoverable broadcasts in one script call.
            let mut rest = &batch[..];
            while !rest.is_empty() {
                let n = match &rest[0] {
                    Outgoing::Publish(..) => rest.iter().take_while(|o| matches!(o, Outgoing::Publish(..))).count(),
                    Outgoing::Recorded(r) => {
                        rest.iter().take_while(|o| matches!(o, Outgoing::Recorded(x) if x.ns == r.ns)).count()
                    }
                };
                let (run, tail) = rest.split_at(n);
                rest = tail;
                let started = std::time::Instant::now();
                let result = match &run[0] {
                    Outgoing::Publish(..) => self.publish_run(run).await,
                    Outgoing::Recorded(_) => {
                        let recorded: Vec<_> = run
                            .iter()
                            .filter_map(|o| if let Outgoing::Recorded(r) = o { Some(r) } else { None })
                            .collect();
                        match &self.recovery {
                            Some(config) => self.record_run(&recorded, config).await,
                            None => Ok(()),
                        }
                    }
                };
                if let Some(c) = self.counters.get() {
                    c.publish_seconds.observe(started.elapsed().as_secs_f64());
                }
                match result {
                    Ok(()) => self.count(|c| &c.cluster_messages_out, n as u64),
                    Err(e) => {
                        self.count(|c| &c.cluster_errors, n as u64);
                        tracing::warn!(error = %e, messages = n, "cluster publish failed");
                        // Recoverable broadcasts were to reach this node's
                        // members over Redis: they get them now, at most once.
                        for out in run {
                            if let Outgoing::Recorded(r) = out {
                                self.deliver_fallback(r);
                            }
                        }
                    }
                }
            }
            batch.clear();
        }
    }

    /// Plain publishes, pipelined when there are several.
    async fn publish_run(&self, run: &[Outgoing]) -> Result<()> {
        let messages = run.iter().filter_map(|o| if let Outgoing::Publish(c, m) = o { Some((c, m)) } else { None });
        if run.len() == 1 {
            let Some((ch, msg)) = messages.last() else { return Ok(()) };
            return self.publish_one(&self.client, ch.clone(), msg.clone()).await;
        }
        let pipeline = self.client.pipeline();
        for (ch, msg) in messages {
            let _ = self.publish_one(&pipeline, ch.clone(), msg.clone()).await;
        }
        pipeline.all::<RedisValue>().await.map(|_| ()).map_err(redis_error)
    }

    async fn publish_one<C: PubsubInterface>(&self, c: &C, channel: String, msg: Bytes) -> Result<()> {
        let sent = if self.sharded {
            c.spublish::<RedisValue, _, _>(channel, msg).await
        } else {
            c.publish::<RedisValue, _, _>(channel, msg).await
        };
        sent.map(|_| ()).map_err(redis_error)
    }

    /// The namespace `ns` exists on this node: its namespace-wide broadcasts
    /// concern it.
    pub fn namespace_opened(&self, ns: &str) {
        self.subscribe(self.channel_ns(ns));
    }

    /// The first local member entered `room`.
    pub fn room_opened(&self, ns: &str, room: &str) {
        self.subscribe(self.channel_room(ns, room));
    }

    /// The last local member left `room`.
    pub fn room_closed(&self, ns: &str, room: &str) {
        self.subs_requested.fetch_add(1, Ordering::SeqCst);
        let _ = self.subs_tx.send(SubOp::Unsubscribe(self.channel_room(ns, room)));
    }

    fn subscribe(&self, channel: String) {
        self.subs_requested.fetch_add(1, Ordering::SeqCst);
        let _ = self.subs_tx.send(SubOp::Subscribe(channel));
    }

    /// Whether subscription changes are still on their way to a reachable
    /// Redis. While Redis is unreachable nothing is worth waiting for (the
    /// node subscribes again once it is back), so local answers go out at once.
    pub fn subscriptions_pending(&self) -> bool {
        self.subs_requested.load(Ordering::SeqCst) > *self.subs_done.borrow() && self.subscriber.is_connected()
    }

    /// Wait (at most 2 s) until the subscription changes asked for so far
    /// are done, or until Redis is found unreachable (an outage that began
    /// while waiting must not hold up local answers).
    pub async fn settled(&self) {
        let target = self.subs_requested.load(Ordering::SeqCst);
        let mut rx = self.subs_done.subscribe();
        let unreachable = async {
            while self.subscriber.is_connected() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let done = async {
            tokio::select! {
                _ = rx.wait_for(|done| *done >= target) => {}
                () = unreachable => {}
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
    }

    /// Apply subscription changes in order; after a reconnect, subscribe
    /// again to everything wanted.
    async fn subscriptions(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<SubOp>) {
        let mut wanted: HashSet<String> = HashSet::new();
        let mut reconnects = self.subscriber.reconnect_rx();
        let mut slots = SlotOwners::default();
        let mut check_slots = tokio::time::interval(self.config.node_ttl);
        let _ = self.ready.send(true);
        loop {
            tokio::select! {
                _ = check_slots.tick(), if self.sharded => {
                    slots.follow(&self, &wanted).await;
                }
                op = rx.recv() => {
                    let Some(op) = op else { return };
                    let result = match op {
                        SubOp::Subscribe(ch) => {
                            let r = self.sub(&ch, true).await;
                            if r.is_ok() && self.sharded {
                                slots.subscribed(&self, &ch);
                            }
                            wanted.insert(ch);
                            r
                        }
                        SubOp::Unsubscribe(ch) => {
                            wanted.remove(&ch);
                            slots.0.remove(&ch);
                            self.sub(&ch, false).await
                        }
                    };
                    if let Err(e) = result {
                        self.count(|c| &c.cluster_errors, 1);
                        tracing::warn!(error = %e, "cluster subscription change failed; retried on reconnect");
                    }
                    self.subs_done.send_modify(|d| *d += 1);
                }
                r = reconnects.recv() => {
                    if r.is_err() && matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    tracing::info!(channels = wanted.len(), "Redis reconnected; subscribing again");
                    // Cluster queries first: other nodes ask as soon as they are back.
                    let control = [self.request_channel(), self.answer_channel(&self.id)];
                    let order = control.iter().filter(|c| wanted.contains(*c)).chain(wanted.iter().filter(|c| !control.contains(c)));
                    for ch in order {
                        match self.sub(ch, true).await {
                            Ok(()) if self.sharded => slots.subscribed(&self, ch),
                            Ok(()) => {}
                            Err(e) => tracing::warn!(error = %e, "resubscribe failed"),
                        }
                    }
                    self.mark_all_dirty();
                }
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// The master that owns `channel`'s slot, as the subscriber last synced it.
    fn slot_owner(&self, channel: &str) -> Option<String> {
        let state = self.subscriber.cached_cluster_state()?;
        state.get_server(ClusterRouting::hash_key(channel.as_bytes())).map(|s| s.to_string())
    }

    /// Log and count every lost or failed Redis connection, so that an
    /// outage shows in the logs and in `cluster_errors` even when fred's
    /// reconnection bridges it without a failed command.
    async fn connection_errors(self: Arc<Self>) {
        let (mut client, mut subscriber) = (self.client.error_rx(), self.subscriber.error_rx());
        loop {
            let error = tokio::select! {
                e = client.recv() => e,
                e = subscriber.recv() => e,
                () = self.shutdown.cancelled() => return,
            };
            match error {
                Ok((e, server)) => {
                    self.count(|c| &c.cluster_errors, 1);
                    let server = server.map(|s| s.to_string());
                    tracing::warn!(error = %e, ?server, "Redis connection lost; reconnecting");
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => self.count(|c| &c.cluster_errors, n),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn sub(&self, channel: &str, on: bool) -> Result<()> {
        let s = &self.subscriber;
        let r = match (self.sharded, on) {
            (true, true) => s.ssubscribe(channel).await,
            (true, false) => s.sunsubscribe(channel).await,
            (false, true) => s.subscribe(channel).await,
            (false, false) => s.unsubscribe(channel).await,
        };
        r.map_err(redis_error)
    }

    /// Deliver other nodes' broadcasts to the local members they target.
    async fn inbound(self: Arc<Self>) {
        let mut rx = self.subscriber.message_rx();
        let (requests, answers) = (self.request_channel(), self.answer_channel(&self.id));
        loop {
            let message = tokio::select! {
                m = rx.recv() => m,
                () = self.shutdown.cancelled() => return,
            };
            let message = match message {
                Ok(m) => m,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    self.count(|c| &c.cluster_errors, n);
                    tracing::warn!(missed = n, "cluster receiver fell behind; messages lost");
                    continue;
                }
                Err(_) => return,
            };
            self.count(|c| &c.cluster_messages_in, 1);
            let Some(raw) = message.value.as_bytes() else { continue };
            if *message.channel == *requests || *message.channel == *answers {
                self.on_control(&message.channel, raw);
                continue;
            }
            // A recoverable broadcast comes back to its sender too: every
            // node delivers it here, in the stream's order.
            let (offset, raw) = match streams::split_recorded(raw) {
                Some((o, body)) => (Some(o), body),
                None => (None, raw),
            };
            let bytes = Bytes::copy_from_slice(raw);
            let Some((target, packet)) = bus::decode(bytes) else {
                tracing::warn!(channel = %message.channel, "undecodable cluster message ignored");
                continue;
            };
            if target.origin == self.id && offset.is_none() {
                continue;
            }
            let Some(hub) = self.hub() else { return };
            let (rooms, except) = target.local();
            let namespaces = if target.dynamic {
                hub.dynamic_parent(&target.ns).map(|p| p.with_children()).unwrap_or_default()
            } else {
                hub.existing(&target.ns).into_iter().collect()
            };
            for ns in namespaces {
                match (offset, ns.recovery()) {
                    (Some(o), Some(buffer)) => buffer.ordered(o, || {
                        crate::hub::broadcast::deliver_recorded(&ns, &rooms, &except, packet.clone(), o)
                    }),
                    _ => crate::hub::broadcast::deliver_local(&ns, &rooms, &except, target.volatile, packet.clone()),
                };
            }
        }
    }

    /// Register a hook for every socket of a node found dead (run once, on
    /// the node that cleans up after it).
    pub fn on_lost(&self, hook: LostHook) {
        self.lost.lock().push(hook);
    }

    /// Leave the cluster: this node's members leave their rooms now rather
    /// than at the TTL, then the connections close.
    pub async fn stop(&self) {
        if self.started.load(Ordering::SeqCst) && *self.ready.borrow() {
            self.flush_presence().await;
            if let Err(e) = self.clean_up_node(&self.id.clone()).await {
                tracing::debug!(error = %e, "leaving the cluster cleanly failed");
            }
        }
        self.shutdown.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.subscriber.quit().await;
            let _ = self.client.quit().await;
        })
        .await;
    }
}

/// Redis Cluster: which master each wanted sharded channel was subscribed
/// on. A slot that moves to another master drops its subscriptions (Redis
/// sends an SUNSUBSCRIBE that fred does not act on), so the node checks
/// the slot map every node TTL and subscribes again where an owner changed
/// (and where an earlier subscription failed).
#[derive(Default)]
struct SlotOwners(HashMap<String, Option<String>>);

impl SlotOwners {
    /// `channel` was just subscribed, on the master its slot has now.
    fn subscribed(&mut self, node: &Node, channel: &str) {
        self.0.insert(channel.to_owned(), node.slot_owner(channel));
    }

    async fn follow(&mut self, node: &Node, wanted: &HashSet<String>) {
        if let Err(e) = node.subscriber.sync_cluster().await {
            tracing::debug!(error = %e, "Redis Cluster slot map not refreshed");
            return;
        }
        for ch in wanted {
            let owner = node.slot_owner(ch);
            let before = self.0.insert(ch.clone(), owner.clone());
            if before.is_none_or(|b| b != owner) {
                tracing::info!(channel = %ch, ?owner, "sharded channel moved (or not subscribed yet); subscribing again");
                if let Err(e) = node.sub(ch, true).await {
                    node.count(|c| &c.cluster_errors, 1);
                    tracing::warn!(error = %e, "resubscribe after a slot move failed");
                    self.0.remove(ch); // retried at the next check
                }
            }
        }
    }
}

fn redis_error(e: fred::error::Error) -> Error {
    Error::new(ErrorKind::Io, format!("redis: {e}"))
}
