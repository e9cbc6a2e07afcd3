//! Tiny guest programs generated as ELF bytes, for benchmarks: a static
//! Linux "hello", a program that takes memory until none is left, and a
//! reference kernel that does nothing but power off.
//!
//! Both are one `PT_LOAD` segment of hand-assembled x86-64 code, so the
//! tools need no compiler to produce them.

/// Machine code of the hello program: `write(1, message, length)`, then
/// `exit_group(0)`. The message follows the code.
fn hello_code(message: &[u8]) -> Vec<u8> {
    let mut code = vec![
        0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
        0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1
        0x48, 0x8d, 0x35, 0x11, 0x00, 0x00, 0x00, // lea rsi, [rip + 0x11]
        0xba, 0x00, 0x00, 0x00, 0x00, // mov edx, length (patched below)
        0x0f, 0x05, // syscall
        0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231 (exit_group)
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
        0xf4, // hlt (never reached)
    ];
    let length = u32::try_from(message.len()).unwrap_or(0);
    code[18..22].copy_from_slice(&length.to_le_bytes());
    code.extend_from_slice(message);
    code
}

/// Machine code of the memory toucher: maps 1 MiB at a time with
/// `MAP_POPULATE` (every page touched) until `mmap` fails or `limit_mib`
/// MiB are mapped, prints the count in decimal and a newline, and exits 0.
fn toucher_code(limit_mib: u32) -> Vec<u8> {
    let mut code = vec![
        0x45, 0x31, 0xe4, // xor r12d, r12d (MiB mapped)
        0x41, 0xbd, 0, 0, 0, 0, // mov r13d, limit (patched below)
    ];
    code[5..9].copy_from_slice(&limit_mib.to_le_bytes());
    let map_loop = code.len();
    code.extend_from_slice(&[
        0x4d, 0x39, 0xec, // cmp r12, r13
        0x73, 0x00, // jae done (patched)
        0xb8, 0x09, 0x00, 0x00, 0x00, // mov eax, 9 (mmap)
        0x31, 0xff, // xor edi, edi
        0xbe, 0x00, 0x00, 0x10, 0x00, // mov esi, 1 MiB
        0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, PROT_READ | PROT_WRITE
        0x41, 0xba, 0x22, 0x80, 0x00, 0x00, // mov r10d, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE
        0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, // mov r8, -1
        0x45, 0x31, 0xc9, // xor r9d, r9d
        0x0f, 0x05, // syscall
        0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff, // cmp rax, -4096
        0x77, 0x00, // ja done (an error) (patched)
        0x49, 0xff, 0xc4, // inc r12
        0xeb, 0x00, // jmp map_loop (patched)
    ]);
    let jae_done = map_loop + 4;
    let ja_done = code.len() - 6;
    let jmp_loop = code.len() - 1;
    let done = code.len();
    // Each rel8 counts from the end of its instruction.
    code[jae_done] = (done - (jae_done + 1)) as u8;
    code[ja_done] = (done - (ja_done + 1)) as u8;
    code[jmp_loop] = (map_loop as isize - (jmp_loop as isize + 1)) as u8;
    code.extend_from_slice(&[
        0x4c, 0x89, 0xe0, // mov rax, r12
        0x48, 0x8d, 0x74, 0x24, 0xff, // lea rsi, [rsp - 1]
        0xc6, 0x06, 0x0a, // mov byte [rsi], '\n'
        0xb9, 0x0a, 0x00, 0x00, 0x00, // mov ecx, 10
    ]);
    let digit = code.len();
    code.extend_from_slice(&[
        0x31, 0xd2, // xor edx, edx
        0x48, 0xf7, 0xf1, // div rcx
        0x80, 0xc2, 0x30, // add dl, '0'
        0x48, 0xff, 0xce, // dec rsi
        0x88, 0x16, // mov [rsi], dl
        0x48, 0x85, 0xc0, // test rax, rax
        0x75, 0x00, // jnz digit (patched)
    ]);
    let jnz_digit = code.len() - 1;
    code[jnz_digit] = (digit as isize - (jnz_digit as isize + 1)) as u8;
    code.extend_from_slice(&[
        0x48, 0x89, 0xe2, // mov rdx, rsp
        0x48, 0x29, 0xf2, // sub rdx, rsi (the digits and the newline)
        0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
        0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1
        0x0f, 0x05, // syscall
        0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231 (exit_group)
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
        0xf4, // hlt (never reached)
    ]);
    code
}

/// Machine code of the reference kernel, entered in 32-bit protected mode by
/// PVH: write 0 to QEMU's debug-exit port, pulse the i8042 reset line
/// (Firecracker), then halt.
const REFERENCE_CODE: &[u8] = &[
    0x31, 0xc0, // xor eax, eax
    0xe6, 0xf4, // out 0xf4, al
    0xb0, 0xfe, // mov al, 0xfe
    0xe6, 0x64, // out 0x64, al
    0xfa, // cli
    0xf4, // hlt
    0xeb, 0xfd, // jmp back to hlt
];

const LOAD_ADDRESS: u64 = 0x40_0000;
const KERNEL_LOAD_ADDRESS: u64 = 0x10_0000;
const HEADERS_SIZE: u64 = 64 + 56 * 2;

/// A static x86-64 Linux executable that prints `message` and exits 0.
pub fn hello(message: &[u8]) -> Vec<u8> {
    elf(LOAD_ADDRESS, &hello_code(message), None)
}

/// A static x86-64 Linux executable that maps and touches memory 1 MiB at
/// a time until no more is given or `limit_mib` is reached, then prints the
/// MiB it got.
pub fn toucher(limit_mib: u32) -> Vec<u8> {
    elf(LOAD_ADDRESS, &toucher_code(limit_mib), None)
}

/// A kernel that powers off at once, with a PVH note.
pub fn reference_kernel() -> Vec<u8> {
    elf(KERNEL_LOAD_ADDRESS, REFERENCE_CODE, Some(KERNEL_LOAD_ADDRESS + HEADERS_SIZE))
}

/// An ELF executable with one read-execute `PT_LOAD` holding the headers
/// and `code` at `address`; with `pvh_entry`, a `PT_NOTE` with the PVH note.
fn elf(address: u64, code: &[u8], pvh_entry: Option<u64>) -> Vec<u8> {
    let note: Vec<u8> = match pvh_entry {
        Some(entry) => [
            &4u32.to_le_bytes()[..],
            &4u32.to_le_bytes(),
            &rosv_abi::pvh::XEN_ELFNOTE_PHYS32_ENTRY.to_le_bytes(),
            b"Xen\0",
            &u32::try_from(entry).unwrap_or(0).to_le_bytes(),
        ]
        .concat(),
        None => Vec::new(),
    };
    let code_offset = HEADERS_SIZE;
    let note_offset = code_offset + code.len() as u64;
    let file_size = note_offset + note.len() as u64;
    let entry = address + code_offset;
    let mut file = Vec::with_capacity(file_size as usize);
    // ELF header.
    file.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    file.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&entry.to_le_bytes());
    file.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    file.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&64u16.to_le_bytes());
    file.extend_from_slice(&56u16.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes()); // e_phnum
    file.extend_from_slice(&[0; 6]);
    // PT_LOAD, read + execute, the whole file.
    program_header(&mut file, 1, 5, 0, address, file_size, 4096);
    // PT_NOTE (or PT_NULL when there is no note), 4-byte aligned as notes
    // are: QEMU's PVH loader rounds the note's name size up to p_align, so
    // with a page alignment it reads the entry from the wrong place and the
    // pc machine never starts the guest.
    let note_type = if note.is_empty() { 0 } else { 4 };
    program_header(&mut file, note_type, 4, note_offset, address + note_offset, note.len() as u64, 4);
    file.extend_from_slice(code);
    file.extend_from_slice(&note);
    file
}

fn program_header(
    file: &mut Vec<u8>,
    kind: u32,
    flags: u32,
    offset: u64,
    address: u64,
    size: u64,
    align: u64,
) {
    file.extend_from_slice(&kind.to_le_bytes());
    file.extend_from_slice(&flags.to_le_bytes());
    file.extend_from_slice(&offset.to_le_bytes());
    file.extend_from_slice(&address.to_le_bytes());
    file.extend_from_slice(&address.to_le_bytes());
    file.extend_from_slice(&size.to_le_bytes());
    file.extend_from_slice(&size.to_le_bytes());
    file.extend_from_slice(&align.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program just written at `path`. Another test's child may
    /// hold the file open for writing for a moment (it inherited the
    /// descriptor in the fork before its own exec): `ETXTBSY` then, and
    /// trying again succeeds.
    fn run_written(path: &std::path::Path) -> std::process::Output {
        for _ in 0..50 {
            match std::process::Command::new(path).output() {
                Err(error) if error.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                result => return result.unwrap(),
            }
        }
        panic!("{} stayed busy", path.display());
    }

    #[test]
    fn hello_runs_on_the_host() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("hello");
        std::fs::write(&path, hello(b"generated hello\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = run_written(&path);
        assert!(output.status.success());
        assert_eq!(output.stdout, b"generated hello\n");
        assert!(crate::image::check_executable(&path).is_ok());
    }

    #[test]
    fn the_toucher_runs_on_the_host_up_to_its_limit() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        for limit in [0, 7, 12] {
            let path = directory.path().join(format!("toucher-{limit}"));
            std::fs::write(&path, toucher(limit)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            let output = run_written(&path);
            assert!(output.status.success());
            assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{limit}\n"));
        }
    }

    #[test]
    fn the_reference_kernel_has_a_pvh_note() {
        let kernel = reference_kernel();
        let note =
            rosv_elf::find_note_header(&kernel, b"Xen", rosv_abi::pvh::XEN_ELFNOTE_PHYS32_ENTRY).unwrap();
        assert_eq!(note, Some(64 + 56));
    }
}
