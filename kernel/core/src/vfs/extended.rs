//! Extended attributes: Linux's rules for names, namespaces and who may
//! read or write them, ahead of the filesystems that store them.
//!
//! A name is a namespace prefix and a non-empty rest: `user.` (regular
//! files and directories only, with the file's read or write permission;
//! a sticky directory's only for its owner), `trusted.` (only with
//! `CAP_SYS_ADMIN`, hidden from others' listings), `security.` (no check:
//! Linux leaves it to security modules) and `system.` (POSIX ACLs, which no filesystem here
//! stores: `EOPNOTSUPP`). Anything else is `EOPNOTSUPP`.

use super::FsError;
use super::node::{Caller, FileType, Metadata};
use super::permission::{self, READ, STICKY, WRITE};
use crate::credentials::capability;
use crate::errno::Errno;

/// The longest name (`XATTR_NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// The largest value (`XATTR_SIZE_MAX`).
pub const VALUE_MAX: usize = 65536;
/// The largest list `listxattr` returns (`XATTR_LIST_MAX`).
pub const LIST_MAX: usize = 65536;

/// The namespaces of attribute names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `user.`
    User,
    /// `trusted.`
    Trusted,
    /// `security.`
    Security,
}

/// The namespace of `name`, checked as Linux checks it.
pub fn namespace(name: &str) -> Result<Namespace, FsError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(FsError::Errno(Errno::ERANGE));
    }
    let prefixes = [
        ("user.", Some(Namespace::User)),
        ("trusted.", Some(Namespace::Trusted)),
        ("security.", Some(Namespace::Security)),
        ("system.", None),
    ];
    for (prefix, namespace) in prefixes {
        if let Some(rest) = name.strip_prefix(prefix) {
            if rest.is_empty() {
                return Err(FsError::InvalidArgument);
            }
            return namespace.ok_or(FsError::NotSupported);
        }
    }
    Err(FsError::NotSupported)
}

/// Whether `caller` has `CAP_SYS_ADMIN` (the kernel has every power).
fn is_administrator(caller: &Caller<'_>) -> bool {
    caller.credentials().is_none_or(|credentials| credentials.has_capability(capability::SYS_ADMIN))
}

/// Checks that `caller` may read (`is_write` false) or change attribute
/// `name` of a node with `metadata`.
pub fn check_access(
    caller: &Caller<'_>,
    metadata: &Metadata,
    name: &str,
    is_write: bool,
) -> Result<(), FsError> {
    let refused = if is_write { FsError::NotPermitted } else { FsError::Errno(Errno::ENODATA) };
    match namespace(name)? {
        // Linux leaves `security.` to the security modules, which rosv
        // does not have.
        Namespace::Security => return Ok(()),
        Namespace::Trusted if !is_administrator(caller) => return Err(refused),
        Namespace::User => {
            if !matches!(metadata.file_type, FileType::Regular | FileType::Directory) {
                return Err(refused);
            }
            if is_write && metadata.file_type == FileType::Directory && metadata.permissions & STICKY != 0 {
                let is_owner_or_capable = caller.credentials().is_none_or(|credentials| {
                    permission::is_owner(&credentials, metadata)
                        || credentials.has_capability(capability::FOWNER)
                });
                if !is_owner_or_capable {
                    return Err(FsError::NotPermitted);
                }
            }
        }
        _ => {}
    }
    permission::check_caller(caller, metadata, if is_write { WRITE } else { READ })
}

/// Whether `caller` sees attribute `name` in a listing.
pub fn is_listed(caller: &Caller<'_>, name: &str) -> bool {
    !name.starts_with("trusted.") || is_administrator(caller)
}
