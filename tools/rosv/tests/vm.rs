//! Boot tests: the real kernel in real virtual machines.
//!
//! Every test boots QEMU's microvm (KVM where it is real hardware
//! virtualization, else TCG) through `rosv run` or a raw QEMU command, with
//! a timeout, and checks what the guest printed and the exit status. The
//! Firecracker tests run when `firecracker` is on PATH and say that they
//! were skipped otherwise.

mod guests;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use guests::{VARIANTS, Variant};
use support::{TIMEOUT_SECONDS, firecracker_available, kvm_is_software, path, rosv_run, skip, text};

fn rosv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rosv"))
}

#[test]
fn c_hello_runs_in_every_libc_and_link_mode() {
    for variant in VARIANTS {
        let program = guests::c_program("hello", variant);
        let output =
            rosv_run(&["--exec", path(&program), "--env", "GREETING=hi there", "--", "one", "two words"]);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
        let name = program.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        let expected = format!(
            "Hello, world!\nargv[0]=/{name}\nargv[1]=one\nargv[2]=two words\nenv GREETING=hi there\n\
             env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nenv HOME=/\n"
        );
        assert_eq!(stdout, expected, "{variant:?}: the program's output alone");
        let stderr = text(&output.stderr);
        assert!(!stderr.contains("Booted in") && !stderr.contains("rosv-exit"), "{variant:?}: {stderr}");
    }
}

#[test]
fn exit_status_becomes_the_status_of_rosv() {
    for variant in [Variant::MuslStatic, Variant::GlibcStaticPie] {
        let output = rosv_run(&["--exec", path(&guests::c_program("exit", variant))]);
        assert_eq!(output.status.code(), Some(3), "{variant:?}");
        assert_eq!(text(&output.stdout), "exiting with status 3\n");
    }
    let output = rosv_run(&["--exec", path(&guests::syscall_exit())]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text(&output.stdout), "syscall-only program\n");
}

#[test]
fn rust_hello_runs_with_arguments_and_environment() {
    let output =
        rosv_run(&["--exec", path(&guests::rust_hello()), "--env", "GREETING=salut", "--", "200", "x"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(200), "statuses above 127 survive: {stdout}");
    assert!(stdout.contains("Hello from Rust! 3 arguments"), "{stdout}");
    assert!(stdout.contains("argv[2]=x\nGREETING=salut\nsum=4999950000\n"), "{stdout}");
}

#[test]
fn system_calls_behave_like_linux() {
    for variant in VARIANTS {
        let output = rosv_run(&["--exec", path(&guests::c_program("syscalls", variant))]);
        let stdout = text(&output.stdout);
        assert!(stdout.contains("0 checks failed"), "{variant:?}: {stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}

#[test]
fn bootchart_lists_the_boot_phases() {
    let output = rosv_run(&["--bootchart", "--exec", path(&guests::c_program("hello", Variant::MuslStatic))]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0));
    for phase in [
        "bootchart",
        "kernel entered",
        "CPU initialized",
        "memory initialized",
        "clock calibrated",
        "VFS mounted",
        "main",
    ] {
        assert!(stderr.contains(phase), "{phase} on standard error: {stderr}");
    }
    assert!(!stderr.contains("Booted in"), "the bootchart replaces the one-line summary");
    assert!(
        text(&output.stdout).starts_with("Hello, world!\n"),
        "the program's output alone on standard output"
    );
}

#[test]
fn the_boot_time_shows_under_verbose_only() {
    let program = guests::c_program("hello", Variant::MuslStatic);
    let quiet = rosv_run(&["--exec", path(&program)]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(text(&quiet.stderr), "", "a run that goes well says nothing of its own");
    let verbose = rosv_run(&["--verbose", "--exec", path(&program)]);
    assert_eq!(verbose.status.code(), Some(0));
    let stderr = text(&verbose.stderr);
    assert!(stderr.lines().any(|line| line.starts_with("Booted in ")), "{stderr}");
    assert!(stderr.contains("qemu-system-x86_64"), "the hypervisor's command: {stderr}");
    assert!(!text(&verbose.stdout).contains("Booted in"), "standard output is the program's");
}

#[test]
fn an_unknown_kernel_option_is_named_and_fails() {
    let program = guests::c_program("hello", Variant::MuslStatic);
    let output = rosv_run(&["--kernel-args=--frobnicate", "--exec", path(&program)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown option --frobnicate"));
    assert_eq!(text(&output.stdout), "", "the program never ran");
    let output = rosv_run(&["--kernel-args=--cwd=/nowhere", "--exec", path(&program)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--cwd=/nowhere: not an absolute path to a directory"));
}

#[test]
fn a_crashing_program_is_reported_as_a_segmentation_fault() {
    let output = rosv_run(&["--exec", path(&guests::c_program("crash", Variant::GlibcStatic))]);
    assert_eq!(output.status.code(), Some(128 + 11));
    assert_eq!(text(&output.stdout), "about to crash\n");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("segmentation fault") && stderr.contains("accessing 0x10"), "{stderr}");
}

#[test]
fn a_vm_that_runs_too_long_is_stopped() {
    let output = rosv()
        .args(["run", "--timeout", "3", "--exec", path(&guests::c_program("sleeper", Variant::MuslStatic))])
        .output()
        .expect("run rosv");
    assert_eq!(output.status.code(), Some(124));
    assert!(text(&output.stderr).contains("did not finish within 3 s"), "{}", text(&output.stderr));
}

#[test]
fn files_rosv_cannot_run_get_clear_errors() {
    let text_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("notes.txt");
    std::fs::write(&text_file, "echo hi\n").expect("write a text file");
    let not_elf = rosv_run(&["--exec", path(&text_file)]);
    assert_eq!(not_elf.status.code(), Some(125));
    assert!(text(&not_elf.stderr).contains("is not an ELF executable"));
    // A script is not refused: it runs through its interpreter.
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write a script");
    let output = rosv_run(&["--exec", path(&script)]);
    assert_eq!(text(&output.stdout), "hi\n", "{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
    let broken = Path::new(env!("CARGO_TARGET_TMPDIR")).join("broken.sh");
    std::fs::write(&broken, "#!/no/such/shell\n").expect("write a script");
    let output = rosv_run(&["--exec", path(&broken)]);
    assert_eq!(output.status.code(), Some(125));
    assert!(text(&output.stderr).contains("is run by /no/such/shell, which is not on this host"));
    let missing = rosv_run(&["--exec", "/no/such/program"]);
    assert!(text(&missing.stderr).contains("cannot read /no/such/program"));
}

#[test]
fn a_missing_hypervisor_is_named() {
    let output = rosv()
        .args(["run", "--exec", path(&guests::syscall_exit())])
        .env("PATH", "/nonexistent")
        .output()
        .expect("run rosv");
    assert_eq!(output.status.code(), Some(125));
    assert!(text(&output.stderr).contains("qemu-system-x86_64 was not found on PATH"));
}

#[test]
fn build_writes_an_image_that_run_boots() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let program = guests::c_program("hello", Variant::GlibcStatic);
    let build = rosv()
        .args([
            "build",
            "--exec",
            path(&program),
            "--env",
            "GREETING=from image",
            "-o",
            path(&image),
            "--",
            "default",
        ])
        .output()
        .expect("run rosv build");
    assert!(build.status.success(), "{}", text(&build.stderr));
    let output = rosv_run(&[path(&image)]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("argv[1]=default\nenv GREETING=from image\n"), "{stdout}");
    let replaced = rosv_run(&[path(&image), "--", "/hello-glibc", "other"]);
    assert!(text(&replaced.stdout).contains("argv[1]=other\n"), "a command after -- replaces the default");
    let not_an_image = rosv_run(&[path(directory.path())]);
    assert_eq!(not_an_image.status.code(), Some(125));
    assert!(text(&not_an_image.stderr).contains("is not a rosv image"));
}

/// The kernel written by `rosv kernel`.
fn kernel(directory: &Path, without_pvh_note: bool) -> PathBuf {
    let file = directory.join(if without_pvh_note { "kernel-linux.elf" } else { "kernel.elf" });
    let mut command = rosv();
    command.args(["kernel", "-o", path(&file)]);
    if without_pvh_note {
        command.arg("--no-pvh-note");
    }
    let output = command.output().expect("run rosv kernel");
    assert!(output.status.success(), "{}", text(&output.stderr));
    file
}

/// A ROFS image holding `files` (guest path, contents).
fn root_filesystem(directory: &Path, files: &[(&str, Vec<u8>)]) -> PathBuf {
    use rosv_rofs::writer::{Contents, Directory, Node, write_image};
    let mut root = Directory::default();
    for (guest_path, contents) in files {
        root.insert(guest_path, Node::File(Contents::Bytes(contents.clone()))).expect("insert a file");
    }
    let image = directory.join("root.rofs");
    let mut file = std::fs::File::create(&image).expect("create the image");
    write_image(&root, &mut file).expect("write the image");
    image
}

/// Boots `kernel` with `initrd` and `command_line` on a raw QEMU command.
fn raw_qemu(kernel: &Path, initrd: &Path, command_line: &str) -> Output {
    let debug_exit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot"];
    raw_qemu_machine(&["-M", "microvm"], &debug_exit, kernel, initrd, command_line)
}

/// Boots with a raw QEMU command on `machine`, with `devices` added.
fn raw_qemu_machine(
    machine: &[&str],
    devices: &[&str],
    kernel: &Path,
    initrd: &Path,
    command_line: &str,
) -> Output {
    let output = Command::new("timeout")
        .arg(TIMEOUT_SECONDS)
        .arg("qemu-system-x86_64")
        .args(machine)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "128M", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-serial", "stdio"])
        .args(devices)
        .args(["-kernel", path(kernel), "-initrd", path(initrd), "-append", command_line])
        .output()
        .expect("run qemu-system-x86_64");
    println!(
        "--- raw QEMU {machine:?}: {command_line}\nstatus {:?}\n{}{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

#[test]
fn a_raw_qemu_command_boots_the_kernel() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let kernel = kernel(directory.path(), false);
    let hello = std::fs::read(guests::c_program("hello", Variant::MuslStaticPie)).expect("read hello");
    let exit = std::fs::read(guests::c_program("exit", Variant::GlibcStatic)).expect("read exit");
    let initrd = root_filesystem(directory.path(), &[("/bin/hello", hello), ("/exit", exit)]);
    // QEMU exits with (status << 1) | 1 after the kernel writes the status
    // to isa-debug-exit.
    let output = raw_qemu(&kernel, &initrd, "--env=A=b /bin/hello x");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("Hello, world!\nargv[0]=/bin/hello\nargv[1]=x\nenv A=b\n"));
    let output = raw_qemu(&kernel, &initrd, "/exit");
    assert_eq!(output.status.code(), Some((3 << 1) | 1));
    // Commands separated by ';' run one after another; the last one's
    // status is the machine's.
    let output = raw_qemu(&kernel, &initrd, "/exit; /bin/hello second");
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("exiting with status 3") && stdout.contains("argv[1]=second"), "{stdout}");
}

#[test]
fn acpi_soft_off_ends_qemu_without_the_debug_exit_device() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let kernel = kernel(directory.path(), false);
    let exit = std::fs::read(guests::c_program("exit", Variant::MuslStatic)).expect("read exit");
    let initrd = root_filesystem(directory.path(), &[("/exit", exit)]);
    let qboot = "/usr/share/qemu/qboot.rom";
    let machines: [&[&str]; 2] = [&["-M", "microvm"], &["-M", "pc", "-bios", qboot]];
    for machine in machines {
        // Without isa-debug-exit the kernel falls through to ACPI S5, after
        // which QEMU exits with status 0 (hardware-reduced ACPI on microvm,
        // the PM1 control block on pc).
        let output = raw_qemu_machine(machine, &[], &kernel, &initrd, "--verbose /exit");
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{machine:?}: {stdout}");
        assert!(stdout.contains("ACPI soft off") && stdout.contains("exiting with status 3"), "{stdout}");
    }
}

#[test]
fn the_kernel_reports_missing_and_corrupt_programs() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let kernel = kernel(directory.path(), false);
    let mut truncated = std::fs::read(guests::c_program("hello", Variant::MuslStatic)).expect("read hello");
    truncated.truncate(100);
    let mut garbage = b"\x7fELF".to_vec();
    garbage.extend(std::iter::repeat_n(0xa5, 300));
    let initrd = root_filesystem(
        directory.path(),
        &[("/truncated", truncated), ("/garbage", garbage), ("/text", b"hello".to_vec())],
    );
    for (command, status, message) in [
        ("/truncated", 126, "rosv: /truncated: "),
        ("/garbage", 126, "rosv: /garbage: not a 64-bit little-endian x86-64 ELF file"),
        ("/text", 126, "rosv: /text: not an ELF file"),
        ("/missing", 127, "rosv: /missing: no such file or directory"),
    ] {
        let output = raw_qemu(&kernel, &initrd, command);
        assert_eq!(output.status.code(), Some((status << 1) | 1), "{command}");
        assert!(text(&output.stdout).contains(message), "{command}: {}", text(&output.stdout));
    }
    let output = raw_qemu(&kernel, &initrd, "--bogus /text");
    assert_eq!(output.status.code(), Some((2 << 1) | 1));
    assert!(text(&output.stdout).contains("unknown option --bogus"));
}

#[test]
fn firecracker_boots_through_both_entries() {
    if !firecracker_available("firecracker_boots_through_both_entries") {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let linux_entry = kernel(directory.path(), true);
    let program = guests::syscall_exit();
    for kernel_arguments in [vec![], vec!["--kernel", path(&linux_entry)]] {
        for cpus in ["1", "2", "4"] {
            let mut arguments =
                vec!["--hypervisor", "firecracker", "--cpus", cpus, "--kernel-args=--verbose"];
            arguments.extend(kernel_arguments.iter().copied());
            arguments.extend(["--exec", path(&program)]);
            let output = rosv_run(&arguments);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(3), "{stderr}");
            assert_eq!(text(&output.stdout), "syscall-only program\n", "taken out of the serial port");
            assert!(stderr.contains("hypervisor Firecracker"), "{stderr}");
            assert!(stderr.contains(&format!("{cpus} processors running")), "{stderr}");
            let protocol =
                if kernel_arguments.is_empty() { "boot protocol Pvh" } else { "boot protocol Linux" };
            assert!(stderr.contains(protocol), "{protocol}: {stderr}");
        }
    }
}

#[test]
fn firecracker_runs_c_and_rust_programs() {
    let test = "firecracker_runs_c_and_rust_programs";
    if !firecracker_available(test) {
        return;
    }
    if kvm_is_software() {
        skip(test, "this host's KVM is kvm_pvm, which cannot run SSE instructions in ring 0");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let linux_entry = kernel(directory.path(), true);
    let hello = guests::c_program("hello", Variant::GlibcStatic);
    let rust = guests::rust_hello();
    for kernel_arguments in [vec![], vec!["--kernel", path(&linux_entry)]] {
        let mut arguments = vec!["--hypervisor", "firecracker"];
        arguments.extend(kernel_arguments.iter().copied());
        let mut c_arguments = arguments.clone();
        c_arguments.extend(["--exec", path(&hello)]);
        let output = rosv_run(&c_arguments);
        assert_eq!(output.status.code(), Some(0));
        assert!(text(&output.stdout).starts_with("Hello, world!\n"));
        let mut rust_arguments = arguments.clone();
        rust_arguments.extend(["--exec", path(&rust), "--", "7"]);
        let output = rosv_run(&rust_arguments);
        assert_eq!(output.status.code(), Some(7));
    }
}

#[test]
fn programs_run_in_a_few_mib_of_memory() {
    // The kernel (some 2.2 MB of code, optimized for size), its heap and
    // a static hello fit in 5 MiB of guest RAM.
    let hello = guests::c_program("hello", Variant::MuslStatic);
    let output = rosv_run(&["--memory", "5M", "--exec", path(&hello)]);
    assert!(text(&output.stdout).contains("Hello, world!"), "{}", text(&output.stdout));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_kernel_stack_overflow_is_caught_by_its_guard_page() {
    // The kernel's self-test recurses in a kernel thread until its stack
    // ends: the guard page under the stack stops it with a report instead
    // of letting it write over the memory below.
    let hello = guests::c_program("hello", Variant::MuslStatic);
    let output = rosv_run(&["--kernel-args=--self-test=stack-overflow", "--exec", path(&hello)]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("kernel stack overflow: thread") && stderr.contains("ran off its kernel stack"),
        "{stderr}"
    );
    assert!(stderr.contains("recurse"), "the backtrace names the function: {stderr}");
    assert!(!text(&output.stdout).contains("Hello, world!"), "the program never ran");
    assert_eq!(output.status.code(), Some(125));
}

#[test]
fn the_vdso_tells_the_time_like_the_system_calls() {
    let variants = VARIANTS.iter().chain(guests::DYNAMIC_VARIANTS.iter());
    for &variant in variants {
        let program = guests::c_program("clock", variant);
        let output = rosv_run(&["--cpus", "2", "--exec", path(&program)]);
        let stdout = text(&output.stdout);
        assert!(stdout.contains("\n0 checks failed\n"), "{variant:?}:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}

/// Setting the wall clock moves timers armed at absolute wall-clock times,
/// cancels `TFD_TIMER_CANCEL_ON_SET` timerfds and ends absolute sleeps it
/// passes, and leaves relative timers alone. The program sets the clock,
/// so it cannot run on the host; Linux's behaviour is what it asserts
/// (and what Open POSIX's clock_settime tests check there).
#[test]
fn setting_the_wall_clock_moves_absolute_timers() {
    for &variant in &VARIANTS {
        let program = guests::c_program("clock-step", variant);
        let output = rosv_run(&["--exec", path(&program)]);
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("\n0 checks failed\n") && !stdout.contains("SKIPPED"),
            "{variant:?}:\n{stdout}"
        );
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}

/// The processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
        })
        .collect()
}

#[test]
fn a_vm_does_not_outlive_a_killed_rosv() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("sleeper-image");
    let sleeper = guests::c_program("sleeper", Variant::MuslStatic);
    let built = support::rosv(&["build", "--exec", path(&sleeper), "-o", path(&image)]);
    assert!(built.status.success());
    let mut guest = support::Guest::start(&[path(&image)]);
    if !guest.wait_for("sleeping", std::time::Duration::from_secs(120)) {
        guest.abandon("the guest did not start");
    }
    let image_text = path(&image).to_string();
    assert!(!processes_mentioning(&image_text).is_empty(), "QEMU runs the image");
    // SIGKILL: rosv cannot stop the VM itself.
    let _ = Command::new("kill").args(["-KILL", &guest.id().to_string()]).status();
    let _ = guest.finish();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_mentioning(&image_text).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(processes_mentioning(&image_text), Vec::<u32>::new(), "QEMU outlived rosv");
}

/// Root steps the wall clock with `date -s` (clock_settime), every later
/// reading follows it, and another user is refused.
#[test]
fn root_sets_the_wall_clock_and_others_may_not() {
    let busybox = std::path::Path::new("/bin/busybox");
    if !busybox.is_file() {
        skip(
            "root_sets_the_wall_clock_and_others_may_not",
            "/bin/busybox is missing (apt-get install busybox-static)",
        );
        return;
    }
    let script =
        "date -u -s '2031-05-06 07:08:09' >/dev/null && date -u '+%Y-%m-%d %H:%M' && sleep 1 && date -u +%Y";
    let output = rosv_run(&["--exec", path(busybox), "--", "sh", "-c", script]);
    assert_eq!(text(&output.stdout), "2031-05-06 07:08\n2031\n", "stderr: {}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
    // busybox reports the failure and goes on to print the unchanged date.
    let script = "date -u -s '2031-05-06 07:08:09' >/dev/null; date -u +%Y";
    let output = rosv_run(&["-u", "1000", "--exec", path(busybox), "--", "sh", "-c", script]);
    assert!(text(&output.stderr).contains("Operation not permitted"), "{}", text(&output.stderr));
    assert_ne!(text(&output.stdout), "2031\n");
    assert_eq!(output.status.code(), Some(0));
}
