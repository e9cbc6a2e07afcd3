//! Snapshot cold starts on QEMU: saving a ready VM, starting VMs from it.
//!
//! A function with `snapshot = true` boots its first VM (the template) with
//! a human monitor. When its runtime first asks for an invocation, the host
//! saves the running VM with QEMU's migration (which works under TCG as
//! under KVM) into a file ([`save`]) and lets the template go on. Later VMs
//! start from the file (`-incoming "exec:cat FILE"`) instead of booting:
//! QEMU loads the memory and device state, and the guest resumes where the
//! template was, its runtime waiting for an invocation; the host sends it
//! the invocation once the VM runs ([`wait_until_running`]: packets sent
//! into its network while it loads can be lost). Every VM of such a function reaches its Runtime API through
//! a `guestfwd` character device (see `runtime_api`) at [`RUNTIME_ADDRESS`],
//! the same for all, since the guest's environment is part of the snapshot.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::machine::VirtioTransport;

/// Where the guest finds its Runtime API (`AWS_LAMBDA_RUNTIME_API`) in a
/// function started from snapshots: an address of QEMU's user network
/// that `guestfwd` takes to the host.
pub const RUNTIME_ADDRESS: &str = "10.0.2.100:9001";
/// The character device's id on QEMU's command line.
const CHARDEV_ID: &str = "runtime";
/// How long saving a VM may take.
const SAVE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one monitor command may take to answer.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);

/// How a VM of a snapshot function is started.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The Unix socket of its Runtime API, which QEMU connects to.
    pub runtime_socket: Option<PathBuf>,
    /// The Unix socket of its control port (see `restore`), which QEMU
    /// connects to.
    pub control_socket: Option<PathBuf>,
    /// Its human monitor's socket (the template's).
    pub monitor: Option<PathBuf>,
    /// The snapshot it starts from.
    pub incoming: Option<PathBuf>,
}

impl Launch {
    /// Adds what this launch needs to QEMU's `arguments` for a machine
    /// whose devices use `transport`: the character device and its
    /// `guestfwd` on the user network, the control port, the monitor, and
    /// the incoming snapshot.
    pub fn apply(
        &self,
        arguments: Vec<std::ffi::OsString>,
        transport: VirtioTransport,
    ) -> Result<Vec<std::ffi::OsString>> {
        let mut arguments = arguments;
        if let Some(socket) = &self.runtime_socket {
            let (host, port) = RUNTIME_ADDRESS.split_once(':').unwrap_or((RUNTIME_ADDRESS, ""));
            let guestfwd = format!(",guestfwd=tcp:{host}:{port}-chardev:{CHARDEV_ID}");
            let netdev = arguments
                .iter_mut()
                .find(|argument| argument.to_str().is_some_and(|text| text.starts_with("user,id=")))
                .context("a snapshot function needs QEMU's user network")?;
            netdev.push(guestfwd);
            arguments.push("-chardev".into());
            arguments.push(format!("socket,id={CHARDEV_ID},path={}", plain_path(socket)?).into());
        }
        if let Some(socket) = &self.control_socket {
            arguments.extend(crate::qemu::control_port_arguments(Path::new(plain_path(socket)?), transport));
        }
        if let Some(monitor) = &self.monitor {
            arguments.push("-monitor".into());
            arguments.push(format!("unix:{},server=on,wait=off", plain_path(monitor)?).into());
        }
        if let Some(snapshot) = &self.incoming {
            arguments.push("-incoming".into());
            arguments.push(format!("exec:cat {}", plain_path(snapshot)?).into());
        }
        Ok(arguments)
    }
}

/// `path` as text that needs no quoting on QEMU's command line or in a
/// shell command (the host makes these paths itself, in a temporary
/// directory).
fn plain_path(path: &Path) -> Result<&str> {
    path.to_str()
        .filter(|text| text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"/._-+".contains(&byte)))
        .with_context(|| format!("{} is not a plain path", path.display()))
}

/// Saves the running VM whose monitor is at `monitor` to `file`, then lets
/// it run on. Returns how long saving took.
///
/// QEMU sends its migration stream to a Unix socket the host listens on
/// and copies to the file: the file is whole once the stream has ended
/// (with `exec:cat > FILE`, QEMU would stop `cat` when it is done, and the
/// file could miss its end).
pub fn save(monitor: &Path, file: &Path) -> Result<Duration> {
    let started = Instant::now();
    let socket = file.with_extension("sock");
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let target = file.to_path_buf();
    let copier = std::thread::spawn(move || -> Result<u64> {
        let (mut stream, _) = listener.accept().context("QEMU did not send the snapshot")?;
        stream.set_read_timeout(Some(SAVE_TIMEOUT))?;
        let mut output =
            std::fs::File::create(&target).with_context(|| format!("cannot create {}", target.display()))?;
        let size = std::io::copy(&mut stream, &mut output).context("cannot copy the snapshot")?;
        output.sync_all()?;
        Ok(size)
    });
    let outcome = migrate(monitor, &socket, started + SAVE_TIMEOUT);
    if outcome.is_err() {
        // Wake the copier if QEMU never connected.
        let _ = UnixStream::connect(&socket);
    }
    let copied = copier.join().map_err(|_| anyhow::anyhow!("the snapshot's copier panicked"))?;
    let _ = std::fs::remove_file(&socket);
    outcome?;
    if copied? == 0 {
        bail!("QEMU sent an empty snapshot");
    }
    Ok(started.elapsed())
}

/// Has the VM at `monitor` migrate to the Unix socket `socket`, waits for
/// the migration to end, then lets the VM run on.
fn migrate(monitor: &Path, socket: &Path, deadline: Instant) -> Result<()> {
    let mut session = Monitor::connect(monitor)?;
    session.command(&format!("migrate \"unix:{}\"", plain_path(socket)?))?;
    loop {
        let status = session.command("info migrate")?;
        if status.contains("Migration status: completed") {
            break;
        }
        if status.contains("Migration status: failed") || status.contains("Migration status: cancelled") {
            bail!("QEMU could not save the VM: {}", status.trim());
        }
        if Instant::now() > deadline {
            bail!("saving the VM took more than {} s", SAVE_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A VM saved while it ran is paused once saved.
    session.command("cont")?;
    Ok(())
}

/// Waits until the VM whose monitor is at `monitor` runs: a VM started
/// from a snapshot has loaded it. Data sent into its network before then
/// can be lost.
pub fn wait_until_running(monitor: &Path, deadline: Instant) -> Result<()> {
    // QEMU answers on its monitor only between loading steps.
    let mut session = loop {
        match Monitor::connect(monitor) {
            Ok(session) => break session,
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    loop {
        let status = session.command("info status")?;
        if status.contains("VM status: running") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the VM did not run in time: {}", status.trim());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A session with QEMU's human monitor.
struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    fn connect(path: &Path) -> Result<Monitor> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot reach QEMU's monitor at {}", path.display()))?;
        stream.set_read_timeout(Some(MONITOR_TIMEOUT))?;
        let mut monitor = Monitor { stream };
        monitor.read_to_prompt()?;
        Ok(monitor)
    }

    /// Sends `text` and returns what QEMU printed before its next prompt.
    fn command(&mut self, text: &str) -> Result<String> {
        self.stream.write_all(format!("{text}\n").as_bytes())?;
        self.read_to_prompt()
    }

    fn read_to_prompt(&mut self) -> Result<String> {
        let mut output = Vec::new();
        let mut buffer = [0u8; 4096];
        while !output.ends_with(b"(qemu) ") {
            let count = self.stream.read(&mut buffer).context("QEMU's monitor did not answer")?;
            if count == 0 {
                bail!("QEMU's monitor closed");
            }
            output.extend_from_slice(&buffer[..count]);
        }
        Ok(String::from_utf8_lossy(&output).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_adds_the_runtime_device_the_monitor_and_the_snapshot() {
        let arguments: Vec<std::ffi::OsString> =
            ["-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0"].map(Into::into).to_vec();
        let launch = Launch {
            runtime_socket: Some("/tmp/x/runtime-1.sock".into()),
            control_socket: Some("/tmp/x/control-1.sock".into()),
            monitor: Some("/tmp/x/monitor".into()),
            incoming: Some("/tmp/x/snapshot".into()),
        };
        let applied = launch.apply(arguments.clone(), VirtioTransport::Mmio).unwrap();
        let text: Vec<&str> = applied.iter().map(|argument| argument.to_str().unwrap()).collect();
        assert_eq!(
            text,
            [
                "-netdev",
                "user,id=net0,guestfwd=tcp:10.0.2.100:9001-chardev:runtime",
                "-device",
                "virtio-net-device,netdev=net0",
                "-chardev",
                "socket,id=runtime,path=/tmp/x/runtime-1.sock",
                "-device",
                "virtio-serial-device,max_ports=2",
                "-chardev",
                "socket,id=control,path=/tmp/x/control-1.sock",
                "-device",
                "virtserialport,chardev=control,name=rosv.control,nr=1",
                "-monitor",
                "unix:/tmp/x/monitor,server=on,wait=off",
                "-incoming",
                "exec:cat /tmp/x/snapshot",
            ]
        );
        let mmio = VirtioTransport::Mmio;
        assert_eq!(Launch::default().apply(arguments.clone(), mmio).unwrap(), arguments);
        let quoted = Launch { incoming: Some("/tmp/a b".into()), ..Launch::default() };
        assert!(quoted.apply(arguments, mmio).is_err());
        let no_network = Launch { runtime_socket: Some("/tmp/s".into()), ..Launch::default() };
        assert!(no_network.apply(Vec::new(), mmio).is_err());
    }
}
