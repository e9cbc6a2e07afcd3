//! Which hypervisor runs a function's VMs (`rosv serve --backend`).
//!
//! The function host reaches a function through QEMU's user-mode network:
//! a forwarded loopback port per HTTP VM, and per Lambda VM a Runtime API
//! its runtime finds at 10.0.2.2 (or, for snapshot functions, through a
//! `guestfwd` that QEMU saves with the VM). It snapshots VMs with QEMU's
//! migration. Neither other hypervisor offers that network: Firecracker
//! and the built-in monitor have tap devices only, so a function there
//! needs a tap per VM with addresses of its own on the host (and the kernel
//! configured without DHCP), or a vsock device, which the kernel has no
//! driver for; and the built-in monitor has no snapshots. Until the host
//! sets up such a pool, `--backend` refuses them with the reason, and
//! `auto` chooses QEMU.

use clap::ValueEnum;

/// A hypervisor `rosv serve` can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The fastest backend this host can run functions on.
    Auto,
    /// QEMU (KVM where it is real, else TCG).
    Qemu,
    /// rosv's built-in KVM monitor.
    Builtin,
    /// Firecracker.
    Firecracker,
}

/// Why a backend cannot run functions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// QEMU is missing.
    #[error(
        "--backend qemu: qemu-system-x86_64 was not found on PATH; install QEMU (on Debian: apt-get \
         install qemu-system-x86)"
    )]
    QemuMissing,
    /// The built-in monitor has no user-mode network.
    #[error(
        "--backend builtin: the built-in monitor cannot run functions yet: it has no user-mode network, so \
         the host cannot forward a port to a function or give its runtime the Runtime API without a tap \
         device per VM, which rosv serve does not set up, and it cannot take snapshots; use --backend qemu"
    )]
    BuiltinUnsupported,
    /// Firecracker has no user-mode network either.
    #[error(
        "--backend firecracker: rosv serve cannot run functions on Firecracker yet: Firecracker reaches a \
         VM through a tap device per VM, which rosv serve does not set up, or vsock, which the kernel has \
         no driver for{}; use --backend qemu",
        if *is_installed { "" } else { " (and firecracker is not on PATH here)" }
    )]
    FirecrackerUnsupported {
        /// Whether `firecracker` is on PATH.
        is_installed: bool,
    },
}

/// What the host has: the programs found on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// `qemu-system-x86_64` is on PATH.
    pub has_qemu: bool,
    /// `firecracker` is on PATH.
    pub has_firecracker: bool,
}

impl Available {
    /// What this host has.
    pub fn here() -> Available {
        Available {
            has_qemu: crate::host::find_program("qemu-system-x86_64").is_some(),
            has_firecracker: crate::host::find_program("firecracker").is_some(),
        }
    }
}

/// The backend that runs functions when `requested` is asked for on a host
/// with `available`.
pub fn choose(requested: Backend, available: Available) -> Result<Backend, BackendError> {
    match requested {
        Backend::Auto | Backend::Qemu if available.has_qemu => Ok(Backend::Qemu),
        Backend::Auto | Backend::Qemu => Err(BackendError::QemuMissing),
        Backend::Builtin => Err(BackendError::BuiltinUnsupported),
        Backend::Firecracker => {
            Err(BackendError::FirecrackerUnsupported { is_installed: available.has_firecracker })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_and_qemu_take_qemu_and_the_others_are_refused_with_the_reason() {
        let everything = Available { has_qemu: true, has_firecracker: true };
        assert_eq!(choose(Backend::Auto, everything), Ok(Backend::Qemu));
        assert_eq!(choose(Backend::Qemu, everything), Ok(Backend::Qemu));
        let nothing = Available { has_qemu: false, has_firecracker: false };
        assert_eq!(choose(Backend::Auto, nothing), Err(BackendError::QemuMissing));
        let builtin = choose(Backend::Builtin, everything).unwrap_err().to_string();
        assert!(builtin.contains("no user-mode network") && builtin.contains("--backend qemu"), "{builtin}");
        let firecracker = choose(Backend::Firecracker, everything).unwrap_err().to_string();
        assert!(firecracker.contains("tap device per VM") && !firecracker.contains("not on PATH"));
        let missing = choose(Backend::Firecracker, nothing).unwrap_err().to_string();
        assert!(missing.contains("firecracker is not on PATH"), "{missing}");
    }
}
