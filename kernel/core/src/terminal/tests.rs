use std::sync::Arc;
use std::vec::Vec;

use super::termios::{Termios, character, input, local, output};
use super::*;
use crate::fake::FakeMachine;
use crate::streams::testing::FakeChannel;

/// Reads everything readable now, a read at a time.
fn read_all(discipline: &mut LineDiscipline) -> Vec<Vec<u8>> {
    let mut reads = Vec::new();
    let mut buffer = [0u8; 256];
    loop {
        match discipline.read(&mut buffer) {
            Read::Bytes(length) => reads.push(buffer[..length].to_vec()),
            Read::EndOfFile => reads.push(Vec::new()),
            Read::Empty => return reads,
        }
    }
}

#[test]
fn canonical_mode_edits_lines_and_echoes_them() {
    let mut discipline = LineDiscipline::new();
    let effects = discipline.receive(b"helo\x7flo wrold\x17world\r");
    assert_eq!(read_all(&mut discipline), [b"hello world\n".to_vec()]);
    // Echo: the characters, erasures rubbed out, CR LF for the newline.
    let expected: &[u8] = b"helo\x08 \x08lo wrold\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08world\r\n";
    assert_eq!(effects.echo, expected);
    assert!(effects.signals.is_empty());
}

#[test]
fn a_line_is_readable_only_once_finished() {
    let mut discipline = LineDiscipline::new();
    discipline.receive(b"partial");
    assert!(!discipline.is_readable());
    assert_eq!(discipline.read(&mut [0; 8]), Read::Empty);
    discipline.receive(b" line\nsecond\n");
    assert_eq!(read_all(&mut discipline), [b"partial line\n".to_vec(), b"second\n".to_vec()]);
}

#[test]
fn kill_erases_the_line_and_control_characters_echo_as_carets() {
    let mut discipline = LineDiscipline::new();
    let effects = discipline.receive(b"ab\x01\x15c\n");
    assert_eq!(read_all(&mut discipline), [b"c\n".to_vec()]);
    // ^A takes two columns, so it takes two rub-outs.
    let rub_out = b"\x08 \x08";
    let mut expected = b"ab^A".to_vec();
    for _ in 0..4 {
        expected.extend_from_slice(rub_out);
    }
    expected.extend_from_slice(b"c\r\n");
    assert_eq!(effects.echo, expected);
}

#[test]
fn end_of_file_finishes_a_line_or_reads_as_the_end() {
    let mut discipline = LineDiscipline::new();
    discipline.receive(b"abc\x04\x04");
    assert_eq!(read_all(&mut discipline), [b"abc".to_vec(), Vec::new()]);
}

#[test]
fn interrupt_quit_and_suspend_become_signals_and_drop_the_line() {
    let mut discipline = LineDiscipline::new();
    let effects = discipline.receive(b"sleep 100\x03");
    assert_eq!(effects.signals, [2]);
    assert!(effects.echo.ends_with(b"^C"));
    discipline.receive(b"\n");
    assert_eq!(read_all(&mut discipline), [b"\n".to_vec()], "the interrupted line is gone");
    assert_eq!(discipline.receive(b"\x1c").signals, [3]);
    // Suspend stops the foreground job.
    let suspend = discipline.receive(b"\x1a");
    assert_eq!(suspend.signals, [20]);
    assert!(suspend.echo.ends_with(b"^Z"));
    let mut without_signals = *discipline.termios();
    without_signals.local_flags &= !local::ISIG;
    discipline.set_termios(without_signals, false);
    assert!(discipline.receive(b"\x03").signals.is_empty());
}

#[test]
fn raw_mode_passes_every_byte_at_once() {
    let mut discipline = LineDiscipline::new();
    let mut raw = *discipline.termios();
    raw.local_flags &= !(local::ICANON | local::ECHO | local::ISIG | local::IEXTEN);
    raw.input_flags &= !(input::ICRNL | input::IXON);
    raw.output_flags &= !output::OPOST;
    discipline.set_termios(raw, false);
    let bytes: Vec<u8> = (0..=255u8).collect();
    let effects = discipline.receive(&bytes);
    assert!(effects.echo.is_empty() && effects.signals.is_empty());
    assert_eq!(read_all(&mut discipline).concat(), bytes);
    let mut out = Vec::new();
    discipline.process_output(b"a\nb\r", &mut out);
    assert_eq!(out, b"a\nb\r", "no output processing without OPOST");
}

#[test]
fn leaving_canonical_mode_makes_the_typed_line_readable() {
    let mut discipline = LineDiscipline::new();
    discipline.receive(b"one\ntw");
    let mut raw = *discipline.termios();
    raw.local_flags &= !local::ICANON;
    discipline.set_termios(raw, false);
    assert_eq!(read_all(&mut discipline).concat(), b"one\ntw");
    discipline.receive(b"x");
    discipline.set_termios(raw, true);
    assert!(!discipline.is_readable(), "TCSETSF discards input");
}

#[test]
fn reads_wait_as_vmin_and_vtime_say() {
    let mut discipline = LineDiscipline::new();
    assert_eq!(discipline.waiting(), Waiting::ForInput);
    let mut raw = *discipline.termios();
    raw.local_flags &= !local::ICANON;
    raw.characters[character::VMIN] = 0;
    raw.characters[character::VTIME] = 0;
    discipline.set_termios(raw, false);
    assert_eq!(discipline.waiting(), Waiting::Never);
    raw.characters[character::VTIME] = 5;
    discipline.set_termios(raw, false);
    assert_eq!(discipline.waiting(), Waiting::AtMost(500_000_000));
}

#[test]
fn output_is_translated_only_as_asked() {
    let discipline = LineDiscipline::new();
    let mut out = Vec::new();
    discipline.process_output(b"one\ntwo\r\n", &mut out);
    assert_eq!(out, b"one\r\ntwo\r\r\n");
    assert_eq!(discipline.input_bytes_within(b"a\nb", 2), 1, "the newline's CR LF does not fit");
    assert_eq!(discipline.input_bytes_within(b"a\nb", 3), 2);
    let mut transparent = LineDiscipline::transparent();
    out.clear();
    transparent.process_output(b"one\n", &mut out);
    assert_eq!(out, b"one\n");
    let effects = transparent.receive(b"typed line\n\x03");
    assert!(effects.echo.is_empty() && effects.signals.is_empty(), "the host's terminal did that");
    assert_eq!(read_all(&mut transparent).concat(), b"typed line\n\x03");
}

#[test]
fn input_stops_at_its_capacity() {
    let mut discipline = LineDiscipline::new();
    discipline.receive(&[b'x'; INPUT_CAPACITY + 100]);
    assert!(discipline.room() > 0, "a full line still takes a newline or an erase");
    discipline.receive(b"\n");
    assert_eq!(discipline.room(), 0, "an unread full line fills the input");
    let line = read_all(&mut discipline).concat();
    assert_eq!(line.len(), INPUT_CAPACITY);
    assert!(line.ends_with(b"\n"));
    let mut raw = *discipline.termios();
    raw.local_flags &= !local::ICANON;
    discipline.set_termios(raw, false);
    discipline.receive(&[b'y'; INPUT_CAPACITY + 100]);
    assert_eq!((discipline.room(), discipline.readable_bytes()), (0, INPUT_CAPACITY));
}

#[test]
fn termios_encodes_as_linux_lays_it_out() {
    let termios = Termios::default();
    let bytes = termios.encode();
    assert_eq!(&bytes[..4], &0o62400u32.to_le_bytes()[..], "ICRNL IXON IMAXBEL IUTF8");
    assert_eq!(&bytes[4..8], &5u32.to_le_bytes()[..], "OPOST ONLCR");
    assert_eq!(bytes[17 + character::VINTR], 3);
    assert_eq!(bytes[17 + character::VMIN], 1);
    assert_eq!(Termios::decode(&bytes), termios);
    let window = termios::WindowSize { rows: 24, columns: 80, ..Default::default() };
    assert_eq!(window.encode(), [24, 0, 80, 0, 0, 0, 0, 0]);
}

fn terminal(mode: TerminalMode) -> (Arc<FakeChannel>, Arc<FakeChannel>, Arc<Terminal>) {
    let input = Arc::new(FakeChannel::default());
    let output = Arc::new(FakeChannel::default());
    let window = termios::WindowSize { rows: 24, columns: 80, ..Default::default() };
    let terminal = Terminal::new(
        Some(input.clone() as Arc<dyn HostChannel>),
        Some(output.clone() as Arc<dyn HostChannel>),
        mode,
        window,
        crate::streams::Foreground::new(),
    );
    (input, output, terminal)
}

#[test]
fn a_terminal_echoes_typed_lines_and_translates_output() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (input, output, terminal) = terminal(TerminalMode::Guest);
    input.push(b"echo hi\r");
    assert!(terminal.pump());
    assert_eq!(output.sent_text(), "echo hi\r\n");
    let mut buffer = [0u8; 64];
    assert_eq!(terminal.read(&caller, &mut buffer, false), Ok(8));
    assert_eq!(&buffer[..8], b"echo hi\n");
    let channel: Arc<dyn HostChannel> = output.clone();
    assert_eq!(terminal.write(&caller, &channel, b"hi\n", false), Ok(3));
    assert!(output.sent_text().ends_with("hi\r\n"));
    assert_eq!(terminal.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
    input.close();
    assert_eq!(terminal.read(&caller, &mut buffer, false), Ok(0), "the end of the host's input");
}

#[test]
fn a_host_edited_terminal_passes_bytes_through() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (input, output, terminal) = terminal(TerminalMode::Host);
    input.push(b"line\n");
    let mut buffer = [0u8; 64];
    assert_eq!(terminal.read(&caller, &mut buffer, false), Ok(5));
    assert_eq!(output.sent_text(), "", "the host's terminal echoed already");
    let channel: Arc<dyn HostChannel> = output.clone();
    terminal.write(&caller, &channel, b"a\nb", false).unwrap();
    assert_eq!(output.sent_text(), "a\nb");
    assert!(terminal.termios().has_local(local::ICANON), "the settings still read as a terminal's");
}

#[test]
fn a_write_the_host_cannot_take_reports_what_went() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (_, output, terminal) = terminal(TerminalMode::Guest);
    *output.is_full.lock().unwrap() = true;
    let channel: Arc<dyn HostChannel> = output.clone();
    assert_eq!(terminal.write(&caller, &channel, b"x\n", true), Err(FsError::WouldBlock));
    *output.is_full.lock().unwrap() = false;
    output.close();
    assert_eq!(terminal.write(&caller, &channel, b"x\n", false), Err(FsError::BrokenPipe));
}

#[test]
fn flow_control_characters_stop_and_start_output() {
    let mut discipline = LineDiscipline::new();
    let effects = discipline.receive(b"\x13");
    assert_eq!(effects.flow, Some(true));
    assert!(discipline.is_output_stopped());
    assert_eq!(discipline.receive(b"\x13").flow, None, "stopping again changes nothing");
    assert_eq!(discipline.receive(b"a").flow, None, "without IXANY other characters do not start it");
    assert_eq!(discipline.receive(b"\x11").flow, Some(false));
    assert!(!discipline.is_output_stopped());
    assert_eq!(read_all(&mut discipline), Vec::<Vec<u8>>::new(), "flow characters are no input");
    discipline.receive(b"\n");
    assert_eq!(read_all(&mut discipline), [b"a\n".to_vec()]);

    let mut termios = *discipline.termios();
    termios.input_flags |= input::IXANY;
    discipline.set_termios(termios, false);
    discipline.receive(b"\x13");
    let effects = discipline.receive(b"x");
    assert_eq!(effects.flow, Some(false), "with IXANY any character starts output");
    assert_eq!(effects.echo, b"x", "and is taken as input");

    discipline.receive(b"\x13");
    termios.input_flags &= !input::IXON;
    assert!(discipline.set_termios(termios, false), "turning IXON off starts output");
    assert!(!discipline.is_output_stopped());
}

#[test]
fn output_stopped_by_a_request_starts_only_by_a_request() {
    let mut discipline = LineDiscipline::new();
    let mut termios = *discipline.termios();
    termios.input_flags |= input::IXANY;
    discipline.set_termios(termios, false);
    assert!(discipline.suspend_output());
    assert!(!discipline.suspend_output());
    assert_eq!(discipline.receive(b"\x11x\x03").flow, None, "START, IXANY and signals leave it stopped");
    assert!(discipline.is_output_stopped());
    assert!(discipline.resume_output());
    assert!(!discipline.is_output_stopped());
    assert!(!discipline.resume_output());

    discipline.receive(b"\x13");
    assert_eq!(discipline.receive(b"\x03").flow, Some(false), "a signal character starts output");
}
