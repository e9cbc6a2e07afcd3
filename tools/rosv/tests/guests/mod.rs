// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

//! Builds the guest test programs in `tests/guest/` once per test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How a C guest is compiled and linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    MuslStatic,
    MuslStaticPie,
    GlibcStatic,
    GlibcStaticPie,
    /// Linked against musl's shared libc (a PIE with `PT_INTERP`).
    MuslDynamic,
    /// Linked against glibc's shared libraries.
    GlibcDynamic,
}

/// The statically linked variants, which every boot test runs.
pub const VARIANTS: [Variant; 4] =
    [Variant::MuslStatic, Variant::MuslStaticPie, Variant::GlibcStatic, Variant::GlibcStaticPie];

/// The dynamically linked variants.
pub const DYNAMIC_VARIANTS: [Variant; 2] = [Variant::MuslDynamic, Variant::GlibcDynamic];

impl Variant {
    fn suffix(self) -> &'static str {
        match self {
            Variant::MuslStatic => "musl",
            Variant::MuslStaticPie => "musl-pie",
            Variant::GlibcStatic => "glibc",
            Variant::GlibcStaticPie => "glibc-pie",
            Variant::MuslDynamic => "musl-dynamic",
            Variant::GlibcDynamic => "glibc-dynamic",
        }
    }
}

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository exists")
}

fn sources() -> PathBuf {
    repository().join("tests/guest")
}

fn output_directory() -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guests");
    std::fs::create_dir_all(&directory).expect("create the guest directory");
    directory
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot run {:?} to build {what}: {error}; install gcc and musl-tools", command.get_program())
    });
    assert!(
        output.status.success(),
        "building {what} failed: {command:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The C program `name` (from `tests/guest/<name>.c`) built as `variant`.
/// The static variants of every program are built together, the first time
/// one is asked for; a dynamic variant is built when it is asked for.
pub fn c_program(name: &str, variant: Variant) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if DYNAMIC_VARIANTS.contains(&variant) {
        static DYNAMIC: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let output = output_directory().join(format!("{name}-{}", variant.suffix()));
        let mut built = DYNAMIC.lock().expect("no builder panicked");
        let key = output.to_string_lossy().into_owned();
        if !built.contains(&key) {
            let source = sources().join(format!("{name}.c"));
            run(&mut compile_command(variant, &source, &output), &format!("{name} ({})", variant.suffix()));
            built.push(key);
        }
        return output;
    }
    let directory = BUILT.get_or_init(build_c_programs);
    directory.join(format!("{name}-{}", variant.suffix()))
}

fn build_c_programs() -> PathBuf {
    let directory = output_directory();
    for name in [
        "hello",
        "exit",
        "syscalls",
        "crash",
        "sleeper",
        "threads",
        "context-switch",
        "files",
        "signals",
        "clock",
        "events",
        "netpeer",
        "network",
        "network-options",
        "listeners",
        "local",
        "sockets",
        "blocking",
        "socket-errors",
        "interfaces",
        "http-echo",
        "winsize",
        "thread-churn",
        "soak",
        "wakeups",
        "memory",
        "oom",
        "fuzz",
        "hostile",
        "mappings",
        "signal-delivery",
        "credentials",
        "procfs",
        "accounting",
        "memory-errors",
        "transfer",
        "locks",
        "attributes",
        "nodes",
        "chroot",
        "loop",
        "mounts",
        "settings",
        "watches",
        "timers",
        "clock-step",
        "ipc",
        "ipc-permissions",
        "open-how",
        "map-count",
        "futex-vector",
        "access-times",
        "sched",
        "system",
        "processes",
        "processes-jobs",
        "processes-pidfd",
        "processes-permissions",
        "processes-sharing",
        "processes-interrupts",
        "pty",
        "ptrace",
        "spawn-cost",
        "overlay",
        "disk-tree",
        "nfs",
        "p9",
        "namespaces",
    ] {
        let source = sources().join(format!("{name}.c"));
        for variant in VARIANTS {
            let output = directory.join(format!("{name}-{}", variant.suffix()));
            let mut command = compile_command(variant, &source, &output);
            run(&mut command, &format!("{name} ({})", variant.suffix()));
        }
    }
    directory
}

fn compile_command(variant: Variant, source: &Path, output: &Path) -> Command {
    let musl = Path::new("/usr/lib/x86_64-linux-musl");
    match variant {
        Variant::MuslStatic => {
            let mut command = Command::new("musl-gcc");
            command.args(["-static", "-O2", "-pthread", "-o"]).arg(output).arg(source);
            command
        }
        Variant::MuslStaticPie => {
            // musl-gcc's specs cannot link static PIE; link by hand with
            // musl's rcrt1.o, which relocates the program itself.
            let gcc_file = |name: &str| -> PathBuf {
                let output =
                    Command::new("gcc").arg(format!("-print-file-name={name}")).output().expect("gcc");
                PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
            };
            let libgcc = Command::new("gcc").arg("-print-libgcc-file-name").output().expect("gcc");
            let mut command = Command::new("gcc");
            command
                .args([
                    "-static-pie",
                    "-fPIE",
                    "-O2",
                    "-nostdinc",
                    "-nostdlib",
                    "-isystem",
                    "/usr/include/x86_64-linux-musl",
                ])
                .arg("-isystem")
                .arg(gcc_file("include"))
                .arg("-o")
                .arg(output)
                .arg(musl.join("rcrt1.o"))
                .arg(musl.join("crti.o"))
                .arg(gcc_file("crtbeginS.o"))
                .arg(source)
                .arg(format!("-L{}", musl.display()))
                .arg("-lc")
                .arg(String::from_utf8_lossy(&libgcc.stdout).trim())
                .arg(gcc_file("crtendS.o"))
                .arg(musl.join("crtn.o"));
            command
        }
        Variant::GlibcStatic => {
            let mut command = Command::new("gcc");
            command.args(["-static", "-O2", "-pthread", "-o"]).arg(output).arg(source);
            command
        }
        Variant::GlibcStaticPie => {
            let mut command = Command::new("gcc");
            command.args(["-static-pie", "-fPIE", "-O2", "-pthread", "-o"]).arg(output).arg(source);
            command
        }
        Variant::MuslDynamic => {
            let mut command = Command::new("musl-gcc");
            command.args(["-O2", "-pthread", "-o"]).arg(output).arg(source);
            command
        }
        Variant::GlibcDynamic => {
            let mut command = Command::new("gcc");
            command.args(["-O2", "-pthread", "-o"]).arg(output).arg(source);
            command
        }
    }
}

/// The program from `tests/guest/syscall-exit.S`, with no C library.
pub fn syscall_exit() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| assembled("syscall-exit")).clone()
}

/// The program from `tests/guest/syscall-cat.S`, with no C library: it
/// runs even where KVM emulates ring 0.
pub fn syscall_cat() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| assembled("syscall-cat")).clone()
}

/// Assembles `tests/guest/NAME.S` into a static program without a C
/// library.
fn assembled(name: &str) -> PathBuf {
    let output = output_directory().join(name);
    let mut command = Command::new("gcc");
    command.args(["-static", "-nostdlib", "-o"]).arg(&output).arg(sources().join(format!("{name}.S")));
    run(&mut command, name);
    output
}

/// The program from `tests/guest/connect-free.c`, with no C library and
/// no SSE instructions, so that it runs even where KVM emulates ring 0.
pub fn connect_free() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| freestanding_program("connect-free")).clone()
}

/// The program from `tests/guest/argument-digest.c`, built like
/// [`connect_free`].
pub fn argument_digest() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| freestanding_program("argument-digest")).clone()
}

/// The program from `tests/guest/vsock-free.c`, built like
/// [`connect_free`]: vsock and HTTP without a C library.
pub fn vsock_free() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| freestanding_program("vsock-free")).clone()
}

/// Builds `tests/guest/<name>.c` with no C library and no SSE instructions.
fn freestanding_program(name: &str) -> PathBuf {
    let output = output_directory().join(name);
    let mut command = Command::new("gcc");
    command
        .args([
            "-static",
            "-nostdlib",
            "-fno-builtin",
            "-mgeneral-regs-only",
            "-fno-stack-protector",
            "-fno-tree-loop-distribute-patterns",
            "-O1",
            "-o",
        ])
        .arg(&output)
        .arg(sources().join(format!("{name}.c")));
    run(&mut command, name);
    output
}

/// The Rust program in `tests/guest/<name>`, built for musl.
pub fn rust_program(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(built_name, _)| built_name == name) {
        return path.clone();
    }
    let target_directory = output_directory().join("rust");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(sources().join(name))
        .args(["build", "--quiet", "--release", "--target", "x86_64-unknown-linux-musl", "--target-dir"])
        .arg(&target_directory)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    run(&mut command, name);
    let path = target_directory.join("x86_64-unknown-linux-musl/release").join(name);
    built.push((name.to_string(), path.clone()));
    path
}

/// The Rust program in `tests/guest/rust-hello`.
pub fn rust_hello() -> PathBuf {
    rust_program("rust-hello")
}

/// Runs the C check program `name` built for `variant` on the host: every
/// check passes there, so that the checks say what Linux does.
pub fn assert_checks_pass_on_linux(name: &str, variant: Variant) {
    let program = c_program(name, variant);
    let host = Command::new(&program).output().expect("run the program on the host");
    let stdout = crate::support::text(&host.stdout);
    assert!(
        stdout.contains("\n0 checks failed\n") || stdout.starts_with("0 checks failed\n"),
        "{name} {variant:?} on Linux:\n{stdout}"
    );
    assert_eq!(host.status.code(), Some(0), "{name} {variant:?} on Linux:\n{stdout}");
}

/// Runs the C check program `name` built for `variant` in rosv on `cpus`
/// processors: every check passes and it exits with 0.
pub fn assert_checks_pass(name: &str, variant: Variant, cpus: &str) {
    let program = c_program(name, variant);
    let path = program.to_str().expect("UTF-8 path");
    let output = crate::support::rosv_run(&["--cpus", cpus, "--exec", path]);
    let stdout = crate::support::text(&output.stdout);
    let console = format!("{stdout}{}", crate::support::text(&output.stderr));
    assert!(stdout.contains("\n0 checks failed\n"), "{name} {variant:?} on {cpus} CPUs:\n{console}");
    assert_eq!(output.status.code(), Some(0), "{name} {variant:?} on {cpus} CPUs:\n{console}");
}
