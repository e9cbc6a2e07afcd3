//! Resource limits (`getrlimit`, `setrlimit`, `prlimit64`) as a process
//! holds them.

/// A resource limit (`struct rlimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit.
    pub current: u64,
    /// The hard limit.
    pub maximum: u64,
}

/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// The most descriptors a process may have: `RLIMIT_NOFILE` cannot be
/// raised past it (Linux's default `fs.nr_open`).
pub const NR_OPEN: u64 = 1 << 20;

/// Number of resource limits (`RLIM_NLIMITS`).
pub const LIMIT_COUNT: usize = 16;

/// `RLIMIT_*` indices.
#[allow(missing_docs)]
pub mod limit {
    pub const CPU: usize = 0;
    pub const FSIZE: usize = 1;
    pub const DATA: usize = 2;
    pub const STACK: usize = 3;
    pub const CORE: usize = 4;
    pub const RSS: usize = 5;
    pub const NPROC: usize = 6;
    pub const NOFILE: usize = 7;
    pub const MEMLOCK: usize = 8;
    pub const AS: usize = 9;
    pub const LOCKS: usize = 10;
    pub const SIGPENDING: usize = 11;
    pub const MSGQUEUE: usize = 12;
    pub const NICE: usize = 13;
    pub const RTPRIO: usize = 14;
    pub const RTTIME: usize = 15;
}
