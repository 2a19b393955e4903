//! The benchmark app (`bench/APP.md`) on roomcast's Rust API: the roomcast peer.

use roomcast::Server;

/// The room every benchmark client is in.
pub const ROOM: &str = "bench";

/// Build the app: Socket.IO sockets join `bench` on connection (JSON-protocol
/// sockets join with their own `join` message), `publish` broadcasts its
/// arguments as `msg` to the room except the sender, `echo` acks with its
/// arguments.
pub fn build() -> roomcast::Result<Server> {
    let server = Server::builder().build()?;
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
