//! Sans-I/O wire codecs: pure functions from bytes to messages and back.

pub mod engineio;
pub mod native;
pub mod socketio;

/// The handshake query parameter (both protocols) that carries an
/// at-least-once client's key, by which the server recognises a repeated
/// event: see `docs/guarantees.md`.
pub const CLIENT_KEY: &str = "client_key";

/// The longest event or room name, in bytes: names are map keys held per
/// socket and sent with every message, so a client must not make them huge.
pub const MAX_NAME_BYTES: usize = 256;
