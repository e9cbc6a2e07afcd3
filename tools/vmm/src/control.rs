//! What the vCPU threads and the thread that waits for them share.
//!
//! The first vCPU to see the VM end records the [`Ending`] and every vCPU
//! then leaves its loop; the waiting thread learns the ending, or gives up
//! at the time limit. A vCPU thread inside KVM_RUN notices a request only
//! when it leaves the guest, so [`kick`] interrupts it with a signal whose
//! handler does nothing but make KVM_RUN return EINTR.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use crate::Ending;
use crate::devices::Devices;

/// The state every vCPU thread sees.
#[derive(Debug)]
pub struct Control {
    devices: Mutex<Devices>,
    is_stopping: AtomicBool,
    nmi_requests: Vec<AtomicBool>,
    ending: Mutex<Option<Ending>>,
    ended: Condvar,
}

impl Control {
    /// Shared state for `cpus` vCPUs and `devices`.
    pub fn new(devices: Devices, cpus: u32) -> Self {
        Control {
            devices: Mutex::new(devices),
            is_stopping: AtomicBool::new(false),
            nmi_requests: (0..cpus).map(|_| AtomicBool::new(false)).collect(),
            ending: Mutex::new(None),
            ended: Condvar::new(),
        }
    }

    /// The devices, for one access.
    pub fn devices(&self) -> MutexGuard<'_, Devices> {
        // A vCPU thread that panicked while holding the lock left the
        // devices as they were after some access: still usable.
        self.devices.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the vCPUs should leave their loops.
    pub fn is_stopping(&self) -> bool {
        self.is_stopping.load(Ordering::Acquire)
    }

    /// Records how the VM ended, unless an ending is already recorded, and
    /// asks every vCPU to stop.
    pub fn finish(&self, ending: Ending) {
        let mut recorded = self.ending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recorded.is_none() {
            *recorded = Some(ending);
        }
        self.is_stopping.store(true, Ordering::Release);
        self.ended.notify_all();
    }

    /// Waits until the VM ends or `limit` passes; `None` on the time limit.
    pub fn wait(&self, limit: Option<Duration>) -> Option<Ending> {
        let deadline = limit.map(|limit| Instant::now() + limit);
        let mut recorded = self.ending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(ending) = recorded.take() {
                return Some(ending);
            }
            recorded = match deadline {
                None => self.ended.wait(recorded).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    self.ended
                        .wait_timeout(recorded, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Asks every vCPU to take an NMI.
    pub fn request_nmis(&self) {
        for request in &self.nmi_requests {
            request.store(true, Ordering::Release);
        }
    }

    /// Whether vCPU `index` was asked to take an NMI; clears the request.
    pub fn take_nmi_request(&self, index: u32) -> bool {
        self.nmi_requests.get(index as usize).is_some_and(|request| request.swap(false, Ordering::AcqRel))
    }

    /// Whether some vCPU has not yet taken its NMI.
    pub fn has_pending_nmis(&self) -> bool {
        self.nmi_requests.iter().any(|request| request.load(Ordering::Acquire))
    }
}

/// The signal that interrupts KVM_RUN.
fn kick_signal() -> i32 {
    SIGRTMIN()
}

extern "C" fn ignore_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the do-nothing handler of the kick signal, once per process.
pub fn install_kick_handler() -> Result<(), vmm_sys_util::errno::Error> {
    static INSTALLED: Once = Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| result = register_signal_handler(kick_signal(), ignore_signal));
    result
}

/// Interrupts `thread` if it is inside KVM_RUN. A thread between two
/// KVM_RUN calls misses the signal, so callers repeat it until what they
/// asked for has happened.
pub fn kick<T>(thread: &JoinHandle<T>) {
    if !thread.is_finished() {
        // The thread may have just ended (ESRCH): nothing left to interrupt.
        let _ = thread.kill(kick_signal());
    }
}

/// Kicks `threads` every millisecond until `is_done` or `limit` passes.
pub fn kick_until<T>(threads: &[JoinHandle<T>], limit: Duration, is_done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !is_done() && Instant::now() < deadline {
        threads.iter().for_each(kick);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::InterruptLine;
    use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

    fn control(cpus: u32) -> Control {
        let line = InterruptLine(EventFd::new(EFD_NONBLOCK).unwrap());
        Control::new(Devices::new(Box::new(std::io::sink()), line), cpus)
    }

    #[test]
    fn the_first_ending_wins_and_stops_everyone() {
        let control = control(2);
        assert!(!control.is_stopping());
        control.finish(Ending::PoweredOff { status: 3 });
        control.finish(Ending::Reset);
        assert!(control.is_stopping());
        assert_eq!(control.wait(Some(Duration::from_secs(1))), Some(Ending::PoweredOff { status: 3 }));
    }

    #[test]
    fn waiting_gives_up_at_the_limit() {
        let control = control(1);
        let started = Instant::now();
        assert_eq!(control.wait(Some(Duration::from_millis(20))), None);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn nmi_requests_are_taken_once_per_vcpu() {
        let control = control(2);
        control.request_nmis();
        assert!(control.take_nmi_request(1));
        assert!(!control.take_nmi_request(1));
        assert!(control.has_pending_nmis());
        assert!(control.take_nmi_request(0));
        assert!(!control.has_pending_nmis());
        assert!(!control.take_nmi_request(7));
    }

    #[test]
    fn kicking_a_thread_leaves_the_process_alone() {
        install_kick_handler().unwrap();
        // Without the handler, the real-time signal would end the process.
        let thread = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(50)));
        kick_until(std::slice::from_ref(&thread), Duration::from_secs(5), || thread.is_finished());
        thread.join().unwrap();
    }
}
