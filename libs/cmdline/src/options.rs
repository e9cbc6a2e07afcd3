//! Kernel options: the leading `--name[=value]` tokens.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::Error;

/// The kernel options of a command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `--bootchart`: print every boot phase with its time.
    pub bootchart: bool,
    /// `--verbose`: log at debug level.
    pub verbose: bool,
    /// `--nopci`: skip PCI enumeration.
    pub no_pci: bool,
    /// `--env=NAME=value`, repeatable: the application's environment.
    pub environment: Vec<(String, String)>,
    /// `--cwd=path`: the application's working directory.
    pub cwd: Option<String>,
    /// `--power-off-on-abort`: power off instead of halting after a failure.
    pub power_off_on_abort: bool,
    /// `--noshutdown`: stay up after the last command exits.
    pub no_shutdown: bool,
    /// `--exit-record`: print the exit record for the host tools.
    pub exit_record: bool,
    /// `--noxsave`: do not enable XSAVE-managed (AVX) state, for hosts
    /// that cannot run XSAVE instructions in the guest's ring 0.
    pub no_xsave: bool,
    /// `--trace`: log every system call.
    pub trace: bool,
    /// `--net-activity`: log what the network did every few seconds.
    pub net_activity: bool,
    /// `--rootfs=overlay|rofs|ramfs`: what to mount as `/` (unset: a ROFS
    /// image under an overlay when the initrd or the first disk holds one,
    /// else ramfs).
    pub rootfs: Option<RootFilesystem>,
    /// `--mount-fs=<type>,<source>,<path>`, repeatable: more filesystems,
    /// mounted in order once the root tree stands.
    pub mounts: Vec<Mount>,
    /// `--ip=<interface>,<address>,<netmask>`, repeatable: static IPv4
    /// addresses (an interface without one asks DHCP).
    pub addresses: Vec<InterfaceAddress>,
    /// `--defaultgw=<address>`: the default IPv4 gateway.
    pub default_gateway: Option<Ipv4Addr>,
    /// `--nameserver=<address>`, repeatable: DNS servers.
    pub nameservers: Vec<Ipv4Addr>,
    /// `--report-boot`: print `Booted in N ms` before the application
    /// starts (also with `--verbose`).
    pub report_boot: bool,
    /// `--serial-streams`: frame the application's standard streams on the
    /// serial port (see `rosv_abi::streams`), for hosts with no other
    /// channel.
    pub serial_streams: bool,
    /// `--tty=<descriptors>`: which standard streams (0, 1, 2, separated by
    /// commas) are terminals on the host.
    pub terminal_streams: [bool; 3],
    /// `--tty-size=<columns>x<rows>`: the terminal's size at start.
    pub terminal_size: Option<(u16, u16)>,
    /// `--tty-mode=guest|host`: who edits lines, echoes and turns control
    /// characters into signals.
    pub terminal_mode: TerminalMode,
    /// `--user=<uid>[:<gid>]`: the application's user and group (group 0
    /// unless given).
    pub user: Option<(u32, u32)>,
    /// `--self-test=<what>`: make the kernel fail on purpose in one way, to
    /// check that the failure is caught and reported.
    pub self_test: Option<SelfTest>,
    /// `--vsock-forward=<vsock port>:<tcp port>`, repeatable: connections
    /// the host makes to the vsock port go on to the TCP port on the loop.
    pub vsock_forwards: Vec<(u32, u16)>,
    /// `--vsock-listen=<tcp port>:<cid>:<vsock port>`, repeatable: the
    /// kernel listens on the TCP port of the loop and joins each connection
    /// a program makes there to a vsock connection to the CID and port.
    pub vsock_listens: Vec<VsockListen>,
}

/// One `--vsock-listen`: where the kernel listens, and where it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockListen {
    /// The TCP port on `127.0.0.1`.
    pub tcp_port: u16,
    /// The context id connected to (2 is the host).
    pub cid: u32,
    /// The vsock port connected to.
    pub vsock_port: u32,
}

/// A failure the kernel causes on purpose (`--self-test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// A kernel thread recurses until it runs off its kernel stack.
    StackOverflow,
}

/// Who implements a terminal's line discipline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminalMode {
    /// The kernel: the host's terminal is in raw mode and passes every key
    /// on.
    #[default]
    Guest,
    /// The host's own terminal, which sends finished lines and raises
    /// signals itself; the kernel passes bytes through unchanged.
    Host,
}

/// A static address `--ip` gives an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface, such as `eth0`.
    pub interface: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// The prefix length of its network (from the netmask).
    pub prefix_length: u8,
}

/// A filesystem `--mount-fs` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Its type (`rofs`, `ramfs`).
    pub filesystem: String,
    /// What it is read from, such as `/dev/vdb` (ignored by `ramfs`).
    pub source: String,
    /// Where it appears.
    pub path: String,
}

/// A filesystem the kernel can mount as `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFilesystem {
    /// OSv's read-only image format, from the initrd or the first disk.
    Rofs,
    /// That image under an in-memory filesystem that takes every change.
    Overlay,
    /// An empty in-memory filesystem.
    Ramfs,
}

impl Options {
    /// Applies one `--name[=value]` token.
    pub(crate) fn apply(&mut self, token: &str) -> Result<(), Error> {
        let (name, value) = match token.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (token, None),
        };
        match name {
            "--bootchart" => self.bootchart = flag("--bootchart", value)?,
            "--verbose" => self.verbose = flag("--verbose", value)?,
            "--nopci" => self.no_pci = flag("--nopci", value)?,
            "--power-off-on-abort" => {
                self.power_off_on_abort = flag("--power-off-on-abort", value)?;
            }
            "--noshutdown" => self.no_shutdown = flag("--noshutdown", value)?,
            "--exit-record" => self.exit_record = flag("--exit-record", value)?,
            "--noxsave" => self.no_xsave = flag("--noxsave", value)?,
            "--trace" => self.trace = flag("--trace", value)?,
            "--net-activity" => self.net_activity = flag("--net-activity", value)?,
            "--self-test" => {
                self.self_test = Some(match required("--self-test", value)? {
                    "stack-overflow" => SelfTest::StackOverflow,
                    other => return Err(Error::UnknownSelfTest(String::from(other))),
                });
            }
            "--rootfs" => {
                self.rootfs = Some(match required("--rootfs", value)? {
                    "rofs" => RootFilesystem::Rofs,
                    "overlay" => RootFilesystem::Overlay,
                    "ramfs" => RootFilesystem::Ramfs,
                    other => return Err(Error::UnknownRootFilesystem(String::from(other))),
                });
            }
            "--mount-fs" => {
                let value = required("--mount-fs", value)?;
                let mut parts = value.splitn(3, ',');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(filesystem), Some(source), Some(path))
                        if !filesystem.is_empty() && path.starts_with('/') =>
                    {
                        self.mounts.push(Mount {
                            filesystem: String::from(filesystem),
                            source: String::from(source),
                            path: String::from(path),
                        });
                    }
                    _ => return Err(Error::BadMount(String::from(value))),
                }
            }
            "--ip" => {
                let value = required("--ip", value)?;
                let address = parse_interface_address(value)
                    .ok_or_else(|| Error::BadAddress { option: "--ip", value: String::from(value) })?;
                self.addresses.retain(|known| known.interface != address.interface);
                self.addresses.push(address);
            }
            "--defaultgw" => {
                self.default_gateway = Some(ipv4("--defaultgw", required("--defaultgw", value)?)?);
            }
            "--nameserver" => {
                self.nameservers.push(ipv4("--nameserver", required("--nameserver", value)?)?);
            }
            "--vsock-forward" => {
                let value = required("--vsock-forward", value)?;
                let ports = value
                    .split_once(':')
                    .and_then(|(vsock, tcp)| Some((vsock.parse().ok()?, tcp.parse().ok()?)));
                match ports {
                    Some(ports) => self.vsock_forwards.push(ports),
                    None => return Err(Error::BadVsockForward(String::from(value))),
                }
            }
            "--vsock-listen" => {
                let value = required("--vsock-listen", value)?;
                let mut parts = value.split(':');
                let listen = (|| {
                    let tcp_port = parts.next()?.parse().ok()?;
                    let cid = parts.next()?.parse().ok()?;
                    let vsock_port = parts.next()?.parse().ok()?;
                    parts.next().is_none().then_some(VsockListen { tcp_port, cid, vsock_port })
                })();
                match listen {
                    Some(listen) => self.vsock_listens.push(listen),
                    None => return Err(Error::BadVsockListen(String::from(value))),
                }
            }
            "--report-boot" => self.report_boot = flag("--report-boot", value)?,
            "--serial-streams" => self.serial_streams = flag("--serial-streams", value)?,
            "--tty" => {
                let value = required("--tty", value)?;
                let mut streams = [false; 3];
                for descriptor in value.split(',') {
                    match descriptor {
                        "0" => streams[0] = true,
                        "1" => streams[1] = true,
                        "2" => streams[2] = true,
                        _ => return Err(Error::BadTerminal(String::from(value))),
                    }
                }
                self.terminal_streams = streams;
            }
            "--tty-size" => {
                let value = required("--tty-size", value)?;
                let size = value
                    .split_once('x')
                    .and_then(|(columns, rows)| Some((columns.parse().ok()?, rows.parse().ok()?)));
                self.terminal_size = Some(size.ok_or_else(|| Error::BadTerminalSize(String::from(value)))?);
            }
            "--tty-mode" => {
                self.terminal_mode = match required("--tty-mode", value)? {
                    "guest" => TerminalMode::Guest,
                    "host" => TerminalMode::Host,
                    other => return Err(Error::BadTerminalMode(String::from(other))),
                };
            }
            "--user" => {
                let value = required("--user", value)?;
                let (user, group) = match value.split_once(':') {
                    Some((user, group)) => (user, Some(group)),
                    None => (value, None),
                };
                let parse = |text: &str| text.parse::<u32>().ok().filter(|id| *id != u32::MAX);
                let ids = match group {
                    Some(group) => parse(user).zip(parse(group)),
                    None => parse(user).map(|user| (user, 0)),
                };
                self.user = Some(ids.ok_or_else(|| Error::BadUser(String::from(value)))?);
            }
            "--cwd" => {
                let path = required("--cwd", value)?;
                self.cwd = Some(String::from(path));
            }
            "--env" => {
                let assignment = required("--env", value)?;
                match assignment.split_once('=') {
                    Some((key, value)) if !key.is_empty() => {
                        self.environment.push((String::from(key), String::from(value)));
                    }
                    _ => return Err(Error::BadEnvironment(String::from(assignment))),
                }
            }
            _ => return Err(Error::UnknownOption(String::from(name))),
        }
        Ok(())
    }
}

fn ipv4(option: &'static str, value: &str) -> Result<Ipv4Addr, Error> {
    value.parse().map_err(|_| Error::BadAddress { option, value: String::from(value) })
}

/// Reads `<interface>,<address>,<netmask>`; the netmask is dotted
/// (`255.255.255.0`) or a prefix length (`24`), and must be contiguous.
fn parse_interface_address(value: &str) -> Option<InterfaceAddress> {
    let mut parts = value.split(',');
    let (interface, address, netmask) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || interface.is_empty() {
        return None;
    }
    let address: Ipv4Addr = address.parse().ok()?;
    let prefix_length = match netmask.parse::<u8>() {
        Ok(length) if length <= 32 => length,
        Ok(_) => return None,
        Err(_) => {
            let mask = u32::from(netmask.parse::<Ipv4Addr>().ok()?);
            let length = mask.leading_ones();
            if mask.checked_shl(length).unwrap_or(0) != 0 {
                return None;
            }
            length as u8
        }
    };
    Some(InterfaceAddress { interface: String::from(interface), address, prefix_length })
}

fn flag(name: &'static str, value: Option<&str>) -> Result<bool, Error> {
    match value {
        None => Ok(true),
        Some(_) => Err(Error::UnexpectedValue(name)),
    }
}

fn required<'a>(name: &'static str, value: Option<&'a str>) -> Result<&'a str, Error> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::MissingValue(name)),
    }
}
