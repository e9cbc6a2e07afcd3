//! User namespaces: which user and group ids a process's ids are inside,
//! and the maps (`/proc/PID/uid_map`, `gid_map`) that join them to the
//! ids of the namespace above.
//!
//! Credentials keep kernel ids (those of the initial namespace); a
//! namespace's maps turn them into the ids a process inside sees
//! (`getuid`, `stat`) and back (`setuid`, `chown`). An id with no map
//! entry shows as the overflow id 65534. Each map is written once; until
//! then nothing is mapped.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use spin::Mutex;

/// The id unmapped ids show as (`/proc/sys/kernel/overflowuid`).
pub const OVERFLOW_ID: u32 = 65534;
/// How deep user namespaces nest (Linux's limit of 32).
pub const DEPTH_MAX: u32 = 32;
/// The most lines a map may have (Linux's `UID_GID_MAP_MAX_EXTENTS`).
pub const EXTENTS_MAX: usize = 340;
/// The most bytes one write of a map may carry (a page, as on Linux).
pub const MAP_WRITE_MAX: usize = 4096;

/// One line of a map: `count` ids from `inside` stand for the kernel ids
/// from `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// The first id as the namespace sees it.
    pub inside: u32,
    /// The first kernel id it stands for.
    pub outside: u32,
    /// How many ids follow.
    pub count: u32,
}

impl Extent {
    fn inside_end(&self) -> u64 {
        u64::from(self.inside) + u64::from(self.count)
    }

    fn outside_end(&self) -> u64 {
        u64::from(self.outside) + u64::from(self.count)
    }
}

/// A map of ids; empty until written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    extents: Vec<Extent>,
}

impl IdMap {
    /// Every id to itself: the initial namespace's map.
    fn identity() -> Self {
        IdMap { extents: alloc::vec![Extent { inside: 0, outside: 0, count: u32::MAX }] }
    }

    /// The kernel id `inside` stands for.
    pub fn to_kernel(&self, inside: u32) -> Option<u32> {
        self.extents.iter().find_map(|extent| {
            let offset = inside.checked_sub(extent.inside)?;
            (offset < extent.count).then(|| extent.outside + offset)
        })
    }

    /// The id kernel id `outside` shows as.
    pub fn from_kernel(&self, outside: u32) -> Option<u32> {
        self.extents.iter().find_map(|extent| {
            let offset = outside.checked_sub(extent.outside)?;
            (offset < extent.count).then(|| extent.inside + offset)
        })
    }

    /// The lines.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }
}

/// Why a map write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// Malformed, overlapping or too many lines (`EINVAL`).
    Invalid,
    /// The writer may not set this map (`EPERM`).
    NotPermitted,
}

/// Parses a map write: lines of `inside outside count`, where `outside`
/// is an id of the writer's namespace `outer` that is turned into a
/// kernel id. Lines may not overlap inside or outside.
pub fn parse_map(text: &str, outer: &IdMap) -> Result<IdMap, MapError> {
    if text.len() > MAP_WRITE_MAX {
        return Err(MapError::Invalid);
    }
    let mut extents: Vec<Extent> = Vec::new();
    for line in text.split('\n').filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_ascii_whitespace().map(|field| field.parse::<u32>());
        let (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count)), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(MapError::Invalid);
        };
        let extent = Extent { inside, outside, count };
        if count == 0
            || extent.inside_end() > u64::from(u32::MAX)
            || extent.outside_end() > u64::from(u32::MAX)
        {
            return Err(MapError::Invalid);
        }
        let overlaps = extents.iter().any(|other| {
            (u64::from(inside) < other.inside_end() && u64::from(other.inside) < extent.inside_end())
                || (u64::from(outside) < other.outside_end()
                    && u64::from(other.outside) < extent.outside_end())
        });
        if overlaps || extents.len() == EXTENTS_MAX {
            return Err(MapError::Invalid);
        }
        extents.push(extent);
    }
    if extents.is_empty() {
        return Err(MapError::Invalid);
    }
    // The outer ids become kernel ids; every one must be mapped there,
    // and a range stays one range only if the outer map keeps it whole.
    let mut kernel_extents = Vec::with_capacity(extents.len());
    for extent in extents {
        let first = outer.to_kernel(extent.outside).ok_or(MapError::NotPermitted)?;
        let last = outer.to_kernel(extent.outside + (extent.count - 1)).ok_or(MapError::NotPermitted)?;
        if u64::from(last) - u64::from(first) != u64::from(extent.count - 1) {
            return Err(MapError::NotPermitted);
        }
        kernel_extents.push(Extent { outside: first, ..extent });
    }
    Ok(IdMap { extents: kernel_extents })
}

/// Whether `setgroups` is allowed in a namespace (`/proc/PID/setgroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetGroups {
    /// `allow`.
    Allow,
    /// `deny`: set before the group map, kept for the namespace's life.
    Deny,
}

/// A user namespace (Linux's `struct user_namespace`).
#[derive(Debug)]
pub struct UserNamespace {
    inode: u64,
    parent: Option<Arc<UserNamespace>>,
    depth: u32,
    /// The creator's effective user and group (kernel ids).
    owner: (u32, u32),
    user_map: Mutex<IdMap>,
    group_map: Mutex<IdMap>,
    setgroups: Mutex<SetGroups>,
}

impl PartialEq for UserNamespace {
    fn eq(&self, other: &Self) -> bool {
        self.inode == other.inode
    }
}

impl Eq for UserNamespace {}

impl UserNamespace {
    /// The initial namespace: every id is itself.
    pub fn initial() -> Arc<Self> {
        static INITIAL: spin::Once<Arc<UserNamespace>> = spin::Once::new();
        INITIAL
            .call_once(|| {
                Arc::new(UserNamespace {
                    inode: super::Kind::User.initial_inode(),
                    parent: None,
                    depth: 0,
                    owner: (0, 0),
                    user_map: Mutex::new(IdMap::identity()),
                    group_map: Mutex::new(IdMap::identity()),
                    setgroups: Mutex::new(SetGroups::Allow),
                })
            })
            .clone()
    }

    /// A child of `parent` made by a process whose effective ids are
    /// `owner`; `None` past the nesting limit.
    pub fn new_child(parent: &Arc<UserNamespace>, owner: (u32, u32)) -> Option<Arc<Self>> {
        let depth = parent.depth + 1;
        if depth > DEPTH_MAX {
            return None;
        }
        Some(Arc::new(UserNamespace {
            inode: super::new_inode(),
            parent: Some(parent.clone()),
            depth,
            owner,
            user_map: Mutex::new(IdMap::default()),
            group_map: Mutex::new(IdMap::default()),
            setgroups: Mutex::new(*parent.setgroups.lock()),
        }))
    }

    /// The number its `/proc/PID/ns/user` link shows.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The namespace it was made in.
    pub fn parent(&self) -> Option<&Arc<UserNamespace>> {
        self.parent.as_ref()
    }

    /// The creator's effective user and group (kernel ids).
    pub fn owner(&self) -> (u32, u32) {
        self.owner
    }

    /// Whether `self` is `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &UserNamespace) -> bool {
        let mut namespace = self;
        loop {
            if namespace == ancestor {
                return true;
            }
            match &namespace.parent {
                Some(parent) => namespace = parent,
                None => return false,
            }
        }
    }

    /// The user map (a copy).
    pub fn user_map(&self) -> IdMap {
        self.user_map.lock().clone()
    }

    /// The group map (a copy).
    pub fn group_map(&self) -> IdMap {
        self.group_map.lock().clone()
    }

    /// The kernel user id `user` stands for here.
    pub fn user_to_kernel(&self, user: u32) -> Option<u32> {
        self.user_map.lock().to_kernel(user)
    }

    /// The kernel group id `group` stands for here.
    pub fn group_to_kernel(&self, group: u32) -> Option<u32> {
        self.group_map.lock().to_kernel(group)
    }

    /// Kernel user id `user` as seen here (the overflow id if unmapped).
    pub fn user_seen(&self, user: u32) -> u32 {
        self.user_map.lock().from_kernel(user).unwrap_or(OVERFLOW_ID)
    }

    /// Kernel group id `group` as seen here (the overflow id if unmapped).
    pub fn group_seen(&self, group: u32) -> u32 {
        self.group_map.lock().from_kernel(group).unwrap_or(OVERFLOW_ID)
    }

    /// The `setgroups` setting.
    pub fn setgroups(&self) -> SetGroups {
        *self.setgroups.lock()
    }

    /// Writes `/proc/PID/setgroups`: `deny` or `allow`, only before the
    /// group map is set, and `allow` only where the parent allows.
    pub fn set_setgroups(&self, text: &str) -> Result<(), MapError> {
        let wanted = match text.trim_end_matches('\n') {
            "allow" => SetGroups::Allow,
            "deny" => SetGroups::Deny,
            _ => return Err(MapError::Invalid),
        };
        let group_map = self.group_map.lock();
        let mut setgroups = self.setgroups.lock();
        if !group_map.extents.is_empty() || self.parent.is_none() {
            return Err(MapError::NotPermitted);
        }
        if wanted == SetGroups::Allow && *setgroups == SetGroups::Deny {
            return Err(MapError::NotPermitted);
        }
        *setgroups = wanted;
        Ok(())
    }

    /// Sets the user (`is_group` false) or group map, once.
    pub fn set_map(&self, is_group: bool, map: IdMap) -> Result<(), MapError> {
        let mut slot = if is_group { self.group_map.lock() } else { self.user_map.lock() };
        if !slot.extents.is_empty() {
            return Err(MapError::NotPermitted);
        }
        *slot = map;
        Ok(())
    }

    /// The text of `uid_map` or `gid_map` for a reader in `reader`: each
    /// line's outside id as the reader sees it.
    pub fn map_text(&self, is_group: bool, reader: &UserNamespace) -> String {
        let map = if is_group { self.group_map() } else { self.user_map() };
        let reader_map = if is_group { reader.group_map() } else { reader.user_map() };
        let mut text = String::new();
        for extent in map.extents() {
            // A reader inside this namespace sees the lines against the
            // parent's ids, as Linux shows them.
            let outside = if core::ptr::eq(reader, self) {
                self.parent.as_ref().map_or(Some(extent.outside), |parent| {
                    let parent_map = if is_group { parent.group_map() } else { parent.user_map() };
                    parent_map.from_kernel(extent.outside)
                })
            } else {
                reader_map.from_kernel(extent.outside)
            };
            let Some(outside) = outside else { continue };
            let _ = writeln!(text, "{:>10} {:>10} {:>10}", extent.inside, outside, extent.count);
        }
        text
    }
}
