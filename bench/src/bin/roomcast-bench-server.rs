//! The roomcast peer of the benchmarks: the app of `bench/APP.md` on
//! roomcast's Rust API, Socket.IO at `/socket.io/` and the JSON protocol at
//! `/ws` on one port.
//!
//! It uses tokio's multi-thread runtime, as an application would; the
//! orchestrator pins the process to one core with `taskset`, and tokio sizes
//! its worker pool from the CPU affinity mask, so it runs one worker thread.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = roomcast_bench::app::build()?;
        let listener = roomcast_bench::contract::bind_from_env().await?;
        let addr = server.serve(listener)?;
        roomcast_bench::contract::announce(addr)?;
        roomcast_bench::contract::wait_for_exit().await;
        anyhow::Ok(())
    })?;
    // Connections may still be open: leave without a graceful shutdown.
    std::process::exit(0)
}
