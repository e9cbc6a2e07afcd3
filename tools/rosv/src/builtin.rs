//! `--hypervisor builtin`: the VM runs inside `rosv` itself, on `/dev/kvm`.
//!
//! The monitor is the `rosv-vmm` crate; this module turns a [`VmConfig`]
//! into its [`BootSpec`] and its [`Ending`] into an exit status. The root
//! image and the `--disk` images become read-only virtio-mmio disks, as on
//! Firecracker, and `--net tap:IFNAME` a virtio-mmio network card on that
//! tap device (`network::check` refuses `--net user`). The console goes
//! through the same [`SerialOutput`] as QEMU's: exit records are taken
//! out, backtraces get function names, and the application's output,
//! which the kernel frames on the serial port here, goes to rosv's
//! standard output and error.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rosv_vmm::{BootSpec, DumpRequests, Ending, NetworkCard, VmmError, VsockDevice};

use crate::host::{self, Kvm};
use crate::kernel_symbols::Symbols;
use crate::network::{GUEST_MAC_BYTES, Network, NetworkError};
use crate::output::{CaptureSink, SerialOutput};
use crate::streams::{HostStreams, RawMode, Relay};

/// The context id a guest's vsock device gives it, on the built-in
/// monitor and Firecracker alike (the first one above the host's 2).
pub const GUEST_CID: u32 = 3;
use crate::vm::{Console, Outcome, TIMED_OUT, VmConfig};
use rosv_abi::streams::{ControlMessage, SERIAL_STREAMS_OPTION};

/// The monitor's description of `config`, stopped after `limit`.
pub fn spec(config: &VmConfig, limit: Option<Duration>, kvm: Option<Kvm>) -> Result<BootSpec> {
    if let Some(share) = config.shared_directories.first() {
        bail!(
            "{}: the built-in monitor cannot share host directories (it has no virtio-9p device); run with \
             --hypervisor qemu",
            share.path.display()
        );
    }
    let mut disks = vec![config.root_disk.clone()];
    disks.extend(config.disks.iter().cloned());
    for volume in &config.volume_disks {
        if !volume.is_read_only {
            bail!(
                "{}: the built-in monitor's disks are read-only; mount the volume with :ro",
                volume.path.display()
            );
        }
        disks.push(volume.path.clone());
    }
    let network = match &config.network {
        Network::None => None,
        Network::Tap(interface) => Some(NetworkCard { tap: interface.clone(), mac_address: GUEST_MAC_BYTES }),
        Network::User => bail!("{}", NetworkError::UserOnBuiltin),
    };
    Ok(BootSpec {
        kernel: config.kernel.clone(),
        initrd: config.boot_config.as_ref().map(|file| file.path().to_path_buf()),
        disks,
        network,
        vsock: config.vsock.as_ref().map(|path| VsockDevice { guest_cid: GUEST_CID, uds_path: path.clone() }),
        command_line: config.command_line.clone(),
        memory_mib: config.memory_mib,
        cpus: config.cpus,
        has_acpi: config.has_acpi,
        hides_software_kvm_gaps: kvm == Some(Kvm::Software),
        time_limit: limit,
        dump_requests: None,
    })
}

/// Boots `config` in this process, its console filtered to `console`.
/// A guest that failed (a triple fault, an internal KVM error) is an error
/// naming the vCPU's registers.
pub fn boot(
    config: &VmConfig,
    limit: Option<Duration>,
    symbols: Option<Symbols>,
    console: Console,
) -> Result<Outcome> {
    let spec = spec(config, limit, host::kvm())?;
    let output = match console {
        Console::Stderr => SerialOutput::to_standard_streams(symbols.clone(), false),
        Console::Capture(buffer) => SerialOutput::to_one_sink(symbols.clone(), Box::new(CaptureSink(buffer))),
    };
    let state = Arc::new(Mutex::new(output));
    let ending = rosv_vmm::run(&spec, Box::new(FilteredConsole(state.clone())));
    let reported = match state.lock() {
        Ok(mut output) => output.finish(),
        Err(_) => None,
    };
    ending_outcome(ending, limit, reported, symbols.as_ref())
}

/// How the VM ended, as an outcome; a guest that failed is an error naming
/// the vCPU's registers.
fn ending_outcome(
    ending: Result<Ending, VmmError>,
    limit: Option<Duration>,
    reported: Option<u8>,
    symbols: Option<&Symbols>,
) -> Result<Outcome> {
    match ending {
        Err(error @ VmmError::KvmUnavailable { .. }) => Err(error.into()),
        Err(error) => Err(anyhow::Error::new(error).context("the built-in monitor could not start the VM")),
        Ok(Ending::TimedOut) => Ok(Outcome::TimedOut(limit.unwrap_or_default())),
        Ok(Ending::PoweredOff { status }) => {
            Ok(Outcome::Exited { code: None, reported: reported.or(Some(status)) })
        }
        Ok(Ending::Reset) => Ok(Outcome::Exited { code: None, reported }),
        Ok(Ending::Failed(failure)) => {
            let location = failure
                .registers
                .as_ref()
                .and_then(|registers| symbols?.describe(registers.rip()))
                .map(|name| format!("\n  RIP is in {name}"))
                .unwrap_or_default();
            bail!("the guest failed: {failure}{location}")
        }
    }
}

/// `rosv run --hypervisor builtin`: boots `config` with the application's
/// streams framed on the serial port (the monitor has no other channel):
/// its output split onto rosv's standard output and error, the kernel's
/// text on standard error, rosv's standard input and control messages
/// (signals rosv receives, the terminal's size) fed to the UART. Returns
/// the application's exit status.
pub fn run(config: &VmConfig, limit: Option<Duration>, host: HostStreams, has_terminal: bool) -> Result<u8> {
    let mut config = config.clone();
    config.add_kernel_options(&[SERIAL_STREAMS_OPTION.to_string()]);
    let symbols = std::fs::read(&config.kernel).ok().and_then(|kernel| Symbols::read(&kernel));
    // SIGUSR1 asks for the kernel's thread dump, as with QEMU.
    let spec = BootSpec {
        dump_requests: Some(DumpRequests(crate::vm::dump_requests()?.clone())),
        ..spec(&config, limit, host::kvm())?
    };
    let (input, frames) = std::io::pipe().context("cannot create the serial input pipe")?;
    let relay = Arc::new(Relay::start_serial(Box::new(frames), &host));
    let raw_mode = Arc::new(Mutex::new(if has_terminal { Some(RawMode::enter()?) } else { None }));
    watch_signals(relay, raw_mode.clone())?;
    let output = Arc::new(Mutex::new(SerialOutput::to_standard_streams(symbols.clone(), has_terminal)));
    let ending =
        rosv_vmm::run_with_input(&spec, Box::new(FilteredConsole(output.clone())), Some(Box::new(input)));
    let reported = output.lock().ok().and_then(|mut output| output.finish());
    drop(raw_mode.lock().map(|mut raw_mode| raw_mode.take()));
    match ending_outcome(ending, limit, reported, symbols.as_ref())? {
        Outcome::TimedOut(limit) => {
            eprintln!("rosv: the VM did not finish within {} s; stopped it", limit.as_secs());
            Ok(TIMED_OUT)
        }
        Outcome::Exited { reported: Some(status), .. } => Ok(status),
        Outcome::Exited { reported: None, .. } => {
            bail!("the guest reset the VM (i8042 reset line) without reporting an exit status")
        }
        Outcome::Interrupted(signal) => bail!("the VM was interrupted by signal {signal}"),
    }
}

/// Passes every signal rosv receives to the application and the
/// terminal's new sizes to the guest, from a thread; on an escape (see
/// [`crate::vm::Escape`]), or a signal it cannot pass, restores the
/// terminal and ends rosv, and the VM with it.
fn watch_signals(relay: Arc<Relay>, raw_mode: Arc<Mutex<Option<RawMode>>>) -> Result<()> {
    use std::sync::atomic::Ordering;
    let signal = crate::vm::termination_signal()?;
    let resized = crate::vm::window_changes()?;
    std::thread::spawn(move || {
        let mut escape = crate::vm::Escape::default();
        loop {
            let received = signal.swap(0, Ordering::Relaxed) as i32;
            if received != 0 && !crate::vm::pass_signal(Some(&relay), received, &mut escape) {
                drop(raw_mode.lock().map(|mut raw_mode| raw_mode.take()));
                eprintln!("rosv: stopped the VM on signal {received}");
                std::process::exit(128 + received);
            }
            if resized.swap(false, Ordering::Relaxed)
                && let Some((columns, rows)) = crate::streams::window_size()
            {
                relay.send(ControlMessage::Resize { columns, rows });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Ok(())
}

/// The serial console's sink: every byte the guest writes goes through
/// the output splitter at once.
struct FilteredConsole(Arc<Mutex<SerialOutput>>);

impl Write for FilteredConsole {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut output = self.0.lock().map_err(|_| std::io::Error::other("console poisoned"))?;
        output.feed(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> VmConfig {
        VmConfig {
            kernel: "/image/kernel.elf".into(),
            root_disk: "/image/root.rofs".into(),
            disks: vec![],
            volume_disks: vec![],
            shared_directories: vec![],
            board: crate::machine::Board {
                machine: crate::machine::Machine::Microvm,
                transport: crate::machine::VirtioTransport::Mmio,
            },
            command_line: "--exit-record /hello".into(),
            memory_mib: 64,
            cpus: 2,
            has_acpi: true,
            network: Network::None,
            forwards: vec![],
            stream_sockets: None,
            boot_config: None,
            boot_disk: None,
            vsock: None,
        }
    }

    #[test]
    fn the_root_image_is_the_first_disk() {
        let with_disk = VmConfig { disks: vec!["/data.rofs".into()], ..config() };
        let boot = spec(&with_disk, Some(Duration::from_secs(5)), Some(Kvm::Hardware)).unwrap();
        assert_eq!(boot.disks, [std::path::PathBuf::from("/image/root.rofs"), "/data.rofs".into()]);
        assert_eq!(boot.initrd, None);
        assert_eq!(boot.command_line, "--exit-record /hello");
        assert_eq!((boot.memory_mib, boot.cpus), (64, 2));
        assert!(!boot.hides_software_kvm_gaps);
        assert!(spec(&config(), None, Some(Kvm::Software)).unwrap().hides_software_kvm_gaps);
        assert_eq!(boot.network, None);
    }

    #[test]
    fn a_tap_device_becomes_a_network_card_with_the_fixed_mac_address() {
        let with_tap = VmConfig { network: Network::Tap("tap0".into()), ..config() };
        let boot = spec(&with_tap, None, None).unwrap();
        let card = boot.network.expect("a network card");
        assert_eq!((card.tap.as_str(), card.mac_address), ("tap0", [0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        let with_user = VmConfig { network: Network::User, ..config() };
        assert!(spec(&with_user, None, None).unwrap_err().to_string().starts_with("--net user is QEMU's"));
    }

    #[test]
    fn the_console_filter_takes_out_the_exit_record() {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let state =
            Arc::new(Mutex::new(SerialOutput::to_one_sink(None, Box::new(CaptureSink(buffer.clone())))));
        let mut console = FilteredConsole(state.clone());
        for &byte in b"hello\n\x1b_rosv-out=1;3\x1b\\app\x1b_rosv-exit=7\x1b\\" {
            console.write_all(&[byte]).unwrap();
        }
        assert_eq!(state.lock().unwrap().finish(), Some(7));
        assert_eq!(&*buffer.lock().unwrap(), b"hello\napp");
    }
}
