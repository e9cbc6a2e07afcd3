//! Boot tests of how the application gets its arguments and environment:
//! as large as Linux allows on every hypervisor (in the boot configuration,
//! not the kernel command line), refused before boot beyond that, and
//! still from the command line when the kernel is booted by hand.

mod guests;
mod support;

use std::path::Path;
use std::process::Command;

use support::{firecracker_available, path, rosv, rosv_run, skip, text};

/// FNV-1a, 64 bits, as `tests/guest/argument-digest.c` computes it.
fn digest(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

/// Three arguments of `argument_bytes` and 16 environment entries of
/// `entry_bytes` (NULs included), each string different. At full size,
/// 100 KB and 96 KiB: 1.5 MiB of environment.
fn large_inputs(argument_bytes: usize, entry_bytes: usize) -> (Vec<String>, Vec<(String, String)>) {
    let arguments = (0..3u8)
        .map(|index| {
            (0..argument_bytes)
                .map(|offset| char::from(b'a' + ((offset * 7 + usize::from(index)) % 26) as u8))
                .collect()
        })
        .collect();
    let environment = (0..16)
        .map(|index| {
            let name = format!("V{index:02}");
            let value: String = (0..entry_bytes - name.len() - 2)
                .map(|offset| char::from(b'A' + ((offset * 3 + index) % 26) as u8))
                .collect();
            (name, value)
        })
        .collect();
    (arguments, environment)
}

/// The search path the kernel gives a program whose environment sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the digest program prints for `arguments` (after the program's
/// own path, `program`) and `environment` (to which the kernel adds `PATH`
/// and `HOME`, root's home in rosv's password file being `/`).
fn expected_lines(program: &str, arguments: &[String], environment: &[(String, String)]) -> Vec<String> {
    let mut environment = environment.to_vec();
    environment.push(("PATH".into(), DEFAULT_PATH.into()));
    environment.push(("HOME".into(), "/".into()));
    let mut lines = vec![format!("argc {}", arguments.len() + 1)];
    for (index, argument) in std::iter::once(program).chain(arguments.iter().map(String::as_str)).enumerate()
    {
        lines.push(format!(
            "argument {index}: {} bytes, digest {:x}",
            argument.len(),
            digest(argument.as_bytes())
        ));
    }
    let mut entries = Vec::new();
    for (name, value) in &environment {
        entries.extend_from_slice(format!("{name}={value}").as_bytes());
        entries.push(0);
    }
    lines.push(format!(
        "environment: {} entries, {} bytes, digest {:x}",
        environment.len(),
        entries.len(),
        digest(&entries)
    ));
    lines
}

/// Runs the digest program with the full-size large inputs on `machine`
/// (extra `rosv run` options) and checks that every byte arrived.
fn assert_large_inputs_arrive(machine: &[&str]) {
    assert_inputs_arrive(machine, large_inputs(100_000, 98_304));
}

/// Runs the digest program with `arguments` and `environment` on `machine`
/// and checks that every byte arrived.
fn assert_inputs_arrive(machine: &[&str], (arguments, environment): (Vec<String>, Vec<(String, String)>)) {
    let program = guests::argument_digest();
    let mut options: Vec<String> = machine.iter().map(|option| option.to_string()).collect();
    for (name, value) in &environment {
        options.push("--env".into());
        options.push(format!("{name}={value}"));
    }
    options.extend(["--exec".into(), path(&program).into(), "--".into()]);
    options.extend(arguments.iter().cloned());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["run", "--timeout", support::TIMEOUT_SECONDS])
        .args(&options)
        .output()
        .expect("run rosv");
    let stdout = text(&output.stdout);
    let summary: Vec<&str> = stdout.lines().filter(|line| line.len() < 200).collect();
    println!(
        "--- {machine:?}: status {:?}\n{}\n{}",
        output.status.code(),
        summary.join("\n"),
        text(&output.stderr)
    );
    for line in expected_lines("/argument-digest", &arguments, &environment) {
        assert!(
            stdout.lines().any(|printed| printed == line),
            "{machine:?}: missing \"{line}\" in:\n{}",
            summary.join("\n")
        );
    }
    assert_eq!(output.status.code(), Some(0), "{machine:?}");
}

#[test]
fn large_arguments_and_environment_arrive_intact_on_qemu() {
    assert_large_inputs_arrive(&[]);
    assert_large_inputs_arrive(&["--machine", "pc"]);
}

#[test]
fn large_arguments_and_environment_arrive_intact_on_the_builtin_monitor() {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(
            "large_arguments_and_environment_arrive_intact_on_the_builtin_monitor",
            "/dev/kvm cannot be opened",
        );
        return;
    }
    if support::kvm_is_software() {
        // Ring 0 emulated in software reads about 6 KB a second: far
        // beyond the old 4 KiB command line, within the time limit.
        assert_inputs_arrive(&["--hypervisor", "builtin"], large_inputs(20_000, 4_096));
    } else {
        assert_large_inputs_arrive(&["--hypervisor", "builtin"]);
    }
}

#[test]
fn large_arguments_and_environment_arrive_intact_on_firecracker() {
    if !firecracker_available("large_arguments_and_environment_arrive_intact_on_firecracker") {
        return;
    }
    assert_large_inputs_arrive(&["--hypervisor", "firecracker"]);
}

/// An image of the digest program whose command is `command_text` (in the
/// kernel's command-line syntax), which the host's own `execve` limits
/// would not let `rosv` receive as arguments.
/// `rosv run -e` overrides a variable the image sets, in its place, and a
/// program finds `PATH` and `HOME` although nothing set them, as under
/// `docker run`.
#[test]
fn run_overrides_the_image_environment_and_adds_path_and_home() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let built =
        rosv(&["build", "--exec", "/usr/bin/env", "--env", "A=image", "--env", "B=kept", "-o", path(&image)]);
    assert!(built.status.success(), "rosv build: {}", text(&built.stderr));
    let output = rosv_run(&["-e", "A=run", path(&image)]);
    assert_eq!(
        text(&output.stdout),
        format!("A=run\nB=kept\nPATH={DEFAULT_PATH}\nHOME=/\n"),
        "stderr:\n{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
    let output = rosv_run(&["-e", "PATH=/opt/bin", "-e", "HOME=/srv", path(&image)]);
    assert_eq!(text(&output.stdout), "A=image\nB=kept\nPATH=/opt/bin\nHOME=/srv\n");
    assert_eq!(output.status.code(), Some(0));
}

fn image_with_command(directory: &Path, command_text: &str) {
    let program = guests::argument_digest();
    let output = rosv(&["build", "--exec", path(&program), "--output", path(directory)]);
    assert_eq!(output.status.code(), Some(0), "rosv build");
    std::fs::write(directory.join("command"), command_text).expect("write the image's command");
}

#[test]
fn more_than_linux_allows_is_refused_before_boot() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    // 3 MB in 30 arguments of 100 KB.
    let argument = "x".repeat(100_000);
    let command = format!("/argument-digest {}", vec![argument.as_str(); 30].join(" "));
    let image = scratch.path().join("three-megabytes");
    image_with_command(&image, &command);
    let output = rosv_run(&[path(&image)]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("arguments and environment are too large"), "{stderr}");
    assert!(stderr.contains("2097152"), "the message names Linux's limit: {stderr}");
    assert!(!text(&output.stdout).contains("Booted in"), "refused before boot");
    assert_ne!(output.status.code(), Some(0));

    // One string over MAX_ARG_STRLEN.
    let image = scratch.path().join("long-argument");
    image_with_command(&image, &format!("/argument-digest {}", "y".repeat(140_000)));
    let output = rosv_run(&[path(&image)]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("argument 1 takes 140001 bytes") && stderr.contains("MAX_ARG_STRLEN"),
        "{stderr}"
    );
    assert_ne!(output.status.code(), Some(0));
}

/// Boots the kernel of the image in `image` by hand with QEMU, with
/// `append` as its command line and the image's root disk; returns the
/// console and QEMU's exit status.
fn boot_by_hand(image: &Path, append: &str) -> (String, Option<i32>) {
    let root = format!("id=root,format=raw,if=none,readonly=on,file={}", path(&image.join("root.rofs")));
    let output = Command::new("timeout")
        .arg(support::TIMEOUT_SECONDS)
        .args(["qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "128M"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .arg("-kernel")
        .arg(image.join("kernel.elf"))
        .args(["-append", append, "-drive", &root, "-device", "virtio-blk-device,drive=root"])
        .output()
        .expect("run qemu-system-x86_64");
    let console = text(&output.stdout);
    println!("--- QEMU with -append of {} bytes: status {:?}\n{console}", append.len(), output.status.code());
    (console, output.status.code())
}

#[test]
fn the_kernel_still_takes_the_command_from_its_command_line() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let image = scratch.path().join("image");
    image_with_command(&image, "/argument-digest");
    let (console, status) = boot_by_hand(&image, "--env=A=1 /argument-digest first second");
    for line in
        expected_lines("/argument-digest", &["first".into(), "second".into()], &[("A".into(), "1".into())])
    {
        assert!(console.lines().any(|printed| printed == line), "missing \"{line}\":\n{console}");
    }
    // isa-debug-exit: QEMU exits with (status << 1) | 1.
    assert_eq!(status, Some(1), "{console}");
}

#[test]
fn the_kernel_refuses_a_command_line_it_would_cut() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let image = scratch.path().join("image");
    image_with_command(&image, "/argument-digest");
    let append = format!("/argument-digest {}", "z".repeat(5000));
    let (console, status) = boot_by_hand(&image, &append);
    assert!(console.contains("the command line is longer than 4095 bytes"), "{console}");
    assert!(!console.contains("argc"), "the program must not run with a cut command line:\n{console}");
    assert_ne!(status, Some(1), "{console}");
}

#[test]
fn a_long_kernel_command_line_is_refused_before_boot() {
    let program = guests::argument_digest();
    let options = format!("--kernel-args={}", vec!["--verbose"; 500].join(" "));
    let output = rosv_run(&[&options, "--exec", path(&program)]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the kernel command line takes"), "{stderr}");
    assert_ne!(output.status.code(), Some(0));
}
