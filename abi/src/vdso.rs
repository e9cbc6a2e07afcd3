//! The vDSO's data page ("vvar"): what the kernel writes for the clock
//! functions the vDSO runs in the application.
//!
//! The page lies just below the vDSO image. All fields are little-endian
//! `u64`s. Time in nanoseconds since boot is
//! `((tsc - TSC_BASE) * TSC_TO_NS_MULTIPLIER) >> TSC_TO_NS_SHIFT`, exactly
//! as the kernel computes it, so that the vDSO and the system calls agree
//! to the nanosecond; wall-clock time adds `REALTIME_OFFSET_NS`. When
//! `FLAGS` lacks [`CLOCK_USABLE`], the functions make the system call.

/// Offset of the flags.
pub const FLAGS: usize = 0;
/// Offset of the TSC value at boot (time zero).
pub const TSC_BASE: usize = 8;
/// Offset of the multiplier that turns TSC ticks into nanoseconds.
pub const TSC_TO_NS_MULTIPLIER: usize = 16;
/// Offset of the wall-clock time at boot, in nanoseconds since the epoch.
pub const REALTIME_OFFSET_NS: usize = 24;
/// The fixed shift applied after the multiplication.
pub const TSC_TO_NS_SHIFT: u32 = 32;
/// `FLAGS` bit: the TSC may be read and scaled in the application.
pub const CLOCK_USABLE: u64 = 1;
/// Bytes of the data page.
pub const PAGE_SIZE: usize = 4096;
