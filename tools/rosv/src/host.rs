//! What the host offers: KVM, and programs on PATH.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// The kind of KVM the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kvm {
    /// KVM on hardware virtualization.
    Hardware,
    /// `kvm_pvm`: KVM that emulates guest ring-0 code in software. It is
    /// slower than QEMU's TCG and kills guests on `xsave`/`xrstor`, AVX,
    /// `rdtscp`, `cmpxchg16b` and `int3` in ring 0.
    Software,
}

/// The KVM the host offers, if `/dev/kvm` can be opened for reading and
/// writing.
pub fn kvm() -> Option<Kvm> {
    OpenOptions::new().read(true).write(true).open("/dev/kvm").ok()?;
    if Path::new("/sys/module/kvm_pvm").exists() { Some(Kvm::Software) } else { Some(Kvm::Hardware) }
}

/// The path of `program` on PATH, if it is there.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// CPUID features a guest must not see on a `kvm_pvm` host: the
/// instructions that host cannot run in ring 0.
pub const PVM_HIDDEN_FEATURES: &[&str] = &[
    "xsave",
    "xsaveopt",
    "xsavec",
    "xsaves",
    "avx",
    "avx2",
    "avx512f",
    "avx512dq",
    "avx512cd",
    "avx512bw",
    "avx512vl",
    "avx512ifma",
    "avx512vbmi",
    "avx512vbmi2",
    "avx512vnni",
    "avx512bitalg",
    "avx512-vpopcntdq",
    "avx512-fp16",
    "avx512-bf16",
    "avx-vnni",
    "fma",
    "f16c",
    "vaes",
    "vpclmulqdq",
    "rdtscp",
    "cx16",
    "amx-tile",
    "amx-int8",
    "amx-bf16",
];
