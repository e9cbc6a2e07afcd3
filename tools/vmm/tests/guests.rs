//! The monitor against tiny hand-assembled guests: the PVH entry state,
//! the serial console, the ways a guest ends, the time limit, more vCPUs.
//!
//! Each guest is a few bytes of 32-bit code at its PVH entry, so these
//! tests run in milliseconds even where KVM emulates ring 0. They need a
//! usable `/dev/kvm` and say that they were skipped otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rosv_vmm::{BootSpec, Ending};

/// Where the guest's one segment goes.
const LOAD_ADDRESS: u64 = 0x10_0000;
/// ELF header and two program headers.
const HEADERS_SIZE: u64 = 64 + 2 * 56;
/// The PVH entry: the first byte after the headers.
const ENTRY: u64 = LOAD_ADDRESS + HEADERS_SIZE;

fn kvm_available(test: &str) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok() {
        return true;
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: /dev/kvm cannot be opened");
    false
}

/// An ELF with a PVH note whose entry runs `code`.
fn pvh_kernel(code: &[u8]) -> Vec<u8> {
    let note_offset = HEADERS_SIZE + code.len() as u64;
    let mut note = Vec::new();
    for word in [4u32, 4, rosv_abi::pvh::XEN_ELFNOTE_PHYS32_ENTRY] {
        note.extend_from_slice(&word.to_le_bytes());
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&(ENTRY as u32).to_le_bytes());
    let file_size = note_offset + note.len() as u64;
    let mut file = b"\x7fELF\x02\x01\x01".to_vec();
    file.resize(16, 0);
    file.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    file.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    file.extend_from_slice(&1u32.to_le_bytes());
    for word in [ENTRY, 64, 0] {
        file.extend_from_slice(&word.to_le_bytes()); // entry, program and section headers
    }
    file.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 2, 64, 0, 0] {
        file.extend_from_slice(&half.to_le_bytes());
    }
    let segments = [
        (1u32, 5u32, 0u64, LOAD_ADDRESS, file_size, 4096u64),
        (4, 4, note_offset, LOAD_ADDRESS + note_offset, note.len() as u64, 4),
    ];
    for (kind, flags, offset, address, size, align) in segments {
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&flags.to_le_bytes());
        for word in [offset, address, address, size, size, align] {
            file.extend_from_slice(&word.to_le_bytes());
        }
    }
    file.extend_from_slice(code);
    file.extend_from_slice(&note);
    file
}

/// Machine code that writes `text` to COM1, byte by byte.
fn print(text: &[u8]) -> Vec<u8> {
    let mut code = vec![0x66, 0xba, 0xf8, 0x03]; // mov dx, 0x3f8
    for &byte in text {
        code.extend_from_slice(&[0xb0, byte, 0xee]); // mov al, byte; out dx, al
    }
    code
}

/// Machine code that writes `status` to the debug-exit port, then halts.
fn power_off(status: u8) -> Vec<u8> {
    vec![0xb0, status, 0xe6, 0xf4, 0xf4] // mov al, status; out 0xf4, al; hlt
}

/// A console that keeps what the guest printed.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("no writer panicked").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Guest {
    _directory: tempfile::TempDir,
    kernel: PathBuf,
}

fn guest(code: &[u8]) -> Guest {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let kernel = directory.path().join("guest.elf");
    std::fs::write(&kernel, pvh_kernel(code)).expect("write the guest");
    Guest { _directory: directory, kernel }
}

fn spec(kernel: &Path, cpus: u32) -> BootSpec {
    BootSpec {
        kernel: kernel.to_path_buf(),
        initrd: None,
        disks: Vec::new(),
        network: None,
        vsock: None,
        command_line: String::from("test"),
        memory_mib: 16,
        cpus,
        has_acpi: true,
        hides_software_kvm_gaps: false,
        time_limit: Some(Duration::from_secs(60)),
        dump_requests: None,
    }
}

fn run(spec: &BootSpec) -> (Ending, String) {
    let console = Captured::default();
    let ending = rosv_vmm::run(spec, Box::new(console.clone())).expect("the VM starts");
    let output = String::from_utf8_lossy(&console.0.lock().expect("no writer panicked")).into_owned();
    (ending, output)
}

#[test]
fn a_guest_prints_and_powers_off_with_its_status() {
    if !kvm_available("a_guest_prints_and_powers_off_with_its_status") {
        return;
    }
    let mut code = print(b"hello from the guest\n");
    code.extend(power_off(42));
    let guest = guest(&code);
    for cpus in [1, 2, 4] {
        let (ending, output) = run(&spec(&guest.kernel, cpus));
        assert_eq!(ending, Ending::PoweredOff { status: 42 }, "{cpus} vCPUs");
        assert_eq!(output, "hello from the guest\n");
    }
}

#[test]
fn ebx_points_at_the_start_info_and_its_command_line() {
    if !kvm_available("ebx_points_at_the_start_info_and_its_command_line") {
        return;
    }
    let code = [
        0x81, 0x3b, 0x78, 0xc5, 0x6e, 0x33, // cmp dword [ebx], 0x336ec578
        0x75, 0x10, // jne fail (+16)
        0x8b, 0x43, 0x18, // mov eax, [ebx + 24]: cmdline_paddr
        0x81, 0x38, b't', b'e', b's', b't', // cmp dword [eax], "test"
        0x75, 0x05, // jne fail (+5)
        0xb0, 0x00, // mov al, 0
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
        0xb0, 0x01, // fail: mov al, 1
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ];
    let guest = guest(&code);
    let (ending, _) = run(&spec(&guest.kernel, 1));
    assert_eq!(ending, Ending::PoweredOff { status: 0 });
}

#[test]
fn the_i8042_reset_ends_the_vm() {
    if !kvm_available("the_i8042_reset_ends_the_vm") {
        return;
    }
    let guest = guest(&[0xb0, 0xfe, 0xe6, 0x64, 0xf4]); // mov al, 0xfe; out 0x64, al; hlt
    assert_eq!(run(&spec(&guest.kernel, 2)).0, Ending::Reset);
}

#[test]
fn unknown_ports_read_as_all_ones() {
    if !kvm_available("unknown_ports_read_as_all_ones") {
        return;
    }
    let code = [
        0xe4, 0x99, // in al, 0x99
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ];
    let guest = guest(&code);
    assert_eq!(run(&spec(&guest.kernel, 1)).0, Ending::PoweredOff { status: 0xff });
}

#[test]
fn a_triple_fault_reports_the_registers() {
    if !kvm_available("a_triple_fault_reports_the_registers") {
        return;
    }
    let guest = guest(&[0x0f, 0x0b]); // ud2, with no IDT
    let (ending, _) = run(&spec(&guest.kernel, 1));
    let Ending::Failed(failure) = ending else {
        panic!("expected a failure, got {ending:?}");
    };
    assert_eq!(failure.cpu, 0);
    assert!(failure.reason.contains("triple fault"), "{}", failure.reason);
    assert_eq!(failure.registers.as_ref().map(|registers| registers.rip()), Some(ENTRY));
}

#[test]
fn a_spinning_guest_is_stopped_at_the_time_limit() {
    if !kvm_available("a_spinning_guest_is_stopped_at_the_time_limit") {
        return;
    }
    let guest = guest(&[0xeb, 0xfe]); // jmp $
    let spec = BootSpec { time_limit: Some(Duration::from_millis(300)), ..spec(&guest.kernel, 2) };
    let started = std::time::Instant::now();
    assert_eq!(run(&spec).0, Ending::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn a_kernel_without_a_pvh_note_is_refused() {
    if !kvm_available("a_kernel_without_a_pvh_note_is_refused") {
        return;
    }
    let mut kernel = pvh_kernel(&power_off(0));
    // Turn the PT_NOTE program header into PT_NULL.
    kernel[64 + 56..64 + 56 + 4].copy_from_slice(&0u32.to_le_bytes());
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("linux.elf");
    std::fs::write(&path, kernel).unwrap();
    let error = rosv_vmm::run(&spec(&path, 1), Box::new(std::io::sink())).unwrap_err();
    assert!(error.to_string().contains("has no PVH note"), "{error}");
}
