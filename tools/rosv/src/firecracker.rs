//! Firecracker: its configuration file, with the root disk as a read-only
//! virtio-mmio drive and the network card on a tap device.
//!
//! Firecracker gives the guest one serial port, which it connects to its
//! own standard input and output. The kernel therefore gets
//! `--serial-streams` (see `rosv_abi::streams`): the application's
//! standard output and error travel in output records beside the kernel's
//! own text, and rosv takes them apart onto its standard output and error;
//! rosv's standard input and control messages (signals, the terminal's
//! size) go in input frames to Firecracker's standard input, which feeds
//! the guest's UART.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::host::{self, Kvm};
use crate::network::{GUEST_MAC, Network};
use crate::vm::VmConfig;
use rosv_abi::streams::SERIAL_STREAMS_OPTION;

const FIRECRACKER: &str = "firecracker";
/// The `drive_id` of the root disk.
const ROOT_DRIVE: &str = "root";
/// The `iface_id` of the network card.
const NETWORK_INTERFACE: &str = "eth0";
/// The longest kernel command line Firecracker accepts.
const COMMAND_LINE_MAX: usize = 2048;

/// The Firecracker command that boots `config`; its configuration file is
/// written to `scratch`.
pub fn command(config: &VmConfig, scratch: &Path) -> Result<Command> {
    if let Some(share) = config.shared_directories.first() {
        bail!(
            "{}: Firecracker cannot share host directories (it has no virtio-9p or virtio-fs device); run with \
             --hypervisor qemu",
            share.path.display()
        );
    }
    let Some(firecracker) = host::find_program(FIRECRACKER) else {
        bail!(
            "{FIRECRACKER} was not found on PATH; install Firecracker \
             (https://github.com/firecracker-microvm/firecracker/releases) or use --hypervisor qemu"
        );
    };
    if !config.has_acpi {
        bail!("Firecracker always gives the guest ACPI tables; --acpi off works with QEMU only");
    }
    let Some(kvm) = host::kvm() else {
        bail!(
            "Firecracker needs /dev/kvm, which this host lacks or does not let rosv open; use --hypervisor qemu"
        );
    };
    let length = config.command_line.len() + SERIAL_STREAMS_OPTION.len() + 1;
    if length > COMMAND_LINE_MAX {
        bail!("the kernel command line has {length} bytes; Firecracker takes at most {COMMAND_LINE_MAX}");
    }
    let path = scratch.join("firecracker.json");
    let settings = settings(config, kvm);
    std::fs::write(&path, serde_json::to_vec_pretty(&settings)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut command = Command::new(firecracker);
    command.arg("--no-api").arg("--config-file").arg(&path).args(["--level", "Off"]);
    Ok(command)
}

/// Firecracker's configuration for `config`.
pub fn settings(config: &VmConfig, kvm: Kvm) -> Value {
    let mut settings = json!({
        "boot-source": {
            "kernel_image_path": config.kernel,
            "boot_args": format!("{SERIAL_STREAMS_OPTION} {}", config.command_line),
        },
        "drives": drives(config),
        "machine-config": {
            "vcpu_count": config.cpus,
            "mem_size_mib": config.memory_mib,
        },
    });
    // The application's commands and environment (see `boot_config`).
    if let Some(boot_config) = &config.boot_config {
        settings["boot-source"]["initrd_path"] = json!(boot_config.path());
    }
    // A tap device is the only network here: `network::check` refuses
    // `--net user`, which Firecracker lacks.
    if let Network::Tap(interface) = &config.network {
        settings["network-interfaces"] = json!([{
            "iface_id": NETWORK_INTERFACE,
            "guest_mac": GUEST_MAC,
            "host_dev_name": interface,
        }]);
    }
    if let Some(path) = &config.vsock {
        settings["vsock"] = json!({ "guest_cid": crate::builtin::GUEST_CID, "uds_path": path });
    }
    if kvm == Kvm::Software {
        settings["cpu-config"] = software_kvm_template();
    }
    settings
}

/// The root disk, then the others, all read-only (Firecracker attaches
/// them in this order).
fn drives(config: &VmConfig) -> Value {
    let root = json!({
        "drive_id": ROOT_DRIVE,
        "path_on_host": config.root_disk,
        "is_root_device": false,
        "is_read_only": true,
    });
    let others = config.disks.iter().enumerate().map(|(index, disk)| {
        json!({
            "drive_id": format!("disk{}", index + 1),
            "path_on_host": disk,
            "is_root_device": false,
            "is_read_only": true,
        })
    });
    let volumes = config.volume_disks.iter().enumerate().map(|(index, volume)| {
        json!({
            "drive_id": format!("volume{index}"),
            "path_on_host": volume.path,
            "is_root_device": false,
            "is_read_only": volume.is_read_only,
        })
    });
    Value::Array(core::iter::once(root).chain(others).chain(volumes).collect())
}

/// A CPU template that hides from the guest what `kvm_pvm` cannot run in
/// ring 0: XSAVE and everything built on it (AVX, AVX2, AVX-512, FMA,
/// F16C, VEX-encoded AES and carry-less multiply, AMX), CMPXCHG16B and
/// RDTSCP.
fn software_kvm_template() -> Value {
    json!({
        "cpuid_modifiers": [
            {"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
                {"register": "ecx", "bitmap": clearing(&[12, 13, 26, 27, 28, 29])}]},
            {"leaf": "0x7", "subleaf": "0x0", "flags": 1, "modifiers": [
                {"register": "ebx", "bitmap": clearing(&[5, 16, 17, 21, 26, 27, 28, 30, 31])},
                {"register": "ecx", "bitmap": clearing(&[1, 6, 9, 10, 11, 12, 14])},
                {"register": "edx", "bitmap": clearing(&[2, 3, 8, 22, 23, 24, 25])}]},
            {"leaf": "0x80000001", "subleaf": "0x0", "flags": 0, "modifiers": [
                {"register": "edx", "bitmap": clearing(&[27])}]}
        ]
    })
}

/// A Firecracker CPUID bitmap that clears `bits` and keeps the others
/// (`0` clears, `x` keeps, bit 0 is the rightmost character).
fn clearing(bits: &[u32]) -> String {
    let body: String = (0..32).rev().map(|bit| if bits.contains(&bit) { '0' } else { 'x' }).collect();
    format!("0b{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap_clears(bitmap: &str, bit: usize) -> bool {
        let bits: Vec<char> = bitmap.trim_start_matches("0b").chars().rev().collect();
        bits.get(bit) == Some(&'0')
    }

    #[test]
    fn the_template_clears_the_features_kvm_pvm_cannot_run() {
        let template = software_kvm_template();
        let leaf_1 = template["cpuid_modifiers"][0]["modifiers"][0]["bitmap"].as_str().unwrap();
        assert_eq!(leaf_1.len(), 34);
        for bit in [12, 13, 26, 27, 28, 29] {
            assert!(bitmap_clears(leaf_1, bit), "leaf 1 ECX bit {bit}");
        }
        for kept in [0, 9, 19, 20, 25, 30] {
            assert!(!bitmap_clears(leaf_1, kept), "leaf 1 ECX bit {kept} (SSE3, SSSE3, SSE4, AES, RDRAND)");
        }
        let leaf_7 = template["cpuid_modifiers"][1]["modifiers"][0]["bitmap"].as_str().unwrap();
        for bit in [5, 16, 17, 21, 28, 30, 31] {
            assert!(bitmap_clears(leaf_7, bit), "leaf 7 EBX bit {bit}");
        }
        let extended = template["cpuid_modifiers"][2]["modifiers"][0]["bitmap"].as_str().unwrap();
        assert!(bitmap_clears(extended, 27), "RDTSCP");
    }

    #[test]
    fn settings_carry_the_vm_and_the_template_only_on_software_kvm() {
        let config = VmConfig {
            kernel: "/k".into(),
            root_disk: "/r".into(),
            disks: vec!["/d".into()],
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
        };
        let settings = settings(&config, Kvm::Hardware);
        assert_eq!(
            settings["boot-source"]["boot_args"], "--serial-streams --exit-record /hello",
            "the streams share the one serial port"
        );
        assert_eq!(settings["machine-config"]["mem_size_mib"], 64);
        assert_eq!(
            settings["drives"],
            json!([
                {"drive_id": "root", "path_on_host": "/r", "is_root_device": false, "is_read_only": true},
                {"drive_id": "disk1", "path_on_host": "/d", "is_root_device": false, "is_read_only": true}
            ])
        );
        assert!(settings["boot-source"].get("initrd_path").is_none(), "no boot configuration, no initrd");
        assert!(settings.get("cpu-config").is_none());
        assert!(settings.get("network-interfaces").is_none(), "no card unless asked for");
        assert!(super::settings(&config, Kvm::Software).get("cpu-config").is_some());
        let tap = VmConfig { network: Network::Tap("tap7".into()), ..config };
        assert_eq!(
            super::settings(&tap, Kvm::Hardware)["network-interfaces"],
            json!([{"iface_id": "eth0", "guest_mac": "52:54:00:12:34:56", "host_dev_name": "tap7"}])
        );
    }
}
