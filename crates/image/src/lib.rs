//! The CRIU image format, read and written without trusting the input.
#![forbid(unsafe_code)]

pub mod json;
pub mod proto;
pub mod wire;
