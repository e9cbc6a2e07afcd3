//! Telling a VM started from a snapshot what must differ in it.
//!
//! Every VM of a snapshot function has a virtio console with the control
//! port alone (`qemu::control_port_arguments`), backed by a Unix socket the
//! host listens on ([`ControlChannel`]) before QEMU connects. Once a VM
//! restored from the snapshot runs, the host sends it a
//! `rosv_abi::streams::RestoreNotice` ([`notice`]): its wall-clock time,
//! fresh entropy and an instance id. The kernel steps its clock, reseeds
//! its generators, reports the id as `/proc/sys/kernel/random/boot_id`, and
//! prints `rosv_abi::streams::RESTORED_LINE` with the id on its console,
//! which the host waits for before it hands the VM an invocation: the
//! function then never sees the template's clock or identity.
//!
//! Why a console port rather than QEMU's `vmgenid` device: `vmgenid`
//! carries a 16-byte generation id and nothing else (no time, no
//! entropy), and the guest finds it through ACPI (an SSDT method and
//! fw_cfg's linker), which microvm without ACPI and the built-in monitor do
//! not have. The control port is already the channel the kernel reads
//! host messages from, and where a machine has only its serial port
//! (Firecracker, the built-in monitor) the same message travels in the
//! serial input frames.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rosv_abi::streams::{CONTROL_MESSAGE_MAX, ControlMessage, RestoreNotice};

/// The host's end of a VM's control port: a Unix socket QEMU connects to
/// as it starts.
#[derive(Debug)]
pub struct ControlChannel {
    path: PathBuf,
    stream: Arc<(Mutex<Option<UnixStream>>, Condvar)>,
}

impl ControlChannel {
    /// Listens on `path` (replacing a stale socket) and accepts QEMU's
    /// connection on a thread of its own.
    pub fn listen(path: &Path) -> Result<ControlChannel> {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
        let stream: Arc<(Mutex<Option<UnixStream>>, Condvar)> = Arc::default();
        let accepted = stream.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                if let Ok((connection, _)) = listener.accept() {
                    let (slot, changed) = &*accepted;
                    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(connection);
                    changed.notify_all();
                }
            })
            .context("cannot start the control port's thread")?;
        Ok(ControlChannel { path: path.to_path_buf(), stream })
    }

    /// Sends `message`, waiting until `deadline` for QEMU to connect.
    pub fn send(&self, message: ControlMessage, deadline: Instant) -> Result<()> {
        let (slot, changed) = &*self.stream;
        let mut stream = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while stream.is_none() {
            let now = Instant::now();
            if now >= deadline {
                bail!("QEMU did not connect to the control port");
            }
            stream = changed
                .wait_timeout(stream, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        let mut buffer = [0u8; CONTROL_MESSAGE_MAX];
        let connection = stream.as_mut().context("QEMU did not connect to the control port")?;
        connection.write_all(message.encode(&mut buffer)).context("cannot write to the control port")
    }
}

impl Drop for ControlChannel {
    fn drop(&mut self) {
        // Wakes the accepting thread if QEMU never connected.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A notice for a new instance: the time now, 32 bytes from the host's
/// generator, and a random instance id (a version-4 UUID).
pub fn notice() -> Result<RestoreNotice> {
    let mut random = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut random))
        .context("cannot read /dev/urandom")?;
    let mut entropy = [0u8; 32];
    entropy.copy_from_slice(&random[..32]);
    let mut instance_id = [0u8; 16];
    instance_id.copy_from_slice(&random[32..]);
    instance_id[6] = (instance_id[6] & 0x0f) | 0x40;
    instance_id[8] = (instance_id[8] & 0x3f) | 0x80;
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let realtime_ns = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
    Ok(RestoreNotice { realtime_ns, entropy, instance_id })
}

/// An instance id as the guest's `boot_id` shows it.
pub fn uuid(id: &[u8; 16]) -> String {
    let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An instance id as the kernel prints it after `RESTORED_LINE`.
pub fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_carry_the_time_and_differ_in_entropy_and_id() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let (first, second) = (notice().unwrap(), notice().unwrap());
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!((before..=after).contains(&first.realtime_ns));
        assert_ne!(first.entropy, second.entropy);
        assert_ne!(first.instance_id, second.instance_id);
        let text = uuid(&first.instance_id);
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4", "a version-4 UUID: {text}");
        assert_eq!(text.replace('-', ""), hex(&first.instance_id));
    }

    #[test]
    fn the_channel_sends_once_qemu_connects() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("control.sock");
        let channel = ControlChannel::listen(&path).unwrap();
        let early = channel.send(ControlMessage::Signal(1), Instant::now() + Duration::from_millis(50));
        assert!(early.is_err(), "nobody connected");
        let mut qemu = UnixStream::connect(&path).unwrap();
        channel.send(ControlMessage::Signal(15), Instant::now() + Duration::from_secs(10)).unwrap();
        let mut line = [0u8; 10];
        qemu.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"signal 15\n");
        drop(channel);
        assert!(!path.exists());
    }
}
