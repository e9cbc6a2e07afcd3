//! The vDSO's data page: one frame that every process maps read-only.
//!
//! As Linux's `vvar` page, the clock data the vDSO reads lives in a single
//! frame the kernel keeps, so a step of the wall clock
//! ([`set_realtime_offset`]) reaches every process at once, and processes
//! that read the time without a system call see the same clock as the
//! kernel. The layout is `rosv_abi::vdso`'s.

use rosv_abi::vdso as layout;

use crate::machine::Vdso;
use crate::pages::{OutOfMemory, Page};

/// The page, made at the first program's start.
static PAGE: spin::Once<Page> = spin::Once::new();

/// The frame holding `vdso`'s clock, for mapping into a process. The
/// first call makes the page and writes every field; from then on only
/// [`set_realtime_offset`] changes it (a program starting while the clock
/// steps could otherwise write back the offset from before the step).
pub fn frame(vdso: &Vdso) -> Result<u64, OutOfMemory> {
    if let Some(page) = PAGE.get() {
        return Ok(page.frame());
    }
    let page = Page::new()?;
    let fields = [
        (layout::FLAGS, layout::CLOCK_USABLE),
        (layout::TSC_BASE, vdso.tsc_base),
        (layout::TSC_TO_NS_MULTIPLIER, vdso.tsc_to_ns_multiplier),
        (layout::REALTIME_OFFSET_NS, vdso.realtime_offset_ns),
    ];
    for (offset, value) in fields {
        page.write(offset, &value.to_le_bytes());
    }
    // Another processor may have made one meanwhile: the first stays.
    Ok(PAGE.call_once(|| page).frame())
}

/// Writes the wall-clock time at time zero, `realtime_offset_ns`, where
/// every process's vDSO reads it. Never waits (interrupt handlers call it).
/// The field is aligned and written with one 8-byte store, so the vDSO's
/// single load sees either the old offset or the new one.
pub fn set_realtime_offset(realtime_offset_ns: u64) {
    if let Some(page) = PAGE.get() {
        page.write(layout::REALTIME_OFFSET_NS, &realtime_offset_ns.to_le_bytes());
    }
}
