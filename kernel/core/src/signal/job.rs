//! Job control: a process stopped by a stop signal, continued by `SIGCONT`.
//!
//! A stop signal (`SIGSTOP`, or `SIGTSTP`, `SIGTTIN`, `SIGTTOU` left at
//! their default action) stops the whole process when a thread takes it:
//! [`JobControl::stop`] marks it stopped, and every thread that reaches
//! signal delivery waits there until [`JobControl::resume`] (sending
//! `SIGCONT`) or `SIGKILL`. A thread asleep in a blocking call counts as
//! stopped where it sleeps, without being woken, and stops in delivery on
//! its way out if its call completes first; the stop is complete, and the
//! parent told, once every thread counts. What `wait4` with `WUNTRACED`
//! or `WCONTINUED` reports is kept here until the parent takes it.
//!
//! Neighbours: `signal::send` continues a process on `SIGCONT`;
//! `syscall::signals::deliver` stops threads; `syscall::processes` reports.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

/// `SIGCONT`.
pub const SIGCONT: u8 = 18;
/// `SIGTSTP`: the terminal's suspend character.
pub const SIGTSTP: u8 = 20;
/// `SIGTTIN`: a background process read from its terminal.
pub const SIGTTIN: u8 = 21;
/// `SIGTTOU`: a background process wrote to (or set up) its terminal.
pub const SIGTTOU: u8 = 22;

/// Whether the default action of `signal` stops the process.
pub fn is_stop_signal(signal: u8) -> bool {
    matches!(signal, super::SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU)
}

/// The signals whose default action stops the process.
pub const STOP_SIGNALS: u64 =
    super::bit(super::SIGSTOP) | super::bit(SIGTSTP) | super::bit(SIGTTIN) | super::bit(SIGTTOU);

/// A change of a child's state that `wait` may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// It stopped, by this signal.
    Stopped(u8),
    /// It was continued.
    Continued,
}

#[derive(Debug, Default)]
struct JobState {
    /// The signal that stopped the process, while it is stopped.
    stopped_by: Option<u8>,
    /// Threads that count as stopped: waiting in delivery, or asleep in a
    /// blocking call, while the process is stopped.
    stopped_threads: usize,
    /// Every thread has stopped since the stop began (the parent was told).
    is_stop_complete: bool,
    /// A stop the parent has not been told of through `wait`.
    unreported_stop: Option<u8>,
    /// A continue the parent has not been told of through `wait`.
    is_continue_unreported: bool,
}

/// Whether a process is stopped, and what its parent has not yet seen.
#[derive(Debug, Default)]
pub struct JobControl {
    /// Mirrors `stopped_by.is_some()`, read on every return to the
    /// application without the lock.
    is_stopped: AtomicBool,
    state: Mutex<JobState>,
    /// The process's threads that have started and not ended.
    thread_count: AtomicUsize,
    /// The process's id, through which the thread that completes a stop
    /// finds the parent to tell.
    process_id: AtomicU64,
}

impl JobControl {
    /// Whether the process is stopped: its threads wait in delivery.
    pub fn is_stopped(&self) -> bool {
        self.is_stopped.load(Ordering::Acquire)
    }

    /// The signal the process is stopped by, while it is.
    pub fn stop_signal(&self) -> Option<u8> {
        if !self.is_stopped() {
            return None;
        }
        self.state.lock().stopped_by
    }

    /// Stops the process with `signal`; returns whether it was running.
    pub fn stop(&self, signal: u8) -> bool {
        let mut state = self.state.lock();
        if state.stopped_by.is_some() {
            return false;
        }
        state.stopped_by = Some(signal);
        state.is_stop_complete = false;
        self.is_stopped.store(true, Ordering::Release);
        true
    }

    /// Records the process's id (set once it has one).
    pub fn set_process_id(&self, pid: u64) {
        self.process_id.store(pid, Ordering::Relaxed);
    }

    /// The process's id.
    pub fn process_id(&self) -> u64 {
        self.process_id.load(Ordering::Relaxed)
    }

    /// A thread of the process started.
    pub fn thread_started(&self) {
        self.thread_count.fetch_add(1, Ordering::AcqRel);
    }

    /// A thread of the process ended; `is_counted` is its mark. Returns
    /// the stop's signal when the threads left complete a stop.
    pub fn thread_ended(&self, is_counted: &AtomicBool) -> Option<u8> {
        self.leave(is_counted);
        let mut state = self.state.lock();
        let remaining = self.thread_count.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if remaining == 0 {
            return None;
        }
        self.complete_if_all_stopped(&mut state, remaining)
    }

    /// A thread counts as stopped (it waits in delivery, or sleeps in a
    /// blocking call, while the process is stopped); `is_counted` is its
    /// mark, so that it counts once. Returns the stop's signal when this
    /// completes the stop: the parent is to be told (as on Linux, only
    /// once every thread has stopped).
    pub fn enter(&self, is_counted: &AtomicBool) -> Option<u8> {
        let mut state = self.state.lock();
        if !is_counted.swap(true, Ordering::AcqRel) {
            state.stopped_threads += 1;
        }
        let threads = self.thread_count.load(Ordering::Acquire);
        self.complete_if_all_stopped(&mut state, threads)
    }

    fn complete_if_all_stopped(&self, state: &mut JobState, threads: usize) -> Option<u8> {
        let signal = state.stopped_by?;
        if state.is_stop_complete || state.stopped_threads < threads {
            return None;
        }
        state.is_stop_complete = true;
        state.unreported_stop = Some(signal);
        state.is_continue_unreported = false;
        Some(signal)
    }

    /// A thread no longer counts as stopped (continued, killed, ending, or
    /// its blocking call completed and it runs on to delivery).
    pub fn leave(&self, is_counted: &AtomicBool) {
        if !is_counted.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        if is_counted.swap(false, Ordering::AcqRel) {
            state.stopped_threads = state.stopped_threads.saturating_sub(1);
        }
    }

    /// Lets a stopped process run again; returns whether its stop had
    /// completed (only then is the parent told it continued).
    pub fn resume(&self) -> bool {
        let mut state = self.state.lock();
        if state.stopped_by.take().is_none() {
            return false;
        }
        self.is_stopped.store(false, Ordering::Release);
        // A stop the parent did not see is no longer true.
        state.unreported_stop = None;
        let was_complete = core::mem::take(&mut state.is_stop_complete);
        if was_complete {
            state.is_continue_unreported = true;
        }
        was_complete
    }

    /// The change `wait` would report, among those asked for, without
    /// taking it.
    pub fn peek(&self, wants_stops: bool, wants_continues: bool) -> Option<JobEvent> {
        let state = self.state.lock();
        match state.unreported_stop {
            Some(signal) if wants_stops => Some(JobEvent::Stopped(signal)),
            _ if wants_continues && state.is_continue_unreported => Some(JobEvent::Continued),
            _ => None,
        }
    }

    /// Marks `event` as reported.
    pub fn take(&self, event: JobEvent) {
        let mut state = self.state.lock();
        match event {
            JobEvent::Stopped(_) => state.unreported_stop = None,
            JobEvent::Continued => state.is_continue_unreported = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job with `threads` started threads and their marks.
    fn job_of(threads: usize) -> (JobControl, alloc::vec::Vec<AtomicBool>) {
        let job = JobControl::default();
        for _ in 0..threads {
            job.thread_started();
        }
        (job, (0..threads).map(|_| AtomicBool::new(false)).collect())
    }

    #[test]
    fn a_stop_completes_when_every_thread_waits_and_is_reported_once() {
        let (job, marks) = job_of(2);
        assert!(job.stop(SIGTSTP));
        assert!(!job.stop(super::super::SIGSTOP), "a stopped process does not stop again");
        assert!(job.is_stopped());
        assert_eq!(job.enter(&marks[0]), None, "one thread of two still runs");
        assert_eq!(job.enter(&marks[0]), None, "a thread counts once");
        assert_eq!(job.peek(true, true), None);
        assert_eq!(job.enter(&marks[1]), Some(SIGTSTP));
        assert_eq!(job.peek(false, true), None);
        assert_eq!(job.peek(true, true), Some(JobEvent::Stopped(SIGTSTP)));
        job.take(JobEvent::Stopped(SIGTSTP));
        assert_eq!(job.peek(true, false), None);
        assert!(job.resume());
        job.leave(&marks[0]);
        job.leave(&marks[1]);
        job.leave(&marks[1]);
        assert!(!job.resume());
        assert!(!job.is_stopped());
        assert_eq!(job.peek(true, true), Some(JobEvent::Continued));
        job.take(JobEvent::Continued);
        assert_eq!(job.peek(true, true), None);
        // Stopped and continued before the parent looked: only the
        // continue remains.
        let (job, marks) = job_of(1);
        job.stop(SIGTTIN);
        assert_eq!(job.enter(&marks[0]), Some(SIGTTIN));
        assert!(job.resume());
        job.leave(&marks[0]);
        assert_eq!(job.peek(true, true), Some(JobEvent::Continued));
        // Continued before it completed: nothing to report.
        job.take(JobEvent::Continued);
        job.stop(SIGSTOP_FOR_TEST);
        assert!(!job.resume());
        assert_eq!(job.peek(true, true), None);
    }

    #[test]
    fn a_thread_that_ends_may_complete_the_stop_of_the_others() {
        let (job, marks) = job_of(3);
        job.stop(SIGTSTP);
        assert_eq!(job.enter(&marks[0]), None);
        assert_eq!(job.thread_ended(&marks[1]), None, "one of the two left still runs");
        assert_eq!(job.enter(&marks[2]), Some(SIGTSTP));
        // A counted thread that ends stops counting.
        assert!(job.resume());
        let (job, marks) = job_of(2);
        job.stop(SIGTSTP);
        assert_eq!(job.enter(&marks[0]), None);
        assert_eq!(job.thread_ended(&marks[0]), None);
        assert_eq!(job.thread_ended(&marks[1]), None, "no thread is left to stop");
    }

    const SIGSTOP_FOR_TEST: u8 = super::super::SIGSTOP;

    #[test]
    fn the_stop_signals_are_the_four_of_job_control() {
        let stops: alloc::vec::Vec<u8> = (1..=64).filter(|&signal| is_stop_signal(signal)).collect();
        assert_eq!(stops, [19, 20, 21, 22]);
        assert_eq!(STOP_SIGNALS, (1 << 18) | (1 << 19) | (1 << 20) | (1 << 21));
    }
}
