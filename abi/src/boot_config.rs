//! The boot configuration: the application's commands and environment.
//!
//! A hypervisor's kernel command line is short (4 KiB for the kernel's
//! buffer, less on some hypervisors), while a Linux program may receive up
//! to 2 MiB of arguments and environment. The tools therefore hand both to
//! the kernel in this blob, loaded as the initrd, and keep only kernel
//! options on the command line. The kernel tells the blob from a ROFS
//! initrd by its magic number.
//!
//! Layout, every integer little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | [`MAGIC`] |
//! | 8 | 4 | [`VERSION`] |
//! | 12 | 4 | number of commands |
//! | 16 | 4 | number of environment entries |
//! | 20 | 4 | reserved, zero |
//! | 24 | 8 | size of the string area, in bytes |
//! | 32 | 4 × commands | each command's number of arguments (at least 1) |
//! | then | string area | the environment entries (`NAME=value`), then each command's arguments, each string UTF-8 and ended by a NUL |
//!
//! The blob may be followed by padding (a loader may round it up); nothing
//! else may lie in the string area. [`check_exec_limits`] applies Linux's
//! `execve` limits, which the tools check before boot.

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use crate::bytes::{u32_at, u64_at};

/// The first eight bytes of a boot configuration.
pub const MAGIC: [u8; 8] = *b"ROSVBOOT";
/// The layout version this module reads and writes.
pub const VERSION: u32 = 1;
/// The size of the fixed header.
pub const HEADER_SIZE: usize = 32;
/// The longest kernel command line the kernel accepts, in bytes (without
/// its terminating NUL).
pub const KERNEL_COMMAND_LINE_MAX: usize = 4095;
/// Linux's `MAX_ARG_STRLEN`: the most bytes one argument or environment
/// string may take, its NUL included (32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The most bytes the strings and pointers of `argv` and `envp` may take:
/// Linux allows a quarter of the stack limit (`RLIMIT_STACK`, 8 MiB by
/// default, the size of rosv's main stack), at most three quarters of
/// `_STK_LIM`.
pub const ARG_SPACE_MAX: usize = 8 * 1024 * 1024 / 4;

/// Why a boot configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootConfigError {
    /// It does not start with [`MAGIC`].
    BadMagic,
    /// It was written for another layout version.
    UnsupportedVersion(u32),
    /// The header or the areas it announces run past the end.
    Truncated,
    /// The reserved field is not zero.
    ReservedNotZero,
    /// A command has no arguments (not even the program).
    EmptyCommand,
    /// The string area holds fewer or more strings than the counts say.
    StringCountMismatch,
    /// A string is not UTF-8.
    NotUtf8,
    /// An environment entry has no `=`, or an empty name.
    BadEnvironmentEntry,
    /// A command's arguments and environment exceed Linux's limits.
    Limits(ExecLimitError),
}

impl fmt::Display for BootConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootConfigError::BadMagic => write!(formatter, "not a boot configuration (bad magic number)"),
            BootConfigError::UnsupportedVersion(version) => {
                write!(
                    formatter,
                    "boot configuration version {version} is not supported (this kernel reads {VERSION})"
                )
            }
            BootConfigError::Truncated => write!(formatter, "the boot configuration is truncated"),
            BootConfigError::ReservedNotZero => {
                write!(formatter, "the boot configuration's reserved field is set")
            }
            BootConfigError::EmptyCommand => write!(formatter, "a command has no program"),
            BootConfigError::StringCountMismatch => {
                write!(formatter, "the boot configuration's strings do not match its counts")
            }
            BootConfigError::NotUtf8 => write!(formatter, "a string of the boot configuration is not UTF-8"),
            BootConfigError::BadEnvironmentEntry => {
                write!(formatter, "an environment entry is not NAME=value with a non-empty name")
            }
            BootConfigError::Limits(error) => write!(formatter, "{error}"),
        }
    }
}

/// How arguments and environment exceed Linux's `execve` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecLimitError {
    /// Argument `index` (0 is the program) takes `bytes` with its NUL.
    ArgumentTooLong {
        /// Its position in `argv`.
        index: usize,
        /// Its size with the NUL.
        bytes: usize,
    },
    /// Environment entry `index` takes `bytes` with its NUL.
    EnvironmentEntryTooLong {
        /// Its position in `envp`.
        index: usize,
        /// Its size with the NUL.
        bytes: usize,
    },
    /// Strings and pointers together take `bytes`.
    TooMuch {
        /// What they take.
        bytes: usize,
    },
}

impl fmt::Display for ExecLimitError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecLimitError::ArgumentTooLong { index, bytes } => write!(
                formatter,
                "argument {index} takes {bytes} bytes with its NUL; Linux allows {MAX_ARG_STRLEN} (MAX_ARG_STRLEN)"
            ),
            ExecLimitError::EnvironmentEntryTooLong { index, bytes } => write!(
                formatter,
                "environment entry {index} takes {bytes} bytes with its NUL; Linux allows {MAX_ARG_STRLEN} \
                 (MAX_ARG_STRLEN)"
            ),
            ExecLimitError::TooMuch { bytes } => write!(
                formatter,
                "the arguments and environment take {bytes} bytes with their NULs and pointers; Linux allows \
                 {ARG_SPACE_MAX} (a quarter of the 8 MiB stack)"
            ),
        }
    }
}

/// Checks `arguments` (the program first) and `environment` against the
/// limits Linux's `execve` applies: each string, NUL included, at most
/// [`MAX_ARG_STRLEN`]; all strings, the program's path once more (Linux
/// copies it for `AT_EXECFN`) and one pointer per string at most
/// [`ARG_SPACE_MAX`].
pub fn check_exec_limits<'a>(
    arguments: impl IntoIterator<Item = &'a str>,
    environment: impl IntoIterator<Item = &'a str>,
) -> Result<(), ExecLimitError> {
    let mut total = 0usize;
    let mut strings = 0usize;
    let mut program_bytes = 1;
    for (index, argument) in arguments.into_iter().enumerate() {
        let bytes = argument.len().saturating_add(1);
        if bytes > MAX_ARG_STRLEN {
            return Err(ExecLimitError::ArgumentTooLong { index, bytes });
        }
        if index == 0 {
            program_bytes = bytes;
        }
        total = total.saturating_add(bytes);
        strings += 1;
    }
    for (index, entry) in environment.into_iter().enumerate() {
        let bytes = entry.len().saturating_add(1);
        if bytes > MAX_ARG_STRLEN {
            return Err(ExecLimitError::EnvironmentEntryTooLong { index, bytes });
        }
        total = total.saturating_add(bytes);
        strings += 1;
    }
    let pointers = strings.max(1).saturating_mul(core::mem::size_of::<u64>());
    let bytes = total.saturating_add(program_bytes).saturating_add(pointers);
    if bytes > ARG_SPACE_MAX { Err(ExecLimitError::TooMuch { bytes }) } else { Ok(()) }
}

/// A parsed boot configuration, borrowing the blob's strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig<'a> {
    /// The environment entries, `NAME=value`.
    pub environment: Vec<&'a str>,
    /// The commands, each its `argv` (the program first), in the order
    /// they run.
    pub commands: Vec<Vec<&'a str>>,
}

/// Whether `bytes` start like a boot configuration.
pub fn is_boot_config(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

impl<'a> BootConfig<'a> {
    /// Reads a boot configuration, checking every count, size and string;
    /// each command with the environment must also fit Linux's limits.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BootConfigError> {
        if !is_boot_config(bytes) {
            return Err(BootConfigError::BadMagic);
        }
        let field = |offset| u32_at(bytes, offset).ok_or(BootConfigError::Truncated);
        let version = field(8)?;
        if version != VERSION {
            return Err(BootConfigError::UnsupportedVersion(version));
        }
        let command_count = field(12)? as usize;
        let environment_count = field(16)? as usize;
        if field(20)? != 0 {
            return Err(BootConfigError::ReservedNotZero);
        }
        let strings_size = u64_at(bytes, 24).ok_or(BootConfigError::Truncated)?;
        let strings_size = usize::try_from(strings_size).map_err(|_| BootConfigError::Truncated)?;
        let counts_end = command_count
            .checked_mul(4)
            .and_then(|size| size.checked_add(HEADER_SIZE))
            .filter(|&end| end <= bytes.len())
            .ok_or(BootConfigError::Truncated)?;
        let strings_end = counts_end
            .checked_add(strings_size)
            .filter(|&end| end <= bytes.len())
            .ok_or(BootConfigError::Truncated)?;
        let mut strings = Strings { area: &bytes[counts_end..strings_end] };

        // Every string takes at least its NUL: counts beyond the area's size
        // are refused before anything is reserved for them.
        if environment_count > strings_size {
            return Err(BootConfigError::StringCountMismatch);
        }
        let mut environment = Vec::with_capacity(environment_count);
        for _ in 0..environment_count {
            let entry = strings.next()?;
            if entry.split_once('=').is_none_or(|(name, _)| name.is_empty()) {
                return Err(BootConfigError::BadEnvironmentEntry);
            }
            environment.push(entry);
        }
        if command_count > strings_size {
            return Err(BootConfigError::StringCountMismatch);
        }
        let mut commands = Vec::with_capacity(command_count);
        for index in 0..command_count {
            let argument_count = field(HEADER_SIZE + 4 * index)? as usize;
            if argument_count == 0 {
                return Err(BootConfigError::EmptyCommand);
            }
            if argument_count > strings.area.len() {
                return Err(BootConfigError::StringCountMismatch);
            }
            let mut argv = Vec::with_capacity(argument_count);
            for _ in 0..argument_count {
                argv.push(strings.next()?);
            }
            check_exec_limits(argv.iter().copied(), environment.iter().copied())
                .map_err(BootConfigError::Limits)?;
            commands.push(argv);
        }
        if !strings.area.is_empty() {
            return Err(BootConfigError::StringCountMismatch);
        }
        Ok(BootConfig { environment, commands })
    }

    /// Writes the blob for `environment` and `commands`; the caller checks
    /// the limits (see [`check_exec_limits`]) first.
    pub fn encode(&self) -> Vec<u8> {
        let strings_size: usize = self
            .environment
            .iter()
            .chain(self.commands.iter().flatten())
            .map(|string| string.len() + 1)
            .sum();
        let mut blob = Vec::with_capacity(HEADER_SIZE + 4 * self.commands.len() + strings_size);
        blob.extend_from_slice(&MAGIC);
        blob.extend_from_slice(&VERSION.to_le_bytes());
        blob.extend_from_slice(&(self.commands.len() as u32).to_le_bytes());
        blob.extend_from_slice(&(self.environment.len() as u32).to_le_bytes());
        blob.extend_from_slice(&0u32.to_le_bytes());
        blob.extend_from_slice(&(strings_size as u64).to_le_bytes());
        for command in &self.commands {
            blob.extend_from_slice(&(command.len() as u32).to_le_bytes());
        }
        for string in self.environment.iter().chain(self.commands.iter().flatten()) {
            blob.extend_from_slice(string.as_bytes());
            blob.push(0);
        }
        blob
    }
}

/// The NUL-terminated strings of the string area, one after another.
struct Strings<'a> {
    area: &'a [u8],
}

impl<'a> Strings<'a> {
    fn next(&mut self) -> Result<&'a str, BootConfigError> {
        let end = self.area.iter().position(|&byte| byte == 0).ok_or(BootConfigError::StringCountMismatch)?;
        let text = core::str::from_utf8(&self.area[..end]).map_err(|_| BootConfigError::NotUtf8)?;
        self.area = &self.area[end + 1..];
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn sample() -> BootConfig<'static> {
        BootConfig {
            environment: vec!["HOME=/", "EMPTY="],
            commands: vec![vec!["/hello", "two words", ""], vec!["/bin/true"]],
        }
    }

    #[test]
    fn reads_what_it_writes() {
        let blob = sample().encode();
        assert_eq!(BootConfig::parse(&blob), Ok(sample()));
        let mut padded = blob.clone();
        padded.resize(4096, 0);
        assert_eq!(BootConfig::parse(&padded), Ok(sample()));
    }

    #[test]
    fn refuses_damaged_blobs() {
        let blob = sample().encode();
        for length in 0..blob.len() {
            assert!(BootConfig::parse(&blob[..length]).is_err(), "a blob cut at {length} was accepted");
        }
        let mut other = blob.clone();
        other[0] = b'X';
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::BadMagic));
        let mut other = blob.clone();
        other[8] = 2;
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::UnsupportedVersion(2)));
        let mut other = blob.clone();
        other[20] = 1;
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::ReservedNotZero));
        let mut other = blob.clone();
        other[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::Truncated));
        let mut other = blob.clone();
        other[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::StringCountMismatch));
        let mut other = blob.clone();
        other[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::EmptyCommand));
        let mut other = blob.clone();
        other[HEADER_SIZE + 8] = 0xff;
        assert_eq!(BootConfig::parse(&other), Err(BootConfigError::NotUtf8));
    }

    #[test]
    fn refuses_environment_entries_without_a_name() {
        let config = BootConfig { environment: vec!["=value"], commands: vec![vec!["/a"]] };
        assert_eq!(BootConfig::parse(&config.encode()), Err(BootConfigError::BadEnvironmentEntry));
        let config = BootConfig { environment: vec!["NAME"], commands: vec![vec!["/a"]] };
        assert_eq!(BootConfig::parse(&config.encode()), Err(BootConfigError::BadEnvironmentEntry));
    }

    #[test]
    fn leftover_strings_are_refused() {
        let mut blob = sample().encode();
        blob.extend_from_slice(b"extra\0");
        let strings_size = u64_at(&blob, 24).unwrap() + 6;
        blob[24..32].copy_from_slice(&strings_size.to_le_bytes());
        assert_eq!(BootConfig::parse(&blob), Err(BootConfigError::StringCountMismatch));
    }

    #[test]
    fn applies_linux_limits() {
        let longest = "x".repeat(MAX_ARG_STRLEN - 1);
        let too_long = "x".repeat(MAX_ARG_STRLEN);
        assert_eq!(check_exec_limits(["/a", longest.as_str()], []), Ok(()));
        assert_eq!(
            check_exec_limits(["/a", too_long.as_str()], []),
            Err(ExecLimitError::ArgumentTooLong { index: 1, bytes: MAX_ARG_STRLEN + 1 })
        );
        let entry = alloc::format!("A={}", "x".repeat(MAX_ARG_STRLEN));
        assert!(matches!(
            check_exec_limits(["/a"], [entry.as_str()]),
            Err(ExecLimitError::EnvironmentEntryTooLong { index: 0, .. })
        ));
        // Three 100 KB arguments and 1.5 MiB of environment fit; 3 MiB does not.
        let argument = "a".repeat(100_000);
        let variables: Vec<String> =
            (0..16).map(|index| alloc::format!("V{index:02}={}", "v".repeat(98_300))).collect();
        let arguments = ["/program", argument.as_str(), argument.as_str(), argument.as_str()];
        assert_eq!(check_exec_limits(arguments, variables.iter().map(String::as_str)), Ok(()));
        let more: Vec<String> =
            (0..32).map(|index| alloc::format!("V{index:02}={}", "v".repeat(98_300))).collect();
        assert!(matches!(
            check_exec_limits(arguments, more.iter().map(String::as_str)),
            Err(ExecLimitError::TooMuch { .. })
        ));
    }

    #[test]
    fn the_kernel_refuses_a_command_beyond_the_limits() {
        let too_long = "x".repeat(MAX_ARG_STRLEN);
        let config = BootConfig { environment: vec![], commands: vec![vec!["/a", too_long.as_str()]] };
        assert!(matches!(BootConfig::parse(&config.encode()), Err(BootConfigError::Limits(_))));
    }
}
