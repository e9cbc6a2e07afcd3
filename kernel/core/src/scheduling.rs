//! A thread's scheduling settings, as the `sched_*` calls set and report
//! them (see `syscall::scheduling`).

/// Policies (Linux `include/uapi/linux/sched.h`).
pub mod policy {
    /// `SCHED_OTHER`: normal time sharing.
    pub const OTHER: u32 = 0;
    /// `SCHED_FIFO`: real time, first in first out.
    pub const FIFO: u32 = 1;
    /// `SCHED_RR`: real time, round robin.
    pub const RR: u32 = 2;
    /// `SCHED_BATCH`: normal, for work that does not interact.
    pub const BATCH: u32 = 3;
    /// `SCHED_IDLE`: only when nothing else runs (recorded as normal).
    pub const IDLE: u32 = 5;
    /// `SCHED_DEADLINE`: not offered.
    pub const DEADLINE: u32 = 6;
}

/// A thread's policy, priorities and nice value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// The policy (see [`policy`]).
    pub policy: u32,
    /// The real-time priority (1 to 99 for `SCHED_FIFO` and `SCHED_RR`).
    pub priority: u32,
    /// The nice value, -20 to 19.
    pub nice: i32,
    /// `SCHED_RESET_ON_FORK`.
    pub resets_on_fork: bool,
    /// The I/O priority (`ioprio_set`): class and level.
    pub io_priority: u16,
}
