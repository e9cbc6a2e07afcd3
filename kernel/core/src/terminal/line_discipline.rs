//! The line discipline: what a terminal does between the keyboard and the
//! program, as Linux's `N_TTY` does it.
//!
//! Input ([`LineDiscipline::receive`]) is translated (`ICRNL`, `IGNCR`,
//! `INLCR`, `ISTRIP`), turned into signals (`ISIG`: interrupt, quit),
//! edited into lines in canonical mode (`ICANON`: erase, word erase, kill,
//! end of file, literal next) and echoed (`ECHO`, with control characters
//! shown as `^X` under `ECHOCTL`). Reads ([`LineDiscipline::read`]) return
//! one finished line at a time in canonical mode, whatever is there
//! otherwise. Output ([`LineDiscipline::process_output`]) is translated
//! only as the settings ask (`OPOST` with `ONLCR`, `OCRNL`).
//!
//! Flow control characters (`IXON`) are taken out of the input and stop
//! or start output (with `IXANY`, any character starts it); so do the
//! `TCOOFF`/`TCOON` requests ([`LineDiscipline::suspend_output`]), whose
//! stop only `TCOON` lifts, as Linux's `tco_stopped`. The discipline keeps
//! the state and reports changes ([`Effects::flow`]); the terminal holds
//! its writers and echo back while output is stopped.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::termios::{Termios, character, input, local, output};

/// Bytes the input holds at most (Linux's `N_TTY_BUF_SIZE`); a canonical
/// line holds one less, to leave room for its newline.
pub const INPUT_CAPACITY: usize = 4096;

/// `SIGINT`.
const SIGINT: u8 = 2;
/// `SIGQUIT`.
const SIGQUIT: u8 = 3;
/// `SIGTSTP`.
const SIGTSTP: u8 = 20;
/// The erase sequence an echoed character is rubbed out with.
const RUB_OUT: &[u8] = b"\x08 \x08";

/// What processing input produced besides readable bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Bytes to show on the terminal (already output-processed).
    pub echo: Vec<u8>,
    /// Signals to send to the foreground program, in order.
    pub signals: Vec<u8>,
    /// Unread input was discarded (a signal character without `NOFLSH`).
    pub is_input_flushed: bool,
    /// Output flow changed: `Some(true)` it stopped (`VSTOP`),
    /// `Some(false)` it started again (`VSTART`, `IXANY`, a signal
    /// character); the later change counts.
    pub flow: Option<bool>,
}

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were copied.
    Bytes(usize),
    /// Nothing to read yet.
    Empty,
    /// An end-of-file character was typed at the start of a line.
    EndOfFile,
}

/// How a read waits for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Until input is there (a finished line in canonical mode).
    ForInput,
    /// Not at all: a read with nothing there returns 0 (`VMIN` and `VTIME`
    /// 0).
    Never,
    /// Until input is there or this many nanoseconds have passed (`VMIN`
    /// 0, `VTIME` > 0).
    AtMost(u64),
}

/// A terminal's input state and settings.
#[derive(Debug, Clone, Default)]
pub struct LineDiscipline {
    termios: Termios,
    /// Bytes pass unchanged both ways: the host's terminal did the work.
    is_transparent: bool,
    /// Finished lines (canonical mode); an empty line is an end of file.
    lines: VecDeque<Vec<u8>>,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// Bytes ready to read (non-canonical mode).
    raw: VecDeque<u8>,
    /// The next character is taken literally (after `VLNEXT`).
    is_literal_next: bool,
    /// Output is stopped (Linux's `flow.stopped`).
    is_output_stopped: bool,
    /// Output was stopped by `TCOOFF`: only `TCOON` starts it (Linux's
    /// `flow.tco_stopped`).
    is_output_suspended: bool,
}

impl LineDiscipline {
    /// A terminal with Linux's default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A terminal whose input arrives edited and echoed by the host's own
    /// terminal: bytes are read as they came and written unchanged; the
    /// settings are kept for programs that ask but change nothing.
    pub fn transparent() -> Self {
        LineDiscipline { is_transparent: true, ..Self::default() }
    }

    /// The settings.
    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    /// Changes the settings; `flushes_input` discards unread input
    /// (`TCSETSF`). Leaving canonical mode makes the lines, finished or
    /// not, readable as they are.
    /// Turning `IXON` off starts output a flow control character stopped;
    /// returns whether it did.
    pub fn set_termios(&mut self, termios: Termios, flushes_input: bool) -> bool {
        let was_canonical = self.is_canonical();
        let had_flow_control = self.termios.has_input(input::IXON);
        self.termios = termios;
        if flushes_input {
            self.flush_input();
        } else if was_canonical && !self.is_canonical() {
            for line in core::mem::take(&mut self.lines) {
                self.raw.extend(line);
            }
            self.raw.extend(core::mem::take(&mut self.line));
        }
        had_flow_control && !termios.has_input(input::IXON) && self.start_output()
    }

    /// Whether output is stopped.
    pub fn is_output_stopped(&self) -> bool {
        self.is_output_stopped
    }

    /// Stops output (`VSTOP`); returns whether it was running.
    fn stop_output(&mut self) -> bool {
        !core::mem::replace(&mut self.is_output_stopped, true)
    }

    /// Starts output again (`VSTART`) unless `TCOOFF` stopped it; returns
    /// whether it was stopped.
    fn start_output(&mut self) -> bool {
        if !self.is_output_stopped || self.is_output_suspended {
            return false;
        }
        self.is_output_stopped = false;
        true
    }

    /// `TCOOFF`: stops output until [`LineDiscipline::resume_output`];
    /// returns whether it was running.
    pub fn suspend_output(&mut self) -> bool {
        if self.is_output_suspended {
            return false;
        }
        self.is_output_suspended = true;
        self.stop_output()
    }

    /// `TCOON`: lifts [`LineDiscipline::suspend_output`] and starts output;
    /// returns whether it was stopped.
    pub fn resume_output(&mut self) -> bool {
        if !core::mem::take(&mut self.is_output_suspended) {
            return false;
        }
        self.start_output()
    }

    /// Discards every byte not yet read.
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.line.clear();
        self.raw.clear();
        self.is_literal_next = false;
    }

    fn is_canonical(&self) -> bool {
        !self.is_transparent && self.termios.has_local(local::ICANON)
    }

    /// Bytes held, read or being edited.
    pub fn held_bytes(&self) -> usize {
        self.lines.iter().map(Vec::len).sum::<usize>() + self.line.len() + self.raw.len()
    }

    /// How many more bytes the input takes before it waits for reads:
    /// unread bytes fill it (finished lines in canonical mode, where
    /// characters beyond a full line are still taken, and dropped, so that
    /// a newline or an erase can arrive).
    pub fn room(&self) -> usize {
        let unread = if self.is_canonical() { self.lines.iter().map(Vec::len).sum() } else { self.raw.len() };
        INPUT_CAPACITY.saturating_sub(unread)
    }

    /// Whether a read would return at once (with bytes or the end of the
    /// input).
    pub fn is_readable(&self) -> bool {
        if self.is_canonical() { !self.lines.is_empty() } else { !self.raw.is_empty() }
    }

    /// Bytes a read could return now (`FIONREAD`).
    pub fn readable_bytes(&self) -> usize {
        if self.is_canonical() { self.lines.iter().map(Vec::len).sum() } else { self.raw.len() }
    }

    /// How a read with nothing to return waits (`VMIN`, `VTIME`).
    pub fn waiting(&self) -> Waiting {
        if self.is_canonical() || self.is_transparent {
            return Waiting::ForInput;
        }
        match (self.termios.characters[character::VMIN], self.termios.characters[character::VTIME]) {
            (0, 0) => Waiting::Never,
            (0, tenths) => Waiting::AtMost(u64::from(tenths) * 100_000_000),
            _ => Waiting::ForInput,
        }
    }

    /// Takes typed bytes; returns what to echo and which signals to send.
    pub fn receive(&mut self, bytes: &[u8]) -> Effects {
        let mut effects = Effects::default();
        if self.is_transparent {
            let room = INPUT_CAPACITY.saturating_sub(self.raw.len());
            self.raw.extend(&bytes[..bytes.len().min(room)]);
            return effects;
        }
        for &byte in bytes {
            self.receive_byte(byte, &mut effects);
        }
        effects
    }

    fn receive_byte(&mut self, byte: u8, effects: &mut Effects) {
        let termios = self.termios;
        let mut byte = byte;
        if termios.has_input(input::ISTRIP) {
            byte &= 0x7f;
        }
        if self.is_literal_next {
            self.is_literal_next = false;
            self.store(byte, effects);
            return;
        }
        let is = |index: usize| termios.character(index) == Some(byte);
        if termios.has_local(local::ISIG) {
            let signal = if is(character::VINTR) {
                Some(SIGINT)
            } else if is(character::VQUIT) {
                Some(SIGQUIT)
            } else if is(character::VSUSP) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(signal) = signal {
                // Interrupting a stopped screen shows it again.
                if termios.has_input(input::IXON) && self.start_output() {
                    effects.flow = Some(false);
                }
                if !termios.has_local(local::NOFLSH) {
                    self.flush_input();
                    effects.is_input_flushed = true;
                }
                self.echo_character(byte, effects);
                effects.signals.push(signal);
                return;
            }
        }
        if termios.has_input(input::IXON) && (is(character::VSTART) || is(character::VSTOP)) {
            // One character for both toggles.
            let is_start = is(character::VSTART) && (!is(character::VSTOP) || self.is_output_stopped);
            let is_change = if is_start { self.start_output() } else { self.stop_output() };
            if is_change {
                effects.flow = Some(!is_start);
            }
            return;
        }
        if termios.has_input(input::IXON) && termios.has_input(input::IXANY) && self.start_output() {
            effects.flow = Some(false);
        }
        let byte = match byte {
            b'\r' if termios.has_input(input::IGNCR) => return,
            b'\r' if termios.has_input(input::ICRNL) => b'\n',
            b'\n' if termios.has_input(input::INLCR) => b'\r',
            other => other,
        };
        let is = |index: usize| termios.character(index) == Some(byte);
        if !self.is_canonical() {
            if self.raw.len() < INPUT_CAPACITY {
                self.raw.push_back(byte);
                if termios.has_local(local::ECHO) {
                    self.echo_character(byte, effects);
                }
            }
            return;
        }
        let is_extended = termios.has_local(local::IEXTEN);
        if is(character::VERASE) {
            self.erase(1, effects);
        } else if is_extended && is(character::VWERASE) {
            let trailing_blanks =
                self.line.iter().rev().take_while(|byte| byte.is_ascii_whitespace()).count();
            let word = self.line[..self.line.len() - trailing_blanks]
                .iter()
                .rev()
                .take_while(|byte| !byte.is_ascii_whitespace())
                .count();
            self.erase(trailing_blanks + word, effects);
        } else if is(character::VKILL) {
            if termios.has_local(local::ECHOKE) || !termios.has_local(local::ECHOK) {
                self.erase(self.line.len(), effects);
            } else {
                self.line.clear();
                if termios.has_local(local::ECHO) {
                    self.echo_character(byte, effects);
                    self.echo_output(b"\n", effects);
                }
            }
        } else if is_extended && is(character::VLNEXT) {
            self.is_literal_next = true;
        } else if is_extended && is(character::VREPRINT) {
            if termios.has_local(local::ECHO) {
                self.echo_character(byte, effects);
                self.echo_output(b"\n", effects);
                let line = self.line.clone();
                self.echo_output(&line, effects);
            }
        } else if is(character::VEOF) {
            self.lines.push_back(core::mem::take(&mut self.line));
        } else if byte == b'\n' || is(character::VEOL) || is(character::VEOL2) {
            self.line.push(byte);
            self.lines.push_back(core::mem::take(&mut self.line));
            if termios.has_local(local::ECHO) || (byte == b'\n' && termios.has_local(local::ECHONL)) {
                self.echo_character(byte, effects);
            }
        } else {
            self.store(byte, effects);
        }
    }

    /// Adds a character to the input (the line in canonical mode), if
    /// there is room, and echoes it.
    fn store(&mut self, byte: u8, effects: &mut Effects) {
        if self.is_canonical() {
            // Room for the newline that ends the line.
            if self.held_bytes() + 1 >= INPUT_CAPACITY {
                return;
            }
            self.line.push(byte);
        } else {
            if self.raw.len() >= INPUT_CAPACITY {
                return;
            }
            self.raw.push_back(byte);
        }
        if self.termios.has_local(local::ECHO) {
            self.echo_character(byte, effects);
        }
    }

    /// Removes the last `count` characters of the line, rubbing them out
    /// on the screen under `ECHOE`.
    fn erase(&mut self, count: usize, effects: &mut Effects) {
        for _ in 0..count.min(self.line.len()) {
            let Some(byte) = self.line.pop() else { break };
            // A character shown as ^X takes two columns.
            let width = if self.shows_as_caret(byte) { 2 } else { 1 };
            if self.termios.has_local(local::ECHO) && self.termios.has_local(local::ECHOE) {
                for _ in 0..width {
                    self.echo_output(RUB_OUT, effects);
                }
            }
            // A UTF-8 character's continuation bytes go with it.
            if byte & 0xc0 == 0x80 {
                while self.line.last().is_some_and(|byte| byte & 0xc0 == 0x80) {
                    self.line.pop();
                }
                self.line.pop();
            }
        }
    }

    fn shows_as_caret(&self, byte: u8) -> bool {
        self.termios.has_local(local::ECHOCTL)
            && (byte < 0x20 && byte != b'\t' && byte != b'\n' || byte == 0x7f)
    }

    /// Echoes one character, a control character as `^X` under `ECHOCTL`.
    fn echo_character(&self, byte: u8, effects: &mut Effects) {
        if self.shows_as_caret(byte) {
            self.echo_output(&[b'^', byte ^ 0x40], effects);
        } else {
            self.echo_output(&[byte], effects);
        }
    }

    fn echo_output(&self, bytes: &[u8], effects: &mut Effects) {
        self.process_output(bytes, &mut effects.echo);
    }

    /// Copies input into `buffer`: one finished line at most in canonical
    /// mode (a line longer than `buffer` is returned in pieces), whatever
    /// is there otherwise.
    pub fn read(&mut self, buffer: &mut [u8]) -> Read {
        if !self.is_canonical() {
            if self.raw.is_empty() {
                return Read::Empty;
            }
            let length = buffer.len().min(self.raw.len());
            for (slot, byte) in buffer.iter_mut().zip(self.raw.drain(..length)) {
                *slot = byte;
            }
            return Read::Bytes(length);
        }
        let Some(line) = self.lines.front_mut() else {
            return Read::Empty;
        };
        if line.is_empty() {
            self.lines.pop_front();
            return Read::EndOfFile;
        }
        let length = buffer.len().min(line.len());
        buffer[..length].copy_from_slice(&line[..length]);
        line.drain(..length);
        if line.is_empty() {
            self.lines.pop_front();
        }
        Read::Bytes(length)
    }

    /// A discipline with the same settings and no input, for processing
    /// output without holding the terminal's lock.
    pub fn clone_settings(&self) -> LineDiscipline {
        LineDiscipline {
            termios: self.termios,
            is_transparent: self.is_transparent,
            is_output_stopped: self.is_output_stopped,
            is_output_suspended: self.is_output_suspended,
            ..Self::default()
        }
    }

    /// How many bytes at the start of `bytes` have their whole processed
    /// output within its first `output_length` bytes.
    pub fn input_bytes_within(&self, bytes: &[u8], output_length: usize) -> usize {
        let mut produced = 0;
        let mut one = Vec::with_capacity(2);
        for (index, &byte) in bytes.iter().enumerate() {
            one.clear();
            self.process_output(&[byte], &mut one);
            produced += one.len();
            if produced > output_length {
                return index;
            }
        }
        bytes.len()
    }

    /// Appends `bytes` to `out` as the settings ask: with `OPOST`, `ONLCR`
    /// turns a newline into CR LF and `OCRNL` a carriage return into a
    /// newline; otherwise they pass unchanged.
    pub fn process_output(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let termios = &self.termios;
        if self.is_transparent {
            out.extend_from_slice(bytes);
            return;
        }
        let maps_newlines = termios.has_output(output::ONLCR);
        let maps_returns = termios.has_output(output::OCRNL);
        if !maps_newlines && !maps_returns {
            out.extend_from_slice(bytes);
            return;
        }
        for &byte in bytes {
            match byte {
                b'\n' if maps_newlines => out.extend_from_slice(b"\r\n"),
                b'\r' if maps_returns => out.push(b'\n'),
                _ => out.push(byte),
            }
        }
    }
}
