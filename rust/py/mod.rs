//! The binding layer: Python arguments in, Rust options to the core, Rust results and errors out.
//! Every call into the core runs with the GIL released (see `common::run_job`).

pub mod common;
pub mod extract;
pub mod fileinfo;
pub mod hash;
pub mod prefetch;
pub mod scan;
pub mod sheet;
pub mod stream;
