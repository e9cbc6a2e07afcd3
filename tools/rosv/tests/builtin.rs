//! Boot tests of the built-in KVM monitor (`rosv run --hypervisor builtin`).
//!
//! They need a usable `/dev/kvm` and say that they were skipped otherwise.
//! On `kvm_pvm` hosts, which cannot run a C library's SSE code in ring 0,
//! the guests are the assembly program `tests/guest/syscall-exit.S` and the
//! kernel's own messages; C programs run only where KVM is hardware.

mod guests;
mod support;

use guests::{VARIANTS, Variant};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use support::{TapDevice, kvm_is_software, path, rosv, rosv_run, serve_once, skip, text, unused_network};

/// Whether `/dev/kvm` can be used here; says why not otherwise.
fn kvm_available(test: &str) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return false;
    }
    true
}

/// `rosv run --hypervisor builtin` with `arguments`.
fn run_builtin(arguments: &[&str]) -> std::process::Output {
    let mut all = vec!["--hypervisor", "builtin"];
    all.extend_from_slice(arguments);
    rosv_run(&all)
}

#[test]
fn the_exit_status_of_the_program_becomes_rosvs() {
    if !kvm_available("the_exit_status_of_the_program_becomes_rosvs") {
        return;
    }
    let output = run_builtin(&["--verbose", "--exec", path(&guests::syscall_exit())]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    // The application's output, framed on the serial port, is taken apart
    // from the kernel's text.
    assert_eq!(text(&output.stdout), "syscall-only program\n");
    assert!(stderr.contains("Booted in "), "{stderr}");
    assert!(!stderr.contains("rosv-exit") && !stderr.contains("rosv-out"), "records are taken out: {stderr}");
}

#[test]
fn kernel_errors_and_the_bootchart_reach_the_console() {
    if !kvm_available("kernel_errors_and_the_bootchart_reach_the_console") {
        return;
    }
    let program = guests::syscall_exit();
    let output = run_builtin(&["--kernel-args=--frobnicate", "--exec", path(&program)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown option --frobnicate"));
    assert_eq!(text(&output.stdout), "", "the program never ran");

    let output = run_builtin(&["--bootchart", "--exec", path(&program)]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for phase in
        ["kernel entered", "memory initialized", "clock calibrated", "SMP launched", "VFS mounted", "main"]
    {
        assert!(stderr.contains(phase), "{phase}: {stderr}");
    }
}

#[test]
fn every_cpu_starts_from_the_madt_or_the_mp_table() {
    if !kvm_available("every_cpu_starts_from_the_madt_or_the_mp_table") {
        return;
    }
    let program = guests::syscall_exit();
    for (cpus, acpi, source) in [("1", "on", "Madt"), ("2", "on", "Madt"), ("2", "off", "MpTable")] {
        let arguments = ["--cpus", cpus, "--acpi", acpi, "--kernel-args=--verbose", "--exec", path(&program)];
        let mut output = run_builtin(&arguments);
        // The kernel waits 201 ms for a started processor to report in;
        // where KVM emulates ring 0 and the host is busy, its real-mode
        // start can take longer. Such a miss is the kernel's timing, not
        // the monitor's: try again, a few times.
        for _ in 0..3 {
            if !text(&output.stderr).contains("did not start") {
                break;
            }
            println!("a processor was slow to start; booting again");
            output = run_builtin(&arguments);
        }
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(&format!("{cpus} processors listed ({source})")), "{stderr}");
        assert!(stderr.contains(&format!("{cpus} processors running")), "{stderr}");
        assert!(stderr.contains("boot protocol Pvh"), "{stderr}");
        assert!(stderr.contains("clock: Kvmclock"), "CPUID shows the hypervisor leaves: {stderr}");
    }
}

#[test]
fn a_vm_that_runs_too_long_is_stopped_after_reporting() {
    if !kvm_available("a_vm_that_runs_too_long_is_stopped_after_reporting") {
        return;
    }
    // --noshutdown keeps the kernel halted after the program ends.
    let program = guests::syscall_exit();
    let arguments = [
        "run",
        "--hypervisor",
        "builtin",
        "--timeout",
        "5",
        "--kernel-args=--noshutdown",
        "--exec",
        path(&program),
    ];
    let output = rosv(&arguments);
    assert_eq!(output.status.code(), Some(124));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("did not finish within 5 s"), "{stderr}");
    assert!(stderr.contains("cpu 0: thread"), "the NMI made the kernel report: {stderr}");
}

#[test]
fn a_guest_that_triple_faults_is_an_error_with_its_registers() {
    if !kvm_available("a_guest_that_triple_faults_is_an_error_with_its_registers") {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let kernel = directory.path().join("ud2.elf");
    // ud2 at the PVH entry, with no IDT: #UD, #DF, triple fault.
    std::fs::write(&kernel, support::pvh_kernel(&[0x0f, 0x0b])).expect("write the kernel");
    let output = run_builtin(&["--kernel", path(&kernel), "--exec", path(&guests::syscall_exit())]);
    assert_eq!(output.status.code(), Some(125));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("vCPU 0 stopped: triple fault"), "{stderr}");
    assert!(stderr.contains(&format!("RIP {:#018x}", support::PVH_KERNEL_ENTRY)), "{stderr}");
}

#[test]
fn more_disks_are_virtio_block_devices_the_kernel_mounts() {
    if !kvm_available("more_disks_are_virtio_block_devices_the_kernel_mounts") {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let program = guests::syscall_exit();
    let build = rosv(&["build", "--exec", path(&program), "-o", path(&image)]);
    assert!(build.status.success());
    let data = image.join("root.rofs");
    let output = run_builtin(&[
        "--disk",
        path(&data),
        "--kernel-args=--verbose --mount-fs=rofs,/dev/vdb,/data",
        "--exec",
        path(&program),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "the mount succeeded: {stderr}");
    assert!(stderr.contains("vda: virtio block device at mmio 0xd0000000 (v2, gsi 5)"), "{stderr}");
    assert!(stderr.contains("vdb: virtio block device at mmio 0xd0001000 (v2, gsi 6)"), "{stderr}");
}

/// A tap device with the host at 192.168.N.1/24, held by one test at a
/// time: the tests of this file run side by side, and would otherwise pick
/// the same free network.
struct TapNetwork {
    // Declared first: the device goes before the next test may start.
    tap: TapDevice,
    network_number: u8,
    _turn: MutexGuard<'static, ()>,
}

/// Waits for the other tap tests, then creates a tap network named after
/// `letter`; `None` after saying why when there can be none (not root, no
/// `ip`, no free network).
fn tap_network(test: &str, letter: char) -> Option<TapNetwork> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(network_number) = unused_network() else {
        skip(test, "no free 192.168.N.0/24 network for the tap device");
        return None;
    };
    let name = format!("rosvb{letter}{}", std::process::id());
    match TapDevice::create(&name, Some(&format!("192.168.{network_number}.1/24"))) {
        Ok(tap) => Some(TapNetwork { tap, network_number, _turn: turn }),
        Err(why) => {
            skip(test, &format!("cannot create a tap device ({why})"));
            None
        }
    }
}

#[test]
fn a_tap_device_becomes_a_network_card_after_the_disks() {
    let test = "a_tap_device_becomes_a_network_card_after_the_disks";
    if !kvm_available(test) {
        return;
    }
    let Some(network) = tap_network(test, 'a') else {
        return;
    };
    let (tap, network_number) = (&network.tap, network.network_number);
    // No DHCP server on the tap device: the guest gets a static address.
    let output = run_builtin(&[
        "--net",
        &format!("tap:{}", tap.name()),
        &format!("--kernel-args=--verbose --ip=eth0,192.168.{network_number}.2,255.255.255.0"),
        "--exec",
        path(&guests::syscall_exit()),
    ]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("eth0: virtio network card at mmio 0xd0001000 (v2, gsi 6)"), "{stderr}");
    assert!(stderr.contains(&format!("eth0 52:54:00:12:34:56 192.168.{network_number}.2/24")), "{stderr}");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
}

#[test]
fn a_guest_on_the_tap_device_talks_tcp_with_the_host() {
    let test = "a_guest_on_the_tap_device_talks_tcp_with_the_host";
    if !kvm_available(test) {
        return;
    }
    let Some(network) = tap_network(test, 'b') else {
        return;
    };
    let (tap, network_number) = (&network.tap, network.network_number);
    let host = Ipv4Addr::new(192, 168, network_number, 1);
    let listener = TcpListener::bind((host, 0)).expect("bind a port on the tap device's address");
    let port = listener.local_addr().expect("the listener's address").port().to_string();
    let served = serve_once(listener, Duration::from_secs(60));
    let output = run_builtin(&[
        "--net",
        &format!("tap:{}", tap.name()),
        &format!("--kernel-args=--ip=eth0,192.168.{network_number}.2,255.255.255.0"),
        "--exec",
        path(&guests::connect_free()),
        "--",
        &host.to_string(),
        &port,
        "hello over the tap",
    ]);
    let stdout = text(&output.stdout);
    let received = served.recv_timeout(Duration::from_secs(5));
    assert!(
        matches!(&received, Ok(Ok(line)) if line == "hello over the tap"),
        "the host received {received:?}: {stdout}"
    );
    assert!(stdout.contains("received: welcome, hello over the tap"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn what_the_monitor_lacks_is_refused_in_one_line() {
    let program = guests::syscall_exit();
    let pc = run_builtin(&["--machine", "pc", "--exec", path(&program)]);
    let pci = run_builtin(&["--virtio", "modern", "--exec", path(&program)]);
    let net = run_builtin(&["--net", "user", "--exec", path(&program)]);
    let forward = run_builtin(&["--net", "user", "--forward", "8080:80", "--exec", path(&program)]);
    for (output, message) in [
        (&net, "--net user is QEMU's user-mode network, which the built-in monitor lacks"),
        (&forward, "--net user is QEMU's user-mode network, which the built-in monitor lacks"),
        (&pc, "the built-in monitor has no pc machine"),
        (&pci, "--virtio modern: the built-in monitor has no PCI bus"),
    ] {
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(125), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn c_programs_run_where_kvm_is_hardware() {
    let test = "c_programs_run_where_kvm_is_hardware";
    if !kvm_available(test) {
        return;
    }
    if kvm_is_software() {
        skip(test, "this host's KVM is kvm_pvm, which cannot run SSE instructions in ring 0");
        return;
    }
    for variant in VARIANTS {
        let output =
            run_builtin(&["--cpus", "2", "--exec", path(&guests::c_program("hello", variant)), "--", "one"]);
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
        assert!(text(&output.stdout).contains("Hello, world!\n"), "{variant:?}");
    }
    let output = run_builtin(&["--exec", path(&guests::c_program("exit", Variant::GlibcStatic))]);
    assert_eq!(output.status.code(), Some(3));
}
