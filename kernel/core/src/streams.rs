//! The application's standard streams: byte channels to the host, and the
//! open files descriptors 0, 1 and 2 start with.
//!
//! A [`HostChannel`] is one direction of one stream as the machine
//! carries it (a virtio-console port, or records on the serial port); it
//! never waits, and notifies its [`WaiterList`] when bytes arrive, room
//! frees up or the host closes it. [`StandardStreams::connect`] makes the
//! open files from the channels: a stream that is a terminal on the host
//! becomes a [`TerminalFile`] of one shared [`Terminal`]; the others
//! behave as pipes ([`InputStream`], [`OutputStream`]); a stream without
//! a channel falls back to the console (the serial port), as every stream
//! did before channels existed.
//!
//! [`StandardStreams::serve`], which the kernel calls whenever the host's
//! device interrupts, takes typed bytes into the terminal as they arrive
//! (so Ctrl-C works while the program computes) and acts on the host's
//! [`ControlMessage`]s (signals, window sizes). It never waits. [`Foreground`]
//! is the program those go to.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use rosv_abi::streams::{ControlMessage, ControlReader, RestoreNotice};
use rosv_cmdline::TerminalMode;
use spin::Mutex;

use crate::machine::{Machine, ThreadControl, Wakeup};
use crate::process::Process;
use crate::terminal::termios::WindowSize;
use crate::terminal::{Terminal, TerminalFile};
use crate::vfs::file::flags::{O_RDONLY, O_RDWR, O_WRONLY};
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FileObject, FileType, FsError, Metadata, OpenFile};

/// What a look at a channel's input found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// This many bytes were copied.
    Bytes(usize),
    /// Nothing yet: the host may still send.
    Nothing,
    /// The host closed the channel and everything it sent has been taken.
    Closed,
}

/// The host closed a channel: nothing sent on it arrives any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelClosed;

/// One direction of a stream between the guest and the host.
pub trait HostChannel: Send + Sync {
    /// Copies bytes the host sent into `buffer`, without waiting.
    fn receive(&self, buffer: &mut [u8]) -> Received;

    /// What [`HostChannel::receive`] would find, without taking anything
    /// (`Bytes(n)`: at least `n` bytes wait).
    fn peek(&self) -> Received;

    /// Queues bytes for the host without waiting; returns how many were
    /// taken (0: no room now, wait for the waiters). Empty `bytes` only
    /// check that the host still listens.
    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed>;

    /// Whether [`HostChannel::send`] would take bytes now.
    fn can_send(&self) -> bool;

    /// Whether everything sent has left the guest (or never can).
    fn is_sent(&self) -> bool;

    /// Notified when bytes arrive, room frees up or the host closes the
    /// channel.
    fn waiters(&self) -> &WaiterList;
}

impl core::fmt::Debug for dyn HostChannel {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("HostChannel")
    }
}

/// Sends all of `bytes`, waiting for room unless `is_nonblocking`; returns
/// how many went (fewer only when a signal or a full channel stopped it
/// after some). `BrokenPipe` when the host closed the channel before any
/// byte went.
pub fn send_all(
    caller: &Caller<'_>,
    channel: &dyn HostChannel,
    bytes: &[u8],
    is_nonblocking: bool,
) -> Result<usize, FsError> {
    let partial = |sent: usize, error: FsError| if sent > 0 { Ok(sent) } else { Err(error) };
    let mut sent = 0;
    let mut me: Option<Arc<dyn ThreadControl>> = None;
    while sent < bytes.len() {
        match channel.send(&bytes[sent..]) {
            Ok(0) => {}
            Ok(length) => {
                sent += length;
                continue;
            }
            Err(ChannelClosed) => return partial(sent, FsError::BrokenPipe),
        }
        if is_nonblocking {
            return partial(sent, FsError::WouldBlock);
        }
        let thread = me.get_or_insert_with(|| caller.machine.current_thread());
        channel.waiters().add(thread);
        if channel.can_send() {
            continue;
        }
        if caller.is_interrupted() || caller.machine.block(None) == Wakeup::Stop {
            channel.waiters().remove(thread);
            return partial(sent, FsError::Interrupted);
        }
    }
    if let Some(thread) = &me {
        channel.waiters().remove(thread);
    }
    Ok(sent)
}

/// The program that terminal signals and the host's signals go to.
///
/// Signals that come while no program runs wait for the next one (a
/// `SIGTERM` during boot still reaches the application).
#[derive(Debug, Default)]
pub struct Foreground {
    process: Mutex<Option<Weak<Process>>>,
    pending: Mutex<Vec<u8>>,
    /// The foreground process group a shell chose (`TIOCSPGRP`); 0: the
    /// program's own group.
    group: core::sync::atomic::AtomicU64,
    /// Signals go to the chosen group alone, and are dropped without one
    /// (a pseudo-terminal, which no program of its own stands behind).
    is_group_only: bool,
}

/// `SIGWINCH`, which is only worth sending to a program that runs.
const SIGWINCH: u8 = 28;

impl Foreground {
    /// No program yet.
    pub fn new() -> Arc<Foreground> {
        Arc::new(Foreground::default())
    }

    /// Signals for the foreground group a session chooses, dropped while
    /// there is none (a pseudo-terminal's).
    pub fn group_only() -> Arc<Foreground> {
        Arc::new(Foreground { is_group_only: true, ..Foreground::default() })
    }

    /// Makes `process` the program (none: the last one ended); signals
    /// that waited are delivered to it.
    pub fn set(&self, process: Option<&Arc<Process>>) {
        *self.process.lock() = process.map(Arc::downgrade);
        self.group.store(0, core::sync::atomic::Ordering::Relaxed);
        if let Some(process) = process {
            for signal in core::mem::take(&mut *self.pending.lock()) {
                crate::syscall::signal_process(process, signal);
            }
        }
    }

    /// The foreground process group (`TIOCGPGRP`): the one a shell chose,
    /// else the program's, else `fallback`.
    pub fn group(&self, fallback: u64) -> u64 {
        match self.group.load(core::sync::atomic::Ordering::Relaxed) {
            0 => self
                .process
                .lock()
                .as_ref()
                .and_then(Weak::upgrade)
                .map_or(fallback, |process| process.group_id()),
            group => group,
        }
    }

    /// Makes `group` the foreground process group (`TIOCSPGRP`).
    pub fn set_group(&self, group: u64) {
        self.group.store(group, core::sync::atomic::Ordering::Relaxed);
    }

    /// Sends `signal` to the foreground process group (every process of
    /// the program's group, or of the group a shell made the foreground),
    /// or keeps it for the next program.
    pub fn signal(&self, signal: u8) {
        if self.is_group_only {
            let group = self.group.load(core::sync::atomic::Ordering::Relaxed);
            for member in crate::process::all() {
                if group != 0 && member.group_id() == group && !member.has_ended() {
                    crate::syscall::signal_process(&member, signal);
                }
            }
            return;
        }
        let process = self.process.lock().as_ref().and_then(Weak::upgrade);
        match process {
            Some(process) => {
                let group = self.group(process.group_id());
                let members: alloc::vec::Vec<_> = crate::process::all()
                    .into_iter()
                    .filter(|member| member.group_id() == group && !member.has_ended())
                    .collect();
                if members.is_empty() {
                    crate::syscall::signal_process(&process, signal);
                }
                for member in members {
                    crate::syscall::signal_process(&member, signal);
                }
            }
            None if signal != SIGWINCH => self.pending.lock().push(signal),
            None => {}
        }
    }
}

/// Standard input that is not a terminal: reads as a pipe does.
#[derive(Debug)]
pub struct InputStream {
    channel: Arc<dyn HostChannel>,
}

impl InputStream {
    /// Bytes a read would return at once (`FIONREAD`).
    pub fn available_bytes(&self) -> usize {
        match self.channel.peek() {
            Received::Bytes(length) => length,
            Received::Nothing | Received::Closed => 0,
        }
    }
}

impl SpecialFile for InputStream {
    fn name(&self) -> String {
        String::from("pipe:[0]")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let mut me: Option<Arc<dyn ThreadControl>> = None;
        loop {
            match self.channel.receive(buffer) {
                Received::Bytes(length) => {
                    if let Some(thread) = &me {
                        self.channel.waiters().remove(thread);
                    }
                    return Ok(length);
                }
                Received::Closed => return Ok(0),
                Received::Nothing if is_nonblocking => return Err(FsError::WouldBlock),
                Received::Nothing => {}
            }
            let thread = me.get_or_insert_with(|| caller.machine.current_thread());
            self.channel.waiters().add(thread);
            // Bytes that came before the thread was on the list.
            if self.channel.peek() != Received::Nothing {
                continue;
            }
            if caller.is_interrupted() || caller.machine.block(None) == Wakeup::Stop {
                self.channel.waiters().remove(thread);
                return Err(FsError::Interrupted);
            }
        }
    }

    fn poll(&self) -> u16 {
        match self.channel.peek() {
            Received::Bytes(_) => events::POLLIN,
            Received::Nothing => 0,
            Received::Closed => events::POLLIN | events::POLLHUP,
        }
    }

    fn waiters(&self) -> &WaiterList {
        self.channel.waiters()
    }

    fn metadata(&self) -> Metadata {
        stream_metadata(1)
    }

    fn reopens(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// Standard output or error that is not a terminal: writes as to a pipe;
/// once the host stops reading, writes fail with `EPIPE` (and `SIGPIPE`).
#[derive(Debug)]
pub struct OutputStream {
    channel: Arc<dyn HostChannel>,
    inode: u64,
}

impl SpecialFile for OutputStream {
    fn name(&self) -> String {
        alloc::format!("pipe:[{}]", self.inode)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        send_all(caller, self.channel.as_ref(), bytes, is_nonblocking)
    }

    fn poll(&self) -> u16 {
        match self.channel.send(&[]) {
            Err(ChannelClosed) => events::POLLERR,
            Ok(_) if self.channel.can_send() => events::POLLOUT,
            Ok(_) => 0,
        }
    }

    fn waiters(&self) -> &WaiterList {
        self.channel.waiters()
    }

    fn metadata(&self) -> Metadata {
        stream_metadata(self.inode)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// What `fstat` says of a stream that is not a terminal: a pipe.
fn stream_metadata(inode: u64) -> Metadata {
    let mut metadata = Metadata::new(inode, FileType::Fifo, 0o600);
    metadata.block_size_bytes = 4096;
    metadata
}

/// The channels the machine offers for the standard streams.
#[derive(Debug, Default, Clone)]
pub struct Channels {
    /// Standard input, 1 and 2: standard output and error.
    pub streams: [Option<Arc<dyn HostChannel>>; 3],
    /// Control messages from the host.
    pub control: Option<Arc<dyn HostChannel>>,
}

/// How the host's streams are to look to the application.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamSettings {
    /// Which of descriptors 0, 1, 2 are terminals on the host.
    pub terminals: [bool; 3],
    /// Who edits lines and raises signals.
    pub mode: TerminalMode,
    /// The terminal's size at start.
    pub window: WindowSize,
}

/// The standard streams every program of the machine starts with.
pub struct StandardStreams {
    files: [Arc<OpenFile>; 3],
    terminal: Option<Arc<Terminal>>,
    outputs: Vec<Arc<dyn HostChannel>>,
    control: Option<Arc<dyn HostChannel>>,
    control_reader: Mutex<ControlReader>,
    foreground: Arc<Foreground>,
    /// What acts on a restore notice (see `restore`).
    restore_handler: spin::Once<RestoreHandler>,
}

/// Acts on the host's [`RestoreNotice`]; runs in an interrupt handler.
pub type RestoreHandler = alloc::boxed::Box<dyn Fn(&RestoreNotice) + Send + Sync>;

impl core::fmt::Debug for StandardStreams {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("StandardStreams").field("terminal", &self.terminal).finish()
    }
}

impl StandardStreams {
    /// The open files for descriptors 0, 1 and 2 over `channels`, as
    /// `settings` say; `console` for a stream that has no channel.
    pub fn connect(channels: Channels, settings: StreamSettings, console: &Arc<OpenFile>) -> StandardStreams {
        let foreground = Foreground::new();
        let [input, output, error] = channels.streams.clone();
        let is_terminal =
            |descriptor: usize| settings.terminals[descriptor] && channels.streams[descriptor].is_some();
        let terminal = (0..3).any(is_terminal).then(|| {
            let echo = if is_terminal(1) {
                output.clone()
            } else if is_terminal(2) {
                error.clone()
            } else {
                None
            };
            let typed = if is_terminal(0) { input.clone() } else { None };
            let terminal = Terminal::new(typed, echo, settings.mode, settings.window, foreground.clone());
            // It is /dev/pts/0, as a container's terminal is.
            crate::terminal::pseudo::table().register_host(&terminal);
            terminal
        });
        let files: [Arc<OpenFile>; 3] = core::array::from_fn(|descriptor| {
            let channel = channels.streams[descriptor].clone();
            match (channel, &terminal) {
                (Some(_), Some(terminal)) if is_terminal(descriptor) => {
                    let writes_to = if descriptor == 0 {
                        terminal_output(&channels, &settings)
                    } else {
                        channels.streams[descriptor].clone()
                    };
                    let file = TerminalFile::new(terminal.clone(), writes_to);
                    OpenFile::new(FileObject::Special(file), O_RDWR)
                }
                (Some(channel), _) if descriptor == 0 => {
                    OpenFile::new(FileObject::Special(Arc::new(InputStream { channel })), O_RDONLY)
                }
                (Some(channel), _) => OpenFile::new(
                    FileObject::Special(Arc::new(OutputStream { channel, inode: descriptor as u64 + 1 })),
                    O_WRONLY,
                ),
                (None, _) => console.clone(),
            }
        });
        let outputs = [output, error].into_iter().flatten().collect();
        StandardStreams {
            files,
            terminal,
            outputs,
            control: channels.control,
            control_reader: Mutex::new(ControlReader::new()),
            foreground,
            restore_handler: spin::Once::new(),
        }
    }

    /// Has `handler` act on the restore notices the host sends (the first
    /// handler set stays).
    pub fn on_restore(&self, handler: RestoreHandler) {
        self.restore_handler.call_once(|| handler);
    }

    /// The open files of descriptors 0, 1 and 2.
    pub fn files(&self) -> [Arc<OpenFile>; 3] {
        self.files.clone()
    }

    /// The terminal, if a stream is one.
    pub fn terminal(&self) -> Option<&Arc<Terminal>> {
        self.terminal.as_ref()
    }

    /// The program signals go to.
    pub fn foreground(&self) -> &Arc<Foreground> {
        &self.foreground
    }

    /// Takes what the host sent: typed bytes into the terminal, control
    /// messages acted upon. Never waits, so interrupt handlers call it.
    /// Returns whether anything happened.
    pub fn serve(&self) -> bool {
        let mut progress = self.terminal.as_ref().is_some_and(|terminal| terminal.pump());
        let Some(control) = &self.control else { return progress };
        let mut buffer = [0u8; 64];
        let mut messages = Vec::new();
        while let Received::Bytes(length) = control.receive(&mut buffer) {
            progress = true;
            self.control_reader.lock().feed(&buffer[..length], &mut |message| messages.push(message));
        }
        for message in messages {
            match message {
                ControlMessage::Signal(signal) => self.foreground.signal(signal),
                ControlMessage::Resize { columns, rows } => {
                    if let Some(terminal) = &self.terminal {
                        let window = WindowSize { rows, columns, ..terminal.window_size() };
                        terminal.set_window_size(window);
                    }
                }
                ControlMessage::Restore(notice) => match self.restore_handler.get() {
                    Some(handler) => handler(&notice),
                    None => log::warn!("a restore notice came, but nothing acts on it"),
                },
            }
        }
        progress
    }

    /// Waits until everything written to standard output and error has
    /// left the guest, at most `timeout_ns`; false if time ran out.
    pub fn flush(&self, machine: &dyn Machine, timeout_ns: u64) -> bool {
        let deadline = machine.monotonic_ns().saturating_add(timeout_ns);
        let me = machine.current_thread();
        loop {
            for output in &self.outputs {
                output.waiters().add(&me);
            }
            if self.outputs.iter().all(|output| output.is_sent()) {
                for output in &self.outputs {
                    output.waiters().remove(&me);
                }
                return true;
            }
            if machine.monotonic_ns() >= deadline {
                return false;
            }
            machine.block(Some(deadline));
        }
    }
}

/// Where a terminal's standard input descriptor writes (a terminal is one
/// device both ways): standard output's channel if that is the terminal
/// too, else standard error's.
fn terminal_output(channels: &Channels, settings: &StreamSettings) -> Option<Arc<dyn HostChannel>> {
    (1..3)
        .find(|&descriptor| settings.terminals[descriptor])
        .and_then(|descriptor| channels.streams[descriptor].clone())
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
