use std::sync::Arc;

use super::*;
use crate::fake::FakeMachine;
use crate::terminal::packet;
use crate::terminal::termios::local;

fn raw(terminal: &Terminal) {
    let mut termios = terminal.termios();
    termios.local_flags &= !(local::ICANON | local::ECHO | local::ISIG);
    terminal.set_termios(termios, false);
}

/// A pair from `table`, unlocked, with one open slave file.
fn pair(table: &PseudoTerminals, caller: &Caller<'_>) -> (Arc<PseudoTerminal>, Arc<TerminalFile>) {
    let master = table.open_master((1000, 5)).unwrap();
    assert_eq!(master.open_slave(caller, 0).unwrap_err(), FsError::Io, "a new slave is locked");
    master.set_locked(false);
    let slave = master.open_slave(caller, 0).unwrap();
    (master, slave)
}

#[test]
fn masters_take_the_lowest_free_number_until_both_sides_close() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (first, first_slave) = pair(&table, &caller);
    let (second, _second_slave) = pair(&table, &caller);
    assert_eq!((first.index(), second.index()), (0, 1));
    assert_eq!(table.names(), [0, 1]);
    drop(first);
    assert_eq!(table.names(), [1], "the name goes with the master");
    let third = table.open_master((0, 0)).unwrap();
    assert_eq!(third.index(), 2, "number 0 is taken while its slave is open");
    drop(first_slave);
    let fourth = table.open_master((0, 0)).unwrap();
    assert_eq!(fourth.index(), 0);
    assert_eq!(fourth.terminal().owner(), (0, 0));
    assert_eq!(second.terminal().owner(), (1000, 5));
}

#[test]
fn the_master_types_lines_and_reads_their_echo_and_the_output() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    assert_eq!(master.write(&caller, b"ab\x7fc\n", true), Ok(5));
    let mut buffer = [0u8; 64];
    assert_eq!(slave.read(&caller, &mut buffer, true), Ok(3));
    assert_eq!(&buffer[..3], b"ac\n");
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(8));
    assert_eq!(&buffer[..8], b"ab\x08 \x08c\r\n");
    assert_eq!(slave.write(&caller, b"x\ny", true), Ok(3));
    assert_eq!(master.readable_bytes(), 4);
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(4));
    assert_eq!(&buffer[..4], b"x\r\ny");
    assert_eq!(master.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
}

#[test]
fn full_buffers_make_writers_wait() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    raw(slave.terminal());
    let block = [b'z'; 1000];
    let mut typed = 0;
    while let Ok(length) = master.write(&caller, &block, true) {
        typed += length;
    }
    assert_eq!(typed, crate::terminal::INPUT_CAPACITY);
    assert_eq!(master.poll() & events::POLLOUT, 0);
    let mut buffer = [0u8; 100];
    assert_eq!(slave.read(&caller, &mut buffer, true), Ok(100));
    assert_ne!(master.poll() & events::POLLOUT, 0, "a read makes room");
    let mut shown = 0;
    while let Ok(length) = slave.write(&caller, &block, true) {
        shown += length;
    }
    assert_eq!(shown, SCREEN_CAPACITY);
}

#[test]
fn closing_the_master_hangs_the_slave_up() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    master.write(&caller, b"unread\n", true).unwrap();
    drop(master);
    let mut buffer = [0u8; 16];
    assert_eq!(slave.read(&caller, &mut buffer, false), Ok(0), "the input went with the hangup");
    assert_eq!(slave.write(&caller, b"x", false), Err(FsError::Io));
    assert_ne!(slave.poll() & events::POLLHUP, 0);
}

#[test]
fn the_master_reads_what_is_left_then_eio_once_the_slave_closed() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    assert_eq!(master.poll() & events::POLLHUP, 0);
    slave.write(&caller, b"bye", false).unwrap();
    drop(slave);
    assert_ne!(master.poll() & events::POLLHUP, 0);
    let mut buffer = [0u8; 16];
    assert_eq!(master.read(&caller, &mut buffer, false), Ok(3));
    assert_eq!(master.read(&caller, &mut buffer, false), Err(FsError::Io));
}

#[test]
fn packet_mode_puts_a_status_byte_before_data_and_reports_flushes_and_flow() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    let terminal = slave.terminal().clone();
    terminal.flush_input();
    assert!(!terminal.has_packet_status(), "nothing is reported outside packet mode");
    terminal.set_packet_mode(true);
    slave.write(&caller, b"d", false).unwrap();
    let mut buffer = [0u8; 16];
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(2));
    assert_eq!(&buffer[..2], &[0, b'd']);
    terminal.flush_input();
    assert_ne!(master.poll() & events::POLLPRI, 0);
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(1));
    assert_eq!(buffer[0], packet::FLUSHREAD);
    // Ctrl-S stops output, Ctrl-Q starts it: the later one counts.
    master.write(&caller, b"\x13\x11", true).unwrap();
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(1));
    assert_eq!(buffer[0], packet::START);
    let mut termios = terminal.termios();
    termios.input_flags &= !crate::terminal::termios::input::IXON;
    terminal.set_termios(termios, false);
    assert_eq!(terminal.take_packet_status(), packet::NOSTOP);
}

#[test]
fn a_window_size_on_the_master_is_the_slaves() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    let window = crate::terminal::termios::WindowSize { rows: 40, columns: 120, ..Default::default() };
    master.terminal().set_window_size(window);
    assert_eq!(slave.terminal().window_size(), window);
    assert_eq!(master.termios().local_flags, 0, "the master's own settings are raw");
}

#[test]
fn the_terminal_group_comes_from_the_group_file() {
    let groups = b"root:x:0:\ntty:x:5:\nusers:x:100:alice\n";
    assert_eq!(group_number(groups, "tty"), Some(5));
    assert_eq!(group_number(groups, "users"), Some(100));
    assert_eq!(group_number(groups, "tt"), None);
    assert_eq!(group_number(b"tty:x:five:\n", "tty"), None);
}

#[test]
fn stopped_output_holds_the_slaves_writes_and_echo_back() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (master, slave) = pair(&table, &caller);
    let terminal = slave.terminal().clone();
    let mut buffer = [0u8; 16];
    master.write(&caller, b"\x13", true).unwrap();
    assert!(terminal.is_output_stopped());
    assert_eq!(slave.write(&caller, b"out", true), Err(FsError::WouldBlock));
    assert_eq!(slave.poll() & events::POLLOUT, 0);
    master.write(&caller, b"ab", true).unwrap();
    assert_eq!(master.read(&caller, &mut buffer, true), Err(FsError::WouldBlock), "echo waits");
    master.write(&caller, b"\x11", true).unwrap();
    assert_ne!(slave.poll() & events::POLLOUT, 0);
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(2));
    assert_eq!(&buffer[..2], b"ab");
    assert_eq!(slave.write(&caller, b"out", true), Ok(3));
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(3));

    terminal.suspend_output();
    master.write(&caller, b"\x11", true).unwrap();
    assert!(terminal.is_output_stopped(), "START does not lift TCOOFF");
    terminal.send_flow_character(crate::terminal::termios::character::VSTOP);
    assert_eq!(master.read(&caller, &mut buffer, true), Ok(1), "TCIOFF sends STOP while stopped");
    assert_eq!(buffer[0], 0x13);
    terminal.resume_output();
    assert_eq!(slave.write(&caller, b"on", true), Ok(2));
}

#[test]
fn chmod_and_chown_change_the_slaves_node() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = PseudoTerminals::new();
    let (_master, slave) = pair(&table, &caller);
    let terminal = slave.terminal();
    let metadata = slave.metadata();
    assert_eq!((metadata.permissions, metadata.owner_user, metadata.owner_group), (0o620, 1000, 5));
    terminal.set_permissions(0o600);
    terminal.set_owner(None, Some(7));
    let metadata = slave.metadata();
    assert_eq!((metadata.permissions, metadata.owner_user, metadata.owner_group), (0o600, 1000, 7));
}
