//! Builds the kernel that `rosv` carries.
//!
//! The kernel is a separate build for the `x86_64-unknown-none` target,
//! optimized for size (the `kernel` profile), in its own target directory (`target/kernel`) so the
//! outer build's lock is not contended. Its ELF is copied to `OUT_DIR` and
//! embedded with `include_bytes!`.

use std::path::{Path, PathBuf};
use std::process::Command;

const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// Code generation flags every kernel crate needs: absolute addressing for
/// the 32-bit PVH entry, and frame pointers for backtraces.
const KERNEL_RUSTFLAGS: &[&str] = &["-Crelocation-model=static", "-Cforce-frame-pointers=yes"];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.join("../..").canonicalize().expect("the workspace root exists");
    for input in ["abi", "libs", "kernel", "Cargo.lock", "Cargo.toml", "rust-toolchain.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernel = build_kernel(&workspace);
    std::fs::copy(&kernel, out_dir.join("rosv-kernel.elf")).expect("copy the kernel into OUT_DIR");
}

fn build_kernel(workspace: &Path) -> PathBuf {
    let target_dir = workspace.join("target/kernel");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--profile", "kernel", "--package", "rosv-kernel", "--target", KERNEL_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", KERNEL_RUSTFLAGS.join("\x1f"));
    // Settings meant for the outer (host) build must not leak into this one.
    for variable in [
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(variable);
    }
    let status = command.status().expect("run cargo to build the kernel");
    if !status.success() {
        panic!("building the kernel failed ({status}); see the errors above");
    }
    target_dir.join(KERNEL_TARGET).join("kernel/rosv-kernel")
}
