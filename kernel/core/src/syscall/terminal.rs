//! Terminal requests (`ioctl` on a standard stream that is a terminal).

mod master;

use alloc::sync::Arc;

use super::{Context, Result};
use crate::errno::Errno;
use crate::process::ControllingTerminal;
use crate::terminal::pseudo::is_session_alive;
use crate::terminal::termios::{TERMIOS_SIZE, Termios, WINDOW_SIZE_SIZE, WindowSize, character};
use crate::terminal::{Terminal, TerminalFile};
use crate::user::User;
use crate::vfs::OpenFile;

pub(super) use master::{ioctl as master_ioctl, master_of};

/// Terminal `ioctl` requests (Linux `include/uapi/asm-generic/ioctls.h`).
pub(super) mod request {
    pub const TCGETS: u64 = 0x5401;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TCSBRK: u64 = 0x5409;
    pub const TCXONC: u64 = 0x540a;
    pub const TCFLSH: u64 = 0x540b;
    pub const TIOCSCTTY: u64 = 0x540e;
    pub const TIOCGPGRP: u64 = 0x540f;
    pub const TIOCSPGRP: u64 = 0x5410;
    pub const TIOCOUTQ: u64 = 0x5411;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const TIOCNOTTY: u64 = 0x5422;
    pub const TCSBRKP: u64 = 0x5425;
    pub const TIOCGSID: u64 = 0x5429;
    pub const TCGETS2: u64 = 0x802c_542a;
    pub const TCSETS2: u64 = 0x402c_542b;
    pub const TCSETSW2: u64 = 0x402c_542c;
    pub const TCSETSF2: u64 = 0x402c_542d;
}

/// `TCFLSH` queue selectors.
pub(super) const TCIFLUSH: u64 = 0;
pub(super) const TCOFLUSH: u64 = 1;
pub(super) const TCIOFLUSH: u64 = 2;

/// `TCXONC` actions: suspend or restart output, send STOP or START.
const TCOOFF: u64 = 0;
const TCOON: u64 = 1;
const TCIOFF: u64 = 2;
const TCION: u64 = 3;

/// The terminal `file` is a descriptor of, if it is one.
pub(super) fn terminal_of(file: &OpenFile) -> Option<Arc<Terminal>> {
    let special = file.special()?;
    special.as_any().downcast_ref::<TerminalFile>().map(|file| file.terminal().clone())
}

/// `fchmod` and `fchown` of a pseudo-terminal slave's descriptor, which
/// has no node of its own: they change its `/dev/pts` node, under the
/// rules `chmod` and `chown` follow (the owner or `CAP_FOWNER` sets the
/// mode; `CAP_CHOWN` gives it away, its owner may pick one of its groups).
/// `None` when `file` is no such descriptor.
pub(super) fn change_node(
    context: Context<'_>,
    file: &OpenFile,
    permissions: Option<u32>,
    (user, group): (Option<u32>, Option<u32>),
) -> Option<Result> {
    let terminal = terminal_of(file).filter(|terminal| terminal.is_pseudo())?;
    let metadata = crate::terminal::file::slave_metadata(&terminal);
    if let Some(credentials) = crate::syscall::files::caller(context).credentials() {
        if permissions.is_some() && !crate::vfs::permission::is_owner(&credentials, &metadata) {
            return Some(Err(Errno::EPERM.into()));
        }
        let may_chown = credentials.has_capability(crate::credentials::capability::CHOWN);
        let is_owner = credentials.filesystem_user == metadata.owner_user;
        let user_allowed = user.is_none_or(|user| may_chown || (is_owner && user == metadata.owner_user));
        let group_allowed = group.is_none_or(|group| {
            may_chown || (is_owner && (group == metadata.owner_group || credentials.is_in_group(group)))
        });
        if !user_allowed || !group_allowed {
            return Some(Err(Errno::EPERM.into()));
        }
    }
    if let Some(permissions) = permissions {
        terminal.set_permissions(permissions);
    }
    terminal.set_owner(user, group);
    Some(Ok(0))
}

/// Whether `terminal` is the caller's controlling terminal.
fn is_controlling(context: Context<'_>, terminal: &Terminal) -> bool {
    context.process.controlling_terminal.lock().as_ref().is_some_and(|own| own.is(terminal))
}

/// `TIOCSCTTY`: a session leader without a controlling terminal makes
/// `terminal` its session's, unless another session has it (which
/// `steal`, for a privileged caller, takes away).
fn acquire(context: Context<'_>, terminal: &Arc<Terminal>, steal: bool) -> Result {
    let process = context.process;
    let session = process.session_id();
    if is_controlling(context, terminal) && terminal.session() == session {
        return Ok(0);
    }
    if session != process.pid || process.controlling_terminal.lock().is_some() {
        return Err(Errno::EPERM.into());
    }
    let owner = terminal.session();
    if owner != session && is_session_alive(owner) {
        let is_privileged = process.state.lock().credentials.effective_user == 0;
        if !steal || !is_privileged {
            return Err(Errno::EPERM.into());
        }
    }
    terminal.detach_session();
    terminal.set_session(session);
    terminal.foreground().set_group(process.group_id());
    *process.controlling_terminal.lock() = Some(ControllingTerminal::Terminal(terminal.clone()));
    Ok(0)
}

/// `TIOCNOTTY`: the caller gives up its controlling terminal; a session
/// leader takes it from its whole session, and the foreground group gets
/// `SIGHUP` and `SIGCONT`.
fn give_up(context: Context<'_>, terminal: &Terminal) -> Result {
    const SIGHUP: u8 = 1;
    if !is_controlling(context, terminal) {
        return Err(Errno::ENOTTY.into());
    }
    let process = context.process;
    if process.session_id() != process.pid {
        *process.controlling_terminal.lock() = None;
        return Ok(0);
    }
    let foreground = terminal.foreground().group(process.group_id());
    for member in crate::process::all() {
        if member.group_id() == foreground && !member.has_ended() {
            crate::syscall::signal_process(&member, SIGHUP);
            crate::syscall::signal_process(&member, crate::signal::SIGCONT);
        }
    }
    terminal.detach_session();
    Ok(0)
}

/// Answers a terminal request on `terminal`.
pub(super) fn ioctl(context: Context<'_>, terminal: &Arc<Terminal>, command: u64, argument: u64) -> Result {
    let user = User::new(context.machine);
    let caller = super::files::caller(context);
    if terminal.is_hung_up() {
        // A hung-up pseudo-terminal answers nothing (Linux's
        // `hung_up_tty_ioctl`).
        return Err(if command == request::TIOCSPGRP { Errno::ENOTTY } else { Errno::EIO }.into());
    }
    let is_change = matches!(
        command,
        request::TCSETS
            | request::TCSETSW
            | request::TCSETSF
            | request::TCSETS2
            | request::TCSETSW2
            | request::TCSETSF2
            | request::TIOCSPGRP
            | request::TCFLSH
    );
    if is_change {
        // A background job stops (SIGTTOU) before it changes the terminal.
        terminal.check_job_access(&caller, crate::signal::job::SIGTTOU)?;
    }
    match command {
        request::TCGETS => user.write_bytes(argument, &terminal.termios().encode())?,
        request::TCGETS2 => user.write_bytes(argument, &terminal.termios().encode2())?,
        request::TCSETS
        | request::TCSETSW
        | request::TCSETSF
        | request::TCSETS2
        | request::TCSETSW2
        | request::TCSETSF2 => {
            let mut bytes = [0u8; TERMIOS_SIZE];
            user.read_into(argument, &mut bytes)?;
            let flushes_input = command == request::TCSETSF || command == request::TCSETSF2;
            terminal.set_termios(Termios::decode(&bytes), flushes_input);
        }
        request::TIOCGWINSZ => user.write_bytes(argument, &terminal.window_size().encode())?,
        request::TIOCSWINSZ => {
            let mut bytes = [0u8; WINDOW_SIZE_SIZE];
            user.read_into(argument, &mut bytes)?;
            terminal.set_window_size(WindowSize::decode(&bytes));
        }
        // The caller's group is taken as the foreground one.
        request::TIOCGPGRP => {
            if !is_controlling(context, terminal) {
                return Err(Errno::ENOTTY.into());
            }
            user.write_u32(argument, terminal.foreground().group(context.process.group_id()) as u32)?
        }
        request::TIOCGSID => {
            if !is_controlling(context, terminal) || terminal.session() == 0 {
                return Err(Errno::ENOTTY.into());
            }
            user.write_u32(argument, terminal.session() as u32)?
        }
        request::TIOCSCTTY => return acquire(context, terminal, argument == 1),
        request::TIOCNOTTY => return give_up(context, terminal),
        request::TIOCSPGRP => {
            if !is_controlling(context, terminal) || terminal.session() != context.process.session_id() {
                return Err(Errno::ENOTTY.into());
            }
            let mut group = [0u8; 4];
            user.read_into(argument, &mut group)?;
            let group = u64::from(u32::from_le_bytes(group));
            let session = context.process.session_id();
            let exists = crate::process::all()
                .iter()
                .any(|process| process.group_id() == group && process.session_id() == session);
            if !exists {
                return Err(Errno::EPERM.into());
            }
            terminal.foreground().set_group(group);
        }
        request::TIOCOUTQ => user.write_u32(argument, 0)?,
        request::TCFLSH => match argument {
            TCIFLUSH => terminal.flush_input(),
            TCOFLUSH => terminal.flush_output(),
            TCIOFLUSH => {
                terminal.flush_input();
                terminal.flush_output();
            }
            _ => return Err(Errno::EINVAL.into()),
        },
        request::TCXONC => match argument {
            TCOOFF => terminal.suspend_output(),
            TCOON => terminal.resume_output(),
            TCIOFF => terminal.send_flow_character(character::VSTOP),
            TCION => terminal.send_flow_character(character::VSTART),
            _ => return Err(Errno::EINVAL.into()),
        },
        request::TCSBRK | request::TCSBRKP => {}
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}
