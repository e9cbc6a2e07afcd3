//! The network's settings under `/proc/sys/net` that root may change.
//!
//! `fs::procfs` shows them; the stack reads them where Linux does: the
//! backlog bound (`net.core.somaxconn`), the ports `bind` and `connect`
//! choose (`net.ipv4.ip_local_port_range`) and the largest buffers
//! `SO_RCVBUF` and `SO_SNDBUF` give (`net.core.rmem_max`, `wmem_max`).

use core::sync::atomic::{AtomicU32, Ordering};

use crate::errno::Errno;

/// `INT_MAX`, the bound of settings Linux keeps in an `int`.
const INT_MAX: u32 = i32::MAX as u32;

/// A non-negative number root may set, within `0..=INT_MAX`.
#[derive(Debug)]
pub struct Number(AtomicU32);

impl Number {
    const fn new(value: u32) -> Self {
        Number(AtomicU32::new(value))
    }

    /// The value now.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the value; `EINVAL` for one out of range.
    pub fn set(&self, value: i64) -> Result<(), Errno> {
        let value = u32::try_from(value).ok().filter(|value| *value <= INT_MAX).ok_or(Errno::EINVAL)?;
        self.0.store(value, Ordering::Relaxed);
        Ok(())
    }
}

/// `net.core.somaxconn`: the largest backlog `listen` keeps.
pub static SOMAXCONN: Number = Number::new(4096);
/// `net.core.rmem_max`: the largest receive buffer `SO_RCVBUF` asks for
/// (the socket gets twice that).
pub static RMEM_MAX: Number = Number::new(212_992);
/// `net.core.wmem_max`: the same for `SO_SNDBUF`.
pub static WMEM_MAX: Number = Number::new(212_992);
/// `net.core.rmem_default`: kept and reported.
pub static RMEM_DEFAULT: Number = Number::new(212_992);
/// `net.core.wmem_default`: kept and reported.
pub static WMEM_DEFAULT: Number = Number::new(212_992);

/// `net.ipv4.ip_local_port_range`: the first and last port the stack
/// picks for a socket that needs one, packed as `first << 16 | last` so
/// both change at once.
static LOCAL_PORT_RANGE: AtomicU32 = AtomicU32::new((32768 << 16) | 60999);

/// The ports the stack picks from.
pub fn local_port_range() -> core::ops::RangeInclusive<u16> {
    let packed = LOCAL_PORT_RANGE.load(Ordering::Relaxed);
    (packed >> 16) as u16..=packed as u16
}

/// Sets the ports the stack picks from: both within `1..=65535`, the
/// first no higher than the last and no privileged port (below
/// `net.ipv4.ip_unprivileged_port_start`, 1024); `EINVAL` otherwise, as on
/// Linux.
pub fn set_local_port_range(first: i64, last: i64) -> Result<(), Errno> {
    const UNPRIVILEGED_PORT_START: u16 = 1024;
    let port = |value: i64| u16::try_from(value).ok().filter(|port| *port >= 1).ok_or(Errno::EINVAL);
    let (first, last) = (port(first)?, port(last)?);
    if first > last || first < UNPRIVILEGED_PORT_START {
        return Err(Errno::EINVAL);
    }
    LOCAL_PORT_RANGE.store(u32::from(first) << 16 | u32::from(last), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_linux_refuses_are_refused_and_change_nothing() {
        let before = local_port_range();
        for (first, last) in [(50_000, 40_000), (100, 200), (0, 5000), (2000, 70_000), (-1, 3000)] {
            assert_eq!(set_local_port_range(first, last), Err(Errno::EINVAL), "{first} {last}");
        }
        assert_eq!(local_port_range(), before);
    }

    #[test]
    fn numbers_stay_within_an_int() {
        let setting = Number::new(5);
        assert_eq!(setting.set(-1), Err(Errno::EINVAL));
        assert_eq!(setting.set(i64::from(u32::MAX)), Err(Errno::EINVAL));
        assert_eq!(setting.set(7), Ok(()));
        assert_eq!(setting.get(), 7);
    }
}
