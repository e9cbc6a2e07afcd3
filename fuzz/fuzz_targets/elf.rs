//! The ELF load planner and dynamic-section reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(plan) = rosv_elf::LoadPlan::parse(bytes) {
        assert!(!plan.segments.is_empty());
        assert!(plan.segments.windows(2).all(|pair| pair[0].end() <= pair[1].vaddr));
    }
    let _ = rosv_elf::find_note_header(bytes, b"Xen", 18);
    let _ = rosv_elf::dependencies(bytes);
});
