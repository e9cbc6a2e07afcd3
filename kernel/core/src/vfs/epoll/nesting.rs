//! epoll instances watching epoll instances: no loops, at most 5 levels.
//!
//! Linux refuses an `EPOLL_CTL_ADD` of one instance to another that would
//! close a loop or make a chain of more than [`NESTING_DEPTH_MAX`] links
//! (`EP_MAX_NESTS`), both with `ELOOP`. The rule keeps every walk over
//! nested instances (readiness, waiter registration) short and finite.
//! Each instance knows the instances it watches (its interests) and those
//! watching it (its parents); checks and the additions they allow are
//! serialized by one lock, as Linux serializes them with `epnested_mutex`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::{Mutex, MutexGuard};

use super::{Epoll, epoll_of};
use crate::vfs::{FsError, OpenFile};

/// The most links in a chain of instances watching one another.
const NESTING_DEPTH_MAX: usize = 4;

/// Held from a nesting check to the end of the addition it allowed.
static NESTING: Mutex<()> = Mutex::new(());

/// Checks that `parent` may watch `child`; the guard keeps the check
/// valid until the caller has added the interest.
pub(super) fn check(parent: &Epoll, child: &Epoll) -> Result<MutexGuard<'static, ()>, FsError> {
    let guard = NESTING.lock();
    let below = depth_below(child, parent, 0)?;
    let above = depth_above(parent, 0);
    if below + 1 + above > NESTING_DEPTH_MAX {
        return Err(FsError::Loop);
    }
    Ok(guard)
}

/// The longest chain of instances `epoll` watches; `Loop` if it reaches
/// `forbidden` or grows too long.
fn depth_below(epoll: &Epoll, forbidden: &Epoll, level: usize) -> Result<usize, FsError> {
    if core::ptr::eq(epoll, forbidden) || level > NESTING_DEPTH_MAX {
        return Err(FsError::Loop);
    }
    let children: Vec<Arc<OpenFile>> =
        epoll.watched_files(true).into_iter().filter(|file| epoll_of(file).is_some()).collect();
    let mut depth = 0;
    for child in &children {
        if let Some(child) = epoll_of(child) {
            depth = depth.max(1 + depth_below(child, forbidden, level + 1)?);
        }
    }
    Ok(depth)
}

/// The longest chain of instances watching `epoll`, or more than the
/// limit once past it (which is all the check needs).
fn depth_above(epoll: &Epoll, level: usize) -> usize {
    if level > NESTING_DEPTH_MAX {
        return NESTING_DEPTH_MAX + 1;
    }
    let parents: Vec<Arc<Epoll>> = {
        let mut state = epoll.state.lock();
        state.parents.retain(|parent| parent.strong_count() > 0);
        state.parents.iter().filter_map(|parent| parent.upgrade()).collect()
    };
    parents.iter().map(|parent| 1 + depth_above(parent, level + 1)).max().unwrap_or(0)
}
