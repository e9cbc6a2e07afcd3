//! Keeping every processor's TLB in step with the application's mappings.
//!
//! Unmapping or restricting application pages on one processor leaves stale
//! translations in the others' TLBs. After changing mappings, the kernel
//! calls [`synchronize`], which makes every other online processor reload
//! CR3 (a shootdown IPI) and waits for all of them; frames unmapped before
//! it are freed only then, so no processor can still reach them. Waiting
//! processors serve shootdowns aimed at themselves, so two at once cannot
//! deadlock; callers must hold no lock that a processor taking the IPI
//! could be spinning on with interrupts disabled.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::control::Cr3;

use crate::percpu::MAX_CPUS;
use crate::sync::SpinMutex;
use crate::{apic, memory, sched};

/// The vector of the shootdown IPI.
pub const SHOOTDOWN_VECTOR: u8 = 0xf2;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static FLUSHED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static PENDING_FRAMES: SpinMutex<Vec<u64>> = SpinMutex::new(Vec::new());

/// Frees `frame` once no processor can hold a translation to it.
pub(crate) fn free_after_synchronize(frame: u64) {
    if sched::online_mask().count_ones() <= 1 {
        // SAFETY: the only processor already invalidated its translation
        // when it unmapped the page, whose mapping held this reference.
        unsafe { memory::free_frame(frame) };
    } else {
        PENDING_FRAMES.lock().push(frame);
    }
}

fn flush_local() {
    let generation = GENERATION.load(Ordering::Acquire);
    let (frame, flags) = Cr3::read();
    // SAFETY: reloading CR3 with its own value only flushes the TLB's
    // non-global entries (application pages are not global).
    unsafe { Cr3::write(frame, flags) };
    FLUSHED[sched::current_cpu()].fetch_max(generation, Ordering::Release);
}

/// Makes every processor drop stale translations, then frees the frames
/// unmapped before the call.
pub fn synchronize() {
    let frames = core::mem::take(&mut *PENDING_FRAMES.lock());
    let me = sched::current_cpu();
    let others = sched::online_mask() & !(1 << me);
    if others != 0 {
        let target = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
        for cpu in (0..MAX_CPUS).filter(|cpu| others & (1 << cpu) != 0) {
            apic::send_ipi(sched::apic_id(cpu), SHOOTDOWN_VECTOR);
        }
        for cpu in (0..MAX_CPUS).filter(|cpu| others & (1 << cpu) != 0) {
            while FLUSHED[cpu].load(Ordering::Acquire) < target {
                if FLUSHED[me].load(Ordering::Relaxed) < GENERATION.load(Ordering::Acquire) {
                    flush_local();
                }
                core::hint::spin_loop();
            }
        }
    }
    for frame in frames {
        // SAFETY: every processor has flushed since the frame was unmapped.
        unsafe { memory::free_frame(frame) };
    }
}

/// The shootdown IPI arrived.
pub(crate) fn on_shootdown_interrupt() {
    flush_local();
}
