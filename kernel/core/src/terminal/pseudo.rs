//! Pseudo-terminals: each open of `/dev/ptmx` makes a master and a slave.
//!
//! The slave is a [`Terminal`] like the host's, with Linux's line
//! discipline, named `/dev/pts/N` ([`crate::fs::devpts`]). Its
//! [`PseudoTerminal`] master is an open file: what is written to it is
//! typed on the slave ([`Terminal::type_input`]: edited, echoed, turned
//! into signals), what it reads is what the slave shows (output and
//! echo, through a bounded [`ByteQueue`]). [`PseudoTerminals`] numbers
//! the pairs; the host's terminal, when the standard streams are one,
//! holds number 0 as a container's console does.
//!
//! Closing the master hangs the slave up (its session's leader gets
//! `SIGHUP` and `SIGCONT`, reads find the end, writes fail with `EIO`);
//! once every file of the slave is closed, the master reads `EIO` after
//! what was left.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use super::Terminal;
use super::file::{TerminalFile, device_number};
use super::queue::ByteQueue;
use super::termios::{Termios, control};
use crate::machine::ThreadControl;
use crate::process::{ControllingTerminal, Process};
use crate::streams::HostChannel;
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FileType, FsError, Metadata};

/// Pairs there may be at once (Linux's `/proc/sys/kernel/pty/max`).
pub const MAX_COUNT: u32 = 4096;
/// Bytes the slave may show before its writers wait for the master.
pub const SCREEN_CAPACITY: usize = 8192;
/// `/dev/ptmx`'s device number (5, 2).
pub const MULTIPLEXER_DEVICE: u64 = device_number(5, 2);
/// The group that owns slaves when the system has one: `tty`.
const TERMINAL_GROUP_NAME: &str = "tty";
/// The most of `/etc/group` read to find that group.
const GROUP_FILE_LIMIT: usize = 64 * 1024;
/// `SIGHUP`.
const SIGHUP: u8 = 1;

struct MasterState {
    /// Opens of the slave fail until the master unlocks it (`TIOCSPTLCK`).
    is_locked: bool,
    /// The master's own settings, which change nothing but are kept.
    termios: Termios,
}

/// A pseudo-terminal's master: the open file `/dev/ptmx` gave.
pub struct PseudoTerminal {
    terminal: Arc<Terminal>,
    screen: Arc<ByteQueue>,
    state: Mutex<MasterState>,
}

impl core::fmt::Debug for PseudoTerminal {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("PseudoTerminal").field("index", &self.terminal.index()).finish()
    }
}

/// The settings a master starts with: raw, 8 bits (Linux's for ptmx).
fn master_termios() -> Termios {
    Termios {
        input_flags: 0,
        output_flags: 0,
        control_flags: control::B38400 | control::CS8 | control::CREAD,
        local_flags: 0,
        ..Termios::default()
    }
}

impl PseudoTerminal {
    /// The slave.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }

    /// The slave's number.
    pub fn index(&self) -> u32 {
        self.terminal.index()
    }

    /// Whether opens of the slave fail (`TIOCGPTLCK`).
    pub fn is_locked(&self) -> bool {
        self.state.lock().is_locked
    }

    /// Locks or unlocks the slave (`TIOCSPTLCK`).
    pub fn set_locked(&self, is_locked: bool) {
        self.state.lock().is_locked = is_locked;
    }

    /// The master's settings.
    pub fn termios(&self) -> Termios {
        self.state.lock().termios
    }

    /// Changes the master's settings.
    pub fn set_termios(&self, termios: Termios) {
        self.state.lock().termios = termios;
    }

    /// Bytes a read would return now (`FIONREAD`).
    pub fn readable_bytes(&self) -> usize {
        self.screen.len()
    }

    /// Discards what the slave showed and the master has not read.
    pub fn flush_screen(&self) {
        self.screen.clear();
    }

    /// Opens the slave for `caller` (`/dev/pts/N`, `TIOCGPTPEER`): `EIO`
    /// while locked; a session leader without a controlling terminal
    /// acquires it unless `O_NOCTTY`.
    pub fn open_slave(&self, caller: &Caller<'_>, open_flags: u32) -> Result<Arc<TerminalFile>, FsError> {
        if self.is_locked() || self.terminal.is_hung_up() {
            return Err(FsError::Io);
        }
        let output: Arc<dyn HostChannel> = self.screen.clone();
        let file = TerminalFile::new(self.terminal.clone(), Some(output));
        if let Some(process) = caller.process {
            acquire_on_open(&self.terminal, process, open_flags);
        }
        Ok(file)
    }

    /// The master's readiness.
    fn readiness(&self) -> u16 {
        let mut ready = 0;
        if !self.screen.is_empty() {
            ready |= events::POLLIN;
        }
        if self.terminal.has_packet_status() {
            ready |= events::POLLIN | events::POLLPRI;
        }
        if self.terminal.is_closed() {
            ready |= events::POLLHUP;
        }
        if self.terminal.input_room() > 0 {
            ready |= events::POLLOUT;
        }
        ready
    }
}

impl Drop for PseudoTerminal {
    /// The master closed: the slave hangs up.
    fn drop(&mut self) {
        self.screen.close();
        self.terminal.hang_up();
        let session = self.terminal.session();
        self.terminal.detach_session();
        if session == 0 {
            return;
        }
        if let Some(leader) = crate::process::find(session).filter(|leader| !leader.has_ended()) {
            crate::syscall::signal_process(&leader, SIGHUP);
            crate::syscall::signal_process(&leader, crate::signal::SIGCONT);
        }
    }
}

impl SpecialFile for PseudoTerminal {
    fn name(&self) -> String {
        String::from("/dev/ptmx")
    }

    /// What the slave showed; in packet mode a status byte first (0 before
    /// data, or status bits alone). `EIO` once every file of the slave
    /// closed and nothing is left.
    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let mut me: Option<Arc<dyn ThreadControl>> = None;
        let result = loop {
            if self.terminal.is_packet_mode() {
                let status = self.terminal.take_packet_status();
                if status != 0 {
                    buffer[0] = status;
                    break Ok(1);
                }
                let length = self.screen.take(&mut buffer[1..]);
                if length > 0 || (buffer.len() == 1 && !self.screen.is_empty()) {
                    buffer[0] = 0;
                    break Ok(length + 1);
                }
            } else {
                let length = self.screen.take(buffer);
                if length > 0 {
                    break Ok(length);
                }
            }
            if self.terminal.is_closed() {
                break Err(FsError::Io);
            }
            if is_nonblocking {
                break Err(FsError::WouldBlock);
            }
            let thread = me.get_or_insert_with(|| caller.machine.current_thread());
            self.screen.waiters().add(thread);
            if self.readiness() & (events::POLLIN | events::POLLHUP) != 0 {
                continue;
            }
            if let Err(error) = self.screen.waiters().block(caller, thread) {
                break Err(error);
            }
        };
        if let Some(thread) = &me {
            self.screen.waiters().remove(thread);
        }
        result
    }

    /// Types `bytes` on the slave, waiting for room in its input unless
    /// `is_nonblocking`.
    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        let mut written = 0;
        let mut me: Option<Arc<dyn ThreadControl>> = None;
        let partial = |written: usize, error: FsError| if written > 0 { Ok(written) } else { Err(error) };
        let result = loop {
            written += self.terminal.type_input(&bytes[written..]);
            if written == bytes.len() {
                break Ok(written);
            }
            if is_nonblocking {
                break partial(written, FsError::WouldBlock);
            }
            let thread = me.get_or_insert_with(|| caller.machine.current_thread());
            self.terminal.room_waiters().add(thread);
            if self.terminal.input_room() > 0 {
                continue;
            }
            if let Err(error) = self.terminal.room_waiters().block(caller, thread) {
                break partial(written, error);
            }
        };
        if let Some(thread) = &me {
            self.terminal.room_waiters().remove(thread);
        }
        result
    }

    fn poll(&self) -> u16 {
        self.readiness()
    }

    fn waiters(&self) -> &WaiterList {
        self.screen.waiters()
    }

    fn add_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.screen.waiters().add(thread);
        self.terminal.room_waiters().add(thread);
    }

    fn remove_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.screen.waiters().remove(thread);
        self.terminal.room_waiters().remove(thread);
    }

    fn generation(&self) -> u64 {
        self.screen.waiters().generation().wrapping_add(self.terminal.room_waiters().generation())
    }

    fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::new(MULTIPLEXER_INODE, FileType::CharacterDevice, 0o666);
        metadata.represented_device = MULTIPLEXER_DEVICE;
        metadata.block_size_bytes = 1024;
        metadata
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// The inode a master's `fstat` reports.
const MULTIPLEXER_INODE: u64 = 2;

/// A session leader without a controlling terminal that opens `terminal`
/// without `O_NOCTTY` acquires it, unless a live session has it.
pub fn acquire_on_open(terminal: &Arc<Terminal>, process: &Process, open_flags: u32) {
    if open_flags & crate::vfs::file::flags::O_NOCTTY != 0 || process.session_id() != process.pid {
        return;
    }
    if is_session_alive(terminal.session()) {
        return;
    }
    let mut controlling = process.controlling_terminal.lock();
    if controlling.is_some() {
        return;
    }
    terminal.set_session(process.pid);
    terminal.foreground().set_group(process.group_id());
    *controlling = Some(ControllingTerminal::Terminal(terminal.clone()));
}

/// A session leader ended: the pseudo-terminal it controlled sends
/// `SIGHUP` to its foreground group and controls no session any more (its
/// processes lose it as controlling terminal), as Linux's
/// `disassociate_ctty` on exit does for a pty. The files stay open and
/// usable; the host's terminal is left alone (the machine ends with its
/// program).
pub fn session_leader_ended(process: &Process) {
    const SIGHUP: u8 = 1;
    if process.session_id() != process.pid {
        return;
    }
    let terminal = match process.controlling_terminal.lock().as_ref() {
        Some(ControllingTerminal::Terminal(terminal)) if terminal.is_pseudo() => terminal.clone(),
        _ => return,
    };
    if terminal.session() != process.pid {
        return;
    }
    let foreground = terminal.foreground().group(process.group_id());
    for member in crate::process::all() {
        if member.group_id() == foreground && member.pid != process.pid && !member.has_ended() {
            crate::syscall::signal_process(&member, SIGHUP);
        }
    }
    terminal.detach_session();
}

/// Whether a process of `session` (not 0) still runs.
pub fn is_session_alive(session: u64) -> bool {
    session != 0
        && crate::process::all().iter().any(|process| process.session_id() == session && !process.has_ended())
}

/// A name in devpts.
enum Entry {
    /// The host's terminal.
    Host(Weak<Terminal>),
    /// A pair: the slave lives while files of it are open, the master
    /// while its file is.
    Pair { terminal: Weak<Terminal>, master: Weak<PseudoTerminal> },
}

impl Entry {
    /// Whether the number is taken.
    fn is_used(&self) -> bool {
        match self {
            Entry::Host(terminal) | Entry::Pair { terminal, .. } => terminal.strong_count() > 0,
        }
    }
}

/// What `/dev/pts/N` opens.
#[derive(Debug)]
pub enum Slave {
    /// The host's terminal.
    Host(Arc<Terminal>),
    /// A pair whose master is open.
    Pair(Arc<PseudoTerminal>),
}

impl Slave {
    /// The terminal.
    pub fn terminal(&self) -> &Arc<Terminal> {
        match self {
            Slave::Host(terminal) => terminal,
            Slave::Pair(master) => master.terminal(),
        }
    }
}

/// The numbered terminals devpts shows.
pub struct PseudoTerminals {
    entries: Mutex<BTreeMap<u32, Entry>>,
}

impl core::fmt::Debug for PseudoTerminals {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("PseudoTerminals").field("names", &self.names()).finish()
    }
}

static TABLE: PseudoTerminals = PseudoTerminals::new();

/// The machine's pseudo-terminals.
pub fn table() -> &'static PseudoTerminals {
    &TABLE
}

impl Default for PseudoTerminals {
    fn default() -> Self {
        Self::new()
    }
}

impl PseudoTerminals {
    /// None yet.
    pub const fn new() -> PseudoTerminals {
        PseudoTerminals { entries: Mutex::new(BTreeMap::new()) }
    }

    /// Shows the host's terminal under its number.
    pub fn register_host(&self, terminal: &Arc<Terminal>) {
        self.entries.lock().insert(terminal.index(), Entry::Host(Arc::downgrade(terminal)));
    }

    /// A new pair with the lowest free number, its slave owned by `owner`
    /// (user, group) and locked; `NoSpace` when [`MAX_COUNT`] are in use.
    pub fn open_master(&self, owner: (u32, u32)) -> Result<Arc<PseudoTerminal>, FsError> {
        let mut entries = self.entries.lock();
        entries.retain(|_, entry| entry.is_used());
        let index = (0..MAX_COUNT).find(|index| !entries.contains_key(index)).ok_or(FsError::NoSpace)?;
        let screen = Arc::new(ByteQueue::new(SCREEN_CAPACITY));
        let terminal = Terminal::pseudo(index, screen.clone(), owner);
        let master = Arc::new(PseudoTerminal {
            terminal: terminal.clone(),
            screen,
            state: Mutex::new(MasterState { is_locked: true, termios: master_termios() }),
        });
        let entry = Entry::Pair { terminal: Arc::downgrade(&terminal), master: Arc::downgrade(&master) };
        entries.insert(index, entry);
        Ok(master)
    }

    /// The terminal named `index`, while it has a name (a pair's while
    /// its master is open).
    pub fn slave(&self, index: u32) -> Option<Slave> {
        match self.entries.lock().get(&index)? {
            Entry::Host(terminal) => terminal.upgrade().map(Slave::Host),
            Entry::Pair { master, .. } => master.upgrade().map(Slave::Pair),
        }
    }

    /// The numbers with names, in order.
    pub fn names(&self) -> Vec<u32> {
        let entries = self.entries.lock();
        entries
            .iter()
            .filter(|(_, entry)| match entry {
                Entry::Host(terminal) => terminal.strong_count() > 0,
                Entry::Pair { master, .. } => master.strong_count() > 0,
            })
            .map(|(&index, _)| index)
            .collect()
    }
}

/// Opens a new master for `caller`: the slave belongs to the caller's
/// filesystem user, and to the group `tty` if `/etc/group` has it, else
/// to the caller's filesystem group; its mode is 0620.
pub fn open_multiplexer(caller: &Caller<'_>) -> Result<Arc<PseudoTerminal>, FsError> {
    let (user, group) = caller
        .credentials()
        .map_or((0, 0), |credentials| (credentials.filesystem_user, credentials.filesystem_group));
    let group = terminal_group(caller).unwrap_or(group);
    table().open_master((user, group))
}

/// The `tty` group's number in the caller's `/etc/group`.
fn terminal_group(caller: &Caller<'_>) -> Option<u32> {
    let process = caller.process?;
    let vfs = &process.vfs();
    let file = vfs.open(caller, &vfs.root(), "/etc/group", crate::vfs::file::flags::O_RDONLY, 0).ok()?;
    let mut contents = Vec::new();
    contents.try_reserve_exact(GROUP_FILE_LIMIT).ok()?;
    contents.resize(GROUP_FILE_LIMIT, 0);
    let mut filled = 0;
    while filled < contents.len() {
        match file.read(caller, &mut contents[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(length) => filled += length,
        }
    }
    group_number(&contents[..filled], TERMINAL_GROUP_NAME)
}

/// The number of the group `name` in `/etc/group` text.
pub fn group_number(contents: &[u8], name: &str) -> Option<u32> {
    contents.split(|&byte| byte == b'\n').find_map(|line| {
        let mut fields = line.split(|&byte| byte == b':');
        if fields.next()? != name.as_bytes() {
            return None;
        }
        let number = fields.nth(1)?;
        core::str::from_utf8(number).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests;
