//! End-to-end tests of the `stasis` binary: one test binary for the whole
//! suite, so the build links once.
//!
//! Tests that need root (ptrace of other processes, clone3 with set_tid)
//! check for it through [`util::require_root`]: outside CI they are skipped
//! with a message, in CI (`CI=true`) a missing capability fails the test.

mod checkpoint;
mod faults;
mod sockets;
mod trees;
mod harness;
mod images;
mod util;
