//! Sockets and the kernel objects behind descriptors: each workload
//! proves after restore that its queues read back, its connections carry
//! data both ways and its events still arrive.

use crate::harness::*;

#[test]
fn unix_sockets_keep_queues_names_and_connections() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("unix", &[]);
    w.dump_restore();
    w.finish();
}

#[test]
fn eventfd_epoll_signalfd_timerfd_inotify_memfd_keep_working() {
    if !crate::util::require_root() {
        return;
    }
    let _g = serial();
    let mut w = Workload::start("anon", &[]);
    w.dump_restore();
    w.finish();
}
