//! One thread of a process: its system-call state, its signals, and its
//! link to the kernel thread that runs it.

use alloc::sync::Arc;

use spin::Mutex;

use super::find;
use super::shared::{FsContext, ThreadPart};
use crate::machine::ThreadControl;
use crate::signal::ProcessSignals;

/// Per-thread state the system calls keep.
#[derive(Debug, Clone, Default)]
pub struct ThreadState {
    /// `set_tid_address`: cleared and woken at thread exit.
    pub clear_child_tid: u64,
    /// `set_robust_list`: head and length.
    pub robust_list: (u64, u64),
    /// `sigaltstack`.
    pub alternate_stack: crate::signal::AlternateStack,
    /// The blocked signal mask.
    pub signal_mask: u64,
    /// The signals `sigtimedwait` waits for: blocked in truth while the
    /// wait lets them through, so a sender must not drop one it ignores.
    pub awaited_signals: u64,
    /// The mask to restore once a signal is delivered or the call returns,
    /// when a call (`sigsuspend`, `ppoll`, ...) replaced it for its wait.
    pub saved_mask: Option<u64>,
    /// Signals sent to the thread and not yet delivered.
    pub pending: crate::signal::Pending,
    /// The thread's name (`prctl(PR_SET_NAME)`).
    pub name: [u8; 16],
    /// Its scheduling policy, priorities and nice value.
    pub scheduling: crate::scheduling::Settings,
    /// Its execution domain and flags (`personality`).
    pub personality: u32,
}

/// One thread of the application.
pub struct Thread {
    /// Its thread id.
    pub tid: u64,
    /// System-call state.
    pub state: Mutex<ThreadState>,
    /// The signals of its process, which it may take too.
    pub signals: Arc<ProcessSignals>,
    /// It counts as stopped while its process is (job control).
    pub is_counted_stopped: core::sync::atomic::AtomicBool,
    /// It sleeps, or is about to, in a blocking call (it asked
    /// [`Thread::has_deliverable_signal`] since it entered the kernel): a
    /// stop counts it without waking it.
    pub is_asleep_in_call: core::sync::atomic::AtomicBool,
    /// A descriptor table of its own instead of the process's.
    pub descriptors: ThreadPart<crate::vfs::DescriptorTable>,
    /// A filesystem context of its own instead of the process's.
    pub fs: ThreadPart<FsContext>,
    /// Its I/O counters (`/proc/PID/task/TID/io`).
    pub io: super::IoAccounts,
    /// The kernel thread that runs it, until it ends: the kernel thread
    /// in turn holds this one, and the pair is freed once the link is cut.
    control: Mutex<Control>,
}

/// A thread's link to the kernel thread that runs it.
enum Control {
    /// Not started yet.
    NotYet,
    /// Running.
    Running(Arc<dyn ThreadControl>),
    /// Ended: the link is cut and stays cut.
    Ended,
}

impl core::fmt::Debug for Thread {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Thread").field("tid", &self.tid).finish()
    }
}

impl Thread {
    /// Whether a signal waits to be delivered (blocking calls return early).
    /// A stopped process counts: its threads are to stop in delivery.
    ///
    /// Asked by the thread itself around each sleep of a blocking call. A
    /// stopped process's thread that has no other signal to take counts
    /// as stopped and sleeps on (it stops in delivery on its way out); a
    /// continued one counts as running again.
    pub fn has_deliverable_signal(&self) -> bool {
        let pending = {
            let state = self.state.lock();
            (state.pending.set() | self.signals.pending.lock().set()) & !state.signal_mask
        };
        if pending != 0 || crate::ptrace::is_interrupt_requested(self.tid) {
            return true;
        }
        // Seen asleep, the thread is counted by whoever stops the process;
        // else it sees the stop here (Dekker's order: mark, then look).
        self.is_asleep_in_call.store(true, core::sync::atomic::Ordering::SeqCst);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        let job = &self.signals.job;
        if job.is_stopped() {
            if let Some(signal) = job.enter(&self.is_counted_stopped)
                && let Some(process) = find(job.process_id())
            {
                crate::signal::notify_parent_of_job(&process, crate::signal::JobEvent::Stopped(signal));
            }
        } else {
            job.leave(&self.is_counted_stopped);
        }
        false
    }

    /// A thread with id `tid` of a process of its own, not yet running.
    pub fn new(tid: u64) -> Self {
        Thread::of(tid, Arc::new(ProcessSignals::new()))
    }

    /// A thread with id `tid` of the process whose signals are `signals`,
    /// not yet running.
    pub fn of(tid: u64, signals: Arc<ProcessSignals>) -> Self {
        Thread {
            tid,
            state: Mutex::new(ThreadState::default()),
            signals,
            is_counted_stopped: core::sync::atomic::AtomicBool::new(false),
            is_asleep_in_call: core::sync::atomic::AtomicBool::new(false),
            descriptors: ThreadPart::default(),
            fs: ThreadPart::default(),
            io: super::IoAccounts::default(),
            control: Mutex::new(Control::NotYet),
        }
    }

    /// Records the kernel thread that runs this one (set once). A signal
    /// or a stop that came while there was no kernel thread to tell is
    /// looked at before any application code runs.
    pub fn set_control(&self, control: Arc<dyn ThreadControl>) {
        {
            let mut slot = self.control.lock();
            if !matches!(*slot, Control::NotYet) {
                return;
            }
            *slot = Control::Running(control.clone());
        }
        // Whoever signals or stops the process now finds the control; what
        // came before is seen here.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        let is_pending = {
            let state = self.state.lock();
            (state.pending.set() | self.signals.pending.lock().set()) & !state.signal_mask != 0
        };
        if is_pending || self.signals.job.is_stopped() || crate::ptrace::is_interrupt_requested(self.tid) {
            control.notify_signal();
        }
    }

    /// The kernel thread that runs this one, while it runs.
    pub fn control(&self) -> Option<Arc<dyn ThreadControl>> {
        match &*self.control.lock() {
            Control::Running(control) => Some(control.clone()),
            Control::NotYet | Control::Ended => None,
        }
    }

    /// Cuts the link to the kernel thread, which has ended; returns it.
    pub(super) fn end_control(&self) -> Option<Arc<dyn ThreadControl>> {
        match core::mem::replace(&mut *self.control.lock(), Control::Ended) {
            Control::Running(control) => Some(control),
            Control::NotYet | Control::Ended => None,
        }
    }
}
