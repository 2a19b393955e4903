//! The benchmark app (`bench/APP.md`) on roomcast's Rust API: the roomcast peer.

use roomcast::{RedisConfig, Server};

/// The room every benchmark client is in.
pub const ROOM: &str = "bench";

/// Build the app: Socket.IO sockets join `bench` on connection (JSON-protocol
/// sockets join with their own `join` message), `publish` broadcasts its
/// arguments as `msg` to the room except the sender, `echo` acks with its
/// arguments.
pub fn build() -> roomcast::Result<Server> {
    build_with(None, false)
}

/// The same app, as a node of a cluster on the Redis at `redis_url` when
/// given (B4): the room's broadcasts then reach its members on every node.
/// With `recovery`, connection state recovery is on: every broadcast gets
/// an offset and is kept (in a cluster, in the namespace's Redis stream).
pub fn build_with(redis_url: Option<&str>, recovery: bool) -> roomcast::Result<Server> {
    let mut builder = Server::builder();
    if let Some(url) = redis_url {
        builder = builder.redis(RedisConfig::new(url));
    }
    if recovery {
        builder = builder.connection_state_recovery(roomcast::RecoveryConfig::default());
    }
    let server = builder.build()?;
    server.on_connection(|socket| async move {
        if socket.handshake().path != roomcast::server::WS_PATH {
            let _ = socket.join(ROOM);
        }
    });
    server.on("publish", |socket, args| async move {
        socket.to(ROOM).emit_args("msg", args);
    });
    server.on("echo", |_socket, args| async move { args });
    Ok(server)
}
