//! Whom a process acts for, and Linux's rules for changing it.
//!
//! [`Credentials`] holds what Linux's `struct cred` holds for one user
//! namespace: real, effective, saved and filesystem user and group ids,
//! the supplementary groups, and the capability sets. The `set*id` calls
//! change them as `kernel/sys.c` does (a process with `CAP_SETUID` or
//! `CAP_SETGID` may take any id, others only ids they already hold), and
//! the capability sets follow the ids as `commoncap`'s fix-ups make them:
//! leaving user 0 drops the effective set, leaving it for good drops the
//! permitted set too unless `PR_SET_KEEPCAPS` asked to keep it. Permission
//! checks (`crate::vfs::permission`) read the filesystem ids and the
//! effective set.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::namespace::user::UserNamespace;

/// Capability numbers (`linux/capability.h`).
pub mod capability {
    /// Change any file's owner and group.
    pub const CHOWN: u32 = 0;
    /// Bypass read, write and search permission checks.
    pub const DAC_OVERRIDE: u32 = 1;
    /// Bypass read permission on files and search on directories.
    pub const DAC_READ_SEARCH: u32 = 2;
    /// Act as the owner of any file.
    pub const FOWNER: u32 = 3;
    /// Keep set-user-id and set-group-id bits on changes.
    pub const FSETID: u32 = 4;
    /// Send signals to any process.
    pub const KILL: u32 = 5;
    /// Change group ids.
    pub const SETGID: u32 = 6;
    /// Change user ids.
    pub const SETUID: u32 = 7;
    /// Change capability sets and the bounding set.
    pub const SETPCAP: u32 = 8;
    /// Change immutable and append-only attributes.
    pub const LINUX_IMMUTABLE: u32 = 9;
    /// Configure network interfaces.
    pub const NET_ADMIN: u32 = 12;
    /// Change the root directory (`chroot`).
    pub const SYS_CHROOT: u32 = 18;
    /// Administration: mounts, `sethostname`, and much more.
    pub const SYS_ADMIN: u32 = 21;
    /// Exceed resource limits, lower `oom_score_adj`.
    pub const SYS_RESOURCE: u32 = 24;
    /// Set the wall clock (`clock_settime`, `settimeofday`).
    pub const SYS_TIME: u32 = 25;
    /// Make device nodes.
    pub const MKNOD: u32 = 27;
    /// Override mandatory access control.
    pub const MAC_OVERRIDE: u32 = 32;
    /// The highest capability Linux knows (`CAP_CHECKPOINT_RESTORE`).
    pub const LAST: u32 = 40;
}

/// The capabilities that hold inside a user namespace other than the
/// initial one, over what that namespace owns: files whose owners it maps,
/// its processes, ids, and the namespaces it owns. The rest (the clock,
/// devices, resource limits, locking memory, ...) are the machine's.
const NAMESPACED_CAPABILITIES: u64 = (1 << capability::CHOWN)
    | (1 << capability::DAC_OVERRIDE)
    | (1 << capability::DAC_READ_SEARCH)
    | (1 << capability::FOWNER)
    | (1 << capability::FSETID)
    | (1 << capability::KILL)
    | (1 << capability::SETGID)
    | (1 << capability::SETUID)
    | (1 << capability::SETPCAP)
    | (1 << 10) // CAP_NET_BIND_SERVICE
    | (1 << 11) // CAP_NET_BROADCAST
    | (1 << capability::NET_ADMIN)
    | (1 << 13) // CAP_NET_RAW
    | (1 << 15) // CAP_IPC_OWNER
    | (1 << capability::SYS_CHROOT)
    | (1 << 19) // CAP_SYS_PTRACE
    | (1 << capability::SYS_ADMIN)
    | (1 << 29) // CAP_AUDIT_WRITE
    | (1 << 31); // CAP_SETFCAP

/// Every capability.
pub const ALL_CAPABILITIES: u64 = (1 << (capability::LAST + 1)) - 1;

/// The capabilities a change of filesystem user id to or from 0 affects
/// (`CAP_FS_MASK`).
const FILESYSTEM_CAPABILITIES: u64 = (1 << capability::CHOWN)
    | (1 << capability::DAC_OVERRIDE)
    | (1 << capability::DAC_READ_SEARCH)
    | (1 << capability::FOWNER)
    | (1 << capability::FSETID)
    | (1 << capability::LINUX_IMMUTABLE)
    | (1 << capability::MKNOD)
    | (1 << capability::MAC_OVERRIDE);

/// The most supplementary groups a process has (`NGROUPS_MAX`).
pub const GROUPS_MAX: usize = 65536;

/// An id argument meaning "leave this one alone" (`(uid_t)-1`).
pub const UNCHANGED: u32 = u32::MAX;

/// A process's capability sets, one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// What permission checks use.
    pub effective: u64,
    /// What the process may make effective.
    pub permitted: u64,
    /// What a program it executes may inherit.
    pub inheritable: u64,
    /// The limit on what it may ever gain.
    pub bounding: u64,
    /// What a program it executes keeps without file capabilities.
    pub ambient: u64,
}

impl Capabilities {
    /// Root's sets: every capability but no inheritable or ambient ones.
    pub fn full() -> Self {
        Capabilities {
            effective: ALL_CAPABILITIES,
            permitted: ALL_CAPABILITIES,
            inheritable: 0,
            bounding: ALL_CAPABILITIES,
            ambient: 0,
        }
    }

    /// An ordinary user's sets: nothing, within the full bounding set.
    pub fn none() -> Self {
        Capabilities { effective: 0, permitted: 0, inheritable: 0, bounding: ALL_CAPABILITIES, ambient: 0 }
    }
}

/// Why a change of credentials is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// The process may not take that id or set (`EPERM`).
    NotPermitted,
    /// An argument is out of range (`EINVAL`).
    InvalidArgument,
}

/// Whom a process acts for (`struct cred`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The real user id.
    pub real_user: u32,
    /// The effective user id.
    pub effective_user: u32,
    /// The saved set-user-id.
    pub saved_user: u32,
    /// The user id file permission checks use (follows the effective id
    /// unless `setfsuid` changes it).
    pub filesystem_user: u32,
    /// The real group id.
    pub real_group: u32,
    /// The effective group id.
    pub effective_group: u32,
    /// The saved set-group-id.
    pub saved_group: u32,
    /// The group id file permission checks and new files use.
    pub filesystem_group: u32,
    /// Supplementary group ids, sorted.
    pub groups: Vec<u32>,
    /// The capability sets.
    pub capabilities: Capabilities,
    /// `PR_SET_KEEPCAPS`: leaving user 0 keeps the permitted set.
    pub keeps_capabilities: bool,
    /// `PR_SET_NO_NEW_PRIVS`: set once, never cleared.
    pub has_no_new_privileges: bool,
    /// The user namespace the ids are seen in and the capabilities hold
    /// over. The ids above are kernel ids (the initial namespace's).
    pub user_namespace: Arc<UserNamespace>,
}

impl Default for Credentials {
    fn default() -> Self {
        Self::root()
    }
}

impl Credentials {
    /// Root: every id 0, every capability, no supplementary groups.
    pub fn root() -> Self {
        let mut credentials = Self::of(0, 0);
        credentials.capabilities = Capabilities::full();
        credentials
    }

    /// User `user` in group `group`, every kind of id alike, with no
    /// supplementary groups (as a login shell's `setgid`, `setuid` leave
    /// them), and root's capabilities only for user 0.
    pub fn of(user: u32, group: u32) -> Self {
        Credentials {
            real_user: user,
            effective_user: user,
            saved_user: user,
            filesystem_user: user,
            real_group: group,
            effective_group: group,
            saved_group: group,
            filesystem_group: group,
            groups: Vec::new(),
            capabilities: if user == 0 { Capabilities::full() } else { Capabilities::none() },
            keeps_capabilities: false,
            has_no_new_privileges: false,
            user_namespace: UserNamespace::initial(),
        }
    }

    /// Whether capability `number` is in the effective set and holds where
    /// the process is: in a user namespace other than the initial one only
    /// the capabilities Linux scopes to a namespace count (those over the
    /// machine itself, such as setting the clock, do not).
    pub fn has_capability(&self, number: u32) -> bool {
        self.has_effective(number)
            && (self.user_namespace.parent().is_none() || NAMESPACED_CAPABILITIES & (1 << number) != 0)
    }

    /// Whether capability `number` is in the effective set.
    fn has_effective(&self, number: u32) -> bool {
        number <= capability::LAST && self.capabilities.effective & (1 << number) != 0
    }

    /// Whether capability `number` holds over a file owned by `owner`
    /// (kernel user and group): in a user namespace other than the initial
    /// one, only if both are mapped there (Linux's
    /// `capable_wrt_inode_uidgid`).
    pub fn has_capability_over(&self, owner: (u32, u32), number: u32) -> bool {
        let namespace = &self.user_namespace;
        self.has_capability(number)
            && (namespace.parent().is_none()
                || (namespace.user_map().from_kernel(owner.0).is_some()
                    && namespace.group_map().from_kernel(owner.1).is_some()))
    }

    /// Whether capability `number` holds over `namespace` (Linux's
    /// `ns_capable`): in the effective set when `namespace` is the
    /// process's own, always when the process's effective user made
    /// `namespace` or a namespace above it from within the process's own.
    pub fn has_capability_in(&self, namespace: &UserNamespace, number: u32) -> bool {
        let mut namespace = namespace;
        loop {
            if *namespace == *self.user_namespace {
                return self.has_effective(number);
            }
            let Some(parent) = namespace.parent() else { return false };
            if **parent == *self.user_namespace && namespace.owner().0 == self.effective_user {
                return true;
            }
            namespace = parent;
        }
    }

    /// Kernel user id `user` as the process's namespace shows it.
    pub fn user_seen(&self, user: u32) -> u32 {
        self.user_namespace.user_seen(user)
    }

    /// The id `pick` chooses, as the process's namespace shows it (a group
    /// with `is_group`), for a system call's result.
    pub fn as_seen(&self, pick: impl FnOnce(&Self) -> u32, is_group: bool) -> u64 {
        let id = pick(self);
        u64::from(if is_group { self.group_seen(id) } else { self.user_seen(id) })
    }

    /// Kernel group id `group` as the process's namespace shows it.
    pub fn group_seen(&self, group: u32) -> u32 {
        self.user_namespace.group_seen(group)
    }

    /// The kernel id user `user` of the process's namespace stands for
    /// ([`UNCHANGED`] stays); `InvalidArgument` if it is not mapped.
    pub fn user_from_seen(&self, user: u32) -> Result<u32, CredentialsError> {
        if user == UNCHANGED {
            return Ok(user);
        }
        self.user_namespace.user_to_kernel(user).ok_or(CredentialsError::InvalidArgument)
    }

    /// The kernel id group `group` of the process's namespace stands for.
    pub fn group_from_seen(&self, group: u32) -> Result<u32, CredentialsError> {
        if group == UNCHANGED {
            return Ok(group);
        }
        self.user_namespace.group_to_kernel(group).ok_or(CredentialsError::InvalidArgument)
    }

    /// The kernel id of user 0 of the process's namespace, if mapped.
    fn root_user(&self) -> Option<u32> {
        self.user_namespace.user_to_kernel(0)
    }

    /// Enters the new user namespace `namespace`: the ids stay, and the
    /// process has every capability there (and, through it, none outside).
    pub fn enter_user_namespace(&mut self, namespace: Arc<UserNamespace>) {
        self.user_namespace = namespace;
        self.capabilities = Capabilities::full();
        self.keeps_capabilities = false;
    }

    /// Whether a process with these credentials may send a signal to one
    /// with `target`'s: with `CAP_KILL`, or when its real or effective
    /// user id is the target's real or saved one (Linux's
    /// `kill_ok_by_cred`).
    pub fn may_signal(&self, target: &Credentials) -> bool {
        (self.has_capability(capability::KILL) && target.user_namespace.is_within(&self.user_namespace))
            || [self.effective_user, self.real_user]
                .iter()
                .any(|user| *user == target.real_user || *user == target.saved_user)
    }

    /// Whether the filesystem group or a supplementary group is `group`.
    pub fn is_in_group(&self, group: u32) -> bool {
        self.filesystem_group == group || self.groups.binary_search(&group).is_ok()
    }

    /// `setuid`: a process with `CAP_SETUID` sets every user id, another
    /// only the effective one, to its real or saved id.
    pub fn set_user(&mut self, user: u32) -> Result<(), CredentialsError> {
        if user == UNCHANGED {
            return Err(CredentialsError::InvalidArgument);
        }
        let old = self.clone();
        if self.has_capability(capability::SETUID) {
            self.real_user = user;
            self.saved_user = user;
        } else if user != self.real_user && user != self.saved_user {
            return Err(CredentialsError::NotPermitted);
        }
        self.effective_user = user;
        self.filesystem_user = user;
        self.fix_capabilities_after_user_change(&old);
        Ok(())
    }

    /// `setreuid`: the real id may become the effective one, the effective
    /// id any of the three; a change of the real id, or an effective id
    /// other than the real one, updates the saved id.
    pub fn set_real_effective_user(&mut self, real: u32, effective: u32) -> Result<(), CredentialsError> {
        let old = self.clone();
        let is_privileged = self.has_capability(capability::SETUID);
        if real != UNCHANGED && !is_privileged && real != old.real_user && real != old.effective_user {
            return Err(CredentialsError::NotPermitted);
        }
        if effective != UNCHANGED && !is_privileged && !old.holds_user(effective) {
            return Err(CredentialsError::NotPermitted);
        }
        if real != UNCHANGED {
            self.real_user = real;
        }
        if effective != UNCHANGED {
            self.effective_user = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old.real_user) {
            self.saved_user = self.effective_user;
        }
        self.filesystem_user = self.effective_user;
        self.fix_capabilities_after_user_change(&old);
        Ok(())
    }

    /// `setresuid`: each id given must be one the process holds, unless it
    /// has `CAP_SETUID`.
    pub fn set_user_ids(&mut self, real: u32, effective: u32, saved: u32) -> Result<(), CredentialsError> {
        let old = self.clone();
        if !self.has_capability(capability::SETUID)
            && [real, effective, saved].iter().any(|&id| id != UNCHANGED && !old.holds_user(id))
        {
            return Err(CredentialsError::NotPermitted);
        }
        if real != UNCHANGED {
            self.real_user = real;
        }
        if effective != UNCHANGED {
            self.effective_user = effective;
        }
        if saved != UNCHANGED {
            self.saved_user = saved;
        }
        self.filesystem_user = self.effective_user;
        self.fix_capabilities_after_user_change(&old);
        Ok(())
    }

    /// `setfsuid`: returns the previous filesystem user id, whether or not
    /// the change was allowed (as Linux does).
    pub fn set_filesystem_user(&mut self, user: u32) -> u32 {
        let previous = self.filesystem_user;
        let is_allowed = user != UNCHANGED
            && (self.holds_user(user) || user == previous || self.has_capability(capability::SETUID));
        if is_allowed && user != previous {
            self.filesystem_user = user;
            self.fix_filesystem_capabilities(previous);
        }
        previous
    }

    /// `setgid`.
    pub fn set_group(&mut self, group: u32) -> Result<(), CredentialsError> {
        if group == UNCHANGED {
            return Err(CredentialsError::InvalidArgument);
        }
        if self.has_capability(capability::SETGID) {
            self.real_group = group;
            self.saved_group = group;
        } else if group != self.real_group && group != self.saved_group {
            return Err(CredentialsError::NotPermitted);
        }
        self.effective_group = group;
        self.filesystem_group = group;
        Ok(())
    }

    /// `setregid`.
    pub fn set_real_effective_group(&mut self, real: u32, effective: u32) -> Result<(), CredentialsError> {
        let old = self.clone();
        let is_privileged = self.has_capability(capability::SETGID);
        if real != UNCHANGED && !is_privileged && real != old.real_group && real != old.effective_group {
            return Err(CredentialsError::NotPermitted);
        }
        if effective != UNCHANGED && !is_privileged && !old.holds_group(effective) {
            return Err(CredentialsError::NotPermitted);
        }
        if real != UNCHANGED {
            self.real_group = real;
        }
        if effective != UNCHANGED {
            self.effective_group = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old.real_group) {
            self.saved_group = self.effective_group;
        }
        self.filesystem_group = self.effective_group;
        Ok(())
    }

    /// `setresgid`.
    pub fn set_group_ids(&mut self, real: u32, effective: u32, saved: u32) -> Result<(), CredentialsError> {
        if !self.has_capability(capability::SETGID)
            && [real, effective, saved].iter().any(|&id| id != UNCHANGED && !self.holds_group(id))
        {
            return Err(CredentialsError::NotPermitted);
        }
        if real != UNCHANGED {
            self.real_group = real;
        }
        if effective != UNCHANGED {
            self.effective_group = effective;
        }
        if saved != UNCHANGED {
            self.saved_group = saved;
        }
        self.filesystem_group = self.effective_group;
        Ok(())
    }

    /// `setfsgid`: returns the previous filesystem group id.
    pub fn set_filesystem_group(&mut self, group: u32) -> u32 {
        let previous = self.filesystem_group;
        let is_allowed = group != UNCHANGED
            && (self.holds_group(group) || group == previous || self.has_capability(capability::SETGID));
        if is_allowed {
            self.filesystem_group = group;
        }
        previous
    }

    /// `setgroups`: needs `CAP_SETGID`; the list is kept sorted.
    pub fn set_groups(&mut self, mut groups: Vec<u32>) -> Result<(), CredentialsError> {
        if groups.len() > GROUPS_MAX {
            return Err(CredentialsError::InvalidArgument);
        }
        if !self.has_capability(capability::SETGID) {
            return Err(CredentialsError::NotPermitted);
        }
        groups.sort_unstable();
        self.groups = groups;
        Ok(())
    }

    /// `capset`: the permitted set may only shrink, the effective set stays
    /// within the permitted one, and the inheritable set within the old
    /// inheritable and permitted sets (any set with `CAP_SETPCAP`) and the
    /// bounding set.
    pub fn set_capabilities(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), CredentialsError> {
        let old = self.capabilities;
        let inheritable_limit =
            if self.has_capability(capability::SETPCAP) { u64::MAX } else { old.inheritable | old.permitted };
        if inheritable & !inheritable_limit != 0
            || inheritable & !(old.inheritable | old.bounding) != 0
            || permitted & !old.permitted != 0
            || effective & !permitted != 0
        {
            return Err(CredentialsError::NotPermitted);
        }
        let capabilities = &mut self.capabilities;
        capabilities.effective = effective & ALL_CAPABILITIES;
        capabilities.permitted = permitted & ALL_CAPABILITIES;
        capabilities.inheritable = inheritable & ALL_CAPABILITIES;
        capabilities.ambient &= capabilities.permitted & capabilities.inheritable;
        Ok(())
    }

    /// `PR_CAPBSET_DROP`: needs `CAP_SETPCAP`.
    pub fn drop_bounding_capability(&mut self, number: u32) -> Result<(), CredentialsError> {
        if number > capability::LAST {
            return Err(CredentialsError::InvalidArgument);
        }
        if !self.has_capability(capability::SETPCAP) {
            return Err(CredentialsError::NotPermitted);
        }
        self.capabilities.bounding &= !(1 << number);
        Ok(())
    }

    /// `PR_CAP_AMBIENT_RAISE`: the capability must be permitted and
    /// inheritable.
    pub fn raise_ambient_capability(&mut self, number: u32) -> Result<(), CredentialsError> {
        if number > capability::LAST {
            return Err(CredentialsError::InvalidArgument);
        }
        let bit = 1 << number;
        let capabilities = &mut self.capabilities;
        if capabilities.permitted & bit == 0 || capabilities.inheritable & bit == 0 {
            return Err(CredentialsError::NotPermitted);
        }
        capabilities.ambient |= bit;
        Ok(())
    }

    fn holds_user(&self, user: u32) -> bool {
        user == self.real_user || user == self.effective_user || user == self.saved_user
    }

    fn holds_group(&self, group: u32) -> bool {
        group == self.real_group || group == self.effective_group || group == self.saved_group
    }

    /// `cap_emulate_setxuid` and the filesystem fix-up: capabilities follow
    /// a change of user ids to and from 0.
    fn fix_capabilities_after_user_change(&mut self, old: &Credentials) {
        let root = self.root_user();
        let is_root = |user: u32| Some(user) == root;
        let had_root = is_root(old.real_user) || is_root(old.effective_user) || is_root(old.saved_user);
        let has_root = is_root(self.real_user) || is_root(self.effective_user) || is_root(self.saved_user);
        let capabilities = &mut self.capabilities;
        if had_root && !has_root && !self.keeps_capabilities {
            capabilities.permitted = 0;
            capabilities.effective = 0;
        }
        if had_root && !has_root {
            capabilities.ambient = 0;
        }
        if is_root(old.effective_user) && !is_root(self.effective_user) {
            capabilities.effective = 0;
        }
        if !is_root(old.effective_user) && is_root(self.effective_user) {
            capabilities.effective = capabilities.permitted;
        }
    }

    /// A filesystem user id leaving 0 drops the filesystem capabilities from
    /// the effective set; one returning to 0 takes back those permitted.
    fn fix_filesystem_capabilities(&mut self, previous: u32) {
        let root = self.root_user();
        let (was_root, is_root) = (Some(previous) == root, Some(self.filesystem_user) == root);
        let capabilities = &mut self.capabilities;
        if was_root && !is_root {
            capabilities.effective &= !FILESYSTEM_CAPABILITIES;
        }
        if !was_root && is_root {
            capabilities.effective |= capabilities.permitted & FILESYSTEM_CAPABILITIES;
        }
    }
}

#[cfg(test)]
mod tests;
