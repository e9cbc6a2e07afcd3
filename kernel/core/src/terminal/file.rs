//! An open file of a terminal: a standard stream that is one, `/dev/tty`,
//! or a pseudo-terminal's slave `/dev/pts/N`.

use alloc::string::String;
use alloc::sync::Arc;

use super::{Terminal, termios};
use crate::machine::ThreadControl;
use crate::streams::HostChannel;
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FileType, FsError, Metadata};

/// The major number of pseudo-terminal slaves (`UNIX98_PTY_SLAVE_MAJOR`).
pub const SLAVE_MAJOR: u64 = 136;

/// A descriptor of a terminal: the terminal, and the channel its writes go
/// to.
#[derive(Debug)]
pub struct TerminalFile {
    terminal: Arc<Terminal>,
    output: Option<Arc<dyn HostChannel>>,
}

impl TerminalFile {
    /// A descriptor of `terminal` writing to `output` (none: writes are
    /// discarded, as to a terminal nobody watches).
    pub fn new(terminal: Arc<Terminal>, output: Option<Arc<dyn HostChannel>>) -> Arc<TerminalFile> {
        terminal.opened();
        Arc::new(TerminalFile { terminal, output })
    }

    /// The terminal.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }
}

impl Drop for TerminalFile {
    fn drop(&mut self) {
        self.terminal.closed();
    }
}

/// A device number as `st_rdev` holds it (Linux's `new_encode_dev`).
pub const fn device_number(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// The inode of `/dev/pts/<index>` (devpts numbers its root 1 and `ptmx` 2).
pub fn slave_inode(index: u32) -> u64 {
    u64::from(index) + 3
}

/// What `stat` says of a terminal's `/dev/pts` node.
pub fn slave_metadata(terminal: &Terminal) -> Metadata {
    let mut metadata =
        Metadata::new(slave_inode(terminal.index()), FileType::CharacterDevice, terminal.permissions());
    metadata.represented_device = device_number(SLAVE_MAJOR, u64::from(terminal.index()));
    metadata.device = crate::fs::devpts::DEVICE_NUMBER;
    metadata.block_size_bytes = 1024;
    (metadata.owner_user, metadata.owner_group) = terminal.owner();
    metadata
}

impl SpecialFile for TerminalFile {
    fn name(&self) -> String {
        alloc::format!("/dev/pts/{}", self.terminal.index())
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.terminal.check_job_access(caller, crate::signal::job::SIGTTIN)?;
        self.terminal.read(caller, buffer, is_nonblocking)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if self.terminal.is_hung_up() {
            return Err(FsError::Io);
        }
        if self.terminal.termios().local_flags & termios::local::TOSTOP != 0 {
            self.terminal.check_job_access(caller, crate::signal::job::SIGTTOU)?;
        }
        match &self.output {
            Some(output) => match self.terminal.write(caller, output, bytes, is_nonblocking) {
                // The master went away while the write waited.
                Err(FsError::BrokenPipe) if self.terminal.is_pseudo() => Err(FsError::Io),
                result => result,
            },
            None => Ok(bytes.len()),
        }
    }

    fn poll(&self) -> u16 {
        if self.terminal.is_hung_up() {
            return events::POLLIN | events::POLLOUT | events::POLLERR | events::POLLHUP;
        }
        let mut ready = self.terminal.poll_input();
        if !self.terminal.is_output_stopped() && self.output.as_ref().is_none_or(|output| output.can_send()) {
            ready |= events::POLLOUT;
        }
        ready
    }

    fn waiters(&self) -> &WaiterList {
        &self.terminal.waiters
    }

    fn add_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.terminal.waiters.add(thread);
        if let Some(input) = &self.terminal.input {
            input.waiters().add(thread);
        }
        if let Some(output) = &self.output {
            output.waiters().add(thread);
        }
    }

    fn remove_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.terminal.waiters.remove(thread);
        if let Some(input) = &self.terminal.input {
            input.waiters().remove(thread);
        }
        if let Some(output) = &self.output {
            output.waiters().remove(thread);
        }
    }

    fn generation(&self) -> u64 {
        let input = self.terminal.input.as_ref().map_or(0, |input| input.waiters().generation());
        let output = self.output.as_ref().map_or(0, |output| output.waiters().generation());
        self.terminal.waiters.generation().wrapping_add(input).wrapping_add(output)
    }

    fn metadata(&self) -> Metadata {
        slave_metadata(&self.terminal)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
