//! A connection to a function's guest: TCP through QEMU's forwarded port,
//! or a vsock connection through the VM's Unix socket.
//!
//! On the built-in monitor and Firecracker a VM's vsock device listens on
//! a Unix socket (Firecracker's hybrid vsock): [`connect_vsock`] connects
//! there, asks for the guest's port with `CONNECT <port>\n` and waits for
//! `OK <host port>\n`; a guest that does not listen on the port (yet)
//! makes the device close the stream instead.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The longest acknowledgement line the device sends (`OK 4294967295\n`).
const ACKNOWLEDGEMENT_BYTES_MAX: usize = 16;

/// A connection to a guest's server.
#[derive(Debug)]
pub enum GuestStream {
    /// Through QEMU's user network.
    Tcp(TcpStream),
    /// Through the VM's vsock device.
    Vsock(UnixStream),
}

impl GuestStream {
    /// Bounds each read (`None`: none).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            GuestStream::Tcp(stream) => stream.set_read_timeout(timeout),
            GuestStream::Vsock(stream) => stream.set_read_timeout(timeout),
        }
    }

    /// Bounds each write (`None`: none).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            GuestStream::Tcp(stream) => stream.set_write_timeout(timeout),
            GuestStream::Vsock(stream) => stream.set_write_timeout(timeout),
        }
    }

    /// A second handle on the same connection.
    pub fn try_clone(&self) -> io::Result<GuestStream> {
        match self {
            GuestStream::Tcp(stream) => stream.try_clone().map(GuestStream::Tcp),
            GuestStream::Vsock(stream) => stream.try_clone().map(GuestStream::Vsock),
        }
    }

    /// Sends small writes at once (TCP only; a Unix stream does anyway).
    pub fn set_nodelay(&self) -> io::Result<()> {
        match self {
            GuestStream::Tcp(stream) => stream.set_nodelay(true),
            GuestStream::Vsock(_) => Ok(()),
        }
    }
}

impl Read for GuestStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            GuestStream::Tcp(stream) => stream.read(buffer),
            GuestStream::Vsock(stream) => stream.read(buffer),
        }
    }
}

impl Write for GuestStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            GuestStream::Tcp(stream) => stream.write(bytes),
            GuestStream::Vsock(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            GuestStream::Tcp(stream) => stream.flush(),
            GuestStream::Vsock(stream) => stream.flush(),
        }
    }
}

/// Connects to vsock `port` of the guest whose device listens at
/// `socket`, waiting at most `timeout` for the device's answer.
/// `ConnectionRefused` when the guest does not take the connection.
pub fn connect_vsock(socket: &Path, port: u16, timeout: Duration) -> io::Result<GuestStream> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    stream.write_all(format!("CONNECT {port}\n").as_bytes())?;
    // Byte by byte: what follows the line is the function's answer.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on vsock port {port} in the guest"),
            ));
        }
        line.push(byte[0]);
        if line.len() > ACKNOWLEDGEMENT_BYTES_MAX {
            break;
        }
    }
    if !line.starts_with(b"OK ") || line.last() != Some(&b'\n') {
        let line = String::from_utf8_lossy(&line);
        return Err(io::Error::other(format!("the vsock device answered {line:?} instead of OK")));
    }
    stream.set_read_timeout(None)?;
    Ok(GuestStream::Vsock(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn fake_device(
        answer: &'static [u8],
    ) -> (tempfile::TempDir, std::path::PathBuf, std::thread::JoinHandle<Vec<u8>>) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("v.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 13];
            stream.read_exact(&mut request).unwrap();
            stream.write_all(answer).unwrap();
            request.to_vec()
        });
        (directory, path, thread)
    }

    #[test]
    fn a_vsock_connection_asks_for_the_port_and_keeps_what_follows_the_ok() {
        let (_directory, path, device) = fake_device(b"OK 1073741824\nHTTP/1.1 200 OK\r\n");
        let mut stream = connect_vsock(&path, 8080, Duration::from_secs(5)).unwrap();
        assert_eq!(device.join().unwrap(), b"CONNECT 8080\n");
        let mut rest = String::new();
        stream.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn a_closed_or_garbled_answer_is_an_error() {
        let (_directory, path, device) = fake_device(b"");
        let error = connect_vsock(&path, 8080, Duration::from_secs(5)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        device.join().unwrap();
        let (_directory, path, device) = fake_device(b"NO SUCH THING AT ALL\n");
        let error = connect_vsock(&path, 8080, Duration::from_secs(5)).unwrap_err();
        assert!(error.to_string().contains("instead of OK"), "{error}");
        device.join().unwrap();
    }
}
