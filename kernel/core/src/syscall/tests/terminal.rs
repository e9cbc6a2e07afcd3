//! Terminal requests, standard streams and credentials through system calls.

use std::sync::Arc;

use super::*;
use crate::process::{Credentials, ProcessFiles};
use crate::streams::testing::FakeChannel;
use crate::streams::{Channels, HostChannel, StandardStreams, StreamSettings};
use crate::terminal::termios::{TERMIOS_SIZE, Termios, WindowSize, local};

/// A process whose standard output is a terminal and whose standard input
/// and error are pipes to the host; the host's channels come back too.
fn process_with_streams() -> (FakeMachine, Arc<Process>, [Arc<FakeChannel>; 3]) {
    let machine = FakeMachine::new();
    for page in 0..4 {
        machine.map_page(BUFFER + page * 4096, Rights::READ_WRITE).unwrap();
    }
    let channels: [Arc<FakeChannel>; 3] = core::array::from_fn(|_| Arc::new(FakeChannel::default()));
    let vfs = crate::fs::testing::standard(&machine);
    let console = ProcessFiles::console(&vfs, &machine).unwrap();
    let streams = StandardStreams::connect(
        Channels {
            streams: core::array::from_fn(|index| Some(channels[index].clone() as Arc<dyn HostChannel>)),
            control: None,
        },
        StreamSettings {
            terminals: [false, true, false],
            window: WindowSize { rows: 50, columns: 120, ..Default::default() },
            ..StreamSettings::default()
        },
        &console,
    );
    let files = ProcessFiles::with_standard_files(vfs, &machine, "/", streams.files()).unwrap();
    let network = crate::net::Network::new(None, &crate::net::Settings::default(), 1, 0);
    let process = Process::new(
        "/app".into(),
        crate::fake::address_space(&machine),
        files,
        network,
        crate::random::Random::seeded(&machine),
        0,
    );
    (machine, process, channels)
}

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;

#[test]
fn only_terminal_streams_answer_terminal_requests() {
    let (machine, process, _) = process_with_streams();
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, TCGETS, BUFFER, 0, 0, 0]), 0);
    let mut bytes = [0u8; TERMIOS_SIZE];
    machine.read_memory(BUFFER, &mut bytes).unwrap();
    assert_eq!(Termios::decode(&bytes), Termios::default());
    for descriptor in [0, 2] {
        let result = call(&machine, &process, nr::IOCTL, [descriptor, TCGETS, BUFFER, 0, 0, 0]);
        assert_eq!(result, Errno::ENOTTY.to_return(), "descriptor {descriptor} is a pipe on the host");
    }
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, TIOCGWINSZ, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER) & 0xffff_ffff, (120 << 16) | 50);
    machine
        .write_memory(BUFFER, &WindowSize { rows: 10, columns: 20, ..Default::default() }.encode())
        .unwrap();
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, TIOCSWINSZ, BUFFER, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, TIOCGWINSZ, BUFFER + 64, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 64) & 0xffff_ffff, (20 << 16) | 10);
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, 0x1234, BUFFER, 0, 0, 0]), Errno::ENOTTY.to_return());
}

#[test]
fn terminal_settings_change_what_writes_do() {
    let (machine, process, channels) = process_with_streams();
    machine.write_memory(BUFFER + 0x100, b"one\n").unwrap();
    assert_eq!(call(&machine, &process, nr::WRITE, [1, BUFFER + 0x100, 4, 0, 0, 0]), 4);
    assert_eq!(channels[1].sent_text(), "one\r\n");
    let defaults = Termios::default();
    let raw = Termios { output_flags: 0, local_flags: defaults.local_flags & !local::ICANON, ..defaults };
    machine.write_memory(BUFFER, &raw.encode()).unwrap();
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, TCSETS, BUFFER, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::WRITE, [1, BUFFER + 0x100, 4, 0, 0, 0]), 4);
    assert_eq!(channels[1].sent_text(), "one\r\none\n");
    assert_eq!(call(&machine, &process, nr::WRITE, [2, BUFFER + 0x100, 4, 0, 0, 0]), 4);
    assert_eq!(channels[2].sent_text(), "one\n", "standard error is no terminal: no translation");
}

#[test]
fn standard_input_from_the_host_reads_and_counts_its_bytes() {
    let (machine, process, channels) = process_with_streams();
    channels[0].push(b"abc");
    assert_eq!(call(&machine, &process, nr::IOCTL, [0, FIONREAD, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER) & 0xffff_ffff, 3);
    assert_eq!(call(&machine, &process, nr::READ, [0, BUFFER, 16, 0, 0, 0]), 3);
    channels[0].close();
    assert_eq!(call(&machine, &process, nr::READ, [0, BUFFER, 16, 0, 0, 0]), 0);
}

#[test]
fn a_write_to_a_closed_stream_raises_sigpipe() {
    let (machine, process, channels) = process_with_streams();
    channels[2].close();
    machine.write_memory(BUFFER, b"x").unwrap();
    // SIGPIPE's default action ends the process, as on Linux.
    assert_eq!(outcome(&machine, &process, nr::WRITE, [2, BUFFER, 1, 0, 0, 0]), Outcome::ExitThread);
    assert_eq!(process.exit_status(), Some(128 + 13));
}

#[test]
fn credentials_answer_the_identity_calls() {
    let (machine, process) = setup();
    for number in [nr::GETUID, nr::GETEUID, nr::GETGID, nr::GETEGID] {
        assert_eq!(call(&machine, &process, number, [0; 6]), 0, "root by default");
    }
    process.state.lock().credentials = Credentials {
        real_user: 1000,
        effective_user: 1001,
        saved_user: 1002,
        real_group: 100,
        effective_group: 101,
        saved_group: 102,
        groups: vec![100, 27],
        ..Credentials::of(1000, 100)
    };
    assert_eq!(call(&machine, &process, nr::GETUID, [0; 6]), 1000);
    assert_eq!(call(&machine, &process, nr::GETEUID, [0; 6]), 1001);
    assert_eq!(call(&machine, &process, nr::GETGID, [0; 6]), 100);
    assert_eq!(call(&machine, &process, nr::GETEGID, [0; 6]), 101);
    assert_eq!(call(&machine, &process, nr::GETRESUID, [BUFFER, BUFFER + 4, BUFFER + 8, 0, 0, 0]), 0);
    let mut ids = [0u8; 12];
    machine.read_memory(BUFFER, &mut ids).unwrap();
    assert_eq!(ids, [232, 3, 0, 0, 233, 3, 0, 0, 234, 3, 0, 0]);
    assert_eq!(call(&machine, &process, nr::GETRESGID, [BUFFER, BUFFER + 4, BUFFER + 8, 0, 0, 0]), 0);
    machine.read_memory(BUFFER, &mut ids).unwrap();
    assert_eq!(ids, [100, 0, 0, 0, 101, 0, 0, 0, 102, 0, 0, 0]);
    assert_eq!(call(&machine, &process, nr::GETGROUPS, [0, 0, 0, 0, 0, 0]), 2);
    assert_eq!(call(&machine, &process, nr::GETGROUPS, [1, BUFFER, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::GETGROUPS, [8, BUFFER, 0, 0, 0, 0]), 2);
    assert_eq!(read_u64(&machine, BUFFER), 100 | 27 << 32);
    assert_eq!(
        call(&machine, &process, nr::GETRESUID, [0x9000_0000, BUFFER, BUFFER, 0, 0, 0]),
        Errno::EFAULT.to_return()
    );
}
