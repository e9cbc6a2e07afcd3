//! `cargo xtask`: the one way to build, test and run rosv, for people and CI.
//!
//! - `cargo xtask hello`: build the hello program and boot it on rosv.
//! - `cargo xtask test`: everything CI checks: formatting, clippy (host and
//!   kernel target), unit tests and boot tests, closing with the passed,
//!   failed and skipped tests of every test binary (`test_report`).
//! - `cargo xtask bench`: boot times, thread-switch and clock costs, disk
//!   read throughput (microvm and pc), each next to a reference (a trivial
//!   guest, the host); network throughput; the function host's cold starts
//!   and warm requests.
//! - `cargo xtask kernel`: build the kernel ELF and print its path.
//! - `cargo xtask fuzz <target> [-- <libFuzzer options>]`: run a fuzz target
//!   (needs a nightly toolchain and `cargo install cargo-fuzz`).
//! - `cargo xtask fuzz-syscalls [<rosv bench fuzz options>]`: build the
//!   system-call fuzzer (tests/guest/fuzz.c) and run it on many seeds
//!   (`rosv bench fuzz`), e.g. `--seeds 200 --cpus 2`.

#![forbid(unsafe_code)]

mod test_report;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use test_report::TestReport;

const KERNEL_TARGET: &str = "x86_64-unknown-none";
const KERNEL_RUSTFLAGS: &str = "-Crelocation-model=static\x1f-Cforce-frame-pointers=yes";
/// Host tools the boot tests need, with the Debian package of each: a
/// program on PATH, or an absolute path. (busybox must be the static
/// build: the tests run it in the VM; Python is Debian's, whose standard
/// library a test packs into an image.)
const HOST_TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("musl-gcc", "musl-tools"),
    ("gcc", "gcc"),
    ("/usr/include/stdio.h", "libc6-dev"),
    ("busybox", "busybox-static"),
    ("/usr/bin/python3", "python3"),
];

/// Programs some boot tests run in the VM (servers, PHP), build (Go) or
/// drive rosv with (tmux, for the terminal tests); those tests say they
/// were skipped when one is missing and cannot be installed.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("tmux", "tmux"),
    ("/usr/sbin/nginx", "nginx-light"),
    ("/usr/bin/redis-server", "redis-server"),
    ("/usr/bin/go", "golang-go"),
    ("/usr/bin/php", "php-cli"),
    ("/usr/bin/sqlite3", "sqlite3"),
    ("/usr/bin/strace", "strace"),
    ("/usr/bin/gdb", "gdb"),
    ("/usr/bin/mdb_load", "lmdb-utils"),
    ("/usr/bin/cpan", "perl"),
    ("/usr/bin/ruby", "ruby"),
    ("/usr/bin/lua5.4", "lua5.4"),
    ("/usr/bin/node", "nodejs"),
    ("/usr/bin/java", "openjdk-17-jre-headless"),
    ("/usr/bin/guile", "guile-3.0"),
    ("/usr/bin/erl", "erlang-base"),
    ("umoci", "umoci"),
    ("skopeo", "skopeo"),
    ("genisoimage", "genisoimage"),
    ("/usr/sbin/mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("grub-mkimage", "grub-common"),
    ("/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi/moddep.lst", "grub-efi-amd64-bin"),
    ("qemu-img", "qemu-utils"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
    ("mkfs.ext4", "e2fsprogs"),
    ("/usr/bin/ganesha.nfsd", "nfs-ganesha"),
    ("/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so", "nfs-ganesha-vfs"),
    ("/usr/sbin/rpcbind", "rpcbind"),
    ("/usr/lib/python3/dist-packages/pip", "python3-pip"),
    ("/usr/bin/git", "git"),
    ("/usr/bin/psql", "postgresql"),
    ("/usr/lib/postgresql", "postgresql"),
    ("/usr/bin/dash", "dash"),
    ("/usr/lib/python3.11/test/test_posix.py", "libpython3.11-testsuite"),
    ("/usr/bin/top", "procps"),
    ("/usr/bin/lscpu", "util-linux"),
    ("/usr/bin/bash", "bash"),
    ("/usr/bin/diff", "diffutils"),
    ("/bin/hostname", "hostname"),
    ("/bin/ip", "iproute2"),
];

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        Some("hello") => hello(),
        Some("test") => test(),
        Some("kernel") => kernel(),
        Some("bench") => bench(),
        Some("fuzz") => fuzz(&arguments[1..]),
        Some("fuzz-syscalls") => fuzz_syscalls(&arguments[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <hello | test | bench | kernel | fuzz TARGET [-- OPTIONS] | fuzz-syscalls \
                 [OPTIONS]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(repository());
    command
}

fn run(command: &mut Command) -> Result {
    eprintln!("xtask: running {command:?}");
    let status = command.status().map_err(|error| format!("cannot run {command:?}: {error}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

fn is_on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|directory| directory.join(program).is_file()))
}

/// Installs the host tools the boot tests need when they are missing and
/// this is a root Debian shell; otherwise says exactly what is missing.
fn ensure_host_tools() -> Result {
    let missing = missing_programs(HOST_TOOLS);
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    if can_install_packages() {
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&packages))?;
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|(program, _)| *program).collect();
    Err(format!(
        "missing {}; install them (on Debian: sudo apt-get install {}) and run again",
        programs.join(", "),
        packages.join(" ")
    ))
}

/// The `(program, package)` pairs whose program is missing.
fn missing_programs<'a>(tools: &'a [(&'a str, &'a str)]) -> Vec<&'a (&'a str, &'a str)> {
    let is_present = |program: &str| {
        if program.starts_with('/') { Path::new(program).exists() } else { is_on_path(program) }
    };
    tools.iter().filter(|(program, _)| !is_present(program)).collect()
}

/// Whether missing packages can be installed here: as root, with apt-get.
fn can_install_packages() -> bool {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    is_root && is_on_path("apt-get")
}

/// Installs the packages some boot tests need, where that is possible;
/// says which tests will be skipped otherwise.
fn offer_test_packages() -> Result {
    let missing = missing_programs(TEST_PACKAGES);
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    if can_install_packages() {
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        return run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&packages));
    }
    eprintln!("note: some boot tests will be skipped; apt-get install {} to run them", packages.join(" "));
    Ok(())
}

/// The toolchain file whose targets the build needs.
const TOOLCHAIN_FILE: &str = "rust-toolchain.toml";

/// The channel and targets `rust-toolchain.toml` pins (its `channel = "..."`
/// and `targets = [...]` lines).
fn pinned_toolchain(text: &str) -> (Option<String>, Vec<String>) {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| value.trim().to_string())
        })
    };
    let channel = value("channel").map(|channel| channel.trim_matches('"').to_string());
    let targets = value("targets")
        .map(|list| {
            list.trim_matches(|character| character == '[' || character == ']')
                .split(',')
                .map(|target| target.trim().trim_matches('"').to_string())
                .filter(|target| !target.is_empty())
                .collect()
        })
        .unwrap_or_default();
    (channel, targets)
}

/// The pinned targets missing from the toolchain whose sysroot is
/// `sysroot` (each installed target has a `lib/rustlib/<target>`).
fn missing_targets(sysroot: &Path, targets: &[String]) -> Vec<String> {
    targets.iter().filter(|target| !sysroot.join("lib/rustlib").join(target).is_dir()).cloned().collect()
}

/// Installs the targets `rust-toolchain.toml` pins when the toolchain
/// lacks them (not every rustup installs them by itself), or says the
/// exact command when rustup is not there to do it.
fn ensure_toolchain_targets() -> Result {
    let file = repository().join(TOOLCHAIN_FILE);
    let text =
        std::fs::read_to_string(&file).map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let (channel, targets) = pinned_toolchain(&text);
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .current_dir(repository())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|error| format!("cannot run rustc: {error}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let missing = missing_targets(&sysroot, &targets);
    if missing.is_empty() {
        return Ok(());
    }
    if !is_on_path("rustup") {
        return Err(format!(
            "the Rust toolchain at {} lacks the targets {}, and rustup, which would add them, is not installed; \
             install rustup (https://rustup.rs), then run `rustup toolchain install` in {}",
            sysroot.display(),
            missing.join(" "),
            repository().display()
        ));
    }
    let mut command = Command::new("rustup");
    command.current_dir(repository()).args(["target", "add"]);
    if let Some(channel) = &channel {
        command.args(["--toolchain", channel]);
    }
    run(command.args(&missing))
}

fn hello() -> Result {
    ensure_toolchain_targets()?;
    ensure_host_tools()?;
    let output_directory = repository().join("target/guests");
    std::fs::create_dir_all(&output_directory).map_err(|error| error.to_string())?;
    let hello = output_directory.join("hello");
    run(Command::new("musl-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&hello)
        .arg(repository().join("tests/guest/hello.c")))?;
    run(cargo()
        .args(["run", "--release", "--package", "rosv", "--", "run", "--exec"])
        .arg(&hello)
        .args(["--", "from", "rosv"]))
}

fn bench() -> Result {
    ensure_toolchain_targets()?;
    ensure_host_tools()?;
    let output_directory = repository().join("target/guests");
    std::fs::create_dir_all(&output_directory).map_err(|error| error.to_string())?;
    let switch = output_directory.join("context-switch");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(&switch)
        .arg(repository().join("tests/guest/context-switch.c")))?;
    let rosv = |arguments: &[&str]| {
        run(cargo().args(["run", "--quiet", "--release", "--package", "rosv", "--"]).args(arguments))
    };
    rosv(&["bench", "boot", "--runs", "20"])?;
    rosv(&["bench", "boot", "--runs", "3", "--accel", "icount"])?;
    let switch = switch.to_str().ok_or("the repository path is not UTF-8")?;
    for cpus in ["1", "2"] {
        rosv(&["bench", "switch", "--cpus", cpus, "--exec", switch, "--", "20000", "1000000"])?;
    }
    let reader = output_directory.join("read-throughput");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&reader)
        .arg(repository().join("tests/guest/read-throughput.c")))?;
    let reader = reader.to_str().ok_or("the repository path is not UTF-8")?;
    rosv(&["bench", "memory", "--memory", "64M"])?;
    let mapper = output_directory.join("mmap-cost");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&mapper)
        .arg(repository().join("tests/guest/mmap-cost.c")))?;
    let mapper = mapper.to_str().ok_or("the repository path is not UTF-8")?;
    rosv(&["bench", "mmap", "--memory", "512M", "--exec", mapper])?;
    let operations = output_directory.join("disk-ops");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&operations)
        .arg(repository().join("tests/guest/disk-ops.c")))?;
    let operations = operations.to_str().ok_or("the repository path is not UTF-8")?;
    rosv(&["bench", "disk", "--exec", reader, "--volume-exec", operations])?;
    rosv(&["bench", "disk", "--machine", "pc", "--exec", reader])?;
    let mover = output_directory.join("socket-throughput");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(&mover)
        .arg(repository().join("tests/guest/socket-throughput.c")))?;
    let mover = mover.to_str().ok_or("the repository path is not UTF-8")?;
    for cpus in ["1", "2"] {
        rosv(&["bench", "network", "--cpus", cpus, "--memory", "256M", "--exec", mover])?;
    }
    let server = output_directory.join("http-echo");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&server)
        .arg(repository().join("tests/guest/http-echo.c")))?;
    let server = server.to_str().ok_or("the repository path is not UTF-8")?;
    rosv(&["bench", "serve", "--runs", "10", "--exec", server])
}

fn kernel_build(subcommand: &str) -> Command {
    let mut command = cargo();
    command
        .args([subcommand, "--profile", "kernel", "--target", KERNEL_TARGET])
        .args(["--package", "rosv-kernel", "--package", "rosv-platform", "--package", "rosv-core"])
        .args(["--package", "rosv-drivers"])
        .arg("--target-dir")
        .arg(repository().join("target/kernel"))
        .env("CARGO_ENCODED_RUSTFLAGS", KERNEL_RUSTFLAGS)
        .env_remove("RUSTFLAGS");
    command
}

fn kernel() -> Result {
    ensure_toolchain_targets()?;
    run(&mut kernel_build("build"))?;
    println!(
        "{}",
        repository().join("target/kernel").join(KERNEL_TARGET).join("kernel/rosv-kernel").display()
    );
    Ok(())
}

fn test() -> Result {
    ensure_toolchain_targets()?;
    ensure_host_tools()?;
    offer_test_packages()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(kernel_build("clippy").args(["--", "-D", "warnings"]))?;
    run_tests(cargo().args(["test", "--workspace", "--no-fail-fast"]))
}

/// Runs `command` (a `cargo test`), its output passed through as it comes,
/// and ends with a summary over every test binary: passed, failed and
/// skipped tests, with each skipped test's reason.
fn run_tests(command: &mut Command) -> Result {
    eprintln!("xtask: running {command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    let report = Arc::new(Mutex::new(TestReport::default()));
    let stdout = child.stdout.take().map(|pipe| relay(pipe, false, report.clone()));
    let stderr = child.stderr.take().map(|pipe| relay(pipe, true, report.clone()));
    let status = child.wait().map_err(|error| format!("cannot wait for {command:?}: {error}"))?;
    for relay in [stdout, stderr].into_iter().flatten() {
        let _ = relay.join();
    }
    let report = report.lock().map(|report| report.clone()).unwrap_or_default();
    println!("\n{}", report.summary().trim_end());
    if status.success() && report.failed == 0 {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status}): {} tests failed", report.failed))
    }
}

/// Copies `pipe` line by line to this process's standard output (or
/// error), noting each line in `report`.
fn relay(
    pipe: impl Read + Send + 'static,
    is_stderr: bool,
    report: Arc<Mutex<TestReport>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|read| read > 0) {
            let _ = if is_stderr {
                std::io::stderr().write_all(&line)
            } else {
                std::io::stdout().write_all(&line)
            };
            if let Ok(mut report) = report.lock() {
                report.read_line(&String::from_utf8_lossy(&line));
            }
            line.clear();
        }
    })
}

fn fuzz(arguments: &[String]) -> Result {
    let Some(target) = arguments.first() else {
        return Err(
            "name a fuzz target: boot_config, cmdline, elf, fat, multiboot2, rofs, virtio_device or virtio_driver".into()
        );
    };
    if !is_on_path("cargo-fuzz") {
        return Err("cargo-fuzz is missing: cargo install cargo-fuzz (it needs a nightly toolchain)".into());
    }
    run(Command::new("cargo")
        .current_dir(repository().join("fuzz"))
        .args(["+nightly", "fuzz", "run", target])
        .args(&arguments[1..]))
}

fn fuzz_syscalls(arguments: &[String]) -> Result {
    ensure_host_tools()?;
    let output_directory = repository().join("target/guests");
    std::fs::create_dir_all(&output_directory).map_err(|error| error.to_string())?;
    let fuzzer = output_directory.join("fuzz");
    run(Command::new("musl-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&fuzzer)
        .arg(repository().join("tests/guest/fuzz.c")))?;
    run(cargo()
        .args(["run", "--quiet", "--release", "--package", "rosv", "--", "bench", "fuzz", "--exec"])
        .arg(&fuzzer)
        .args(arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_toolchain_is_read_from_the_file() {
        let text = "[toolchain]\nchannel = \"1.95.0\"\ncomponents = [\"rustfmt\"]\n\
                    targets = [\"x86_64-unknown-none\", \"x86_64-unknown-linux-musl\"]\n";
        let (channel, targets) = pinned_toolchain(text);
        assert_eq!(channel.as_deref(), Some("1.95.0"));
        assert_eq!(targets, ["x86_64-unknown-none", "x86_64-unknown-linux-musl"]);
        let repository_file = std::fs::read_to_string(repository().join(TOOLCHAIN_FILE)).unwrap();
        assert!(pinned_toolchain(&repository_file).1.contains(&KERNEL_TARGET.to_string()));
    }

    #[test]
    fn targets_without_a_sysroot_directory_are_missing() {
        let sysroot = std::env::temp_dir().join(format!("xtask-sysroot-{}", std::process::id()));
        std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-none")).unwrap();
        let targets = vec!["x86_64-unknown-none".to_string(), "x86_64-unknown-linux-musl".to_string()];
        assert_eq!(missing_targets(&sysroot, &targets), ["x86_64-unknown-linux-musl"]);
        let _ = std::fs::remove_dir_all(&sysroot);
    }
}
