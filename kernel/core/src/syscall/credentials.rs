//! Changing whom the process acts for: the `set*id` calls, `setgroups`,
//! `capget`/`capset`, and `prctl`'s capability and no-new-privileges
//! options. The rules live in [`crate::credentials`].

use alloc::vec::Vec;

use super::{Context, Result};
use crate::credentials::{Credentials, CredentialsError, GROUPS_MAX, UNCHANGED, capability};
use crate::errno::Errno;
use crate::namespace::user::SetGroups;
use crate::user::User;

impl From<CredentialsError> for Errno {
    fn from(error: CredentialsError) -> Self {
        match error {
            CredentialsError::NotPermitted => Errno::EPERM,
            CredentialsError::InvalidArgument => Errno::EINVAL,
        }
    }
}

/// Applies `change` to the process's credentials.
fn change(
    context: Context<'_>,
    change: impl FnOnce(&mut Credentials) -> core::result::Result<(), CredentialsError>,
) -> Result {
    let mut state = context.process.state.lock();
    change(&mut state.credentials).map_err(Errno::from)?;
    Ok(0)
}

/// The 32-bit id in a system-call argument.
fn id(argument: u64) -> u32 {
    argument as u32
}

pub(super) fn setuid(context: Context<'_>, user: u64) -> Result {
    change(context, |credentials| {
        if id(user) == UNCHANGED {
            return Err(CredentialsError::InvalidArgument);
        }
        credentials.set_user(credentials.user_from_seen(id(user))?)
    })
}

pub(super) fn setgid(context: Context<'_>, group: u64) -> Result {
    change(context, |credentials| {
        if id(group) == UNCHANGED {
            return Err(CredentialsError::InvalidArgument);
        }
        credentials.set_group(credentials.group_from_seen(id(group))?)
    })
}

pub(super) fn setreuid(context: Context<'_>, real: u64, effective: u64) -> Result {
    change(context, |credentials| {
        let (real, effective) =
            (credentials.user_from_seen(id(real))?, credentials.user_from_seen(id(effective))?);
        credentials.set_real_effective_user(real, effective)
    })
}

pub(super) fn setregid(context: Context<'_>, real: u64, effective: u64) -> Result {
    change(context, |credentials| {
        let (real, effective) =
            (credentials.group_from_seen(id(real))?, credentials.group_from_seen(id(effective))?);
        credentials.set_real_effective_group(real, effective)
    })
}

pub(super) fn setresuid(context: Context<'_>, real: u64, effective: u64, saved: u64) -> Result {
    change(context, |credentials| {
        let [real, effective, saved] =
            [real, effective, saved].map(|user| credentials.user_from_seen(id(user)));
        credentials.set_user_ids(real?, effective?, saved?)
    })
}

pub(super) fn setresgid(context: Context<'_>, real: u64, effective: u64, saved: u64) -> Result {
    change(context, |credentials| {
        let [real, effective, saved] =
            [real, effective, saved].map(|group| credentials.group_from_seen(id(group)));
        credentials.set_group_ids(real?, effective?, saved?)
    })
}

/// `setfsuid`: the previous filesystem user id; an id the namespace does
/// not map changes nothing.
pub(super) fn setfsuid(context: Context<'_>, user: u64) -> Result {
    let credentials = &mut context.process.state.lock().credentials;
    let previous = match credentials.user_from_seen(id(user)) {
        Ok(user) => credentials.set_filesystem_user(user),
        Err(_) => credentials.filesystem_user,
    };
    Ok(u64::from(credentials.user_seen(previous)))
}

/// `setfsgid`, as `setfsuid`.
pub(super) fn setfsgid(context: Context<'_>, group: u64) -> Result {
    let credentials = &mut context.process.state.lock().credentials;
    let previous = match credentials.group_from_seen(id(group)) {
        Ok(group) => credentials.set_filesystem_group(group),
        Err(_) => credentials.filesystem_group,
    };
    Ok(u64::from(credentials.group_seen(previous)))
}

/// `setgroups`: needs `CAP_SETGID`, and is refused in a user namespace
/// whose `setgroups` file says `deny` (or whose group map is not set).
pub(super) fn setgroups(context: Context<'_>, size: u64, list: u64) -> Result {
    let size = size as i32;
    if size < 0 || size as usize > GROUPS_MAX {
        return Err(Errno::EINVAL.into());
    }
    {
        let credentials = &context.process.state.lock().credentials;
        let namespace = &credentials.user_namespace;
        let is_allowed = namespace.parent().is_none()
            || (namespace.setgroups() == SetGroups::Allow && !namespace.group_map().extents().is_empty());
        if !credentials.has_capability(capability::SETGID) || !is_allowed {
            return Err(Errno::EPERM.into());
        }
    }
    let bytes = User::new(context.machine).read_bytes(list, size as usize * 4)?;
    change(context, |credentials| {
        let groups = bytes
            .chunks_exact(4)
            .map(|word| credentials.group_from_seen(u32::from_le_bytes([word[0], word[1], word[2], word[3]])))
            .collect::<core::result::Result<Vec<u32>, CredentialsError>>()?;
        credentials.set_groups(groups)
    })
}

/// `_LINUX_CAPABILITY_VERSION_1`: one set of 32 bits.
const CAPABILITY_VERSION_1: u32 = 0x1998_0330;
/// `_LINUX_CAPABILITY_VERSION_2`, deprecated but accepted: 64 bits.
const CAPABILITY_VERSION_2: u32 = 0x2007_1026;
/// `_LINUX_CAPABILITY_VERSION_3`: 64 bits.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The 32-bit word at `address`.
fn read_u32(context: Context<'_>, address: u64) -> core::result::Result<u32, Errno> {
    let bytes = User::new(context.machine).read_bytes(address, 4)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The number of `struct __user_cap_data_struct` of a header's version,
/// or `EINVAL` after writing the version the kernel prefers into it.
fn data_count(context: Context<'_>, header: u64) -> core::result::Result<usize, Errno> {
    match read_u32(context, header)? {
        CAPABILITY_VERSION_1 => Ok(1),
        CAPABILITY_VERSION_2 | CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            User::new(context.machine).write_u32(header, CAPABILITY_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

/// The process a header names: 0 or this process.
fn header_pid(context: Context<'_>, header: u64) -> core::result::Result<i32, Errno> {
    Ok(read_u32(context, header + 4)? as i32)
}

pub(super) fn capget(context: Context<'_>, header: u64, data: u64) -> Result {
    let count = match data_count(context, header) {
        Ok(count) => count,
        // Asking for the version with a null data pointer is not an error.
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    if data == 0 {
        return Ok(0);
    }
    let pid = header_pid(context, header)?;
    if pid < 0 {
        return Err(Errno::EINVAL.into());
    }
    if pid != 0 && pid as u64 != context.process.pid {
        return Err(Errno::ESRCH.into());
    }
    let capabilities = context.process.state.lock().credentials.capabilities;
    let mut bytes = Vec::new();
    for index in 0..count {
        for set in [capabilities.effective, capabilities.permitted, capabilities.inheritable] {
            bytes.extend_from_slice(&((set >> (32 * index)) as u32).to_le_bytes());
        }
    }
    User::new(context.machine).write_bytes(data, &bytes)?;
    Ok(0)
}

pub(super) fn capset(context: Context<'_>, header: u64, data: u64) -> Result {
    let count = data_count(context, header)?;
    let pid = header_pid(context, header)?;
    if pid != 0 && pid as u64 != context.process.pid {
        return Err(Errno::EPERM.into());
    }
    let bytes = User::new(context.machine).read_bytes(data, count * 12)?;
    let mut sets = [0u64; 3];
    for (index, chunk) in bytes.chunks_exact(12).enumerate() {
        for (set, word) in sets.iter_mut().zip(chunk.chunks_exact(4)) {
            *set |= u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]])) << (32 * index);
        }
    }
    let [effective, permitted, inheritable] = sets;
    change(context, |credentials| credentials.set_capabilities(effective, permitted, inheritable))
}

/// `prctl` options on credentials.
mod option {
    pub const PR_GET_KEEPCAPS: u64 = 7;
    pub const PR_SET_KEEPCAPS: u64 = 8;
    pub const PR_CAPBSET_READ: u64 = 23;
    pub const PR_CAPBSET_DROP: u64 = 24;
    pub const PR_GET_SECUREBITS: u64 = 27;
    pub const PR_SET_SECUREBITS: u64 = 28;
    pub const PR_SET_NO_NEW_PRIVS: u64 = 38;
    pub const PR_GET_NO_NEW_PRIVS: u64 = 39;
    pub const PR_CAP_AMBIENT: u64 = 47;
}

/// `PR_CAP_AMBIENT` operations.
mod ambient {
    pub const IS_SET: u64 = 1;
    pub const RAISE: u64 = 2;
    pub const LOWER: u64 = 3;
    pub const CLEAR_ALL: u64 = 4;
}

/// Whether `prctl` option `option` is one of these.
pub(super) fn is_prctl_option(option: u64) -> bool {
    use option::*;
    matches!(
        option,
        PR_GET_KEEPCAPS
            | PR_SET_KEEPCAPS
            | PR_CAPBSET_READ
            | PR_CAPBSET_DROP
            | PR_GET_SECUREBITS
            | PR_SET_SECUREBITS
            | PR_SET_NO_NEW_PRIVS
            | PR_GET_NO_NEW_PRIVS
            | PR_CAP_AMBIENT
    )
}

/// A capability number argument, `EINVAL` past the last one.
fn capability_number(argument: u64) -> core::result::Result<u32, Errno> {
    u32::try_from(argument).ok().filter(|&number| number <= capability::LAST).ok_or(Errno::EINVAL)
}

pub(super) fn prctl(context: Context<'_>, option: u64, arguments: [u64; 4]) -> Result {
    let mut state = context.process.state.lock();
    let credentials = &mut state.credentials;
    let [first, second, third, fourth] = arguments;
    match option {
        option::PR_GET_KEEPCAPS => Ok(u64::from(credentials.keeps_capabilities)),
        option::PR_SET_KEEPCAPS => match first {
            0 | 1 => {
                credentials.keeps_capabilities = first == 1;
                Ok(0)
            }
            _ => Err(Errno::EINVAL.into()),
        },
        option::PR_CAPBSET_READ => {
            let number = capability_number(first)?;
            Ok(credentials.capabilities.bounding >> number & 1)
        }
        option::PR_CAPBSET_DROP => {
            let number = capability_number(first)?;
            credentials.drop_bounding_capability(number).map_err(Errno::from)?;
            Ok(0)
        }
        // No secure bits are set, and changing them needs CAP_SETPCAP.
        option::PR_GET_SECUREBITS => Ok(0),
        option::PR_SET_SECUREBITS => {
            if !credentials.has_capability(capability::SETPCAP) {
                return Err(Errno::EPERM.into());
            }
            if first != 0 {
                return Err(Errno::EINVAL.into());
            }
            Ok(0)
        }
        option::PR_SET_NO_NEW_PRIVS => {
            if first != 1 || second != 0 || third != 0 || fourth != 0 {
                return Err(Errno::EINVAL.into());
            }
            credentials.has_no_new_privileges = true;
            Ok(0)
        }
        option::PR_GET_NO_NEW_PRIVS => {
            if first != 0 || second != 0 || third != 0 || fourth != 0 {
                return Err(Errno::EINVAL.into());
            }
            Ok(u64::from(credentials.has_no_new_privileges))
        }
        _ => ambient_capabilities(credentials, [first, second, third, fourth]),
    }
}

/// `PR_CAP_AMBIENT`.
fn ambient_capabilities(credentials: &mut Credentials, arguments: [u64; 4]) -> Result {
    let [operation, number, third, fourth] = arguments;
    if third != 0 || fourth != 0 {
        return Err(Errno::EINVAL.into());
    }
    if operation == ambient::CLEAR_ALL {
        if number != 0 {
            return Err(Errno::EINVAL.into());
        }
        credentials.capabilities.ambient = 0;
        return Ok(0);
    }
    let number = capability_number(number)?;
    match operation {
        ambient::IS_SET => Ok(credentials.capabilities.ambient >> number & 1),
        ambient::RAISE => {
            credentials.raise_ambient_capability(number).map_err(Errno::from)?;
            Ok(0)
        }
        ambient::LOWER => {
            credentials.capabilities.ambient &= !(1 << number);
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}
