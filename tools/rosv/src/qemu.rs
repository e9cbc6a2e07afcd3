//! QEMU: the microvm and pc machines, their disks and network card.
//!
//! microvm takes the kernel ELF directly and its devices over virtio-mmio;
//! pc boots through the qboot firmware and takes devices over virtio-pci.
//! See [`arguments`] for the whole command line.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::host::{self, Kvm, PVM_HIDDEN_FEATURES};
use crate::machine::{Machine, VirtioTransport};
use crate::network::{GUEST_MAC, Network, PortForward};
use crate::streams::{PORTS, socket_path};
use crate::vm::{Accelerator, VmConfig};
use crate::volume::SharedDirectory;

const QEMU: &str = "qemu-system-x86_64";

/// How QEMU will execute guest code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceleration {
    /// The `-accel` value.
    pub accel: &'static str,
    /// The `-cpu` value.
    pub cpu: String,
    /// Whether guest time counts instructions (`-icount shift=0`).
    pub counts_instructions: bool,
}

/// Chooses `-accel` and `-cpu` for `choice` on a host with `kvm`.
pub fn acceleration(choice: Accelerator, kvm: Option<Kvm>) -> Result<Acceleration> {
    let tcg = Acceleration { accel: "tcg", cpu: "max".into(), counts_instructions: false };
    match (choice, kvm) {
        (Accelerator::Tcg, _) | (Accelerator::Auto, None | Some(Kvm::Software)) => Ok(tcg),
        (Accelerator::Icount, _) => Ok(Acceleration { counts_instructions: true, ..tcg }),
        (Accelerator::Auto | Accelerator::Kvm, Some(Kvm::Hardware)) => {
            Ok(Acceleration { accel: "kvm", cpu: "host".into(), counts_instructions: false })
        }
        (Accelerator::Kvm, Some(Kvm::Software)) => {
            let mut cpu = String::from("host,-arch-capabilities");
            for feature in PVM_HIDDEN_FEATURES {
                cpu.push_str(",-");
                cpu.push_str(feature);
            }
            Ok(Acceleration { accel: "kvm", cpu, counts_instructions: false })
        }
        (Accelerator::Kvm, None) => {
            bail!("--accel kvm needs /dev/kvm, which this host lacks or does not let rosv open")
        }
    }
}

/// Where distributions install QEMU's qboot firmware, which boots the pc
/// machine in a fraction of SeaBIOS's time.
const QBOOT_PATHS: &[&str] = &["/usr/share/qemu/qboot.rom", "/usr/share/seabios/qboot.rom"];
/// The `-drive` id of the root disk.
const ROOT_DRIVE: &str = "root";
/// The `-netdev` id of the network card's backend.
const NETDEV: &str = "net0";

/// The QEMU command that boots `config`, with its human monitor on the
/// Unix socket `monitor` if given.
pub fn command(config: &VmConfig, choice: Accelerator, monitor: Option<&Path>) -> Result<Command> {
    if let Some(path) = &config.vsock {
        bail!(
            "--vsock {}: QEMU's vsock device needs the host's vhost-vsock driver and speaks another \
             protocol; use --hypervisor builtin or firecracker",
            path.display()
        );
    }
    let Some(qemu) = host::find_program(QEMU) else {
        bail!("{QEMU} was not found on PATH; install QEMU (on Debian: apt-get install qemu-system-x86)");
    };
    let acceleration = acceleration(choice, host::kvm())?;
    let firmware = match (&config.boot_disk, config.board.machine) {
        (Some(disk), _) => Firmware::Disk(disk_firmware(disk.firmware)?),
        (None, Machine::Microvm) => Firmware::None,
        (None, Machine::Pc) => Firmware::Bios(find_qboot()?),
    };
    let mut command = Command::new(qemu);
    command.args(arguments(config, &acceleration, &firmware, monitor));
    Ok(command)
}

/// The firmware QEMU starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// None: microvm loads the kernel itself.
    None,
    /// A BIOS image given with `-bios` (qboot, which boots `-kernel`).
    Bios(PathBuf),
    /// The firmware that boots a disk: QEMU's default BIOS (SeaBIOS), or
    /// UEFI as OVMF's code and a copy of its variables store.
    Disk(DiskFirmware),
}

/// The firmware that boots a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskFirmware {
    /// QEMU's default, SeaBIOS.
    SeaBios,
    /// OVMF: the code, and the variables template, used as a snapshot so
    /// the template is never written.
    Ovmf { code: PathBuf, variables: PathBuf },
}

/// Where Debian's `ovmf` package installs the 4 MiB OVMF build (code and
/// variables template) and the older 2 MiB one.
const OVMF_PATHS: &[(&str, &str)] = &[
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
];

/// Finds the firmware for booting a disk with `firmware`.
fn disk_firmware(firmware: crate::disk::Firmware) -> Result<DiskFirmware> {
    match firmware {
        crate::disk::Firmware::Bios => Ok(DiskFirmware::SeaBios),
        crate::disk::Firmware::Uefi => OVMF_PATHS
            .iter()
            .find(|(code, variables)| Path::new(code).is_file() && Path::new(variables).is_file())
            .map(|(code, variables)| DiskFirmware::Ovmf { code: code.into(), variables: variables.into() })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "OVMF was not found in /usr/share/OVMF; install it (on Debian: apt-get install ovmf)"
                )
            }),
    }
}

/// QEMU's arguments for `config`: the machine (with its `firmware`), the
/// kernel or the boot disk, the disks, the network card and, if given, the
/// `monitor` socket.
pub fn arguments(
    config: &VmConfig,
    acceleration: &Acceleration,
    firmware: &Firmware,
    monitor: Option<&Path>,
) -> Vec<OsString> {
    let mut arguments: Vec<OsString> =
        vec!["-M".into(), machine_option(config.board.machine, config.has_acpi).into()];
    match firmware {
        Firmware::None | Firmware::Disk(DiskFirmware::SeaBios) => {}
        Firmware::Bios(path) => arguments.extend(["-bios".into(), path.as_os_str().to_owned()]),
        Firmware::Disk(DiskFirmware::Ovmf { code, variables }) => {
            let mut code_drive = OsString::from("if=pflash,format=raw,unit=0,readonly=on,file=");
            code_drive.push(escape_option_value(code.as_os_str()));
            let mut variables_drive = OsString::from("if=pflash,format=raw,unit=1,snapshot=on,file=");
            variables_drive.push(escape_option_value(variables.as_os_str()));
            arguments.extend(["-drive".into(), code_drive, "-drive".into(), variables_drive]);
        }
    }
    let words = [
        "-accel",
        acceleration.accel,
        "-cpu",
        &acceleration.cpu,
        "-m",
        &format!("{}M", config.memory_mib),
        "-smp",
        &config.cpus.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-device",
        &format!("isa-debug-exit,iobase={:#x},iosize=4", rosv_abi::exit::DEBUG_EXIT_PORT),
    ]
    .map(OsString::from);
    arguments.extend(words);
    if acceleration.counts_instructions {
        arguments.extend(["-icount".into(), "shift=0".into()]);
    }
    match &config.boot_disk {
        Some(disk) => {
            // The pc machine's IDE controller, which every firmware boots
            // from; writes go to a temporary overlay, never to the file.
            let mut drive =
                OsString::from(format!("format={},if=ide,index=0,media=disk,snapshot=on,file=", disk.format));
            drive.push(escape_option_value(disk.path.as_os_str()));
            arguments.extend(["-drive".into(), drive]);
        }
        None => {
            arguments.extend(["-kernel".into(), config.kernel.as_os_str().to_owned()]);
            arguments.extend(["-append".into(), config.command_line.as_str().into()]);
            if let Some(boot_config) = &config.boot_config {
                arguments.extend(["-initrd".into(), boot_config.path().as_os_str().to_owned()]);
            }
            arguments.extend(disk_arguments(ROOT_DRIVE, &config.root_disk, config.board.transport));
        }
    }
    for (index, disk) in config.disks.iter().enumerate() {
        arguments.extend(disk_arguments(&format!("disk{}", index + 1), disk, config.board.transport));
    }
    for (index, volume) in config.volume_disks.iter().enumerate() {
        let id = format!("volume{index}");
        let mut words = disk_arguments(&id, &volume.path, config.board.transport);
        if !volume.is_read_only {
            // Writes reach the file before the guest hears they completed,
            // and flushes reach the host's disk.
            let mut drive = OsString::from(format!("id={id},format=raw,if=none,cache=writeback,file="));
            drive.push(escape_option_value(volume.path.as_os_str()));
            words[1] = drive;
        }
        arguments.extend(words);
    }
    for (index, share) in config.shared_directories.iter().enumerate() {
        arguments.extend(share_arguments(index, share, config.board.transport));
    }
    arguments.extend(network_arguments(&config.network, &config.forwards, config.board.transport));
    if let Some(directory) = &config.stream_sockets {
        arguments.extend(stream_arguments(directory, config.board.transport));
    }
    if let Some(monitor) = monitor {
        let mut socket = OsString::from("unix:");
        socket.push(monitor);
        socket.push(",server=on,wait=off");
        arguments.extend(["-monitor".into(), socket]);
    }
    arguments
}

/// The `-M` value.
fn machine_option(machine: Machine, has_acpi: bool) -> String {
    let name = match machine {
        Machine::Microvm => "microvm",
        Machine::Pc => "pc",
    };
    if has_acpi { name.to_string() } else { format!("{name},acpi=off") }
}

/// The arguments that attach `image` read-only as a virtio block device
/// over `transport`.
pub fn disk_arguments(id: &str, image: &Path, transport: VirtioTransport) -> [OsString; 4] {
    let mut drive = OsString::from(format!("id={id},format=raw,if=none,readonly=on,file="));
    drive.push(escape_option_value(image.as_os_str()));
    let device = match pci_interfaces(transport) {
        None => format!("virtio-blk-device,drive={id}"),
        Some(interfaces) => format!("virtio-blk-pci,drive={id},{interfaces}"),
    };
    ["-drive".into(), drive, "-device".into(), device.into()]
}

/// The arguments that share a host directory over virtio-9p: the local
/// backend with `security_model=none` (the QEMU process, thus the
/// invoking user, makes every change; owners and modes pass through as
/// they are), read-only when asked.
pub fn share_arguments(index: usize, share: &SharedDirectory, transport: VirtioTransport) -> [OsString; 4] {
    let id = format!("share{index}");
    let mut backend = OsString::from(format!("local,id={id},security_model=none,"));
    if share.is_read_only {
        backend.push("readonly=on,");
    }
    backend.push("path=");
    backend.push(escape_option_value(share.path.as_os_str()));
    let device = match pci_interfaces(transport) {
        None => format!("virtio-9p-device,fsdev={id},mount_tag={}", share.tag),
        Some(interfaces) => format!("virtio-9p-pci,fsdev={id},mount_tag={},{interfaces}", share.tag),
    };
    ["-fsdev".into(), backend, "-device".into(), device.into()]
}

/// The arguments that give the guest a virtio network card on `network`
/// over `transport`, with `forwards` on the user-mode network; none
/// without a card. On microvm the card is one more virtio-mmio device,
/// which QEMU lists in the DSDT (or as a `virtio_mmio.device=` token with
/// ACPI off), like the disks.
pub fn network_arguments(
    network: &Network,
    forwards: &[PortForward],
    transport: VirtioTransport,
) -> Vec<OsString> {
    let backend = match network {
        Network::None => return Vec::new(),
        Network::User => {
            let mut backend = format!("user,id={NETDEV}");
            for forward in forwards {
                backend.push_str(",hostfwd=");
                backend.push_str(&forward.hostfwd());
            }
            OsString::from(backend)
        }
        Network::Tap(interface) => {
            // No scripts: the tap device is configured before rosv runs.
            let mut backend = OsString::from(format!("tap,id={NETDEV},script=no,downscript=no,ifname="));
            backend.push(escape_option_value(OsStr::new(interface)));
            backend
        }
    };
    let device = match pci_interfaces(transport) {
        None => format!("virtio-net-device,netdev={NETDEV},mac={GUEST_MAC}"),
        // `romfile=` leaves out the card's network boot ROM: the kernel
        // comes from `-kernel`, never from the network.
        Some(interfaces) => format!("virtio-net-pci,netdev={NETDEV},mac={GUEST_MAC},romfile=,{interfaces}"),
    };
    vec!["-netdev".into(), backend, "-device".into(), device.into()]
}

/// The arguments that give the guest a virtio console over `transport`
/// with one port per standard stream and one for control messages, each
/// backed by a socket in `directory` that QEMU connects to (rosv listens).
/// QEMU reserves port 0 for consoles, so the ports are numbered from 1.
pub fn stream_arguments(directory: &Path, transport: VirtioTransport) -> Vec<OsString> {
    let max_ports = PORTS.len() + 1;
    let device = match pci_interfaces(transport) {
        None => format!("virtio-serial-device,max_ports={max_ports}"),
        Some(interfaces) => format!("virtio-serial-pci,max_ports={max_ports},{interfaces}"),
    };
    let mut arguments: Vec<OsString> = vec!["-device".into(), device.into()];
    for (index, (id, name)) in PORTS.iter().enumerate() {
        let mut chardev = OsString::from(format!("socket,id={id},path="));
        chardev.push(escape_option_value(socket_path(directory, index).as_os_str()));
        arguments.extend(["-chardev".into(), chardev]);
        arguments.extend([
            "-device".into(),
            format!("virtserialport,chardev={id},name={name},nr={}", index + 1).into(),
        ]);
    }
    arguments
}

/// The arguments that give the guest a virtio console with the control
/// port alone, backed by the Unix socket `socket` QEMU connects to: control
/// messages (such as the function host's restore notices) without moving
/// the standard streams off the serial port.
pub fn control_port_arguments(socket: &Path, transport: VirtioTransport) -> Vec<OsString> {
    let device = match pci_interfaces(transport) {
        None => String::from("virtio-serial-device,max_ports=2"),
        Some(interfaces) => format!("virtio-serial-pci,max_ports=2,{interfaces}"),
    };
    let mut chardev = OsString::from("socket,id=control,path=");
    chardev.push(escape_option_value(socket.as_os_str()));
    vec![
        "-device".into(),
        device.into(),
        "-chardev".into(),
        chardev,
        "-device".into(),
        format!("virtserialport,chardev=control,name={},nr=1", rosv_abi::streams::CONTROL_PORT).into(),
    ]
}

/// The properties of a virtio-pci device that choose which of its
/// interfaces, legacy and modern, it offers on `transport`; `None` for
/// virtio-mmio, whose devices have no such choice.
fn pci_interfaces(transport: VirtioTransport) -> Option<&'static str> {
    match transport {
        VirtioTransport::Mmio => None,
        VirtioTransport::Legacy => Some("disable-legacy=off,disable-modern=on"),
        VirtioTransport::Modern => Some("disable-legacy=on,disable-modern=off"),
        VirtioTransport::Transitional => Some("disable-legacy=off,disable-modern=off"),
    }
}

/// Doubles the commas of an option value, as QEMU's option syntax wants.
fn escape_option_value(value: &OsStr) -> OsString {
    let mut escaped = Vec::with_capacity(value.len() + 4);
    for &byte in value.as_bytes() {
        escaped.push(byte);
        if byte == b',' {
            escaped.push(b',');
        }
    }
    OsString::from_vec(escaped)
}

/// The qboot firmware, which the pc machine boots through.
pub fn find_qboot() -> Result<PathBuf> {
    match QBOOT_PATHS.iter().map(Path::new).find(|path| path.is_file()) {
        Some(path) => Ok(path.to_path_buf()),
        None => bail!(
            "--machine pc boots through qboot, which is in none of {}; install it \
             (on Debian: apt-get install qemu-system-data)",
            QBOOT_PATHS.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_tcg_unless_kvm_is_real() {
        assert_eq!(acceleration(Accelerator::Auto, None).unwrap().accel, "tcg");
        assert_eq!(acceleration(Accelerator::Auto, Some(Kvm::Software)).unwrap().accel, "tcg");
        assert_eq!(acceleration(Accelerator::Auto, Some(Kvm::Hardware)).unwrap().cpu, "host");
        assert_eq!(acceleration(Accelerator::Tcg, Some(Kvm::Hardware)).unwrap().accel, "tcg");
        let counting = acceleration(Accelerator::Icount, Some(Kvm::Hardware)).unwrap();
        assert!(counting.accel == "tcg" && counting.counts_instructions);
        assert!(acceleration(Accelerator::Kvm, None).is_err());
    }

    #[test]
    fn software_kvm_hides_what_it_cannot_run() {
        let forced = acceleration(Accelerator::Kvm, Some(Kvm::Software)).unwrap();
        assert_eq!(forced.accel, "kvm");
        assert!(forced.cpu.starts_with("host,-arch-capabilities"));
        for feature in ["-xsave,", "-avx,", "-rdtscp", "-cx16"] {
            assert!(forced.cpu.contains(feature), "{feature} in {}", forced.cpu);
        }
    }

    fn config(machine: Machine, transport: VirtioTransport, has_acpi: bool) -> VmConfig {
        VmConfig {
            kernel: "/image/kernel.elf".into(),
            root_disk: "/image,1/root.rofs".into(),
            disks: vec![],
            volume_disks: vec![],
            shared_directories: vec![],
            board: crate::machine::Board { machine, transport },
            command_line: "--exit-record /hello a".into(),
            memory_mib: 64,
            cpus: 2,
            has_acpi,
            network: Network::None,
            forwards: vec![],
            stream_sockets: None,
            boot_config: None,
            boot_disk: None,
            vsock: None,
        }
    }

    fn words(config: &VmConfig, bios: Option<&Path>) -> Vec<String> {
        let firmware = bios.map_or(Firmware::None, |path| Firmware::Bios(path.to_path_buf()));
        words_with(config, &firmware)
    }

    fn words_with(config: &VmConfig, firmware: &Firmware) -> Vec<String> {
        let tcg = Acceleration { accel: "tcg", cpu: "max".into(), counts_instructions: false };
        arguments(config, &tcg, firmware, None).into_iter().map(|word| word.into_string().unwrap()).collect()
    }

    #[test]
    fn a_boot_disk_replaces_the_kernel_and_root_disk() {
        let disk = crate::disk::BootDisk {
            path: "/disks/a,b.qcow2".into(),
            format: "qcow2".into(),
            firmware: crate::disk::Firmware::Uefi,
        };
        let config = VmConfig { boot_disk: Some(disk), ..config(Machine::Pc, VirtioTransport::Modern, true) };
        let ovmf = Firmware::Disk(DiskFirmware::Ovmf {
            code: "/ovmf/code.fd".into(),
            variables: "/ovmf/vars.fd".into(),
        });
        let pc = words_with(&config, &ovmf);
        assert!(!pc.contains(&"-kernel".to_string()));
        assert!(!pc.contains(&"-initrd".to_string()));
        assert!(!pc.contains(&"-bios".to_string()));
        assert_eq!(
            values(&pc, "-drive"),
            [
                "if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/code.fd",
                "if=pflash,format=raw,unit=1,snapshot=on,file=/ovmf/vars.fd",
                "format=qcow2,if=ide,index=0,media=disk,snapshot=on,file=/disks/a,,b.qcow2",
            ]
        );
        let seabios = words_with(&config, &Firmware::Disk(DiskFirmware::SeaBios));
        assert_eq!(values(&seabios, "-drive").len(), 1);
    }

    /// The words after each occurrence of `option`.
    fn values<'a>(words: &'a [String], option: &str) -> Vec<&'a str> {
        words.windows(2).filter(|pair| pair[0] == option).map(|pair| pair[1].as_str()).collect()
    }

    const DRIVE: &str = "id=root,format=raw,if=none,readonly=on,file=/image,,1/root.rofs";

    #[test]
    fn more_disks_follow_the_root_disk() {
        let mut with_disks = config(Machine::Microvm, VirtioTransport::Mmio, true);
        with_disks.disks = vec!["/data.rofs".into(), "/more.rofs".into()];
        let microvm = words(&with_disks, None);
        assert_eq!(
            values(&microvm, "-drive")[1..],
            [
                "id=disk1,format=raw,if=none,readonly=on,file=/data.rofs",
                "id=disk2,format=raw,if=none,readonly=on,file=/more.rofs"
            ]
        );
        assert_eq!(
            values(&microvm, "-device")[1..],
            [
                "virtio-blk-device,drive=root",
                "virtio-blk-device,drive=disk1",
                "virtio-blk-device,drive=disk2"
            ]
        );
    }

    #[test]
    fn microvm_attaches_the_root_disk_over_virtio_mmio() {
        let microvm = words(&config(Machine::Microvm, VirtioTransport::Mmio, true), None);
        assert_eq!(values(&microvm, "-M"), ["microvm"]);
        assert!(values(&microvm, "-bios").is_empty());
        assert_eq!(values(&microvm, "-drive"), [DRIVE]);
        assert_eq!(
            values(&microvm, "-device"),
            ["isa-debug-exit,iobase=0xf4,iosize=4", "virtio-blk-device,drive=root"]
        );
        assert_eq!(values(&microvm, "-kernel"), ["/image/kernel.elf"]);
        assert_eq!(values(&microvm, "-append"), ["--exit-record /hello a"]);
        assert_eq!(values(&microvm, "-smp"), ["2"]);
        let without_acpi = words(&config(Machine::Microvm, VirtioTransport::Mmio, false), None);
        assert_eq!(values(&without_acpi, "-M"), ["microvm,acpi=off"]);
    }

    #[test]
    fn pc_boots_through_qboot_with_each_virtio_pci_flavour() {
        let qboot = Path::new("/usr/share/qemu/qboot.rom");
        for (transport, device) in [
            (VirtioTransport::Legacy, "virtio-blk-pci,drive=root,disable-legacy=off,disable-modern=on"),
            (VirtioTransport::Modern, "virtio-blk-pci,drive=root,disable-legacy=on,disable-modern=off"),
            (
                VirtioTransport::Transitional,
                "virtio-blk-pci,drive=root,disable-legacy=off,disable-modern=off",
            ),
        ] {
            let pc = words(&config(Machine::Pc, transport, true), Some(qboot));
            assert_eq!(values(&pc, "-M"), ["pc"]);
            assert_eq!(values(&pc, "-bios"), ["/usr/share/qemu/qboot.rom"]);
            assert_eq!(values(&pc, "-drive"), [DRIVE]);
            assert_eq!(values(&pc, "-device")[1], device, "{transport:?}");
        }
    }

    #[test]
    fn no_network_card_is_attached_unless_asked_for() {
        let microvm = words(&config(Machine::Microvm, VirtioTransport::Mmio, true), None);
        assert!(values(&microvm, "-netdev").is_empty());
        assert!(!microvm.iter().any(|word| word.contains("virtio-net")));
    }

    #[test]
    fn the_user_network_carries_the_forwards() {
        let mut user = config(Machine::Microvm, VirtioTransport::Mmio, true);
        user.network = Network::User;
        user.forwards = vec![
            crate::network::parse_forward("8080:7000").unwrap(),
            crate::network::parse_forward("udp:0.0.0.0:5353:53").unwrap(),
        ];
        let microvm = words(&user, None);
        assert_eq!(
            values(&microvm, "-netdev"),
            ["user,id=net0,hostfwd=tcp:127.0.0.1:8080-:7000,hostfwd=udp:0.0.0.0:5353-:53"]
        );
        assert_eq!(
            values(&microvm, "-device")[1..],
            ["virtio-blk-device,drive=root", "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56"]
        );
    }

    #[test]
    fn a_tap_device_is_attached_without_scripts() {
        let mut tap = config(Machine::Microvm, VirtioTransport::Mmio, true);
        tap.network = Network::Tap("tap0".into());
        assert_eq!(
            values(&words(&tap, None), "-netdev"),
            ["tap,id=net0,script=no,downscript=no,ifname=tap0"]
        );
    }

    #[test]
    fn pc_attaches_the_network_card_like_its_disks() {
        let qboot = Path::new("/usr/share/qemu/qboot.rom");
        for (transport, interfaces) in [
            (VirtioTransport::Legacy, "disable-legacy=off,disable-modern=on"),
            (VirtioTransport::Modern, "disable-legacy=on,disable-modern=off"),
            (VirtioTransport::Transitional, "disable-legacy=off,disable-modern=off"),
        ] {
            let mut user = config(Machine::Pc, transport, true);
            user.network = Network::User;
            let pc = words(&user, Some(qboot));
            assert_eq!(values(&pc, "-netdev"), ["user,id=net0"]);
            let devices = values(&pc, "-device");
            assert_eq!(devices.len(), 3, "{devices:?}");
            assert!(devices[1].ends_with(interfaces), "{transport:?}: {}", devices[1]);
            assert_eq!(
                devices[2],
                format!("virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=,{interfaces}")
            );
        }
    }

    #[test]
    fn the_root_image_travels_on_the_disk_alone() {
        let microvm = words(&config(Machine::Microvm, VirtioTransport::Mmio, true), None);
        assert!(values(&microvm, "-initrd").is_empty());
    }

    #[test]
    fn each_stream_gets_a_console_port_on_the_machines_transport() {
        let mut with_streams = config(Machine::Microvm, VirtioTransport::Mmio, true);
        with_streams.stream_sockets = Some("/run/x,y".into());
        let microvm = words(&with_streams, None);
        assert_eq!(
            values(&microvm, "-chardev"),
            [
                "socket,id=stdin,path=/run/x,,y/stdin.sock",
                "socket,id=stdout,path=/run/x,,y/stdout.sock",
                "socket,id=stderr,path=/run/x,,y/stderr.sock",
                "socket,id=control,path=/run/x,,y/control.sock"
            ]
        );
        assert_eq!(
            values(&microvm, "-device")[2..],
            [
                "virtio-serial-device,max_ports=5",
                "virtserialport,chardev=stdin,name=rosv.stdin,nr=1",
                "virtserialport,chardev=stdout,name=rosv.stdout,nr=2",
                "virtserialport,chardev=stderr,name=rosv.stderr,nr=3",
                "virtserialport,chardev=control,name=rosv.control,nr=4"
            ]
        );
        assert_eq!(values(&microvm, "-serial"), ["stdio"], "the serial port stays the kernel's");
        let qboot = Path::new("/usr/share/qemu/qboot.rom");
        for (transport, interfaces) in [
            (VirtioTransport::Legacy, "disable-legacy=off,disable-modern=on"),
            (VirtioTransport::Modern, "disable-legacy=on,disable-modern=off"),
            (VirtioTransport::Transitional, "disable-legacy=off,disable-modern=off"),
        ] {
            let mut pc = config(Machine::Pc, transport, true);
            pc.stream_sockets = Some("/s".into());
            let pc = words(&pc, Some(qboot));
            assert!(
                values(&pc, "-device")
                    .contains(&format!("virtio-serial-pci,max_ports=5,{interfaces}").as_str()),
                "{transport:?}"
            );
        }
        assert!(
            values(&words(&config(Machine::Microvm, VirtioTransport::Mmio, true), None), "-chardev")
                .is_empty()
        );
    }

    #[test]
    fn the_monitor_socket_is_optional() {
        let config = config(Machine::Microvm, VirtioTransport::Mmio, true);
        let tcg = Acceleration { accel: "tcg", cpu: "max".into(), counts_instructions: false };
        let with_monitor = arguments(&config, &tcg, &Firmware::None, Some(Path::new("/tmp/m.sock")));
        assert!(with_monitor.contains(&OsString::from("unix:/tmp/m.sock,server=on,wait=off")));
        assert!(!arguments(&config, &tcg, &Firmware::None, None).contains(&OsString::from("-monitor")));
    }
}
