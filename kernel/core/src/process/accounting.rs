//! What processes used: processor time split into user and system time,
//! and I/O counters (`/proc/PID/io`), per thread, summed per process, and
//! added into the parent's children figures when it reaps a child.
//!
//! A thread's processor time comes from the kernel thread that runs it
//! ([`ThreadControl::cpu_time_ns`] and [`ThreadControl::system_time_ns`]);
//! its I/O counters live in [`IoAccounts`], which the generic `read` and
//! `write` paths of the system calls bump. A process keeps what its ended
//! threads used in [`Accounts`], and what its reaped children (and their
//! own reaped children) used.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::machine::ThreadControl;

/// Processor time in nanoseconds, split as `times` and `getrusage` show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in the application's own code.
    pub user_ns: u64,
    /// Time in the kernel on its behalf.
    pub system_ns: u64,
}

impl CpuTime {
    /// What the kernel thread `control` has used so far.
    pub fn of(control: &dyn ThreadControl) -> CpuTime {
        let total_ns = control.cpu_time_ns();
        let system_ns = control.system_time_ns().min(total_ns);
        CpuTime { user_ns: total_ns - system_ns, system_ns }
    }

    /// User and system time together.
    pub fn total_ns(self) -> u64 {
        self.user_ns.saturating_add(self.system_ns)
    }
}

impl core::ops::Add for CpuTime {
    type Output = CpuTime;

    fn add(self, other: CpuTime) -> CpuTime {
        CpuTime {
            user_ns: self.user_ns.saturating_add(other.user_ns),
            system_ns: self.system_ns.saturating_add(other.system_ns),
        }
    }
}

/// I/O counters as `/proc/PID/io` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Bytes `read` and its kin returned, whatever the file (`rchar`).
    pub read_chars: u64,
    /// Bytes `write` and its kin accepted, whatever the file (`wchar`).
    pub write_chars: u64,
    /// Calls of the read family (`syscr`).
    pub read_calls: u64,
    /// Calls of the write family (`syscw`).
    pub write_calls: u64,
    /// Bytes fetched from storage for the process (`read_bytes`).
    pub read_bytes: u64,
    /// Bytes the process sent towards storage (`write_bytes`).
    pub write_bytes: u64,
    /// Bytes written and then truncated away before they reached storage
    /// (`cancelled_write_bytes`).
    pub cancelled_write_bytes: u64,
}

impl core::ops::Add for IoCounters {
    type Output = IoCounters;

    fn add(self, other: IoCounters) -> IoCounters {
        IoCounters {
            read_chars: self.read_chars.saturating_add(other.read_chars),
            write_chars: self.write_chars.saturating_add(other.write_chars),
            read_calls: self.read_calls.saturating_add(other.read_calls),
            write_calls: self.write_calls.saturating_add(other.write_calls),
            read_bytes: self.read_bytes.saturating_add(other.read_bytes),
            write_bytes: self.write_bytes.saturating_add(other.write_bytes),
            cancelled_write_bytes: self.cancelled_write_bytes.saturating_add(other.cancelled_write_bytes),
        }
    }
}

impl IoCounters {
    /// `/proc/PID/io`'s text.
    pub fn render(&self) -> alloc::string::String {
        alloc::format!(
            "rchar: {}\nwchar: {}\nsyscr: {}\nsyscw: {}\nread_bytes: {}\nwrite_bytes: {}\n\
             cancelled_write_bytes: {}\n",
            self.read_chars,
            self.write_chars,
            self.read_calls,
            self.write_calls,
            self.read_bytes,
            self.write_bytes,
            self.cancelled_write_bytes,
        )
    }
}

/// A thread's I/O counters, which only the thread itself bumps.
#[derive(Debug, Default)]
pub struct IoAccounts {
    read_chars: AtomicU64,
    write_chars: AtomicU64,
    read_calls: AtomicU64,
    write_calls: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    cancelled_write_bytes: AtomicU64,
}

/// Adds `amount` to a counter only its own thread changes: a plain load
/// and store, no locked instruction, on the system calls' hot path.
fn bump(counter: &AtomicU64, amount: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(amount), Ordering::Relaxed);
}

impl IoAccounts {
    /// A call of the read family that returned `bytes` (0 for a failure),
    /// `storage_bytes` of them fetched from storage.
    pub fn count_read(&self, bytes: u64, storage_bytes: u64) {
        bump(&self.read_calls, 1);
        bump(&self.read_chars, bytes);
        if storage_bytes != 0 {
            bump(&self.read_bytes, storage_bytes);
        }
    }

    /// A call of the write family that accepted `bytes` (0 for a failure),
    /// `storage_bytes` of them bound for storage.
    pub fn count_write(&self, bytes: u64, storage_bytes: u64) {
        bump(&self.write_calls, 1);
        bump(&self.write_chars, bytes);
        if storage_bytes != 0 {
            bump(&self.write_bytes, storage_bytes);
        }
    }

    /// Bytes the thread wrote towards storage that a truncation dropped.
    pub fn count_cancelled_write(&self, bytes: u64) {
        self.cancelled_write_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> IoCounters {
        IoCounters {
            read_chars: self.read_chars.load(Ordering::Relaxed),
            write_chars: self.write_chars.load(Ordering::Relaxed),
            read_calls: self.read_calls.load(Ordering::Relaxed),
            write_calls: self.write_calls.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
            cancelled_write_bytes: self.cancelled_write_bytes.load(Ordering::Relaxed),
        }
    }
}

/// What a process used and no live thread holds any more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Processor time.
    pub cpu: CpuTime,
    /// I/O counters.
    pub io: IoCounters,
}

impl core::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage { cpu: self.cpu + other.cpu, io: self.io + other.io }
    }
}

/// A process's accounts of what left it: its ended threads, and its
/// children reaped by `wait` (each with its own reaped children).
#[derive(Debug, Default)]
pub struct Accounts {
    ended_threads: Mutex<Usage>,
    reaped_children: Mutex<Usage>,
}

impl Accounts {
    /// A thread ended having used `usage`.
    pub fn add_ended_thread(&self, usage: Usage) {
        let mut ended = self.ended_threads.lock();
        *ended = *ended + usage;
    }

    /// What ended threads used.
    pub fn ended_threads(&self) -> Usage {
        *self.ended_threads.lock()
    }

    /// A child was reaped having used `usage` (its reaped children's
    /// included).
    pub fn add_reaped_child(&self, usage: Usage) {
        let mut reaped = self.reaped_children.lock();
        *reaped = *reaped + usage;
    }

    /// What reaped children used.
    pub fn reaped_children(&self) -> Usage {
        *self.reaped_children.lock()
    }
}
