//! Which hypervisor runs a function's VMs (`rosv serve --backend`).
//!
//! On QEMU the host reaches a function through QEMU's user-mode network: a
//! forwarded loopback port per HTTP VM, and per Lambda VM a Runtime API its
//! runtime finds at 10.0.2.2 (or, for snapshot functions, through a
//! `guestfwd` that QEMU saves with the VM); it snapshots VMs with QEMU's
//! migration. Firecracker and the built-in monitor have no user-mode
//! network: there a function's VM gets a vsock device instead, whose
//! host side is a Unix socket (Firecracker's hybrid vsock, which the
//! built-in monitor speaks too). For an HTTP function the kernel forwards
//! the function's vsock port to its TCP port on the guest's loopback
//! (`--vsock-forward`), so the host connects to the socket, asks for the
//! port and speaks HTTP; for a Lambda function the kernel forwards the
//! guest's loopback port of the Runtime API to the host's vsock port
//! (`--vsock-listen`), where the device connects to a Unix socket the
//! host listens on. Snapshots still need QEMU.
//!
//! `auto` takes the built-in monitor where KVM is hardware (it starts a VM
//! without another program and boots fastest), else QEMU.

use clap::ValueEnum;

use crate::host::Kvm;

/// A hypervisor `rosv serve` can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The fastest backend this host can run the functions on.
    Auto,
    /// QEMU (KVM where it is real, else TCG).
    Qemu,
    /// rosv's built-in KVM monitor.
    Builtin,
    /// Firecracker.
    Firecracker,
}

impl Backend {
    /// The backend's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Qemu => "QEMU",
            Backend::Builtin => "the built-in monitor",
            Backend::Firecracker => "Firecracker",
        }
    }
}

/// Why a backend cannot run the functions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// QEMU is missing.
    #[error(
        "--backend qemu: qemu-system-x86_64 was not found on PATH; install QEMU (on Debian: apt-get \
         install qemu-system-x86)"
    )]
    QemuMissing,
    /// Firecracker is missing.
    #[error(
        "--backend firecracker: firecracker was not found on PATH; install Firecracker \
         (https://github.com/firecracker-microvm/firecracker/releases) or use --backend qemu"
    )]
    FirecrackerMissing,
    /// No KVM for the built-in monitor or Firecracker.
    #[error("--backend {0}: this host has no usable /dev/kvm; use --backend qemu")]
    KvmMissing(&'static str),
    /// A function needs QEMU.
    #[error(
        "--backend {backend}: function \"{function}\" {reason}, which only QEMU offers here; use \
         --backend qemu (or auto)"
    )]
    NeedsQemu {
        /// The backend asked for.
        backend: &'static str,
        /// The function.
        function: String,
        /// What it needs.
        reason: &'static str,
    },
}

/// What the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// `qemu-system-x86_64` is on PATH.
    pub has_qemu: bool,
    /// `firecracker` is on PATH.
    pub has_firecracker: bool,
    /// The host's KVM, if rosv may use it.
    pub kvm: Option<Kvm>,
}

impl Available {
    /// What this host has.
    pub fn here() -> Available {
        Available {
            has_qemu: crate::host::find_program("qemu-system-x86_64").is_some(),
            has_firecracker: crate::host::find_program("firecracker").is_some(),
            kvm: crate::host::kvm(),
        }
    }
}

/// Why a function needs QEMU, if it does.
pub fn qemu_need(function: &super::config::Function) -> Option<&'static str> {
    function.snapshot.then_some("takes snapshots (snapshot = true), which need QEMU's migration")
}

/// The backend that runs `functions` when `requested` is asked for on a
/// host with `available`.
pub fn choose(
    requested: Backend,
    available: Available,
    functions: &[super::config::Function],
) -> Result<Backend, BackendError> {
    let need = functions.iter().find_map(|function| Some((function.name.clone(), qemu_need(function)?)));
    let refuse_needs = |backend: Backend| match &need {
        Some((function, reason)) => Err(BackendError::NeedsQemu {
            backend: backend_word(backend),
            function: function.clone(),
            reason,
        }),
        None => Ok(backend),
    };
    match requested {
        Backend::Auto if need.is_none() && available.kvm == Some(Kvm::Hardware) => Ok(Backend::Builtin),
        Backend::Auto | Backend::Qemu if available.has_qemu => Ok(Backend::Qemu),
        Backend::Auto | Backend::Qemu => Err(BackendError::QemuMissing),
        Backend::Builtin if available.kvm.is_none() => Err(BackendError::KvmMissing("builtin")),
        Backend::Firecracker if !available.has_firecracker => Err(BackendError::FirecrackerMissing),
        Backend::Firecracker if available.kvm.is_none() => Err(BackendError::KvmMissing("firecracker")),
        Backend::Builtin | Backend::Firecracker => refuse_needs(requested),
    }
}

fn backend_word(backend: Backend) -> &'static str {
    match backend {
        Backend::Auto => "auto",
        Backend::Qemu => "qemu",
        Backend::Builtin => "builtin",
        Backend::Firecracker => "firecracker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::config;

    fn functions(text: &str) -> Vec<config::Function> {
        let path = std::path::Path::new("/functions.toml");
        config::parse(text, path, std::path::Path::new("/")).unwrap().functions
    }

    #[test]
    fn auto_takes_the_builtin_monitor_on_hardware_kvm_and_qemu_elsewhere() {
        let http = functions("[[function]]\nname = \"a\"\nimage = \"img\"\nport = 8080\n");
        let hardware = Available { has_qemu: true, has_firecracker: false, kvm: Some(Kvm::Hardware) };
        let software = Available { kvm: Some(Kvm::Software), ..hardware };
        let none = Available { kvm: None, ..hardware };
        assert_eq!(choose(Backend::Auto, hardware, &http), Ok(Backend::Builtin));
        assert_eq!(choose(Backend::Auto, software, &http), Ok(Backend::Qemu));
        assert_eq!(choose(Backend::Auto, none, &http), Ok(Backend::Qemu));
        assert_eq!(choose(Backend::Qemu, hardware, &http), Ok(Backend::Qemu));
        assert_eq!(choose(Backend::Builtin, software, &http), Ok(Backend::Builtin));
        assert_eq!(choose(Backend::Builtin, none, &http), Err(BackendError::KvmMissing("builtin")));
        assert_eq!(choose(Backend::Firecracker, hardware, &http), Err(BackendError::FirecrackerMissing));
        let with_firecracker = Available { has_firecracker: true, ..hardware };
        assert_eq!(choose(Backend::Firecracker, with_firecracker, &http), Ok(Backend::Firecracker));
        let nothing = Available { has_qemu: false, has_firecracker: false, kvm: None };
        assert_eq!(choose(Backend::Auto, nothing, &http), Err(BackendError::QemuMissing));
    }

    #[test]
    fn snapshots_keep_to_qemu_and_lambda_functions_run_anywhere() {
        let lambda = functions(
            "[[function]]\nname = \"py\"\nruntime = \"img\"\nhandler = \"app.handler\"\nsnapshot = true\n",
        );
        let hardware = Available { has_qemu: true, has_firecracker: true, kvm: Some(Kvm::Hardware) };
        assert_eq!(choose(Backend::Auto, hardware, &lambda), Ok(Backend::Qemu));
        let refused = choose(Backend::Builtin, hardware, &lambda).unwrap_err().to_string();
        assert!(refused.contains("snapshots") && refused.contains("only QEMU"), "{refused}");
        let lambda = functions("[[function]]\nname = \"py\"\nruntime = \"img\"\nhandler = \"app.handler\"\n");
        assert_eq!(choose(Backend::Firecracker, hardware, &lambda), Ok(Backend::Firecracker));
        assert_eq!(choose(Backend::Builtin, hardware, &lambda), Ok(Backend::Builtin));
        assert_eq!(choose(Backend::Auto, hardware, &lambda), Ok(Backend::Builtin));
    }
}
