//! The broadcast operator: `to(rooms).except(rooms).volatile().emit(...)`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::args::Args;
use super::namespace::Namespace;
use super::packet::{Encoded, Packet};
use super::socket::{Socket, to_value};
use crate::cluster::requests_wire;
use crate::cluster::{AckReply, Partial, Query, RemoteSocket, Selector};
use crate::error::Result;
use crate::recovery::Offset;

/// Selects recipients in one namespace. With no `to` rooms it targets the
/// whole namespace. Cheap to build; nothing happens until a terminal call.
#[derive(Clone, Debug)]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    rooms: Vec<String>,
    except: Vec<String>,
    volatile: bool,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>) -> Self {
        Self { ns, rooms: Vec::new(), except: Vec::new(), volatile: false }
    }

    /// Also target the members of `room` (a union over all `to` rooms).
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Target the sockets of the user `user_id` (the room `user:<id>`).
    pub fn to_user(self, user_id: &str) -> Self {
        self.to(format!("user:{user_id}"))
    }

    /// Skip the members of `room` (a socket id skips that socket).
    pub fn except(mut self, room: impl Into<String>) -> Self {
        self.except.push(room.into());
        self
    }

    /// Drop the message for recipients whose outbound queue is full instead
    /// of closing them.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Send `event` with one JSON argument to every selected socket; returns
    /// how many were targeted. The message is serialized once per wire
    /// protocol, whatever the count.
    pub fn emit(&self, event: impl Into<String>, data: impl Serialize) -> Result<usize> {
        Ok(self.emit_args(event, Args::one(to_value(data)?)))
    }

    /// Send `event` with any arguments (several, binary) to every selected socket.
    pub fn emit_args(&self, event: impl Into<String>, args: impl Into<Args>) -> usize {
        self.send(Packet::Event { event: event.into(), args: args.into(), id: None })
    }

    /// Deliver to the local targets and, in a cluster, publish once per
    /// target room for the other nodes. Returns the local count.
    pub(crate) fn send(&self, packet: Packet) -> usize {
        let namespaces = self.ns.with_children();
        if let Some(node) = &self.ns.cluster {
            if self.ns.recovers() && !self.ns.is_dynamic() && !self.volatile && packet.recoverable() {
                // Ordered by the namespace's stream: this node delivers it
                // when it comes back from Redis, like every other node.
                node.publish_recorded(self.ns.name(), &self.rooms, &self.except, &packet);
                return self.ns.deliver(&self.rooms, &self.except, |_| {});
            }
            if self.ns.is_dynamic() {
                // Children exist where clients asked for them: one copy
                // for every node, which delivers to its own children.
                node.publish_dynamic(self.ns.name(), &self.rooms, &self.except, self.volatile, &packet);
            } else {
                node.publish(self.ns.name(), &self.rooms, &self.except, self.volatile, &packet);
            }
        }
        let mut count = 0;
        for ns in &namespaces {
            count += deliver_local(ns, &self.rooms, &self.except, self.volatile, packet.clone());
        }
        count
    }

    /// Send `event` to every selected socket and collect each one's ack
    /// within `timeout`. The event is encoded once per protocol: every
    /// recipient gets the same ack id.
    pub async fn emit_with_ack(
        &self,
        event: impl Into<String>,
        args: impl Into<Args>,
        timeout: Duration,
    ) -> Vec<(Socket, Result<Args>)> {
        let (event, args) = (event.into(), args.into());
        let mut waiting = Vec::new();
        for ns in self.ns.with_children() {
            let id = ns.next_ack_id();
            let encoded =
                Encoded::new(Packet::Event { event: event.clone(), args: args.clone(), id: Some(id) }, ns.name());
            ns.deliver(&self.rooms, &self.except, |socket| {
                let rx = socket.expect_ack(id);
                match socket.queue_frames(encoded.frames(socket.protocol()), self.volatile) {
                    Ok(()) => waiting.push((socket.clone(), id, Some(rx))),
                    Err(_) => {
                        socket.forget_ack(id);
                        waiting.push((socket.clone(), id, None));
                    }
                }
            });
        }
        let replies = waiting.into_iter().map(|(socket, id, rx)| async move {
            let result = match rx {
                Some(rx) => socket.wait_ack(id, rx, timeout).await,
                None => Err(crate::error::Error::closed()),
            };
            (socket, result)
        });
        futures_util::future::join_all(replies).await
    }

    /// [`Self::emit_with_ack`] as the cluster reports it.
    pub(crate) async fn local_emit_with_ack(&self, event: String, args: Args, timeout: Duration) -> Vec<AckReply> {
        let replies = self.emit_with_ack(event, args, timeout).await;
        replies
            .into_iter()
            .map(|(s, r)| AckReply {
                sid: s.id().to_string(),
                reply: r.map(|a| requests_wire(&a)).map_err(|e| e.kind().code().to_owned()),
            })
            .collect()
    }

    /// Send `event` to the selected sockets on every node and collect each
    /// one's ack within `timeout` (socket.io's `timeout(ms).emitWithAck`
    /// with an adapter). Nodes that did not report in time are listed as
    /// missing; without Redis, the local sockets only.
    pub async fn emit_with_ack_everywhere(
        &self,
        event: impl Into<String>,
        args: impl Into<Args>,
        timeout: Duration,
    ) -> Result<Partial<Vec<AckReply>>> {
        let (event, args) = (event.into(), args.into());
        let remote = self.ask(Query::EmitWithAck {
            sel: self.selector(),
            volatile: self.volatile,
            event: event.clone(),
            args: requests_wire(&args),
            timeout_ms: timeout.as_millis() as u64,
        });
        let (local, remote) = futures_util::join!(self.local_emit_with_ack(event, args, timeout), remote);
        let remote = remote?;
        let mut all = local;
        for (_, body) in remote.value {
            all.extend(serde_json::from_value::<Vec<AckReply>>(body).unwrap_or_default());
        }
        Ok(Partial { value: all, missing: remote.missing })
    }

    /// The selected sockets on every node (socket.io's `fetchSockets`).
    pub async fn fetch_sockets(&self) -> Result<Partial<Vec<RemoteSocket>>> {
        let node = self.ns.cluster.as_ref().map(|n| n.id().to_owned());
        let local: Vec<RemoteSocket> = self.sockets().iter().map(|s| RemoteSocket::of(s, node.as_deref())).collect();
        let remote = self.ask(Query::FetchSockets { sel: self.selector() }).await?;
        let mut all = local;
        for (_, body) in remote.value {
            all.extend(serde_json::from_value::<Vec<RemoteSocket>>(body).unwrap_or_default());
        }
        Ok(Partial { value: all, missing: remote.missing })
    }

    /// Make the selected sockets on every node join `room`; how many did.
    pub async fn sockets_join(&self, room: &str) -> Result<Partial<usize>> {
        self.act_everywhere(Query::Join { sel: self.selector(), room: room.to_owned() }).await
    }

    /// Make the selected sockets on every node leave `room`; how many did.
    pub async fn sockets_leave(&self, room: &str) -> Result<Partial<usize>> {
        self.act_everywhere(Query::Leave { sel: self.selector(), room: room.to_owned() }).await
    }

    /// Disconnect the selected sockets on every node (`close`: their whole
    /// connections, socket.io's `disconnectSockets(true)`); how many.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<Partial<usize>> {
        self.act_everywhere(Query::Disconnect { sel: self.selector(), close }).await
    }

    /// Do `query` (a join, leave or disconnect) here, then ask the other nodes.
    async fn act_everywhere(&self, query: Query) -> Result<Partial<usize>> {
        let local = self.act_locally(&query);
        Ok(crate::cluster::total(local, self.ask(query).await?))
    }

    /// This node's part of a join, leave or disconnect query: how many
    /// selected sockets it applied to (every node runs the same code).
    pub(crate) fn act_locally(&self, query: &Query) -> usize {
        let sockets = self.sockets();
        match query {
            Query::Join { room, .. } => sockets.iter().filter(|s| s.join(room.as_str()).is_ok()).count(),
            Query::Leave { room, .. } => sockets.iter().filter(|s| s.leave(room).is_ok()).count(),
            Query::Disconnect { close, .. } => {
                for s in &sockets {
                    if *close { s.disconnect_connection() } else { s.disconnect() }
                }
                sockets.len()
            }
            _ => 0,
        }
    }

    fn selector(&self) -> Selector {
        Selector { ns: self.ns.name().to_owned(), rooms: self.rooms.clone(), except: self.except.clone() }
    }

    /// Ask the other nodes (nothing to ask without Redis).
    async fn ask(&self, query: Query) -> Result<Partial<Vec<(String, serde_json::Value)>>> {
        match &self.ns.cluster {
            Some(node) => node.ask_with_timeout(query).await,
            None => Ok(Partial::complete(Vec::new())),
        }
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        let mut out = Vec::new();
        for ns in self.ns.with_children() {
            ns.deliver(&self.rooms, &self.except, |s| out.push(s.clone()));
        }
        out
    }

    /// Make every selected socket join `room`.
    pub fn join(&self, room: &str) -> Result<()> {
        self.sockets().iter().try_for_each(|s| s.join(room))
    }

    /// Make every selected socket leave `room`.
    pub fn leave(&self, room: &str) -> Result<()> {
        self.sockets().iter().try_for_each(|s| s.leave(room))
    }

    /// Disconnect every selected socket.
    pub fn disconnect(&self) {
        self.sockets().iter().for_each(Socket::disconnect);
    }
}

/// Send `packet` to this node's sockets of `ns` in `rooms` (all when empty)
/// and in none of `except`, encoded at most once per wire protocol.
pub(crate) fn deliver_local(
    ns: &Namespace,
    rooms: &[String],
    except: &[String],
    volatile: bool,
    packet: Packet,
) -> usize {
    if !volatile
        && packet.recoverable()
        && let Some(buffer) = ns.recovery().filter(|b| b.is_local())
    {
        return buffer
            .record(rooms, except, packet, |offset, packet| deliver_recorded(ns, rooms, except, packet, offset));
    }
    let encoded = Encoded::new(packet, ns.name());
    ns.deliver(rooms, except, |socket| {
        // An overflowing recipient is closed inside `queue_frames`; the others go on.
        let _ = socket.queue_frames(encoded.frames(socket.protocol()), volatile);
    })
}

/// Deliver a recoverable packet at `offset`, its place in the namespace's
/// order (the caller holds the order).
pub(crate) fn deliver_recorded(
    ns: &Namespace,
    rooms: &[String],
    except: &[String],
    packet: Packet,
    offset: Offset,
) -> usize {
    let encoded = Encoded::with_offset(packet, ns.name(), Some(offset));
    ns.deliver(rooms, except, |socket| {
        let _ = socket.queue_recorded(encoded.frames(socket.protocol()), offset);
    })
}
