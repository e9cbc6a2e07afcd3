//! Scheduling policy: run-queue order, where a woken thread goes, and what
//! an idle processor takes from a busy one. Pure logic, tested on the host.
//!
//! Each processor has a run queue ordered by priority, first in first out
//! within a priority, and runs each thread for at most one time slice
//! while others of its priority wait. Normal threads have priority 0;
//! real-time ones (`SCHED_FIFO`, `SCHED_RR`) 1 to 99 and run before any
//! lower one is queued: a FIFO thread keeps its processor until it
//! blocks, yields or a higher one comes, a round-robin one also gives it
//! to an equal one at the end of its slice ([`keeps_running`]). Kernel
//! threads come before all ([`KERNEL_PRIORITY`]): they do short work that
//! real-time application threads must not starve. A thread that becomes runnable goes to the
//! processor it last ran on if that one is idle, else to any idle processor
//! it may run on, else back to its last processor; an idle processor steals
//! the most recently queued thread it may run from the longest queue. A
//! thread moved from one queue to another keeps its place by the time it
//! was queued, so that moving never sends it to the back: a thread moved
//! back and forth while loads shift would otherwise never run.

use alloc::collections::VecDeque;

/// The priority of kernel threads, above every real-time one.
pub const KERNEL_PRIORITY: u8 = 100;

/// What the policy needs to know of a thread.
pub trait Schedulable {
    /// The processors the thread may run on, one bit each.
    fn affinity(&self) -> u64;

    /// Its priority: 0 for a normal thread, 1 to 99 for a real-time one,
    /// [`KERNEL_PRIORITY`] for a kernel thread; higher runs first.
    fn priority(&self) -> u8 {
        0
    }
}

/// Whether the running thread of priority `priority` (a FIFO one with
/// `is_fifo`) keeps its processor at a scheduling point (the end of its
/// slice, or a yield with `is_yield`) when the highest queued thread has
/// priority `queued`. `false` with nothing queued lets a normal thread
/// look for work elsewhere (it still keeps the processor if none is found);
/// a real-time one never gives its processor to a stolen thread.
pub fn keeps_running(priority: u8, is_fifo: bool, queued: Option<u8>, is_yield: bool) -> bool {
    match queued {
        None => priority > 0,
        Some(queued) if queued > priority => false,
        Some(queued) if queued < priority => true,
        Some(_) => priority > 0 && is_fifo && !is_yield,
    }
}

/// A queued thread and when it was queued (a clock shared by all
/// processors, such as the TSC).
#[derive(Debug, PartialEq)]
pub struct Queued<T> {
    /// The thread.
    pub thread: T,
    /// When it was queued.
    pub since: u64,
}

/// One processor's runnable threads, oldest first.
#[derive(Debug)]
pub struct RunQueue<T> {
    threads: VecDeque<Queued<T>>,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RunQueue<T> {
    /// An empty queue.
    pub const fn new() -> Self {
        RunQueue { threads: VecDeque::new() }
    }
}

impl<T: Schedulable> RunQueue<T> {
    /// Queues `thread`, made runnable at `now`, behind the others of its
    /// priority and ahead of lower ones.
    pub fn push(&mut self, thread: T, now: u64) {
        let priority = thread.priority();
        let place = self.threads.iter().position(|queued| queued.thread.priority() < priority);
        self.threads.insert(place.unwrap_or(self.threads.len()), Queued { thread, since: now });
    }

    /// Queues a thread taken from another queue ahead of those of its
    /// priority queued after it.
    pub fn push_moved(&mut self, moved: Queued<T>) {
        let priority = moved.thread.priority();
        let place = self.threads.iter().position(|queued| {
            let other = queued.thread.priority();
            other < priority || other == priority && queued.since > moved.since
        });
        self.threads.insert(place.unwrap_or(self.threads.len()), moved);
    }

    /// The priority of the thread that would run next.
    pub fn first_priority(&self) -> Option<u8> {
        self.threads.front().map(|queued| queued.thread.priority())
    }

    /// The thread to run next.
    pub fn pop(&mut self) -> Option<T> {
        self.threads.pop_front().map(|queued| queued.thread)
    }

    /// Number of queued threads.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no thread is queued.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Takes the most recently queued thread that may run on `cpu`.
    pub fn steal_for(&mut self, cpu: usize) -> Option<Queued<T>> {
        let index = self.threads.iter().rposition(|queued| queued.thread.affinity() & (1 << cpu) != 0)?;
        self.threads.remove(index)
    }
}

/// What the policy needs to know of a processor when placing a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLoad {
    /// Whether it is online.
    pub is_online: bool,
    /// Whether it is idle (running its idle thread with nothing queued).
    pub is_idle: bool,
    /// Threads queued on it.
    pub queued: usize,
}

/// The processor a woken thread should join: its last processor if idle,
/// else an idle processor it may run on, else the least loaded one it may
/// run on (its last one on a tie).
pub fn choose_cpu(last: usize, affinity: u64, loads: &[CpuLoad]) -> usize {
    let allowed = |cpu: usize| cpu < 64 && affinity & (1 << cpu) != 0 && loads[cpu].is_online;
    if allowed(last) && loads[last].is_idle {
        return last;
    }
    if let Some(idle) = (0..loads.len()).find(|&cpu| allowed(cpu) && loads[cpu].is_idle) {
        return idle;
    }
    let mut best = if allowed(last) { Some(last) } else { None };
    for cpu in (0..loads.len()).filter(|&cpu| allowed(cpu)) {
        if best.is_none_or(|best| loads[cpu].queued < loads[best].queued) {
            best = Some(cpu);
        }
    }
    best.unwrap_or(last)
}

/// Where a busy processor `busy` (running a thread) should move one of its
/// queued threads: the least loaded other processor, if it runs at least
/// two threads fewer (running and queued ones counted).
pub fn balance_target(busy: usize, loads: &[CpuLoad]) -> Option<usize> {
    let load = |cpu: usize| loads[cpu].queued + usize::from(!loads[cpu].is_idle);
    let busy_load = loads.get(busy)?.queued + 1;
    let lightest =
        (0..loads.len()).filter(|&cpu| cpu != busy && loads[cpu].is_online).min_by_key(|&cpu| load(cpu))?;
    (busy_load >= load(lightest) + 2).then_some(lightest)
}

/// The processor an idle processor `idle` should steal from: the one with
/// the longest queue of at least one thread.
pub fn busiest(idle: usize, loads: &[CpuLoad]) -> Option<usize> {
    (0..loads.len())
        .filter(|&cpu| cpu != idle && loads[cpu].is_online && loads[cpu].queued > 0)
        .max_by_key(|&cpu| loads[cpu].queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Task(u32, u64);

    impl Schedulable for Task {
        fn affinity(&self) -> u64 {
            self.1
        }
    }

    /// A task with a priority.
    #[derive(Debug, PartialEq)]
    struct Ranked(u32, u8);

    impl Schedulable for Ranked {
        fn affinity(&self) -> u64 {
            !0
        }

        fn priority(&self) -> u8 {
            self.1
        }
    }

    #[test]
    fn higher_priorities_run_first_and_equal_ones_in_order() {
        let mut queue = RunQueue::new();
        queue.push(Ranked(1, 0), 1);
        queue.push(Ranked(2, 10), 2);
        queue.push(Ranked(3, 0), 3);
        queue.push(Ranked(4, 50), 4);
        queue.push(Ranked(5, 10), 5);
        assert_eq!(queue.first_priority(), Some(50));
        queue.push_moved(Queued { thread: Ranked(6, 10), since: 0 });
        let order: Vec<u32> = core::iter::from_fn(|| queue.pop()).map(|task| task.0).collect();
        assert_eq!(order, [4, 6, 2, 5, 1, 3]);
    }

    #[test]
    fn real_time_threads_keep_their_processor_as_their_policy_says() {
        // A FIFO thread keeps it against equal and lower ones until it yields.
        assert!(keeps_running(10, true, Some(10), false));
        assert!(!keeps_running(10, true, Some(10), true));
        assert!(keeps_running(10, true, Some(0), true), "a yield never goes to a lower one");
        assert!(!keeps_running(10, true, Some(11), false));
        // A round-robin one shares it with equal ones at each slice's end.
        assert!(!keeps_running(10, false, Some(10), false));
        assert!(keeps_running(10, false, Some(3), false));
        // Normal threads take turns, and real-time ones never steal work.
        assert!(!keeps_running(0, false, Some(0), false));
        assert!(!keeps_running(0, false, None, false));
        assert!(keeps_running(5, false, None, true));
        assert!(!keeps_running(0, false, Some(KERNEL_PRIORITY), false));
    }

    fn load(is_idle: bool, queued: usize) -> CpuLoad {
        CpuLoad { is_online: true, is_idle, queued }
    }

    #[test]
    fn queues_are_first_in_first_out() {
        let mut queue = RunQueue::new();
        queue.push(Task(1, !0), 10);
        queue.push(Task(2, !0), 20);
        assert_eq!(queue.pop(), Some(Task(1, !0)));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn stealing_respects_affinity() {
        let mut queue = RunQueue::new();
        queue.push(Task(1, 0b01), 1);
        queue.push(Task(2, 0b10), 2);
        queue.push(Task(3, 0b01), 3);
        assert_eq!(queue.steal_for(1), Some(Queued { thread: Task(2, 0b10), since: 2 }));
        assert_eq!(queue.steal_for(1), None);
        assert_eq!(queue.steal_for(0), Some(Queued { thread: Task(3, 0b01), since: 3 }));
    }

    #[test]
    fn moved_threads_keep_their_place_by_age() {
        let mut left = RunQueue::new();
        let mut right = RunQueue::new();
        left.push(Task(1, !0), 10);
        left.push(Task(2, !0), 40);
        right.push(Task(3, !0), 20);
        right.push(Task(4, !0), 30);
        // Moved back and forth, thread 2 never falls behind threads queued
        // after it, and overtakes none queued before it.
        for _ in 0..3 {
            let moved = left.steal_for(0).expect("thread 2 is queued");
            right.push_moved(moved);
            let moved = right.steal_for(0).expect("thread 2 is queued");
            assert_eq!(moved.thread, Task(2, !0));
            left.push_moved(moved);
        }
        right.push(Task(5, !0), 50);
        right.push_moved(left.steal_for(0).expect("thread 2 is queued"));
        let order: Vec<u32> = core::iter::from_fn(|| right.pop()).map(|task| task.0).collect();
        assert_eq!(order, [3, 4, 2, 5]);
    }

    #[test]
    fn woken_threads_prefer_their_idle_cpu_then_any_idle_cpu() {
        let loads = [load(false, 2), load(true, 0), load(true, 0)];
        assert_eq!(choose_cpu(2, !0, &loads), 2);
        assert_eq!(choose_cpu(0, !0, &loads), 1);
        assert_eq!(choose_cpu(0, 0b101, &loads), 2);
        assert_eq!(choose_cpu(0, 0b001, &loads), 0, "affinity wins over idleness");
    }

    #[test]
    fn without_idle_cpus_the_least_loaded_allowed_one_wins() {
        let loads = [load(false, 3), load(false, 1), load(false, 1)];
        assert_eq!(choose_cpu(0, !0, &loads), 1);
        assert_eq!(choose_cpu(2, !0, &loads), 2, "the last CPU wins ties");
        let offline = [load(false, 3), CpuLoad { is_online: false, is_idle: true, queued: 0 }];
        assert_eq!(choose_cpu(0, !0, &offline), 0);
    }

    #[test]
    fn busy_cpus_hand_work_to_much_lighter_ones() {
        // Running one and queueing one, against an idle processor: move one.
        assert_eq!(balance_target(1, &[load(true, 0), load(false, 1)]), Some(0));
        // Running one and queueing one, against one running a thread: even.
        assert_eq!(balance_target(1, &[load(false, 0), load(false, 1)]), None);
        assert_eq!(balance_target(0, &[load(false, 3), load(false, 1), load(false, 0)]), Some(2));
        let offline = CpuLoad { is_online: false, is_idle: true, queued: 0 };
        assert_eq!(balance_target(1, &[offline, load(false, 2)]), None);
    }

    #[test]
    fn idle_cpus_steal_from_the_longest_queue() {
        let loads = [load(true, 0), load(false, 1), load(false, 4)];
        assert_eq!(busiest(0, &loads), Some(2));
        assert_eq!(busiest(0, &[load(true, 0), load(false, 0)]), None);
    }
}
