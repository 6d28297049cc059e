//! The CRIU image format, read and written without trusting the input.
//!
//! - [`wire`]: protobuf wire primitives with bounds checks.
//! - [`proto`]: the `message!` macro: typed messages with crit-compatible JSON.
//! - [`messages`]: CRIU's image messages.
//! - [`kinds`]: image types (magic, file name, entry layout).
//! - [`file`]: image file framing, with caps on every length.
//! - [`json`]: JSON text exactly as crit prints it.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod convert;
pub mod file;
pub mod json;
pub mod kinds;
pub mod messages;
pub mod proto;
pub mod wire;
