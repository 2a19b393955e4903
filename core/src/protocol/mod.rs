//! Sans-I/O wire codecs: pure functions from bytes to messages and back.

pub mod engineio;
pub mod native;
pub mod socketio;

/// The handshake query parameter (both protocols) that carries an
/// at-least-once client's key, by which the server recognises a repeated
/// event: see `docs/guarantees.md`.
pub const CLIENT_KEY: &str = "client_key";
