//! Native core of parallel-file-processor.
//!
//! The capability modules are plain Rust: they take Rust options, return `Result`s and know
//! nothing of Python, so `cargo test` covers them. `py` (built with the `python` feature, which
//! maturin turns on) is the thin binding layer; the `#[pymodule]` below only registers it.

pub mod dupes;
pub mod error;
pub mod extract;
pub mod hash;
pub mod mapped;
pub mod output;
pub mod pool;
pub mod prefetch;
pub mod progress;
pub mod scan;
pub mod sheet;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    use pyo3::types::PyModuleMethods;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    py::fileinfo::register(m)?;
    py::scan::register(m)?;
    py::stream::register(m)?;
    py::prefetch::register(m)?;
    py::hash::register(m)?;
    py::extract::register(m)?;
    py::sheet::register(m)?;
    Ok(())
}
