//! Output flow control of a [`Terminal`]: stopping and starting what it
//! shows (`IXON` with `VSTOP`/`VSTART`, `IXANY`, `TCXONC`).
//!
//! The [`LineDiscipline`](super::LineDiscipline) decides when output stops
//! and starts; this side makes it so. While output is stopped, writers wait
//! (`EAGAIN` when non-blocking) and nothing they write goes out, a
//! pseudo-terminal's [`ByteQueue`](super::ByteQueue) refuses bytes, and
//! echo is held back (up to [`HELD_ECHO_CAPACITY`]) until output starts
//! again. A master in packet mode reads `TIOCPKT_STOP` and `TIOCPKT_START`.

use alloc::vec::Vec;

use super::{Effects, Terminal, TerminalState, packet, termios};
use crate::vfs::{Caller, FsError};

/// Bytes of echo held back while output is stopped; more is dropped.
pub const HELD_ECHO_CAPACITY: usize = 4096;

impl Terminal {
    /// Whether output is stopped.
    pub fn is_output_stopped(&self) -> bool {
        self.state.lock().discipline.is_output_stopped()
    }

    /// `TCOOFF`: stops output until [`Terminal::resume_output`].
    pub fn suspend_output(&self) {
        let mut state = self.state.lock();
        if state.discipline.suspend_output() {
            self.follow_flow(&mut state, true);
        }
    }

    /// `TCOON`: starts output that `TCOOFF` stopped.
    pub fn resume_output(&self) {
        let echo = {
            let mut state = self.state.lock();
            if !state.discipline.resume_output() {
                return;
            }
            self.follow_flow(&mut state, false)
        };
        self.flow_started(&echo);
    }

    /// `TCIOFF`/`TCION`: sends the `VSTOP` or `VSTART` character (by its
    /// index in the control characters) to the other end, even while
    /// output is stopped; nothing when the character is disabled.
    pub fn send_flow_character(&self, index: usize) {
        let Some(byte) = self.termios().character(index) else { return };
        if let Some(screen) = &self.screen {
            screen.send_urgent(byte);
        } else if let Some(echo) = &self.echo {
            // The host's terminal is never stopped by us: one byte goes.
            let _ = echo.send(&[byte]);
        }
    }

    /// Takes what typed input did, with the state locked: records a flush
    /// for packet mode, follows a change of the flow, and adds to `echo`
    /// what to show now (echo made while output is stopped is held back).
    pub(super) fn take_effects(&self, state: &mut TerminalState, effects: &Effects, echo: &mut Vec<u8>) {
        if effects.is_input_flushed {
            Self::add_packet_status(state, packet::FLUSHREAD);
        }
        if let Some(is_stopped) = effects.flow {
            echo.extend(self.follow_flow(state, is_stopped));
        }
        if state.discipline.is_output_stopped() {
            let room = HELD_ECHO_CAPACITY.saturating_sub(state.held_echo.len());
            state.held_echo.extend_from_slice(&effects.echo[..effects.echo.len().min(room)]);
        } else {
            echo.extend_from_slice(&effects.echo);
        }
    }

    /// Makes a change of the flow, with the state locked: a
    /// pseudo-terminal's queue stops or starts and its master is told (in
    /// packet mode). Returns the held-back echo to show once output
    /// started.
    pub(super) fn follow_flow(&self, state: &mut TerminalState, is_stopped: bool) -> Vec<u8> {
        if let Some(screen) = &self.screen {
            screen.set_stopped(is_stopped);
        }
        Self::add_packet_status(state, if is_stopped { packet::STOP } else { packet::START });
        if is_stopped { Vec::new() } else { core::mem::take(&mut state.held_echo) }
    }

    /// After output started (the state unlocked): shows the held-back
    /// `echo` and wakes the writers and pollers that waited.
    pub(super) fn flow_started(&self, echo: &[u8]) {
        self.apply(echo, &[]);
        self.waiters.notify();
        self.notify_screen();
    }

    /// Waits until output runs; with `is_nonblocking`, `WouldBlock` at once
    /// instead. `Interrupted` by a signal; `Io` once the terminal hung up.
    pub(super) fn wait_for_output(&self, caller: &Caller<'_>, is_nonblocking: bool) -> Result<(), FsError> {
        let mut me = None;
        let result = loop {
            if self.is_hung_up() {
                break Err(FsError::Io);
            }
            if !self.is_output_stopped() {
                break Ok(());
            }
            if is_nonblocking {
                break Err(FsError::WouldBlock);
            }
            let thread = me.get_or_insert_with(|| caller.machine.current_thread());
            self.waiters.add(thread);
            if self.is_output_stopped()
                && let Err(error) = self.waiters.block(caller, thread)
            {
                break Err(error);
            }
        };
        if let Some(thread) = &me {
            self.waiters.remove(thread);
        }
        result
    }
}

/// Whether `termios` has Ctrl-S and Ctrl-Q stop and start output, which a
/// master in packet mode may then do itself (`TIOCPKT_DOSTOP`).
pub(super) fn has_standard_flow_control(termios: &termios::Termios) -> bool {
    termios.has_input(termios::input::IXON)
        && termios.characters[termios::character::VSTOP] == 0x13
        && termios.characters[termios::character::VSTART] == 0x11
}
