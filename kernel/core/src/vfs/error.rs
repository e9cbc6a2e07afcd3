//! The VFS's error type, and its one mapping to Linux error numbers.

use crate::errno::Errno;

/// Why a filesystem operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory.
    NotFound,
    /// The name exists already.
    Exists,
    /// A directory was needed.
    NotDirectory,
    /// The operation does not apply to a directory.
    IsDirectory,
    /// The directory is not empty.
    NotEmpty,
    /// The filesystem is mounted read-only.
    ReadOnly,
    /// The operation would cross filesystems.
    CrossDevice,
    /// A name or path is too long.
    NameTooLong,
    /// Too many symbolic links were followed.
    TooManyLinks,
    /// An argument is invalid for this object.
    InvalidArgument,
    /// The operation is not permitted on this object.
    NotPermitted,
    /// Access was denied.
    AccessDenied,
    /// The object is in use (a mount point, the root).
    Busy,
    /// No room is left.
    NoSpace,
    /// The device failed.
    Io,
    /// The object does not support the operation.
    NotSupported,
    /// The object has no data at this position (`SEEK_DATA` past the end).
    NoSuchPosition,
    /// The object cannot seek.
    NotSeekable,
    /// The descriptor does not allow the operation.
    BadDescriptor,
    /// Nothing is ready and the descriptor does not block.
    WouldBlock,
    /// Nobody reads the pipe any more.
    BrokenPipe,
    /// A signal arrived while the call waited.
    Interrupted,
    /// The object is not a terminal.
    NotTerminal,
    /// The file would grow past the largest size.
    TooLarge,
    /// epoll instances would watch each other in a loop, or nest too
    /// deeply.
    Loop,
    /// An error only sockets and other special objects give, as its
    /// number.
    Errno(Errno),
}

impl core::fmt::Display for FsError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            FsError::NotFound => "no such file or directory",
            FsError::Exists => "file exists",
            FsError::NotDirectory => "not a directory",
            FsError::IsDirectory => "is a directory",
            FsError::NotEmpty => "directory not empty",
            FsError::ReadOnly => "read-only file system",
            FsError::CrossDevice => "invalid cross-device link",
            FsError::NameTooLong => "file name too long",
            FsError::TooManyLinks => "too many levels of symbolic links",
            FsError::InvalidArgument => "invalid argument",
            FsError::NotPermitted => "operation not permitted",
            FsError::AccessDenied => "permission denied",
            FsError::Busy => "device or resource busy",
            FsError::NoSpace => "no space left on device",
            FsError::Io => "input/output error",
            FsError::NotSupported => "operation not supported",
            FsError::NoSuchPosition => "no such device or address",
            FsError::NotSeekable => "illegal seek",
            FsError::BadDescriptor => "bad file descriptor",
            FsError::WouldBlock => "resource temporarily unavailable",
            FsError::BrokenPipe => "broken pipe",
            FsError::Interrupted => "interrupted system call",
            FsError::NotTerminal => "inappropriate ioctl for device",
            FsError::TooLarge => "file too large",
            FsError::Loop => "too many levels of epoll nesting",
            FsError::Errno(errno) => return write!(formatter, "{errno}"),
        };
        formatter.write_str(text)
    }
}

impl core::error::Error for FsError {}

impl From<FsError> for Errno {
    fn from(error: FsError) -> Errno {
        match error {
            FsError::NotFound => Errno::ENOENT,
            FsError::Exists => Errno::EEXIST,
            FsError::NotDirectory => Errno::ENOTDIR,
            FsError::IsDirectory => Errno::EISDIR,
            FsError::NotEmpty => Errno::ENOTEMPTY,
            FsError::ReadOnly => Errno::EROFS,
            FsError::CrossDevice => Errno::EXDEV,
            FsError::NameTooLong => Errno::ENAMETOOLONG,
            FsError::TooManyLinks => Errno::ELOOP,
            FsError::InvalidArgument => Errno::EINVAL,
            FsError::NotPermitted => Errno::EPERM,
            FsError::AccessDenied => Errno::EACCES,
            FsError::Busy => Errno::EBUSY,
            FsError::NoSpace => Errno::ENOSPC,
            FsError::Io => Errno::EIO,
            FsError::NotSupported => Errno::EOPNOTSUPP,
            FsError::NoSuchPosition => Errno::ENXIO,
            FsError::NotSeekable => Errno::ESPIPE,
            FsError::BadDescriptor => Errno::EBADF,
            FsError::WouldBlock => Errno::EAGAIN,
            FsError::BrokenPipe => Errno::EPIPE,
            FsError::Interrupted => Errno::EINTR,
            FsError::NotTerminal => Errno::ENOTTY,
            FsError::TooLarge => Errno::EFBIG,
            FsError::Loop => Errno::ELOOP,
            FsError::Errno(errno) => errno,
        }
    }
}

impl From<FsError> for crate::syscall::Failure {
    /// A wait a signal interrupted restarts after the handler if it asks
    /// for that (`SA_RESTART`), as Linux's pipe reads and writes do.
    fn from(error: FsError) -> Self {
        match error {
            FsError::Interrupted => crate::syscall::Failure::Restart,
            error => crate::syscall::Failure::Error(error.into()),
        }
    }
}
