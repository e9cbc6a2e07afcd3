//! The processor: feature discovery, control registers, interrupts flag, TSC.

use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

const IA32_FS_BASE: u32 = 0xc000_0100;
#[cfg(target_os = "none")]
const IA32_GS_BASE: u32 = 0xc000_0101;

/// Processor features the kernel cares about, from CPUID.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    /// CPUID.1:ECX.XSAVE.
    pub has_xsave: bool,
    /// CPUID.1:ECX.AVX.
    pub has_avx: bool,
    /// CPUID.1:ECX.RDRAND.
    pub has_rdrand: bool,
    /// CPUID.1:ECX.HYPERVISOR: running in a virtual machine.
    pub is_virtualized: bool,
    /// CPUID.1:ECX.X2APIC.
    pub has_x2apic: bool,
    /// CPUID.1:ECX.TSC_DEADLINE.
    pub has_tsc_deadline: bool,
    /// CPUID.80000001:EDX.Page1GB.
    pub has_huge_pages_1g: bool,
    /// CPUID.80000007:EDX.InvariantTSC.
    pub has_invariant_tsc: bool,
    /// CPUID.1:EDX, the word Linux passes to applications as AT_HWCAP.
    pub hwcap: u32,
}

/// Reads the features of the current processor.
pub fn features() -> Features {
    let leaf1 = __cpuid(1);
    let max_extended = __cpuid(0x8000_0000).eax;
    let extended = |leaf: u32| {
        if max_extended >= leaf { Some(__cpuid(leaf)) } else { None }
    };
    let bit = |word: u32, index: u32| word & (1 << index) != 0;
    Features {
        has_xsave: bit(leaf1.ecx, 26),
        has_avx: bit(leaf1.ecx, 28),
        has_rdrand: bit(leaf1.ecx, 30),
        is_virtualized: bit(leaf1.ecx, 31),
        has_x2apic: bit(leaf1.ecx, 21),
        has_tsc_deadline: bit(leaf1.ecx, 24),
        has_huge_pages_1g: extended(0x8000_0001).is_some_and(|leaf| bit(leaf.edx, 26)),
        has_invariant_tsc: extended(0x8000_0007).is_some_and(|leaf| bit(leaf.edx, 8)),
        hwcap: leaf1.edx,
    }
}

/// CPUID with a sub-leaf, for the few callers that need raw leaves.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let result = __cpuid_count(leaf, subleaf);
    [result.eax, result.ebx, result.ecx, result.edx]
}

/// Puts the boot processor's control registers into the state the kernel
/// and Linux applications expect: write protection in ring 0, no-execute
/// pages, `syscall`, SSE. Extended (AVX) state comes later, with
/// [`init_extended_state`].
pub fn init_control_registers() {
    // SAFETY: (1) the kernel never relies on CR0.EM/TS being set, and setting
    // WP only makes ring-0 writes honour read-only mappings, which all kernel
    // data mappings are not; (2) the CR4 bits enable SSE and global pages,
    // present on every x86-64 processor; (3) EFER keeps LME and adds SCE and
    // NXE, both supported by every x86-64 processor.
    unsafe {
        Cr0::update(|flags| {
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR | Cr0Flags::WRITE_PROTECT);
        });
        Cr4::update(|flags| {
            flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::PAGE_GLOBAL);
        });
        Efer::update(|flags| {
            flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE);
        });
    }
    reset_floating_point();
}

/// Enables XSAVE-managed state (AVX) for applications when the processor has
/// XSAVE and `is_allowed`. Hosts that emulate ring-0 code in software
/// (`kvm_pvm`) cannot run XSAVE instructions yet may report them, so the
/// tools forbid it there with the `--noxsave` kernel option.
pub fn init_extended_state(features: &Features, is_allowed: bool) {
    if features.has_xsave && is_allowed {
        // SAFETY: OSXSAVE only allows XSAVE instructions and XCR0 access,
        // which CPUID reports the processor has.
        unsafe { Cr4::update(|flags| flags.insert(Cr4Flags::OSXSAVE)) };
        let mut state = XCr0Flags::X87 | XCr0Flags::SSE;
        if features.has_avx {
            state |= XCr0Flags::AVX;
        }
        // SAFETY: CR4.OSXSAVE is set above and the state components are ones
        // CPUID reports, so XSETBV cannot fault.
        unsafe { XCr0::write(state) };
    }
}

/// Puts the x87 state in its power-on default (FNINIT).
///
/// MXCSR is left alone: it holds its reset value (0x1f80) at boot, and
/// LDMXCSR is among the instructions that software-emulated ring 0
/// (`kvm_pvm`) cannot run.
pub fn reset_floating_point() {
    // SAFETY: FNINIT only resets x87 state, which the kernel (built without
    // floating point) does not use.
    unsafe {
        asm!("fninit", options(nostack, nomem));
    }
}

/// Reads the time stamp counter.
pub fn read_tsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is never set.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Sets the FS segment base, which Linux applications use for thread-local
/// storage.
pub fn set_fs_base(base: u64) {
    // SAFETY: the kernel addresses nothing through FS, so any base is safe
    // for it; a non-canonical value is refused by the caller.
    unsafe { Msr::new(IA32_FS_BASE).write(base) }
}

/// Reads the FS segment base.
pub fn fs_base() -> u64 {
    // SAFETY: reading IA32_FS_BASE has no side effects.
    unsafe { Msr::new(IA32_FS_BASE).read() }
}

#[cfg(target_os = "none")]
/// Sets the GS segment base, which points at the current CPU's data.
///
/// # Safety
/// `base` must point at this CPU's `PerCpu` block for as long as the kernel
/// runs on this CPU.
pub(crate) unsafe fn set_gs_base(base: u64) {
    // SAFETY: by the caller's contract.
    unsafe { Msr::new(IA32_GS_BASE).write(base) }
}

/// Whether `address` is canonical (bits 63..47 all equal).
pub fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == 0x1_ffff
}

/// Disables interrupts and reports whether they were enabled.
pub fn disable_interrupts() -> bool {
    #[cfg(target_os = "none")]
    {
        let were_enabled = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        were_enabled
    }
    #[cfg(not(target_os = "none"))]
    false
}

/// Re-enables interrupts if `were_enabled`.
pub fn restore_interrupts(were_enabled: bool) {
    #[cfg(target_os = "none")]
    if were_enabled {
        x86_64::instructions::interrupts::enable();
    }
    #[cfg(not(target_os = "none"))]
    let _ = were_enabled;
}

/// Waits for the next interrupt.
pub fn halt() {
    x86_64::instructions::hlt();
}

/// A random number from the processor (RDRAND), if it has one and it
/// delivers within a few tries.
pub fn hardware_random() -> Option<u64> {
    if !features().has_rdrand {
        return None;
    }
    for _ in 0..10 {
        let value: u64;
        let is_valid: u8;
        // SAFETY: RDRAND exists (CPUID says so) and only writes the outputs.
        unsafe {
            asm!("rdrand {value}", "setc {valid}", value = out(reg) value, valid = out(reg_byte) is_valid, options(nomem, nostack));
        }
        if is_valid == 1 {
            return Some(value);
        }
    }
    None
}
