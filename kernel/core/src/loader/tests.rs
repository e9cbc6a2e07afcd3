use alloc::vec;

use super::*;
use crate::fake::FakeMachine;
use crate::memory::{Access, STACK_TOP};

/// A minimal ELF file: a code segment at `vaddr` holding `code`, and a data
/// segment one page later holding `data` plus `bss` zero bytes.
fn executable(kind: u16, vaddr: u64, code: &[u8], data: &[u8], bss: u64) -> Vec<u8> {
    let mut file = vec![0u8; 0x1000 + data.len().max(0x1000)];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2;
    file[5] = 1;
    file[16..18].copy_from_slice(&kind.to_le_bytes());
    file[18..20].copy_from_slice(&62u16.to_le_bytes());
    file[24..32].copy_from_slice(&(vaddr + 0x100).to_le_bytes());
    file[32..40].copy_from_slice(&64u64.to_le_bytes());
    file[54..56].copy_from_slice(&56u16.to_le_bytes());
    file[56..58].copy_from_slice(&2u16.to_le_bytes());
    let segments = [
        (5u32, 0u64, vaddr, 0x1000u64, 0x1000u64),
        (6, 0x1000, vaddr + 0x1000, data.len() as u64, data.len() as u64 + bss),
    ];
    for (index, (flags, offset, address, file_size, memory_size)) in segments.into_iter().enumerate() {
        let at = 64 + index * 56;
        file[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        file[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        file[at + 16..at + 24].copy_from_slice(&address.to_le_bytes());
        file[at + 32..at + 40].copy_from_slice(&file_size.to_le_bytes());
        file[at + 40..at + 48].copy_from_slice(&memory_size.to_le_bytes());
        file[at + 48..at + 56].copy_from_slice(&4096u64.to_le_bytes());
    }
    file[0x100..0x100 + code.len()].copy_from_slice(code);
    file[0x1000..0x1000 + data.len()].copy_from_slice(data);
    file
}

fn program<'a>(file: &'a Vec<u8>, arguments: &'a [Vec<u8>]) -> Program<'a> {
    Program { file, interpreter: None, path: "/app", arguments, environment: &[], random: [1; 16] }
}

#[test]
fn loads_a_fixed_executable_with_its_stack() {
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    let file = executable(2, 0x40_0000, &[0xf4, 0x90], b"data!", 0x3000);
    let arguments = vec![b"/app".to_vec(), b"x".to_vec()];
    let launch = load(&machine, &mut memory, &program(&file, &arguments)).unwrap();
    assert_eq!(launch.entry, 0x40_0100);
    let mut code = [0u8; 2];
    machine.read_memory(0x40_0100, &mut code).unwrap();
    assert_eq!(code, [0xf4, 0x90]);
    let mut data = [0u8; 5];
    machine.read_memory(0x40_1000, &mut data).unwrap();
    assert_eq!(&data, b"data!");
    let code_rights = machine.rights(0x40_0000).unwrap();
    assert!(code_rights.execute && !code_rights.write);
    let data_rights = machine.rights(0x40_1000).unwrap();
    assert!(data_rights.write && !data_rights.execute);
    // The bss pages fault in as zeroes; the heap starts after them.
    assert_eq!(
        memory.resolve_fault(&machine, 0x40_3ff8, Access::Read),
        crate::memory::FaultResolution::Mapped
    );
    let mut zero = [1u8; 8];
    machine.read_memory(0x40_3ff8, &mut zero).unwrap();
    assert_eq!(zero, [0; 8]);
    assert_eq!(memory.brk(0), 0x40_5000);
    // argc is at the stack pointer, which lies in the stack area.
    assert_eq!(launch.stack_pointer % 16, 0);
    assert!(launch.stack_pointer < STACK_TOP && launch.stack_pointer > STACK_TOP - 4096);
    let mut argc = [0u8; 8];
    machine.read_memory(launch.stack_pointer, &mut argc).unwrap();
    assert_eq!(u64::from_le_bytes(argc), 2);
    // The rest of the stack faults in on demand.
    assert_eq!(
        memory.resolve_fault(&machine, STACK_TOP - (1 << 20), Access::Write),
        crate::memory::FaultResolution::Mapped
    );
}

#[test]
fn loads_a_position_independent_executable_at_the_pie_base() {
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    let file = executable(3, 0, &[0xc3], b"", 0x10);
    let launch = load(&machine, &mut memory, &program(&file, &[b"/app".to_vec()])).unwrap();
    assert_eq!(launch.entry, PIE_BASE + 0x100);
    assert!(machine.rights(PIE_BASE).is_some_and(|rights| rights.execute));
}

/// A position-independent executable whose data segment became a
/// `PT_INTERP` naming /lib/ld.so.
fn dynamic_executable() -> Vec<u8> {
    let mut file = executable(3, 0, &[0xc3], b"", 0);
    let at = 64 + 56;
    file[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    file[at + 8..at + 16].copy_from_slice(&0x1800u64.to_le_bytes());
    file[at + 32..at + 40].copy_from_slice(&11u64.to_le_bytes());
    file[0x1800..0x180b].copy_from_slice(b"/lib/ld.so\0");
    file
}

/// The value of auxiliary vector entry `kind` on the initial stack.
fn auxiliary_value(machine: &FakeMachine, stack_pointer: u64, kind: u64) -> Option<u64> {
    let word = |address: u64| {
        let mut bytes = [0u8; 8];
        machine.read_memory(address, &mut bytes).unwrap();
        u64::from_le_bytes(bytes)
    };
    // Skip argc, argv and envp (each NULL-terminated).
    let mut cursor = stack_pointer + 8 * (word(stack_pointer) + 2);
    while word(cursor) != 0 {
        cursor += 8;
    }
    cursor += 8;
    loop {
        let (key, value) = (word(cursor), word(cursor + 8));
        if key == 0 {
            return None;
        }
        if key == kind {
            return Some(value);
        }
        cursor += 16;
    }
}

#[test]
fn dynamic_executables_start_in_their_interpreter() {
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    let file = dynamic_executable();
    assert_eq!(interpreter_path(&file, file.len() as u64).as_deref(), Some("/lib/ld.so"));
    let interpreter = executable(3, 0, &[0xf4], b"ld", 0);
    let arguments = [b"/app".to_vec()];
    let dynamic =
        Program { interpreter: Some(&interpreter as &dyn ExecutableFile), ..program(&file, &arguments) };
    let launch = load(&machine, &mut memory, &dynamic).unwrap();
    assert_eq!(launch.entry, INTERPRETER_BASE + 0x100, "the interpreter runs first");
    let mut code = [0u8; 1];
    machine.read_memory(INTERPRETER_BASE + 0x100, &mut code).unwrap();
    assert_eq!(code, [0xf4]);
    assert_eq!(auxiliary_value(&machine, launch.stack_pointer, auxv::AT_BASE), Some(INTERPRETER_BASE));
    assert_eq!(auxiliary_value(&machine, launch.stack_pointer, auxv::AT_ENTRY), Some(PIE_BASE + 0x100));
    assert_eq!(auxiliary_value(&machine, launch.stack_pointer, auxv::AT_PHDR), Some(PIE_BASE + 64));
    // A fixed-address "interpreter" is refused before anything is mapped.
    let fixed = executable(2, 0x40_0000, &[0xf4], b"", 0);
    let machine = FakeMachine::new();
    let refused = Program { interpreter: Some(&fixed as &dyn ExecutableFile), ..program(&file, &arguments) };
    let error = load(&machine, &mut crate::fake::address_space(&machine), &refused).unwrap_err();
    assert_eq!(error, LoadError::BadInterpreter("/lib/ld.so".into(), ElfError::NotExecutable));
    assert_eq!(machine.mapped_pages(), 0);
}

#[test]
fn refuses_dynamic_and_malformed_files() {
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    let file = dynamic_executable();
    let error = load(&machine, &mut memory, &program(&file, &[])).unwrap_err();
    assert_eq!(error, LoadError::DynamicallyLinked("/lib/ld.so".into()));
    let garbage = b"\x7fELF garbage".to_vec();
    let error = load(&machine, &mut memory, &program(&garbage, &[])).unwrap_err();
    assert_eq!(error, LoadError::Elf(ElfError::Truncated));
    assert_eq!(machine.mapped_pages(), 0);
}

#[test]
fn the_vdso_and_its_data_page_are_mapped_for_every_program() {
    static IMAGE: [u8; 100] = [0x7f; 100];
    let mut machine = FakeMachine::new();
    machine.vdso = Some(crate::machine::Vdso {
        image: &IMAGE,
        tsc_base: 1000,
        tsc_to_ns_multiplier: 3 << 32,
        realtime_offset_ns: 1_700_000_000_000_000_000,
    });
    let mut memory = crate::fake::address_space(&machine);
    let file = executable(2, 0x40_0000, &[0xf4], b"", 0);
    let launch = load(&machine, &mut memory, &program(&file, &[b"/app".to_vec()])).unwrap();
    assert_eq!(auxiliary_value(&machine, launch.stack_pointer, auxv::AT_SYSINFO_EHDR), Some(VDSO_ADDRESS));
    let mut image = [0u8; 100];
    machine.read_memory(VDSO_ADDRESS, &mut image).unwrap();
    assert_eq!(image, IMAGE);
    let word = |offset: usize| {
        let mut bytes = [0u8; 8];
        machine.read_memory(VDSO_DATA_ADDRESS + offset as u64, &mut bytes).unwrap();
        u64::from_le_bytes(bytes)
    };
    use rosv_abi::vdso as layout;
    assert_eq!(word(layout::FLAGS), layout::CLOCK_USABLE);
    assert_eq!(word(layout::TSC_BASE), 1000);
    assert_eq!(word(layout::TSC_TO_NS_MULTIPLIER), 3 << 32);
    assert_eq!(word(layout::REALTIME_OFFSET_NS), 1_700_000_000_000_000_000);
    let data = machine.rights(VDSO_DATA_ADDRESS).unwrap();
    assert!(data.read && !data.write && !data.execute);
    let code = machine.rights(VDSO_ADDRESS).unwrap();
    assert!(code.read && code.execute && !code.write);
    // Every program maps the same data page, so a step of the wall clock
    // reaches them all.
    let shared = super::vdso_data::frame(machine.vdso.as_ref().unwrap()).unwrap();
    assert_eq!(
        crate::machine::PageTables::mapped_frame(&*machine.current_tables(), VDSO_DATA_ADDRESS),
        Some(shared)
    );
    super::vdso_data::set_realtime_offset(1_800_000_000_000_000_000);
    assert_eq!(word(layout::REALTIME_OFFSET_NS), 1_800_000_000_000_000_000);
    // Without a vDSO there is no AT_SYSINFO_EHDR at all.
    let plain = FakeMachine::new();
    let launch =
        load(&plain, &mut crate::fake::address_space(&plain), &program(&file, &[b"/app".to_vec()])).unwrap();
    assert_eq!(auxiliary_value(&plain, launch.stack_pointer, auxv::AT_SYSINFO_EHDR), None);
}

/// A file that counts its reads and refuses any outside it.
struct CountingFile {
    bytes: Vec<u8>,
    reads: core::cell::Cell<usize>,
    largest: core::cell::Cell<usize>,
}

impl ExecutableFile for CountingFile {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        self.reads.set(self.reads.get() + 1);
        self.largest.set(self.largest.get().max(buffer.len()));
        self.bytes.read_at(offset, buffer)
    }
}

#[test]
fn segments_are_read_from_the_file_in_bounded_pieces() {
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    // A data segment of 3 MiB of file bytes after the code.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|index| (index % 251) as u8).collect();
    let file = CountingFile {
        bytes: executable(2, 0x40_0000, &[0xf4], &data, 0),
        reads: core::cell::Cell::new(0),
        largest: core::cell::Cell::new(0),
    };
    let arguments = [b"/app".to_vec()];
    let program = Program { file: &file, ..program(&file.bytes, &arguments) };
    load(&machine, &mut memory, &program).unwrap();
    assert!(file.largest.get() <= super::HEADER_BYTES.max(super::SEGMENT_CHUNK), "no read of the whole file");
    assert!(
        file.reads.get() >= 5,
        "the headers, then the segments a MiB at a time: {} reads",
        file.reads.get()
    );
    let mut loaded = vec![0u8; data.len()];
    machine.read_memory(0x40_1000, &mut loaded).unwrap();
    assert!(loaded == data, "the data segment arrives whole");
}

/// An executable in a ramfs file, whose pages the loader can map.
struct FileInRamfs {
    node: Arc<dyn crate::vfs::Node>,
    size: u64,
}

impl FileInRamfs {
    fn new(machine: &FakeMachine, bytes: &[u8]) -> Self {
        use crate::vfs::{Caller, FileSystem, NewNode};
        let filesystem = crate::fs::ramfs::RamFs::new(0o755);
        let caller = Caller::kernel(machine);
        let node = filesystem.root().create(&caller, "app", NewNode::File, 0o755).unwrap();
        assert_eq!(node.write_at(&caller, 0, bytes).unwrap(), bytes.len());
        FileInRamfs { node, size: bytes.len() as u64 }
    }
}

impl ExecutableFile for FileInRamfs {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        let machine = FakeMachine::new();
        let caller = crate::vfs::Caller::kernel(&machine);
        self.node.read_at(&caller, offset, buffer).map(|_| ()).map_err(|_| Errno::EIO)
    }

    fn mappable(&self) -> Option<(Arc<dyn crate::vfs::Node>, Arc<str>)> {
        Some((self.node.clone(), Arc::from("/app")))
    }
}

#[test]
fn whole_file_pages_are_mapped_on_demand_and_partial_ones_copied() {
    use crate::memory::FaultResolution;
    let machine = FakeMachine::new();
    let mut memory = crate::fake::address_space(&machine);
    let bytes = executable(2, 0x40_0000, &[0xf4, 0x90], b"data!", 0x3000);
    let file = FileInRamfs::new(&machine, &bytes);
    let arguments = vec![b"/app".to_vec()];
    let program = Program {
        file: &file,
        interpreter: None,
        path: "/app",
        arguments: &arguments,
        environment: &[],
        random: [1; 16],
    };
    load(&machine, &mut memory, &program).unwrap();
    // The code page is all file: nothing is mapped until it is touched,
    // and then it is the file's own page, read-only.
    assert_eq!(machine.rights(0x40_0000), None);
    assert_eq!(memory.resolve_fault(&machine, 0x40_0100, Access::Execute), FaultResolution::Mapped);
    let mut code = [0u8; 2];
    machine.read_memory(0x40_0100, &mut code).unwrap();
    assert_eq!(code, [0xf4, 0x90]);
    let (_, area) = memory.area_at(0x40_0000).unwrap();
    assert!(area.file.is_some());
    // The data segment's file part ends within its page: that page is a
    // copy, mapped now, with zeroes past the file part.
    let mut data = [1u8; 8];
    machine.read_memory(0x40_1000, &mut data).unwrap();
    assert_eq!(&data, b"data!\0\0\0");
    assert!(memory.area_at(0x40_1000).unwrap().1.file.is_none());
    // Past it, bss.
    assert_eq!(machine.rights(0x40_2000), None);
    assert_eq!(memory.resolve_fault(&machine, 0x40_2000, Access::Write), FaultResolution::Mapped);
}
