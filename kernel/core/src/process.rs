//! Processes: their memory, threads, identity, limits, signal
//! dispositions, and their family (parent, children, group, session).
//!
//! Every process holds an address space (page tables), its own unless
//! `clone(CLONE_VM)` made it share its parent's; all run in ring 0 on one
//! kernel. Process and thread ids come from one
//! counter, so a process's id is its first thread's id, as on Linux; the
//! command the kernel starts first gets [`PROCESS_ID`]. A process that
//! ended stays, as a zombie holding its exit status, until its parent
//! waits for it (or at once when the parent ignores `SIGCHLD`); the
//! children of a process that ends go to the first process.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

pub use crate::credentials::Credentials;
use crate::machine::ThreadControl;
use crate::memory::{AddressSpace, STACK_SIZE};
use crate::random::Random;
use crate::signal::ProcessSignals;
use crate::vfs::{Caller, DescriptorTable, Location, Vfs};

mod accounting;
mod family;
mod files;
mod limits;
mod shared;
mod thread;
pub use accounting::{Accounts, CpuTime, IoAccounts, IoCounters, Usage};
pub use family::{Family, Termination, hang_up_if_orphaned, is_group_orphaned};
pub use files::ProcessFiles;
pub use limits::{LIMIT_COUNT, Limit, NR_OPEN, RLIM_INFINITY, limit};
pub use shared::{FsContext, Memory, Part, Shareable, Sharing, SignalHandlers, ThreadPart};
pub use thread::{Thread, ThreadState};

/// The process id of the first process the kernel starts (and thread id of
/// its main thread).
pub const PROCESS_ID: u64 = 1;

/// The next process or thread id.
static NEXT_ID: AtomicU64 = AtomicU64::new(PROCESS_ID);

/// Every process that has not been reaped, by id.
static PROCESSES: Mutex<BTreeMap<u64, alloc::sync::Weak<Process>>> = Mutex::new(BTreeMap::new());

/// A fresh process or thread id.
fn allocate_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The process with id `pid`, unless it has been reaped.
pub fn find(pid: u64) -> Option<Arc<Process>> {
    PROCESSES.lock().get(&pid).and_then(alloc::sync::Weak::upgrade)
}

/// Every process that has not been reaped, in id order.
pub fn all() -> Vec<Arc<Process>> {
    PROCESSES.lock().values().filter_map(alloc::sync::Weak::upgrade).collect()
}

/// Whether `caller` may see what another process keeps private (its
/// links, descriptors, environment, memory): itself, the kernel, root, or
/// a caller acting as the user the process runs as.
pub fn may_inspect(caller: &Caller<'_>, process: &Process) -> bool {
    let Some(own) = caller.process else {
        return true;
    };
    if own.pid == process.pid {
        return true;
    }
    let Some(credentials) = caller.credentials() else {
        return true;
    };
    let target = process.state.lock().credentials.clone();
    credentials.effective_user == 0
        || (credentials.effective_user == target.real_user
            && credentials.effective_user == target.effective_user
            && credentials.effective_user == target.saved_user)
}

/// Number of signals (Linux `_NSIG`).
pub const SIGNAL_COUNT: usize = 64;
/// `SIG_DFL`.
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
pub const SIG_IGN: u64 = 1;

/// A signal's disposition (`struct kernel_sigaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalAction {
    /// The handler, or `SIG_DFL` / `SIG_IGN`.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// The `SA_RESTORER` trampoline.
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

/// Mutable state of a process, its own (what other processes may share
/// is in [`Shareable`] parts of [`Process`]).
#[derive(Debug, Clone)]
pub struct ProcessState {
    /// Resource limits, indexed by `RLIMIT_*`.
    pub limits: [Limit; LIMIT_COUNT],
    /// Whom the process acts for.
    pub credentials: Credentials,
    /// `/proc/self/oom_score_adj`, from -1000 to 1000.
    pub oom_score_adjustment: i32,
    /// `PR_SET_DUMPABLE`: whether the process would leave a core dump;
    /// `execve` sets it again.
    pub is_dumpable: bool,
}

impl ProcessState {
    /// The highest descriptor number plus one (`RLIMIT_NOFILE`, which
    /// never exceeds [`NR_OPEN`]).
    pub fn descriptor_limit(&self) -> usize {
        usize::try_from(self.limits[limit::NOFILE].current.min(NR_OPEN)).unwrap_or(0)
    }
}

/// A process's controlling terminal, which `/dev/tty` opens.
#[derive(Clone)]
pub enum ControllingTerminal {
    /// The serial console (when the host's streams are not a terminal).
    Console,
    /// The terminal of the host's streams.
    Terminal(Arc<crate::terminal::Terminal>),
}

impl core::fmt::Debug for ControllingTerminal {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ControllingTerminal::Console => formatter.write_str("Console"),
            ControllingTerminal::Terminal(_) => formatter.write_str("Terminal"),
        }
    }
}

impl ControllingTerminal {
    /// Whether this is `terminal`.
    pub fn is(&self, terminal: &crate::terminal::Terminal) -> bool {
        matches!(self, ControllingTerminal::Terminal(own) if core::ptr::eq(own.as_ref(), terminal))
    }
}

/// The parts a new process starts with.
struct Parts {
    descriptors: Shareable<DescriptorTable>,
    fs: Shareable<FsContext>,
    signal_handlers: Shareable<SignalHandlers>,
}

/// The application.
pub struct Process {
    this: alloc::sync::Weak<Process>,
    /// The process id (its first thread's id).
    pub pid: u64,
    /// Parent, children, group and session.
    pub family: Mutex<Family>,
    /// Woken when a child ends (`wait4` blocks on it).
    pub child_events: crate::vfs::WaiterList,
    /// A `vfork` parent waits on this until the child calls `execve` or
    /// ends.
    pub vfork_release: crate::vfs::WaiterList,
    /// Woken when the process ends (pidfds poll it); shared so that a
    /// pidfd keeps it after the process is reaped.
    pub end_waiters: Arc<crate::vfs::WaiterList>,
    is_vfork_released: core::sync::atomic::AtomicBool,
    termination: Mutex<Option<Termination>>,
    is_ended: core::sync::atomic::AtomicBool,
    /// The memory, which `CLONE_VM` children share: only the process
    /// replaces it (`execve`, its end).
    memory: Mutex<Arc<Memory>>,
    /// Mutable state other than memory and threads.
    pub state: Mutex<ProcessState>,
    /// The descriptor table, which `CLONE_FILES` children share.
    pub descriptors: Shareable<DescriptorTable>,
    /// Working directory, root and umask, which `CLONE_FS` children share.
    pub fs: Shareable<FsContext>,
    /// Signal dispositions, which `CLONE_SIGHAND` children share.
    pub signal_handlers: Shareable<SignalHandlers>,
    /// The generator behind `getrandom`.
    pub random: Mutex<Random>,
    /// The path the executable was started from (`/proc/self/exe`).
    executable_path: Mutex<String>,
    /// The namespaces it is in (user aside: see the credentials).
    namespaces: Mutex<crate::namespace::Namespaces>,
    /// Monotonic time at which the process started.
    pub start_ns: u64,
    /// Signals sent to the process as a whole.
    pub signals: Arc<ProcessSignals>,
    /// A page the process was allowed to touch could not be had: RAM ran
    /// out, and the process is to be ended (Linux's out-of-memory kill).
    pub is_out_of_memory: core::sync::atomic::AtomicBool,
    /// POSIX timers, interval timers and the deadlines of those armed.
    pub timers: crate::timers::ProcessTimers,
    /// The controlling terminal, which children inherit and `setsid`
    /// drops; the first process starts with the console's (or the host
    /// terminal's, which the kernel sets).
    pub controlling_terminal: Mutex<Option<ControllingTerminal>>,
    threads: Mutex<BTreeMap<u64, Arc<Thread>>>,
    /// What its ended threads and reaped children used.
    pub accounts: Accounts,
    on_empty: Mutex<Option<Arc<dyn ThreadControl>>>,
    reported_calls: Mutex<Vec<u64>>,
}

impl core::fmt::Debug for Process {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Process").field("pid", &self.pid).finish()
    }
}

impl Process {
    /// A process about to run `executable_path` with `files`.
    pub fn new(
        executable_path: String,
        memory: AddressSpace,
        files: ProcessFiles,
        network: Arc<crate::net::Network>,
        random: Random,
        start_ns: u64,
    ) -> Arc<Self> {
        let parts = Parts {
            descriptors: Shareable::new(files.descriptors),
            fs: Shareable::new(FsContext {
                working_directory: files.working_directory,
                root_directory: None,
                umask: 0o022,
            }),
            signal_handlers: Shareable::new([SignalAction::default(); SIGNAL_COUNT]),
        };
        let namespaces = crate::namespace::Namespaces::initial(files.vfs, network);
        Self::with_parts(executable_path, Memory::new(memory), namespaces, parts, random, start_ns)
    }

    /// A process about to run `executable_path` with `parts`.
    fn with_parts(
        executable_path: String,
        memory: Arc<Memory>,
        namespaces: crate::namespace::Namespaces,
        parts: Parts,
        random: Random,
        start_ns: u64,
    ) -> Arc<Self> {
        let mut limits = [Limit { current: RLIM_INFINITY, maximum: RLIM_INFINITY }; LIMIT_COUNT];
        limits[limit::STACK] = Limit { current: STACK_SIZE, maximum: RLIM_INFINITY };
        limits[limit::CORE] = Limit { current: 0, maximum: RLIM_INFINITY };
        limits[limit::NOFILE] = Limit { current: 1024, maximum: 4096 };
        limits[limit::NPROC] = Limit { current: 4096, maximum: 4096 };
        limits[limit::SIGPENDING] = Limit { current: 4096, maximum: 4096 };
        limits[limit::MSGQUEUE] = Limit { current: 819_200, maximum: 819_200 };
        limits[limit::MEMLOCK] = Limit { current: 8 << 20, maximum: 8 << 20 };
        limits[limit::NICE] = Limit { current: 0, maximum: 0 };
        limits[limit::RTPRIO] = Limit { current: 0, maximum: 0 };
        let pid = allocate_id();
        let process = Arc::new_cyclic(|this| Process {
            this: this.clone(),
            pid,
            family: Mutex::new(Family { group: pid, session: pid, ..Family::default() }),
            child_events: crate::vfs::WaiterList::new(),
            vfork_release: crate::vfs::WaiterList::new(),
            end_waiters: Arc::new(crate::vfs::WaiterList::new()),
            is_vfork_released: core::sync::atomic::AtomicBool::new(false),
            termination: Mutex::new(None),
            is_ended: core::sync::atomic::AtomicBool::new(false),
            timers: crate::timers::ProcessTimers::new(),
            memory: Mutex::new(memory),
            state: Mutex::new(ProcessState {
                limits,
                credentials: Credentials::root(),
                oom_score_adjustment: 0,
                is_dumpable: true,
            }),
            descriptors: parts.descriptors,
            fs: parts.fs,
            signal_handlers: parts.signal_handlers,
            random: Mutex::new(random),
            executable_path: Mutex::new(executable_path),
            namespaces: Mutex::new(namespaces),
            start_ns,
            signals: Arc::new(ProcessSignals::for_process(pid)),
            is_out_of_memory: core::sync::atomic::AtomicBool::new(false),
            controlling_terminal: Mutex::new(Some(ControllingTerminal::Console)),
            threads: Mutex::new(BTreeMap::new()),
            accounts: Accounts::default(),
            on_empty: Mutex::new(None),
            reported_calls: Mutex::new(Vec::new()),
        });
        PROCESSES.lock().insert(pid, Arc::downgrade(&process));
        process
    }

    /// A copy of `self` for `fork` by `thread`: a new process, child of
    /// `self`, with
    /// `memory` (a copy of `self`'s, or `self`'s own for `CLONE_VM`),
    /// limits, credentials, group and session, and no thread yet; it shares the descriptor table, the filesystem context and the
    /// signal handlers with `self` as `sharing` says, and gets copies of
    /// those it does not share (descriptors still share their open files).
    /// It sends `exit_signal` to `self` when it ends. The descriptor table
    /// and filesystem context are those `thread` uses.
    pub fn fork(
        &self,
        thread: &Thread,
        memory: Arc<Memory>,
        random: Random,
        start_ns: u64,
        exit_signal: u8,
        sharing: Sharing,
    ) -> Arc<Process> {
        let parts = Parts {
            descriptors: self.descriptors_of(thread).for_child(sharing.descriptors),
            fs: self.fs_of(thread).for_child(sharing.fs),
            signal_handlers: shared::for_child(&self.signal_handlers, sharing.signal_handlers),
        };
        let state = self.state.lock().clone();
        let child = Process::with_parts(
            self.executable_path(),
            memory,
            self.namespaces().for_child(),
            parts,
            random,
            start_ns,
        );
        *child.state.lock() = state;
        *child.controlling_terminal.lock() = self.controlling_terminal.lock().clone();
        {
            let parent = self.family.lock();
            let mut family = child.family.lock();
            family.parent = self.this.clone();
            family.group = parent.group;
            family.session = parent.session;
            family.exit_signal = exit_signal;
        }
        self.family.lock().children.push(child.clone());
        child
    }

    /// The namespaces it is in.
    pub fn namespaces(&self) -> crate::namespace::Namespaces {
        self.namespaces.lock().clone()
    }

    /// Moves it into `namespaces`.
    pub fn set_namespaces(&self, namespaces: crate::namespace::Namespaces) {
        *self.namespaces.lock() = namespaces;
    }

    /// The network sockets use: its network namespace's.
    pub fn network(&self) -> Arc<crate::net::Network> {
        self.namespaces.lock().network().clone()
    }

    /// The filesystem tree: its mount namespace's.
    pub fn vfs(&self) -> Arc<Vfs> {
        self.namespaces.lock().vfs().clone()
    }

    /// The process's memory (the address space and its futexes).
    pub fn memory(&self) -> Arc<Memory> {
        self.memory.lock().clone()
    }

    /// Makes `memory` the process's; returns what it held, for the caller
    /// to drop once no lock is held (the last holder's drop releases the
    /// pages).
    pub fn replace_memory(&self, memory: Arc<Memory>) -> Arc<Memory> {
        core::mem::replace(&mut *self.memory.lock(), memory)
    }

    /// Whether another process that has not ended holds the process's
    /// memory too (`clone(CLONE_VM)`).
    pub fn is_memory_shared(&self) -> bool {
        let memory = self.memory();
        all().iter().any(|other| {
            other.pid != self.pid && !other.has_ended() && Arc::ptr_eq(&other.memory.lock(), &memory)
        })
    }

    /// The highest descriptor number plus one (`RLIMIT_NOFILE`).
    pub fn descriptor_limit(&self) -> usize {
        self.state.lock().descriptor_limit()
    }

    /// The descriptor table `thread` (one of the process's) uses: its own
    /// or the process's.
    pub fn descriptors_of(&self, thread: &Thread) -> Part<'_, DescriptorTable> {
        thread.descriptors.or(&self.descriptors)
    }

    /// The filesystem context `thread` (one of the process's) uses.
    pub fn fs_of(&self, thread: &Thread) -> Part<'_, FsContext> {
        thread.fs.or(&self.fs)
    }

    /// `unshare(CLONE_FILES)` by `thread`: it gets a table of its own
    /// unless nobody else uses the one it uses (the whole process's, when
    /// it is the one thread).
    pub fn unshare_descriptors(&self, thread: &Thread) {
        thread.descriptors.unshare(&self.descriptors, self.thread_count() <= 1);
    }

    /// `unshare(CLONE_FS)` by `thread`, as [`Process::unshare_descriptors`].
    pub fn unshare_fs(&self, thread: &Thread) {
        thread.fs.unshare(&self.fs, self.thread_count() <= 1);
    }

    /// Makes what `thread` holds of its own the process's parts (it is
    /// about to be the one thread, in `execve`).
    pub fn adopt_thread_parts(&self, thread: &Thread) {
        if let Some(table) = thread.descriptors.take() {
            drop(self.descriptors.set(table));
        }
        if let Some(fs) = thread.fs.take() {
            drop(self.fs.set(fs));
        }
    }

    /// The file mode creation mask.
    pub fn umask(&self) -> u32 {
        self.fs.with(|fs| fs.umask)
    }

    /// The working directory.
    pub fn working_directory(&self) -> Location {
        self.fs.with(|fs| fs.working_directory.clone())
    }

    /// The root directory `chroot` set (`None`: the machine's root).
    pub fn root_directory(&self) -> Option<Location> {
        self.fs.with(|fs| fs.root_directory.clone())
    }

    /// The disposition of `signal` (1 to [`SIGNAL_COUNT`]).
    pub fn signal_action(&self, signal: u8) -> SignalAction {
        let index = usize::from(signal.max(1) - 1).min(SIGNAL_COUNT - 1);
        self.signal_handlers.with(|handlers| handlers[index])
    }

    /// Forgets a child whose start failed (it never ran a thread).
    pub fn abandon(&self) {
        {
            let mut slot = self.termination.lock();
            if slot.is_none() {
                *slot = Some(Termination::Killed(crate::signal::SIGKILL));
            }
        }
        self.finish();
        if let Some(parent) = self.family.lock().parent.upgrade() {
            parent.family.lock().children.retain(|child| child.pid != self.pid);
        }
    }

    /// The path of the program the process runs.
    pub fn executable_path(&self) -> String {
        self.executable_path.lock().clone()
    }

    /// Records that the process now runs the program at `path`.
    pub fn set_executable_path(&self, path: String) {
        *self.executable_path.lock() = path;
        self.family.lock().has_executed = true;
    }

    /// The parent's id (0 when it has none).
    pub fn parent_id(&self) -> u64 {
        self.family.lock().parent.upgrade().map_or(0, |parent| parent.pid)
    }

    /// The process group's id.
    pub fn group_id(&self) -> u64 {
        self.family.lock().group
    }

    /// The session's id.
    pub fn session_id(&self) -> u64 {
        self.family.lock().session
    }

    /// Whether every thread has ended (the process is a zombie or reaped).
    pub fn has_ended(&self) -> bool {
        self.is_ended.load(Ordering::Acquire)
    }

    /// How the process ended, once it has.
    pub fn termination(&self) -> Option<Termination> {
        *self.termination.lock()
    }

    /// Lets a `vfork` parent go on (the child called `execve` or ended).
    pub fn release_vfork_parent(&self) {
        self.is_vfork_released.store(true, Ordering::Release);
        self.vfork_release.notify();
    }

    /// Whether a `vfork` parent may go on.
    pub fn is_vfork_released(&self) -> bool {
        self.is_vfork_released.load(Ordering::Acquire)
    }

    /// The process itself, shared (for what must reach it later: timers,
    /// new threads).
    pub fn shared(&self) -> Option<Arc<Process>> {
        self.this.upgrade()
    }

    /// Adds a thread with a fresh thread id (the first one gets the
    /// process's id).
    pub fn new_thread(&self) -> Arc<Thread> {
        let tid = {
            let threads = self.threads.lock();
            if threads.is_empty() && self.termination.lock().is_none() && !self.has_ended() {
                self.pid
            } else {
                allocate_id()
            }
        };
        let thread = Arc::new(Thread::of(tid, self.signals.clone()));
        self.threads.lock().insert(thread.tid, thread.clone());
        self.signals.job.thread_started();
        thread
    }

    /// Forgets a thread that never ran (its start failed).
    pub fn discard_thread(&self, tid: u64) {
        if let Some(thread) = self.threads.lock().remove(&tid) {
            self.forget_stopped_thread(&thread);
        }
    }

    /// A thread left the process: the others may complete a stop without
    /// it, and then the parent is told.
    fn forget_stopped_thread(&self, thread: &Thread) {
        if let Some(signal) = self.signals.job.thread_ended(&thread.is_counted_stopped) {
            crate::signal::notify_parent_of_job(self, crate::signal::JobEvent::Stopped(signal));
        }
    }

    /// The thread with id `tid`.
    pub fn thread(&self, tid: u64) -> Option<Arc<Thread>> {
        self.threads.lock().get(&tid).cloned()
    }

    /// All threads that have not ended.
    pub fn threads(&self) -> Vec<Arc<Thread>> {
        self.threads.lock().values().cloned().collect()
    }

    /// Number of threads that have not ended.
    pub fn thread_count(&self) -> usize {
        self.threads.lock().len()
    }

    /// Asks to be woken through `waiter` once the last thread has ended.
    pub fn notify_when_empty(&self, waiter: Arc<dyn ThreadControl>) {
        *self.on_empty.lock() = Some(waiter);
    }

    /// Ends the process with `termination` (the first one set wins):
    /// every other thread is asked to stop.
    pub fn begin_exit(&self, termination: Termination, except_tid: u64) {
        {
            let mut slot = self.termination.lock();
            if slot.is_none() {
                *slot = Some(termination);
            }
        }
        let others: Vec<Arc<Thread>> =
            self.threads.lock().values().filter(|thread| thread.tid != except_tid).cloned().collect();
        for thread in others {
            if let Some(control) = thread.control() {
                control.request_exit();
            }
        }
    }

    /// Records that thread `tid` ended (with `status` if it is the last and
    /// no status was set). The last thread makes the process a zombie: its
    /// memory and files are released, its children go to the first
    /// process, and its parent is told.
    pub fn end_thread(&self, tid: u64, status: u8) {
        let (thread, is_last) = {
            let mut threads = self.threads.lock();
            let thread = threads.remove(&tid);
            (thread, threads.is_empty())
        };
        if let Some(thread) = &thread {
            self.forget_stopped_thread(thread);
            // What it held of its own goes with it (closing its files).
            drop(thread.descriptors.take());
            drop(thread.fs.take());
        }
        if let Some(thread) = &thread {
            let cpu = thread.end_control().map_or_else(CpuTime::default, |control| CpuTime::of(&*control));
            self.accounts.add_ended_thread(Usage { cpu, io: thread.io.snapshot() });
        }
        if is_last {
            {
                let mut slot = self.termination.lock();
                if slot.is_none() {
                    *slot = Some(Termination::Exited(status));
                }
            }
            // A tracer other than the parent holds the end before the
            // parent can see the process ended, or the parent's wait on
            // another processor could reap it first.
            crate::ptrace::thread_ended(self, tid, status, true);
            self.finish();
            if let Some(waiter) = self.on_empty.lock().take() {
                waiter.wake();
            }
        } else {
            crate::ptrace::thread_ended(self, tid, status, false);
        }
    }

    /// What a process does once its last thread ended.
    fn finish(&self) {
        // Another process may hold the memory or the table too: only this
        // one lets go (the last one's release unmaps the pages). What is
        // left is an empty view of the same page tables, which the process's
        // ended threads may still have run on.
        let tables = self.memory().space.lock().tables().clone();
        drop(self.replace_memory(Memory::new(AddressSpace::new(tables))));
        drop(self.descriptors.replace(DescriptorTable::new()));
        self.is_ended.store(true, Ordering::Release);
        self.end_waiters.notify();
        self.release_vfork_parent();
        crate::ptrace::tracer_ended(self.pid);
        crate::terminal::pseudo::session_leader_ended(self);
        // Children go to the first process (or are forgotten when it is
        // gone: nobody will wait for them).
        let children = core::mem::take(&mut self.family.lock().children);
        // The groups this process kept from being orphaned: its own, if
        // its parent is in another group of the session, and each child's
        // of another group of the session (POSIX; Linux's exit_notify).
        let (group, session) = (self.group_id(), self.session_id());
        let parent = self.family.lock().parent.upgrade();
        let mut groups: Vec<u64> = children
            .iter()
            .filter(|child| child.group_id() != group && child.session_id() == session)
            .map(|child| child.group_id())
            .collect();
        if parent.is_some_and(|parent| parent.group_id() != group && parent.session_id() == session) {
            groups.push(group);
        }
        groups.sort_unstable();
        groups.dedup();
        let adopter = find(PROCESS_ID).filter(|adopter| adopter.pid != self.pid && !adopter.has_ended());
        for child in children {
            let mut family = child.family.lock();
            family.parent =
                adopter.as_ref().map_or_else(alloc::sync::Weak::new, |adopter| adopter.this.clone());
            let parent_death_signal = family.parent_death_signal;
            drop(family);
            if parent_death_signal != 0 && !child.has_ended() {
                crate::syscall::signal_process(&child, parent_death_signal);
            }
            if let Some(adopter) = &adopter {
                adopter.family.lock().children.push(child.clone());
                if child.has_ended() {
                    adopter.child_events.notify();
                }
            }
        }
        // Groups this process kept from being orphaned may be now.
        for group in groups {
            hang_up_if_orphaned(group, self.pid);
        }
        let (parent, exit_signal) = {
            let family = self.family.lock();
            (family.parent.upgrade(), family.exit_signal)
        };
        let Some(parent) = parent else {
            return;
        };
        let action = parent.signal_action(crate::signal::SIGCHLD);
        let is_reaped_at_once = exit_signal == crate::signal::SIGCHLD
            && (action.handler == SIG_IGN || action.flags & crate::signal::flag::NOCLDWAIT != 0);
        if is_reaped_at_once {
            parent.family.lock().children.retain(|child| child.pid != self.pid);
            self.forget_reaped();
        } else if exit_signal != 0 {
            crate::signal::notify_child_ended(&parent, self, exit_signal);
        }
        parent.child_events.notify();
    }

    /// Takes the reaped process out of the table of processes: its id no
    /// longer names it (in `/proc`, `kill`, `pidfd_open`), although a
    /// pidfd may still hold it.
    pub fn forget_reaped(&self) {
        let mut processes = PROCESSES.lock();
        if processes.get(&self.pid).is_some_and(|entry| core::ptr::eq(entry.as_ptr(), self)) {
            processes.remove(&self.pid);
        }
    }

    /// The exit status, once the process has one.
    pub fn exit_status(&self) -> Option<u8> {
        self.termination().map(Termination::exit_status)
    }

    /// Processor time used by all its threads, ended ones included.
    pub fn cpu_time_ns(&self) -> u64 {
        self.cpu_time().total_ns()
    }

    /// Processor time used by all its threads, ended ones included, split
    /// into user and system time.
    pub fn cpu_time(&self) -> CpuTime {
        let live = self
            .threads
            .lock()
            .values()
            .filter_map(|thread| thread.control())
            .fold(CpuTime::default(), |sum, control| sum + CpuTime::of(&*control));
        live + self.accounts.ended_threads().cpu
    }

    /// The I/O counters of all its threads, ended ones included, and of
    /// its reaped children (as Linux sums them for a process).
    pub fn io_counters(&self) -> IoCounters {
        let live = self
            .threads
            .lock()
            .values()
            .fold(IoCounters::default(), |sum, thread| sum + thread.io.snapshot());
        live + self.accounts.ended_threads().io + self.accounts.reaped_children().io
    }

    /// What its parent adds to its children's figures on reaping it: its
    /// processor time and its reaped children's, and its I/O counters.
    pub fn usage_for_parent(&self) -> Usage {
        Usage { cpu: self.cpu_time() + self.accounts.reaped_children().cpu, io: self.io_counters() }
    }

    /// Whether this is the first time system call `number` is reported as
    /// unimplemented (each is reported once).
    pub fn first_report_of(&self, number: u64) -> bool {
        let mut reported = self.reported_calls.lock();
        if reported.contains(&number) {
            return false;
        }
        reported.push(number);
        true
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let mut processes = PROCESSES.lock();
        if processes.get(&self.pid).is_some_and(|entry| entry.strong_count() == 0) {
            processes.remove(&self.pid);
        }
    }
}
