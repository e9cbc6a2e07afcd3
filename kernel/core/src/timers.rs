//! Timers that expire while the process runs: POSIX timers, interval
//! timers and timerfds.
//!
//! A [`Timer`] follows one [`Clock`] and, when armed, has its next
//! expiry on that clock and an interval. Each process keeps its armed
//! timers' deadlines in [`ProcessTimers`], converted to the monotonic
//! clock; a kernel thread per process (started when the first timer is
//! armed) sleeps until the earliest and expires what is due
//! ([`ProcessTimers::run_due`]). A deadline on a processor-time clock
//! cannot be known in advance: the thread looks again when the time
//! could at the earliest have been used, and waits again if it was not.
//! Expiring counts the expirations (a timerfd's reads take them) and
//! sends the timer's signal; a POSIX timer whose signal is still pending
//! counts an overrun instead, reported when the signal is taken.
//!
//! A timer armed at an absolute time on the wall clock follows it when it
//! is set ([`realtime_stepped`]): its deadline is converted again, and a
//! timerfd armed with `TFD_TIMER_CANCEL_ON_SET` is cancelled. A relative
//! timer on the wall clock runs on the monotonic clock, as POSIX asks and
//! Linux does. Absolute sleeps on the wall clock wait on [`REALTIME_STEPS`]
//! to look again.
//!
//! Neighbours: `syscall::timers` has the system calls, `signal` sends.

pub mod deadlines;
pub mod timerfd;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};

use spin::Mutex;

use self::deadlines::{Deadlines, Key};
use crate::errno::Errno;
use crate::machine::{Machine, ThreadControl};
use crate::process::{Process, Thread};
use crate::signal::{Queueing, SignalInfo, SignalSource, Target};
use crate::vfs::waiters::WaiterList;

/// The shortest wait for a processor-time deadline, so that a clock that
/// advances slowly is not polled in a busy loop.
const SHORTEST_CPU_WAIT_NS: u64 = 100_000;
/// The shortest time between two wake-ups for one periodic timer.
const SHORTEST_PERIOD_NS: u64 = 50_000;

/// A clock a timer follows.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Wall-clock time (`CLOCK_REALTIME`, `CLOCK_TAI`, `CLOCK_REALTIME_ALARM`).
    Realtime,
    /// Time since boot (`CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`, ...).
    Monotonic,
    /// Processor time the process's threads used.
    ProcessCpu,
    /// The part of it they spent in their own code (`ITIMER_VIRTUAL`).
    ProcessUser,
    /// Processor time one thread used.
    ThreadCpu(Weak<Thread>),
}

impl Clock {
    /// The time on this clock, in nanoseconds; `None` for the processor
    /// time of a thread that is gone.
    pub fn now_ns(&self, machine: &dyn Machine, process: &Process) -> Option<u64> {
        match self {
            Clock::Realtime => Some(machine.realtime_ns()),
            Clock::Monotonic => Some(machine.monotonic_ns()),
            Clock::ProcessCpu => Some(process.cpu_time_ns()),
            Clock::ProcessUser => Some(process.cpu_time().user_ns),
            Clock::ThreadCpu(thread) => thread.upgrade()?.control().map(|control| control.cpu_time_ns()),
        }
    }

    /// The monotonic time at which this clock, at `now_ns`, can reach
    /// `deadline_ns` at the earliest.
    fn wake_at(&self, machine: &dyn Machine, now_ns: u64, deadline_ns: u64) -> u64 {
        let monotonic = machine.monotonic_ns();
        let remaining = deadline_ns.saturating_sub(now_ns);
        let wait = match self {
            Clock::Realtime | Clock::Monotonic => return monotonic.saturating_add(remaining),
            Clock::ProcessCpu | Clock::ProcessUser => remaining / machine.cpu_count().max(1) as u64,
            Clock::ThreadCpu(_) => remaining,
        };
        monotonic.saturating_add(wait.max(SHORTEST_CPU_WAIT_NS))
    }
}

/// What an expiry does besides counting.
#[derive(Debug, Clone, Copy)]
pub enum Notification {
    /// Nothing (`SIGEV_NONE`, a timerfd).
    None,
    /// Sends `signal` with `info` to the process, or to thread `thread`.
    /// A POSIX timer (with `counts_overruns`) sends one instance at a time
    /// and counts the expirations in between as overruns.
    Signal {
        /// The signal.
        signal: u8,
        /// The thread it goes to (`SIGEV_THREAD_ID`), or the process.
        thread: Option<u64>,
        /// What it carries.
        info: SignalInfo,
        /// Whether the timer is the signal's source (a POSIX timer).
        counts_overruns: bool,
    },
}

/// A timer's setting, as `struct itimerspec` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Setting {
    /// Time to the next expiry (0: disarmed).
    pub value_ns: u64,
    /// Time between expiries (0: one expiry only).
    pub interval_ns: u64,
}

#[derive(Debug, Default)]
struct TimerState {
    /// The next expiry on the timer's clock, if armed.
    next_ns: Option<u64>,
    interval_ns: u64,
    /// Its entry in the deadlines, if it has one.
    key: Option<Key>,
    /// Expirations not yet read (timerfd).
    expirations: u64,
    /// Its signal is pending (and not yet taken).
    is_signal_pending: bool,
    /// Expirations while its signal was pending.
    overrun: u64,
    /// The overrun count the last taken signal carried.
    last_overrun: i32,
    is_deleted: bool,
    /// Armed at an absolute time (which a wall-clock step moves).
    is_absolute: bool,
    /// A wall-clock step cancels it (`TFD_TIMER_CANCEL_ON_SET`).
    cancels_on_set: bool,
    /// A wall-clock step cancelled it; the next read says so.
    is_cancelled: bool,
}

/// A timer of a process.
#[derive(Debug)]
pub struct Timer {
    clock: Clock,
    notification: Notification,
    state: Mutex<TimerState>,
    /// Threads waiting for expirations (timerfd readers and pollers).
    pub waiters: WaiterList,
}

impl Timer {
    /// A disarmed timer on `clock`.
    pub fn new(clock: Clock, notification: Notification) -> Arc<Timer> {
        Arc::new(Timer {
            clock,
            notification,
            state: Mutex::new(TimerState::default()),
            waiters: WaiterList::new(),
        })
    }

    /// The clock it was made on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The clock its current setting runs on: a relative timer of the wall
    /// clock runs on the monotonic one.
    fn follows(&self, state: &TimerState) -> Clock {
        match self.clock {
            Clock::Realtime if !state.is_absolute => Clock::Monotonic,
            _ => self.clock.clone(),
        }
    }

    /// Makes the current setting cancelled by wall-clock steps, or not
    /// (`TFD_TIMER_CANCEL_ON_SET`; only an absolute wall-clock setting is).
    pub fn set_cancel_on_set(&self, cancels: bool) {
        let mut state = self.state.lock();
        state.cancels_on_set = cancels && state.is_absolute && matches!(self.clock, Clock::Realtime);
    }

    /// Whether a wall-clock step cancelled it since it was armed or since
    /// this was last asked; clears the mark and the unread expirations.
    pub fn take_cancellation(&self) -> bool {
        let mut state = self.state.lock();
        let is_cancelled = core::mem::take(&mut state.is_cancelled);
        if is_cancelled {
            state.expirations = 0;
        }
        is_cancelled
    }

    /// Whether a wall-clock step cancelled it (not yet read).
    pub fn is_cancelled(&self) -> bool {
        self.state.lock().is_cancelled
    }

    /// Its setting now: the time left to the next expiry and the interval.
    pub fn setting(&self, machine: &dyn Machine, process: &Process) -> Setting {
        let state = self.state.lock();
        self.setting_of(&state, machine, process)
    }

    fn setting_of(&self, state: &TimerState, machine: &dyn Machine, process: &Process) -> Setting {
        let value_ns = match (state.next_ns, self.follows(state).now_ns(machine, process)) {
            // An armed timer never reads as disarmed, even when it is due.
            (Some(next), Some(now)) => next.saturating_sub(now).max(1),
            _ => 0,
        };
        Setting { value_ns, interval_ns: state.interval_ns }
    }

    /// Expirations not yet read, now cleared.
    pub fn take_expirations(&self) -> u64 {
        core::mem::take(&mut self.state.lock().expirations)
    }

    /// Expirations not yet read.
    pub fn expirations(&self) -> u64 {
        self.state.lock().expirations
    }

    /// The overrun count of its last signal taken (`timer_getoverrun`).
    pub fn last_overrun(&self) -> i32 {
        self.state.lock().last_overrun
    }
}

impl SignalSource for Timer {
    fn take(&self, info: &mut SignalInfo) -> bool {
        let mut state = self.state.lock();
        if state.is_deleted {
            return false;
        }
        state.is_signal_pending = false;
        let overrun = i32::try_from(core::mem::take(&mut state.overrun)).unwrap_or(i32::MAX);
        state.last_overrun = overrun;
        info.set_overrun(overrun);
        true
    }

    fn discard(&self) {
        let mut state = self.state.lock();
        state.is_signal_pending = false;
        state.overrun = 0;
    }
}

/// The kernel thread that expires a process's timers.
enum Service {
    NotStarted,
    /// Started, not yet running: it looks at the deadlines before it
    /// first sleeps, so it needs no waking.
    Starting,
    Running(Arc<dyn ThreadControl>),
    /// The machine cannot start it (tests expire timers themselves).
    Unavailable,
}

/// `setitimer`'s timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalTimer {
    /// `ITIMER_REAL`: real time, `SIGALRM`.
    Real = 0,
    /// `ITIMER_VIRTUAL`: processor time, `SIGVTALRM`.
    Virtual = 1,
    /// `ITIMER_PROF`: processor time, `SIGPROF`.
    Profiling = 2,
}

/// `SIGALRM`, `SIGVTALRM` and `SIGPROF`.
const INTERVAL_TIMER_SIGNALS: [u8; 3] = [14, 26, 27];

/// A process's timers and the deadlines of those armed.
pub struct ProcessTimers {
    deadlines: Mutex<Deadlines<Timer>>,
    service: Mutex<Service>,
    posix: Mutex<BTreeMap<i32, Arc<Timer>>>,
    next_posix_id: Mutex<i32>,
    interval: Mutex<[Option<Arc<Timer>>; 3]>,
}

impl core::fmt::Debug for ProcessTimers {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("ProcessTimers").field("armed", &self.deadlines.lock().len()).finish()
    }
}

impl Default for ProcessTimers {
    fn default() -> Self {
        ProcessTimers {
            deadlines: Mutex::new(Deadlines::default()),
            service: Mutex::new(Service::NotStarted),
            posix: Mutex::new(BTreeMap::new()),
            next_posix_id: Mutex::new(0),
            interval: Mutex::new([None, None, None]),
        }
    }
}

impl Drop for ProcessTimers {
    fn drop(&mut self) {
        // The service thread notices that the process is gone, and ends.
        if let Service::Running(thread) = &*self.service.lock() {
            thread.wake();
        }
    }
}

impl ProcessTimers {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `timer` of `process` to expire after `value_ns` (at `value_ns`
    /// on its clock with `is_absolute`), then every `interval_ns`; a zero
    /// value disarms it. Clears its unread expirations. Returns its
    /// previous setting.
    pub fn arm(
        &self,
        machine: &dyn Machine,
        process: &Process,
        timer: &Arc<Timer>,
        value_ns: u64,
        is_absolute: bool,
        interval_ns: u64,
    ) -> Setting {
        let mut state = timer.state.lock();
        let old = timer.setting_of(&state, machine, process);
        if let Some(key) = state.key.take() {
            self.deadlines.lock().remove(key);
        }
        state.expirations = 0;
        state.overrun = 0;
        state.next_ns = None;
        state.interval_ns = 0;
        state.is_cancelled = false;
        state.cancels_on_set = false;
        state.is_absolute = is_absolute;
        if value_ns == 0 {
            return old;
        }
        let clock = timer.follows(&state);
        let Some(now) = clock.now_ns(machine, process) else {
            return old;
        };
        let next = if is_absolute { value_ns } else { now.saturating_add(value_ns) };
        state.next_ns = Some(next);
        state.interval_ns = interval_ns;
        let wake_at = clock.wake_at(machine, now, next);
        state.key = Some(self.schedule(machine, process, wake_at, timer));
        old
    }

    /// Enters `timer` in the deadlines and makes sure the service thread
    /// wakes for it.
    fn schedule(&self, machine: &dyn Machine, process: &Process, wake_at_ns: u64, timer: &Arc<Timer>) -> Key {
        let (key, is_first) = {
            let mut deadlines = self.deadlines.lock();
            let key = deadlines.insert(wake_at_ns, Arc::downgrade(timer));
            (key, deadlines.first_deadline() == Some(wake_at_ns))
        };
        let mut service = self.service.lock();
        match &*service {
            Service::Running(thread) if is_first => thread.wake(),
            Service::Running(_) | Service::Unavailable | Service::Starting => {}
            Service::NotStarted => {
                *service = Service::Unavailable;
                if let Some(shared) = process.shared() {
                    let process = Arc::downgrade(&shared);
                    if machine.spawn_service("timers", Box::new(move |machine| serve(machine, process))) {
                        *service = Service::Starting;
                    }
                }
            }
        }
        key
    }

    /// Expires the timers due now; returns the monotonic time of the next
    /// deadline. The service thread calls it whenever it wakes; tests call
    /// it after moving the clock. One pass only: timers it arms again wait
    /// for the next, so that timers of tiny intervals cannot keep it busy.
    pub fn run_due(&self, machine: &dyn Machine, process: &Process) -> Option<u64> {
        let due = self.deadlines.lock().take_due(machine.monotonic_ns());
        for (key, timer) in due {
            if let Some(timer) = timer.upgrade() {
                self.expire(machine, process, &timer, key);
            }
        }
        self.deadlines.lock().first_deadline()
    }

    /// `timer`'s entry `key` came due: counts its expirations, arms it for
    /// the next, and notifies.
    fn expire(&self, machine: &dyn Machine, process: &Process, timer: &Arc<Timer>, key: Key) {
        let mut state = timer.state.lock();
        if state.key != Some(key) {
            return;
        }
        state.key = None;
        let clock = timer.follows(&state);
        let (Some(next), Some(now)) = (state.next_ns, clock.now_ns(machine, process)) else {
            state.next_ns = None;
            return;
        };
        if now < next {
            // A processor-time clock that has not got there yet, or a wall
            // clock set back.
            let wake_at = clock.wake_at(machine, now, next);
            state.key = Some(self.schedule(machine, process, wake_at, timer));
            return;
        }
        let count = match (now - next).checked_div(state.interval_ns) {
            None => {
                state.next_ns = None;
                1
            }
            Some(missed) => {
                let count = missed + 1;
                let following = next.saturating_add(count.saturating_mul(state.interval_ns));
                state.next_ns = Some(following);
                // However short the interval, the thread is woken at most
                // this often for it; the expirations in between are counted.
                let soonest = machine.monotonic_ns().saturating_add(SHORTEST_PERIOD_NS);
                let wake_at = clock.wake_at(machine, now, following).max(soonest);
                state.key = Some(self.schedule(machine, process, wake_at, timer));
                count
            }
        };
        state.expirations = state.expirations.saturating_add(count);
        let Notification::Signal { signal, thread, info, counts_overruns } = timer.notification else {
            drop(state);
            timer.waiters.notify();
            return;
        };
        let source: Option<Arc<dyn SignalSource>> = if counts_overruns {
            if state.is_signal_pending {
                state.overrun = state.overrun.saturating_add(count);
                return;
            }
            state.is_signal_pending = true;
            state.overrun = state.overrun.saturating_add(count - 1);
            Some(timer.clone())
        } else {
            None
        };
        drop(state);
        timer.waiters.notify();
        let target_thread = thread.map(|tid| process.thread(tid));
        let sent = match &target_thread {
            Some(Some(thread)) => {
                crate::signal::send(process, Target::Thread(thread), signal, info, source, Queueing::Always)
            }
            Some(None) => Err(Errno::ESRCH),
            None => crate::signal::send(
                process,
                Target::Process { sender: None },
                signal,
                info,
                source,
                Queueing::Always,
            ),
        };
        if sent.is_err() {
            timer.discard();
        }
    }

    /// Adds a POSIX timer; returns its id. `EAGAIN` past `limit` timers.
    pub fn add_posix(&self, make: impl FnOnce(i32) -> Arc<Timer>, limit: u64) -> Result<i32, Errno> {
        let mut timers = self.posix.lock();
        if timers.len() as u64 >= limit {
            return Err(Errno::EAGAIN);
        }
        let mut next = self.next_posix_id.lock();
        let mut id = *next;
        while timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        *next = id.checked_add(1).unwrap_or(0);
        timers.insert(id, make(id));
        Ok(id)
    }

    /// POSIX timer `id`.
    pub fn posix(&self, id: i32) -> Result<Arc<Timer>, Errno> {
        self.posix.lock().get(&id).cloned().ok_or(Errno::EINVAL)
    }

    /// Deletes POSIX timer `id`: disarmed, and its pending signal dropped.
    pub fn delete_posix(&self, id: i32) -> Result<(), Errno> {
        let timer = self.posix.lock().remove(&id).ok_or(Errno::EINVAL)?;
        let mut state = timer.state.lock();
        state.is_deleted = true;
        state.next_ns = None;
        if let Some(key) = state.key.take() {
            self.deadlines.lock().remove(key);
        }
        Ok(())
    }

    /// Deletes every POSIX timer, as `execve` does (interval timers and
    /// `alarm` survive it).
    pub fn delete_all_posix(&self) {
        let ids: alloc::vec::Vec<i32> = self.posix.lock().keys().copied().collect();
        for id in ids {
            // Ids come from the table, so each is there to delete.
            let _ = self.delete_posix(id);
        }
    }

    /// Interval timer `which`, made on first use.
    pub fn interval(&self, which: IntervalTimer) -> Arc<Timer> {
        let mut timers = self.interval.lock();
        timers[which as usize]
            .get_or_insert_with(|| {
                let clock = match which {
                    IntervalTimer::Real => Clock::Monotonic,
                    IntervalTimer::Virtual => Clock::ProcessUser,
                    IntervalTimer::Profiling => Clock::ProcessCpu,
                };
                let notification = Notification::Signal {
                    signal: INTERVAL_TIMER_SIGNALS[which as usize],
                    thread: None,
                    info: SignalInfo::kernel(),
                    counts_overruns: false,
                };
                Timer::new(clock, notification)
            })
            .clone()
    }

    /// The wall clock was set: each timer armed at an absolute wall-clock
    /// time gets its deadline converted again (and expires at once if the
    /// time has passed); those that cancel on a step are cancelled.
    pub fn realtime_stepped(&self, machine: &dyn Machine, process: &Process) {
        let entries = self.deadlines.lock().entries();
        for (key, timer) in entries {
            let Some(timer) = timer.upgrade() else {
                continue;
            };
            let mut state = timer.state.lock();
            if state.key != Some(key) || !state.is_absolute || !matches!(timer.clock, Clock::Realtime) {
                continue;
            }
            let Some(next) = state.next_ns else {
                continue;
            };
            self.deadlines.lock().remove(key);
            let wake_at = timer.clock.wake_at(machine, machine.realtime_ns(), next);
            state.key = Some(self.schedule(machine, process, wake_at, &timer));
            let is_cancelled = state.cancels_on_set;
            state.is_cancelled |= is_cancelled;
            drop(state);
            if is_cancelled {
                timer.waiters.notify();
            }
        }
    }

    /// Number of armed timers (tests).
    pub fn armed(&self) -> usize {
        self.deadlines.lock().len()
    }
}

/// Threads sleeping until a wall-clock time: woken at each step of the
/// wall clock to look again.
pub static REALTIME_STEPS: WaiterList = WaiterList::new();

/// The wall clock was set (`clock_settime`, `settimeofday`, a restored
/// snapshot's step): every process's absolute wall-clock timers follow,
/// and absolute wall-clock sleeps look again.
pub fn realtime_stepped(machine: &dyn Machine) {
    for process in crate::process::all() {
        process.timers.realtime_stepped(machine, &process);
    }
    REALTIME_STEPS.notify();
}

/// The service thread of `process`: expires its timers as they come due,
/// until the process is gone.
fn serve(machine: &dyn Machine, process: Weak<Process>) {
    let me = machine.current_thread();
    if let Some(process) = process.upgrade() {
        *process.timers.service.lock() = Service::Running(me);
    }
    loop {
        let next = {
            let Some(process) = process.upgrade() else {
                return;
            };
            if process.exit_status().is_some() {
                return;
            }
            process.timers.run_due(machine, &process)
        };
        machine.block(next);
    }
}
