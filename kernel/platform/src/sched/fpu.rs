//! Saving and restoring an application thread's x87/SSE/AVX state.
//!
//! The kernel itself never touches floating-point registers (its target has
//! no SSE), so only application threads carry this state, and only switches
//! between them save and restore it: with XSAVE/XRSTOR when the processor
//! has XSAVE and the kernel enabled it, else FXSAVE/FXRSTOR.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cpu;

static USES_XSAVE: AtomicBool = AtomicBool::new(false);
static AREA_SIZE: AtomicUsize = AtomicUsize::new(512);

/// XSAVE areas must be 64-byte aligned (FXSAVE's 16 bytes follow).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Chunk([u8; 64]);

/// One thread's saved floating-point state.
pub struct FpuState {
    area: Box<[Chunk]>,
}

impl core::fmt::Debug for FpuState {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(formatter, "FpuState({} bytes)", self.area.len() * 64)
    }
}

/// Chooses XSAVE (if `uses_xsave`, which the caller derives from CPUID and
/// the kernel options) or FXSAVE, and sizes the save areas.
pub fn init(uses_xsave: bool) {
    USES_XSAVE.store(uses_xsave, Ordering::Relaxed);
    if uses_xsave {
        // CPUID.(EAX=0DH,ECX=0):EBX is the size for the features enabled in
        // XCR0 (Intel SDM vol. 1 §13.2).
        let [_, size, ..] = cpu::cpuid(0xd, 0);
        AREA_SIZE.store((size as usize).max(512 + 64), Ordering::Relaxed);
    }
}

/// Offset of MXCSR and of its mask in the FXSAVE image.
const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
/// Offset of the XSAVE header (XSTATE_BV, XCOMP_BV, reserved).
const XSAVE_HEADER: usize = 512;
const XSAVE_HEADER_SIZE: usize = 64;

impl FpuState {
    /// The calling processor's state as bytes, in its save format.
    pub fn capture_bytes() -> Vec<u8> {
        let state = Self::capture();
        let size = AREA_SIZE.load(Ordering::Relaxed);
        state.area.iter().flat_map(|chunk| chunk.0).take(size).collect()
    }

    /// Loads `bytes` (from [`FpuState::capture_bytes`], possibly changed)
    /// into the processor, after correcting what would make the restore
    /// fault: reserved MXCSR bits and an invalid XSAVE header.
    pub fn restore_bytes(bytes: &[u8]) {
        let mut state = Self::capture();
        let size = AREA_SIZE.load(Ordering::Relaxed);
        let mut image: Vec<u8> = state.area.iter().flat_map(|chunk| chunk.0).collect();
        let supported_mxcsr = u32::from_le_bytes([
            image[MXCSR_MASK],
            image[MXCSR_MASK + 1],
            image[MXCSR_MASK + 2],
            image[MXCSR_MASK + 3],
        ]);
        let supported_mxcsr = if supported_mxcsr == 0 { 0xffbf } else { supported_mxcsr };
        let length = bytes.len().min(size);
        image[..length].copy_from_slice(&bytes[..length]);
        let mxcsr = u32::from_le_bytes([image[MXCSR], image[MXCSR + 1], image[MXCSR + 2], image[MXCSR + 3]])
            & supported_mxcsr;
        image[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
        if USES_XSAVE.load(Ordering::Relaxed) && image.len() >= XSAVE_HEADER + XSAVE_HEADER_SIZE {
            let enabled = x86_64::registers::xcontrol::XCr0::read_raw();
            let mut features = [0u8; 8];
            features.copy_from_slice(&image[XSAVE_HEADER..XSAVE_HEADER + 8]);
            let features = u64::from_le_bytes(features) & enabled;
            image[XSAVE_HEADER..XSAVE_HEADER + XSAVE_HEADER_SIZE].fill(0);
            image[XSAVE_HEADER..XSAVE_HEADER + 8].copy_from_slice(&features.to_le_bytes());
        }
        for (chunk, bytes) in state.area.iter_mut().zip(image.chunks(64)) {
            chunk.0[..bytes.len()].copy_from_slice(bytes);
        }
        state.restore();
    }

    /// A save area holding the calling processor's current state.
    pub fn capture() -> Self {
        let chunks = AREA_SIZE.load(Ordering::Relaxed).div_ceil(64);
        let mut state = FpuState { area: vec![Chunk([0; 64]); chunks].into_boxed_slice() };
        state.save();
        state
    }

    /// Saves the processor's state here.
    pub fn save(&mut self) {
        let area = self.area.as_mut_ptr();
        if USES_XSAVE.load(Ordering::Relaxed) {
            // SAFETY: the area is 64-byte aligned and as large as CPUID says
            // XSAVE writes; CR4.OSXSAVE is set when XSAVE is in use.
            unsafe {
                core::arch::asm!("xsave64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
            };
        } else {
            // SAFETY: the area is 16-byte aligned and at least 512 bytes.
            unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area, options(nostack)) };
        }
    }

    /// Loads the state saved here into the processor.
    pub fn restore(&self) {
        let area = self.area.as_ptr();
        if USES_XSAVE.load(Ordering::Relaxed) {
            // SAFETY: the area was filled by XSAVE (`capture` saves first), so
            // its header is valid for XRSTOR.
            unsafe {
                core::arch::asm!("xrstor64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack, readonly))
            };
        } else {
            // SAFETY: the area was filled by FXSAVE, so MXCSR holds a valid
            // value and FXRSTOR cannot fault.
            unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) area, options(nostack, readonly)) };
        }
    }
}
