//! `roomcast-bench`: the load generator, the benchmark peers written in Rust
//! (roomcast's own app and the raw "limit" server) and the orchestrator that
//! runs every peer side by side and writes `bench/results/`.
//!
//! The generator speaks WebSocket itself ([`ws`]): server frames are parsed
//! in place from one read buffer and client frames are batched into one
//! write, so a received frame costs little more than its share of a `read`
//! syscall. The app every peer implements is specified in `bench/APP.md`.
//! B4 runs two nodes of a peer on a `redis-server` of its own ([`redis`]).

pub mod app;
pub mod clock;
pub mod contract;
pub mod limit;
pub mod orchestrate;
pub mod payload;
pub mod procfs;
pub mod proto;
pub mod redis;
pub mod report;
pub mod scenario;
pub mod soak;
pub mod stats;
pub mod validate;
pub mod ws;
