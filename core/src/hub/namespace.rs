//! A namespace: its sockets, their rooms and the application's handlers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;

use super::args::Args;
use super::broadcast::BroadcastOperator;
use super::dedupe::Dedupe;
use super::handler::{
    self, AnyHandler, ConnectHook, ConnectionHandler, DisconnectHandler, EventHandler, IntoReply, JoinHook,
};
use super::packet::{Encoded, Packet, Protocol};
use super::rooms::RoomIndex;
use super::socket::{DisconnectReason, Sid, Socket};
use crate::auth::{AuthHook, Identity, Rejection};
use crate::cluster::{Dirty, Node, Partial, Query};
use crate::error::{Error, ErrorKind, Result};
use crate::presence::{self, Member, PresenceEvent, PresenceKind, Tracker};
use crate::recovery::{self, Buffer, Offset, RecoveryConfig, Resume, Session};
use crate::transport::Frame;

/// Connection counts per authenticated user, shared by all namespaces.
pub(crate) type Users = Mutex<HashMap<String, usize>>;

/// Prefix of the room every socket of an authenticated user is in.
pub const USER_ROOM_PREFIX: &str = "user:";

#[derive(Default)]
struct Handlers {
    events: HashMap<String, EventHandler>,
    any: Option<AnyHandler>,
    /// With whether each also runs for a recovered socket whose hooks are
    /// skipped (see [`Namespace::on_admit`]).
    connect: Vec<(ConnectHook, bool)>,
    connection: Vec<ConnectionHandler>,
    disconnect: Vec<DisconnectHandler>,
    auth: Option<AuthHook>,
    join: Option<JoinHook>,
}

/// One namespace (`/` by default). Obtained from `Server::of`.
pub struct Namespace {
    name: String,
    index: RwLock<RoomIndex<Sid, Socket>>,
    handlers: RwLock<Handlers>,
    users: Arc<Users>,
    /// Ack ids are unique per namespace, so a broadcast with acks uses one
    /// id for every recipient and is still encoded once.
    next_ack: AtomicU64,
    /// The dynamic namespace this one was created from: its handlers and
    /// hooks apply here too.
    parent: Option<Arc<Namespace>>,
    /// Namespaces created from this one (when it is dynamic).
    children: RwLock<Vec<Arc<Namespace>>>,
    /// A dynamic namespace's parent: it has no sockets, its children do.
    dynamic: bool,
    /// Connected JSON-protocol sockets: only they get `user_joined` /
    /// `user_left`, so without them joins skip the walk over the room.
    json_sockets: AtomicUsize,
    /// Sockets whose disconnect handlers are running: still found by id,
    /// with the named rooms they were in.
    closing: Mutex<HashMap<Sid, (Socket, Vec<String>)>>,
    /// The cluster this server belongs to, if any.
    pub(crate) cluster: Option<Arc<Node>>,
    presence: Tracker,
    /// Connection state recovery: this namespace's order, packets and
    /// waiting sessions (`None`: off).
    recovery: Option<Buffer>,
    /// What at-least-once clients' events ran to, for their repeats.
    dedupe: Dedupe,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        users: Arc<Users>,
        cluster: Option<Arc<Node>>,
        dynamic: bool,
        auth: Option<AuthHook>,
        join: Option<JoinHook>,
        recovery: Option<RecoveryConfig>,
    ) -> Self {
        let local = cluster.is_none();
        Self {
            recovery: recovery.map(|c| Buffer::new(c, local)),
            dedupe: Dedupe::default(),
            name,
            dynamic,
            index: RwLock::default(),
            handlers: RwLock::new(Handlers { auth, join, ..Handlers::default() }),
            users,
            next_ack: AtomicU64::new(1),
            parent: None,
            children: RwLock::default(),
            json_sockets: AtomicUsize::new(0),
            closing: Mutex::default(),
            cluster,
            presence: Tracker::default(),
        }
    }

    /// A namespace created on demand from the dynamic namespace `parent`.
    pub(crate) fn child(name: String, parent: &Arc<Namespace>) -> Arc<Self> {
        let child = Arc::new(Self {
            name,
            index: RwLock::default(),
            handlers: RwLock::default(),
            users: parent.users.clone(),
            next_ack: AtomicU64::new(1),
            parent: Some(parent.clone()),
            dynamic: false,
            children: RwLock::default(),
            json_sockets: AtomicUsize::new(0),
            closing: Mutex::default(),
            cluster: parent.cluster.clone(),
            presence: Tracker::default(),
            recovery: parent.recovery.as_ref().map(|b| Buffer::new(b.config().clone(), parent.cluster.is_none())),
            dedupe: Dedupe::default(),
        });
        parent.children.write().push(child.clone());
        child
    }

    /// Whether this is a dynamic namespace's parent (see `Server::dynamic_namespace`).
    pub(crate) fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    pub(crate) fn parent(&self) -> Option<&Arc<Namespace>> {
        self.parent.as_ref()
    }

    pub(crate) fn forget_child(&self, child: &Arc<Namespace>) {
        self.children.write().retain(|c| !Arc::ptr_eq(c, child));
    }

    /// This namespace and, for a dynamic one, every namespace made from it.
    pub(crate) fn with_children(self: &Arc<Self>) -> Vec<Arc<Namespace>> {
        let mut all = vec![self.clone()];
        all.extend(self.children.read().iter().cloned());
        all
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.next_ack.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn ack_issued(&self, id: u64) -> bool {
        id > 0 && id < self.next_ack.load(Ordering::Relaxed)
    }

    /// The namespace name, e.g. `/` or `/chat`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Handle `event` from any socket of this namespace; the return value is the ack reply.
    pub fn on<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Socket, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.handlers.write().events.insert(event.into(), handler::event_handler(f));
    }

    /// Handle every event that has no specific handler.
    pub fn on_any<F, Fut, R>(&self, f: F)
    where
        F: Fn(Socket, String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.handlers.write().any = Some(handler::any_handler(f));
    }

    /// Decide on each new socket before the client learns it is connected
    /// (python-socketio's `connect` handler, socket.io's `use`): the socket
    /// already exists, is in the namespace and can join rooms; what is sent
    /// to it meanwhile is held and follows the connect answer. `Err` refuses
    /// it: the client gets the rejection (Socket.IO CONNECT_ERROR, JSON
    /// protocol close 4003) and no disconnect handler runs.
    pub fn on_connect<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), Rejection>> + Send + 'static,
    {
        self.handlers.write().connect.push((handler::connect_hook(f), false));
    }

    /// As [`Namespace::on_connect`], and also run for a recovered socket
    /// when connection state recovery skips the hooks: then
    /// [`Socket::skips_middlewares`] is true, and the hook only registers
    /// the socket (a binding's session object) without running the
    /// application's middlewares.
    pub fn on_admit<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), Rejection>> + Send + 'static,
    {
        self.handlers.write().connect.push((handler::connect_hook(f), true));
    }

    /// Called for each new socket before any of its messages is read, so
    /// handlers it registers see the first message.
    pub fn on_connection<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.write().connection.push(handler::connection_handler(f));
    }

    /// Called when any socket of this namespace disconnects.
    pub fn on_disconnect<F, Fut>(&self, f: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.write().disconnect.push(handler::disconnect_handler(f));
    }

    /// Decide on each connection: accept with an identity or refuse with a message.
    pub fn auth<F, Fut>(&self, f: F)
    where
        F: Fn(Arc<super::socket::Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Identity, Rejection>> + Send + 'static,
    {
        self.handlers.write().auth = Some(crate::auth::auth_hook(f));
    }

    /// Decide whether a client may join a room it asked for.
    pub fn on_join<F, Fut, E>(&self, f: F)
    where
        F: Fn(Socket, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        self.handlers.write().join = Some(handler::join_hook(f));
    }

    pub(crate) fn auth_hook(&self) -> Option<AuthHook> {
        self.handlers.read().auth.clone().or_else(|| self.parent.as_ref()?.auth_hook())
    }

    /// Run the connect hook (none: anonymous), bounded by `timeout`.
    pub(crate) async fn authenticate(
        &self,
        handshake: Arc<super::socket::Handshake>,
        timeout: std::time::Duration,
    ) -> Result<Identity, Rejection> {
        let Some(hook) = self.auth_hook() else { return Ok(Identity::anonymous()) };
        tokio::time::timeout(timeout, hook(handshake))
            .await
            .unwrap_or_else(|_| Err(Rejection::new("authentication timed out")))
    }

    pub(crate) fn join_hook(&self) -> Option<JoinHook> {
        self.handlers.read().join.clone().or_else(|| self.parent.as_ref()?.join_hook())
    }

    /// Run the connect hooks (own, then the dynamic parent's) on a socket
    /// just added (for one whose hooks recovery skips, only those of
    /// [`Namespace::on_admit`]); on refusal the socket is taken out again.
    pub(crate) async fn admit(&self, socket: &Socket) -> std::result::Result<(), Rejection> {
        let skipping = socket.skips_middlewares();
        let hooks: Vec<ConnectHook> =
            self.connect_hooks().into_iter().filter(|(_, always)| *always || !skipping).map(|(h, _)| h).collect();
        if hooks.is_empty() {
            return Ok(());
        }
        socket.hold();
        for hook in hooks {
            if let Err(rej) = hook(socket.clone()).await {
                socket.close(DisconnectReason::ServerDisconnect);
                self.remove(socket);
                socket.release();
                return Err(rej);
            }
        }
        self.subscriptions_settled().await;
        Ok(())
    }

    fn connect_hooks(&self) -> Vec<(ConnectHook, bool)> {
        let mut all = self.handlers.read().connect.clone();
        all.extend(self.parent.iter().flat_map(|p| p.connect_hooks()));
        all
    }

    /// Own connection handlers, then the dynamic parent's.
    pub(crate) fn connection_handlers(&self) -> Vec<ConnectionHandler> {
        let mut all = self.handlers.read().connection.clone();
        all.extend(self.parent.iter().flat_map(|p| p.connection_handlers()));
        all
    }

    /// The disconnect handlers of a socket just taken out (its own, then the
    /// namespace's), as one future, or None without any; until it is done
    /// the socket is still found by id and its `rooms()` are those it left.
    pub(crate) fn disconnected(
        self: &Arc<Self>,
        socket: Socket,
        reason: DisconnectReason,
        left: Vec<String>,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let handlers: Vec<_> =
            socket.take_disconnect_handlers().into_iter().chain(self.disconnect_handlers()).collect();
        if handlers.is_empty() {
            return None;
        }
        self.closing.lock().insert(socket.id().clone(), (socket.clone(), left));
        let ns = self.clone();
        Some(async move {
            for h in handlers {
                h(socket.clone(), reason).await;
            }
            ns.closing.lock().remove(socket.id());
        })
    }

    fn disconnect_handlers(&self) -> Vec<DisconnectHandler> {
        let mut all = self.handlers.read().disconnect.clone();
        all.extend(self.parent.iter().flat_map(|p| p.disconnect_handlers()));
        all
    }

    /// The handler for `event`: a specific one (the socket's, then the
    /// namespace's and its dynamic parent's), else a catch-all (same order).
    pub(crate) fn resolve_handler(&self, socket: &Socket, event: &str) -> Option<EventHandler> {
        if let Some(h) = socket.handler(event).or_else(|| self.specific(event)) {
            return Some(h);
        }
        let any = socket.any_handler().or_else(|| self.catch_all())?;
        let event = event.to_owned();
        Some(Arc::new(move |s, data| any(s, event.clone(), data)))
    }

    fn specific(&self, event: &str) -> Option<EventHandler> {
        self.handlers.read().events.get(event).cloned().or_else(|| self.parent.as_ref()?.specific(event))
    }

    fn catch_all(&self) -> Option<AnyHandler> {
        self.handlers.read().any.clone().or_else(|| self.parent.as_ref()?.catch_all())
    }

    /// Broadcast to every socket of this namespace (add `to`, `except`, ...).
    pub fn broadcast(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// Broadcast to `room`.
    pub fn to(self: &Arc<Self>, room: impl Into<String>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).to(room)
    }

    /// Broadcast to everyone except the members of `room`.
    pub fn except(self: &Arc<Self>, room: impl Into<String>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).except(room)
    }

    /// Broadcast to every socket of the namespace.
    pub fn emit(self: &Arc<Self>, event: impl Into<String>, data: impl Serialize) -> Result<usize> {
        BroadcastOperator::new(self.clone()).emit(event, data)
    }

    /// A socket of this namespace by id; a disconnected one while its
    /// disconnect handlers run (it is in no room and sends nothing).
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        let connected = self.index.read().members().get(sid).cloned();
        connected.or_else(|| self.closing.lock().get(sid).map(|(s, _)| s.clone()))
    }

    /// Every connected socket.
    pub fn sockets(&self) -> Vec<Socket> {
        self.index.read().members().values().cloned().collect()
    }

    /// Connected sockets.
    pub fn len(&self) -> usize {
        self.index.read().members().len()
    }

    /// Whether no socket is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every room with members, socket rooms included.
    pub fn rooms(&self) -> Vec<String> {
        self.index.read().room_names().map(str::to_owned).collect()
    }

    /// Rooms joined by name (not the sockets' own rooms), on this node.
    pub fn named_rooms(&self) -> Vec<String> {
        self.index.read().named_rooms().map(str::to_owned).collect()
    }

    /// Rooms joined by name on every node, sorted (socket.io's `allRooms`).
    pub async fn rooms_everywhere(&self) -> Result<Partial<Vec<String>>> {
        let mut rooms: std::collections::BTreeSet<String> = self.named_rooms().into_iter().collect();
        let Some(node) = &self.cluster else { return Ok(Partial::complete(rooms.into_iter().collect())) };
        let remote = node.ask_with_timeout(Query::Rooms { ns: self.name.clone() }).await?;
        for (_, body) in remote.value {
            rooms.extend(serde_json::from_value::<Vec<String>>(body).unwrap_or_default());
        }
        Ok(Partial { value: rooms.into_iter().collect(), missing: remote.missing })
    }

    /// Connected sockets on every node.
    pub async fn len_everywhere(&self) -> Result<Partial<usize>> {
        let Some(node) = &self.cluster else { return Ok(Partial::complete(self.len())) };
        Ok(crate::cluster::total(self.len(), node.ask_with_timeout(Query::Count { ns: self.name.clone() }).await?))
    }

    /// Rooms other than the sockets' own rooms.
    pub(crate) fn named_room_count(&self) -> usize {
        self.index.read().named_rooms().count()
    }

    /// Whether a client may not ask to join `room`: another user's room or a
    /// socket's own room (only the server puts sockets there).
    pub(crate) fn is_reserved(&self, room: &str) -> bool {
        room.starts_with(USER_ROOM_PREFIX) || self.index.read().members().contains_key(room)
    }

    pub(crate) fn add(&self, socket: &Socket) {
        if socket.protocol() == Protocol::Json {
            self.json_sockets.fetch_add(1, Ordering::Relaxed);
        }
        let sid = socket.id().clone();
        self.index.write().insert(sid.clone(), socket.clone());
        if let Some(user) = socket.user_id() {
            self.add_user(socket, user);
        }
        if let Some(node) = &self.cluster {
            node.dirty(Dirty::Socket { ns: self.name.clone(), sid: sid.to_string() });
        }
        self.session_changed(socket);
    }

    /// Put `socket` in its user's room and count the connection.
    fn add_user(&self, socket: &Socket, user: &str) {
        let room = format!("{USER_ROOM_PREFIX}{user}");
        self.index_join(&mut self.index.write(), socket.id(), &room);
        *self.users.lock().entry(user.to_owned()).or_default() += 1;
        if let Some(node) = &self.cluster {
            node.dirty(Dirty::User(user.to_owned()));
            // The socket's record (for the lost-socket hook) names its user.
            node.dirty(Dirty::Socket { ns: self.name.clone(), sid: socket.id().to_string() });
        }
    }

    /// Name the user of a socket whose connect hooks are running.
    pub(crate) fn set_user(&self, socket: &Socket, user: &str) -> Result<()> {
        if self.index.read().rooms_of(socket.id()).len() > 1 {
            return Err(Error::new(ErrorKind::InvalidArgument, "set the user id before the socket joins rooms"));
        }
        self.add_user(socket, user);
        Ok(())
    }

    /// Take the socket out of every room and tell the other members;
    /// returns the named rooms it was in.
    pub(crate) fn remove(&self, socket: &Socket) -> Vec<String> {
        let left = {
            let mut ix = self.index.write();
            let left = ix.remove(socket.id());
            self.close_emptied(&ix, left.iter().map(String::as_str));
            left
        };
        if socket.protocol() == Protocol::Json {
            self.json_sockets.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(user) = socket.user_id() {
            let mut users = self.users.lock();
            if let Some(n) = users.get_mut(user) {
                *n -= 1;
                if *n == 0 {
                    users.remove(user);
                }
            }
            if let Some(node) = &self.cluster {
                node.dirty(Dirty::User(user.to_owned()));
            }
        }
        if let Some(node) = &self.cluster {
            node.dirty(Dirty::Socket { ns: self.name.clone(), sid: socket.id().to_string() });
        }
        self.session_changed(socket);
        for room in &left {
            self.moved(socket, room, false);
        }
        left
    }

    pub(crate) fn join(&self, socket: &Socket, room: String) -> Result<()> {
        if room.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "room name must not be empty"));
        }
        if room.len() > crate::protocol::MAX_NAME_BYTES {
            return Err(Error::new(ErrorKind::InvalidArgument, "room name longer than 256 bytes"));
        }
        if !socket.connected() {
            return Err(Error::closed());
        }
        let joined = self.index_join(&mut self.index.write(), socket.id(), &room);
        if joined {
            self.session_changed(socket);
            self.moved(socket, &room, true);
        }
        Ok(())
    }

    pub(crate) fn leave(&self, socket: &Socket, room: &str) -> Result<()> {
        let left = {
            let mut ix = self.index.write();
            let left = ix.leave(socket.id(), room);
            if left {
                self.close_emptied(&ix, [room]);
            }
            left
        };
        if left {
            self.session_changed(socket);
            self.moved(socket, room, false);
        }
        Ok(())
    }

    /// Wait until the cluster subscriptions asked for so far are in place,
    /// so that a client told it joined a room already gets the room's
    /// broadcasts from every node. Nothing to wait for without Redis, or
    /// when none is pending (the usual case: no await point is reached).
    pub(crate) async fn subscriptions_settled(&self) {
        if let Some(node) = self.cluster.as_ref().filter(|n| n.subscriptions_pending()) {
            node.settled().await;
        }
    }

    /// Put `sid` in `room` in the index, whose lock the caller holds: the
    /// room's first local member subscribes this node to its cluster
    /// channel. Subscriptions change in index order, under the lock, so a
    /// quick leave and join cannot reach the cluster reversed.
    fn index_join(&self, ix: &mut RoomIndex<Sid, Socket>, sid: &Sid, room: &str) -> bool {
        let joined = ix.join(sid, room);
        if joined && ix.room_len(room) == 1 {
            self.cluster.iter().for_each(|n| n.room_opened(&self.name, room));
        }
        joined
    }

    /// Of `rooms`, which a member just left (the index lock still held),
    /// those without local members unsubscribe this node from their channels.
    fn close_emptied<'a>(&self, ix: &RoomIndex<Sid, Socket>, rooms: impl IntoIterator<Item = &'a str>) {
        if let Some(node) = &self.cluster {
            rooms.into_iter().filter(|r| ix.room_len(r) == 0).for_each(|r| node.room_closed(&self.name, r));
        }
    }

    /// `socket` entered or left a named room: presence, then the per-socket
    /// notice JSON-protocol members of rooms without presence get.
    fn moved(&self, socket: &Socket, room: &str, entered: bool) {
        if self.tracks(socket, room) {
            let key = presence::member_key(socket);
            let changed = if entered {
                self.presence.enter(room, &key, socket.id().as_str(), &socket.presence_meta())
            } else {
                self.presence.exit(room, &key)
            };
            match &self.cluster {
                Some(node) => node.dirty(Dirty::Member { ns: self.name.clone(), room: room.to_owned(), key }),
                None => {
                    if let Some(member) = changed {
                        let kind = if entered { PresenceKind::Join } else { PresenceKind::Leave };
                        let by = entered.then(|| socket.id().to_string());
                        self.announce_presence(socket, PresenceEvent { kind, room: room.to_owned(), member }, by);
                    }
                }
            }
        } else {
            self.announce(socket, room, entered);
        }
    }

    fn tracks(&self, socket: &Socket, room: &str) -> bool {
        let own = room == socket.id().as_str();
        self.presence.tracks(own, room) || self.parent.as_ref().is_some_and(|p| p.presence.tracks(own, room))
    }

    /// Tell a room's members (except `by`) on every node.
    fn announce_presence(&self, socket: &Socket, event: PresenceEvent, by: Option<String>) {
        let op = BroadcastOperator::new(socket.0.ns.clone()).to(event.room.clone());
        let op = by.iter().fold(op, |op, sid| op.except(sid.clone()));
        op.send(Packet::Presence { event, by });
    }

    /// Set the presence metadata of `socket` in every tracked room it is in
    /// and tell those rooms.
    pub(crate) fn presence_changed(&self, socket: &Socket, meta: &serde_json::Value) {
        let key = presence::member_key(socket);
        for room in self.rooms_of(socket.id()) {
            if !self.tracks(socket, &room) {
                continue;
            }
            let Some(member) = self.presence.update(&room, &key, meta) else { continue };
            if let Some(node) = &self.cluster {
                node.dirty(Dirty::Meta { ns: self.name.clone(), room: room.clone(), key: key.clone() });
            }
            self.announce_presence(socket, PresenceEvent { kind: PresenceKind::Update, room, member }, None);
        }
    }

    /// Track presence in every named room of this namespace: members
    /// aggregated per user, `presence:join` / `presence:leave` /
    /// `presence:update` events to the room (JSON protocol: `user_joined` /
    /// `user_left` / `presence`). Rooms already joined are tracked from
    /// their next join.
    pub fn enable_presence(&self) {
        self.presence.enable_all();
    }

    /// Track presence in `room` only (see [`Namespace::enable_presence`]).
    pub fn enable_presence_in(&self, room: &str) {
        self.presence.enable(room);
    }

    /// The members of `room` (on every node in a cluster).
    pub async fn presence(&self, room: &str) -> Result<Vec<Member>> {
        match &self.cluster {
            Some(node) => node.members(&self.name, room).await,
            None => Ok(self.presence.members(room)),
        }
    }

    /// How many members `room` has (on every node in a cluster).
    pub async fn presence_count(&self, room: &str) -> Result<usize> {
        match &self.cluster {
            Some(node) => node.member_count(&self.name, room).await,
            None => Ok(self.presence.count(room)),
        }
    }

    /// A local member and the socket of it that entered last.
    pub(crate) fn presence_member(&self, room: &str, key: &str) -> Option<(Member, String)> {
        self.presence.member(room, key)
    }

    /// Every (room, member key) with local connections.
    pub(crate) fn presence_keys(&self) -> Vec<(String, String)> {
        self.presence.keys()
    }

    pub(crate) fn contains(&self, sid: &Sid, room: &str) -> bool {
        self.index.read().contains(sid, room)
    }

    pub(crate) fn rooms_of(&self, sid: &Sid) -> Vec<String> {
        if let Some((_, named)) = self.closing.lock().get(sid) {
            return std::iter::once(sid.as_str().to_owned()).chain(named.iter().cloned()).collect();
        }
        self.index.read().rooms_of(sid)
    }

    /// Tell the other members of a named room that `socket` entered or left it.
    fn announce(&self, socket: &Socket, room: &str, joined: bool) {
        if room == socket.id().as_str()
            || room.starts_with(USER_ROOM_PREFIX)
            || self.json_sockets.load(Ordering::Relaxed) == 0
        {
            return;
        }
        let (sid, user_id) = (socket.id().clone(), socket.user_id().map(str::to_owned));
        let packet = if joined {
            Packet::UserJoined { room: room.to_owned(), sid: sid.clone(), user_id }
        } else {
            Packet::UserLeft { room: room.to_owned(), sid: sid.clone(), user_id }
        };
        let ns = socket.0.ns.clone();
        BroadcastOperator::new(ns).to(room).except(sid.as_str()).send(packet);
    }

    pub(crate) fn dedupe(&self) -> &Dedupe {
        &self.dedupe
    }

    /// Sessions this node keeps for recovering clients (none in a
    /// cluster, where they live in Redis).
    pub(crate) fn parked_sessions(&self) -> usize {
        self.recovery.as_ref().map_or(0, Buffer::parked)
    }

    /// Whether connection state recovery is on.
    pub(crate) fn recovers(&self) -> bool {
        self.recovery.is_some()
    }

    pub(crate) fn recovery(&self) -> Option<&Buffer> {
        self.recovery.as_ref()
    }

    /// Whether a recovering client should skip the auth and connect hooks.
    pub(crate) fn skips_middlewares(&self) -> bool {
        self.recovery.as_ref().is_some_and(|b| b.config().skip_middlewares)
    }

    /// Take the session `pid` left for its client, and where its replay
    /// starts after `offset`; `None` when recovery is off, the session is
    /// unknown or expired, or what it missed is no longer kept.
    /// Counted in `counters` as a recovery hit or miss.
    pub(crate) async fn take_session(
        &self,
        pid: &str,
        offset: Option<&str>,
        counters: &crate::metrics::Counters,
    ) -> Option<(Session, Resume)> {
        let buffer = self.recovery.as_ref()?;
        let taken = match &self.cluster {
            Some(node) => node.take_session(&self.name, pid, offset).await,
            None => buffer.take(pid, offset),
        };
        counters.recovery(taken.is_some());
        taken
    }

    /// Who a connecting socket is: a recovered session's own identity when
    /// the hooks are skipped, else the auth hook's. A recovered socket gets
    /// its session's data back either way (as with socket.io).
    pub(crate) async fn identify(
        &self,
        handshake: Arc<super::socket::Handshake>,
        timeout: std::time::Duration,
        resumed: Option<&(Session, Resume)>,
    ) -> Result<Identity, Rejection> {
        let Some((session, _)) = resumed else { return self.authenticate(handshake, timeout).await };
        let mut identity = if self.skips_middlewares() {
            Identity { user_id: session.user_id.clone(), data: Value::Null }
        } else {
            self.authenticate(handshake, timeout).await?
        };
        identity.data = session.data.clone();
        identity.user_id = identity.user_id.or_else(|| session.user_id.clone());
        Ok(identity)
    }

    /// Add a new socket: a recovering one goes back to its session's rooms,
    /// then through the connect hooks like any other (unless recovery skips
    /// them). Returns what a recovering socket missed, to send after
    /// the connect answer with [`Socket::unhold`].
    pub(crate) async fn open(
        &self,
        socket: &Socket,
        resumed: Option<&(Session, Resume)>,
    ) -> std::result::Result<Vec<(Offset, Vec<Frame>)>, Rejection> {
        if resumed.is_some() {
            socket.hold();
        }
        self.add(socket);
        if let Some((session, _)) = resumed {
            self.resume_rooms(socket, session);
        }
        self.admit(socket).await?;
        Ok(match resumed {
            Some((session, from)) => self.missed(socket, session, *from).await,
            None => Vec::new(),
        })
    }

    /// Take a socket out (see [`Namespace::remove`]) and, when it went away
    /// for a recoverable reason, keep its session for its client.
    pub(crate) fn remove_parking(&self, socket: &Socket, reason: DisconnectReason) -> Vec<String> {
        let mark = self.recovery_mark();
        let left = self.remove(socket);
        self.park(socket, reason, left.clone(), mark);
        left
    }

    /// Put a recovering socket (already added, and holding) back in its
    /// session's rooms, with its presence metadata.
    fn resume_rooms(&self, socket: &Socket, session: &Session) {
        if let Some(meta) = &session.presence {
            let _ = socket.set_presence(meta.clone());
        }
        for room in &session.rooms {
            let _ = self.join(socket, room.clone());
        }
    }

    /// What the session's socket missed since `from`, each encoded for
    /// `socket`, in order. Taken once the socket is back in its rooms: what
    /// reaches it live from then on is held, and the part of it that is in
    /// the replay is dropped.
    async fn missed(&self, socket: &Socket, session: &Session, from: Resume) -> Vec<(Offset, Vec<Frame>)> {
        let Some(buffer) = &self.recovery else { return Vec::new() };
        self.subscriptions_settled().await;
        let packets = match &self.cluster {
            Some(node) => node.missed(&self.name, session, from, buffer.config()).await,
            None => buffer.missed(session, from),
        };
        packets
            .into_iter()
            .map(|(o, p)| (o, Encoded::with_offset(p, &self.name, Some(o)).frames(socket.protocol()).to_vec()))
            .collect()
    }

    /// The namespace's newest offset, read before a socket leaves the
    /// index: a packet after it is either queued to the socket or replayed.
    pub(crate) fn recovery_mark(&self) -> Option<Offset> {
        self.recovery.as_ref().map(Buffer::last)
    }

    /// The session a live socket would leave (kept in Redis in a cluster,
    /// so that its client can take it up if this node dies).
    pub(crate) fn live_session(&self, socket: &Socket) -> Option<Session> {
        self.recovery.as_ref()?;
        self.session_of(socket, self.rooms_of(socket.id()), socket.connect_mark())
    }

    /// `socket`'s session with the rooms it is (or was) in; its replay
    /// starts at its first packet, else after `mark`.
    fn session_of(&self, socket: &Socket, rooms: Vec<String>, mark: Offset) -> Option<Session> {
        let named = rooms.into_iter().filter(|r| r != socket.id().as_str() && !r.starts_with(USER_ROOM_PREFIX));
        Some(Session {
            pid: socket.pid()?.to_owned(),
            sid: socket.id().to_string(),
            rooms: named.collect(),
            data: socket.data(),
            user_id: socket.user_id().map(str::to_owned),
            presence: socket.presence_set(),
            start: socket.first_offset().map_or(Resume::After(mark), Resume::From),
        })
    }

    /// A socket's session changed (connected, rooms, first packet, gone):
    /// in a cluster with recovery, its live record is rewritten.
    pub(crate) fn session_changed(&self, socket: &Socket) {
        if let (Some(node), Some(pid)) = (&self.cluster, socket.pid()) {
            node.session_dirty(&self.name, socket.id().as_str(), pid);
        }
    }

    /// Keep the session of a socket that went away for a recoverable
    /// reason, for its client to take up (see [`Namespace::recovery_mark`]).
    fn park(&self, socket: &Socket, reason: DisconnectReason, left: Vec<String>, mark: Option<Offset>) {
        let (Some(buffer), Some(mark)) = (&self.recovery, mark) else { return };
        if !recovery::recoverable(reason) {
            return;
        }
        let Some(session) = self.session_of(socket, left, mark) else { return };
        match &self.cluster {
            Some(node) => node.park(session, buffer.config()),
            None => buffer.park(session),
        }
    }

    /// Visit each targeted socket once, under the read lock (no awaits inside).
    pub(crate) fn deliver(&self, rooms: &[String], except: &[String], f: impl FnMut(&Socket)) -> usize {
        self.index.read().for_each_target(rooms, except, f)
    }
}
