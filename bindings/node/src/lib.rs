//! The napi-rs addon behind the `roomcast` npm package. Rust owns the
//! protocol, rooms, broadcasts and acks; `node/index.js` and
//! `node/client.js` only shape this API like socket.io's.

mod client;
mod cluster;
mod errors;
mod handler;
mod server;
mod value;
