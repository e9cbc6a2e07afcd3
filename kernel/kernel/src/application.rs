//! Running one command: find the executable, load it, run its threads until
//! the process ends, clean up.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use rosv_abi::exit::status;
use rosv_core::loader::executable::OpenExecutable;
use rosv_core::loader::{self, ExecutableFile, Program};
use rosv_core::machine::Machine;
use rosv_core::memory::{Access, FaultResolution};
use rosv_core::process::{Credentials, Process, ProcessFiles, Termination, Thread};
use rosv_core::random::Random;
use rosv_core::signal::Fault;
use rosv_core::streams::StandardStreams;
use rosv_core::syscall::{self, Outcome};
use rosv_core::vfs::file::flags::O_RDONLY;
use rosv_core::vfs::{Caller, FileType, Vfs};
use rosv_drivers::virtio::entropy::VirtioEntropy;
use rosv_platform::console::Console;
use rosv_platform::interrupts::{self, Diversion, FaultHandlers, InterruptFrame};
use rosv_platform::sched::{self, FpuState};
use rosv_platform::syscall::SyscallFrame;
use rosv_platform::time;

use crate::machine::{self, KernelThread, PlatformMachine};

/// What a scheduler thread that runs application code carries.
pub struct ApplicationThread {
    /// Its process.
    pub process: Arc<Process>,
    /// Its state in the process.
    pub thread: Arc<Thread>,
    /// Its last page fault touched a mapped file past its end (or one that
    /// could not be read): a bus error rather than a segmentation fault.
    pub has_bus_error: AtomicBool,
}

impl ApplicationThread {
    /// The kernel's record of `thread` of `process`.
    pub fn new(process: Arc<Process>, thread: Arc<Thread>) -> Self {
        ApplicationThread { process, thread, has_bus_error: AtomicBool::new(false) }
    }
}

static MACHINE: spin::Once<PlatformMachine> = spin::Once::new();

/// Registers the system call, fault and stop handlers that run
/// applications.
pub fn init(machine: PlatformMachine) {
    let machine: &'static PlatformMachine = MACHINE.call_once(|| machine);
    rosv_core::machine::install(machine);
    rosv_platform::syscall::init(on_system_call);
    interrupts::set_fault_handlers(FaultHandlers { resolve_page_fault, diverted: on_diversion });
    sched::set_stop_handler(stop_current_thread);
}

/// The machine the kernel's logic runs against.
pub fn machine() -> &'static PlatformMachine {
    MACHINE.get().expect("application::init runs before any application")
}

/// The application thread running on this processor, if any.
fn current() -> Option<Arc<ApplicationThread>> {
    sched::current().attachment::<ApplicationThread>()
}

/// Bytes from a hardware entropy source, read once at boot and mixed into
/// every process's generator (`getrandom`, `/dev/random`, `AT_RANDOM`).
static BOOT_ENTROPY: spin::Once<[u8; 32]> = spin::Once::new();

/// Reads boot entropy from `source` (a virtio entropy device).
pub fn add_boot_entropy(source: &VirtioEntropy) {
    let mut bytes = [0u8; 32];
    match source.fill(&mut bytes) {
        Ok(()) => {
            BOOT_ENTROPY.call_once(|| bytes);
        }
        Err(error) => log::warn!("virtio entropy source: {error}"),
    }
}

/// What a command runs with.
pub struct Launch<'a> {
    /// The filesystem tree.
    pub vfs: &'a Arc<Vfs>,
    /// The network.
    pub network: &'a Arc<rosv_core::net::Network>,
    /// `argv`.
    pub arguments: &'a [String],
    /// The environment, as `NAME=value`.
    pub environment: &'a [Vec<u8>],
    /// The working directory.
    pub working_directory: &'a str,
    /// The standard streams (none: the console).
    pub streams: Option<&'a StandardStreams>,
    /// The user and group to run as (none: root).
    pub user: Option<(u32, u32)>,
}

/// Runs a command to its end and returns its exit status, or, when the
/// command could not start, the status that reports why (`Err`).
/// `before_entry` runs once the program is loaded, just before its first
/// instruction.
pub fn run(launch: &Launch<'_>, before_entry: impl FnOnce()) -> Result<u8, u8> {
    let Some(program_path) = launch.arguments.first() else {
        return Err(status::USAGE);
    };
    let path = absolute_path(launch.working_directory, program_path);
    let file = open_executable(launch.vfs, &path)?;
    let headers = loader::read_headers(&file).map_err(|error| {
        let _ = writeln!(Console, "rosv: {path}: the file could not be read: {error:?}");
        status::CANNOT_EXECUTE
    })?;
    // A dynamically linked program starts in its interpreter, which must be
    // in the image too.
    let interpreter = match loader::interpreter_path(&headers, file.size()) {
        Some(interpreter) => Some(open_executable(launch.vfs, &interpreter).inspect_err(|_| {
            let _ = writeln!(Console, "rosv: {path}: its interpreter {interpreter} cannot be loaded");
        })?),
        None => None,
    };
    let machine = machine();
    let opened = match launch.streams {
        Some(streams) => ProcessFiles::with_standard_files(
            launch.vfs.clone(),
            machine,
            launch.working_directory,
            streams.files(),
        ),
        None => ProcessFiles::open(launch.vfs.clone(), machine, launch.working_directory),
    };
    let files = match opened {
        Ok(files) => files,
        Err(error) => {
            let _ = writeln!(Console, "rosv: cannot give {path} its files: {error}");
            return Err(status::KERNEL_FAILURE);
        }
    };
    let mut generator = Random::seeded(machine);
    if let Some(entropy) = BOOT_ENTROPY.get() {
        generator.add_entropy(entropy);
    }
    let Ok(tables) = machine.new_page_tables() else {
        let _ = writeln!(Console, "rosv: out of memory: no room for {path}'s page tables");
        return Err(status::killed_by(status::SIGKILL));
    };
    let memory = rosv_core::memory::AddressSpace::new(tables.clone());
    let executable_path = file.resolved_path(launch.vfs);
    let process = Process::new(
        executable_path,
        memory,
        files,
        launch.network.clone(),
        generator,
        time::since_boot_ns(),
    );
    if let Some((user, group)) = launch.user {
        process.state.lock().credentials = Credentials::of(user, group);
    }
    let mut random = [0u8; 16];
    process.random.lock().fill(&mut random);
    let arguments: Vec<Vec<u8>> =
        launch.arguments.iter().map(|argument| argument.clone().into_bytes()).collect();
    let program = Program {
        file: &file,
        interpreter: interpreter.as_ref().map(|interpreter| interpreter as &dyn ExecutableFile),
        path: &path,
        arguments: &arguments,
        environment: launch.environment,
        random,
    };
    // The loader writes the program's stack and data through the new
    // tables: this thread runs on them until the program ends.
    machine.use_page_tables(&tables);
    let loaded = loader::load(machine, &mut process.memory().space.lock(), &program);
    drop(file);
    drop(interpreter);
    let start = match loaded {
        Ok(start) => start,
        Err(error) => {
            let _ = writeln!(Console, "rosv: {path}: {error}");
            release_memory(&process);
            return Err(status::CANNOT_EXECUTE);
        }
    };
    let main = process.new_thread();
    process.notify_when_empty(Arc::new(KernelThread(sched::current())));
    before_entry();
    let registers = rosv_core::machine::Registers {
        rip: start.entry,
        rsp: start.stack_pointer,
        rflags: INITIAL_RFLAGS,
        ..Default::default()
    };
    let application = Arc::new(ApplicationThread::new(process.clone(), main.clone()));
    // The boot thread never used floating point: its state is the initial
    // one every process starts with.
    let figures = rosv_core::pages::figures();
    log::info!(
        "memory: {} KiB available to the application ({} KiB of RAM, {} KiB kept for the kernel)",
        figures.available_bytes() / 1024,
        figures.total_bytes / 1024,
        figures.reserve_bytes / 1024
    );
    // The host's terminal is the first session's controlling terminal.
    if let Some(terminal) = launch.streams.and_then(|streams| streams.terminal()) {
        terminal.set_session(process.session_id());
        *process.controlling_terminal.lock() =
            Some(rosv_core::process::ControllingTerminal::Terminal(terminal.clone()));
    }
    let spawned = sched::spawn_application(
        "main",
        &machine::frame(&registers),
        0,
        FpuState::capture(),
        rosv_platform::frames::Purpose::Application,
        |thread| {
            thread.set_process_id(process.pid);
            thread.attach(application);
            machine::set_thread_tables(thread, &tables);
            main.set_control(Arc::new(KernelThread(thread.clone())));
        },
    );
    if spawned.is_none() {
        let _ = writeln!(Console, "rosv: out of memory: no room for the main thread's stacks");
        release_memory(&process);
        return Err(status::killed_by(status::SIGKILL));
    }
    drop(main);
    drop(tables);
    if let Some(streams) = launch.streams {
        streams.foreground().set(Some(&process));
    }
    while process.thread_count() > 0 {
        sched::park();
    }
    if let Some(streams) = launch.streams {
        streams.foreground().set(None);
    }
    // The first process's end ends the others it left behind, as the end
    // of a container's first process does.
    for other in rosv_core::process::all() {
        if !other.has_ended() {
            other.begin_exit(Termination::Killed(status::SIGKILL), u64::MAX);
        }
    }
    let exit_status = process.exit_status().unwrap_or(0);
    release_memory(&process);
    Ok(exit_status)
}

/// RFLAGS of a new process: interrupts enabled, the reserved bit 1.
const INITIAL_RFLAGS: u64 = 0x202;

fn release_memory(process: &Process) {
    process.memory().space.lock().release_all();
    machine().synchronize_mappings();
    sched::load_page_tables(0, None);
}

fn absolute_path(working_directory: &str, path: &str) -> String {
    if path.starts_with('/') {
        return String::from(path);
    }
    let mut joined = String::from(working_directory.trim_end_matches('/'));
    joined.push('/');
    joined.push_str(path);
    joined
}

/// Opens the executable at `path`, or reports why not and returns the exit
/// status to end with.
fn open_executable(vfs: &Vfs, path: &str) -> Result<OpenExecutable<'static>, u8> {
    let caller = Caller::kernel(machine());
    let location = vfs.resolve(&caller, &vfs.root(), path, true).map_err(|error| {
        let _ = writeln!(Console, "rosv: {path}: {error}");
        status::NOT_FOUND
    })?;
    if location.file_type() != FileType::Regular {
        let _ = writeln!(Console, "rosv: {path}: not a regular file");
        return Err(status::CANNOT_EXECUTE);
    }
    let opened = vfs.open(&caller, &vfs.root(), path, O_RDONLY, 0).and_then(|file| {
        let size = file.metadata(&caller)?.size_bytes;
        Ok(OpenExecutable { file, size, path: Arc::from(path), machine: machine() })
    });
    opened.map_err(|error| {
        let _ = writeln!(Console, "rosv: {path}: the file could not be read: {error}");
        status::CANNOT_EXECUTE
    })
}

fn on_system_call(frame: &mut SyscallFrame) {
    let Some(application) = current() else {
        frame.rax = rosv_core::errno::Errno::ENOSYS.to_return() as u64;
        return;
    };
    let mut registers = machine::registers(frame);
    let mut outcome = syscall::handle(machine(), &application.process, &application.thread, &mut registers);
    // A bus error met while copying to or from application memory became
    // EFAULT; it must not colour the next fault.
    application.has_bus_error.store(false, Ordering::Relaxed);
    if application.process.is_out_of_memory.load(Ordering::Relaxed) {
        outcome = kill_out_of_memory(&application, &registers);
    }
    match outcome {
        Outcome::Resume => machine::write_frame(frame, &registers),
        Outcome::ResumeExactly => {
            drop(application);
            interrupts::resume_application(&machine::interrupt_frame(&registers))
        }
        Outcome::ExitThread => {
            drop(application);
            sched::exit_current()
        }
    }
}

/// A thread asked to stop (its process is exiting) ends here.
fn stop_current_thread() -> ! {
    if let Some(application) = current() {
        application.process.end_thread(application.thread.tid, 0);
    }
    sched::exit_current()
}

/// How long a page fault may wait for the address space before the kernel
/// reports a deadlock rather than hang.
const FAULT_LOCK_PATIENCE_NS: u64 = 10_000_000_000;

fn resolve_page_fault(address: u64, access: interrupts::Access) -> bool {
    let Some(application) = current() else {
        return false;
    };
    let access = match access {
        interrupts::Access::Read => Access::Read,
        interrupts::Access::Write => Access::Write,
        interrupts::Access::Execute => Access::Execute,
    };
    // Other processors hold the address space only briefly (a file's page
    // is read without it); the kernel never touches unmapped application
    // memory while holding it itself, so a lock that stays taken means a
    // kernel bug, reported instead of hanging.
    let memory = application.process.memory();
    let memory = &memory.space;
    let lock = || {
        let deadline = time::since_boot_ns() + FAULT_LOCK_PATIENCE_NS;
        loop {
            if let Some(space) = memory.try_lock() {
                return Some(space);
            }
            if time::since_boot_ns() > deadline {
                let _ = writeln!(Console, "rosv: page fault at {address:#x}: the address space stays locked");
                return None;
            }
            core::hint::spin_loop();
        }
    };
    let (resolution, needs_shootdown) = rosv_core::memory::resolve_fault(&lock, machine(), address, access);
    if needs_shootdown {
        // A private copy took a file page's place: no processor may go on
        // reading the file's page through its old translation.
        machine().synchronize_mappings();
    }
    match resolution {
        FaultResolution::Mapped => true,
        FaultResolution::Invalid => false,
        FaultResolution::BusError => {
            application.has_bus_error.store(true, Ordering::Relaxed);
            false
        }
        FaultResolution::OutOfMemory => {
            application.process.is_out_of_memory.store(true, Ordering::Relaxed);
            false
        }
    }
}

/// Application code faulted, or an interrupt found a signal pending for it:
/// run the signal's handler next, or end the process.
fn on_diversion(frame: &mut InterruptFrame, diversion: Diversion) {
    let Some(application) = current() else {
        return;
    };
    let machine = machine();
    let mut registers = machine::interrupted_registers(frame);
    let outcome = match diversion {
        Diversion::Attention => syscall::deliver_pending_signals(
            machine,
            &application.process,
            &application.thread,
            &mut registers,
        ),
        Diversion::Fault { .. } if application.process.is_out_of_memory.load(Ordering::Relaxed) => {
            kill_out_of_memory(&application, &registers)
        }
        Diversion::Fault { vector, address } => {
            let mut fault = fault_signal(vector, address, frame);
            if vector == 14 && application.has_bus_error.swap(false, Ordering::Relaxed) {
                fault.signal = status::SIGBUS;
                fault.code = rosv_core::signal::fault_code::BUS_ADRERR;
            }
            match syscall::deliver_fault(
                machine,
                &application.process,
                &application.thread,
                &mut registers,
                fault,
            ) {
                Ok(()) => Outcome::ResumeExactly,
                Err(exit_status) => {
                    report_fault(&application, frame, vector, address);
                    syscall::end_process(
                        machine,
                        &application.process,
                        &application.thread,
                        &registers,
                        exit_status,
                    )
                }
            }
        }
    };
    match outcome {
        Outcome::Resume | Outcome::ResumeExactly => machine::write_interrupt_frame(frame, &registers),
        Outcome::ExitThread => {
            drop(application);
            sched::exit_current()
        }
    }
}

/// RAM ran out for a page the application may touch: end it as Linux's
/// out-of-memory killer would (SIGKILL, status 137), saying so once.
fn kill_out_of_memory(application: &ApplicationThread, registers: &rosv_core::machine::Registers) -> Outcome {
    static IS_REPORTED: AtomicBool = AtomicBool::new(false);
    if !IS_REPORTED.swap(true, Ordering::Relaxed) {
        let figures = rosv_core::pages::figures();
        let _ = writeln!(
            Console,
            "rosv: out of memory: killed {} ({} of {} MiB in use)",
            application.process.executable_path(),
            (figures.total_bytes - figures.free_bytes) >> 20,
            figures.total_bytes >> 20
        );
    }
    syscall::end_process(
        machine(),
        &application.process,
        &application.thread,
        registers,
        status::killed_by(status::SIGKILL),
    )
}

/// The signal a fault raises (Linux's choices for each exception).
fn fault_signal(vector: u8, address: Option<u64>, frame: &InterruptFrame) -> Fault {
    use rosv_core::signal::fault_code;
    let (signal, code) = match vector {
        0 => (status::SIGFPE, fault_code::FPE_INTDIV),
        // The saved state tells which unmasked exception it was.
        16 | 19 => {
            (status::SIGFPE, rosv_core::signal::floating_point_code(&FpuState::capture_bytes(), vector == 19))
        }
        1 | 3 => (status::SIGTRAP, fault_code::TRAP_BRKPT),
        6 => (status::SIGILL, fault_code::ILL_ILLOPN),
        17 => (status::SIGBUS, fault_code::BUS_ADRALN),
        // A stack-segment fault (a non-canonical stack address), as Linux.
        12 => (status::SIGBUS, fault_code::KERNEL),
        // A page fault on a present page is a protection violation.
        14 if frame.error_code & 1 != 0 => (status::SIGSEGV, fault_code::SEGV_ACCERR),
        14 => (status::SIGSEGV, fault_code::SEGV_MAPERR),
        _ => (status::SIGSEGV, fault_code::KERNEL),
    };
    Fault { signal, code, address: address.unwrap_or(if code == fault_code::KERNEL { 0 } else { frame.rip }) }
}

/// Says on the console which fault ended the application.
fn report_fault(application: &ApplicationThread, frame: &InterruptFrame, vector: u8, address: Option<u64>) {
    let name = match vector {
        0 | 16 | 19 => "floating-point exception",
        1 | 3 => "trace/breakpoint trap",
        6 => "illegal instruction",
        12 | 17 => "bus error",
        _ => "segmentation fault",
    };
    let _ = write!(
        Console,
        "rosv: {}: {name} in thread {} (\"{}\") at rip {:#x}",
        application.process.executable_path(),
        application.thread.tid,
        sched::current().name(),
        frame.rip
    );
    if let Some(address) = address {
        let _ = write!(Console, " accessing {address:#x}");
    }
    let _ = writeln!(Console);
}
