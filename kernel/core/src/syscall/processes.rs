//! Processes: fork and vfork, execve, wait4 and waitid, process groups and
//! sessions.
//!
//! `fork` copies the caller's address space into new page tables, sharing
//! every page: private pages become read-only on both sides and are copied
//! at the first store. A `CLONE_VM` child (`vfork`, `posix_spawn`) holds
//! the caller's memory itself, page tables and all, until it calls
//! `execve` or ends: what it stores, maps or unmaps, the caller sees. A
//! `vfork` parent waits until the child calls `execve` or ends, as on
//! Linux.
//!
//! `execve` checks the program and loads it into fresh tables before the
//! old image is given up, so a program that cannot be run leaves the caller
//! running with an error.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::files::caller;
use super::paths::{read_path, start};
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::loader::executable::OpenExecutable;
use crate::loader::{self, ExecutableFile, Program};
use crate::machine::{Registers, Wakeup};
use crate::memory::AddressSpace;
use crate::process::{self, Process, SIG_DFL, SIG_IGN};
use crate::ptrace::stops::Creation;
use crate::random::Random;
use crate::user::User;
use crate::vfs::FileType;

/// `clone` flags (Linux `include/uapi/linux/sched.h`).
pub(super) mod flag {
    pub const VM: u64 = 0x0000_0100;
    pub const FS: u64 = 0x0000_0200;
    pub const FILES: u64 = 0x0000_0400;
    pub const SIGHAND: u64 = 0x0000_0800;
    pub const PIDFD: u64 = 0x0000_1000;
    pub const PTRACE: u64 = 0x0000_2000;
    pub const VFORK: u64 = 0x0000_4000;
    pub const PARENT: u64 = 0x0000_8000;
    pub const THREAD: u64 = 0x0001_0000;
    pub const SYSVSEM: u64 = 0x0004_0000;
    pub const SETTLS: u64 = 0x0008_0000;
    pub const PARENT_SETTID: u64 = 0x0010_0000;
    pub const CHILD_CLEARTID: u64 = 0x0020_0000;
    pub const DETACHED: u64 = 0x0040_0000;
    pub const UNTRACED: u64 = 0x0080_0000;
    pub const CHILD_SETTID: u64 = 0x0100_0000;
    pub const IO: u64 = 0x8000_0000;
    /// The exit signal a plain `clone` carries in its low byte.
    pub const SIGNAL_MASK: u64 = 0xff;
}

/// The most processes that may exist at once, whoever asks (Linux's
/// `pid_max` is larger; memory runs out long before).
const PROCESS_COUNT_MAX: u64 = 32_768;

/// A request for a new process.
pub(super) struct ForkRequest {
    pub flags: u64,
    /// The child's stack pointer (0: the caller's).
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    /// The signal the parent gets when the child ends.
    pub exit_signal: u8,
    /// With `CLONE_PIDFD`: where the child's pidfd number goes.
    pub pidfd: u64,
}

/// Starts a new process, a copy of the caller, whose one thread returns 0
/// from the call; the caller gets the child's id.
pub(super) fn fork(context: Context<'_>, request: ForkRequest) -> Result {
    let known = flag::VM
        | flag::FS
        | flag::FILES
        | flag::SIGHAND
        | flag::VFORK
        | flag::PARENT
        | flag::PTRACE
        | flag::UNTRACED
        | flag::SYSVSEM
        | flag::SETTLS
        | flag::PARENT_SETTID
        | flag::CHILD_CLEARTID
        | flag::DETACHED
        | flag::CHILD_SETTID
        | flag::PIDFD
        | flag::IO
        | NAMESPACES;
    if request.flags & flag::THREAD != 0 || request.flags & !known != 0 {
        return Err(Errno::EINVAL.into());
    }
    // A new mount or user namespace cannot share the filesystem context
    // with a process outside it (Linux's rule).
    let new_fs_namespaces = crate::namespace::flag::NEWNS | crate::namespace::flag::NEWUSER;
    if request.flags & new_fs_namespaces != 0 && request.flags & flag::FS != 0 {
        return Err(Errno::EINVAL.into());
    }
    // Shared handlers only make sense where the handlers' addresses mean
    // the same code (Linux's rule).
    if request.flags & flag::SIGHAND != 0 && request.flags & flag::VM == 0 {
        return Err(Errno::EINVAL.into());
    }
    let sharing = process::Sharing {
        descriptors: request.flags & flag::FILES != 0,
        fs: request.flags & flag::FS != 0,
        signal_handlers: request.flags & flag::SIGHAND != 0,
    };
    let machine = context.machine;
    let parent = context.process;
    // A fork bomb meets RLIMIT_NPROC (counted over every process, as for
    // one user) unless the caller is privileged.
    let (limit, is_privileged) = {
        let state = parent.state.lock();
        (state.limits[process::limit::NPROC].current, state.credentials.effective_user == 0)
    };
    let live = process::all().iter().filter(|process| !process.has_ended()).count() as u64;
    if (live >= limit && !is_privileged) || live >= PROCESS_COUNT_MAX {
        return Err(Errno::EAGAIN.into());
    }
    let entered = super::namespaces::enter(context, parent, request.flags)?;
    let (memory, tables) = if request.flags & flag::VM != 0 {
        let memory = parent.memory();
        let tables = memory.space.lock().tables().clone();
        (memory, tables)
    } else {
        copy_memory(context)?
    };
    let mut seed = [0u8; 32];
    parent.random.lock().fill(&mut seed);
    let mut random = Random::seeded(machine);
    random.add_entropy(&seed);
    let child = parent.fork(
        context.thread,
        memory.clone(),
        random,
        machine.monotonic_ns(),
        request.exit_signal,
        sharing,
    );
    if let Some(mut entered) = entered {
        // The child is in the new namespaces, pid and time included.
        entered.namespaces = entered.namespaces.for_child();
        super::namespaces::apply(&child, |change| child.fs.with(change), entered);
    }
    if request.flags & flag::CHILD_SETTID != 0 {
        // The child's copy of the word gets its id (the parent's stays,
        // unless they share memory).
        let pid_bytes = (child.pid as u32).to_le_bytes();
        let written = write_through(machine, &mut memory.space.lock(), request.child_tid, &pid_bytes);
        if let Err(error) = written {
            child.abandon();
            return Err(error.into());
        }
    }
    drop(memory);
    let thread = child.new_thread();
    {
        let caller = context.thread.state.lock();
        let mut state = thread.state.lock();
        state.signal_mask = caller.signal_mask;
        state.alternate_stack = caller.alternate_stack;
        state.name = caller.name;
        if request.flags & flag::CHILD_CLEARTID != 0 {
            state.clear_child_tid = request.child_tid;
        }
    }
    if request.flags & flag::PARENT_SETTID != 0
        && let Err(error) = User::new(machine).write_u32(request.parent_tid, child.pid as u32)
    {
        child.abandon();
        return Err(error.into());
    }
    if request.flags & flag::PIDFD != 0 {
        // The parent's pidfd of the child, there before the child runs.
        let number = match super::pidfd::install(context, &child, false) {
            Ok(number) => number,
            Err(error) => {
                child.abandon();
                return Err(error);
            }
        };
        if let Err(error) = User::new(machine).write_u32(request.pidfd, number as u32) {
            let _ = context.descriptors().with(|table| table.remove(number));
            child.abandon();
            return Err(error.into());
        }
    }
    let mut registers = *context.registers;
    registers.rax = 0;
    if request.stack != 0 {
        registers.rsp = request.stack;
    }
    let thread_pointer =
        if request.flags & flag::SETTLS != 0 { request.tls } else { machine.thread_pointer() };
    let creation = match (request.flags & flag::VFORK != 0, request.exit_signal) {
        (true, _) => Creation::Vfork,
        (false, crate::signal::SIGCHLD) => Creation::Fork,
        (false, _) => Creation::Clone,
    };
    crate::ptrace::stops::new_task(context, &child, &thread, creation, request.flags);
    match machine.spawn_thread(&registers, thread_pointer, &child, thread.clone(), &tables) {
        Ok(control) => {
            // The child keeps its parent's policy, priority and nice value.
            super::scheduling::inherit(context.thread, &thread, control.as_ref());
            thread.set_control(control);
        }
        Err(_) => {
            child.abandon();
            return Err(Errno::EAGAIN.into());
        }
    }
    let pid = child.pid;
    crate::ptrace::stops::created(context, creation, pid);
    if request.flags & flag::VFORK != 0 {
        wait_for_vfork_child(context, &child);
        crate::ptrace::stops::vfork_done(context, pid);
    }
    Ok(pid)
}

/// A copy of the caller's memory in new page tables, for `fork`: pages are
/// shared, private ones copied at the first store.
fn copy_memory(
    context: Context<'_>,
) -> core::result::Result<(Arc<process::Memory>, Arc<dyn crate::machine::PageTables>), Errno> {
    let machine = context.machine;
    let tables = machine.new_page_tables().map_err(|_| Errno::ENOMEM)?;
    let (copy, needs_shootdown) = {
        let memory = context.process.memory();
        let mut space = memory.space.lock();
        let copy = space.fork(tables.clone()).map_err(|_| Errno::ENOMEM);
        (copy, space.take_shootdown())
    };
    if needs_shootdown {
        // No processor may go on writing through a translation the copy
        // took away.
        machine.synchronize_mappings();
    }
    Ok((process::Memory::new(copy?), tables))
}

/// Blocks until the `vfork` child calls `execve` or ends.
fn wait_for_vfork_child(context: Context<'_>, child: &Process) {
    let machine = context.machine;
    let me = machine.current_thread();
    loop {
        child.vfork_release.add(&me);
        if child.is_vfork_released() {
            break;
        }
        if machine.block(None) == Wakeup::Stop {
            break;
        }
    }
    child.vfork_release.remove(&me);
}

/// Writes `bytes` at `address` of `memory`, an address space that is not
/// loaded: each page is faulted in for writing (copied if shared) and
/// written through its frame.
fn write_through(
    machine: &dyn crate::machine::Machine,
    memory: &mut AddressSpace,
    address: u64,
    bytes: &[u8],
) -> core::result::Result<(), Errno> {
    let mut done = 0;
    while done < bytes.len() {
        let at = address.checked_add(done as u64).ok_or(Errno::EFAULT)?;
        let page = at & !(crate::memory::PAGE_SIZE - 1);
        let offset = (at - page) as usize;
        let length = (crate::memory::PAGE_SIZE as usize - offset).min(bytes.len() - done);
        if memory.resolve_fault(machine, at, crate::memory::Access::Write)
            != crate::memory::FaultResolution::Mapped
        {
            return Err(Errno::EFAULT);
        }
        let frame = memory.tables().mapped_frame(page).ok_or(Errno::EFAULT)?;
        crate::pages::write_frame(frame, offset, &bytes[done..done + length]);
        done += length;
    }
    Ok(())
}

/// The most bytes of arguments and environment `execve` takes (Linux's
/// limit with the default 8 MiB stack: a quarter of it).
const ARGUMENT_BYTES_MAX: usize = 2 << 20;
/// The most strings in `argv` or `envp` (Linux's `MAX_ARG_STRINGS`).
const ARGUMENT_COUNT_MAX: usize = 0x7fff_ffff;
/// The most `#!` interpreters one `execve` follows.
const INTERPRETER_DEPTH_MAX: usize = 4;

/// Reads a NULL-terminated array of string pointers.
fn read_strings(
    context: Context<'_>,
    address: u64,
    total: &mut usize,
) -> core::result::Result<Vec<Vec<u8>>, Errno> {
    let user = User::new(context.machine);
    let mut strings = Vec::new();
    if address == 0 {
        return Ok(strings);
    }
    loop {
        if strings.len() >= ARGUMENT_COUNT_MAX {
            return Err(Errno::E2BIG);
        }
        let pointer = user.read_u64(address.checked_add(strings.len() as u64 * 8).ok_or(Errno::EFAULT)?)?;
        if pointer == 0 {
            return Ok(strings);
        }
        let string = match user.read_c_string(pointer, ARGUMENT_BYTES_MAX - *total) {
            Err(Errno::ENAMETOOLONG) => return Err(Errno::E2BIG),
            other => other?,
        };
        *total += string.len() + 1 + 8;
        if *total > ARGUMENT_BYTES_MAX {
            return Err(Errno::E2BIG);
        }
        strings.push(string);
    }
}

/// Opens `path` (from `start`) as a program: a regular file the caller may
/// execute.
fn open_program<'a>(
    context: Context<'a>,
    start_location: &crate::vfs::Location,
    path: &str,
) -> core::result::Result<OpenExecutable<'a>, Errno> {
    let caller = caller(context);
    let vfs = &context.process.vfs();
    let location = vfs.resolve(&caller, start_location, path, true)?;
    // Nor does a mount that refuses programs (`noexec`).
    if location.file_type() != FileType::Regular
        || location.mount.attributes() & crate::vfs::mount::attribute::NOEXEC != 0
    {
        return Err(Errno::EACCES);
    }
    let size = location.metadata(&caller)?.size_bytes;
    let file = vfs.open_to_execute(&caller, location)?;
    Ok(OpenExecutable { file, size, path: Arc::from(path), machine: context.machine })
}

/// What a `#!` line names: the interpreter and its one optional argument.
fn script_interpreter(head: &[u8]) -> Option<(String, Option<Vec<u8>>)> {
    let line = head.strip_prefix(b"#!")?;
    let end = line.iter().position(|&byte| byte == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let is_blank = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = line.iter().position(|byte| !is_blank(byte))?;
    let line = &line[start..];
    let name_end = line.iter().position(is_blank).unwrap_or(line.len());
    let interpreter = String::from_utf8(line[..name_end].to_vec()).ok()?;
    let rest = &line[name_end..];
    let argument = rest.iter().position(|byte| !is_blank(byte)).map(|first| {
        let last = rest.iter().rposition(|byte| !is_blank(byte)).unwrap_or(first);
        rest[first..=last].to_vec()
    });
    Some((interpreter, argument))
}

pub(super) fn execve(
    context: Context<'_>,
    registers: &mut Registers,
    path: u64,
    argv: u64,
    envp: u64,
) -> Result {
    execveat(context, registers, crate::linux::AT_FDCWD as u64, path, argv, envp, 0)
}

/// `AT_EMPTY_PATH`, `AT_SYMLINK_NOFOLLOW`.
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;

pub(super) fn execveat(
    context: Context<'_>,
    registers: &mut Registers,
    dirfd: u64,
    path: u64,
    argv: u64,
    envp: u64,
    at_flags: u64,
) -> Result {
    if at_flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut path = read_path(context, path)?;
    if path.is_empty() {
        if at_flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT.into());
        }
        // The program open as `dirfd`, by its name in /proc.
        path = alloc::format!("/proc/self/fd/{}", dirfd as i32);
    }
    let mut total = 0;
    let mut arguments = read_strings(context, argv, &mut total)?;
    let environment = read_strings(context, envp, &mut total)?;
    let mut start_location = start(context, dirfd, &path)?;
    // `#!` scripts run their interpreter with the script's path.
    let mut program = open_program(context, &start_location, &path)?;
    let mut depth = 0;
    loop {
        let mut head = [0u8; 256];
        let length = (program.size() as usize).min(head.len());
        program.read_at(0, &mut head[..length])?;
        let Some((interpreter, argument)) = script_interpreter(&head[..length]) else {
            break;
        };
        depth += 1;
        if depth > INTERPRETER_DEPTH_MAX {
            return Err(Errno::ELOOP.into());
        }
        let mut replaced = Vec::with_capacity(arguments.len() + 2);
        replaced.push(interpreter.clone().into_bytes());
        replaced.extend(argument);
        replaced.push(path.clone().into_bytes());
        replaced.extend(arguments.into_iter().skip(1));
        arguments = replaced;
        path = interpreter;
        start_location = start(context, crate::linux::AT_FDCWD as u64, &path)?;
        program = open_program(context, &start_location, &path).map_err(|error| match error {
            Errno::EACCES => Errno::EACCES,
            _ => Errno::ENOENT,
        })?;
    }
    let headers = loader::read_headers(&program)?;
    if !headers.starts_with(b"\x7fELF") {
        return Err(Errno::ENOEXEC.into());
    }
    let interpreter = match loader::interpreter_path(&headers, program.size()) {
        Some(interpreter) => {
            let root = context.process.vfs().root();
            Some(open_program(context, &root, &interpreter).map_err(|_| Errno::ENOENT)?)
        }
        None => None,
    };
    let mut random = [0u8; 16];
    context.process.random.lock().fill(&mut random);
    let program_path = path.clone();
    let description = Program {
        file: &program,
        interpreter: interpreter.as_ref().map(|interpreter| interpreter as &dyn ExecutableFile),
        path: &program_path,
        arguments: &arguments,
        environment: &environment,
        random,
    };
    let executable_path = program.resolved_path(&context.process.vfs());
    replace_image(context, registers, &description, executable_path)?;
    Err(Failure::Resumed)
}

/// Loads `program` into a fresh address space and, once it loaded, makes
/// it the process's: other threads end, descriptors marked close-on-exec
/// close, caught signals return to their default action, and the calling
/// thread starts the program.
fn replace_image(
    context: Context<'_>,
    registers: &mut Registers,
    program: &Program<'_>,
    executable_path: String,
) -> Result {
    let machine = context.machine;
    let process = context.process;
    let tables = machine.new_page_tables().map_err(|_| Errno::ENOMEM)?;
    let old_tables = process.memory().space.lock().tables().clone();
    let mut memory = AddressSpace::new(tables.clone());
    // The loader writes the new stack through the loaded tables.
    machine.use_page_tables(&tables);
    let launch = match loader::load(machine, &mut memory, program) {
        Ok(launch) => launch,
        Err(error) => {
            machine.use_page_tables(&old_tables);
            memory.release_all();
            return Err(match error {
                loader::LoadError::Memory(errno) => errno,
                _ => Errno::ENOEXEC,
            }
            .into());
        }
    };
    // The point of no return.
    end_other_threads(context);
    // What the thread split off for itself is the process's from now on.
    process.adopt_thread_parts(context.thread);
    // Another process (a `vfork` parent) may hold the old memory: only
    // the last holder's release unmaps its pages.
    drop(process.replace_memory(process::Memory::new(memory)));
    drop(old_tables);
    machine.synchronize_mappings();
    // A table or handlers other processes share (CLONE_FILES,
    // CLONE_SIGHAND) become the process's own first: closing and resetting
    // must not reach the others (Linux's unshare_files and de_thread).
    process.descriptors.unshare();
    let closed: Vec<_> = process.descriptors.with(|table| {
        let closing: Vec<u64> = table
            .iter()
            .filter(|(_, descriptor)| descriptor.close_on_exec)
            .map(|(number, _)| number as u64)
            .collect();
        closing.into_iter().filter_map(|number| table.remove(number).ok()).collect()
    });
    drop(closed);
    process.state.lock().is_dumpable = true;
    process.signal_handlers.unshare();
    process.signal_handlers.with(|handlers| {
        for action in handlers.iter_mut() {
            if action.handler != SIG_IGN && action.handler != SIG_DFL {
                *action = crate::process::SignalAction::default();
            }
        }
    });
    process.timers.delete_all_posix();
    {
        let mut state = context.thread.state.lock();
        state.alternate_stack = crate::signal::AlternateStack::default();
        state.robust_list = (0, 0);
        state.clear_child_tid = 0;
        state.saved_mask = None;
        let name = program.path.rsplit('/').next().unwrap_or_default().as_bytes();
        let length = name.len().min(15);
        state.name = [0; 16];
        state.name[..length].copy_from_slice(&name[..length]);
    }
    process.set_executable_path(executable_path);
    process.release_vfork_parent();
    machine.set_thread_pointer(0);
    *registers = Registers {
        rip: launch.entry,
        rsp: launch.stack_pointer,
        rflags: INITIAL_RFLAGS,
        ..Registers::default()
    };
    Ok(0)
}

/// RFLAGS of a new program: interrupts enabled, the reserved bit 1.
const INITIAL_RFLAGS: u64 = 0x202;

/// Ends every thread of the process but the caller, and waits until they
/// are gone.
fn end_other_threads(context: Context<'_>) {
    let me = context.thread.tid;
    let others: Vec<_> = context.process.threads().into_iter().filter(|thread| thread.tid != me).collect();
    if others.is_empty() {
        return;
    }
    for thread in &others {
        if let Some(control) = thread.control() {
            control.request_exit();
        }
    }
    drop(others);
    let machine = context.machine;
    while context.process.thread_count() > 1 {
        let deadline = machine.monotonic_ns().saturating_add(1_000_000);
        if machine.block(Some(deadline)) == Wakeup::Stop {
            return;
        }
    }
}

/// Namespace flags of `clone` and `unshare` (`syscall::namespaces`).
const NAMESPACES: u64 = crate::namespace::flag::ALL;

/// `unshare`: the calling thread gets its own descriptor table
/// (`CLONE_FILES`) or filesystem context (`CLONE_FS`) when another thread
/// or process uses the one it uses.
/// Signal handlers, memory and the thread group cannot be split (Linux
/// neither): asking is `EINVAL` unless there is nothing to split (memory
/// no other process holds, handlers no other process holds, one thread).
/// Namespace flags make new namespaces for the process
/// (`syscall::namespaces`).
pub(super) fn unshare(context: Context<'_>, flags: u64) -> Result {
    let valid = flag::THREAD | flag::FS | flag::SIGHAND | flag::VM | flag::FILES | flag::SYSVSEM | NAMESPACES;
    if flags & !valid != 0 {
        return Err(Errno::EINVAL.into());
    }
    // What each flag implies (Linux's ksys_unshare).
    let mut flags = flags;
    if flags & crate::namespace::flag::NEWUSER != 0 {
        flags |= flag::THREAD | flag::FS;
    }
    if flags & crate::namespace::flag::NEWNS != 0 {
        flags |= flag::FS;
    }
    if flags & flag::VM != 0 {
        flags |= flag::SIGHAND;
    }
    if flags & flag::SIGHAND != 0 {
        flags |= flag::THREAD;
    }
    let process = context.process;
    if flags & flag::THREAD != 0 && process.thread_count() > 1 {
        return Err(Errno::EINVAL.into());
    }
    if flags & flag::SIGHAND != 0 && process.signal_handlers.is_shared() {
        return Err(Errno::EINVAL.into());
    }
    if flags & flag::VM != 0 && process.is_memory_shared() {
        return Err(Errno::EINVAL.into());
    }
    let entered = super::namespaces::enter(context, process, flags)?;
    if entered.is_some() && flags & crate::namespace::flag::NEWIPC != 0 {
        // Leaving an IPC namespace applies the semaphore adjustments made
        // in it (Linux's CLONE_SYSVSEM, which CLONE_NEWIPC implies).
        super::semaphores::undo_all(&process.namespaces().ipc, process.pid);
    }
    // The calling thread alone splits off; the process's other threads
    // keep what they use.
    if flags & flag::FS != 0 {
        process.unshare_fs(context.thread);
    }
    if let Some(entered) = entered {
        super::namespaces::apply(process, |change| context.fs().with(change), entered);
    }
    if flags & flag::FILES != 0 {
        process.unshare_descriptors(context.thread);
    }
    // CLONE_SYSVSEM: a process's semaphore undo list is never shared.
    Ok(0)
}

pub(super) fn getppid(context: Context<'_>) -> Result {
    Ok(context.process.parent_id())
}

/// The process `pid` names for the group and session calls: 0 is the
/// caller.
fn named_process(context: Context<'_>, pid: u64) -> core::result::Result<Arc<Process>, Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 {
        return context.process.shared().ok_or(Errno::ESRCH);
    }
    process::find(pid as u64).filter(|process| !process.has_ended()).ok_or(Errno::ESRCH)
}

pub(super) fn getpgid(context: Context<'_>, pid: u64) -> Result {
    Ok(named_process(context, pid)?.group_id())
}

pub(super) fn getsid(context: Context<'_>, pid: u64) -> Result {
    Ok(named_process(context, pid)?.session_id())
}

pub(super) fn setpgid(context: Context<'_>, pid: u64, group: u64) -> Result {
    if group as i32 as i64 != group as i64 || (group as i32) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let caller = context.process;
    let target = named_process(context, pid)?;
    let is_child = target.parent_id() == caller.pid;
    if target.pid != caller.pid && !is_child {
        return Err(Errno::ESRCH.into());
    }
    let session = caller.session_id();
    let mut family = target.family.lock();
    if is_child && family.has_executed {
        return Err(Errno::EACCES.into());
    }
    if family.session != session {
        return Err(Errno::EPERM.into());
    }
    if family.session == target.pid {
        // A session leader stays in its group.
        return Err(Errno::EPERM.into());
    }
    let group = if group == 0 { target.pid } else { group };
    if group != target.pid {
        drop(family);
        let exists =
            process::all().iter().any(|other| other.group_id() == group && other.session_id() == session);
        if !exists {
            return Err(Errno::EPERM.into());
        }
        family = target.family.lock();
    }
    family.group = group;
    Ok(0)
}

pub(super) fn setsid(context: Context<'_>) -> Result {
    let process = context.process;
    let pid = process.pid;
    let leads_group = process::all().iter().any(|other| other.pid != pid && other.group_id() == pid);
    let mut family = process.family.lock();
    if family.group == pid || leads_group {
        return Err(Errno::EPERM.into());
    }
    family.group = pid;
    family.session = pid;
    drop(family);
    // A new session has no controlling terminal.
    *process.controlling_terminal.lock() = None;
    Ok(pid)
}

/// The processes a `kill` pid names (for `-1`, every one but the first
/// and the caller).
pub(super) fn kill_targets(context: Context<'_>, pid: u64) -> core::result::Result<Vec<Arc<Process>>, Errno> {
    let pid = pid as i32;
    let targets: Vec<Arc<Process>> = match pid {
        0 => {
            let group = context.process.group_id();
            process::all().into_iter().filter(|other| other.group_id() == group).collect()
        }
        -1 => process::all()
            .into_iter()
            .filter(|other| other.pid != process::PROCESS_ID && other.pid != context.process.pid)
            .collect(),
        pid if pid < 0 => {
            let group = u64::from(pid.unsigned_abs());
            process::all().into_iter().filter(|other| other.group_id() == group).collect()
        }
        // A thread's id names its process too.
        pid => process::find(pid as u64)
            .or_else(|| process::all().into_iter().find(|other| other.thread(pid as u64).is_some()))
            .into_iter()
            .collect(),
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(targets)
}
