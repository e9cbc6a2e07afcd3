//! Access times, updated when a file is read or a directory listed, as
//! the mount's policy says: `relatime` (the default: only when the access
//! time is not after the last modification or change, or is a day old),
//! `strictatime` (always), `noatime` (never), `nodiratime` (never for
//! directories); never on a read-only mount, nor through a description
//! opened with `O_NOATIME`, nor on an overlay. The update changes no other
//! time.

use super::mount::{Location, attribute};
use super::node::{AttributeChanges, Caller};

/// A day: `relatime` updates an access time at least this often.
const DAY_NS: u64 = 24 * 60 * 60 * 1_000_000_000;

/// Records an access to `location` now, if its mount's policy asks for
/// it. A filesystem that keeps no access times is left as it is.
pub(super) fn touch(caller: &Caller<'_>, location: &Location) {
    let attributes = location.mount.attributes();
    let policy = attributes & attribute::ATIME;
    // An overlay keeps its lower layer's times: recording an access there
    // would copy the whole file up into memory (Linux updates only files
    // already in the upper layer).
    if policy == attribute::NOATIME
        || location.mount.is_read_only()
        || location.mount.filesystem().type_name() == "overlay"
    {
        return;
    }
    if attributes & attribute::NODIRATIME != 0 && location.is_directory() {
        return;
    }
    let Ok(metadata) = location.node.metadata(caller) else {
        return;
    };
    let now = caller.now_ns();
    let accessed = metadata.access_time_ns;
    if policy == attribute::RELATIME
        && metadata.modify_time_ns < accessed
        && metadata.change_time_ns < accessed
        && now.saturating_sub(accessed) < DAY_NS
    {
        return;
    }
    if accessed == now {
        return;
    }
    let changes = AttributeChanges {
        access_time_ns: Some(now),
        keeps_change_time: true,
        ..AttributeChanges::default()
    };
    // Synthetic files refuse attribute changes: they keep their times.
    let _ = location.node.set_attributes(caller, changes);
}
