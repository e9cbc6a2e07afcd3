//! Threads: clone, exit, futexes, affinity.

use super::processes::ForkRequest;
use super::{Context, Outcome, Result};
use crate::errno::Errno;
use crate::futex::MATCH_ANY;
use crate::linux::Timespec;
use crate::machine::Wakeup;
use crate::process::Termination;
use crate::user::User;

use super::processes::flag;

/// What a new thread is told.
struct CloneRequest {
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

pub(super) fn clone(
    context: Context<'_>,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> Result {
    if flags & flag::THREAD == 0 {
        let exit_signal = (flags & flag::SIGNAL_MASK) as u8;
        if usize::from(exit_signal) > crate::process::SIGNAL_COUNT {
            return Err(Errno::EINVAL.into());
        }
        let flags = flags & !flag::SIGNAL_MASK;
        // `clone` stores the pidfd where the parent's copy of the id would
        // go: the two cannot be asked for together.
        if flags & flag::PIDFD != 0 && flags & flag::PARENT_SETTID != 0 {
            return Err(Errno::EINVAL.into());
        }
        let pidfd = if flags & flag::PIDFD != 0 { parent_tid } else { 0 };
        let request = ForkRequest { flags, stack, parent_tid, child_tid, tls, exit_signal, pidfd };
        return super::processes::fork(context, request);
    }
    spawn(context, CloneRequest { flags: flags & !flag::SIGNAL_MASK, stack, parent_tid, child_tid, tls })
}

/// Size of `struct clone_args` version 0.
const CLONE_ARGS_SIZE_VER0: u64 = 64;

pub(super) fn clone3(context: Context<'_>, arguments: u64, size: u64) -> Result {
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL.into());
    }
    let user = User::new(context.machine);
    let field = |index: u64| user.read_u64(arguments + index * 8);
    let (flags, pidfd, child_tid, parent_tid) = (field(0)?, field(1)?, field(2)?, field(3)?);
    let exit_signal = field(4)?;
    let (stack, stack_size, tls) = (field(5)?, field(6)?, field(7)?);
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL.into());
    }
    let top = stack.checked_add(stack_size).ok_or(Errno::EINVAL)?;
    if flags & flag::THREAD == 0 {
        if exit_signal > crate::process::SIGNAL_COUNT as u64 || flags & flag::SIGNAL_MASK != 0 {
            return Err(Errno::EINVAL.into());
        }
        let pidfd = if flags & flag::PIDFD != 0 { pidfd } else { 0 };
        let exit_signal = exit_signal as u8;
        let request = ForkRequest { flags, stack: top, parent_tid, child_tid, tls, exit_signal, pidfd };
        return super::processes::fork(context, request);
    }
    if exit_signal != 0 {
        return Err(Errno::EINVAL.into());
    }
    spawn(context, CloneRequest { flags, stack: top, parent_tid, child_tid, tls })
}

/// Starts a thread of the calling process that returns 0 from the call.
fn spawn(context: Context<'_>, request: CloneRequest) -> Result {
    let required = flag::VM | flag::THREAD | flag::SIGHAND;
    if request.flags & required != required || request.flags & flag::VFORK != 0 {
        return Err(Errno::EINVAL.into());
    }
    let known = required
        | flag::FS
        | flag::FILES
        | flag::SYSVSEM
        | flag::SETTLS
        | flag::PARENT_SETTID
        | flag::CHILD_CLEARTID
        | flag::DETACHED
        | flag::CHILD_SETTID;
    if request.flags & !known != 0 {
        return Err(Errno::EINVAL.into());
    }
    // RLIMIT_NPROC counts the user's tasks, threads included; root (with
    // CAP_SYS_RESOURCE or CAP_SYS_ADMIN) is not held to it.
    let (is_root, task_limit) = {
        let state = context.process.state.lock();
        let credentials = &state.credentials;
        let is_root = credentials.real_user == 0
            || credentials.has_capability(crate::credentials::capability::SYS_RESOURCE)
            || credentials.has_capability(crate::credentials::capability::SYS_ADMIN);
        (is_root, state.limits[crate::process::limit::NPROC].current)
    };
    if !is_root && context.process.thread_count() as u64 >= task_limit {
        return Err(Errno::EAGAIN.into());
    }
    let thread = context.process.new_thread();
    let user = User::new(context.machine);
    let tid_bytes = (thread.tid as u32).to_le_bytes();
    let written = (|| {
        if request.flags & flag::PARENT_SETTID != 0 {
            user.write_bytes(request.parent_tid, &tid_bytes)?;
        }
        if request.flags & flag::CHILD_SETTID != 0 {
            user.write_bytes(request.child_tid, &tid_bytes)?;
        }
        Ok::<(), Errno>(())
    })();
    if let Err(error) = written {
        context.process.discard_thread(thread.tid);
        return Err(error.into());
    }
    if request.flags & flag::CHILD_CLEARTID != 0 {
        thread.state.lock().clear_child_tid = request.child_tid;
    }
    // Without CLONE_FILES or CLONE_FS the thread gets a copy of its own;
    // with them, what the caller uses (its own, if it split one off).
    thread.descriptors.inherit(context.descriptors(), request.flags & flag::FILES != 0);
    thread.fs.inherit(context.fs(), request.flags & flag::FS != 0);
    {
        let parent = context.thread.state.lock();
        let mut child = thread.state.lock();
        child.signal_mask = parent.signal_mask;
        child.personality = parent.personality;
    }
    let mut registers = *context.registers;
    registers.rax = 0;
    if request.stack != 0 {
        registers.rsp = request.stack;
    }
    let thread_pointer =
        if request.flags & flag::SETTLS != 0 { request.tls } else { context.machine.thread_pointer() };
    let tables = context.process.memory().space.lock().tables().clone();
    let Some(process) = context.process.shared() else {
        context.process.discard_thread(thread.tid);
        return Err(Errno::EAGAIN.into());
    };
    let creation = crate::ptrace::stops::Creation::Clone;
    crate::ptrace::stops::new_task(context, &process, &thread, creation, request.flags);
    match context.machine.spawn_thread(&registers, thread_pointer, &process, thread.clone(), &tables) {
        Ok(control) => {
            super::scheduling::inherit(context.thread, &thread, control.as_ref());
            thread.set_control(control);
            crate::ptrace::stops::created(context, creation, thread.tid);
            Ok(thread.tid)
        }
        Err(_) => {
            context.process.discard_thread(thread.tid);
            Err(Errno::EAGAIN.into())
        }
    }
}

/// `exit`: the calling thread ends; the last one ends the process.
pub(super) fn exit(context: Context<'_>, status: u8) -> Outcome {
    release_thread(context);
    context.process.end_thread(context.thread.tid, status);
    if context.process.thread_count() == 0 {
        super::semaphores::undo_all(&context.process.namespaces().ipc, context.process.pid);
        crate::vfs::locks::table().release_everywhere(crate::vfs::locks::Owner::Process(context.process.pid));
    }
    Outcome::ExitThread
}

/// `exit_group`: the whole process ends, as `termination` says.
pub(super) fn exit_group(context: Context<'_>, termination: Termination) -> Outcome {
    context.process.begin_exit(termination, context.thread.tid);
    exit(context, termination.exit_status())
}

/// What Linux does for an exiting thread: mark its robust futexes as
/// abandoned, then clear and wake its `clear_child_tid` word.
pub fn release_thread(context: Context<'_>) {
    let (clear_child_tid, (robust_list, _)) = {
        let state = context.thread.state.lock();
        (state.clear_child_tid, state.robust_list)
    };
    if robust_list != 0 {
        release_robust_list(context, robust_list);
    }
    if clear_child_tid != 0 && User::new(context.machine).write_u32(clear_child_tid, 0).is_ok() {
        let _ = context.process.memory().futexes.wake(clear_child_tid, 1, MATCH_ANY);
    }
}

/// `FUTEX_OWNER_DIED`, `FUTEX_WAITERS` and the owner bits of a robust futex.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's bound on robust list walks.
const ROBUST_LIST_LIMIT: usize = 2048;

/// Walks `struct robust_list_head` at `head` (next, futex offset,
/// operation pending) and releases each futex this thread still owns.
fn release_robust_list(context: Context<'_>, head: u64) {
    // The lowest bit of an entry marks a priority-inheritance futex.
    const PI_MARK: u64 = 1;
    let user = User::new(context.machine);
    let (Ok(first), Ok(offset), Ok(pending)) =
        (user.read_u64(head), user.read_u64(head + 8), user.read_u64(head + 16))
    else {
        return;
    };
    let mut entry = first;
    for _ in 0..ROBUST_LIST_LIMIT {
        let address = entry & !PI_MARK;
        if address == head || address == 0 {
            break;
        }
        let next = user.read_u64(address);
        // The entry being locked or unlocked is released once, below.
        if address != pending & !PI_MARK {
            release_robust_futex(context, address.wrapping_add(offset), entry & PI_MARK != 0);
        }
        match next {
            Ok(next) => entry = next,
            Err(_) => break,
        }
    }
    if pending & !PI_MARK != 0 {
        release_robust_futex(context, (pending & !PI_MARK).wrapping_add(offset), pending & PI_MARK != 0);
    }
}

/// Marks the robust futex at `address` abandoned if the exiting thread
/// owns it, and wakes its waiters: one, or for a priority-inheritance
/// futex (`is_pi`) all, which then take it in turn.
fn release_robust_futex(context: Context<'_>, address: u64, is_pi: bool) {
    let tid = context.thread.tid as u32;
    let Ok(mut value) = context.machine.load_u32(address) else {
        return;
    };
    loop {
        if value & FUTEX_TID_MASK != tid {
            return;
        }
        let released = (value & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        match context.machine.compare_exchange_u32(address, value, released) {
            Ok(Ok(_)) => break,
            Ok(Err(current)) => value = current,
            Err(_) => return,
        }
    }
    if value & FUTEX_WAITERS != 0 {
        let _ = context.process.memory().futexes.wake(address, if is_pi { u32::MAX } else { 1 }, MATCH_ANY);
    }
}

/// Futex operations and flags.
mod operation {
    pub const WAIT: u64 = 0;
    pub const WAKE: u64 = 1;
    pub const REQUEUE: u64 = 3;
    pub const CMP_REQUEUE: u64 = 4;
    pub const WAKE_OP: u64 = 5;
    pub const LOCK_PI: u64 = 6;
    pub const UNLOCK_PI: u64 = 7;
    pub const TRYLOCK_PI: u64 = 8;
    pub const WAIT_BITSET: u64 = 9;
    pub const WAKE_BITSET: u64 = 10;
    pub const WAIT_REQUEUE_PI: u64 = 11;
    pub const CMP_REQUEUE_PI: u64 = 12;
    pub const LOCK_PI2: u64 = 13;
    pub const PRIVATE: u64 = 128;
    pub const CLOCK_REALTIME: u64 = 256;
}

pub(super) fn futex(
    context: Context<'_>,
    address: u64,
    operation: u64,
    value: u64,
    timeout_or_count: u64,
    second_address: u64,
    value3: u64,
) -> Result {
    let machine = context.machine;
    let command = operation & !(operation::PRIVATE | operation::CLOCK_REALTIME);
    let is_simple = matches!(
        command,
        operation::WAIT | operation::WAIT_BITSET | operation::WAKE | operation::WAKE_BITSET
    );
    let shared_key = if operation & operation::PRIVATE == 0 && is_simple {
        shared_futex_key(context, address)
    } else {
        None
    };
    let memory = context.process.memory();
    let (table, key) = match shared_key {
        Some(key) => (crate::futex::shared_table(), key),
        None => (&memory.futexes, address),
    };
    let count = |value: u64| u32::try_from(value).unwrap_or(u32::MAX).min(i32::MAX as u32);
    // A shared futex is found through its page, which must be there
    // (EFAULT); a private one is only an address.
    let check_mapped = |address: u64| -> core::result::Result<(), Errno> {
        if operation & operation::PRIVATE == 0 {
            machine.load_u32(address & !3).map_err(|_| Errno::EFAULT)?;
        }
        Ok(())
    };
    match command {
        operation::WAKE | operation::WAKE_BITSET | operation::REQUEUE | operation::CMP_REQUEUE => {
            check_mapped(address)?;
            if matches!(command, operation::REQUEUE | operation::CMP_REQUEUE) {
                check_mapped(second_address)?;
                // The counts are C ints; negative ones are refused.
                if (value as i32) < 0 || (timeout_or_count as i32) < 0 {
                    return Err(Errno::EINVAL.into());
                }
            }
        }
        _ => {}
    }
    match command {
        operation::WAIT | operation::WAIT_BITSET => {
            let bitset = if command == operation::WAIT { MATCH_ANY } else { value3 as u32 };
            let deadline = if timeout_or_count == 0 {
                None
            } else {
                let mut bytes = [0u8; 16];
                User::new(machine).read_into(timeout_or_count, &mut bytes)?;
                let time = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?.to_ns();
                Some(if command == operation::WAIT {
                    // FUTEX_WAIT takes a relative timeout.
                    machine.monotonic_ns().saturating_add(time)
                } else if operation & operation::CLOCK_REALTIME != 0 {
                    machine.monotonic_ns().saturating_add(time.saturating_sub(machine.realtime_ns()))
                } else {
                    time
                })
            };
            let is_interrupted = || context.thread.has_deliverable_signal();
            match table.wait_keyed(machine, address, key, value as u32, bitset, deadline, &is_interrupted) {
                Ok(()) => Ok(0),
                Err(Errno::EINTR) => Err(super::Failure::Restart),
                Err(error) => Err(error.into()),
            }
        }
        operation::WAKE => Ok(u64::from(table.wake(key, count(value), MATCH_ANY)?)),
        operation::WAKE_BITSET => Ok(u64::from(table.wake(key, count(value), value3 as u32)?)),
        operation::REQUEUE | operation::CMP_REQUEUE => {
            let expected = (command == operation::CMP_REQUEUE).then_some(value3 as u32);
            let moved = table.requeue(
                machine,
                address,
                second_address,
                count(value),
                count(timeout_or_count),
                expected,
            )?;
            Ok(u64::from(moved))
        }
        operation::WAKE_OP => {
            let woken = table.wake_op(
                machine,
                address,
                second_address,
                count(value),
                count(timeout_or_count),
                value3 as u32,
            )?;
            Ok(u64::from(woken))
        }
        operation::LOCK_PI | operation::LOCK_PI2 => {
            // FUTEX_LOCK_PI's absolute timeout is on the wall clock; the
            // second version's on the monotonic one unless asked.
            let is_realtime = command == operation::LOCK_PI || operation & operation::CLOCK_REALTIME != 0;
            let deadline = absolute_deadline(context, timeout_or_count, is_realtime)?;
            super::futex_locks::lock(context, address, deadline)
        }
        operation::TRYLOCK_PI => super::futex_locks::try_lock(context, address),
        operation::UNLOCK_PI => super::futex_locks::unlock(context, address),
        operation::WAIT_REQUEUE_PI => {
            let is_realtime = operation & operation::CLOCK_REALTIME != 0;
            let deadline = absolute_deadline(context, timeout_or_count, is_realtime)?;
            super::futex_locks::wait_requeue(context, address, value as u32, deadline, second_address)
        }
        operation::CMP_REQUEUE_PI => super::futex_locks::compare_requeue(
            context,
            address,
            count(value),
            count(timeout_or_count),
            second_address,
            value3 as u32,
        ),
        _ => Err(Errno::ENOSYS.into()),
    }
}

/// The key of a futex word in memory other processes may share (a shared
/// mapping): its physical address, the page faulted in first. `None` for
/// private memory, whose futexes stay in the process's own table.
pub(super) fn shared_futex_key(context: Context<'_>, address: u64) -> Option<u64> {
    let page = address & !(crate::memory::PAGE_SIZE - 1);
    let is_shared = {
        let held = context.process.memory();
        let memory = held.space.lock();
        memory.area_at(page).is_some_and(|(_, area)| area.file.as_ref().is_some_and(|file| file.is_shared))
    };
    if !is_shared {
        return None;
    }
    context.machine.load_u32(address).ok()?;
    let frame = context.process.memory().space.lock().tables().mapped_frame(page)?;
    Some(frame + (address - page))
}

/// The monotonic deadline of the absolute time at `address` (on the wall
/// clock with `is_realtime`), or none for no address.
fn absolute_deadline(
    context: Context<'_>,
    address: u64,
    is_realtime: bool,
) -> core::result::Result<Option<u64>, Errno> {
    if address == 0 {
        return Ok(None);
    }
    let machine = context.machine;
    let mut bytes = [0u8; 16];
    User::new(machine).read_into(address, &mut bytes)?;
    let time = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?.to_ns();
    Ok(Some(if is_realtime {
        machine.monotonic_ns().saturating_add(time.saturating_sub(machine.realtime_ns()))
    } else {
        time
    }))
}

/// The processors that exist, one bit each.
fn all_cpus(context: Context<'_>) -> u64 {
    let count = context.machine.cpu_count().min(64);
    if count == 64 { u64::MAX } else { (1u64 << count) - 1 }
}

pub(super) fn sched_getaffinity(context: Context<'_>, tid: u64, size: u64, address: u64) -> Result {
    if size < 8 || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL.into());
    }
    if (tid as i32) < 0 {
        return Err(Errno::ESRCH.into());
    }
    // Any thread of the machine, as `taskset -p PID` asks.
    let thread = super::scheduling::target(context, tid)?;
    let mask = thread.control().map_or(all_cpus(context), |control| control.affinity()) & all_cpus(context);
    User::new(context.machine).write_u64(address, mask)?;
    Ok(8)
}

pub(super) fn sched_setaffinity(context: Context<'_>, tid: u64, size: u64, address: u64) -> Result {
    if size == 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut bytes = [0u8; 8];
    let length = (size as usize).min(8);
    User::new(context.machine).read_into(address, &mut bytes[..length])?;
    let mask = u64::from_le_bytes(bytes) & all_cpus(context);
    if mask == 0 {
        return Err(Errno::EINVAL.into());
    }
    if (tid as i32) < 0 {
        return Err(Errno::ESRCH.into());
    }
    let thread = super::scheduling::changeable(context, tid)?;
    let control = thread.control().ok_or(Errno::ESRCH)?;
    control.set_affinity(mask);
    if thread.tid == context.thread.tid && mask & (1 << context.machine.current_cpu()) == 0 {
        // Leave a processor the thread may no longer use.
        context.machine.yield_now();
    }
    Ok(0)
}

pub(super) fn getcpu(context: Context<'_>, cpu: u64, node: u64) -> Result {
    let user = User::new(context.machine);
    if cpu != 0 {
        user.write_u32(cpu, context.machine.current_cpu() as u32)?;
    }
    if node != 0 {
        user.write_u32(node, 0)?;
    }
    Ok(0)
}

/// Blocks until the monotonic clock reaches `deadline_ns`; `EINTR` if the
/// thread must stop first.
pub(super) fn sleep_until(context: Context<'_>, deadline_ns: u64) -> core::result::Result<(), Errno> {
    while context.machine.monotonic_ns() < deadline_ns {
        if context.thread.has_deliverable_signal() {
            return Err(Errno::EINTR);
        }
        let deadline = (deadline_ns != u64::MAX).then_some(deadline_ns);
        if context.machine.block(deadline) == Wakeup::Stop {
            return Err(Errno::EINTR);
        }
    }
    Ok(())
}

/// `membarrier` commands (Linux `include/uapi/linux/membarrier.h`).
mod membarrier_command {
    pub const QUERY: u64 = 0;
    pub const GLOBAL: u64 = 1 << 0;
    pub const GLOBAL_EXPEDITED: u64 = 1 << 1;
    pub const REGISTER_GLOBAL_EXPEDITED: u64 = 1 << 2;
    pub const PRIVATE_EXPEDITED: u64 = 1 << 3;
    pub const REGISTER_PRIVATE_EXPEDITED: u64 = 1 << 4;
    pub const PRIVATE_EXPEDITED_SYNC_CORE: u64 = 1 << 5;
    pub const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 1 << 6;
    pub const GET_REGISTRATIONS: u64 = 1 << 9;
    /// What `QUERY` reports (the restartable-sequence ones are left out:
    /// there are no restartable sequences).
    pub const SUPPORTED: u64 = GLOBAL
        | GLOBAL_EXPEDITED
        | REGISTER_GLOBAL_EXPEDITED
        | PRIVATE_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED
        | PRIVATE_EXPEDITED_SYNC_CORE
        | REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
        | GET_REGISTRATIONS;
}

/// The `membarrier` registrations made (the address space's, as Linux
/// keeps them: one address space here).
static MEMBARRIER_REGISTRATIONS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// `membarrier`: every command makes every processor pass a barrier (the
/// expedited and the global ones alike, through an interrupt on each);
/// the private expedited ones need their registration first (`EPERM`).
pub(super) fn membarrier(context: Context<'_>, command: u64, flags: u64) -> Result {
    use core::sync::atomic::Ordering;
    use membarrier_command as command_bit;
    if flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    let registered = MEMBARRIER_REGISTRATIONS.load(Ordering::Acquire);
    match command {
        command_bit::QUERY => return Ok(command_bit::SUPPORTED),
        command_bit::GET_REGISTRATIONS => return Ok(registered),
        command_bit::REGISTER_GLOBAL_EXPEDITED
        | command_bit::REGISTER_PRIVATE_EXPEDITED
        | command_bit::REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            MEMBARRIER_REGISTRATIONS.fetch_or(command, Ordering::AcqRel);
            return Ok(0);
        }
        command_bit::PRIVATE_EXPEDITED | command_bit::PRIVATE_EXPEDITED_SYNC_CORE => {
            // Each command's registration is the bit above it.
            if registered & (command << 1) == 0 {
                return Err(Errno::EPERM.into());
            }
        }
        command_bit::GLOBAL | command_bit::GLOBAL_EXPEDITED => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    context.machine.barrier_all_processors();
    Ok(0)
}
