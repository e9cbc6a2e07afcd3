//! Linux system calls: decoding, dispatch, and the handlers.
//!
//! [`handle`] takes a call's number and six arguments and returns an
//! [`Outcome`]. Handlers return `Result<u64, Errno>`, turned into the
//! Linux convention (a negative errno) in one place. A call with no handler
//! returns `ENOSYS`; each such number is logged once, at info level (shown
//! with `--verbose`).

mod block;
mod clock_discipline;
mod credentials;
mod descriptors;
mod events;
mod files;
mod futex_locks;
mod futex_vector;
mod interfaces;
mod ipc;
mod keys;
mod locks;
mod memory;
mod message_queues;
mod messages;
mod mount_context;
mod mounts;
mod namespaces;
mod open_how;
mod owners;
mod paths;
mod pidfd;
mod poll;
mod posix_queues;
mod process;
mod processes;
mod ptrace;
pub(crate) mod remote_memory;
mod resources;
mod scheduling;
mod segments;
mod semaphores;
mod shared;
mod signals;
mod sockets;
mod stat;
mod terminal;
mod threads;
mod time;
mod timers;
mod transfer;
mod wait;
mod watches;

pub(crate) mod ipc_limits;

/// The System V IPC objects as `/proc/sysvipc/{msg,sem,shm}` list them.
pub(crate) mod ipc_listing {
    pub(crate) use super::message_queues::proc_listing as messages;
    pub(crate) use super::segments::proc_listing as shared_memory;
    pub(crate) use super::semaphores::proc_listing as semaphores;
}

pub use signals::signal_process;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::errno::Errno;
use crate::linux::number as nr;
use crate::linux::{AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use crate::machine::{Machine, Registers};
use crate::process::{Process, Termination, Thread};
use paths::AttributeTarget;

/// What the caller of a system call does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Resume the application with the (updated) registers: the result is
    /// in RAX, or a signal handler was set up, or a handler returned.
    Resume,
    /// The calling thread has ended (its process may have too); the caller
    /// retires the kernel thread.
    ExitThread,
    /// Resume with every register as given, RCX and R11 included
    /// (`rt_sigreturn` back into code a signal interrupted anywhere).
    ResumeExactly,
}

static IS_TRACING: AtomicBool = AtomicBool::new(false);

/// Logs every system call with its arguments and result (at info level).
pub fn set_tracing(is_tracing: bool) {
    IS_TRACING.store(is_tracing, Ordering::Relaxed);
}

/// The state a system call runs against.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The hardware.
    pub machine: &'a dyn Machine,
    /// The calling process.
    pub process: &'a Process,
    /// The calling thread.
    pub thread: &'a Arc<Thread>,
    /// The caller's registers at the system call.
    pub registers: &'a Registers,
}

impl<'a> Context<'a> {
    /// The descriptor table the calling thread uses.
    pub fn descriptors(&self) -> crate::process::Part<'a, crate::vfs::DescriptorTable> {
        self.process.descriptors_of(self.thread)
    }

    /// The working directory, root and umask the calling thread uses.
    pub fn fs(&self) -> crate::process::Part<'a, crate::process::FsContext> {
        self.process.fs_of(self.thread)
    }
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Context").field("process", &self.process.pid).finish()
    }
}

/// Why a handler did not return a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The call failed with this error.
    Error(Errno),
    /// The call ended the process (a fatal signal) with this exit status.
    Exit(u8),
    /// A signal interrupted the call, which restarts after the handler if
    /// the handler asks for it (Linux's `ERESTARTSYS`).
    Restart,
    /// A signal interrupted the call, which fails with `EINTR` if a
    /// handler runs and restarts otherwise (Linux's `ERESTARTNOHAND`).
    RestartUnlessHandled,
    /// The call replaced the registers (`rt_sigreturn`): leave RAX alone.
    Resumed,
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Self {
        Failure::Error(errno)
    }
}

type Result = core::result::Result<u64, Failure>;

/// `AT_FDCWD` as a system call argument.
const AT_FDCWD: u64 = crate::linux::AT_FDCWD as u64;

/// Runs the system call in `registers` (number in RAX, arguments in RDI,
/// RSI, RDX, R10, R8, R9) for `thread` of `process`, leaving in `registers`
/// what the thread resumes with (the result in RAX, or a signal handler).
pub fn handle(
    machine: &dyn Machine,
    process: &Process,
    thread: &Arc<Thread>,
    registers: &mut Registers,
) -> Outcome {
    // A traced thread's entry stop may change the call or skip it (no
    // copy of the registers while nothing is traced).
    let skipped = if crate::ptrace::is_active() {
        let before = *registers;
        crate::ptrace::stops::syscall_entry(
            Context { machine, process, thread, registers: &before },
            registers,
        )
    } else {
        None
    };
    let snapshot = *registers;
    let context = Context { machine, process, thread, registers: &snapshot };
    let number = snapshot.rax;
    let [a0, a1, a2, a3, a4, a5] =
        [snapshot.rdi, snapshot.rsi, snapshot.rdx, snapshot.r10, snapshot.r8, snapshot.r9];
    let result = match number {
        _ if skipped.is_some() => Ok(skipped.unwrap_or(0)),
        nr::READ => files::read(context, a0, a1, a2),
        nr::WRITE => files::write(context, a0, a1, a2),
        nr::READV => files::readv(context, a0, a1, a2),
        nr::WRITEV => files::writev(context, a0, a1, a2),
        nr::PREAD64 => files::pread64(context, a0, a1, a2, a3),
        nr::PWRITE64 => files::pwrite64(context, a0, a1, a2, a3),
        nr::PREADV => files::preadv(context, a0, a1, a2, a3),
        nr::PWRITEV => files::pwritev(context, a0, a1, a2, a3),
        nr::PREADV2 => files::preadv2(context, a0, a1, a2, a3, a5),
        nr::PWRITEV2 => files::pwritev2(context, a0, a1, a2, a3, a5),
        nr::LSEEK => files::lseek(context, a0, a1, a2),
        nr::SENDFILE => files::sendfile(context, a0, a1, a2, a3),
        nr::GETDENTS64 => files::getdents64(context, a0, a1, a2),
        nr::FTRUNCATE => files::ftruncate(context, a0, a1),
        nr::FSYNC | nr::FDATASYNC => files::fsync(context, a0),
        nr::FADVISE64 => files::fadvise64(context, a0, a3),
        nr::SYNC => files::sync(context),
        nr::SYNCFS => transfer::syncfs(context, a0),
        nr::SYNC_FILE_RANGE => transfer::sync_file_range(context, a0, a1, a2, a3),
        nr::FALLOCATE => transfer::fallocate(context, a0, a1, a2, a3),
        nr::SPLICE => transfer::splice(context, (a0, a1), (a2, a3), a4, a5),
        nr::TEE => transfer::tee(context, a0, a1, a2, a3),
        nr::VMSPLICE => transfer::vmsplice(context, a0, a1, a2, a3),
        nr::COPY_FILE_RANGE => transfer::copy_file_range(context, (a0, a1), (a2, a3), a4, a5),
        nr::NAME_TO_HANDLE_AT => transfer::name_to_handle_at(context, a0, a1, a2, a4),
        nr::OPEN_BY_HANDLE_AT => transfer::open_by_handle_at(context, a0, a1),
        // Watching the whole filesystem's events needs a listener process
        // with CAP_SYS_ADMIN and the events of every filesystem; rosv has
        // neither the listener model nor the hooks.
        nr::INOTIFY_INIT => watches::inotify_init1(context, 0),
        nr::INOTIFY_INIT1 => watches::inotify_init1(context, a0),
        nr::INOTIFY_ADD_WATCH => watches::inotify_add_watch(context, a0, a1, a2),
        nr::INOTIFY_RM_WATCH => watches::inotify_rm_watch(context, a0, a1),
        nr::FANOTIFY_INIT => Err(Errno::ENOSYS.into()),
        // The root mount cannot move: the VFS holds one root for the
        // machine, and there is no other mount namespace to pivot into.
        nr::PIVOT_ROOT => Err(Errno::ENOSYS.into()),
        nr::MOUNT => mounts::mount(context, a0, a1, a2, a3, a4),
        nr::UMOUNT2 => mounts::umount2(context, a0, a1),
        nr::OPEN_TREE => mount_context::open_tree(context, a0, a1, a2),
        nr::MOVE_MOUNT => mount_context::move_mount(context, a0, a1, a2, a3, a4),
        nr::FSOPEN => mount_context::fsopen(context, a0, a1),
        nr::FSCONFIG => mount_context::fsconfig(context, a0, a1, a2, a3, a4),
        nr::FSMOUNT => mount_context::fsmount(context, a0, a1, a2),
        nr::FSPICK => mount_context::fspick(context, a0, a1, a2),
        nr::MOUNT_SETATTR => mount_context::mount_setattr(context, a0, a1, a2, a3, a4),
        nr::OPEN_TREE_ATTR => mount_context::open_tree_attr(context, a0, a1, a2, a3, a4),
        nr::OPEN => paths::openat(context, AT_FDCWD, a0, a1, a2),
        nr::OPENAT => paths::openat(context, a0, a1, a2, a3),
        nr::OPENAT2 => open_how::openat2(context, a0, a1, a2, a3),
        nr::CREAT => paths::creat(context, a0, a1),
        nr::CLOSE => paths::close(context, a0),
        nr::CLOSE_RANGE => paths::close_range(context, a0, a1, a2),
        nr::MKDIR => paths::mkdirat(context, AT_FDCWD, a0, a1),
        nr::MKDIRAT => paths::mkdirat(context, a0, a1, a2),
        nr::MKNOD => paths::mknodat(context, AT_FDCWD, a0, a1, a2),
        nr::MKNODAT => paths::mknodat(context, a0, a1, a2, a3),
        nr::RMDIR => paths::unlinkat(context, AT_FDCWD, a0, AT_REMOVEDIR),
        nr::UNLINK => paths::unlinkat(context, AT_FDCWD, a0, 0),
        nr::UNLINKAT => paths::unlinkat(context, a0, a1, a2),
        nr::RENAME => paths::renameat2(context, (AT_FDCWD, a0), (AT_FDCWD, a1), 0),
        nr::RENAMEAT => paths::renameat2(context, (a0, a1), (a2, a3), 0),
        nr::RENAMEAT2 => paths::renameat2(context, (a0, a1), (a2, a3), a4),
        nr::LINK => paths::linkat(context, (AT_FDCWD, a0), (AT_FDCWD, a1), 0),
        nr::LINKAT => paths::linkat(context, (a0, a1), (a2, a3), a4),
        nr::SYMLINK => paths::symlinkat(context, a0, AT_FDCWD, a1),
        nr::SYMLINKAT => paths::symlinkat(context, a0, a1, a2),
        nr::READLINK => paths::readlinkat(context, AT_FDCWD, a0, a1, a2),
        nr::READLINKAT => paths::readlinkat(context, a0, a1, a2, a3),
        nr::CHDIR => paths::chdir(context, a0),
        nr::CHROOT => paths::chroot(context, a0),
        nr::FCHDIR => paths::fchdir(context, a0),
        nr::GETCWD => paths::getcwd(context, a0, a1),
        nr::UMASK => paths::umask(context, a0),
        nr::ACCESS => paths::faccessat2(context, AT_FDCWD, a0, a1, 0),
        nr::FACCESSAT => paths::faccessat2(context, a0, a1, a2, 0),
        nr::FACCESSAT2 => paths::faccessat2(context, a0, a1, a2, a3),
        nr::CHMOD => paths::fchmodat(context, AT_FDCWD, a0, a1),
        nr::FCHMOD => paths::fchmod(context, a0, a1),
        nr::FCHMODAT => paths::fchmodat(context, a0, a1, a2),
        nr::CHOWN => paths::fchownat(context, AT_FDCWD, a0, (a1, a2), 0),
        nr::LCHOWN => paths::fchownat(context, AT_FDCWD, a0, (a1, a2), AT_SYMLINK_NOFOLLOW),
        nr::FCHOWN => paths::fchown(context, a0, (a1, a2)),
        nr::FCHOWNAT => paths::fchownat(context, a0, a1, (a2, a3), a4),
        nr::UTIMENSAT => paths::utimensat(context, a0, a1, a2, a3),
        nr::GETXATTR => paths::getxattr(context, AttributeTarget::Path(a0), a1, a2, a3),
        nr::LGETXATTR => paths::getxattr(context, AttributeTarget::Link(a0), a1, a2, a3),
        nr::FGETXATTR => paths::getxattr(context, AttributeTarget::Descriptor(a0), a1, a2, a3),
        nr::LISTXATTR => paths::listxattr(context, AttributeTarget::Path(a0), a1, a2),
        nr::LLISTXATTR => paths::listxattr(context, AttributeTarget::Link(a0), a1, a2),
        nr::FLISTXATTR => paths::listxattr(context, AttributeTarget::Descriptor(a0), a1, a2),
        nr::SETXATTR => paths::setxattr(context, AttributeTarget::Path(a0), a1, a2, a3, a4),
        nr::LSETXATTR => paths::setxattr(context, AttributeTarget::Link(a0), a1, a2, a3, a4),
        nr::FSETXATTR => paths::setxattr(context, AttributeTarget::Descriptor(a0), a1, a2, a3, a4),
        nr::REMOVEXATTR => paths::removexattr(context, AttributeTarget::Path(a0), a1),
        nr::LREMOVEXATTR => paths::removexattr(context, AttributeTarget::Link(a0), a1),
        nr::FREMOVEXATTR => paths::removexattr(context, AttributeTarget::Descriptor(a0), a1),
        nr::TRUNCATE => paths::truncate(context, a0, a1),
        nr::STAT => stat::stat(context, a0, a1, true),
        nr::LSTAT => stat::stat(context, a0, a1, false),
        nr::FSTAT => stat::fstat(context, a0, a1),
        nr::NEWFSTATAT => stat::newfstatat(context, a0, a1, a2, a3),
        nr::STATX => stat::statx(context, a0, a1, a2, a3, a4),
        nr::STATFS => stat::statfs(context, a0, a1),
        nr::FSTATFS => stat::fstatfs(context, a0, a1),
        nr::DUP => descriptors::dup(context, a0),
        nr::DUP2 => descriptors::dup2(context, a0, a1),
        nr::DUP3 => descriptors::dup3(context, a0, a1, a2),
        nr::FCNTL => descriptors::fcntl(context, a0, a1, a2),
        nr::FLOCK => descriptors::flock(context, a0, a1),
        nr::PIPE => descriptors::pipe2(context, a0, 0),
        nr::PIPE2 => descriptors::pipe2(context, a0, a1),
        nr::IOCTL => descriptors::ioctl(context, a0, a1, a2),
        nr::EVENTFD => events::eventfd2(context, a0, 0),
        nr::EVENTFD2 => events::eventfd2(context, a0, a1),
        nr::EPOLL_CREATE => events::epoll_create(context, a0),
        nr::EPOLL_CREATE1 => events::epoll_create1(context, a0),
        nr::EPOLL_CTL => events::epoll_ctl(context, a0, a1, a2, a3),
        nr::EPOLL_WAIT => events::epoll_wait(context, a0, a1, a2, a3),
        nr::EPOLL_PWAIT => events::epoll_pwait(context, a0, a1, a2, a3, [a4, a5]),
        nr::EPOLL_PWAIT2 => events::epoll_pwait2(context, a0, a1, a2, a3, [a4, a5]),
        nr::SOCKET => sockets::socket(context, a0, a1, a2),
        nr::SOCKETPAIR => sockets::socketpair(context, a0, a1, a2, a3),
        nr::BIND => sockets::bind(context, a0, a1, a2),
        nr::LISTEN => sockets::listen(context, a0, a1),
        nr::ACCEPT => sockets::accept4(context, a0, a1, a2, 0),
        nr::ACCEPT4 => sockets::accept4(context, a0, a1, a2, a3),
        nr::CONNECT => sockets::connect(context, a0, a1, a2),
        nr::GETSOCKNAME => sockets::getsockname(context, a0, a1, a2),
        nr::GETPEERNAME => sockets::getpeername(context, a0, a1, a2),
        nr::SHUTDOWN => sockets::shutdown(context, a0, a1),
        nr::SENDTO => sockets::sendto(context, a0, a1, a2, a3, a4, a5),
        nr::RECVFROM => sockets::recvfrom(context, a0, a1, a2, a3, a4, a5),
        nr::SENDMSG => messages::sendmsg(context, a0, a1, a2),
        nr::RECVMSG => messages::recvmsg(context, a0, a1, a2),
        nr::SENDMMSG => messages::sendmmsg(context, a0, a1, a2, a3),
        nr::RECVMMSG => messages::recvmmsg(context, a0, a1, a2, a3, a4),
        nr::SETSOCKOPT => sockets::setsockopt(context, a0, a1, a2, a3, a4),
        nr::GETSOCKOPT => sockets::getsockopt(context, a0, a1, a2, a3, a4),
        nr::POLL => poll::poll(context, a0, a1, a2 as i32 as i64),
        nr::PPOLL => poll::ppoll(context, a0, a1, a2, [a3, a4]),
        nr::SELECT => poll::select(context, a0, [a1, a2, a3], a4),
        nr::PSELECT6 => poll::pselect6(context, a0, [a1, a2, a3], a4, a5),
        nr::BRK => memory::brk(context, a0),
        nr::MMAP => memory::mmap(context, a0, a1, a2, a3, a4, a5),
        nr::MUNMAP => memory::munmap(context, a0, a1),
        nr::MPROTECT => memory::mprotect(context, a0, a1, a2),
        nr::MADVISE => memory::madvise(context, a0, a1, a2),
        nr::MREMAP => memory::mremap(context, a0, a1, a2, a3, a4),
        nr::MSYNC => memory::msync(context, a0, a1, a2),
        nr::MINCORE => memory::mincore(context, a0, a1, a2),
        nr::MLOCK => memory::mlock(context, a0, a1, 0, true),
        nr::MUNLOCK => memory::mlock(context, a0, a1, 0, false),
        nr::MLOCK2 => memory::mlock(context, a0, a1, a2, true),
        nr::MLOCKALL => memory::mlockall(a0),
        nr::MUNLOCKALL => memory::munlockall(context),
        nr::MEMFD_CREATE => shared::memfd_create(context, a0, a1),
        nr::SHMGET => segments::shmget(context, a0, a1, a2),
        nr::SHMAT => segments::shmat(context, a0, a1, a2),
        nr::SHMDT => segments::shmdt(context, a0),
        nr::SHMCTL => segments::shmctl(context, a0, a1, a2),
        nr::MSGGET => message_queues::msgget(context, a0, a1),
        nr::MSGSND => message_queues::msgsnd(context, a0, a1, a2, a3),
        nr::MSGRCV => message_queues::msgrcv(context, a0, a1, a2, a3, a4),
        nr::MSGCTL => message_queues::msgctl(context, a0, a1, a2),
        nr::SEMGET => semaphores::semget(context, a0, a1, a2),
        nr::SEMOP => semaphores::semtimedop(context, a0, a1, a2, 0),
        nr::SEMTIMEDOP => semaphores::semtimedop(context, a0, a1, a2, a3),
        nr::SEMCTL => semaphores::semctl(context, a0, a1, a2, a3),
        nr::MQ_OPEN => posix_queues::mq_open(context, a0, a1, a2, a3),
        nr::MQ_UNLINK => posix_queues::mq_unlink(context, a0),
        nr::MQ_TIMEDSEND => posix_queues::mq_timedsend(context, a0, a1, a2, a3, a4),
        nr::MQ_TIMEDRECEIVE => posix_queues::mq_timedreceive(context, a0, a1, a2, a3, a4),
        nr::MQ_NOTIFY => posix_queues::mq_notify(context, a0, a1),
        nr::MQ_GETSETATTR => posix_queues::mq_getsetattr(context, a0, a1, a2),
        nr::PKEY_MPROTECT => memory::pkey_mprotect(context, a0, a1, a2, a3),
        nr::PKEY_ALLOC => memory::pkey_alloc(a0, a1),
        nr::PKEY_FREE => memory::pkey_free(),
        nr::GETRANDOM => memory::getrandom(context, a0, a1, a2),
        nr::EXIT => return threads::exit(context, a0 as u8),
        nr::EXIT_GROUP => return threads::exit_group(context, Termination::Exited(a0 as u8)),
        nr::CLONE => threads::clone(context, a0, a1, a2, a3, a4),
        nr::CLONE3 => threads::clone3(context, a0, a1),
        nr::FUTEX => threads::futex(context, a0, a1, a2, a3, a4, a5),
        nr::FUTEX_WAITV => futex_vector::futex_waitv(context, a0, a1, a2, a3, a4),
        nr::GETTID => Ok(thread.tid),
        nr::GETPID => Ok(process.pid),
        nr::GETPGRP => Ok(process.group_id()),
        nr::GETPPID => processes::getppid(context),
        nr::GETPGID => processes::getpgid(context, a0),
        nr::SETPGID => processes::setpgid(context, a0, a1),
        nr::GETSID => processes::getsid(context, a0),
        nr::SETSID => processes::setsid(context),
        nr::UNSHARE => processes::unshare(context, a0),
        nr::SETNS => namespaces::setns(context, a0, a1),
        nr::FORK => threads::clone(context, u64::from(crate::signal::SIGCHLD), 0, 0, 0, 0),
        nr::VFORK => threads::clone(
            context,
            processes::flag::VM | processes::flag::VFORK | u64::from(crate::signal::SIGCHLD),
            0,
            0,
            0,
            0,
        ),
        nr::EXECVE => processes::execve(context, registers, a0, a1, a2),
        nr::EXECVEAT => processes::execveat(context, registers, a0, a1, a2, a3, a4),
        nr::GETUID => {
            Ok(process.state.lock().credentials.as_seen(|credentials| credentials.real_user, false))
        }
        nr::GETEUID => {
            Ok(process.state.lock().credentials.as_seen(|credentials| credentials.effective_user, false))
        }
        nr::GETGID => {
            Ok(process.state.lock().credentials.as_seen(|credentials| credentials.real_group, true))
        }
        nr::GETEGID => {
            Ok(process.state.lock().credentials.as_seen(|credentials| credentials.effective_group, true))
        }
        nr::GETRESUID => process::getresuid(context, a0, a1, a2),
        nr::GETRESGID => process::getresgid(context, a0, a1, a2),
        nr::GETGROUPS => process::getgroups(context, a0, a1),
        nr::SETUID => credentials::setuid(context, a0),
        nr::SETGID => credentials::setgid(context, a0),
        nr::SETREUID => credentials::setreuid(context, a0, a1),
        nr::SETREGID => credentials::setregid(context, a0, a1),
        nr::SETRESUID => credentials::setresuid(context, a0, a1, a2),
        nr::SETRESGID => credentials::setresgid(context, a0, a1, a2),
        nr::SETFSUID => credentials::setfsuid(context, a0),
        nr::SETFSGID => credentials::setfsgid(context, a0),
        nr::SETGROUPS => credentials::setgroups(context, a0, a1),
        nr::CAPGET => credentials::capget(context, a0, a1),
        nr::CAPSET => credentials::capset(context, a0, a1),
        nr::WAIT4 => wait::wait4(context, a0, a1, a2, a3),
        nr::WAITID => wait::waitid(context, a0, a1, a2, a3, a4),
        nr::PIDFD_OPEN => pidfd::pidfd_open(context, a0, a1),
        nr::PIDFD_SEND_SIGNAL => pidfd::pidfd_send_signal(context, a0, a1, a2, a3),
        nr::PIDFD_GETFD => pidfd::pidfd_getfd(context, a0, a1, a2),
        nr::UNAME => process::uname(context, a0),
        nr::ARCH_PRCTL => process::arch_prctl(context, a0, a1),
        nr::SET_TID_ADDRESS => process::set_tid_address(context, a0),
        nr::SET_ROBUST_LIST => process::set_robust_list(context, a0, a1),
        nr::GET_ROBUST_LIST => process::get_robust_list(context, a0, a1, a2),
        nr::PRLIMIT64 => process::prlimit(context, a0, a1, a2, a3),
        nr::GETRLIMIT => process::prlimit(context, 0, a0, 0, a1),
        nr::SETRLIMIT => process::prlimit(context, 0, a0, a1, 0),
        nr::RT_SIGACTION => signals::rt_sigaction(context, a0, a1, a2, a3),
        nr::RT_SIGPROCMASK => signals::rt_sigprocmask(context, a0, a1, a2, a3),
        nr::RT_SIGPENDING => signals::rt_sigpending(context, a0, a1),
        nr::RT_SIGRETURN => signals::rt_sigreturn(context, registers),
        nr::RT_SIGSUSPEND => signals::rt_sigsuspend(context, a0, a1),
        nr::RT_SIGTIMEDWAIT => signals::rt_sigtimedwait(context, a0, a1, a2, a3),
        nr::RT_SIGQUEUEINFO => signals::rt_sigqueueinfo(context, a0, a1, a2),
        nr::RT_TGSIGQUEUEINFO => signals::rt_tgsigqueueinfo(context, a0, a1, a2, a3),
        nr::PAUSE => signals::pause(context),
        nr::SIGNALFD => signals::signalfd4(context, a0, a1, a2, 0),
        nr::SIGNALFD4 => signals::signalfd4(context, a0, a1, a2, a3),
        nr::SIGALTSTACK => signals::sigaltstack(context, a0, a1),
        nr::KILL => signals::kill(context, a0, a1),
        nr::TKILL => signals::tkill(context, a0, a1),
        nr::TGKILL => signals::tgkill(context, a0, a1, a2),
        nr::PRCTL if credentials::is_prctl_option(a0) => credentials::prctl(context, a0, [a1, a2, a3, a4]),
        nr::PRCTL => process::prctl(context, a0, a1),
        nr::SCHED_YIELD => {
            machine.yield_now();
            Ok(0)
        }
        nr::SCHED_GETAFFINITY => threads::sched_getaffinity(context, a0, a1, a2),
        nr::SCHED_SETAFFINITY => threads::sched_setaffinity(context, a0, a1, a2),
        nr::SCHED_SETSCHEDULER => scheduling::sched_setscheduler(context, a0, a1, a2),
        nr::SCHED_GETSCHEDULER => scheduling::sched_getscheduler(context, a0),
        nr::SCHED_SETPARAM => scheduling::sched_setparam(context, a0, a1),
        nr::SCHED_GETPARAM => scheduling::sched_getparam(context, a0, a1),
        nr::SCHED_GET_PRIORITY_MAX => scheduling::sched_get_priority_max(a0),
        nr::SCHED_GET_PRIORITY_MIN => scheduling::sched_get_priority_min(a0),
        nr::SCHED_RR_GET_INTERVAL => scheduling::sched_rr_get_interval(context, a0, a1),
        nr::SCHED_SETATTR => scheduling::sched_setattr(context, a0, a1, a2),
        nr::SCHED_GETATTR => scheduling::sched_getattr(context, a0, a1, a2, a3),
        nr::GETPRIORITY => scheduling::getpriority(context, a0, a1),
        nr::SETPRIORITY => scheduling::setpriority(context, a0, a1, a2),
        nr::IOPRIO_GET => scheduling::ioprio_get(context, a0, a1),
        nr::IOPRIO_SET => scheduling::ioprio_set(context, a0, a1, a2),
        nr::PERSONALITY => process::personality(context, a0),
        nr::SETHOSTNAME => process::set_name(context, a0, a1, false),
        nr::SETDOMAINNAME => process::set_name(context, a0, a1, true),
        nr::KCMP => process::kcmp(context, (a0, a1), a2, a3, a4),
        nr::PTRACE => ptrace::ptrace(context, a0, a1, a2, a3),
        nr::PROCESS_VM_READV => remote_memory::process_vm(context, a0, (a1, a2), (a3, a4), a5, true),
        nr::PROCESS_VM_WRITEV => remote_memory::process_vm(context, a0, (a1, a2), (a3, a4), a5, false),
        nr::MEMBARRIER => threads::membarrier(context, a0, a1),
        // Restartable sequences would need the kernel to rewrite the
        // registered area at every migration and preemption; ENOSYS is what
        // a Linux built without them answers, and C libraries then use
        // getcpu (through the vDSO or the call) instead.
        nr::RSEQ => Err(Errno::ENOSYS.into()),
        nr::ADD_KEY => keys::add_key(context, a0, a1, a2, a3, a4),
        nr::REQUEST_KEY => keys::request_key(context, a0, a1, a2, a3),
        nr::KEYCTL => keys::keyctl(context, a0, [a1, a2, a3, a4]),
        nr::SYSLOG => resources::syslog(context, a0, a1, a2),
        nr::GETCPU => threads::getcpu(context, a0, a1),
        nr::CLOCK_GETTIME => time::clock_gettime(context, a0, a1),
        nr::CLOCK_GETRES => time::clock_getres(context, a0, a1),
        nr::GETTIMEOFDAY => time::gettimeofday(context, a0, a1),
        nr::CLOCK_SETTIME => time::clock_settime(context, a0, a1),
        nr::SETTIMEOFDAY => time::settimeofday(context, a0, a1),
        nr::TIME => time::time(context, a0),
        nr::NANOSLEEP => time::nanosleep(context, a0, a1),
        nr::CLOCK_NANOSLEEP => time::clock_nanosleep(context, a0, a1, a2, a3),
        nr::TIMER_CREATE => timers::timer_create(context, a0, a1, a2),
        nr::TIMER_SETTIME => timers::timer_settime(context, a0, a1, a2, a3),
        nr::TIMER_GETTIME => timers::timer_gettime(context, a0, a1),
        nr::TIMER_GETOVERRUN => timers::timer_getoverrun(context, a0),
        nr::TIMER_DELETE => timers::timer_delete(context, a0),
        nr::GETITIMER => timers::getitimer(context, a0, a1),
        nr::SETITIMER => timers::setitimer(context, a0, a1, a2),
        nr::ALARM => timers::alarm(context, a0),
        nr::TIMERFD_CREATE => timers::timerfd_create(context, a0, a1),
        nr::TIMERFD_SETTIME => timers::timerfd_settime(context, a0, a1, a2, a3),
        nr::TIMERFD_GETTIME => timers::timerfd_gettime(context, a0, a1),
        nr::TIMES => resources::times(context, a0),
        nr::GETRUSAGE => resources::getrusage(context, a0, a1),
        nr::SYSINFO => resources::sysinfo(context, a0),
        nr::ADJTIMEX => clock_discipline::adjtimex(context, a0),
        nr::CLOCK_ADJTIME => clock_discipline::clock_adjtime(context, a0, a1),
        _ => {
            if process.first_report_of(number) {
                log::info!("system call {number} is not implemented; returning ENOSYS");
            }
            Err(Errno::ENOSYS.into())
        }
    };
    if IS_TRACING.load(Ordering::Relaxed) {
        trace(thread.tid, number, &snapshot, &result);
    }
    let mut interruption = signals::Interruption::None;
    let mut resumed = Outcome::Resume;
    match result {
        Ok(value) => registers.rax = value,
        Err(Failure::Error(errno)) => registers.rax = errno.to_return() as u64,
        Err(Failure::Exit(status)) => return threads::exit_group(context, killed(status)),
        Err(Failure::Restart) => {
            registers.rax = Errno::EINTR.to_return() as u64;
            interruption = signals::Interruption::Restartable;
        }
        Err(Failure::RestartUnlessHandled) => {
            registers.rax = Errno::EINTR.to_return() as u64;
            interruption = signals::Interruption::RestartableUnlessHandled;
        }
        Err(Failure::Resumed) => resumed = Outcome::ResumeExactly,
    }
    // A successful execve resumes the new image's registers.
    let has_executed = matches!(number, nr::EXECVE | nr::EXECVEAT)
        && matches!(result, Err(Failure::Resumed))
        && skipped.is_none();
    crate::ptrace::stops::syscall_exit(context, registers, number, has_executed);
    match signals::deliver(context, registers, number, interruption) {
        // One instruction, then a trap (a single step): only the exact
        // return path leaves the trap flag for application code alone.
        Ok(()) if registers.rflags & crate::ptrace::stops::TRAP_FLAG != 0 => Outcome::ResumeExactly,
        Ok(()) => resumed,
        Err(status) => threads::exit_group(context, killed(status)),
    }
}

/// The end of a process that signal delivery reports as status `status`
/// (128 plus the signal's number).
fn killed(status: u8) -> Termination {
    Termination::Killed(status.saturating_sub(128))
}

/// Before application code interrupted outside a system call resumes (an
/// interrupt found a signal pending): runs the handler of the first
/// deliverable signal, or ends the process if its default action does.
pub fn deliver_pending_signals(
    machine: &dyn Machine,
    process: &Process,
    thread: &Arc<Thread>,
    registers: &mut Registers,
) -> Outcome {
    let snapshot = *registers;
    let context = Context { machine, process, thread, registers: &snapshot };
    match signals::deliver_asynchronously(context, registers) {
        Ok(()) => Outcome::ResumeExactly,
        Err(status) => threads::exit_group(context, killed(status)),
    }
}

/// After a fault in application code that demand paging could not resolve:
/// runs the application's handler for the fault's signal. `Err` is the
/// exit status when the fault ends the process instead; the caller reports
/// it and ends the process.
pub fn deliver_fault(
    machine: &dyn Machine,
    process: &Process,
    thread: &Arc<Thread>,
    registers: &mut Registers,
    fault: crate::signal::Fault,
) -> core::result::Result<(), u8> {
    let snapshot = *registers;
    let context = Context { machine, process, thread, registers: &snapshot };
    signals::deliver_fault(context, registers, fault)
}

/// Ends the process, killed with status `status` (128 plus the signal's
/// number), on behalf of `thread` (after a fatal fault or when memory ran
/// out), as `exit_group` would.
pub fn end_process(
    machine: &dyn Machine,
    process: &Process,
    thread: &Arc<Thread>,
    registers: &Registers,
    status: u8,
) -> Outcome {
    let context = Context { machine, process, thread, registers };
    threads::exit_group(context, killed(status))
}

#[cfg(test)]
mod tests;

fn trace(tid: u64, number: u64, registers: &Registers, result: &Result) {
    let name = match crate::linux::syscall_name(number) {
        "unknown" => alloc::format!("syscall {number}"),
        name => alloc::string::String::from(name),
    };
    let arguments = [registers.rdi, registers.rsi, registers.rdx, registers.r10, registers.r8, registers.r9];
    let outcome = match result {
        Ok(value) => alloc::format!("{:#x}", value),
        Err(Failure::Error(errno)) => alloc::format!("-{}", errno.0),
        Err(Failure::Exit(status)) => alloc::format!("exit {status}"),
        Err(Failure::Restart | Failure::RestartUnlessHandled) => alloc::string::String::from("interrupted"),
        Err(Failure::Resumed) => alloc::string::String::from("resumed"),
    };
    log::info!(
        "[{tid}] {name}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {outcome}",
        arguments[0],
        arguments[1],
        arguments[2],
        arguments[3],
        arguments[4],
        arguments[5]
    );
}
