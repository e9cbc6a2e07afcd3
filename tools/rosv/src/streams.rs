//! The application's standard streams on the host side.
//!
//! [`HostStreams::detect`] finds which of rosv's standard streams are
//! terminals and the window size, which the kernel learns through its
//! options ([`HostStreams::kernel_options`]). On QEMU every stream has its
//! own virtio-console port backed by a Unix socket rosv listens on
//! ([`PortSockets`]); once QEMU has connected, a [`Relay`] copies bytes
//! between those sockets and rosv's own standard streams and sends the
//! guest [`ControlMessage`]s. [`RawMode`] puts the host's terminal in raw
//! mode for `-t` and restores it when dropped.
//!
//! Bytes pass unchanged in both directions: any translation a terminal
//! needs is the guest's line discipline's (`-t`) or the host terminal's
//! own (without `-t`).

use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rosv_abi::streams::{
    CONTROL_MESSAGE_MAX, CONTROL_PORT, ControlMessage, STDERR_PORT, STDIN_PORT, STDOUT_PORT,
    input_frame_header, input_kind,
};

/// The ports QEMU gets, in the order [`PortSockets`] keeps them: the
/// socket's file name and the port's name in the guest.
pub const PORTS: [(&str, &str); 4] =
    [("stdin", STDIN_PORT), ("stdout", STDOUT_PORT), ("stderr", STDERR_PORT), ("control", CONTROL_PORT)];

/// How `rosv run` treats its standard input and terminal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// `-i`: forward standard input even when it is a terminal.
    pub is_interactive: bool,
    /// `-t`: the guest implements the terminal; the host's is raw.
    pub has_terminal: bool,
}

/// rosv's standard streams as the guest is to see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStreams {
    /// Which of standard input, output and error are terminals the guest
    /// reaches (standard input only when it is forwarded).
    pub terminals: [bool; 3],
    /// The terminal's size, columns and rows.
    pub window: Option<(u16, u16)>,
    /// Whether standard input is forwarded (otherwise the guest reads its
    /// end at once).
    pub forwards_input: bool,
    /// Whether the guest implements the terminal (`-t`).
    pub has_terminal: bool,
    /// The terminal type a program in the guest finds in `TERM` when one
    /// of its streams is a terminal (the host's, or `xterm`), unless the
    /// image or `-e` sets it.
    pub term: Option<String>,
}

impl HostStreams {
    /// Looks at rosv's standard streams. Standard input is forwarded
    /// unless it is a terminal and neither `-i` nor `-t` was given (then a
    /// program that never reads does not take the keyboard, and rosv runs
    /// in the background without being stopped).
    pub fn detect(options: StreamOptions) -> Result<HostStreams> {
        let terminals = [
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ];
        let host = Self::from_terminals(terminals, options)?;
        let window = if host.terminals.iter().any(|&is_terminal| is_terminal) { window_size() } else { None };
        let term = std::env::var("TERM")
            .ok()
            .filter(|term| is_terminal_type(term))
            .unwrap_or_else(|| "xterm".into());
        Ok(HostStreams { window, term: Some(term), ..host })
    }

    /// The streams for `terminals` (which of rosv's are terminals) and
    /// `options`, without a window size.
    pub fn from_terminals(terminals: [bool; 3], options: StreamOptions) -> Result<HostStreams> {
        if options.has_terminal && !terminals[0] {
            bail!(
                "-t gives the program a terminal, but rosv's standard input is not one; \
                 run rosv from a terminal, or leave -t out"
            );
        }
        let forwards_input = !terminals[0] || options.is_interactive || options.has_terminal;
        let terminals = [terminals[0] && forwards_input, terminals[1], terminals[2]];
        Ok(HostStreams {
            terminals,
            window: None,
            forwards_input,
            has_terminal: options.has_terminal,
            term: None,
        })
    }

    /// The kernel options that tell the guest which streams are terminals,
    /// their size, and who edits typed lines.
    pub fn kernel_options(&self) -> Vec<String> {
        let descriptors: Vec<String> =
            (0..3).filter(|&index| self.terminals[index]).map(|index| index.to_string()).collect();
        if descriptors.is_empty() {
            return Vec::new();
        }
        let mut options = vec![format!("--tty={}", descriptors.join(","))];
        if let Some((columns, rows)) = self.window {
            options.push(format!("--tty-size={columns}x{rows}"));
        }
        if !self.has_terminal {
            options.push("--tty-mode=host".into());
        }
        if let Some(term) = &self.term {
            // The kernel's environment comes before the image's and `-e`'s,
            // which override it.
            options.push(format!("--env=TERM={term}"));
        }
        options
    }
}

/// Whether `name` looks like a terminal type (terminfo names are letters,
/// digits and a few marks), so that it can travel as a kernel option.
fn is_terminal_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._+-".contains(&byte))
}

/// The size of the terminal on rosv's standard output, error or input.
pub fn window_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stderr()))
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin()))
        .ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// The host's terminal in raw mode (on standard input) until dropped.
pub struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Puts the terminal on standard input in raw mode: no echo, no line
    /// editing, no signals from keys, no output processing.
    pub fn enter() -> Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).context("cannot read the terminal's settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// Listening sockets for QEMU's console ports, one per entry of [`PORTS`].
#[derive(Debug)]
pub struct PortSockets {
    listeners: Vec<UnixListener>,
}

/// The socket of port `index` of [`PORTS`] in `directory`.
pub fn socket_path(directory: &Path, index: usize) -> PathBuf {
    directory.join(format!("{}.sock", PORTS[index].0))
}

impl PortSockets {
    /// Listens on every port's socket in `directory`.
    pub fn listen(directory: &Path) -> Result<PortSockets> {
        let listeners = (0..PORTS.len())
            .map(|index| {
                let path = socket_path(directory, index);
                let listener = UnixListener::bind(&path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                listener.set_nonblocking(true).context("cannot make a socket non-blocking")?;
                Ok(listener)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PortSockets { listeners })
    }

    /// Waits until QEMU has connected every socket, as long as `is_running`
    /// and at most `timeout`.
    pub fn accept(self, mut is_running: impl FnMut() -> bool, timeout: Duration) -> Result<Vec<UnixStream>> {
        let deadline = Instant::now() + timeout;
        let mut connections: Vec<Option<UnixStream>> = self.listeners.iter().map(|_| None).collect();
        while connections.iter().any(Option::is_none) {
            for (listener, slot) in self.listeners.iter().zip(connections.iter_mut()) {
                if slot.is_some() {
                    continue;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).context("cannot make a socket blocking")?;
                        *slot = Some(stream);
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error).context("cannot accept QEMU's console connection"),
                }
            }
            if connections.iter().all(Option::is_some) {
                break;
            }
            if !is_running() {
                bail!("QEMU ended before it connected the console ports");
            }
            if Instant::now() > deadline {
                bail!("QEMU did not connect its console ports within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(connections.into_iter().flatten().collect())
    }
}

/// Copies bytes between rosv's standard streams and the guest's channels:
/// its console ports, or the serial port's input frames.
pub struct Relay {
    outputs: Vec<JoinHandle<()>>,
    control: Mutex<Option<Box<dyn Write + Send>>>,
    /// The input port, kept open while the VM runs: a socket closed for
    /// good (not only shut down for writing) makes QEMU drop the bytes it
    /// has not read yet.
    _input: Option<UnixStream>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Relay").field("outputs", &self.outputs.len()).finish()
    }
}

impl Relay {
    /// Starts copying over `connections` (in the order of [`PORTS`]):
    /// standard input to the guest if `host` forwards it (its end closes
    /// the guest's input), the guest's output and error to rosv's.
    pub fn start(connections: Vec<UnixStream>, host: &HostStreams) -> Relay {
        let mut connections = connections.into_iter();
        let (stdin, stdout, stderr, control) =
            (connections.next(), connections.next(), connections.next(), connections.next());
        let mut input = None;
        if let Some(stdin) = stdin {
            match stdin.try_clone() {
                Ok(copy) if host.forwards_input => {
                    input = Some(stdin);
                    std::thread::spawn(move || forward_input(copy));
                }
                _ => {
                    // The guest reads the end of its input at once.
                    let _ = stdin.shutdown(std::net::Shutdown::Write);
                    input = Some(stdin);
                }
            }
        }
        let mut outputs = Vec::new();
        if let Some(stdout) = stdout {
            outputs.push(std::thread::spawn(move || forward_output(stdout, std::io::stdout())));
        }
        if let Some(stderr) = stderr {
            outputs.push(std::thread::spawn(move || forward_output(stderr, std::io::stderr())));
        }
        let control = control.map(|stream| Box::new(stream) as Box<dyn Write + Send>);
        Relay { outputs, control: Mutex::new(control), _input: input }
    }

    /// Starts framing rosv's standard input (if `host` forwards it; its end
    /// either way) into `sink`, the serial port's input (Firecracker's
    /// standard input, the built-in monitor's UART). The application's
    /// output comes back in output records on the serial port itself.
    pub fn start_serial(sink: Box<dyn Write + Send>, host: &HostStreams) -> Relay {
        let sink = std::sync::Arc::new(Mutex::new(sink));
        let framed = FramedSink(sink.clone());
        if host.forwards_input {
            std::thread::spawn(move || forward_framed_input(framed));
        } else {
            let _ = framed.frame(input_kind::END, &[]);
        }
        Relay { outputs: Vec::new(), control: Mutex::new(Some(Box::new(FramedControl(sink)))), _input: None }
    }

    /// Sends the guest a control message; false if it cannot be sent.
    pub fn send(&self, message: ControlMessage) -> bool {
        let mut buffer = [0u8; CONTROL_MESSAGE_MAX];
        let mut control = self.control.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match control.as_mut() {
            Some(stream) => stream.write_all(message.encode(&mut buffer)).is_ok(),
            None => false,
        }
    }

    /// Waits, at most `timeout`, until the guest's output has all been
    /// copied (QEMU closed the ports).
    pub fn finish(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for output in self.outputs {
            while !output.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if output.is_finished() {
                let _ = output.join();
            }
        }
    }
}

/// A writer of input frames, shared between standard input and control
/// messages so that frames never interleave.
#[derive(Clone)]
struct FramedSink(std::sync::Arc<Mutex<Box<dyn Write + Send>>>);

impl FramedSink {
    /// Writes `payload` as frames of `kind`.
    fn frame(&self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut sink = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if payload.is_empty() {
            sink.write_all(&input_frame_header(kind, 0))?;
        }
        for chunk in payload.chunks(usize::from(u16::MAX)) {
            sink.write_all(&input_frame_header(kind, chunk.len() as u16))?;
            sink.write_all(chunk)?;
        }
        sink.flush()
    }
}

/// Control messages as input frames.
struct FramedControl(std::sync::Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for FramedControl {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        FramedSink(self.0.clone()).frame(input_kind::CONTROL, bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Copies rosv's standard input into data frames, then sends the end.
fn forward_framed_input(sink: FramedSink) {
    let mut buffer = [0u8; 16 * 1024];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(length) => {
                if sink.frame(input_kind::DATA, &buffer[..length]).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = sink.frame(input_kind::END, &[]);
}

/// Copies rosv's standard input to the guest, then ends the guest's
/// input. Only the writing side is shut down (the [`Relay`] keeps the
/// socket open): QEMU reads what is left before it sees the end.
fn forward_input(mut port: UnixStream) {
    let mut buffer = [0u8; 16 * 1024];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(length) => {
                if port.write_all(&buffer[..length]).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = port.shutdown(std::net::Shutdown::Write);
}

/// Copies the guest's output from `port` to `sink` until QEMU closes it.
/// When `sink` fails (a closed pipe), the port is closed, which the guest
/// sees as a broken pipe.
fn forward_output(mut port: UnixStream, mut sink: impl Write) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match port.read(&mut buffer) {
            Ok(0) => return,
            Ok(length) => {
                if sink.write_all(&buffer[..length]).and_then(|()| sink.flush()).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_on_a_terminal_needs_i_or_t() {
        let quiet = HostStreams::from_terminals([true, true, false], StreamOptions::default()).unwrap();
        assert_eq!(quiet.terminals, [false, true, false], "an unforwarded input is no terminal");
        assert!(!quiet.forwards_input);
        assert_eq!(quiet.kernel_options(), ["--tty=1", "--tty-mode=host"]);
        let interactive = StreamOptions { is_interactive: true, has_terminal: true };
        let full = HostStreams::from_terminals([true, true, true], interactive).unwrap();
        let full = HostStreams { window: Some((132, 43)), ..full };
        assert!(full.forwards_input);
        assert_eq!(full.kernel_options(), ["--tty=0,1,2", "--tty-size=132x43"]);
        let piped = HostStreams::from_terminals([false, false, false], StreamOptions::default()).unwrap();
        assert!(piped.forwards_input, "a pipe or file is always forwarded");
        assert!(piped.kernel_options().is_empty());
    }

    #[test]
    fn a_terminal_comes_with_its_type() {
        let quiet = HostStreams::from_terminals([false, true, false], StreamOptions::default()).unwrap();
        let quiet = HostStreams { term: Some("xterm-256color".into()), ..quiet };
        assert_eq!(quiet.kernel_options(), ["--tty=1", "--tty-mode=host", "--env=TERM=xterm-256color"]);
        let piped = HostStreams::from_terminals([false, false, false], StreamOptions::default()).unwrap();
        let piped = HostStreams { term: Some("xterm".into()), ..piped };
        assert!(piped.kernel_options().is_empty(), "no terminal, no TERM");
        assert!(is_terminal_type("screen.xterm-256color") && is_terminal_type("rxvt-unicode+x"));
        assert!(!is_terminal_type("") && !is_terminal_type("a b") && !is_terminal_type("x\"\""));
    }

    #[test]
    fn a_terminal_needs_one_on_standard_input() {
        let terminal = StreamOptions { has_terminal: true, ..StreamOptions::default() };
        let error = HostStreams::from_terminals([false, true, true], terminal).unwrap_err().to_string();
        assert!(error.contains("standard input is not one"), "{error}");
    }

    #[test]
    fn the_relay_copies_both_ways_and_closes_the_input() {
        let directory = tempfile::tempdir().unwrap();
        let sockets = PortSockets::listen(directory.path()).unwrap();
        let guest: Vec<UnixStream> = (0..PORTS.len())
            .map(|index| UnixStream::connect(socket_path(directory.path(), index)).unwrap())
            .collect();
        let host = sockets.accept(|| true, Duration::from_secs(5)).unwrap();
        let streams = HostStreams::from_terminals([true, false, false], StreamOptions::default()).unwrap();
        let relay = Relay::start(host, &streams);
        // Standard input is a terminal that is not forwarded: its end at once.
        let mut input = Vec::new();
        (&guest[0]).read_to_end(&mut input).unwrap();
        assert!(input.is_empty());
        assert!(relay.send(ControlMessage::Signal(15)));
        let mut line = [0u8; 10];
        (&guest[3]).read_exact(&mut line).unwrap();
        assert_eq!(&line, b"signal 15\n");
        drop(guest);
        relay.finish(Duration::from_secs(5));
    }

    #[test]
    fn the_serial_relay_frames_control_messages_and_the_end() {
        #[derive(Clone, Default)]
        struct Collected(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Collected {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let collected = Collected::default();
        let host = HostStreams::from_terminals([true, false, false], StreamOptions::default()).unwrap();
        let relay = Relay::start_serial(Box::new(collected.clone()), &host);
        assert!(relay.send(ControlMessage::Resize { columns: 80, rows: 24 }));
        let mut deframer = rosv_abi::streams::InputDeframer::new();
        let mut seen = Vec::new();
        deframer.feed(&collected.0.lock().unwrap(), &mut |input| seen.push(format!("{input:?}")));
        assert_eq!(seen, ["End", "Control(Resize { columns: 80, rows: 24 })"]);
    }

    #[test]
    fn accepting_stops_when_qemu_ends() {
        let directory = tempfile::tempdir().unwrap();
        let sockets = PortSockets::listen(directory.path()).unwrap();
        let error = sockets.accept(|| false, Duration::from_secs(5)).unwrap_err().to_string();
        assert!(error.contains("QEMU ended"), "{error}");
    }
}
