//! roomcast: a real-time messaging engine.
//!
//! A WebSocket server with namespaces, rooms, acknowledgements, heartbeats,
//! limits and authentication, and a client with reconnection. Every
//! language binding embeds this crate; none of them adds logic of its own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> roomcast::Result<()> {
//! use roomcast::Server;
//! let server = Server::builder().build()?;
//! server.on("hello", |socket, args| async move {
//!     socket.to("lobby").emit_args("greeting", args);
//!     serde_json::json!({"ok": true}) // the ack reply
//! });
//! let addr = server.listen("127.0.0.1:0").await?; // port 0: any free port
//! # assert_ne!(addr.port(), 0);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod hub;
mod metrics;
pub mod presence;
pub mod protocol;
pub mod recovery;
pub mod server;
pub mod transport;

pub use auth::{Identity, JwtVerifier, Rejection};
pub use cluster::{AckReply, LostSocket, Partial, RedisConfig, RemoteHandshake, RemoteSocket};
pub use config::{AuthRejection, ConnectionRate, RateLimit, ServerConfig};
pub use error::{Error, ErrorKind, Result};
pub use hub::args::{Args, Data};
pub use hub::broadcast::BroadcastOperator;
pub use hub::dispatch::wants_ack;
pub use hub::handler::{IntoReply, Reply};
pub use hub::namespace::Namespace;
pub use hub::socket::{DisconnectReason, Handshake, Sid, Socket};
pub use metrics::Stats;
pub use presence::{Member, PresenceEvent, PresenceKind};
pub use recovery::RecoveryConfig;
pub use server::{Server, ServerBuilder};
pub use transport::Overflow;
