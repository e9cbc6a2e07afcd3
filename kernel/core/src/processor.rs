//! The processors as `/proc/cpuinfo` and `/sys/devices/system/cpu`
//! describe them: vendor, family and model, the feature flags under
//! Linux's names, the caches and the address sizes, read from CPUID the
//! first time a program asks (CPUID traps to the hypervisor, so the boot
//! does not pay for it). Every processor of a VM is the same model.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Executes CPUID with a leaf and a sub-leaf: `[eax, ebx, ecx, edx]`.
pub type Cpuid = fn(u32, u32) -> [u32; 4];

/// What the kernel tells this module at boot.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// CPUID on the calling processor.
    pub cpuid: Cpuid,
    /// The kernel enabled XSAVE (CR4.OSXSAVE).
    pub xsave_enabled: bool,
    /// XCR0 holds the AVX state, so AVX instructions work.
    pub avx_enabled: bool,
    /// The time stamp counter's frequency.
    pub tsc_hz: u64,
}

static SOURCE: spin::Once<Source> = spin::Once::new();
static DESCRIPTION: spin::Once<Description> = spin::Once::new();

/// Records how to read the processor's description.
pub fn install(source: Source) {
    SOURCE.call_once(|| source);
}

/// The processors' description (an empty one on a machine that never
/// installed a source).
pub fn description() -> &'static Description {
    DESCRIPTION.call_once(|| match SOURCE.get() {
        Some(source) => Description::read(source),
        None => Description::default(),
    })
}

/// The CPUID words the flags come from, in [`FLAGS`]' numbering.
mod word {
    pub const LEAF1_EDX: usize = 0;
    pub const LEAF1_ECX: usize = 1;
    pub const EXTENDED1_EDX: usize = 2;
    pub const EXTENDED1_ECX: usize = 3;
    pub const LEAF7_EBX: usize = 4;
    pub const LEAF7_ECX: usize = 5;
    pub const LEAF7_EDX: usize = 6;
    pub const COUNT: usize = 7;
}

/// What a flag needs besides its CPUID bit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// XSAVE enabled by the kernel.
    Xsave,
    /// The AVX state enabled in XCR0.
    Avx,
    /// What the kernel never enables (AVX-512's opmask and upper
    /// registers, AMX tiles, protection keys, five-level paging): Linux
    /// hides these flags then too.
    Never,
}

/// Linux's names of the CPUID feature bits (arch/x86/include/asm/
/// cpufeatures.h), in Linux's order.
const FLAGS: &[(usize, u32, &str, Needs)] = &[
    (word::LEAF1_EDX, 0, "fpu", Needs::Nothing),
    (word::LEAF1_EDX, 1, "vme", Needs::Nothing),
    (word::LEAF1_EDX, 2, "de", Needs::Nothing),
    (word::LEAF1_EDX, 3, "pse", Needs::Nothing),
    (word::LEAF1_EDX, 4, "tsc", Needs::Nothing),
    (word::LEAF1_EDX, 5, "msr", Needs::Nothing),
    (word::LEAF1_EDX, 6, "pae", Needs::Nothing),
    (word::LEAF1_EDX, 7, "mce", Needs::Nothing),
    (word::LEAF1_EDX, 8, "cx8", Needs::Nothing),
    (word::LEAF1_EDX, 9, "apic", Needs::Nothing),
    (word::LEAF1_EDX, 11, "sep", Needs::Nothing),
    (word::LEAF1_EDX, 12, "mtrr", Needs::Nothing),
    (word::LEAF1_EDX, 13, "pge", Needs::Nothing),
    (word::LEAF1_EDX, 14, "mca", Needs::Nothing),
    (word::LEAF1_EDX, 15, "cmov", Needs::Nothing),
    (word::LEAF1_EDX, 16, "pat", Needs::Nothing),
    (word::LEAF1_EDX, 17, "pse36", Needs::Nothing),
    (word::LEAF1_EDX, 18, "pn", Needs::Nothing),
    (word::LEAF1_EDX, 19, "clflush", Needs::Nothing),
    (word::LEAF1_EDX, 21, "dts", Needs::Nothing),
    (word::LEAF1_EDX, 22, "acpi", Needs::Nothing),
    (word::LEAF1_EDX, 23, "mmx", Needs::Nothing),
    (word::LEAF1_EDX, 24, "fxsr", Needs::Nothing),
    (word::LEAF1_EDX, 25, "sse", Needs::Nothing),
    (word::LEAF1_EDX, 26, "sse2", Needs::Nothing),
    (word::LEAF1_EDX, 27, "ss", Needs::Nothing),
    (word::LEAF1_EDX, 28, "ht", Needs::Nothing),
    (word::LEAF1_EDX, 29, "tm", Needs::Nothing),
    (word::LEAF1_EDX, 30, "ia64", Needs::Nothing),
    (word::LEAF1_EDX, 31, "pbe", Needs::Nothing),
    (word::EXTENDED1_EDX, 11, "syscall", Needs::Nothing),
    (word::EXTENDED1_EDX, 19, "mp", Needs::Nothing),
    (word::EXTENDED1_EDX, 20, "nx", Needs::Nothing),
    (word::EXTENDED1_EDX, 22, "mmxext", Needs::Nothing),
    (word::EXTENDED1_EDX, 25, "fxsr_opt", Needs::Nothing),
    (word::EXTENDED1_EDX, 26, "pdpe1gb", Needs::Nothing),
    (word::EXTENDED1_EDX, 27, "rdtscp", Needs::Nothing),
    (word::EXTENDED1_EDX, 29, "lm", Needs::Nothing),
    (word::EXTENDED1_EDX, 30, "3dnowext", Needs::Nothing),
    (word::EXTENDED1_EDX, 31, "3dnow", Needs::Nothing),
    (word::LEAF1_ECX, 0, "pni", Needs::Nothing),
    (word::LEAF1_ECX, 1, "pclmulqdq", Needs::Nothing),
    (word::LEAF1_ECX, 2, "dtes64", Needs::Nothing),
    (word::LEAF1_ECX, 3, "monitor", Needs::Nothing),
    (word::LEAF1_ECX, 4, "ds_cpl", Needs::Nothing),
    (word::LEAF1_ECX, 5, "vmx", Needs::Nothing),
    (word::LEAF1_ECX, 6, "smx", Needs::Nothing),
    (word::LEAF1_ECX, 7, "est", Needs::Nothing),
    (word::LEAF1_ECX, 8, "tm2", Needs::Nothing),
    (word::LEAF1_ECX, 9, "ssse3", Needs::Nothing),
    (word::LEAF1_ECX, 10, "cid", Needs::Nothing),
    (word::LEAF1_ECX, 11, "sdbg", Needs::Nothing),
    (word::LEAF1_ECX, 12, "fma", Needs::Avx),
    (word::LEAF1_ECX, 13, "cx16", Needs::Nothing),
    (word::LEAF1_ECX, 14, "xtpr", Needs::Nothing),
    (word::LEAF1_ECX, 15, "pdcm", Needs::Nothing),
    (word::LEAF1_ECX, 17, "pcid", Needs::Nothing),
    (word::LEAF1_ECX, 18, "dca", Needs::Nothing),
    (word::LEAF1_ECX, 19, "sse4_1", Needs::Nothing),
    (word::LEAF1_ECX, 20, "sse4_2", Needs::Nothing),
    (word::LEAF1_ECX, 21, "x2apic", Needs::Nothing),
    (word::LEAF1_ECX, 22, "movbe", Needs::Nothing),
    (word::LEAF1_ECX, 23, "popcnt", Needs::Nothing),
    (word::LEAF1_ECX, 24, "tsc_deadline_timer", Needs::Nothing),
    (word::LEAF1_ECX, 25, "aes", Needs::Nothing),
    (word::LEAF1_ECX, 26, "xsave", Needs::Xsave),
    (word::LEAF1_ECX, 28, "avx", Needs::Avx),
    (word::LEAF1_ECX, 29, "f16c", Needs::Avx),
    (word::LEAF1_ECX, 30, "rdrand", Needs::Nothing),
    (word::LEAF1_ECX, 31, "hypervisor", Needs::Nothing),
    (word::EXTENDED1_ECX, 0, "lahf_lm", Needs::Nothing),
    (word::EXTENDED1_ECX, 1, "cmp_legacy", Needs::Nothing),
    (word::EXTENDED1_ECX, 2, "svm", Needs::Nothing),
    (word::EXTENDED1_ECX, 3, "extapic", Needs::Nothing),
    (word::EXTENDED1_ECX, 4, "cr8_legacy", Needs::Nothing),
    (word::EXTENDED1_ECX, 5, "abm", Needs::Nothing),
    (word::EXTENDED1_ECX, 6, "sse4a", Needs::Nothing),
    (word::EXTENDED1_ECX, 7, "misalignsse", Needs::Nothing),
    (word::EXTENDED1_ECX, 8, "3dnowprefetch", Needs::Nothing),
    (word::EXTENDED1_ECX, 9, "osvw", Needs::Nothing),
    (word::EXTENDED1_ECX, 10, "ibs", Needs::Nothing),
    (word::EXTENDED1_ECX, 11, "xop", Needs::Avx),
    (word::EXTENDED1_ECX, 12, "skinit", Needs::Nothing),
    (word::EXTENDED1_ECX, 13, "wdt", Needs::Nothing),
    (word::EXTENDED1_ECX, 15, "lwp", Needs::Nothing),
    (word::EXTENDED1_ECX, 16, "fma4", Needs::Avx),
    (word::EXTENDED1_ECX, 17, "tce", Needs::Nothing),
    (word::EXTENDED1_ECX, 21, "tbm", Needs::Nothing),
    (word::EXTENDED1_ECX, 22, "topoext", Needs::Nothing),
    (word::EXTENDED1_ECX, 23, "perfctr_core", Needs::Nothing),
    (word::EXTENDED1_ECX, 24, "perfctr_nb", Needs::Nothing),
    (word::EXTENDED1_ECX, 26, "bpext", Needs::Nothing),
    (word::EXTENDED1_ECX, 28, "perfctr_llc", Needs::Nothing),
    (word::EXTENDED1_ECX, 29, "mwaitx", Needs::Nothing),
    (word::LEAF7_EBX, 0, "fsgsbase", Needs::Nothing),
    (word::LEAF7_EBX, 1, "tsc_adjust", Needs::Nothing),
    (word::LEAF7_EBX, 2, "sgx", Needs::Nothing),
    (word::LEAF7_EBX, 3, "bmi1", Needs::Nothing),
    (word::LEAF7_EBX, 4, "hle", Needs::Nothing),
    (word::LEAF7_EBX, 5, "avx2", Needs::Avx),
    (word::LEAF7_EBX, 7, "smep", Needs::Nothing),
    (word::LEAF7_EBX, 8, "bmi2", Needs::Nothing),
    (word::LEAF7_EBX, 9, "erms", Needs::Nothing),
    (word::LEAF7_EBX, 10, "invpcid", Needs::Nothing),
    (word::LEAF7_EBX, 11, "rtm", Needs::Nothing),
    (word::LEAF7_EBX, 14, "mpx", Needs::Nothing),
    (word::LEAF7_EBX, 16, "avx512f", Needs::Never),
    (word::LEAF7_EBX, 17, "avx512dq", Needs::Never),
    (word::LEAF7_EBX, 18, "rdseed", Needs::Nothing),
    (word::LEAF7_EBX, 19, "adx", Needs::Nothing),
    (word::LEAF7_EBX, 20, "smap", Needs::Nothing),
    (word::LEAF7_EBX, 21, "avx512ifma", Needs::Never),
    (word::LEAF7_EBX, 23, "clflushopt", Needs::Nothing),
    (word::LEAF7_EBX, 24, "clwb", Needs::Nothing),
    (word::LEAF7_EBX, 26, "avx512pf", Needs::Never),
    (word::LEAF7_EBX, 27, "avx512er", Needs::Never),
    (word::LEAF7_EBX, 28, "avx512cd", Needs::Never),
    (word::LEAF7_EBX, 29, "sha_ni", Needs::Nothing),
    (word::LEAF7_EBX, 30, "avx512bw", Needs::Never),
    (word::LEAF7_EBX, 31, "avx512vl", Needs::Never),
    (word::LEAF7_ECX, 1, "avx512vbmi", Needs::Never),
    (word::LEAF7_ECX, 2, "umip", Needs::Nothing),
    (word::LEAF7_ECX, 3, "pku", Needs::Never),
    (word::LEAF7_ECX, 5, "waitpkg", Needs::Nothing),
    (word::LEAF7_ECX, 6, "avx512_vbmi2", Needs::Never),
    (word::LEAF7_ECX, 8, "gfni", Needs::Nothing),
    (word::LEAF7_ECX, 9, "vaes", Needs::Avx),
    (word::LEAF7_ECX, 10, "vpclmulqdq", Needs::Avx),
    (word::LEAF7_ECX, 11, "avx512_vnni", Needs::Never),
    (word::LEAF7_ECX, 12, "avx512_bitalg", Needs::Never),
    (word::LEAF7_ECX, 14, "avx512_vpopcntdq", Needs::Never),
    (word::LEAF7_ECX, 16, "la57", Needs::Never),
    (word::LEAF7_ECX, 22, "rdpid", Needs::Nothing),
    (word::LEAF7_ECX, 25, "cldemote", Needs::Nothing),
    (word::LEAF7_ECX, 27, "movdiri", Needs::Nothing),
    (word::LEAF7_ECX, 28, "movdir64b", Needs::Nothing),
    (word::LEAF7_EDX, 4, "fsrm", Needs::Nothing),
    (word::LEAF7_EDX, 8, "avx512_vp2intersect", Needs::Never),
    (word::LEAF7_EDX, 10, "md_clear", Needs::Nothing),
    (word::LEAF7_EDX, 14, "serialize", Needs::Nothing),
    (word::LEAF7_EDX, 22, "amx_bf16", Needs::Never),
    (word::LEAF7_EDX, 23, "avx512_fp16", Needs::Never),
    (word::LEAF7_EDX, 24, "amx_tile", Needs::Never),
    (word::LEAF7_EDX, 25, "amx_int8", Needs::Never),
    (word::LEAF7_EDX, 28, "flush_l1d", Needs::Nothing),
    (word::LEAF7_EDX, 29, "arch_capabilities", Needs::Nothing),
];

/// What a cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// Data only.
    Data,
    /// Instructions only.
    Instruction,
    /// Both.
    Unified,
}

impl CacheKind {
    /// The name sysfs gives it.
    pub fn name(self) -> &'static str {
        match self {
            CacheKind::Data => "Data",
            CacheKind::Instruction => "Instruction",
            CacheKind::Unified => "Unified",
        }
    }
}

/// One cache, from CPUID leaf 4 (Intel) or 0x8000001D (AMD), which share
/// a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cache {
    /// 1, 2 or 3.
    pub level: u32,
    /// What it holds.
    pub kind: CacheKind,
    /// The line size.
    pub line_bytes: u32,
    /// Physical line partitions.
    pub partitions: u32,
    /// Ways of associativity.
    pub ways: u32,
    /// Sets.
    pub sets: u32,
    /// Logical processors that share it, at most.
    pub shared_by: u32,
}

impl Cache {
    /// Its capacity.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.line_bytes) * u64::from(self.partitions) * u64::from(self.ways) * u64::from(self.sets)
    }
}

/// The processors' model and features.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// The vendor's identification (`GenuineIntel`).
    pub vendor: String,
    /// The brand string (`model name`), `unknown` without one.
    pub brand: String,
    /// The family, with the extended family added.
    pub family: u32,
    /// The model, with the extended model put in front.
    pub model: u32,
    /// The stepping.
    pub stepping: u32,
    /// The highest basic CPUID leaf.
    pub max_leaf: u32,
    words: [u32; word::COUNT],
    /// The line size CLFLUSH works on.
    pub clflush_bytes: u32,
    /// Physical address bits.
    pub physical_bits: u32,
    /// Linear address bits.
    pub virtual_bits: u32,
    /// The time stamp counter's frequency.
    pub tsc_hz: u64,
    /// The caches, in CPUID's order.
    pub caches: Vec<Cache>,
    xsave_enabled: bool,
    avx_enabled: bool,
}

/// At most this many caches are read (CPUID lists them until a null one).
const MAX_CACHES: u32 = 8;

impl Description {
    /// Reads the description through `source`.
    pub fn read(source: &Source) -> Description {
        let cpuid = source.cpuid;
        let [max_leaf, vendor_b, vendor_c, vendor_d] = cpuid(0, 0);
        let mut vendor = Vec::with_capacity(12);
        for register in [vendor_b, vendor_d, vendor_c] {
            vendor.extend_from_slice(&register.to_le_bytes());
        }
        let vendor = printable(&vendor);
        let [signature, leaf1_b, leaf1_c, leaf1_d] = if max_leaf >= 1 { cpuid(1, 0) } else { [0; 4] };
        let leaf7 = if max_leaf >= 7 { cpuid(7, 0) } else { [0; 4] };
        let max_extended = cpuid(0x8000_0000, 0)[0];
        let extended = |leaf: u32| if max_extended >= leaf { cpuid(leaf, 0) } else { [0; 4] };
        let extended1 = extended(0x8000_0001);
        let mut brand = Vec::with_capacity(48);
        if max_extended >= 0x8000_0004 {
            for leaf in 0x8000_0002..=0x8000_0004 {
                for register in cpuid(leaf, 0) {
                    brand.extend_from_slice(&register.to_le_bytes());
                }
            }
        }
        let brand = printable(&brand);
        let [address_sizes, ..] = extended(0x8000_0008);
        let base_family = (signature >> 8) & 0xf;
        let family = if base_family == 0xf { base_family + ((signature >> 20) & 0xff) } else { base_family };
        let base_model = (signature >> 4) & 0xf;
        let model = if base_family == 6 || base_family == 0xf {
            base_model | (((signature >> 16) & 0xf) << 4)
        } else {
            base_model
        };
        let is_amd = vendor == "AuthenticAMD" || vendor == "HygonGenuine";
        let cache_leaf = if is_amd && max_extended >= 0x8000_001d && extended1[2] & (1 << 22) != 0 {
            Some(0x8000_001d)
        } else if !is_amd && max_leaf >= 4 {
            Some(4)
        } else {
            None
        };
        let mut caches = Vec::new();
        if let Some(leaf) = cache_leaf {
            for index in 0..MAX_CACHES {
                match decode_cache(cpuid(leaf, index)) {
                    Some(cache) => caches.push(cache),
                    None => break,
                }
            }
        }
        if caches.is_empty() && is_amd && max_extended >= 0x8000_0006 {
            caches = amd_legacy_caches(extended(0x8000_0005), extended(0x8000_0006));
        }
        Description {
            brand: if brand.is_empty() { String::from("unknown") } else { brand },
            vendor,
            family,
            model,
            stepping: signature & 0xf,
            max_leaf,
            words: [leaf1_d, leaf1_c, extended1[3], extended1[2], leaf7[1], leaf7[2], leaf7[3]],
            clflush_bytes: ((leaf1_b >> 8) & 0xff) * 8,
            physical_bits: if address_sizes == 0 { 36 } else { address_sizes & 0xff },
            virtual_bits: if address_sizes == 0 { 48 } else { (address_sizes >> 8) & 0xff },
            tsc_hz: source.tsc_hz,
            caches,
            xsave_enabled: source.xsave_enabled,
            avx_enabled: source.avx_enabled,
        }
    }

    /// The feature flags, as `/proc/cpuinfo` lists them: the bits the
    /// processor reports, less those whose state the kernel has not enabled.
    pub fn flags(&self) -> String {
        let mut flags = String::new();
        for &(word, bit, name, needs) in FLAGS {
            let usable = match needs {
                Needs::Nothing => true,
                Needs::Xsave => self.xsave_enabled,
                Needs::Avx => self.avx_enabled,
                Needs::Never => false,
            };
            if usable && self.words[word] & (1 << bit) != 0 {
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str(name);
            }
        }
        flags
    }

    /// The largest cache's size in KiB (Linux's `cache size`).
    pub fn last_level_cache_kib(&self) -> u64 {
        self.caches.iter().max_by_key(|cache| cache.level).map_or(0, |cache| cache.size_bytes() / 1024)
    }

    /// `/proc/cpuinfo` for `count` processors.
    pub fn cpuinfo(&self, count: usize) -> String {
        let flags = self.flags();
        let khz = self.tsc_hz / 1000;
        let (mhz, thousandths) = (khz / 1000, khz % 1000);
        // Linux's bogomips is two loops per TSC cycle's worth, per second.
        let bogomips = self.tsc_hz / 5000;
        let mut text = String::new();
        for processor in 0..count {
            let _ = write!(
                text,
                "processor\t: {processor}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\n\
                 model name\t: {}\nstepping\t: {}\nmicrocode\t: 0x1\ncpu MHz\t\t: {mhz}.{thousandths:03}\n\
                 cache size\t: {} KB\nphysical id\t: 0\nsiblings\t: {count}\ncore id\t\t: {processor}\n\
                 cpu cores\t: {count}\napicid\t\t: {processor}\ninitial apicid\t: {processor}\nfpu\t\t: yes\n\
                 fpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {flags}\nbugs\t\t:\n\
                 bogomips\t: {}.{:02}\nclflush size\t: {}\ncache_alignment\t: {}\n\
                 address sizes\t: {} bits physical, {} bits virtual\npower management:\n\n",
                self.vendor,
                self.family,
                self.model,
                self.brand,
                self.stepping,
                self.last_level_cache_kib(),
                self.max_leaf,
                bogomips / 100,
                bogomips % 100,
                self.clflush_bytes,
                self.clflush_bytes,
                self.physical_bits,
                self.virtual_bits,
            );
        }
        text
    }
}

/// A cache from a leaf-4-shaped CPUID result; `None` ends the list.
fn decode_cache([eax, ebx, ecx, _]: [u32; 4]) -> Option<Cache> {
    let kind = match eax & 0x1f {
        1 => CacheKind::Data,
        2 => CacheKind::Instruction,
        3 => CacheKind::Unified,
        _ => return None,
    };
    Some(Cache {
        level: (eax >> 5) & 0x7,
        kind,
        line_bytes: (ebx & 0xfff) + 1,
        partitions: ((ebx >> 12) & 0x3ff) + 1,
        ways: ((ebx >> 22) & 0x3ff) + 1,
        sets: ecx.saturating_add(1),
        shared_by: ((eax >> 14) & 0xfff) + 1,
    })
}

/// The caches AMD's older leaves describe: 0x80000005 (L1 data in ECX,
/// instructions in EDX) and 0x80000006 (L2 in ECX, L3 in EDX, its size in
/// 512 KiB units), with their encoded associativity.
fn amd_legacy_caches(level1: [u32; 4], level23: [u32; 4]) -> Vec<Cache> {
    let mut caches = Vec::new();
    let mut push =
        |level: u32, kind: CacheKind, size_kib: u32, ways: u32, line_bytes: u32, shared_by: u32| {
            if size_kib == 0 || ways == 0 || line_bytes == 0 {
                return;
            }
            let sets = (u64::from(size_kib) * 1024 / (u64::from(ways) * u64::from(line_bytes))).max(1);
            let sets = u32::try_from(sets).unwrap_or(u32::MAX);
            caches.push(Cache { level, kind, line_bytes, partitions: 1, ways, sets, shared_by });
        };
    // L1 associativity is the count itself (0xff: fully associative).
    let l1_ways = |register: u32| match (register >> 16) & 0xff {
        0xff => (register >> 24) * 1024 / (register & 0xff).max(1),
        ways => ways,
    };
    let [_, _, l1d, l1i] = level1;
    push(1, CacheKind::Data, l1d >> 24, l1_ways(l1d), l1d & 0xff, 1);
    push(1, CacheKind::Instruction, l1i >> 24, l1_ways(l1i), l1i & 0xff, 1);
    // L2 and L3 associativity is a code (AMD's CPUID specification).
    let decoded = |code: u32, size_kib: u32, line_bytes: u32| match code {
        1 => 1,
        2 => 2,
        4 => 4,
        6 => 8,
        8 => 16,
        0xa => 32,
        0xb => 48,
        0xc => 64,
        0xd => 96,
        0xe => 128,
        0xf => u32::try_from(u64::from(size_kib) * 1024 / u64::from(line_bytes.max(1))).unwrap_or(u32::MAX),
        _ => 0,
    };
    let [_, _, l2, l3] = level23;
    let (l2_kib, l2_line) = (l2 >> 16, l2 & 0xff);
    push(2, CacheKind::Unified, l2_kib, decoded((l2 >> 12) & 0xf, l2_kib, l2_line), l2_line, 1);
    let (l3_kib, l3_line) = ((l3 >> 18) * 512, l3 & 0xff);
    push(3, CacheKind::Unified, l3_kib, decoded((l3 >> 12) & 0xf, l3_kib, l3_line), l3_line, u32::MAX);
    caches
}

/// The ASCII text of CPUID's bytes, without NULs and surrounding spaces.
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .filter(|&&byte| byte != 0)
        .map(|&byte| if byte.is_ascii_graphic() || byte == b' ' { byte as char } else { '?' })
        .collect();
    String::from(text.trim())
}

/// A set of processors as Linux lists it (`0-3`, `2`).
pub fn list(first: usize, last: usize) -> String {
    if first == last { format!("{first}") } else { format!("{first}-{last}") }
}

/// A set of processors as Linux's bitmap (`3`, `ff`, `ffffffff,ffffffff`):
/// as many hexadecimal digits as `count` processors need, in groups of
/// eight from the right.
pub fn mask(count: usize, members: impl Fn(usize) -> bool) -> String {
    let digits = count.div_ceil(4).max(1);
    let mut text = String::new();
    for digit in (0..digits).rev() {
        let mut value = 0u32;
        for bit in 0..4 {
            let processor = digit * 4 + bit;
            if processor < count && members(processor) {
                value |= 1 << bit;
            }
        }
        let _ = write!(text, "{value:x}");
        if digit % 8 == 0 && digit != 0 {
            text.push(',');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A processor like QEMU's with AVX2, an L1d/L1i/L2/L3, and a brand.
    fn fake_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
        let text = |bytes: &[u8; 16]| {
            let word = |index: usize| u32::from_le_bytes(bytes[index..index + 4].try_into().unwrap());
            [word(0), word(4), word(8), word(12)]
        };
        match (leaf, subleaf) {
            // "GenuineIntel": EBX, EDX, ECX.
            (0, _) => [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
            // Family 6, model 0x55 (extended 5, base 5), stepping 7;
            // CLFLUSH 8 quadwords; sse/sse2, sse4_2, avx, xsave, osxsave.
            (1, _) => [
                0x0005_0657,
                0x0000_0800,
                (1 << 20) | (1 << 26) | (1 << 27) | (1 << 28),
                (1 << 25) | (1 << 26),
            ],
            // L1d 32 KiB 8-way 64 sets, L1i the same, L2 1 MiB, L3 16 MiB shared by 16.
            (4, 0) => [(1 << 5) | 1, (7 << 22) | 63, 63, 0],
            (4, 1) => [(1 << 5) | 2, (7 << 22) | 63, 63, 0],
            (4, 2) => [(2 << 5) | 3, (15 << 22) | 63, 1023, 0],
            (4, 3) => [(3 << 5) | 3 | (15 << 14), (15 << 22) | 63, 16383, 0],
            // AVX2, AVX-512F.
            (7, 0) => [0, (1 << 5) | (1 << 16), 0, 0],
            (0x8000_0000, _) => [0x8000_0008, 0, 0, 0],
            (0x8000_0001, _) => [0, 0, 0, (1 << 11) | (1 << 20) | (1 << 29)],
            (0x8000_0002, _) => text(b"  Test(R) CPU @ "),
            (0x8000_0003, _) => text(b"2.50GHz\0\0\0\0\0\0\0\0\0"),
            (0x8000_0004, _) => [0; 4],
            (0x8000_0008, _) => [0x3028, 0, 0, 0],
            _ => [0; 4],
        }
    }

    fn source(avx_enabled: bool) -> Source {
        Source { cpuid: fake_cpuid, xsave_enabled: true, avx_enabled, tsc_hz: 2_500_000_000 }
    }

    #[test]
    fn the_model_and_caches_come_from_cpuid() {
        let description = Description::read(&source(true));
        assert_eq!(description.vendor, "GenuineIntel");
        assert_eq!(description.brand, "Test(R) CPU @ 2.50GHz");
        assert_eq!((description.family, description.model, description.stepping), (6, 0x55, 7));
        assert_eq!((description.physical_bits, description.virtual_bits), (40, 48));
        assert_eq!(description.clflush_bytes, 64);
        assert_eq!(description.caches.len(), 4);
        assert_eq!(description.caches[0].size_bytes(), 32 * 1024);
        assert_eq!(description.caches[1].kind, CacheKind::Instruction);
        assert_eq!(description.caches[2].size_bytes(), 1024 * 1024);
        assert_eq!(description.last_level_cache_kib(), 16 * 1024);
        assert_eq!(description.caches[3].shared_by, 16);
    }

    #[test]
    fn flags_follow_the_enabled_state() {
        let with_avx = Description::read(&source(true)).flags();
        assert_eq!(with_avx, "sse sse2 syscall nx lm sse4_2 xsave avx avx2");
        let without = Description::read(&source(false)).flags();
        assert_eq!(without, "sse sse2 syscall nx lm sse4_2 xsave");
    }

    #[test]
    fn cpuinfo_has_linux_fields_per_processor() {
        let text = Description::read(&source(true)).cpuinfo(2);
        assert_eq!(text.matches("processor\t: ").count(), 2);
        assert!(text.contains("processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"));
        assert!(text.contains("cpu MHz\t\t: 2500.000\ncache size\t: 16384 KB\n"));
        assert!(text.contains("bogomips\t: 5000.00\n"));
        assert!(text.contains("address sizes\t: 40 bits physical, 48 bits virtual\n"));
        assert!(text.ends_with("power management:\n\n"));
    }

    #[test]
    fn amd_processors_without_topology_leaves_describe_caches_the_old_way() {
        // 64 KiB 2-way L1s with 64-byte lines, a 512 KiB 16-way L2 and a
        // 16 MiB 16-way L3 (as QEMU's TCG processor reports them).
        let caches = amd_legacy_caches(
            [0, 0, (64 << 24) | (2 << 16) | (1 << 8) | 64, (64 << 24) | (2 << 16) | (1 << 8) | 64],
            [0, 0, (512 << 16) | (8 << 12) | (1 << 8) | 64, (32 << 18) | (8 << 12) | (1 << 8) | 64],
        );
        assert_eq!(caches.len(), 4);
        assert_eq!((caches[0].size_bytes(), caches[0].ways, caches[0].sets), (64 * 1024, 2, 512));
        assert_eq!(caches[1].kind, CacheKind::Instruction);
        assert_eq!((caches[2].size_bytes(), caches[2].ways), (512 * 1024, 16));
        assert_eq!((caches[3].level, caches[3].size_bytes()), (3, 16 * 1024 * 1024));
        assert!(amd_legacy_caches([0; 4], [0; 4]).is_empty());
        // Every field at its largest: no overflow.
        assert_eq!(amd_legacy_caches([u32::MAX; 4], [u32::MAX; 4]).len(), 4);
    }

    #[test]
    fn processor_sets_print_as_linux_does() {
        assert_eq!(list(0, 0), "0");
        assert_eq!(list(0, 3), "0-3");
        assert_eq!(mask(2, |_| true), "3");
        assert_eq!(mask(2, |cpu| cpu == 1), "2");
        assert_eq!(mask(8, |_| true), "ff");
        assert_eq!(mask(64, |_| true), "ffffffff,ffffffff");
        assert_eq!(mask(36, |cpu| cpu == 35), "8,00000000");
    }
}
