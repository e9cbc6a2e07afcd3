//! What the kernel's logic needs from the hardware.

/// Access rights of application memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights {
    /// Loads are allowed.
    pub read: bool,
    /// Stores are allowed.
    pub write: bool,
    /// Instruction fetches are allowed.
    pub execute: bool,
}

impl Rights {
    /// No access at all (`PROT_NONE`).
    pub const NONE: Rights = Rights { read: false, write: false, execute: false };
    /// Read only.
    pub const READ: Rights = Rights { read: true, write: false, execute: false };
    /// Read and write, not execute.
    pub const READ_WRITE: Rights = Rights { read: true, write: true, execute: false };

    /// Whether any access is allowed.
    pub fn is_accessible(self) -> bool {
        self.read || self.write || self.execute
    }
}

/// An application address that could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

/// Why a page could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFailure {
    /// Something is already mapped there.
    AlreadyMapped,
    /// No memory is left.
    OutOfMemory,
}

/// A kernel thread that runs application code, as the logic sees it.
pub trait ThreadControl: Send + Sync {
    /// Makes the thread runnable if it is blocked in [`Machine::block`]
    /// (or lets its next block return at once).
    fn wake(&self);

    /// Makes the thread end at its next return to application code, and
    /// wakes it if it is blocked.
    fn request_exit(&self);

    /// A signal became pending for the thread: wakes it if it is blocked,
    /// and makes it look at its signals before running more application
    /// code even if it makes no system call (by interrupting its processor).
    fn notify_signal(&self);

    /// Processor time the thread has used, in nanoseconds.
    fn cpu_time_ns(&self) -> u64;

    /// The part of [`Self::cpu_time_ns`] the kernel used on the thread's
    /// behalf (system calls, faults, interrupts of its code), in
    /// nanoseconds; the rest is user time.
    fn system_time_ns(&self) -> u64 {
        0
    }

    /// Whether the thread waits in [`Machine::block`] now (rather than
    /// running or waiting for a processor).
    fn is_blocked(&self) -> bool {
        false
    }

    /// Context switches away from the thread: (voluntary, because it
    /// blocked; involuntary, because it was preempted or yielded).
    fn context_switches(&self) -> (u64, u64) {
        (0, 0)
    }

    /// Restricts the thread to the processors in `mask`.
    fn set_affinity(&self, mask: u64);

    /// The processors the thread may run on.
    fn affinity(&self) -> u64;

    /// Makes it a real-time thread of `priority` (1 to 99), first in first
    /// out with `is_fifo` and round-robin otherwise, or a normal one again
    /// with priority 0.
    fn set_real_time(&self, priority: u8, is_fifo: bool) {
        let _ = (priority, is_fifo);
    }
}

/// How a processor spent its time since boot, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessorTimes {
    /// Running application code.
    pub user_ns: u64,
    /// Running the kernel.
    pub system_ns: u64,
    /// Idle.
    pub idle_ns: u64,
}

/// Why [`Machine::block`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// A wake-up, the deadline, or a spurious return: check the condition.
    Normal,
    /// The thread must end (its process is exiting): return at once.
    Stop,
}

/// An application thread's registers at a system call: what it resumes with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Registers {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// The vDSO the machine offers applications: its image, and the clock it
/// reads (see `rosv_abi::vdso`).
#[derive(Debug, Clone, Copy)]
pub struct Vdso {
    /// The shared object, linked at 0 (at most a few pages).
    pub image: &'static [u8],
    /// The TSC value at time zero.
    pub tsc_base: u64,
    /// Nanoseconds per TSC tick, scaled by 2^32.
    pub tsc_to_ns_multiplier: u64,
    /// Wall-clock time at time zero, in nanoseconds since the epoch.
    pub realtime_offset_ns: u64,
}

/// The page tables of one address space, as the kernel's logic drives
/// them. Addresses are application page addresses (multiples of 4096).
pub trait PageTables: Send + Sync + core::any::Any {
    /// Maps a fresh zero-filled page at `page`.
    fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure>;

    /// Maps `frame`, a page the caller holds a reference to, at `page` with
    /// `rights`; the mapping takes a reference of its own. Another frame
    /// mapped there is unmapped, and then `Ok(true)` says that
    /// [`Machine::synchronize_mappings`] must run before the old frame can
    /// go; the same frame just gets `rights`.
    fn map_frame(&self, page: u64, frame: u64, rights: Rights) -> Result<bool, MapFailure>;

    /// The frame mapped at `page`, if any.
    fn mapped_frame(&self, page: u64) -> Option<u64>;

    /// How many pages are mapped in `[start, end)`.
    fn count_mapped(&self, start: u64, end: u64) -> u64 {
        (start..end).step_by(4096).filter(|&page| self.mapped_frame(page).is_some()).count() as u64
    }

    /// Unmaps and frees every mapped page in `[start, end)`.
    fn unmap_range(&self, start: u64, end: u64);

    /// Sets the rights of every mapped page in `[start, end)`.
    fn protect_range(&self, start: u64, end: u64, rights: Rights);

    /// Sets the rights of every mapped page in `[start, end)` of a private
    /// mapping: a page whose frame has other users keeps from writing (a
    /// store faults and [`PageTables::make_private`] copies it).
    fn protect_private_range(&self, start: u64, end: u64, rights: Rights);

    /// Gives the mapped page at `page` a frame of its own, with `rights`:
    /// its frame if nobody else uses it, else a copy (copy on write).
    /// Returns whether the frame was replaced (then
    /// [`Machine::synchronize_mappings`] must run).
    fn make_private(&self, page: u64, rights: Rights) -> Result<bool, MapFailure>;

    /// Moves the pages mapped in `[from, from + length)` to the same places
    /// in `[to, to + length)`, where nothing is mapped, frames and rights
    /// unchanged; the old range is left unmapped (forgotten by other
    /// processors at the next [`Machine::synchronize_mappings`]). On
    /// failure nothing moved.
    fn move_range(&self, from: u64, to: u64, length: u64) -> Result<(), MapFailure>;

    /// Gives `child` (tables of the same machine) the pages mapped in
    /// `[start, end)`, each one more user of its frame: `fork`. With
    /// `copy_on_write` both sides lose the right to write; returns whether
    /// this side did (then [`Machine::synchronize_mappings`] must run).
    fn copy_into(
        &self,
        child: &dyn PageTables,
        start: u64,
        end: u64,
        copy_on_write: bool,
    ) -> Result<bool, MapFailure>;

    /// The tables themselves, for [`PageTables::copy_into`].
    fn as_any(&self) -> &dyn core::any::Any;

    /// The tables themselves, shared, for the machine that made them.
    fn into_any(self: alloc::sync::Arc<Self>) -> alloc::sync::Arc<dyn core::any::Any + Send + Sync>;
}

/// What a service thread runs (see [`Machine::spawn_service`]).
pub type ServiceEntry = alloc::boxed::Box<dyn FnOnce(&dyn Machine) + Send>;

/// The hardware services the kernel's logic uses.
///
/// Addresses are application (lower-half) virtual addresses; page addresses
/// are multiples of 4096. Implementations check them and fail rather than
/// touch kernel memory.
pub trait Machine: Sync {
    /// Writes bytes to the console.
    fn console_write(&self, bytes: &[u8]);

    /// Copies application memory at `address` into `buffer`, faulting pages
    /// in as needed.
    fn read_memory(&self, address: u64, buffer: &mut [u8]) -> Result<(), BadAddress>;

    /// Copies `bytes` into application memory at `address`.
    fn write_memory(&self, address: u64, bytes: &[u8]) -> Result<(), BadAddress>;

    /// New page tables for an address space, with no application page.
    fn new_page_tables(&self) -> Result<alloc::sync::Arc<dyn PageTables>, MapFailure>;

    /// Makes the calling thread run on `tables` from now on (copies to and
    /// from application memory then reach their pages).
    fn use_page_tables(&self, tables: &alloc::sync::Arc<dyn PageTables>);

    /// Nanoseconds since boot, monotonic.
    fn monotonic_ns(&self) -> u64;

    /// Nanoseconds since the Unix epoch, as far as the machine knows.
    fn realtime_ns(&self) -> u64;

    /// Steps the machine's wall clock so that [`Machine::realtime_ns`]
    /// reads `realtime_ns` now; the monotonic clock is unaffected. Never
    /// waits. Callers go through `restore::step_realtime_clock`, which also
    /// updates what the vDSO reads.
    fn set_realtime_ns(&self, realtime_ns: u64);

    /// Sets the current thread's thread pointer (the FS base).
    fn set_thread_pointer(&self, address: u64);

    /// The current thread's thread pointer.
    fn thread_pointer(&self) -> u64;

    /// A random number from the hardware, if it has a generator.
    fn hardware_random(&self) -> Option<u64>;

    /// The processor feature word for `AT_HWCAP`.
    fn hardware_capabilities(&self) -> u64;

    /// Atomically loads the aligned `u32` at `address`.
    fn load_u32(&self, address: u64) -> Result<u32, BadAddress>;

    /// Atomically replaces the aligned `u32` at `address` with `new` if it
    /// holds `expected`; returns what it held (`Ok` if it was `expected`).
    fn compare_exchange_u32(
        &self,
        address: u64,
        expected: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, BadAddress>;

    /// Makes every processor see the mapping changes made so far and frees
    /// the pages unmapped; call it after releasing the address space's lock.
    fn synchronize_mappings(&self);

    /// The calling thread.
    fn current_thread(&self) -> alloc::sync::Arc<dyn ThreadControl>;

    /// Blocks the calling thread until woken, until the monotonic clock
    /// reaches `deadline_ns`, or spuriously.
    fn block(&self, deadline_ns: Option<u64>) -> Wakeup;

    /// Names what the calling thread's next [`Machine::block`] waits for
    /// (`name`, and the address of the word or queue), for reports of a
    /// stuck machine.
    fn note_wait(&self, name: &'static &'static str, address: u64) {
        let _ = (name, address);
    }

    /// Gives the processor to another runnable thread, if any.
    fn yield_now(&self);

    /// Starts an application thread of `process` with `registers` and
    /// thread pointer `thread_pointer`, owned by `thread`, on `tables` (the
    /// process's), with the caller's floating-point state.
    fn spawn_thread(
        &self,
        registers: &Registers,
        thread_pointer: u64,
        process: &alloc::sync::Arc<crate::process::Process>,
        thread: alloc::sync::Arc<crate::process::Thread>,
        tables: &alloc::sync::Arc<dyn PageTables>,
    ) -> Result<alloc::sync::Arc<dyn ThreadControl>, MapFailure>;

    /// The calling thread's floating-point state, in the processor's save
    /// format (the same length every time).
    fn save_fpu(&self) -> alloc::vec::Vec<u8>;

    /// Loads floating-point state saved by [`Machine::save_fpu`] (and perhaps
    /// changed by the application); invalid parts are corrected, not faulted on.
    fn restore_fpu(&self, state: &[u8]);

    /// Makes every processor pass a full memory barrier before returning
    /// (`membarrier`): each takes an interrupt, which serialises it.
    fn barrier_all_processors(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }

    /// The kernel's log as `<level>message` lines: what followed byte
    /// count `since` that is still kept, and the count written so far.
    fn kernel_log(&self, since: u64) -> (alloc::vec::Vec<u8>, u64) {
        let _ = since;
        (alloc::vec::Vec::new(), 0)
    }

    /// Number of processors.
    fn cpu_count(&self) -> usize;

    /// How processor `cpu` spent its time since boot (`/proc/stat`); by
    /// default all of it idle.
    fn processor_times(&self, cpu: usize) -> ProcessorTimes {
        let _ = cpu;
        ProcessorTimes { idle_ns: self.monotonic_ns(), ..ProcessorTimes::default() }
    }

    /// The calling thread's processor.
    fn current_cpu(&self) -> usize;

    /// Starts a kernel thread named `name` that runs `entry` with the
    /// machine (a service such as a process's timers); `false` if the
    /// machine cannot, and then nothing runs it.
    fn spawn_service(&self, name: &str, entry: ServiceEntry) -> bool {
        let _ = (name, entry);
        false
    }

    /// The vDSO to map into applications, if the machine has one.
    fn vdso(&self) -> Option<Vdso> {
        None
    }
}

static KERNEL_MACHINE: spin::Once<&'static dyn Machine> = spin::Once::new();

/// Installs the machine that work done on the kernel's own account uses
/// (a loop device's transfers to its backing file, which reach the file's
/// filesystem from a disk request that carries no caller); later calls
/// keep the first.
pub fn install(machine: &'static dyn Machine) {
    KERNEL_MACHINE.call_once(|| machine);
}

/// The machine [`install`] registered, if any.
pub fn installed() -> Option<&'static dyn Machine> {
    KERNEL_MACHINE.get().copied()
}
