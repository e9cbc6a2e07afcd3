//! Virtual machine models and the virtio transport their disks use.
//!
//! [`Machine`] is the board the hypervisor emulates, [`VirtioTransport`] how
//! the root disk reaches the guest on it. [`Board::choose`] checks that the
//! two make sense together on a [`Hypervisor`]; `qemu` and `firecracker`
//! turn the result into device arguments.

use clap::ValueEnum;

use crate::vm::Hypervisor;

/// The machine the hypervisor emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Machine {
    /// A minimal machine without PCI: QEMU's microvm, or Firecracker.
    Microvm,
    /// QEMU's PC (i440FX) with PCI, booted through the qboot firmware.
    Pc,
}

/// How virtio devices (the root disk) are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VirtioTransport {
    /// virtio-mmio (virtio 1.2 §4.2): registers at a fixed address.
    Mmio,
    /// Legacy virtio-pci only: an I/O port BAR (virtio 1.2 §4.1.5).
    Legacy,
    /// Modern virtio-pci only: capabilities in memory BARs (virtio 1.2 §4.1.4).
    Modern,
    /// Both legacy and modern virtio-pci interfaces on one device.
    Transitional,
}

impl VirtioTransport {
    /// The option's spelling on the command line.
    pub fn name(self) -> &'static str {
        match self {
            VirtioTransport::Mmio => "mmio",
            VirtioTransport::Legacy => "legacy",
            VirtioTransport::Modern => "modern",
            VirtioTransport::Transitional => "transitional",
        }
    }

    fn is_pci(self) -> bool {
        self != VirtioTransport::Mmio
    }
}

/// A machine and the transport of its devices, known to fit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// The machine.
    pub machine: Machine,
    /// The transport of its virtio devices.
    pub transport: VirtioTransport,
}

/// A machine, transport and hypervisor that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// virtio-mmio asked for on the PC machine.
    #[error(
        "--virtio mmio needs --machine microvm; the pc machine attaches disks with virtio-pci \
         (--virtio legacy, modern or transitional)"
    )]
    MmioOnPc,
    /// virtio-pci asked for on a machine without PCI.
    #[error("--virtio {0} needs --machine pc; microvm has no PCI bus, so use --virtio mmio there")]
    PciOnMicrovm(&'static str),
    /// The PC machine asked of Firecracker.
    #[error("Firecracker has no pc machine; leave out --machine pc or use --hypervisor qemu")]
    PcOnFirecracker,
    /// virtio-pci asked of Firecracker.
    #[error(
        "--virtio {0}: rosv attaches Firecracker's disks with virtio-mmio only; leave out --virtio \
         or use --hypervisor qemu --machine pc"
    )]
    PciOnFirecracker(&'static str),
    /// The PC machine asked of the built-in monitor.
    #[error("the built-in monitor has no pc machine; leave out --machine pc or use --hypervisor qemu")]
    PcOnBuiltin,
    /// virtio-pci asked of the built-in monitor.
    #[error(
        "--virtio {0}: the built-in monitor has no PCI bus; leave out --virtio or use --hypervisor qemu \
         --machine pc"
    )]
    PciOnBuiltin(&'static str),
}

impl Board {
    /// Checks `machine` and `requested` transport on `hypervisor`, filling
    /// in the machine's default transport (mmio on microvm, modern on pc).
    pub fn choose(
        hypervisor: Hypervisor,
        machine: Machine,
        requested: Option<VirtioTransport>,
    ) -> Result<Board, BoardError> {
        if hypervisor == Hypervisor::Firecracker {
            if machine == Machine::Pc {
                return Err(BoardError::PcOnFirecracker);
            }
            if let Some(transport) = requested.filter(|transport| transport.is_pci()) {
                return Err(BoardError::PciOnFirecracker(transport.name()));
            }
        }
        if hypervisor == Hypervisor::Builtin {
            if machine == Machine::Pc {
                return Err(BoardError::PcOnBuiltin);
            }
            if let Some(transport) = requested.filter(|transport| transport.is_pci()) {
                return Err(BoardError::PciOnBuiltin(transport.name()));
            }
        }
        let transport = match (machine, requested) {
            (Machine::Microvm, None) => VirtioTransport::Mmio,
            (Machine::Pc, None) => VirtioTransport::Modern,
            (Machine::Pc, Some(VirtioTransport::Mmio)) => return Err(BoardError::MmioOnPc),
            (Machine::Microvm, Some(transport)) if transport.is_pci() => {
                return Err(BoardError::PciOnMicrovm(transport.name()));
            }
            (_, Some(transport)) => transport,
        };
        Ok(Board { machine, transport })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Hypervisor::{Builtin, Firecracker, Qemu};
    use Machine::{Microvm, Pc};
    use VirtioTransport::{Legacy, Mmio, Modern, Transitional};

    fn transport(
        hypervisor: Hypervisor,
        machine: Machine,
        requested: Option<VirtioTransport>,
    ) -> VirtioTransport {
        Board::choose(hypervisor, machine, requested).unwrap().transport
    }

    #[test]
    fn each_machine_has_its_default_transport() {
        assert_eq!(transport(Qemu, Microvm, None), Mmio);
        assert_eq!(transport(Qemu, Pc, None), Modern);
        assert_eq!(transport(Firecracker, Microvm, None), Mmio);
    }

    #[test]
    fn pc_takes_every_pci_transport_and_microvm_mmio() {
        for pci in [Legacy, Modern, Transitional] {
            assert_eq!(transport(Qemu, Pc, Some(pci)), pci);
        }
        assert_eq!(transport(Qemu, Microvm, Some(Mmio)), Mmio);
        assert_eq!(transport(Firecracker, Microvm, Some(Mmio)), Mmio);
    }

    #[test]
    fn combinations_without_sense_are_refused_in_one_line() {
        assert_eq!(Board::choose(Qemu, Pc, Some(Mmio)), Err(BoardError::MmioOnPc));
        for pci in [Legacy, Modern, Transitional] {
            assert_eq!(Board::choose(Qemu, Microvm, Some(pci)), Err(BoardError::PciOnMicrovm(pci.name())));
            assert_eq!(
                Board::choose(Firecracker, Microvm, Some(pci)),
                Err(BoardError::PciOnFirecracker(pci.name()))
            );
        }
        assert_eq!(Board::choose(Firecracker, Pc, None), Err(BoardError::PcOnFirecracker));
        assert_eq!(Board::choose(Builtin, Pc, None), Err(BoardError::PcOnBuiltin));
        assert_eq!(Board::choose(Builtin, Microvm, Some(Legacy)), Err(BoardError::PciOnBuiltin("legacy")));
        assert_eq!(transport(Builtin, Microvm, None), Mmio);
        let message = BoardError::PciOnMicrovm("legacy").to_string();
        assert!(!message.contains('\n') && message.contains("--machine pc"), "{message}");
    }
}
