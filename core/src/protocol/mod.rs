//! Sans-I/O wire codecs: pure functions from bytes to messages and back.

pub mod native;
