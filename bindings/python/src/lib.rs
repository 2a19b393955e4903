//! `roomcast._native`: the Python face of roomcast. This crate converts
//! types, maps errors and bridges the tokio runtime to asyncio; everything
//! else happens in the core.

use pyo3::prelude::*;

mod bridge;
mod client;
mod convert;
mod errors;
mod server;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<server::Server>()?;
    m.add_class::<client::Client>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
