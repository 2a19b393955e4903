//! Sans-I/O wire codecs: pure functions from bytes to messages and back.

pub mod engineio;
pub mod native;
pub mod socketio;
