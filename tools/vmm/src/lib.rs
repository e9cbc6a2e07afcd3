//! rosv's built-in KVM monitor: boots a PVH kernel on `/dev/kvm`.
//!
//! [`run`] takes a [`BootSpec`] (kernel ELF, initrd, command line, memory,
//! vCPUs) and a console sink, and returns how the VM ended ([`Ending`]).
//! The pieces, in boot order:
//!
//! - `layout`: where things go in guest physical memory;
//! - `boot`, `mptable` and `acpi`: `hvm_start_info`, the memory map, the
//!   command line, the boot GDT, the MP table and the ACPI tables;
//! - `cpuid`: what each vCPU sees;
//! - `monitor`: creates the VM (in-kernel irqchip and PIT), loads the
//!   kernel with linux-loader, starts one thread per vCPU, waits;
//! - `vcpu`: the PVH entry state and the KVM_RUN loop;
//! - `devices`: the serial console, the debug-exit port, the i8042 reset;
//! - `virtio_mmio`: the registers every virtio-mmio device shares;
//! - `virtio_block`: read-only virtio-mmio disks;
//! - `virtio_net`: the virtio-mmio network card, and `host::tap`, the host
//!   tap device behind it;
//! - `virtio_vsock`: the virtio-mmio socket device, its host side on Unix
//!   sockets as Firecracker's;
//! - `control`: what the vCPU threads share, and how they are stopped;
//! - `host`: the only unsafe code, registering guest memory with KVM
//!   (`host::kvm`) and naming a tap device (`host::tap`, TUNSETIFF).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod acpi;
pub mod boot;
mod control;
pub mod cpuid;
pub mod devices;
pub mod host;
pub mod layout;
mod monitor;
pub mod mptable;
mod vcpu;
pub mod virtio_block;
pub mod virtio_mmio;
pub mod virtio_net;
pub mod virtio_vsock;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use monitor::{run, run_with_input};
pub use vcpu::Registers;

/// What to boot, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSpec {
    /// The kernel: an ELF with a PVH note (`XEN_ELFNOTE_PHYS32_ENTRY`).
    pub kernel: PathBuf,
    /// A file loaded into RAM and handed over as the PVH module (the
    /// kernel mounts a ROFS image given so as `/`).
    pub initrd: Option<PathBuf>,
    /// Read-only virtio block devices, in order (`/dev/vda`, `/dev/vdb`...
    /// in the guest), announced with `virtio_mmio.device=` tokens.
    pub disks: Vec<PathBuf>,
    /// A network card on a host tap device, announced after the disks.
    pub network: Option<NetworkCard>,
    /// A socket device (vsock), announced after the network card.
    pub vsock: Option<VsockDevice>,
    /// The kernel command line, to which the monitor appends its own
    /// Linux-style tokens (`pci=off`).
    pub command_line: String,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs (1 to 255).
    pub cpus: u32,
    /// Give the guest ACPI tables (RSDP, XSDT, MADT) besides the MP table.
    pub has_acpi: bool,
    /// Hide from CPUID what `kvm_pvm` cannot run in ring 0 (see `cpuid`).
    pub hides_software_kvm_gaps: bool,
    /// Stop the VM after this long ([`Ending::TimedOut`]), once every vCPU
    /// has been sent an NMI so that the kernel reports what it was doing.
    pub time_limit: Option<Duration>,
    /// Set (by a signal handler) to send every vCPU an NMI while the VM
    /// runs on, for the kernel's thread dump; cleared when done.
    pub dump_requests: Option<DumpRequests>,
}

/// A flag that asks a running VM for the kernel's thread dump (the same
/// flag when both hold the same one).
#[derive(Debug, Clone, Default)]
pub struct DumpRequests(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl PartialEq for DumpRequests {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DumpRequests {}

/// A virtio network card whose frames go over a host tap device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCard {
    /// The tap device's name; it must exist and be open to this process.
    pub tap: String,
    /// The card's MAC address.
    pub mac_address: [u8; 6],
}

/// A vsock device whose host side is a Unix socket (Firecracker's hybrid
/// vsock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockDevice {
    /// The guest's context id (3 or more).
    pub guest_cid: u32,
    /// Where the device listens for host programs; a guest's connection to
    /// host port P goes to `<uds_path>_P`.
    pub uds_path: PathBuf,
}

/// How the VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The guest wrote its exit status to the debug-exit port.
    PoweredOff {
        /// The status byte.
        status: u8,
    },
    /// The guest pulsed the i8042 reset line, or KVM reported a reset or
    /// shutdown system event.
    Reset,
    /// The time limit passed.
    TimedOut,
    /// A vCPU stopped in a way no guest should: a triple fault, an entry
    /// failure or an internal KVM error.
    Failed(Box<Failure>),
}

/// A vCPU that stopped abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The vCPU's index.
    pub cpu: u32,
    /// What happened.
    pub reason: String,
    /// Its registers at the time, if KVM still gave them.
    pub registers: Option<Registers>,
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "vCPU {} stopped: {}", self.cpu, self.reason)?;
        if let Some(registers) = &self.registers {
            write!(formatter, "\n{registers}")?;
        }
        Ok(())
    }
}

/// Why the VM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// `/dev/kvm` is missing or cannot be opened.
    #[error("cannot open {path} ({cause}); the built-in monitor needs KVM, use --hypervisor qemu instead")]
    KvmUnavailable {
        /// The device path.
        path: String,
        /// Why it cannot be opened.
        cause: std::io::Error,
    },
    /// The KVM API version is not the stable one.
    #[error("/dev/kvm speaks KVM API version {0}, not {expected}; use --hypervisor qemu", expected = kvm_bindings::KVM_API_VERSION)]
    ApiVersion(i32),
    /// A KVM capability the monitor relies on is missing.
    #[error("this host's KVM lacks {0}, which the built-in monitor needs; use --hypervisor qemu")]
    MissingCapability(&'static str),
    /// An ioctl failed.
    #[error("{what} failed: {cause}")]
    Kvm {
        /// The operation.
        what: &'static str,
        /// The error KVM returned.
        cause: kvm_ioctls::Error,
    },
    /// Guest memory could not be allocated.
    #[error("cannot allocate {memory_mib} MiB of guest memory: {reason}")]
    Memory {
        /// The size asked for.
        memory_mib: u64,
        /// Why not.
        reason: String,
    },
    /// The kernel ELF could not be read or loaded.
    #[error("cannot load the kernel {path}: {reason}")]
    Kernel {
        /// The kernel file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The kernel has no PVH entry.
    #[error(
        "{0} has no PVH note (XEN_ELFNOTE_PHYS32_ENTRY); the built-in monitor boots PVH kernels only, \
         use --hypervisor qemu or firecracker for others"
    )]
    NoPvhEntry(PathBuf),
    /// The initrd could not be read.
    #[error("cannot read {path}: {cause}")]
    Initrd {
        /// The initrd file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// A disk image could not be opened.
    #[error("cannot open the disk {path}: {cause}")]
    Disk {
        /// The image file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// More disks than interrupt lines.
    #[error("{0} disks asked for; the built-in monitor attaches at most {max}", max = layout::VIRTIO_DEVICES_MAX)]
    TooManyDisks(usize),
    /// The vsock device's Unix socket could not be set up.
    #[error("cannot listen at the vsock socket {path}: {cause}")]
    Vsock {
        /// The socket's path.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// The tap device could not be opened.
    #[error(
        "cannot open the tap device {name} ({cause}); it must exist and be yours, e.g. \
         `ip tuntap add dev {name} mode tap user $USER && ip link set {name} up`"
    )]
    Tap {
        /// The tap device's name.
        name: String,
        /// The error.
        cause: std::io::Error,
    },
    /// The initrd does not fit in RAM beside the kernel.
    #[error(
        "{path} ({size_mib} MiB) does not fit in {memory_mib} MiB of guest memory beside the kernel; \
         give more with --memory"
    )]
    InitrdTooLarge {
        /// The initrd file.
        path: PathBuf,
        /// Its size, rounded up.
        size_mib: u64,
        /// Guest RAM.
        memory_mib: u64,
    },
    /// The boot structures could not be laid out.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// The host refused a resource: a thread, an eventfd, a signal handler.
    #[error("cannot {what}: {cause}")]
    Host {
        /// What the monitor tried.
        what: &'static str,
        /// Why it failed.
        cause: std::io::Error,
    },
    /// The VM has more vCPUs than the MP table can list.
    #[error("{0} vCPUs asked for; the built-in monitor runs 1 to 255")]
    TooManyCpus(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_its_cause_once() {
        let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let errors = [
            VmmError::KvmUnavailable { path: "/dev/kvm".into(), cause: not_found() },
            VmmError::Disk { path: "/disk".into(), cause: not_found() },
            VmmError::Host { what: "start a thread", cause: not_found() },
        ];
        for error in errors {
            let message = error.to_string();
            assert_eq!(message.matches("entity not found").count(), 1, "{message}");
            assert!(std::error::Error::source(&error).is_none(), "no source repeats it: {message}");
        }
    }
}
