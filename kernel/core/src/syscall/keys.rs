//! `add_key`, `request_key` and `keyctl` over [`crate::keys`].

use alloc::string::String;
use alloc::vec::Vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::keys::{self, Key, KeyError, Kind, Special};
use crate::user::User;

/// Special keyring numbers (`KEY_SPEC_*`).
const THREAD_KEYRING: i32 = -1;
const PROCESS_KEYRING: i32 = -2;
const SESSION_KEYRING: i32 = -3;
const USER_KEYRING: i32 = -4;
const USER_SESSION_KEYRING: i32 = -5;
/// The largest `user` payload.
const USER_PAYLOAD_MAX: u64 = 32767;
/// The longest description read.
const DESCRIPTION_MAX: usize = 4096;

/// The default keyring of `request_key` (`KEYCTL_SET_REQKEY_KEYRING`).
static REQUEST_DEFAULT: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// `keyctl` commands.
mod command {
    pub const GET_KEYRING_ID: u64 = 0;
    pub const JOIN_SESSION_KEYRING: u64 = 1;
    pub const UPDATE: u64 = 2;
    pub const REVOKE: u64 = 3;
    pub const CHOWN: u64 = 4;
    pub const SETPERM: u64 = 5;
    pub const DESCRIBE: u64 = 6;
    pub const CLEAR: u64 = 7;
    pub const LINK: u64 = 8;
    pub const UNLINK: u64 = 9;
    pub const SEARCH: u64 = 10;
    pub const READ: u64 = 11;
    pub const SET_REQKEY_KEYRING: u64 = 14;
    pub const SET_TIMEOUT: u64 = 15;
    pub const INVALIDATE: u64 = 21;
}

fn key_errno(error: KeyError) -> Errno {
    match error {
        KeyError::NotFound => Errno::ENOKEY,
        KeyError::Revoked => Errno::EKEYREVOKED,
        KeyError::Expired => Errno::EKEYEXPIRED,
        KeyError::NotKeyring => Errno::ENOTDIR,
        KeyError::NotSupported => Errno::EOPNOTSUPP,
        KeyError::NotLinked => Errno::ENOENT,
        KeyError::Cycle => Errno::EDEADLK,
    }
}

fn owner(context: Context<'_>) -> (u32, u32) {
    let credentials = &context.process.state.lock().credentials;
    (credentials.effective_user, credentials.effective_group)
}

/// The serial `id` names: a key's own, or a special keyring's (made now
/// with `may_create`).
fn resolve(context: Context<'_>, id: u64, may_create: bool) -> core::result::Result<i32, Errno> {
    let id = id as i32;
    let owner = owner(context);
    let special = match id {
        THREAD_KEYRING => Special::Thread(context.thread.tid),
        PROCESS_KEYRING => Special::Process,
        // The session keyring always exists, as one is joined at login.
        SESSION_KEYRING => return keys::special(Special::Session, owner, true).map_err(key_errno),
        USER_KEYRING => Special::User(owner.0),
        USER_SESSION_KEYRING => Special::UserSession(owner.0),
        id if id > 0 => return Ok(id),
        _ => return Err(Errno::EINVAL),
    };
    keys::special(special, owner, may_create).map_err(key_errno)
}

/// A type name, read before the description (and looked up after, so that
/// a bad description is `EFAULT` even with an unknown type, as on Linux).
fn read_kind_name(context: Context<'_>, address: u64) -> core::result::Result<String, Errno> {
    User::new(context.machine).read_path(address)
}

/// The kind `name` names; types and keyrings beginning with a dot are the
/// kernel's own (`EPERM`).
fn kind_of(name: &str, description: &str) -> core::result::Result<Kind, Errno> {
    if name.starts_with('.') {
        return Err(Errno::EPERM);
    }
    let kind = Kind::named(name).ok_or(Errno::ENODEV)?;
    if kind == Kind::Keyring && description.starts_with('.') {
        return Err(Errno::EPERM);
    }
    Ok(kind)
}

fn read_description(context: Context<'_>, address: u64) -> core::result::Result<String, Errno> {
    let bytes = User::new(context.machine).read_c_string(address, DESCRIPTION_MAX)?;
    let description = String::from_utf8(bytes).map_err(|_| Errno::EINVAL)?;
    if description.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(description)
}

fn now(context: Context<'_>) -> u64 {
    context.machine.monotonic_ns()
}

pub(super) fn add_key(
    context: Context<'_>,
    kind: u64,
    description: u64,
    payload: u64,
    length: u64,
    keyring: u64,
) -> Result {
    let kind = read_kind_name(context, kind)?;
    let description = read_description(context, description)?;
    let kind = kind_of(&kind, &description)?;
    if kind != Kind::Keyring && length > USER_PAYLOAD_MAX || kind == Kind::Keyring && length != 0 {
        return Err(Errno::EINVAL.into());
    }
    if kind != Kind::Keyring && payload == 0 && length != 0 {
        return Err(Errno::EFAULT.into());
    }
    let payload = if length == 0 {
        Vec::new()
    } else {
        User::new(context.machine).read_bytes(payload, length as usize)?
    };
    if kind == Kind::Logon && !description.contains(':') {
        // A logon key's description has a service prefix.
        return Err(Errno::EINVAL.into());
    }
    let keyring = resolve(context, keyring, true)?;
    let serial =
        keys::add(keyring, kind, description, payload, owner(context), now(context)).map_err(key_errno)?;
    Ok(serial as u64)
}

/// `request_key`: finds the key in the caller's thread, process and session
/// keyrings and links it into `destination` (if not 0). There is no
/// upcall to make a missing key: `ENOKEY`.
pub(super) fn request_key(
    context: Context<'_>,
    kind: u64,
    description: u64,
    callout: u64,
    destination: u64,
) -> Result {
    let kind = read_kind_name(context, kind)?;
    let description = read_description(context, description)?;
    if callout != 0 {
        User::new(context.machine).read_c_string(callout, DESCRIPTION_MAX)?;
    }
    let kind = kind_of(&kind, &description)?;
    let searched: Vec<i32> = [THREAD_KEYRING, PROCESS_KEYRING, SESSION_KEYRING]
        .iter()
        .filter_map(|&special| resolve(context, special as u32 as u64, false).ok())
        .collect();
    let found = keys::search(&searched, kind, &description, now(context));
    if found == Err(KeyError::NotFound) && callout != 0 {
        // A key would be made in the destination (or the default keyring):
        // refused without write permission there, and otherwise not made
        // for want of an upcall.
        const POSSESSOR_WRITE: u32 = 0x0400_0000;
        let keyring = if destination != 0 { destination } else { SESSION_KEYRING as u32 as u64 };
        let keyring = keys::get(resolve(context, keyring, true)?, now(context)).map_err(key_errno)?;
        if keyring.permissions & POSSESSOR_WRITE == 0 {
            return Err(Errno::EACCES.into());
        }
    }
    let serial = found.map_err(key_errno)?;
    if destination != 0 {
        let destination = resolve(context, destination, true)?;
        keys::link(serial, destination, now(context)).map_err(key_errno)?;
    }
    Ok(serial as u64)
}

/// `KEYCTL_DESCRIBE`'s text: `type;uid;gid;perm;description`.
fn description_of(key: &Key) -> String {
    alloc::format!(
        "{};{};{};{:08x};{}",
        key.kind.name(),
        key.owner.0,
        key.owner.1,
        key.permissions,
        key.description
    )
}

/// Copies `bytes` to `buffer` if they fit in `length`; returns their length.
fn copy_out(context: Context<'_>, buffer: u64, length: u64, bytes: &[u8]) -> Result {
    if buffer != 0 && length >= bytes.len() as u64 {
        User::new(context.machine).write_bytes(buffer, bytes)?;
    } else if buffer != 0 && length > 0 {
        User::new(context.machine).write_bytes(buffer, &bytes[..length as usize])?;
    }
    Ok(bytes.len() as u64)
}

pub(super) fn keyctl(context: Context<'_>, operation: u64, arguments: [u64; 4]) -> Result {
    let [a1, a2, a3, a4] = arguments;
    let now = now(context);
    match operation {
        command::GET_KEYRING_ID => Ok(resolve(context, a1, a2 != 0)? as u64),
        command::JOIN_SESSION_KEYRING => {
            let name = if a1 == 0 { None } else { Some(read_description(context, a1)?) };
            // The kernel's own keyrings begin with a dot.
            if name.as_ref().is_some_and(|name| name.starts_with('.')) {
                return Err(Errno::EPERM.into());
            }
            Ok(keys::join_session(name, owner(context)) as u64)
        }
        command::UPDATE => {
            let serial = resolve(context, a1, false)?;
            if a3 > USER_PAYLOAD_MAX {
                return Err(Errno::EINVAL.into());
            }
            let payload =
                if a3 == 0 { Vec::new() } else { User::new(context.machine).read_bytes(a2, a3 as usize)? };
            keys::with_key(serial, now, |key| {
                if key.kind == Kind::Keyring {
                    return Err(KeyError::NotSupported);
                }
                key.payload = payload;
                Ok(())
            })
            .map_err(key_errno)?;
            Ok(0)
        }
        command::REVOKE => {
            let serial = resolve(context, a1, false)?;
            keys::with_key(serial, now, |key| {
                key.is_revoked = true;
                Ok(())
            })
            .map_err(key_errno)?;
            Ok(0)
        }
        command::CHOWN | command::SETPERM => {
            let serial = resolve(context, a1, false)?;
            let is_root = context
                .process
                .state
                .lock()
                .credentials
                .has_capability(crate::credentials::capability::SYS_ADMIN);
            keys::with_key(serial, now, |key| {
                if operation == command::SETPERM {
                    key.permissions = a2 as u32;
                } else {
                    // Only root gives a key away; -1 keeps an id.
                    if a2 as i32 != -1 && a2 as u32 != key.owner.0 && !is_root {
                        return Err(KeyError::NotSupported);
                    }
                    if a2 as i32 != -1 {
                        key.owner.0 = a2 as u32;
                    }
                    if a3 as i32 != -1 {
                        key.owner.1 = a3 as u32;
                    }
                }
                Ok(())
            })
            .map_err(|error| {
                if error == KeyError::NotSupported { Errno::EACCES } else { key_errno(error) }
            })?;
            Ok(0)
        }
        command::DESCRIBE => {
            let key = keys::get(resolve(context, a1, false)?, now).map_err(key_errno)?;
            let mut text = description_of(&key).into_bytes();
            text.push(0);
            copy_out(context, a2, a3, &text)
        }
        command::CLEAR => {
            let serial = resolve(context, a1, false)?;
            keys::with_key(serial, now, |key| {
                if key.kind != Kind::Keyring {
                    return Err(KeyError::NotKeyring);
                }
                key.links.clear();
                Ok(())
            })
            .map_err(key_errno)?;
            Ok(0)
        }
        command::LINK => {
            let (serial, keyring) = (resolve(context, a1, false)?, resolve(context, a2, true)?);
            keys::link(serial, keyring, now).map_err(key_errno)?;
            Ok(0)
        }
        command::UNLINK => {
            let (serial, keyring) = (resolve(context, a1, false)?, resolve(context, a2, false)?);
            keys::unlink(serial, keyring, now).map_err(key_errno)?;
            Ok(0)
        }
        command::SEARCH => {
            let keyring = resolve(context, a1, false)?;
            let kind = read_kind_name(context, a2)?;
            let description = read_description(context, a3)?;
            let kind = kind_of(&kind, &description)?;
            let serial = keys::search(&[keyring], kind, &description, now).map_err(key_errno)?;
            if a4 != 0 {
                keys::link(serial, resolve(context, a4, true)?, now).map_err(key_errno)?;
            }
            Ok(serial as u64)
        }
        command::READ => {
            let key = keys::get(resolve(context, a1, false)?, now).map_err(key_errno)?;
            let bytes: Vec<u8> = match key.kind {
                Kind::User => key.payload,
                Kind::Keyring => key.links.iter().flat_map(|link| link.to_le_bytes()).collect(),
                Kind::Logon => return Err(Errno::EOPNOTSUPP.into()),
            };
            copy_out(context, a2, a3, &bytes)
        }
        command::SET_REQKEY_KEYRING => {
            // Where request_key links what it makes: recorded and reported
            // (nothing is made: there is no upcall).
            const NO_CHANGE: i32 = -1;
            const REQUESTOR: i32 = 7;
            let requested = a1 as i32;
            if !(NO_CHANGE..=REQUESTOR).contains(&requested) || requested == 6 {
                return Err(Errno::EINVAL.into());
            }
            let old = REQUEST_DEFAULT.load(core::sync::atomic::Ordering::Relaxed);
            if requested != NO_CHANGE {
                REQUEST_DEFAULT.store(requested, core::sync::atomic::Ordering::Relaxed);
            }
            Ok(old as u64)
        }
        command::SET_TIMEOUT => {
            let serial = resolve(context, a1, false)?;
            let expiry = (a2 != 0).then(|| now.saturating_add(a2.saturating_mul(1_000_000_000)));
            keys::with_key(serial, now, |key| {
                key.expiry_ns = expiry;
                Ok(())
            })
            .map_err(key_errno)?;
            Ok(0)
        }
        command::INVALIDATE => {
            keys::invalidate(resolve(context, a1, false)?, now).map_err(key_errno)?;
            Ok(0)
        }
        // Instantiation (for upcalls), persistent keyrings, Diffie-Hellman,
        // restrictions and the rest are not offered.
        _ => Err(Errno::EOPNOTSUPP.into()),
    }
}
