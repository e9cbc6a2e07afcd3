//! A host tap device, opened by name: the network card's other end.
//!
//! `/dev/net/tun` becomes the tap device IFNAME through the TUNSETIFF
//! ioctl (Linux `Documentation/networking/tuntap.rst`), with `IFF_TAP`
//! (Ethernet frames) and `IFF_NO_PI` (no packet information prefix), and
//! without `IFF_VNET_HDR`: the device adds and strips the virtio-net header
//! itself. The descriptor is non-blocking; each read or write is one frame.
//! The ioctl is the crate's only unsafe code besides `kvm`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::virtio_net::Backend;

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// An Ethernet tap rather than an IP tun device.
const IFF_TAP: libc::c_short = 0x0002;
/// No 4-byte packet information in front of each frame.
const IFF_NO_PI: libc::c_short = 0x1000;

/// The `struct ifreq` TUNSETIFF reads: a name and, in the union, flags.
#[repr(C)]
struct InterfaceRequest {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    // The rest of the union, which is 24 bytes on 64-bit Linux.
    _padding: [u8; 22],
}

/// An open tap device.
#[derive(Debug)]
pub struct Tap {
    file: File,
}

impl Tap {
    /// Opens the existing tap device `name` (one the caller may use: root,
    /// or its `ip tuntap ... user` owner).
    pub fn open(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a network interface name"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut request =
            InterfaceRequest { name: [0; libc::IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI, _padding: [0; 22] };
        for (slot, &byte) in request.name.iter_mut().zip(name.as_bytes()) {
            *slot = byte as libc::c_char;
        }
        // SAFETY: `file` is an open descriptor of /dev/net/tun, and
        // `request` is a live, properly sized `struct ifreq` (NUL-terminated
        // name, flags in the union) that TUNSETIFF reads and may update
        // during the call only.
        let result =
            unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut request as *mut InterfaceRequest) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap { file })
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Backend for Tap {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (&self.file).write(frame).map(|_| ())
    }

    fn receive(&self, buffer: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buffer)
    }
}

// The request must have the kernel's `struct ifreq` size.
const _: () = assert!(size_of::<InterfaceRequest>() == 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_linux_would_refuse_are_refused_before_the_ioctl() {
        for name in ["", "sixteen-letters!", "a\0b"] {
            let error = Tap::open(name).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
