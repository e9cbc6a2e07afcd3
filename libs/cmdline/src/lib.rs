//! The rosv kernel command line: kernel options, devices, commands.
//!
//! [`CommandLine::parse`] turns the raw string a boot loader hands over into
//! [`Options`], the [`MmioDevice`]s a hypervisor announced, and the
//! [`Command`]s to run. [`quote`] is its inverse for one argument, used by the
//! tools that write command lines.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod device;
mod lexer;
mod options;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use device::{MmioDevice, MmioDeviceError};
pub use lexer::{Token, option_with_value, quote, tokenize};
pub use options::{InterfaceAddress, Mount, Options, RootFilesystem, SelfTest, TerminalMode, VsockListen};

/// One application command: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `argv`, starting with the program path.
    pub argv: Vec<String>,
    /// Whether the command was followed by `&` (runs in the background).
    pub is_background: bool,
}

/// A parsed kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// Kernel options.
    pub options: Options,
    /// virtio-mmio devices announced with `virtio_mmio.device=`.
    pub mmio_devices: Vec<MmioDevice>,
    /// Linux-style tokens a hypervisor added, which the kernel ignores.
    pub ignored: Vec<String>,
    /// Application commands, in the order they run.
    pub commands: Vec<Command>,
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A quote was opened and never closed.
    UnterminatedQuote,
    /// A backslash ended the command line.
    TrailingBackslash,
    /// `--name` is not a kernel option.
    UnknownOption(String),
    /// The option needs `=value`.
    MissingValue(&'static str),
    /// The option takes no value.
    UnexpectedValue(&'static str),
    /// `--env=` needs `NAME=value` with a non-empty name.
    BadEnvironment(String),
    /// `--rootfs=` names no filesystem the kernel can mount as `/`.
    UnknownRootFilesystem(String),
    /// `--self-test=` names no test the kernel has.
    UnknownSelfTest(String),
    /// `--mount-fs=` needs `<type>,<source>,<absolute path>`.
    BadMount(String),
    /// A network option has a malformed address.
    BadAddress {
        /// The option.
        option: &'static str,
        /// Its value.
        value: String,
    },
    /// A `virtio_mmio.device=` token could not be read.
    BadMmioDevice(String, MmioDeviceError),
    /// `;` or `&` with no command before it.
    EmptyCommand,
    /// `--tty=` names something other than descriptors 0, 1 and 2.
    BadTerminal(String),
    /// `--tty-size=` needs `<columns>x<rows>`.
    BadTerminalSize(String),
    /// `--tty-mode=` is `guest` or `host`.
    BadTerminalMode(String),
    /// `--user=` needs numeric `<uid>[:<gid>]`.
    BadUser(String),
    /// `--vsock-forward=` needs `<vsock port>:<tcp port>`.
    BadVsockForward(String),
    /// `--vsock-listen=` needs `<tcp port>:<cid>:<vsock port>`.
    BadVsockListen(String),
}

impl core::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnterminatedQuote => write!(formatter, "a quote is not closed"),
            Error::TrailingBackslash => write!(formatter, "the command line ends in a backslash"),
            Error::UnknownOption(name) => write!(formatter, "unknown option {name}"),
            Error::MissingValue(name) => {
                write!(formatter, "option {name} needs a value ({name}=...)")
            }
            Error::UnexpectedValue(name) => write!(formatter, "option {name} takes no value"),
            Error::BadEnvironment(value) => {
                write!(formatter, "--env needs NAME=value, not \"{value}\"")
            }
            Error::BadMount(value) => {
                write!(
                    formatter,
                    "--mount-fs={value}: expected <type>,<source>,<absolute path>, e.g. rofs,/dev/vdb,/data"
                )
            }
            Error::UnknownSelfTest(value) => {
                write!(formatter, "--self-test={value}: the kernel's only self-test is stack-overflow")
            }
            Error::UnknownRootFilesystem(value) => {
                write!(formatter, "--rootfs={value}: the root filesystem is overlay, rofs or ramfs")
            }
            Error::BadAddress { option: "--ip", value } => write!(
                formatter,
                "--ip={value}: expected <interface>,<address>,<netmask>, e.g. eth0,192.168.122.10,255.255.255.0"
            ),
            Error::BadAddress { option, value } => {
                write!(formatter, "{option}={value}: not an IPv4 address")
            }
            Error::BadMmioDevice(token, error) => write!(formatter, "{token}: {error}"),
            Error::EmptyCommand => {
                write!(formatter, "a command separator has no command before it")
            }
            Error::BadVsockForward(value) => {
                write!(formatter, "--vsock-forward={value}: expected <vsock port>:<tcp port>, e.g. 8080:8080")
            }
            Error::BadVsockListen(value) => write!(
                formatter,
                "--vsock-listen={value}: expected <tcp port>:<cid>:<vsock port>, e.g. 9001:2:9001"
            ),
            Error::BadTerminal(value) => {
                write!(formatter, "--tty={value}: expected standard stream numbers, e.g. 0,1,2")
            }
            Error::BadTerminalSize(value) => {
                write!(formatter, "--tty-size={value}: expected <columns>x<rows>, e.g. 80x24")
            }
            Error::BadTerminalMode(value) => {
                write!(formatter, "--tty-mode={value}: the terminal mode is guest or host")
            }
            Error::BadUser(value) => {
                write!(formatter, "--user={value}: expected a numeric <uid>[:<gid>], e.g. 1000:1000")
            }
        }
    }
}

const MMIO_DEVICE_PREFIX: &str = "virtio_mmio.device=";

impl CommandLine {
    /// Parses a kernel command line.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut tokens = tokenize(text)?;
        let mut line = CommandLine::default();

        let mut kept = Vec::with_capacity(tokens.len());
        for token in tokens.drain(..) {
            match token.text.strip_prefix(MMIO_DEVICE_PREFIX) {
                Some(spec) if !token.is_quoted => {
                    let device = MmioDevice::parse(spec)
                        .map_err(|error| Error::BadMmioDevice(token.text.clone(), error))?;
                    line.mmio_devices.push(device);
                }
                _ => kept.push(token),
            }
        }

        let mut rest = kept.into_iter().peekable();
        while let Some(token) = rest.peek() {
            if token.text == "--" && !token.is_quoted {
                rest.next();
                break;
            }
            if token.is_option() {
                line.options.apply(&token.text)?;
            } else if !token.is_quoted && is_hypervisor_token(&token.text) {
                line.ignored.push(token.text.clone());
            } else {
                break;
            }
            rest.next();
        }

        let mut remaining: Vec<Token> = rest.collect();
        let trailing = remaining
            .iter()
            .rev()
            .take_while(|token| !token.is_quoted && is_hypervisor_token(&token.text))
            .count();
        let command_len = remaining.len() - trailing;
        line.ignored.extend(remaining.drain(command_len..).map(|token| token.text));
        line.commands = split_commands(remaining)?;
        Ok(line)
    }
}

fn split_commands(tokens: Vec<Token>) -> Result<Vec<Command>, Error> {
    let mut commands = Vec::new();
    let mut argv = Vec::new();
    for token in tokens {
        let is_separator = token.is_separator();
        if !is_separator {
            argv.push(token.text);
            continue;
        }
        if argv.is_empty() {
            return Err(Error::EmptyCommand);
        }
        commands.push(Command { argv: core::mem::take(&mut argv), is_background: token.text == "&" });
    }
    if !argv.is_empty() {
        commands.push(Command { argv, is_background: false });
    }
    Ok(commands)
}

/// Keys of Linux kernel parameters that hypervisors put on the command line.
const LINUX_PARAMETERS: &[&str] = &[
    "acpi",
    "clocksource",
    "console",
    "earlyprintk",
    "init",
    "ignore_loglevel",
    "loglevel",
    "mitigations",
    "noapic",
    "nokaslr",
    "nolapic",
    "nomodule",
    "noreplace-smp",
    "panic",
    "pci",
    "quiet",
    "reboot",
    "ro",
    "root",
    "rootfstype",
    "rw",
    "swiotlb",
    "tsc",
];
/// Module prefixes of Linux module parameters that hypervisors add.
const LINUX_MODULES: &[&str] = &["8250.", "i8042.", "virtio_mmio.", "random.", "printk.", "kvm."];

/// Whether `token` is a Linux-style parameter a hypervisor may add.
pub fn is_hypervisor_token(token: &str) -> bool {
    let key = token.split('=').next().unwrap_or(token);
    LINUX_PARAMETERS.contains(&key) || LINUX_MODULES.iter().any(|module| key.starts_with(module))
}

#[cfg(test)]
mod tests;
