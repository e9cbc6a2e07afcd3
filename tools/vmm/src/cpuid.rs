//! The CPUID each vCPU sees: what KVM supports, with its own APIC id.
//!
//! KVM_GET_SUPPORTED_CPUID describes the host processor less what KVM
//! cannot virtualize; a VMM has to fill in the topology (Intel SDM vol. 2A,
//! CPUID leaves 01H, 0BH and 1FH) and set the hypervisor bit, which the
//! kernel checks before it looks for kvmclock. On `kvm_pvm` hosts the
//! features whose instructions that KVM cannot emulate in ring 0 are hidden
//! too, so C libraries pick SSE2 code paths.

use kvm_bindings::kvm_cpuid_entry2;

/// CPUID.01H:ECX.HYPERVISOR.
const LEAF_1_ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.01H:EDX.HTT: more than one logical processor per package.
const LEAF_1_EDX_HTT: u32 = 1 << 28;
/// Level type "SMT" and "core" in CPUID.0BH:ECX[15:8].
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// A feature bit to clear: leaf, subleaf, register (0 EAX .. 3 EDX), bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Feature {
    leaf: u32,
    subleaf: u32,
    register: usize,
    bit: u32,
}

const EAX: usize = 0;
const EBX: usize = 1;
const ECX: usize = 2;
const EDX: usize = 3;

const fn feature(leaf: u32, subleaf: u32, register: usize, bit: u32) -> Feature {
    Feature { leaf, subleaf, register, bit }
}

/// What `kvm_pvm` cannot run at CPL 0: XSAVE and everything that needs
/// its state (AVX, AVX2, AVX-512, FMA, F16C, VAES, VPCLMULQDQ, AMX),
/// CMPXCHG16B and RDTSCP.
const SOFTWARE_KVM_HIDDEN: &[Feature] = &[
    feature(1, 0, ECX, 12),           // FMA
    feature(1, 0, ECX, 13),           // CMPXCHG16B
    feature(1, 0, ECX, 26),           // XSAVE
    feature(1, 0, ECX, 27),           // OSXSAVE
    feature(1, 0, ECX, 28),           // AVX
    feature(1, 0, ECX, 29),           // F16C
    feature(7, 0, EBX, 5),            // AVX2
    feature(7, 0, EBX, 16),           // AVX512F
    feature(7, 0, EBX, 17),           // AVX512DQ
    feature(7, 0, EBX, 21),           // AVX512_IFMA
    feature(7, 0, EBX, 26),           // AVX512PF
    feature(7, 0, EBX, 27),           // AVX512ER
    feature(7, 0, EBX, 28),           // AVX512CD
    feature(7, 0, EBX, 30),           // AVX512BW
    feature(7, 0, EBX, 31),           // AVX512VL
    feature(7, 0, ECX, 1),            // AVX512_VBMI
    feature(7, 0, ECX, 6),            // AVX512_VBMI2
    feature(7, 0, ECX, 9),            // VAES
    feature(7, 0, ECX, 10),           // VPCLMULQDQ
    feature(7, 0, ECX, 11),           // AVX512_VNNI
    feature(7, 0, ECX, 12),           // AVX512_BITALG
    feature(7, 0, ECX, 14),           // AVX512_VPOPCNTDQ
    feature(7, 0, EDX, 2),            // AVX512_4VNNIW
    feature(7, 0, EDX, 3),            // AVX512_4FMAPS
    feature(7, 0, EDX, 8),            // AVX512_VP2INTERSECT
    feature(7, 0, EDX, 22),           // AMX_BF16
    feature(7, 0, EDX, 23),           // AVX512_FP16
    feature(7, 0, EDX, 24),           // AMX_TILE
    feature(7, 0, EDX, 25),           // AMX_INT8
    feature(7, 1, EAX, 4),            // AVX_VNNI
    feature(7, 1, EAX, 5),            // AVX512_BF16
    feature(0x8000_0001, 0, EDX, 27), // RDTSCP
];

/// Adjusts KVM's supported CPUID `entries` for the vCPU with `apic_id` in
/// a VM of `cpus` processors (one core each); with `hides_software_kvm_gaps`,
/// clears what `kvm_pvm` cannot run.
pub fn adjust(entries: &mut [kvm_cpuid_entry2], apic_id: u32, cpus: u32, hides_software_kvm_gaps: bool) {
    let core_bits = u32::BITS - (cpus.max(1) - 1).leading_zeros();
    for entry in entries.iter_mut() {
        match entry.function {
            1 => {
                entry.ebx = (entry.ebx & 0x0000_ffff) | (apic_id << 24) | (cpus.min(255) << 16);
                entry.ecx |= LEAF_1_ECX_HYPERVISOR;
                if cpus > 1 {
                    entry.edx |= LEAF_1_EDX_HTT;
                } else {
                    entry.edx &= !LEAF_1_EDX_HTT;
                }
            }
            0xb | 0x1f => {
                // One thread per core, `cpus` cores per package.
                let (shift, count, level_type) = match entry.index {
                    0 => (0, 1, LEVEL_TYPE_SMT),
                    1 => (core_bits, cpus, LEVEL_TYPE_CORE),
                    _ => (0, 0, 0),
                };
                entry.eax = shift;
                entry.ebx = count;
                entry.ecx = entry.index | (level_type << 8);
                entry.edx = apic_id;
            }
            _ => {}
        }
        if hides_software_kvm_gaps {
            for hidden in SOFTWARE_KVM_HIDDEN {
                if hidden.leaf == entry.function && hidden.subleaf == entry.index {
                    *register(entry, hidden.register) &= !(1 << hidden.bit);
                }
            }
        }
    }
}

fn register(entry: &mut kvm_cpuid_entry2, index: usize) -> &mut u32 {
    match index {
        EAX => &mut entry.eax,
        EBX => &mut entry.ebx,
        ECX => &mut entry.ecx,
        _ => &mut entry.edx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, registers: [u32; 4]) -> kvm_cpuid_entry2 {
        let [eax, ebx, ecx, edx] = registers;
        kvm_cpuid_entry2 { function, index, eax, ebx, ecx, edx, ..Default::default() }
    }

    fn host() -> Vec<kvm_cpuid_entry2> {
        vec![
            entry(1, 0, [0x906ea, 0x0810_0800, 0x7ffa_fbff, 0xbfeb_fbff]),
            entry(7, 0, [0, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff]),
            entry(7, 1, [0xffff_ffff, 0, 0, 0]),
            entry(0xb, 0, [1, 2, 0x100, 7]),
            entry(0xb, 1, [4, 8, 0x201, 7]),
            entry(0x8000_0001, 0, [0, 0, 0, 0xffff_ffff]),
        ]
    }

    #[test]
    fn each_vcpu_gets_its_apic_id_and_the_hypervisor_bit() {
        let mut entries = host();
        adjust(&mut entries, 2, 3, false);
        assert_eq!(entries[0].ebx >> 24, 2);
        assert_eq!(entries[0].ebx >> 16 & 0xff, 3);
        assert_eq!(entries[0].ebx & 0xffff, 0x0800, "CLFLUSH size and brand index stay");
        assert_ne!(entries[0].ecx & LEAF_1_ECX_HYPERVISOR, 0);
        assert_ne!(entries[0].edx & LEAF_1_EDX_HTT, 0);
        assert_eq!((entries[3].eax, entries[3].ebx, entries[3].ecx, entries[3].edx), (0, 1, 0x100, 2));
        assert_eq!((entries[4].eax, entries[4].ebx, entries[4].ecx, entries[4].edx), (2, 3, 0x201, 2));
        assert_eq!(entries[1].ebx, 0xffff_ffff, "features stay on hardware KVM");
        let mut single = host();
        adjust(&mut single, 0, 1, false);
        assert_eq!(single[0].edx & LEAF_1_EDX_HTT, 0);
        assert_eq!(single[4].eax, 0);
    }

    #[test]
    fn software_kvm_hides_xsave_avx_cmpxchg16b_and_rdtscp() {
        let mut entries = host();
        adjust(&mut entries, 0, 1, true);
        let leaf_1_ecx = entries[0].ecx;
        for bit in [12, 13, 26, 27, 28, 29] {
            assert_eq!(leaf_1_ecx & (1 << bit), 0, "leaf 1 ECX bit {bit}");
        }
        for kept in [0, 9, 19, 20, 25, 30] {
            assert_ne!(leaf_1_ecx & (1 << kept), 0, "SSE3, SSSE3, SSE4, AES and RDRAND stay ({kept})");
        }
        assert_eq!(entries[1].ebx & (1 << 5), 0, "AVX2");
        assert_ne!(entries[1].ebx & (1 << 0), 0, "FSGSBASE stays");
        assert_eq!(entries[2].eax & (1 << 4), 0, "AVX-VNNI");
        assert_eq!(entries[5].edx & (1 << 27), 0, "RDTSCP");
        assert_ne!(entries[5].edx & (1 << 29), 0, "long mode stays");
    }
}
