//! Requests on a pseudo-terminal's master (`ioctl` on a `/dev/ptmx` file).

use alloc::sync::Arc;

use super::request;
use super::{TCIFLUSH, TCIOFLUSH, TCOFLUSH};
use crate::errno::Errno;
use crate::syscall::{Context, Result};
use crate::terminal::pseudo::PseudoTerminal;
use crate::terminal::termios::{TERMIOS_SIZE, Termios, WINDOW_SIZE_SIZE, WindowSize};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, OpenFile};

/// Requests only a master answers (Linux `include/uapi/asm-generic/ioctls.h`).
mod master_request {
    pub const TIOCPKT: u64 = 0x5420;
    pub const TIOCGPTN: u64 = 0x8004_5430;
    pub const TIOCSPTLCK: u64 = 0x4004_5431;
    pub const TIOCSIG: u64 = 0x4004_5436;
    pub const TIOCGPKT: u64 = 0x8004_5438;
    pub const TIOCGPTLCK: u64 = 0x8004_5439;
    pub const TIOCGPTPEER: u64 = 0x5441;
}

/// The highest signal number.
const SIGNAL_COUNT: u64 = 64;

/// The master `file` is, if it is one.
pub(in crate::syscall) fn master_of(file: &OpenFile) -> Option<&PseudoTerminal> {
    file.special()?.as_any().downcast_ref::<PseudoTerminal>()
}

/// Answers a request on `master`.
pub(in crate::syscall) fn ioctl(
    context: Context<'_>,
    master: &PseudoTerminal,
    command: u64,
    argument: u64,
) -> Result {
    let user = User::new(context.machine);
    let terminal = master.terminal();
    match command {
        master_request::TIOCGPTN => user.write_u32(argument, master.index())?,
        master_request::TIOCSPTLCK => {
            let mut value = [0u8; 4];
            user.read_into(argument, &mut value)?;
            master.set_locked(u32::from_le_bytes(value) != 0);
        }
        master_request::TIOCGPTLCK => user.write_u32(argument, u32::from(master.is_locked()))?,
        master_request::TIOCPKT => {
            let mut value = [0u8; 4];
            user.read_into(argument, &mut value)?;
            terminal.set_packet_mode(u32::from_le_bytes(value) != 0);
        }
        master_request::TIOCGPKT => user.write_u32(argument, u32::from(terminal.is_packet_mode()))?,
        master_request::TIOCGPTPEER => return open_peer(context, master, argument),
        master_request::TIOCSIG => {
            if argument == 0 || argument > SIGNAL_COUNT {
                return Err(Errno::EINVAL.into());
            }
            terminal.foreground().signal(argument as u8);
        }
        request::TCGETS => user.write_bytes(argument, &master.termios().encode())?,
        request::TCGETS2 => user.write_bytes(argument, &master.termios().encode2())?,
        request::TCSETS
        | request::TCSETSW
        | request::TCSETSF
        | request::TCSETS2
        | request::TCSETSW2
        | request::TCSETSF2 => {
            let mut bytes = [0u8; TERMIOS_SIZE];
            user.read_into(argument, &mut bytes)?;
            master.set_termios(Termios::decode(&bytes));
        }
        // The window is the slave's; a change signals its foreground group.
        request::TIOCGWINSZ => user.write_bytes(argument, &terminal.window_size().encode())?,
        request::TIOCSWINSZ => {
            let mut bytes = [0u8; WINDOW_SIZE_SIZE];
            user.read_into(argument, &mut bytes)?;
            terminal.set_window_size(WindowSize::decode(&bytes));
        }
        // The slave's foreground group and session, for the master's holder.
        request::TIOCGPGRP => {
            let group = if terminal.session() == 0 { 0 } else { terminal.foreground().group(0) };
            user.write_u32(argument, group as u32)?
        }
        request::TIOCGSID => {
            if terminal.session() == 0 {
                return Err(Errno::ENOTTY.into());
            }
            user.write_u32(argument, terminal.session() as u32)?
        }
        // The master reads what the slave showed, and types the slave's
        // input.
        request::TCFLSH => match argument {
            TCIFLUSH => master.flush_screen(),
            TCOFLUSH => terminal.flush_input(),
            TCIOFLUSH => {
                master.flush_screen();
                terminal.flush_input();
            }
            _ => return Err(Errno::EINVAL.into()),
        },
        request::TIOCOUTQ => user.write_u32(argument, 0)?,
        request::TCXONC | request::TCSBRK | request::TCSBRKP => {}
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}

/// `TIOCGPTPEER`: opens the slave with `open_flags` as a new descriptor.
fn open_peer(context: Context<'_>, master: &PseudoTerminal, open_flags: u64) -> Result {
    let open_flags = open_flags as u32;
    let caller = crate::syscall::files::caller(context);
    let slave = master.open_slave(&caller, open_flags)?;
    let status = (open_flags & !flags::O_CLOEXEC) | flags::O_LARGEFILE;
    let file = OpenFile::new(FileObject::Special(slave as Arc<_>), status);
    crate::syscall::paths::install(context, file, open_flags & flags::O_CLOEXEC != 0)
}
