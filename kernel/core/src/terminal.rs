//! Terminals: the application's standard streams when the host's are
//! terminals, and pseudo-terminals.
//!
//! A [`Terminal`] holds the [`LineDiscipline`] (settings, typed input,
//! editing), the window size, where its input comes from and where its
//! echo goes. The application reaches it through [`TerminalFile`]s.
//!
//! The host's terminal takes typed bytes from a host channel as they
//! arrive ([`Terminal::pump`], which the stream service calls, and every
//! read), so Ctrl-C interrupts a program that is not reading; each
//! standard stream writes to its own channel. In [`TerminalMode::Host`]
//! the host's terminal has done the editing, echo and signals already:
//! bytes pass through unchanged both ways, and the settings are only
//! recorded.
//!
//! A pseudo-terminal's slave is a `Terminal` too ([`pseudo`]): its master
//! types with [`Terminal::type_input`] and reads what the slave shows
//! from a [`ByteQueue`].

pub mod file;
mod flow;
mod line_discipline;
pub mod pseudo;
pub mod queue;
pub mod termios;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use rosv_cmdline::TerminalMode;
use spin::Mutex;

pub use file::TerminalFile;
use flow::has_standard_flow_control;
pub use line_discipline::{Effects, INPUT_CAPACITY, LineDiscipline, Read, Waiting};
use queue::ByteQueue;
use termios::{Termios, WindowSize};

use crate::machine::{ThreadControl, Wakeup};
use crate::streams::{Foreground, HostChannel, Received, send_all};
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FsError};

/// `SIGWINCH`.
const SIGWINCH: u8 = 28;
/// The permission bits of a new `/dev/pts` node (`crw--w----`).
pub const SLAVE_PERMISSIONS: u32 = 0o620;
/// Input bytes processed per step of a write (their output may double).
const WRITE_CHUNK: usize = 1024;

/// The status bits a pseudo-terminal's master reads in packet mode
/// (`TIOCPKT_*`).
pub mod packet {
    /// The slave's input was flushed.
    pub const FLUSHREAD: u8 = 1;
    /// The slave's output was flushed.
    pub const FLUSHWRITE: u8 = 2;
    /// Output was stopped (`VSTOP`).
    pub const STOP: u8 = 4;
    /// Output was started again (`VSTART`).
    pub const START: u8 = 8;
    /// Flow control characters are no longer Ctrl-S and Ctrl-Q with `IXON`.
    pub const NOSTOP: u8 = 16;
    /// Flow control characters became Ctrl-S and Ctrl-Q with `IXON`.
    pub const DOSTOP: u8 = 32;
}

struct TerminalState {
    discipline: LineDiscipline,
    window: WindowSize,
    /// The host closed the input and every byte of it has been taken.
    is_input_ended: bool,
    /// Packet mode of the master (a pseudo-terminal's slave only).
    is_packet_mode: bool,
    /// The [`packet`] bits the master has not read yet.
    packet_status: u8,
    /// The `/dev/pts` node's owner: user and group.
    owner: (u32, u32),
    /// The `/dev/pts` node's permission bits (`chmod`).
    permissions: u32,
    /// Echo made while output is stopped, shown once it starts.
    held_echo: Vec<u8>,
}

/// A terminal and its line discipline.
pub struct Terminal {
    state: Mutex<TerminalState>,
    input: Option<Arc<dyn HostChannel>>,
    echo: Option<Arc<dyn HostChannel>>,
    /// What a pseudo-terminal's slave shows (the same as `echo`).
    screen: Option<Arc<ByteQueue>>,
    mode: TerminalMode,
    foreground: Arc<Foreground>,
    /// The session the terminal controls (0: none).
    session: AtomicU64,
    /// The number of `/dev/pts/N`.
    index: u32,
    /// Open files of the terminal, and whether there ever was one.
    openers: AtomicUsize,
    was_opened: AtomicBool,
    /// The other side went away: reads find the end, writes fail.
    is_hung_up: AtomicBool,
    /// Readers and pollers of the input.
    waiters: WaiterList,
    /// Writers waiting for room in the input (a pseudo-terminal's master).
    room_waiters: WaiterList,
}

impl core::fmt::Debug for Terminal {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Terminal").field("mode", &self.mode).finish()
    }
}

impl Terminal {
    /// Who gets the terminal's signals.
    pub fn foreground(&self) -> &Arc<Foreground> {
        &self.foreground
    }

    /// A terminal whose typed bytes come from `input` (none: reads find
    /// the end at once), whose echo goes to `echo`, of `window` size,
    /// whose signals go to `foreground`.
    pub fn new(
        input: Option<Arc<dyn HostChannel>>,
        echo: Option<Arc<dyn HostChannel>>,
        mode: TerminalMode,
        window: WindowSize,
        foreground: Arc<Foreground>,
    ) -> Arc<Terminal> {
        let discipline = match mode {
            TerminalMode::Guest => LineDiscipline::new(),
            TerminalMode::Host => LineDiscipline::transparent(),
        };
        let is_input_ended = input.is_none();
        Arc::new(Terminal::build(discipline, window, input, echo, None, mode, foreground, is_input_ended, 0))
    }

    /// A pseudo-terminal's slave, `/dev/pts/<index>`, owned by `owner`
    /// (user, group): its input is what the master types, what it shows
    /// goes to `screen`; its signals go to the foreground group it gets
    /// as a controlling terminal.
    pub fn pseudo(index: u32, screen: Arc<ByteQueue>, owner: (u32, u32)) -> Arc<Terminal> {
        let echo: Arc<dyn HostChannel> = screen.clone();
        let mut terminal = Terminal::build(
            LineDiscipline::new(),
            WindowSize::default(),
            None,
            Some(echo),
            Some(screen),
            TerminalMode::Guest,
            Foreground::group_only(),
            false,
            index,
        );
        terminal.state.get_mut().owner = owner;
        Arc::new(terminal)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        discipline: LineDiscipline,
        window: WindowSize,
        input: Option<Arc<dyn HostChannel>>,
        echo: Option<Arc<dyn HostChannel>>,
        screen: Option<Arc<ByteQueue>>,
        mode: TerminalMode,
        foreground: Arc<Foreground>,
        is_input_ended: bool,
        index: u32,
    ) -> Terminal {
        Terminal {
            state: Mutex::new(TerminalState {
                discipline,
                window,
                is_input_ended,
                is_packet_mode: false,
                packet_status: 0,
                owner: (0, 0),
                permissions: SLAVE_PERMISSIONS,
                held_echo: Vec::new(),
            }),
            input,
            echo,
            screen,
            mode,
            foreground,
            session: AtomicU64::new(0),
            index,
            openers: AtomicUsize::new(0),
            was_opened: AtomicBool::new(false),
            is_hung_up: AtomicBool::new(false),
            waiters: WaiterList::new(),
            room_waiters: WaiterList::new(),
        }
    }

    /// The session whose controlling terminal this is (0: none).
    pub fn session(&self) -> u64 {
        self.session.load(Ordering::Acquire)
    }

    /// Makes the terminal the controlling terminal of `session` (0: of
    /// none).
    pub fn set_session(&self, session: u64) {
        self.session.store(session, Ordering::Release);
    }

    /// Every process of its session loses it as controlling terminal, and
    /// it controls no session and has no foreground group any more.
    pub fn detach_session(&self) {
        let session = self.session();
        if session != 0 {
            for member in crate::process::all() {
                if member.session_id() != session {
                    continue;
                }
                let mut controlling = member.controlling_terminal.lock();
                if controlling.as_ref().is_some_and(|own| own.is(self)) {
                    *controlling = None;
                }
            }
        }
        self.set_session(0);
        if self.is_pseudo() {
            self.foreground.set_group(0);
        }
    }

    /// The number `N` of its name, `/dev/pts/N`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether this is a pseudo-terminal's slave.
    pub fn is_pseudo(&self) -> bool {
        self.screen.is_some()
    }

    /// What a pseudo-terminal's slave shows, for its master to read.
    pub fn screen(&self) -> Option<&Arc<ByteQueue>> {
        self.screen.as_ref()
    }

    /// The owning user and group of its `/dev/pts` node.
    pub fn owner(&self) -> (u32, u32) {
        self.state.lock().owner
    }

    /// Gives its `/dev/pts` node to `user` and `group` (`None`: as it is).
    pub fn set_owner(&self, user: Option<u32>, group: Option<u32>) {
        let mut state = self.state.lock();
        state.owner = (user.unwrap_or(state.owner.0), group.unwrap_or(state.owner.1));
    }

    /// The permission bits of its `/dev/pts` node.
    pub fn permissions(&self) -> u32 {
        self.state.lock().permissions
    }

    /// Sets the permission bits of its `/dev/pts` node (`chmod`).
    pub fn set_permissions(&self, permissions: u32) {
        self.state.lock().permissions = permissions & 0o7777;
    }

    /// Counts an open file of the terminal.
    fn opened(&self) {
        self.openers.fetch_add(1, Ordering::AcqRel);
        self.was_opened.store(true, Ordering::Release);
    }

    /// Counts an open file of the terminal gone; the last one tells the
    /// reader of the screen (a master then reads the end).
    fn closed(&self) {
        if self.openers.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(screen) = &self.screen
        {
            screen.waiters().notify();
        }
    }

    /// Whether files of it were opened and all are closed again.
    pub fn is_closed(&self) -> bool {
        self.was_opened.load(Ordering::Acquire) && self.openers.load(Ordering::Acquire) == 0
    }

    /// Whether the other side went away ([`Terminal::hang_up`]).
    pub fn is_hung_up(&self) -> bool {
        self.is_hung_up.load(Ordering::Acquire)
    }

    /// The other side went away (a pseudo-terminal's master closed):
    /// unread input is dropped, reads find the end and writes fail.
    pub fn hang_up(&self) {
        self.is_hung_up.store(true, Ordering::Release);
        {
            let mut state = self.state.lock();
            state.discipline.flush_input();
            state.is_input_ended = true;
        }
        self.waiters.notify();
        self.room_waiters.notify();
    }

    /// The channel output goes to (the one echo goes to): what a new
    /// descriptor of the terminal (`/dev/tty`) writes to.
    pub fn output(&self) -> Option<&Arc<dyn HostChannel>> {
        self.echo.as_ref()
    }

    /// The channel typed bytes come from.
    pub fn input(&self) -> Option<&Arc<dyn HostChannel>> {
        self.input.as_ref()
    }

    /// Takes the bytes the host sent, as far as the input has room: edits,
    /// echoes and raises signals. Returns whether anything happened.
    pub fn pump(&self) -> bool {
        let Some(input) = &self.input else { return false };
        let mut progress = false;
        let mut signals = Vec::new();
        let mut echo = Vec::new();
        let mut has_flow_started = false;
        {
            let mut state = self.state.lock();
            let mut chunk = [0u8; 256];
            while !state.is_input_ended {
                let room = state.discipline.room().min(chunk.len());
                if room == 0 {
                    break;
                }
                match input.receive(&mut chunk[..room]) {
                    Received::Bytes(length) => {
                        progress = true;
                        let effects = state.discipline.receive(&chunk[..length]);
                        self.take_effects(&mut state, &effects, &mut echo);
                        signals.extend_from_slice(&effects.signals);
                        has_flow_started |= effects.flow == Some(false);
                    }
                    Received::Nothing => break,
                    Received::Closed => {
                        state.is_input_ended = true;
                        progress = true;
                    }
                }
            }
        }
        self.apply(&echo, &signals);
        if has_flow_started {
            self.flow_started(&[]);
        }
        if progress {
            self.waiters.notify();
        }
        progress
    }

    /// Echoes `echo` and sends `signals`, which typed input produced.
    fn apply(&self, echo: &[u8], signals: &[u8]) {
        if let Some(channel) = self.echo.as_ref().filter(|_| !echo.is_empty()) {
            // Echo never waits: what does not fit now is dropped, as a
            // terminal whose output is stopped would.
            let mut rest = echo;
            while let Ok(length @ 1..) = channel.send(rest) {
                rest = &rest[length..];
            }
        }
        for &signal in signals {
            self.foreground.signal(signal);
        }
    }

    fn add_packet_status(state: &mut TerminalState, bit: u8) {
        if !state.is_packet_mode {
            return;
        }
        // Stopping cancels a start not yet read, and the reverse.
        let opposite = match bit {
            packet::STOP => packet::START,
            packet::START => packet::STOP,
            packet::NOSTOP => packet::DOSTOP,
            packet::DOSTOP => packet::NOSTOP,
            _ => 0,
        };
        state.packet_status = (state.packet_status & !opposite) | bit;
    }

    fn notify_screen(&self) {
        if let Some(screen) = &self.screen {
            screen.waiters().notify();
        }
    }

    /// Turns the master's packet mode on or off (`TIOCPKT`); either way
    /// no status waits.
    pub fn set_packet_mode(&self, is_packet_mode: bool) {
        let mut state = self.state.lock();
        state.is_packet_mode = is_packet_mode;
        state.packet_status = 0;
    }

    /// Whether the master is in packet mode.
    pub fn is_packet_mode(&self) -> bool {
        self.state.lock().is_packet_mode
    }

    /// Takes the [`packet`] status bits waiting for the master.
    pub fn take_packet_status(&self) -> u8 {
        core::mem::take(&mut self.state.lock().packet_status)
    }

    /// Whether [`packet`] status bits wait for the master.
    pub fn has_packet_status(&self) -> bool {
        let state = self.state.lock();
        state.is_packet_mode && state.packet_status != 0
    }

    /// Bytes typed on a pseudo-terminal's master: taken as far as the
    /// input has room (edited, echoed, signals raised). Returns how many.
    pub fn type_input(&self, bytes: &[u8]) -> usize {
        let (taken, effects) = {
            let mut state = self.state.lock();
            if state.is_input_ended {
                // Nobody will read: take everything, as Linux's hung-up
                // terminal does.
                return bytes.len();
            }
            // A step at a time, which bounds the echo it makes.
            let taken = state.discipline.room().min(bytes.len()).min(INPUT_CAPACITY);
            if taken == 0 {
                return 0;
            }
            let effects = state.discipline.receive(&bytes[..taken]);
            let mut echo = Vec::new();
            self.take_effects(&mut state, &effects, &mut echo);
            (taken, Effects { echo, ..effects })
        };
        self.apply(&effects.echo, &effects.signals);
        if effects.flow == Some(false) {
            self.flow_started(&[]);
        } else if effects.is_input_flushed || effects.flow.is_some() {
            self.notify_screen();
        }
        self.waiters.notify();
        taken
    }

    /// How many typed bytes the input takes now.
    pub fn input_room(&self) -> usize {
        let state = self.state.lock();
        if state.is_input_ended { usize::MAX } else { state.discipline.room() }
    }

    /// The writers waiting for room in the input.
    pub fn room_waiters(&self) -> &WaiterList {
        &self.room_waiters
    }

    /// Whether `caller` may use the terminal as its foreground job would
    /// (read, or with `signal` `SIGTTOU` change it or write with
    /// `TOSTOP`). A process of a background group of the session the
    /// terminal controls gets `signal` sent to its group, and the call
    /// restarts once it is continued in the foreground (`Interrupted`);
    /// where the signal would not stop it (ignored or blocked) a read
    /// fails with `EIO` and a change goes ahead; an orphaned group, which
    /// nobody would continue, gets `EIO`.
    pub fn check_job_access(&self, caller: &Caller<'_>, signal: u8) -> Result<(), FsError> {
        let (Some(process), Some(thread)) = (caller.process, caller.thread) else {
            return Ok(());
        };
        let is_controlling = process.controlling_terminal.lock().as_ref().is_some_and(|own| own.is(self));
        let group = process.group_id();
        if !is_controlling || self.foreground.group(group) == group {
            return Ok(());
        }
        let is_ignored = process.signal_action(signal).handler == crate::process::SIG_IGN;
        let is_blocked = thread.state.lock().signal_mask & crate::signal::bit(signal) != 0;
        if is_ignored || is_blocked {
            return if signal == crate::signal::job::SIGTTIN { Err(FsError::Io) } else { Ok(()) };
        }
        if crate::process::is_group_orphaned(group, 0) {
            return Err(FsError::Io);
        }
        for member in crate::process::all() {
            if member.group_id() == group && !member.has_ended() {
                crate::syscall::signal_process(&member, signal);
            }
        }
        Err(FsError::Interrupted)
    }

    /// Reads typed input: a finished line in canonical mode, else what is
    /// there (following `VMIN` and `VTIME`), waiting unless
    /// `is_nonblocking`; 0 at the end of the input.
    pub fn read(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        is_nonblocking: bool,
    ) -> Result<usize, FsError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let me = caller.machine.current_thread();
        let mut deadline_ns = None;
        let mut has_waited = false;
        loop {
            if self.is_hung_up() {
                self.forget(&me);
                // A read the hangup woke fails; later ones find the end
                // (Linux's `TTY_OTHER_CLOSED`, then `hung_up_tty_read`).
                return if has_waited { Err(FsError::Io) } else { Ok(0) };
            }
            self.pump();
            {
                let mut state = self.state.lock();
                let waiting = state.discipline.waiting();
                match state.discipline.read(buffer) {
                    Read::Bytes(length) => {
                        drop(state);
                        self.forget(&me);
                        // Room was made: take what waits in the channel.
                        self.pump();
                        self.room_waiters.notify();
                        return Ok(length);
                    }
                    Read::EndOfFile => {
                        drop(state);
                        self.forget(&me);
                        return Ok(0);
                    }
                    Read::Empty => {}
                }
                if state.is_input_ended || waiting == Waiting::Never {
                    drop(state);
                    self.forget(&me);
                    return Ok(0);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                if let Waiting::AtMost(timeout_ns) = waiting {
                    let now_ns = caller.machine.monotonic_ns();
                    let deadline = *deadline_ns.get_or_insert(now_ns + timeout_ns);
                    if now_ns >= deadline {
                        drop(state);
                        self.forget(&me);
                        return Ok(0);
                    }
                }
                self.waiters.add(&me);
                if let Some(input) = &self.input {
                    input.waiters().add(&me);
                }
            }
            if caller.is_interrupted() || caller.machine.block(deadline_ns) == Wakeup::Stop {
                self.forget(&me);
                return Err(FsError::Interrupted);
            }
            has_waited = true;
        }
    }

    fn forget(&self, thread: &Arc<dyn ThreadControl>) {
        self.waiters.remove(thread);
        if let Some(input) = &self.input {
            input.waiters().remove(thread);
        }
    }

    /// Writes `bytes` to `output` as the settings ask (`OPOST`), waiting
    /// for room unless `is_nonblocking`; returns the bytes of `bytes`
    /// written.
    pub fn write(
        &self,
        caller: &Caller<'_>,
        output: &Arc<dyn HostChannel>,
        bytes: &[u8],
        is_nonblocking: bool,
    ) -> Result<usize, FsError> {
        let mut written = 0;
        let mut processed = Vec::with_capacity(WRITE_CHUNK * 2);
        for chunk in bytes.chunks(WRITE_CHUNK) {
            // Stopped output (`VSTOP`, `TCOOFF`) holds the writer back.
            match self.wait_for_output(caller, is_nonblocking) {
                Ok(()) => {}
                Err(error) if written == 0 => return Err(error),
                Err(_) => return Ok(written),
            }
            processed.clear();
            let discipline = self.state.lock().discipline.clone_settings();
            discipline.process_output(chunk, &mut processed);
            match send_all(caller, output.as_ref(), &processed, is_nonblocking && written == 0) {
                Ok(sent) if sent == processed.len() => written += chunk.len(),
                // Interrupted part way: count the bytes whose whole output
                // went out.
                Ok(sent) => return Ok(written + discipline.input_bytes_within(chunk, sent)),
                Err(error) if written == 0 => return Err(error),
                Err(_) => return Ok(written),
            }
        }
        Ok(written)
    }

    /// Whether a read would return at once.
    pub fn is_readable(&self) -> bool {
        let state = self.state.lock();
        state.discipline.is_readable() || state.is_input_ended
    }

    /// Bytes a read could return now (`FIONREAD`).
    pub fn readable_bytes(&self) -> usize {
        self.state.lock().discipline.readable_bytes()
    }

    /// The settings (`TCGETS`).
    pub fn termios(&self) -> Termios {
        *self.state.lock().discipline.termios()
    }

    /// Changes the settings (`TCSETS*`); `flushes_input` discards unread
    /// input (`TCSETSF`).
    pub fn set_termios(&self, termios: Termios, flushes_input: bool) {
        let mut started_echo = None;
        {
            let mut state = self.state.lock();
            let had_flow_control = has_standard_flow_control(state.discipline.termios());
            if state.discipline.set_termios(termios, flushes_input) {
                started_echo = Some(self.follow_flow(&mut state, false));
            }
            if has_standard_flow_control(&termios) != had_flow_control {
                let bit = if had_flow_control { packet::NOSTOP } else { packet::DOSTOP };
                Self::add_packet_status(&mut state, bit);
            }
            if flushes_input {
                Self::add_packet_status(&mut state, packet::FLUSHREAD);
            }
        }
        if let Some(echo) = started_echo {
            self.flow_started(&echo);
        }
        self.waiters.notify();
        self.room_waiters.notify();
        self.notify_screen();
    }

    /// Discards unread input (`TCFLSH`).
    pub fn flush_input(&self) {
        {
            let mut state = self.state.lock();
            state.discipline.flush_input();
            Self::add_packet_status(&mut state, packet::FLUSHREAD);
        }
        self.room_waiters.notify();
        self.notify_screen();
    }

    /// Discards output not yet shown (`TCFLSH`): a pseudo-terminal's
    /// output the master has not read.
    pub fn flush_output(&self) {
        if let Some(screen) = &self.screen {
            screen.clear();
            Self::add_packet_status(&mut self.state.lock(), packet::FLUSHWRITE);
            self.notify_screen();
        }
    }

    /// The window size (`TIOCGWINSZ`).
    pub fn window_size(&self) -> WindowSize {
        self.state.lock().window
    }

    /// Sets the window size (`TIOCSWINSZ`, or the host's terminal changed
    /// size); a change sends `SIGWINCH` to the foreground program.
    pub fn set_window_size(&self, window: WindowSize) {
        let is_change = {
            let mut state = self.state.lock();
            let is_change = state.window != window;
            state.window = window;
            is_change
        };
        if is_change {
            self.foreground.signal(SIGWINCH);
        }
    }

    /// The readiness of the input side.
    fn poll_input(&self) -> u16 {
        let state = self.state.lock();
        let mut ready = 0;
        if state.discipline.is_readable() || state.is_input_ended {
            ready |= events::POLLIN;
        }
        if state.is_input_ended && !state.discipline.is_readable() {
            ready |= events::POLLHUP;
        }
        ready
    }
}

#[cfg(test)]
mod tests;
