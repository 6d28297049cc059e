//! One module per kind of process state, each with its dump and restore
//! halves side by side.

pub mod anon;
pub mod attrs;
pub mod files;
pub mod locks;
pub mod mm;
pub mod regs;
pub mod seccomp;
pub mod signals;
pub mod sockets;
pub mod timers;
pub mod tty;
