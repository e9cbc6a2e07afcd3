use std::sync::Arc;
use std::vec::Vec;

use super::testing::FakeChannel;
use super::*;
use crate::fake::FakeMachine;
use crate::vfs::FileObject;

struct Host {
    input: Arc<FakeChannel>,
    output: Arc<FakeChannel>,
    error: Arc<FakeChannel>,
    control: Arc<FakeChannel>,
}

fn connect(machine: &FakeMachine, terminals: [bool; 3], mode: TerminalMode) -> (Host, StandardStreams) {
    let host = Host {
        input: Arc::new(FakeChannel::default()),
        output: Arc::new(FakeChannel::default()),
        error: Arc::new(FakeChannel::default()),
        control: Arc::new(FakeChannel::default()),
    };
    let channels = Channels {
        streams: [
            Some(host.input.clone() as Arc<dyn HostChannel>),
            Some(host.output.clone() as Arc<dyn HostChannel>),
            Some(host.error.clone() as Arc<dyn HostChannel>),
        ],
        control: Some(host.control.clone() as Arc<dyn HostChannel>),
    };
    let vfs = crate::fs::testing::standard(machine);
    let console = crate::process::ProcessFiles::console(&vfs, machine).unwrap();
    let settings = StreamSettings {
        terminals,
        mode,
        window: WindowSize { rows: 24, columns: 80, ..Default::default() },
    };
    (host, StandardStreams::connect(channels, settings, &console))
}

fn is_terminal(file: &OpenFile) -> bool {
    file.special().is_some_and(|special| special.as_any().is::<TerminalFile>())
}

#[test]
fn streams_that_are_not_terminals_behave_as_pipes() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (host, streams) = connect(&machine, [false; 3], TerminalMode::Guest);
    let [input, output, error] = streams.files();
    assert!(!is_terminal(&input) && !is_terminal(&output));
    assert_eq!(output.metadata(&caller).unwrap().file_type, FileType::Fifo);
    assert!(streams.terminal().is_none());
    let binary: Vec<u8> = (0..=255u8).collect();
    assert_eq!(output.write(&caller, &binary), Ok(256));
    assert_eq!(error.write(&caller, b"oops\n"), Ok(5));
    assert_eq!(*host.output.outgoing.lock().unwrap(), binary, "no translation");
    assert_eq!(host.error.sent_text(), "oops\n");
    host.input.push(b"one\ntwo\n");
    let mut buffer = [0u8; 64];
    assert_eq!(input.read(&caller, &mut buffer), Ok(8));
    input.set_status_flags(crate::vfs::file::flags::O_NONBLOCK);
    assert_eq!(input.read(&caller, &mut buffer), Err(FsError::WouldBlock));
    host.input.close();
    assert_eq!(input.read(&caller, &mut buffer), Ok(0));
    assert!(!input.is_writable() && !output.is_readable());
}

#[test]
fn an_output_the_host_closed_is_a_broken_pipe() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (host, streams) = connect(&machine, [false; 3], TerminalMode::Guest);
    host.output.close();
    assert_eq!(streams.files()[1].write(&caller, b"lost"), Err(FsError::BrokenPipe));
    assert_eq!(streams.files()[1].poll() & events::POLLERR, events::POLLERR);
}

#[test]
fn terminal_streams_share_one_terminal() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (host, streams) = connect(&machine, [true, true, false], TerminalMode::Guest);
    let [input, output, error] = streams.files();
    assert!(is_terminal(&input) && is_terminal(&output) && !is_terminal(&error));
    assert_eq!(output.metadata(&caller).unwrap().file_type, FileType::CharacterDevice);
    host.input.push(b"ls\r");
    assert!(streams.serve());
    assert_eq!(host.output.sent_text(), "ls\r\n", "echo goes to standard output");
    output.write(&caller, b"a\n").unwrap();
    input.write(&caller, b"b\n").unwrap();
    assert!(host.output.sent_text().ends_with("a\r\nb\r\n"));
    error.write(&caller, b"c\n").unwrap();
    assert_eq!(host.error.sent_text(), "c\n", "standard error is not the terminal here");
    let mut buffer = [0u8; 8];
    assert_eq!(input.read(&caller, &mut buffer), Ok(3));
}

#[test]
fn a_terminal_only_the_host_has_falls_back_when_the_channel_is_missing() {
    let machine = FakeMachine::new();
    let vfs = crate::fs::testing::standard(&machine);
    let console = crate::process::ProcessFiles::console(&vfs, &machine).unwrap();
    let output = Arc::new(FakeChannel::default());
    let channels = Channels { streams: [None, Some(output as Arc<dyn HostChannel>), None], control: None };
    let settings = StreamSettings { terminals: [true, true, true], ..StreamSettings::default() };
    let streams = StandardStreams::connect(channels, settings, &console);
    let [input, output, error] = streams.files();
    assert!(Arc::ptr_eq(&input, &console) && Arc::ptr_eq(&error, &console));
    assert!(is_terminal(&output));
    assert!(!streams.serve(), "nothing to type into, no control channel");
}

fn process_with(machine: &FakeMachine, streams: &StandardStreams) -> Arc<crate::process::Process> {
    let vfs = crate::fs::testing::standard(machine);
    let files =
        crate::process::ProcessFiles::with_standard_files(vfs, machine, "/", streams.files()).unwrap();
    let network = crate::net::Network::new(None, &crate::net::Settings::default(), 1, 0);
    let process = crate::process::Process::new(
        std::string::String::from("/app"),
        crate::fake::address_space(machine),
        files,
        network,
        crate::random::Random::seeded(machine),
        0,
    );
    process.new_thread();
    process
}

fn pending(process: &crate::process::Process) -> u64 {
    crate::signal::pending_set(&process.thread(process.pid).unwrap())
}

#[test]
fn ctrl_c_and_the_hosts_signals_reach_the_program() {
    let machine = FakeMachine::new();
    let (host, streams) = connect(&machine, [true, true, true], TerminalMode::Guest);
    // A signal before the program runs waits for it.
    let mut buffer = [0u8; rosv_abi::streams::CONTROL_MESSAGE_MAX];
    host.control.push(ControlMessage::Signal(15).encode(&mut buffer));
    assert!(streams.serve());
    let process = process_with(&machine, &streams);
    streams.foreground().set(Some(&process));
    assert_eq!(pending(&process), 1 << 14, "SIGTERM");
    host.input.push(b"\x03");
    streams.serve();
    assert_eq!(pending(&process), 1 << 14 | 1 << 1, "and SIGINT");
    assert!(host.output.sent_text().ends_with("^C"));
}

#[test]
fn a_resize_changes_the_window_and_sends_sigwinch_to_a_handler() {
    let machine = FakeMachine::new();
    let (host, streams) = connect(&machine, [true, true, true], TerminalMode::Guest);
    let process = process_with(&machine, &streams);
    streams.foreground().set(Some(&process));
    let mut buffer = [0u8; rosv_abi::streams::CONTROL_MESSAGE_MAX];
    host.control.push(ControlMessage::Resize { columns: 132, rows: 43 }.encode(&mut buffer));
    streams.serve();
    let window = streams.terminal().unwrap().window_size();
    assert_eq!((window.columns, window.rows), (132, 43));
    assert_eq!(pending(&process), 0, "SIGWINCH is ignored by default, so it vanishes");
    process.signal_handlers.with(|handlers| handlers[27].handler = 0x40_1000);
    host.control.push(ControlMessage::Resize { columns: 100, rows: 30 }.encode(&mut buffer));
    streams.serve();
    assert_eq!(pending(&process), 1 << 27);
}

#[test]
fn a_restore_notice_reaches_its_handler_once_one_is_set() {
    let machine = FakeMachine::new();
    let (host, streams) = connect(&machine, [false; 3], TerminalMode::Guest);
    let notice = rosv_abi::streams::RestoreNotice {
        realtime_ns: 1_900_000_000_000_000_000,
        entropy: [7; 32],
        instance_id: [9; 16],
    };
    let mut buffer = [0u8; rosv_abi::streams::CONTROL_MESSAGE_MAX];
    // Without a handler the notice is dropped (and said so).
    host.control.push(ControlMessage::Restore(notice).encode(&mut buffer));
    assert!(streams.serve());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = received.clone();
    streams.on_restore(Box::new(move |notice| into.lock().unwrap().push(*notice)));
    host.control.push(ControlMessage::Restore(notice).encode(&mut buffer));
    streams.serve();
    assert_eq!(*received.lock().unwrap(), [notice]);
}

#[test]
fn flushing_waits_for_the_outputs() {
    let machine = FakeMachine::new();
    let (_, streams) = connect(&machine, [false; 3], TerminalMode::Guest);
    assert!(streams.flush(&machine, 1_000_000));
}

#[test]
fn standard_files_are_descriptors_zero_to_two() {
    let machine = FakeMachine::new();
    let (_, streams) = connect(&machine, [false, true, false], TerminalMode::Host);
    let process = process_with(&machine, &streams);
    for (descriptor, file) in streams.files().iter().enumerate() {
        let installed = process.descriptors.with(|table| table.get(descriptor as u64).unwrap().clone());
        assert!(Arc::ptr_eq(&installed.file, file), "{descriptor}");
        assert!(matches!(installed.file.object(), FileObject::Special(_)));
    }
}
