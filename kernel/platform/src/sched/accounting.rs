//! Who used each processor's time: user against system time per thread,
//! and user, system and idle time per processor (`/proc/stat`).
//!
//! An application thread runs in ring 0 like the kernel, so the processor
//! cannot tell the two apart: the kernel's entries note in the processor's
//! counters the moment a thread enters it (a system call, a fault, an
//! interrupt of application code), and its way back out adds the time since
//! to the current run's system time, with one TSC read each way. A switch
//! folds the run into the thread's and the processor's totals; a thread
//! switched away inside the kernel is marked, and its stint goes on when it
//! runs again, so time spent switched out counts for nothing. Whatever else
//! a thread runs is user time: its processor time ([`Thread::cpu_time_ns`])
//! less its system time. Kernel threads count as system time throughout,
//! idle threads as idle time.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::thread::{Thread, ThreadKind};
use super::{CPUS, this_cpu};
use crate::{cpu, time};

/// A processor's time since boot, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Running application code.
    pub user_ns: u64,
    /// Running the kernel: for applications, and its own threads.
    pub system_ns: u64,
    /// Halted in its idle thread.
    pub idle_ns: u64,
}

/// What a processor runs now, for [`CpuAccounts::running`].
const RUNNING_IDLE: u8 = 0;
const RUNNING_KERNEL: u8 = 1;
const RUNNING_APPLICATION: u8 = 2;

/// The time counters of one processor: what it used before the current
/// thread's run, split by kind, and that run (an idle processor may halt
/// for seconds without switching, and its idle time must still grow). The
/// system-call path touches only the two fields of the current run, in TSC
/// ticks; a switch folds the run into the totals. Only the processor itself
/// writes them, so additions are plain loads and stores.
pub(super) struct CpuAccounts {
    user_ns: AtomicU64,
    system_ns: AtomicU64,
    idle_ns: AtomicU64,
    running: AtomicU8,
    running_since_tsc: AtomicU64,
    /// The current run's closed stints in the kernel, in TSC ticks.
    run_system_ticks: AtomicU64,
    /// When the current application thread's open stint in the kernel
    /// began (0: it runs its own code).
    kernel_entered_tsc: AtomicU64,
}

/// Adds `amount` to a counter only one processor writes.
fn bump(counter: &AtomicU64, amount: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(amount), Ordering::Relaxed);
}

impl CpuAccounts {
    pub(super) const fn new() -> Self {
        CpuAccounts {
            user_ns: AtomicU64::new(0),
            system_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            running: AtomicU8::new(RUNNING_KERNEL),
            running_since_tsc: AtomicU64::new(0),
            run_system_ticks: AtomicU64::new(0),
            kernel_entered_tsc: AtomicU64::new(0),
        }
    }

    /// The processor starts running `thread` at `now` (a TSC value).
    pub(super) fn start_running(&self, thread: &Thread, now: u64) {
        let running = match thread.kind() {
            ThreadKind::Idle => RUNNING_IDLE,
            ThreadKind::Kernel => RUNNING_KERNEL,
            ThreadKind::Application => RUNNING_APPLICATION,
        };
        self.run_system_ticks.store(0, Ordering::Relaxed);
        let is_in_kernel = thread.is_in_kernel.load(Ordering::Relaxed);
        self.kernel_entered_tsc.store(if is_in_kernel { now } else { 0 }, Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
        self.running_since_tsc.store(now, Ordering::Relaxed);
    }

    /// The current run's time in the kernel so far at `now`, in TSC ticks:
    /// its closed stints and the open one.
    fn run_system_ticks_at(&self, now: u64) -> u64 {
        let entered = self.kernel_entered_tsc.load(Ordering::Relaxed);
        let open = if entered == 0 { 0 } else { now.saturating_sub(entered) };
        self.run_system_ticks.load(Ordering::Relaxed) + open
    }

    fn snapshot(&self) -> CpuTimes {
        let mut times = CpuTimes {
            user_ns: self.user_ns.load(Ordering::Relaxed),
            system_ns: self.system_ns.load(Ordering::Relaxed),
            idle_ns: self.idle_ns.load(Ordering::Relaxed),
        };
        let since = self.running_since_tsc.load(Ordering::Relaxed);
        if since == 0 {
            return times;
        }
        let now = cpu::read_tsc();
        let running_ns = time::ticks_to_ns(now.saturating_sub(since));
        match self.running.load(Ordering::Relaxed) {
            RUNNING_IDLE => times.idle_ns += running_ns,
            RUNNING_KERNEL => times.system_ns += running_ns,
            _ => {
                let system_ns = time::ticks_to_ns(self.run_system_ticks_at(now)).min(running_ns);
                times.system_ns += system_ns;
                times.user_ns += running_ns - system_ns;
            }
        }
        times
    }
}

/// The time processor `index` spent in each way since boot.
pub fn cpu_times(index: usize) -> CpuTimes {
    CPUS.get(index).map_or_else(CpuTimes::default, |cpu| cpu.accounts.snapshot())
}

/// The system time of application thread `thread`: what its past runs
/// used, and its current run's if it runs now (read from its processor's
/// counters, exact for the thread itself, a moment off for another that is
/// being switched).
pub(super) fn system_time_ns(thread: &Thread) -> u64 {
    let used = thread.system_time_ns.load(Ordering::Relaxed);
    if !thread.on_cpu.load(Ordering::Acquire) {
        return used;
    }
    let Some(cpu) = CPUS.get(thread.last_cpu()) else {
        return used;
    };
    let accounts = &cpu.accounts;
    let now = cpu::read_tsc();
    let since = accounts.running_since_tsc.load(Ordering::Relaxed);
    let running_ns = time::ticks_to_ns(now.saturating_sub(since));
    used + time::ticks_to_ns(accounts.run_system_ticks_at(now)).min(running_ns)
}

/// The running application thread enters the kernel from its own code (a
/// fault or an interrupt of it): the time until [`leave_kernel`] is system
/// time. Returns whether this opened the stint (false when the thread was
/// in the kernel already, or no application thread runs), which tells the
/// caller to call [`leave_kernel`]. Interrupts must be disabled.
#[inline]
pub(crate) fn enter_kernel() -> bool {
    let accounts = &this_cpu().accounts;
    if accounts.running.load(Ordering::Relaxed) != RUNNING_APPLICATION
        || accounts.kernel_entered_tsc.load(Ordering::Relaxed) != 0
    {
        return false;
    }
    accounts.kernel_entered_tsc.store(cpu::read_tsc(), Ordering::Relaxed);
    true
}

/// The running application thread enters the kernel by a system call.
/// Interrupts must be disabled.
#[inline]
pub(crate) fn enter_kernel_by_system_call() {
    this_cpu().accounts.kernel_entered_tsc.store(cpu::read_tsc(), Ordering::Relaxed);
}

/// The running application thread goes back to its own code: the time since
/// it entered the kernel (or was switched back in) is system time.
/// Interrupts must be disabled.
#[inline]
pub(crate) fn leave_kernel() {
    let accounts = &this_cpu().accounts;
    let entered = accounts.kernel_entered_tsc.load(Ordering::Relaxed);
    if entered == 0 {
        return;
    }
    bump(&accounts.run_system_ticks, cpu::read_tsc().saturating_sub(entered));
    accounts.kernel_entered_tsc.store(0, Ordering::Relaxed);
}

/// A switch from `previous` to `next` at `now`: closes `previous`'s run on
/// this processor (a stint in the kernel it is in stays open: it goes on
/// when the thread runs again) and opens `next`'s.
pub(super) fn account_switch(accounts: &CpuAccounts, previous: &Thread, next: &Thread, now: u64) {
    let run_ns = time::ticks_to_ns(now.saturating_sub(previous.switched_in_tsc.load(Ordering::Relaxed)));
    previous.add_cpu_time(run_ns);
    match previous.kind() {
        ThreadKind::Idle => bump(&accounts.idle_ns, run_ns),
        ThreadKind::Kernel => bump(&accounts.system_ns, run_ns),
        ThreadKind::Application => {
            let is_in_kernel = accounts.kernel_entered_tsc.load(Ordering::Relaxed) != 0;
            previous.is_in_kernel.store(is_in_kernel, Ordering::Relaxed);
            let system_ns = time::ticks_to_ns(accounts.run_system_ticks_at(now)).min(run_ns);
            bump(&previous.system_time_ns, system_ns);
            bump(&accounts.system_ns, system_ns);
            bump(&accounts.user_ns, run_ns - system_ns);
        }
    }
    next.switched_in_tsc.store(now, Ordering::Relaxed);
    accounts.start_running(next, now);
}
