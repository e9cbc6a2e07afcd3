//! Running one command: find the executable, load it, run it, clean up.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use rosv_abi::exit::status;
use rosv_core::loader::{self, Program};
use rosv_core::memory::Access;
use rosv_core::process::Process;
use rosv_core::random::Random;
use rosv_core::syscall::{self, Outcome};
use rosv_platform::console::Console;
use rosv_platform::interrupts::{self, ApplicationFault, FaultHandlers};
use rosv_platform::syscall::SyscallFrame;
use rosv_platform::{thread, time};
use rosv_rofs::{FileType, Rofs};

use crate::machine::PlatformMachine;

/// The root filesystem type the kernel reads applications from.
pub type RootFilesystem = Rofs<&'static [u8]>;

static MACHINE: spin::Once<PlatformMachine> = spin::Once::new();
static CURRENT: spin::Mutex<Option<Arc<Process>>> = spin::Mutex::new(None);

/// Registers the system call and fault handlers that run applications.
pub fn init(machine: PlatformMachine) {
    MACHINE.call_once(|| machine);
    rosv_platform::syscall::init(on_system_call);
    interrupts::set_fault_handlers(FaultHandlers {
        resolve_page_fault,
        application_fault: on_application_fault,
    });
}

fn machine() -> &'static PlatformMachine {
    MACHINE
        .get()
        .expect("application::init runs before any application")
}

fn current() -> Option<Arc<Process>> {
    CURRENT.lock().clone()
}

/// What a command runs with.
pub struct Launch<'a> {
    /// The root filesystem, if the machine has one.
    pub root: Option<&'a RootFilesystem>,
    /// `argv`.
    pub arguments: &'a [String],
    /// The environment, as `NAME=value`.
    pub environment: &'a [Vec<u8>],
    /// The working directory.
    pub working_directory: &'a str,
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
    let file = read_executable(launch.root, &path)?;
    let machine = machine();
    let process = Arc::new(Process::new(
        path.clone(),
        String::from(launch.working_directory),
        Random::seeded(machine),
        time::since_boot_ns(),
    ));
    let mut random = [0u8; 16];
    process.random.lock().fill(&mut random);
    let arguments: Vec<Vec<u8>> = launch
        .arguments
        .iter()
        .map(|argument| argument.clone().into_bytes())
        .collect();
    let program = Program {
        file: &file,
        path: &path,
        arguments: &arguments,
        environment: launch.environment,
        random,
    };
    let loaded = loader::load(machine, &mut process.memory.lock(), &program);
    drop(file);
    let start = match loaded {
        Ok(start) => start,
        Err(error) => {
            let _ = writeln!(Console, "rosv: {path}: {error}");
            process.memory.lock().release_all(machine);
            return Err(status::CANNOT_EXECUTE);
        }
    };
    *CURRENT.lock() = Some(process.clone());
    before_entry();
    let exit_status = thread::run_application(start.entry, start.stack_pointer);
    *CURRENT.lock() = None;
    process.memory.lock().release_all(machine);
    Ok(exit_status)
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

/// Reads the executable at `path`, or reports why not and returns the exit
/// status to end with.
fn read_executable(root: Option<&RootFilesystem>, path: &str) -> Result<Vec<u8>, u8> {
    let Some(root) = root else {
        let _ = writeln!(
            Console,
            "rosv: {path}: not found: the machine has no root filesystem"
        );
        return Err(status::NOT_FOUND);
    };
    let inode = root.resolve(path).map_err(|error| {
        let _ = writeln!(Console, "rosv: {path}: {error}");
        status::NOT_FOUND
    })?;
    let metadata = root.metadata(inode).map_err(|_| status::NOT_FOUND)?;
    if metadata.file_type != FileType::Regular {
        let _ = writeln!(Console, "rosv: {path}: not a regular file");
        return Err(status::CANNOT_EXECUTE);
    }
    let mut file = vec![0u8; metadata.size as usize];
    match root.read(inode, 0, &mut file) {
        Ok(length) if length == file.len() => Ok(file),
        _ => {
            let _ = writeln!(Console, "rosv: {path}: the file could not be read");
            Err(status::CANNOT_EXECUTE)
        }
    }
}

fn on_system_call(frame: &mut SyscallFrame) {
    let Some(process) = current() else {
        frame.rax = rosv_core::errno::Errno::ENOSYS.to_return() as u64;
        return;
    };
    match syscall::handle(machine(), &process, frame.number(), frame.arguments()) {
        Outcome::Return(value) => frame.rax = value as u64,
        Outcome::Exit(exit_status) => {
            drop(process);
            thread::exit_application(exit_status)
        }
    }
}

fn resolve_page_fault(address: u64, access: interrupts::Access) -> bool {
    let Some(process) = current() else {
        return false;
    };
    let access = match access {
        interrupts::Access::Read => Access::Read,
        interrupts::Access::Write => Access::Write,
        interrupts::Access::Execute => Access::Execute,
    };
    // A fault while the address space is locked would deadlock: the kernel
    // never touches unmapped application memory while holding it, so such a
    // fault is a bug and is reported as an unresolved fault instead.
    let Some(mut memory) = process.memory.try_lock() else {
        return false;
    };
    memory.resolve_fault(machine(), address, access)
}

fn on_application_fault(fault: &ApplicationFault) -> ! {
    let (signal, name) = match fault.vector {
        0 | 16 | 19 => (status::SIGFPE, "floating-point exception"),
        1 | 3 => (status::SIGTRAP, "trace/breakpoint trap"),
        6 => (status::SIGILL, "illegal instruction"),
        12 | 17 => (status::SIGBUS, "bus error"),
        _ => (status::SIGSEGV, "segmentation fault"),
    };
    let path = current()
        .map(|process| process.executable_path.clone())
        .unwrap_or_default();
    let _ = write!(
        Console,
        "rosv: {path}: {name} at rip {:#x}",
        fault.frame.rip
    );
    if let Some(address) = fault.address {
        let _ = write!(Console, " accessing {address:#x}");
    }
    let _ = writeln!(Console);
    thread::exit_application(status::killed_by(signal))
}
