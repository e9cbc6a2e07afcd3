//! Terminals: the application's standard streams when the host's are
//! terminals.
//!
//! A [`Terminal`] holds the [`LineDiscipline`] (settings, typed input,
//! editing), the window size, and the host channels its input comes from
//! and its echo goes to. The application reaches it through
//! [`TerminalFile`]s, one per standard stream that is a terminal on the
//! host, each writing to its stream's own channel. Typed bytes are taken
//! from the input channel as they arrive ([`Terminal::pump`], which the
//! stream service calls, and every read), so Ctrl-C interrupts a program
//! that is not reading.
//!
//! In [`TerminalMode::Host`] the host's terminal has done the editing,
//! echo and signals already: bytes pass through unchanged both ways, and
//! the settings are only recorded.

mod line_discipline;
pub mod termios;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_cmdline::TerminalMode;
use spin::Mutex;

pub use line_discipline::{Effects, INPUT_CAPACITY, LineDiscipline, Read, Waiting};
use termios::{Termios, WindowSize};

use crate::machine::{ThreadControl, Wakeup};
use crate::streams::{Foreground, HostChannel, Received, send_all};
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FileType, FsError, Metadata};

/// `SIGWINCH`.
const SIGWINCH: u8 = 28;
/// The device number of `/dev/pts/0`, which a terminal's `fstat` reports.
const PSEUDO_TERMINAL_DEVICE: u64 = 136 << 8;
/// Input bytes processed per step of a write (their output may double).
const WRITE_CHUNK: usize = 1024;

struct TerminalState {
    discipline: LineDiscipline,
    window: WindowSize,
    /// The host closed the input and every byte of it has been taken.
    is_input_ended: bool,
}

/// A terminal and its line discipline.
pub struct Terminal {
    state: Mutex<TerminalState>,
    input: Option<Arc<dyn HostChannel>>,
    echo: Option<Arc<dyn HostChannel>>,
    mode: TerminalMode,
    foreground: Arc<Foreground>,
    /// The session the terminal controls (0: none).
    session: core::sync::atomic::AtomicU64,
    /// Readers and pollers of the input.
    waiters: WaiterList,
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
        Arc::new(Terminal {
            state: Mutex::new(TerminalState {
                discipline: match mode {
                    TerminalMode::Guest => LineDiscipline::new(),
                    TerminalMode::Host => LineDiscipline::transparent(),
                },
                window,
                is_input_ended: input.is_none(),
            }),
            input,
            echo,
            mode,
            foreground,
            session: core::sync::atomic::AtomicU64::new(0),
            waiters: WaiterList::new(),
        })
    }

    /// The session whose controlling terminal this is (0: none).
    pub fn session(&self) -> u64 {
        self.session.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Makes the terminal the controlling terminal of `session` (0: of
    /// none).
    pub fn set_session(&self, session: u64) {
        self.session.store(session, core::sync::atomic::Ordering::Release);
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
                        echo.extend_from_slice(&effects.echo);
                        signals.extend_from_slice(&effects.signals);
                    }
                    Received::Nothing => break,
                    Received::Closed => {
                        state.is_input_ended = true;
                        progress = true;
                    }
                }
            }
        }
        if let Some(channel) = self.echo.as_ref().filter(|_| !echo.is_empty()) {
            // Echo never waits: what does not fit now is dropped, as a
            // terminal whose output is stopped would.
            let mut rest = echo.as_slice();
            while let Ok(length @ 1..) = channel.send(rest) {
                rest = &rest[length..];
            }
        }
        for signal in signals {
            self.foreground.signal(signal);
        }
        if progress {
            self.waiters.notify();
        }
        progress
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
        loop {
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
        self.state.lock().discipline.set_termios(termios, flushes_input);
        self.waiters.notify();
    }

    /// Discards unread input (`TCFLSH`).
    pub fn flush_input(&self) {
        self.state.lock().discipline.flush_input();
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

    /// The readiness of the input side, and its waiters.
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

/// A standard stream that is a terminal: the terminal, and the channel its
/// writes go to.
#[derive(Debug)]
pub struct TerminalFile {
    terminal: Arc<Terminal>,
    output: Option<Arc<dyn HostChannel>>,
}

impl TerminalFile {
    /// A descriptor of `terminal` writing to `output` (none: writes are
    /// discarded, as to a terminal nobody watches).
    pub fn new(terminal: Arc<Terminal>, output: Option<Arc<dyn HostChannel>>) -> Arc<TerminalFile> {
        Arc::new(TerminalFile { terminal, output })
    }

    /// The terminal.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }
}

impl SpecialFile for TerminalFile {
    fn name(&self) -> String {
        String::from("/dev/pts/0")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.terminal.check_job_access(caller, crate::signal::job::SIGTTIN)?;
        self.terminal.read(caller, buffer, is_nonblocking)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if self.terminal.termios().local_flags & termios::local::TOSTOP != 0 {
            self.terminal.check_job_access(caller, crate::signal::job::SIGTTOU)?;
        }
        match &self.output {
            Some(output) => self.terminal.write(caller, output, bytes, is_nonblocking),
            None => Ok(bytes.len()),
        }
    }

    fn poll(&self) -> u16 {
        let mut ready = self.terminal.poll_input();
        if self.output.as_ref().is_none_or(|output| output.can_send()) {
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
        let mut metadata = Metadata::new(3, FileType::CharacterDevice, 0o620);
        metadata.represented_device = PSEUDO_TERMINAL_DEVICE;
        metadata.block_size_bytes = 1024;
        metadata
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
