//! The broadcast operator: `to(rooms).except(rooms).volatile().emit(...)`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::args::Args;
use super::namespace::Namespace;
use super::packet::{Encoded, Packet};
use super::socket::{Socket, to_value};
use crate::error::Result;

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

    pub(crate) fn send(&self, packet: Packet) -> usize {
        let namespaces = self.ns.with_children();
        namespaces.iter().map(|ns| self.send_in(ns, Encoded::new(packet.clone(), ns.name()))).sum()
    }

    fn send_in(&self, ns: &Namespace, encoded: Encoded<'_>) -> usize {
        ns.deliver(&self.rooms, &self.except, |socket| {
            // An overflowing recipient is closed inside `queue_frames`; the others go on.
            let _ = socket.queue_frames(encoded.frames(socket.protocol()), self.volatile);
        })
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
