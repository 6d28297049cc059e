//! CRIU's image messages.
//!
//! Field numbers, types, labels and crit display options follow the
//! definitions in CRIU's `images/*.proto` (CRIU 4.x); the declarations are
//! our own. Messages for other architectures' registers are left out: their
//! fields in `CoreEntry` are skipped as unknown when present. Sections are
//! named after the CRIU `.proto` file that defines the same messages.

#[allow(unused_imports)]
use crate::proto::{Bool, Bytes, Enum, Fixed32, Fixed64, Int32, Int64, Msg, Sint32, Sint64, Str, Uint32, Uint64};
use crate::{message, proto_enum};

proto_enum! {
    pub enum UserX86RegsMode { NATIVE = 1, COMPAT = 2 }
    pub enum March { UNKNOWN = 0, X86_64 = 1, ARM = 2, AARCH64 = 3, PPC64 = 4, S390 = 5, MIPS = 6, LOONGARCH64 = 7, RISCV64 = 8 }
    pub enum SeccompMode { disabled = 0, strict = 1, filter = 2 }
    pub enum Vendor { UNKNOWN = 0, INTEL = 1, AMD = 2 }
    pub enum Endianness { BIGENDIAN = 0, LITTLEENDIAN = 1 }
    pub enum SkShutdown { NONE = 0, READ = 1, WRITE = 2, BOTH = 3 }
    pub enum FhEntrySizes { min_entries = 16 }
    pub enum MarkType { INODE = 1, MOUNT = 2 }
    pub enum TtyType { UNKNOWN = 0, PTY = 1, CONSOLE = 2, VT = 3, CTTY = 4, EXT_TTY = 5, SERIAL = 6 }
    pub enum FdTypes { UND = 0, REG = 1, PIPE = 2, FIFO = 3, INETSK = 4, UNIXSK = 5, EVENTFD = 6, EVENTPOLL = 7, INOTIFY = 8, SIGNALFD = 9, PACKETSK = 10, TTY = 11, FANOTIFY = 12, NETLINKSK = 13, NS = 14, TUNF = 15, EXT = 16, TIMERFD = 17, MEMFD = 18, BPFMAP = 19, PIDFD = 20, CTL_TTY = 65534, AUTOFS_PIPE = 65535 }
    pub enum Lsmtype { NO_LSM = 0, SELINUX = 1, APPARMOR = 2 }
    pub enum Fstype { UNSUPPORTED = 0, PROC = 1, SYSFS = 2, DEVTMPFS = 3, BINFMT_MISC = 4, TMPFS = 5, DEVPTS = 6, SIMFS = 7, PSTORE = 8, SECURITYFS = 9, FUSECTL = 10, DEBUGFS = 11, CGROUP = 12, AUFS = 13, MQUEUE = 14, FUSE = 15, AUTO = 16, OVERLAYFS = 17, AUTOFS = 18, TRACEFS = 19, CGROUP2 = 23 }
    pub enum SysctlType { CTL_STR = 5, CTL_32 = 6 }
    pub enum NdType { LOOPBACK = 1, VETH = 2, TUN = 3, EXTLINK = 4, VENET = 5, BRIDGE = 6, MACVLAN = 7, SIT = 8 }
    pub enum RemapType { LINKED = 0, GHOST = 1, PROCFS = 2 }
}

// apparmor.proto
message! {
    pub struct AaPolicy {
        1 name: required Str,
        2 blob: required Bytes,
    }

    pub struct AaNamespace {
        1 name: required Str,
        2 policies: repeated Msg<AaPolicy>,
        3 namespaces: repeated Msg<AaNamespace>,
    }

    pub struct ApparmorEntry {
        1 namespaces: repeated Msg<AaNamespace>,
    }
}

// autofs.proto
message! {
    pub struct AutofsEntry {
        1 fd: required Int32,
        2 pgrp: required Int32,
        3 timeout: required Int32,
        4 minproto: required Int32,
        5 maxproto: required Int32,
        6 mode: required Int32,
        7 uid: optional Int32,
        8 gid: optional Int32,
        9 read_fd: optional Int32,
    }
}

// binfmt-misc.proto
message! {
    pub struct BinfmtMiscEntry {
        1 name: required Str,
        2 enabled: required Bool,
        3 interpreter: required Str,
        4 flags: optional Str,
        5 extension: optional Str,
        6 magic: optional Str,
        7 mask: optional Str,
        8 offset: optional Int32,
    }
}

// bpfmap-data.proto
message! {
    pub struct BpfmapDataEntry {
        1 map_id: required Uint32,
        2 keys_bytes: required Uint32,
        3 values_bytes: required Uint32,
        4 count: required Uint32,
    }
}

// fown.proto
message! {
    pub struct FownEntry {
        1 uid: required Uint32,
        2 euid: required Uint32,
        3 signum: required Uint32,
        4 pid_type: required Uint32,
        5 pid: required Uint32,
    }
}

// bpfmap-file.proto
message! {
    pub struct BpfmapFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [flags("rfile.flags")],
        3 pos: required Uint64,
        4 fown: required Msg<FownEntry>,
        5 map_type: required Uint32,
        6 key_size: required Uint32,
        7 value_size: required Uint32,
        8 map_id: required Uint32,
        9 max_entries: required Uint32,
        10 map_flags: required Uint32,
        11 memlock: required Uint64,
        12 frozen: required Bool,
        13 map_name: required Str,
        14 ifindex: required Uint32,
        15 mnt_id: optional Sint32,
        16 map_extra: optional Uint64,
    }
}

// cgroup.proto
message! {
    pub struct CgroupPerms {
        1 mode: required Uint32,
        2 uid: required Uint32,
        3 gid: required Uint32,
    }

    pub struct CgroupPropEntry {
        1 name: required Str,
        2 value: required Str,
        3 perms: optional Msg<CgroupPerms>,
    }

    pub struct CgroupDirEntry {
        1 dir_name: required Str,
        2 children: repeated Msg<CgroupDirEntry>,
        3 properties: repeated Msg<CgroupPropEntry>,
        4 dir_perms: optional Msg<CgroupPerms>,
    }

    pub struct CgControllerEntry {
        1 cnames: repeated Str,
        2 dirs: repeated Msg<CgroupDirEntry>,
        3 is_threaded: optional Bool,
    }

    pub struct CgMemberEntry {
        1 name: required Str,
        2 path: required Str,
        3 cgns_prefix: optional Uint32,
    }

    pub struct CgSetEntry {
        1 id: required Uint32,
        2 ctls: repeated Msg<CgMemberEntry>,
    }

    pub struct CgroupEntry {
        1 sets: repeated Msg<CgSetEntry>,
        2 controllers: repeated Msg<CgControllerEntry>,
    }
}

// core-x86.proto
message! {
    pub struct UserX86RegsEntry {
        1 r15: required Uint64,
        2 r14: required Uint64,
        3 r13: required Uint64,
        4 r12: required Uint64,
        5 bp: required Uint64,
        6 bx: required Uint64,
        7 r11: required Uint64,
        8 r10: required Uint64,
        9 r9: required Uint64,
        10 r8: required Uint64,
        11 ax: required Uint64,
        12 cx: required Uint64,
        13 dx: required Uint64,
        14 si: required Uint64,
        15 di: required Uint64,
        16 orig_ax: required Uint64,
        17 ip: required Uint64,
        18 cs: required Uint64,
        19 flags: required Uint64,
        20 sp: required Uint64,
        21 ss: required Uint64,
        22 fs_base: required Uint64,
        23 gs_base: required Uint64,
        24 ds: required Uint64,
        25 es: required Uint64,
        26 fs: required Uint64,
        27 gs: required Uint64,
        28 mode: optional Enum<UserX86RegsMode>,
    }

    pub struct UserX86CetEntry {
        1 cet: required Uint64 [hex],
        2 ssp: required Uint64 [hex],
    }

    pub struct UserX86XsaveEntry {
        1 xstate_bv: required Uint64,
        2 ymmh_space: repeated Uint32,
        3 bndreg_state: repeated Uint64,
        4 bndcsr_state: repeated Uint64,
        5 opmask_reg: repeated Uint64,
        6 zmm_upper: repeated Uint64,
        7 hi16_zmm: repeated Uint64,
        8 pkru: repeated Uint32,
        9 cet: optional Msg<UserX86CetEntry>,
    }

    pub struct UserX86FpregsEntry {
        1 cwd: required Uint32,
        2 swd: required Uint32,
        3 twd: required Uint32,
        4 fop: required Uint32,
        5 rip: required Uint64,
        6 rdp: required Uint64,
        7 mxcsr: required Uint32,
        8 mxcsr_mask: required Uint32,
        9 st_space: repeated Uint32,
        10 xmm_space: repeated Uint32,
        11 padding: repeated Uint32,
        13 xsave: optional Msg<UserX86XsaveEntry>,
    }

    pub struct UserDescT {
        1 entry_number: required Uint32,
        2 base_addr: required Uint32,
        3 limit: required Uint32,
        4 seg_32bit: required Bool,
        5 contents_h: required Bool,
        6 contents_l: required Bool,
        7 read_exec_only: required Bool,
        8 limit_in_pages: required Bool,
        9 seg_not_present: required Bool,
        10 usable: required Bool,
    }

    pub struct ThreadInfoX86 {
        1 clear_tid_addr: required Uint64 [hex],
        2 gpregs: required Msg<UserX86RegsEntry> [hex],
        3 fpregs: required Msg<UserX86FpregsEntry>,
        4 tls: repeated Msg<UserDescT>,
    }
}

// rlimit.proto
message! {
    pub struct RlimitEntry {
        1 cur: required Uint64,
        2 max: required Uint64,
    }
}

// timer.proto
message! {
    pub struct ItimerEntry {
        1 isec: required Uint64,
        2 iusec: required Uint64,
        3 vsec: required Uint64,
        4 vusec: required Uint64,
    }

    pub struct PosixTimerEntry {
        1 it_id: required Uint32,
        2 clock_id: required Uint32,
        3 si_signo: required Uint32,
        4 it_sigev_notify: required Uint32,
        5 sival_ptr: required Uint64,
        6 overrun: required Uint32,
        7 isec: required Uint64,
        8 insec: required Uint64,
        9 vsec: required Uint64,
        10 vnsec: required Uint64,
        11 notify_thread_id: optional Int32,
    }

    pub struct TaskTimersEntry {
        1 real: required Msg<ItimerEntry>,
        2 virt: required Msg<ItimerEntry>,
        3 prof: required Msg<ItimerEntry>,
        4 posix: repeated Msg<PosixTimerEntry>,
    }
}

// creds.proto
message! {
    pub struct CredsEntry {
        1 uid: required Uint32,
        2 gid: required Uint32,
        3 euid: required Uint32,
        4 egid: required Uint32,
        5 suid: required Uint32,
        6 sgid: required Uint32,
        7 fsuid: required Uint32,
        8 fsgid: required Uint32,
        9 cap_inh: repeated Uint32,
        10 cap_prm: repeated Uint32,
        11 cap_eff: repeated Uint32,
        12 cap_bnd: repeated Uint32,
        13 secbits: required Uint32,
        14 groups: repeated Uint32,
        15 lsm_profile: optional Str,
        16 lsm_sockcreate: optional Str,
        17 apparmor_data: optional Bytes,
        18 no_new_privs: optional Uint32,
        19 cap_amb: repeated Uint32,
    }
}

// sa.proto
message! {
    pub struct SaEntry {
        1 sigaction: required Uint64 [hex],
        2 flags: required Uint64 [hex],
        3 restorer: required Uint64 [hex],
        4 mask: required Uint64 [hex],
        5 compat_sigaction: optional Bool,
        6 mask_extended: optional Uint64 [hex],
    }
}

// siginfo.proto
message! {
    pub struct SiginfoEntry {
        1 siginfo: required Bytes,
    }

    pub struct SignalQueueEntry {
        1 signals: repeated Msg<SiginfoEntry>,
    }
}

// rseq.proto
message! {
    pub struct RseqEntry {
        1 rseq_abi_pointer: required Uint64,
        2 rseq_abi_size: required Uint32,
        3 signature: required Uint32,
        4 rseq_cs_pointer: optional Uint64,
    }
}

// core.proto
message! {
    pub struct TaskCoreEntry {
        1 task_state: required Uint32 [dict("gen")],
        2 exit_code: required Uint32,
        3 personality: required Uint32,
        4 flags: required Uint32,
        5 blk_sigset: required Uint64 [hex],
        6 comm: required Str,
        7 timers: optional Msg<TaskTimersEntry>,
        8 rlimits: optional Msg<TaskRlimitsEntry>,
        9 cg_set: optional Uint32,
        10 signals_s: optional Msg<SignalQueueEntry>,
        11 old_seccomp_mode: optional Enum<SeccompMode>,
        12 old_seccomp_filter: optional Uint32,
        13 loginuid: optional Uint32,
        14 oom_score_adj: optional Int32,
        15 sigactions: repeated Msg<SaEntry>,
        18 child_subreaper: optional Bool,
        20 blk_sigset_extended: optional Uint64 [hex],
        21 stop_signo: optional Uint32,
        22 membarrier_registration_mask: optional Uint32 [hex],
    }

    pub struct TaskKobjIdsEntry {
        1 vm_id: required Uint32,
        2 files_id: required Uint32,
        3 fs_id: required Uint32,
        4 sighand_id: required Uint32,
        5 pid_ns_id: optional Uint32,
        6 net_ns_id: optional Uint32,
        7 ipc_ns_id: optional Uint32,
        8 uts_ns_id: optional Uint32,
        9 mnt_ns_id: optional Uint32,
        10 user_ns_id: optional Uint32,
        11 cgroup_ns_id: optional Uint32,
        12 time_ns_id: optional Uint32,
    }

    pub struct ThreadSasEntry {
        1 ss_sp: required Uint64,
        2 ss_size: required Uint64,
        3 ss_flags: required Uint32,
    }

    pub struct ThreadCoreEntry {
        1 futex_rla: required Uint64,
        2 futex_rla_len: required Uint32,
        3 sched_nice: optional Sint32,
        4 sched_policy: optional Uint32,
        5 sched_prio: optional Uint32,
        6 blk_sigset: optional Uint64,
        7 sas: optional Msg<ThreadSasEntry>,
        8 pdeath_sig: optional Uint32,
        9 signals_p: optional Msg<SignalQueueEntry>,
        10 creds: optional Msg<CredsEntry>,
        11 seccomp_mode: optional Enum<SeccompMode>,
        12 seccomp_filter: optional Uint32,
        13 comm: optional Str,
        14 blk_sigset_extended: optional Uint64,
        15 rseq_entry: optional Msg<RseqEntry>,
        16 cg_set: optional Uint32,
    }

    pub struct TaskRlimitsEntry {
        1 rlimits: repeated Msg<RlimitEntry>,
    }

    pub struct CoreEntry {
        1 mtype: required Enum<March>,
        2 thread_info: optional Msg<ThreadInfoX86>,
        3 tc: optional Msg<TaskCoreEntry>,
        4 ids: optional Msg<TaskKobjIdsEntry>,
        5 thread_core: optional Msg<ThreadCoreEntry>,
    }
}

// cpuinfo.proto
message! {
    pub struct CpuinfoX86Entry {
        1 vendor_id: required Enum<Vendor>,
        2 cpu_family: required Uint32,
        3 model: required Uint32,
        4 stepping: required Uint32,
        5 capability_ver: required Uint32,
        6 capability: repeated Uint32,
        7 model_id: optional Str,
        8 xfeatures_mask: optional Uint64,
        9 xsave_size: optional Uint32,
        10 xsave_size_max: optional Uint32,
    }

    pub struct CpuinfoPpc64Entry {
        1 endian: required Enum<Endianness>,
        2 hwcap: repeated Uint64,
    }

    pub struct CpuinfoS390Entry {
        2 hwcap: repeated Uint64,
    }

    pub struct CpuinfoEntry {
        1 x86_entry: repeated Msg<CpuinfoX86Entry>,
        2 ppc64_entry: repeated Msg<CpuinfoPpc64Entry>,
        3 s390_entry: repeated Msg<CpuinfoS390Entry>,
    }
}

// eventfd.proto
message! {
    pub struct EventfdFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32,
        3 fown: required Msg<FownEntry>,
        4 counter: required Uint64,
    }
}

// eventpoll.proto
message! {
    pub struct EventpollTfdEntry {
        1 id: required Uint32,
        2 tfd: required Uint32,
        3 events: required Uint32,
        4 data: required Uint64,
        5 dev: optional Uint32,
        6 inode: optional Uint64,
        7 pos: optional Uint64,
    }

    pub struct EventpollFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32,
        3 fown: required Msg<FownEntry>,
        4 tfd: repeated Msg<EventpollTfdEntry>,
    }
}

// ext-file.proto
message! {
    pub struct ExtFileEntry {
        1 id: required Uint32,
        5 fown: required Msg<FownEntry>,
    }
}

// regfile.proto
message! {
    pub struct RegFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [flags("rfile.flags")],
        3 pos: required Uint64,
        5 fown: required Msg<FownEntry>,
        6 name: required Str,
        7 mnt_id: optional Sint32,
        8 size: optional Uint64,
        9 ext: optional Bool,
        10 mode: optional Uint32,
        11 build_id: repeated Uint32,
        12 checksum: optional Uint32,
        13 checksum_config: optional Uint32,
        14 checksum_parameter: optional Uint32,
    }
}

// sk-opts.proto
message! {
    pub struct SkOptsEntry {
        1 so_sndbuf: required Uint32,
        2 so_rcvbuf: required Uint32,
        3 so_snd_tmo_sec: required Uint64,
        4 so_snd_tmo_usec: required Uint64,
        5 so_rcv_tmo_sec: required Uint64,
        6 so_rcv_tmo_usec: required Uint64,
        7 reuseaddr: optional Bool,
        8 so_priority: optional Uint32,
        9 so_rcvlowat: optional Uint32,
        10 so_mark: optional Uint32,
        11 so_passcred: optional Bool,
        12 so_passsec: optional Bool,
        13 so_dontroute: optional Bool,
        14 so_no_check: optional Bool,
        15 so_bound_dev: optional Str,
        16 so_filter: repeated Fixed64,
        17 so_reuseport: optional Bool,
        18 so_broadcast: optional Bool,
        19 so_keepalive: optional Bool,
        20 tcp_keepcnt: optional Uint32,
        21 tcp_keepidle: optional Uint32,
        22 tcp_keepintvl: optional Uint32,
        23 so_oobinline: optional Uint32,
        24 so_linger: optional Uint32,
        25 so_buf_lock: optional Uint32,
    }
}

// tcp-stream.proto
message! {
    pub struct TcpOptsEntry {
        1 cork: optional Bool,
        2 nodelay: optional Bool,
        3 keepcnt: optional Uint32,
        4 keepidle: optional Uint32,
        5 keepintvl: optional Uint32,
    }

    pub struct TcpStreamEntry {
        1 inq_len: required Uint32,
        2 inq_seq: required Uint32,
        3 outq_len: required Uint32,
        4 outq_seq: required Uint32,
        5 opt_mask: required Uint32 [hex],
        6 snd_wscale: required Uint32,
        7 mss_clamp: required Uint32,
        8 rcv_wscale: optional Uint32,
        9 timestamp: optional Uint32,
        10 cork: optional Bool,
        11 nodelay: optional Bool,
        12 unsq_len: optional Uint32,
        13 snd_wl1: optional Uint32,
        14 snd_wnd: optional Uint32,
        15 max_window: optional Uint32,
        16 rcv_wnd: optional Uint32,
        17 rcv_wup: optional Uint32,
    }
}

// sk-inet.proto
message! {
    pub struct IpOptsRawEntry {
        1 hdrincl: optional Bool,
        2 nodefrag: optional Bool,
        3 checksum: optional Bool,
        4 icmpv_filter: repeated Uint32,
    }

    pub struct IpOptsEntry {
        1 freebind: optional Bool,
        4 raw: optional Msg<IpOptsRawEntry>,
        5 pktinfo: optional Bool,
        6 tos: optional Uint32,
        7 ttl: optional Uint32,
    }

    pub struct InetSkEntry {
        1 id: required Uint32,
        2 ino: required Uint32,
        3 family: required Uint32 [dict("sk")],
        4 r#type: required Uint32 [dict("sk")],
        5 proto: required Uint32 [dict("sk")],
        6 state: required Uint32 [dict("sk")],
        7 src_port: required Uint32,
        8 dst_port: required Uint32,
        9 flags: required Uint32 [hex],
        10 backlog: required Uint32,
        11 src_addr: repeated Uint32 [ipadd],
        12 dst_addr: repeated Uint32 [ipadd],
        13 fown: required Msg<FownEntry>,
        14 opts: required Msg<SkOptsEntry>,
        15 v6only: optional Bool,
        16 ip_opts: optional Msg<IpOptsEntry>,
        17 ifname: optional Str,
        18 ns_id: optional Uint32,
        19 shutdown: optional Enum<SkShutdown>,
        20 tcp_opts: optional Msg<TcpOptsEntry>,
    }
}

// ns.proto
message! {
    pub struct NsFileEntry {
        1 id: required Uint32,
        2 ns_id: required Uint32,
        3 ns_cflag: required Uint32,
        4 flags: required Uint32,
    }
}

// packet-sock.proto
message! {
    pub struct PacketMclist {
        1 index: required Uint32,
        2 r#type: required Uint32,
        3 addr: required Bytes,
    }

    pub struct PacketRing {
        1 block_size: required Uint32,
        2 block_nr: required Uint32,
        3 frame_size: required Uint32,
        4 frame_nr: required Uint32,
        5 retire_tmo: required Uint32,
        6 sizeof_priv: required Uint32,
        7 features: required Uint32,
    }

    pub struct PacketSockEntry {
        1 id: required Uint32,
        2 r#type: required Uint32,
        3 protocol: required Uint32,
        4 flags: required Uint32 [hex],
        5 ifindex: required Uint32,
        6 fown: required Msg<FownEntry>,
        7 opts: required Msg<SkOptsEntry>,
        8 version: required Uint32,
        9 reserve: required Uint32,
        10 aux_data: required Bool,
        11 orig_dev: required Bool,
        12 vnet_hdr: required Bool,
        13 loss: required Bool,
        14 timestamp: required Uint32,
        15 copy_thresh: required Uint32,
        16 mclist: repeated Msg<PacketMclist>,
        17 fanout: optional Uint32,
        18 rx_ring: optional Msg<PacketRing>,
        19 tx_ring: optional Msg<PacketRing>,
        20 ns_id: optional Uint32,
    }
}

// sk-netlink.proto
message! {
    pub struct NetlinkSkEntry {
        1 id: required Uint32,
        2 ino: required Uint32,
        3 protocol: required Uint32,
        4 state: required Uint32,
        6 flags: required Uint32 [hex],
        7 portid: required Uint32,
        8 groups: repeated Uint32,
        9 dst_portid: required Uint32,
        10 dst_group: required Uint32,
        11 fown: required Msg<FownEntry>,
        12 opts: required Msg<SkOptsEntry>,
        13 ns_id: optional Uint32,
    }
}

// signalfd.proto
message! {
    pub struct SignalfdEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [hex],
        3 fown: required Msg<FownEntry>,
        4 sigmask: required Uint64 [hex],
    }
}

// tun.proto
message! {
    pub struct TunfileEntry {
        1 id: required Uint32,
        2 netdev: optional Str,
        3 detached: optional Bool,
        4 ns_id: optional Uint32,
    }

    pub struct TunLinkEntry {
        1 flags: required Uint32 [hex],
        2 owner: required Int32,
        3 group: required Int32,
        4 vnethdr: required Uint32,
        5 sndbuf: required Uint32,
    }
}

// timerfd.proto
message! {
    pub struct TimerfdEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [hex],
        3 fown: required Msg<FownEntry>,
        4 clockid: required Uint32,
        5 ticks: required Uint64,
        6 settime_flags: required Uint32 [hex],
        7 vsec: required Uint64,
        8 vnsec: required Uint64,
        9 isec: required Uint64,
        10 insec: required Uint64,
        // stasis extension (CRIU leaves it unset and ignores it): for an
        // absolute CLOCK_REALTIME timer, its wall-clock due time in ns.
        1000 due_realtime_ns: optional Uint64,
    }
}

// fh.proto
message! {
    pub struct FhEntry {
        1 bytes: required Uint32,
        2 r#type: required Uint32,
        3 handle: repeated Uint64,
        4 path: optional Str,
        5 mnt_id: optional Uint32,
    }

    pub struct IrmapCacheEntry {
        1 dev: required Uint32 [dev, odev],
        2 inode: required Uint64,
        3 path: required Str,
    }
}

// fsnotify.proto
message! {
    pub struct InotifyWdEntry {
        1 id: required Uint32,
        2 i_ino: required Uint64,
        3 mask: required Uint32 [hex],
        4 ignored_mask: required Uint32 [hex],
        5 s_dev: required Uint32 [dev],
        6 wd: required Uint32,
        7 f_handle: required Msg<FhEntry>,
    }

    pub struct InotifyFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [hex],
        4 fown: required Msg<FownEntry>,
        5 wd: repeated Msg<InotifyWdEntry>,
    }

    pub struct FanotifyInodeMarkEntry {
        1 i_ino: required Uint64,
        2 f_handle: required Msg<FhEntry>,
    }

    pub struct FanotifyMountMarkEntry {
        1 mnt_id: required Uint32,
        2 path: optional Str,
    }

    pub struct FanotifyMarkEntry {
        1 id: required Uint32,
        2 r#type: required Enum<MarkType>,
        3 mflags: required Uint32 [hex],
        4 mask: required Uint32 [hex],
        5 ignored_mask: required Uint32 [hex],
        6 s_dev: required Uint32 [dev],
        7 ie: optional Msg<FanotifyInodeMarkEntry>,
        8 me: optional Msg<FanotifyMountMarkEntry>,
    }

    pub struct FanotifyFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [hex],
        3 fown: required Msg<FownEntry>,
        4 faflags: required Uint32 [hex],
        5 evflags: required Uint32 [hex],
        6 mark: repeated Msg<FanotifyMarkEntry>,
    }
}

// sk-unix.proto
message! {
    pub struct FilePermsEntry {
        1 mode: required Uint32,
        2 uid: required Uint32,
        3 gid: required Uint32,
    }

    pub struct UnixSkEntry {
        1 id: required Uint32,
        2 ino: required Uint32,
        3 r#type: required Uint32 [dict("sk")],
        4 state: required Uint32 [dict("sk")],
        5 flags: required Uint32 [hex],
        6 uflags: required Uint32 [hex],
        7 backlog: required Uint32,
        8 peer: required Uint32,
        9 fown: required Msg<FownEntry>,
        10 opts: required Msg<SkOptsEntry>,
        11 name: required Bytes [unix_name],
        12 shutdown: optional Enum<SkShutdown>,
        13 file_perms: optional Msg<FilePermsEntry>,
        14 name_dir: optional Str,
        15 deleted: optional Bool,
        16 ns_id: optional Uint32,
        17 mnt_id: optional Sint32,
    }
}

// fifo.proto
message! {
    pub struct FifoEntry {
        1 id: required Uint32,
        2 pipe_id: required Uint32,
        3 regf_id: optional Uint32,
    }
}

// pipe.proto
message! {
    pub struct PipeEntry {
        1 id: required Uint32,
        2 pipe_id: required Uint32,
        3 flags: required Uint32 [hex],
        4 fown: required Msg<FownEntry>,
    }
}

// pidfd.proto
message! {
    pub struct PidfdEntry {
        1 id: required Uint32,
        2 ino: required Uint32,
        3 flags: required Uint32,
        4 nspid: required Int32,
        5 fown: required Msg<FownEntry>,
    }
}

// tty.proto
message! {
    pub struct WinsizeEntry {
        1 ws_row: required Uint32,
        2 ws_col: required Uint32,
        3 ws_xpixel: required Uint32,
        4 ws_ypixel: required Uint32,
    }

    pub struct TermiosEntry {
        1 c_iflag: required Uint32,
        2 c_oflag: required Uint32,
        3 c_cflag: required Uint32,
        4 c_lflag: required Uint32,
        5 c_line: required Uint32,
        6 c_ispeed: required Uint32,
        7 c_ospeed: required Uint32,
        8 c_cc: repeated Uint32,
    }

    pub struct TtyPtyEntry {
        1 index: required Uint32,
    }

    pub struct TtyDataEntry {
        1 tty_id: required Uint32,
        2 data: required Bytes,
    }

    pub struct TtyInfoEntry {
        1 id: required Uint32,
        2 r#type: required Enum<TtyType>,
        3 locked: required Bool,
        4 exclusive: required Bool,
        5 packet_mode: required Bool,
        6 sid: required Uint32,
        7 pgrp: required Uint32,
        8 rdev: required Uint32,
        9 termios: optional Msg<TermiosEntry>,
        10 termios_locked: optional Msg<TermiosEntry>,
        11 winsize: optional Msg<WinsizeEntry>,
        12 pty: optional Msg<TtyPtyEntry>,
        13 dev: optional Uint32,
        14 uid: optional Uint32,
        15 gid: optional Uint32,
    }

    pub struct TtyFileEntry {
        1 id: required Uint32,
        2 tty_info_id: required Uint32,
        3 flags: required Uint32 [hex],
        4 fown: required Msg<FownEntry>,
        6 regf_id: optional Uint32,
    }
}

// memfd.proto
message! {
    pub struct MemfdFileEntry {
        1 id: required Uint32,
        2 flags: required Uint32 [flags("rfile.flags")],
        3 pos: required Uint64,
        4 fown: required Msg<FownEntry>,
        5 inode_id: required Uint32,
    }

    pub struct MemfdInodeEntry {
        1 name: required Str,
        2 uid: required Uint32,
        3 gid: required Uint32,
        4 size: required Uint64,
        5 shmid: required Uint32,
        6 seals: required Uint32 [flags("seals.flags")],
        7 inode_id: required Uint64,
        8 hugetlb_flag: optional Uint32,
        9 mode: optional Uint32,
    }
}

// fdinfo.proto
message! {
    pub struct FdinfoEntry {
        1 id: required Uint32,
        2 flags: required Uint32,
        3 r#type: required Enum<FdTypes>,
        4 fd: required Uint32,
        5 xattr_security_selinux: optional Str,
    }

    pub struct FileEntry {
        1 r#type: required Enum<FdTypes>,
        2 id: required Uint32,
        3 reg: optional Msg<RegFileEntry>,
        4 isk: optional Msg<InetSkEntry>,
        5 nsf: optional Msg<NsFileEntry>,
        6 psk: optional Msg<PacketSockEntry>,
        7 nlsk: optional Msg<NetlinkSkEntry>,
        8 efd: optional Msg<EventfdFileEntry>,
        9 epfd: optional Msg<EventpollFileEntry>,
        10 sgfd: optional Msg<SignalfdEntry>,
        11 tunf: optional Msg<TunfileEntry>,
        12 tfd: optional Msg<TimerfdEntry>,
        13 ify: optional Msg<InotifyFileEntry>,
        14 ffy: optional Msg<FanotifyFileEntry>,
        15 ext: optional Msg<ExtFileEntry>,
        16 usk: optional Msg<UnixSkEntry>,
        17 fifo: optional Msg<FifoEntry>,
        18 pipe: optional Msg<PipeEntry>,
        19 tty: optional Msg<TtyFileEntry>,
        20 memfd: optional Msg<MemfdFileEntry>,
        21 bpf: optional Msg<BpfmapFileEntry>,
        22 pidfd: optional Msg<PidfdEntry>,
    }
}

// file-lock.proto
message! {
    pub struct FileLockEntry {
        1 flag: required Uint32,
        2 r#type: required Uint32,
        3 pid: required Int32,
        4 fd: required Int32,
        5 start: required Int64,
        6 len: required Int64,
    }
}

// fs.proto
message! {
    pub struct FsEntry {
        1 cwd_id: required Uint32,
        2 root_id: required Uint32,
        3 umask: optional Uint32,
    }
}

// time.proto
message! {
    pub struct Timeval {
        1 tv_sec: required Uint64,
        2 tv_usec: required Uint64,
    }
}

// ghost-file.proto
message! {
    pub struct GhostFileEntry {
        1 uid: required Uint32,
        2 gid: required Uint32,
        3 mode: required Uint32,
        4 dev: optional Uint32 [dev],
        5 ino: optional Uint64,
        6 rdev: optional Uint32 [dev, odev],
        7 atim: optional Msg<Timeval>,
        8 mtim: optional Msg<Timeval>,
        9 chunks: optional Bool,
        10 size: optional Uint64,
        11 symlnk_target: optional Str,
    }

    pub struct GhostChunkEntry {
        1 len: required Uint64,
        2 off: required Uint64,
    }
}

// inventory.proto
message! {
    pub struct PluginsEntry {
        12 plugins: repeated Str,
    }

    pub struct InventoryEntry {
        1 img_version: required Uint32,
        2 fdinfo_per_id: optional Bool,
        3 root_ids: optional Msg<TaskKobjIdsEntry>,
        4 ns_per_id: optional Bool,
        5 root_cg_set: optional Uint32,
        6 lsmtype: optional Enum<Lsmtype>,
        8 dump_uptime: optional Uint64,
        9 pre_dump_mode: optional Uint32,
        10 tcp_close: optional Bool,
        11 network_lock_method: optional Uint32,
        12 plugins_entry: optional Msg<PluginsEntry>,
        13 dump_criu_run_id: optional Str,
        14 allow_uprobes: optional Bool,
    }
}

// ipc-desc.proto
message! {
    pub struct IpcDescEntry {
        1 key: required Uint32,
        2 uid: required Uint32,
        3 gid: required Uint32,
        4 cuid: required Uint32,
        5 cgid: required Uint32,
        6 mode: required Uint32,
        7 id: required Uint32,
    }
}

// ipc-msg.proto
message! {
    pub struct IpcMsg {
        1 mtype: required Uint64,
        2 msize: required Uint32,
    }

    pub struct IpcMsgEntry {
        1 desc: required Msg<IpcDescEntry>,
        2 qbytes: required Uint32,
        3 qnum: required Uint32,
    }
}

// ipc-sem.proto
message! {
    pub struct IpcSemEntry {
        1 desc: required Msg<IpcDescEntry>,
        2 nsems: required Uint32,
    }
}

// ipc-shm.proto
message! {
    pub struct IpcShmEntry {
        1 desc: required Msg<IpcDescEntry>,
        2 size: required Uint64,
        3 in_pagemaps: optional Bool,
        4 hugetlb_flag: optional Uint32,
    }
}

// ipc-var.proto
message! {
    pub struct IpcVarEntry {
        1 sem_ctls: repeated Uint32,
        2 msg_ctlmax: required Uint32,
        3 msg_ctlmnb: required Uint32,
        4 msg_ctlmni: required Uint32,
        5 auto_msgmni: required Uint32,
        6 shm_ctlmax: required Uint64,
        7 shm_ctlall: required Uint64,
        8 shm_ctlmni: required Uint32,
        9 shm_rmid_forced: required Uint32,
        10 mq_queues_max: required Uint32,
        11 mq_msg_max: required Uint32,
        12 mq_msgsize_max: required Uint32,
        13 mq_msg_default: optional Uint32,
        14 mq_msgsize_default: optional Uint32,
        15 msg_next_id: optional Uint32,
        16 sem_next_id: optional Uint32,
        17 shm_next_id: optional Uint32,
    }
}

// macvlan.proto
message! {
    pub struct MacvlanLinkEntry {
        1 mode: required Uint32,
        2 flags: optional Uint32,
    }
}

// vma.proto
message! {
    pub struct VmaEntry {
        1 start: required Uint64 [hex],
        2 end: required Uint64 [hex],
        3 pgoff: required Uint64,
        4 shmid: required Uint64,
        5 prot: required Uint32 [flags("mmap.prot")],
        6 flags: required Uint32 [flags("mmap.flags")],
        7 status: required Uint32 [flags("mmap.status")],
        8 fd: required Sint64,
        9 madv: optional Uint64 [hex],
        10 fdflags: optional Uint32 [hex],
    }
}

// mm.proto
message! {
    pub struct AioRingEntry {
        1 id: required Uint64,
        2 nr_req: required Uint32,
        3 ring_len: required Uint32,
    }

    pub struct MmEntry {
        1 mm_start_code: required Uint64 [hex],
        2 mm_end_code: required Uint64 [hex],
        3 mm_start_data: required Uint64 [hex],
        4 mm_end_data: required Uint64 [hex],
        5 mm_start_stack: required Uint64 [hex],
        6 mm_start_brk: required Uint64 [hex],
        7 mm_brk: required Uint64 [hex],
        8 mm_arg_start: required Uint64 [hex],
        9 mm_arg_end: required Uint64 [hex],
        10 mm_env_start: required Uint64 [hex],
        11 mm_env_end: required Uint64 [hex],
        12 exe_file_id: required Uint32,
        13 mm_saved_auxv: repeated Uint64,
        14 vmas: repeated Msg<VmaEntry>,
        15 dumpable: optional Int32,
        16 aios: repeated Msg<AioRingEntry>,
        17 thp_disabled: optional Bool,
    }
}

// mnt.proto
message! {
    pub struct MntEntry {
        1 fstype: required Uint32,
        2 mnt_id: required Uint32,
        3 root_dev: required Uint32 [dev],
        4 parent_mnt_id: required Uint32,
        5 flags: required Uint32 [hex],
        6 root: required Str,
        7 mountpoint: required Str,
        8 source: required Str,
        9 options: required Str,
        10 shared_id: optional Uint32,
        11 master_id: optional Uint32,
        12 with_plugin: optional Bool,
        13 ext_mount: optional Bool,
        14 fsname: optional Str,
        15 internal_sharing: optional Bool,
        16 deleted: optional Bool,
        17 sb_flags: optional Uint32 [hex],
        18 ext_key: optional Str,
    }
}

// sysctl.proto
message! {
    pub struct SysctlEntry {
        1 r#type: required Enum<SysctlType>,
        2 iarg: optional Int32,
        3 sarg: optional Str,
    }
}

// sit.proto
message! {
    pub struct SitEntry {
        1 link: optional Uint32,
        2 local: repeated Uint32 [ipadd],
        3 remote: repeated Uint32 [ipadd],
        4 ttl: optional Uint32,
        5 tos: optional Uint32,
        6 pmtudisc: optional Bool,
        7 proto: optional Uint32,
        8 flags: optional Uint32,
        9 encap_type: optional Uint32,
        10 encap_flags: optional Uint32,
        11 encap_sport: optional Uint32,
        12 encap_dport: optional Uint32,
        13 rd_prefixlen: optional Uint32,
        14 rd_prefix: repeated Uint32 [ipadd],
        15 relay_prefixlen: optional Uint32,
        16 relay_prefix: repeated Uint32 [ipadd],
    }
}

// netdev.proto
message! {
    pub struct NetDeviceEntry {
        1 r#type: required Enum<NdType>,
        2 ifindex: required Uint32,
        3 mtu: required Uint32,
        4 flags: required Uint32 [hex],
        5 name: required Str,
        6 tun: optional Msg<TunLinkEntry>,
        7 address: optional Bytes,
        8 conf: repeated Int32,
        9 conf4: repeated Msg<SysctlEntry>,
        10 conf6: repeated Msg<SysctlEntry>,
        11 macvlan: optional Msg<MacvlanLinkEntry>,
        12 peer_ifindex: optional Uint32,
        13 peer_nsid: optional Uint32,
        14 master: optional Uint32,
        15 sit: optional Msg<SitEntry>,
    }

    pub struct NetnsId {
        1 target_ns_id: required Uint32,
        2 netnsid_value: required Int32,
    }

    pub struct NetnsEntry {
        1 def_conf: repeated Int32,
        2 all_conf: repeated Int32,
        3 def_conf4: repeated Msg<SysctlEntry>,
        4 all_conf4: repeated Msg<SysctlEntry>,
        5 def_conf6: repeated Msg<SysctlEntry>,
        6 all_conf6: repeated Msg<SysctlEntry>,
        7 nsids: repeated Msg<NetnsId>,
        8 ext_key: optional Str,
        9 unix_conf: repeated Msg<SysctlEntry>,
        10 ipv4_sysctl: repeated Msg<SysctlEntry>,
    }
}

// pagemap.proto
message! {
    pub struct PagemapHead {
        1 pages_id: required Uint32,
    }

    pub struct PagemapEntry {
        1 vaddr: required Uint64 [hex],
        2 compat_nr_pages: required Uint32,
        3 in_parent: optional Bool,
        4 flags: optional Uint32 [flags("pmap.flags")],
        5 nr_pages: optional Uint64,
    }
}

// pidns.proto
message! {
    pub struct PidnsEntry {
        1 ext_key: optional Str,
    }
}

// pipe-data.proto
message! {
    pub struct PipeDataEntry {
        1 pipe_id: required Uint32,
        2 bytes: required Uint32,
        3 size: optional Uint32,
    }
}

// pstree.proto
message! {
    pub struct PstreeEntry {
        1 pid: required Uint32,
        2 ppid: required Uint32,
        3 pgid: required Uint32,
        4 sid: required Uint32,
        5 threads: repeated Uint32,
    }
}

// remap-file-path.proto
message! {
    pub struct RemapFilePathEntry {
        1 orig_id: required Uint32,
        2 remap_id: required Uint32,
        3 remap_type: optional Enum<RemapType>,
    }
}

// seccomp.proto
message! {
    pub struct SeccompFilter {
        1 filter: required Bytes,
        2 prev: optional Uint32,
        3 flags: optional Uint32,
    }

    pub struct SeccompEntry {
        1 seccomp_filters: repeated Msg<SeccompFilter>,
    }
}

// sk-packet.proto
message! {
    pub struct ScmEntry {
        1 r#type: required Uint32,
        2 rights: repeated Uint32,
    }

    pub struct SkPacketEntry {
        1 id_for: required Uint32,
        2 length: required Uint32,
        // Sender of a datagram (raw sockaddr), where it had a name. CRIU
        // reserves this field number for it and leaves it unset.
        3 addr: optional Bytes,
        4 scm: repeated Msg<ScmEntry>,
    }
}

// stats.proto
message! {
    pub struct DumpStatsEntry {
        1 freezing_time: required Uint32,
        2 frozen_time: required Uint32,
        3 memdump_time: required Uint32,
        4 memwrite_time: required Uint32,
        5 pages_scanned: required Uint64,
        6 pages_skipped_parent: required Uint64,
        7 pages_written: required Uint64,
        8 irmap_resolve: optional Uint32,
        9 pages_lazy: required Uint64,
        10 page_pipes: optional Uint64,
        11 page_pipe_bufs: optional Uint64,
        12 shpages_scanned: optional Uint64,
        13 shpages_skipped_parent: optional Uint64,
        14 shpages_written: optional Uint64,
    }

    pub struct RestoreStatsEntry {
        1 pages_compared: required Uint64,
        2 pages_skipped_cow: required Uint64,
        3 forking_time: required Uint32,
        4 restore_time: required Uint32,
        5 pages_restored: optional Uint64,
    }

    pub struct StatsEntry {
        1 dump: optional Msg<DumpStatsEntry>,
        2 restore: optional Msg<RestoreStatsEntry>,
    }
}

// timens.proto
message! {
    pub struct Timespec {
        1 tv_sec: required Uint64,
        2 tv_nsec: required Uint64,
    }

    pub struct TimensEntry {
        1 monotonic: required Msg<Timespec>,
        2 boottime: required Msg<Timespec>,
    }
}

// userns.proto
message! {
    pub struct UidGidExtent {
        1 first: required Uint32,
        2 lower_first: required Uint32,
        3 count: required Uint32,
    }

    pub struct UsernsEntry {
        1 uid_map: repeated Msg<UidGidExtent>,
        2 gid_map: repeated Msg<UidGidExtent>,
    }
}

// utsns.proto
message! {
    pub struct UtsnsEntry {
        1 nodename: required Str,
        2 domainname: required Str,
    }
}

