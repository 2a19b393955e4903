//! The limit server of the benchmarks (see `roomcast_bench::limit`).
//!
//! Multi-thread tokio runtime like the roomcast peer; pinned to one core by
//! the orchestrator, it runs one worker thread.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = roomcast_bench::contract::bind_from_env().await?;
        roomcast_bench::contract::announce(listener.local_addr()?)?;
        let server = tokio::spawn(roomcast_bench::limit::serve(listener));
        roomcast_bench::contract::wait_for_exit().await;
        server.abort();
        anyhow::Ok(())
    })?;
    std::process::exit(0)
}
