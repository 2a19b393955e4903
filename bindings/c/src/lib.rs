//! libroomcast: roomcast's C API (`include/roomcast.h`, generated from this
//! crate by cbindgen). Handles are opaque, every function returns a
//! `roomcast_result`, no panic crosses the boundary. The FFI is the one
//! place of the workspace that needs `unsafe`: each use says why it holds.
#![allow(unsafe_code, non_camel_case_types)]

mod client;
mod config;
mod event;
mod ffi;
mod result;
mod server;
mod server_cluster;
