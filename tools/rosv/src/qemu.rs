//! QEMU's microvm machine.

use std::process::Command;

use anyhow::{Result, bail};

use crate::host::{self, Kvm, PVM_HIDDEN_FEATURES};
use crate::vm::{Accelerator, VmConfig};

const QEMU: &str = "qemu-system-x86_64";

/// How QEMU will execute guest code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceleration {
    /// The `-accel` value.
    pub accel: &'static str,
    /// The `-cpu` value.
    pub cpu: String,
}

/// Chooses `-accel` and `-cpu` for `choice` on a host with `kvm`.
pub fn acceleration(choice: Accelerator, kvm: Option<Kvm>) -> Result<Acceleration> {
    let tcg = Acceleration { accel: "tcg", cpu: "max".into() };
    match (choice, kvm) {
        (Accelerator::Tcg, _) | (Accelerator::Auto, None | Some(Kvm::Software)) => Ok(tcg),
        (Accelerator::Auto | Accelerator::Kvm, Some(Kvm::Hardware)) => {
            Ok(Acceleration { accel: "kvm", cpu: "host".into() })
        }
        (Accelerator::Kvm, Some(Kvm::Software)) => {
            let mut cpu = String::from("host,-arch-capabilities");
            for feature in PVM_HIDDEN_FEATURES {
                cpu.push_str(",-");
                cpu.push_str(feature);
            }
            Ok(Acceleration { accel: "kvm", cpu })
        }
        (Accelerator::Kvm, None) => {
            bail!("--accel kvm needs /dev/kvm, which this host lacks or does not let rosv open")
        }
    }
}

/// The QEMU command that boots `config`, with its human monitor on the
/// Unix socket `monitor` if given.
pub fn command(config: &VmConfig, choice: Accelerator, monitor: Option<&std::path::Path>) -> Result<Command> {
    let Some(qemu) = host::find_program(QEMU) else {
        bail!("{QEMU} was not found on PATH; install QEMU (on Debian: apt-get install qemu-system-x86)");
    };
    let acceleration = acceleration(choice, host::kvm())?;
    let mut command = Command::new(qemu);
    command
        .args([
            "-M",
            if config.has_acpi { "microvm" } else { "microvm,acpi=off" },
            "-accel",
            acceleration.accel,
            "-cpu",
            &acceleration.cpu,
        ])
        .args(["-m", &format!("{}M", config.memory_mib), "-smp", &config.cpus.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-device", &format!("isa-debug-exit,iobase={:#x},iosize=4", rosv_abi::exit::DEBUG_EXIT_PORT)])
        .arg("-kernel")
        .arg(&config.kernel)
        .arg("-initrd")
        .arg(&config.initrd)
        .args(["-append", &config.command_line]);
    if let Some(monitor) = monitor {
        command.arg("-monitor").arg(format!("unix:{},server=on,wait=off", monitor.display()));
    }
    Ok(command)
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
}
