//! Chat with rooms and presence on roomcast's Rust API: the same app as
//! examples/node/chat.mjs and examples/python/chat.py.
//!
//!   cargo run --release -p roomcast --example chat     # serves on 127.0.0.1:3000 (PORT to change)
//!   roomcast serve --chat --static examples/web/chat    # the same app behind the browser demo (make demo)
//!
//! Clients (socket.io-client, python-socketio) connect with auth {name}, which
//! names their user, and emit `join` {room}, `say` {room, text}, `leave`
//! {room}, `typing` {room}, `status` {status} ("online", "away", "busy") and
//! `who` {room} (acked with its members, `[{name, status}]` by name); everyone in the room gets
//! `joined`, `said` and `left`, the others `typing` {room, name}, and presence's `presence:join` / `presence:leave` /
//! `presence:update` (a member per user). Ctrl-C / SIGTERM close it cleanly.

use roomcast::{Args, Identity, Rejection, Server, ServerBuilder, Socket};
use serde_json::{Value, json};

/// The chat app, not listening yet.
pub fn create_server() -> roomcast::Result<Server> {
    let server = with_name_auth(Server::builder()).build()?;
    install(&server);
    Ok(server)
}

/// Clients name themselves: `auth.name` becomes their user id (32 characters at most).
pub fn with_name_auth(builder: ServerBuilder) -> ServerBuilder {
    builder.auth(|handshake| async move {
        match handshake.auth.get("name").and_then(Value::as_str).map(str::trim) {
            Some(name) if !name.is_empty() => Ok(Identity::user(name.chars().take(32).collect::<String>())),
            _ => Err(Rejection::new("pick a name first")),
        }
    })
}

/// The chat's events, and presence in every room, on namespace "/".
pub fn install(server: &Server) {
    server.of("/").enable_presence();
    server.on("join", |socket: Socket, args: Args| async move {
        let room = field(&args, "room");
        socket.join(room.clone())?;
        socket.to(room.clone()).emit("joined", json!({"room": room, "name": name(&socket)}))?;
        // Not the socket's own room, nor its user's (`user:<name>`).
        let rooms: Vec<String> =
            socket.rooms().into_iter().filter(|r| r != socket.id().as_str() && !r.starts_with("user:")).collect();
        Ok::<_, roomcast::Error>(json!({"ok": true, "rooms": rooms}))
    });
    let srv = server.clone();
    server.on("say", move |socket: Socket, args: Args| {
        let srv = srv.clone();
        async move {
            let room = field(&args, "room");
            if !socket.rooms().contains(&room) {
                return json!(false);
            }
            let said = json!({"room": room, "name": name(&socket), "text": args.json()["text"]});
            json!(srv.to(room).emit("said", said).is_ok())
        }
    });
    let srv = server.clone();
    server.on("leave", move |socket: Socket, args: Args| {
        let srv = srv.clone();
        async move {
            let room = field(&args, "room");
            let _ = socket.leave(&room);
            let _ = srv.to(room.clone()).emit("left", json!({"room": room, "name": name(&socket)}));
        }
    });
    server.on("typing", |socket: Socket, args: Args| async move {
        let room = field(&args, "room");
        if socket.rooms().contains(&room) {
            let _ = socket.to(room.clone()).volatile().emit("typing", json!({"room": room, "name": name(&socket)}));
        }
    });
    server.on("status", |socket: Socket, args: Args| async move {
        // Refused unless online, away or busy.
        json!(socket.set_presence(json!({"status": args.json()["status"]})).is_ok())
    });
    let srv = server.clone();
    server.on("who", move |_socket: Socket, args: Args| {
        let srv = srv.clone();
        async move {
            let mut members = srv.of("/").presence(&field(&args, "room")).await?;
            members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
            let members: Vec<Value> =
                members.into_iter().map(|m| json!({"name": m.user_id, "status": m.meta["status"]})).collect();
            Ok::<_, roomcast::Error>(json!(members))
        }
    });
}

/// A string field of the event's one argument, `""` when missing.
fn field(args: &Args, key: &str) -> String {
    args.json()[key].as_str().unwrap_or_default().to_owned()
}

/// The socket's user: the name it connected with.
fn name(socket: &Socket) -> String {
    socket.user_id().unwrap_or_default().to_owned()
}

#[allow(dead_code)] // the tests include this file for `create_server`
#[tokio::main]
async fn main() -> roomcast::Result<()> {
    let server = create_server()?;
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let addr = server.listen(("127.0.0.1", port)).await?;
    println!("chat on http://{addr}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
