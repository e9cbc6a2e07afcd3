//! The guest's network card: what connects it to the host, port forwards.
//!
//! [`Network`] is what `--net` asks for, [`PortForward`] one `--forward`.
//! [`check`] refuses the combinations a hypervisor cannot run; `qemu` and
//! `firecracker` turn the result into device arguments. The kernel drives
//! the first virtio-net card it finds and asks DHCP for an address unless
//! `--ip` gives one.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::vm::Hypervisor;

/// The MAC address of the guest's card, the same on every hypervisor (in
/// QEMU's locally administered 52:54:00 range).
pub const GUEST_MAC: &str = "52:54:00:12:34:56";
/// [`GUEST_MAC`] as bytes, for the built-in monitor.
pub const GUEST_MAC_BYTES: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// The longest Linux network interface name (`IFNAMSIZ` less the NUL).
const INTERFACE_NAME_MAX: usize = 15;

/// What `--net` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// No network card: the guest has its loopback interface alone.
    None,
    /// A card on QEMU's user-mode network (slirp): the guest gets
    /// 10.0.2.15/24 by DHCP, the host is 10.0.2.2, and `--forward` opens
    /// host ports to the guest.
    User,
    /// A card on the host's tap device of this name, which someone created
    /// and configured beforehand.
    Tap(String),
}

impl Network {
    /// The option's spelling on the command line.
    pub fn name(&self) -> String {
        match self {
            Network::None => "none".into(),
            Network::User => "user".into(),
            Network::Tap(interface) => format!("tap:{interface}"),
        }
    }
}

/// A `--net` value that is none of `none`, `user` and `tap:IFNAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkParseError {
    /// Neither `none`, `user` nor `tap:...`.
    #[error("\"{0}\" is not a network; use none, user or tap:IFNAME")]
    Unknown(String),
    /// A tap name Linux would refuse.
    #[error(
        "\"{0}\" is not a network interface name (1 to {INTERFACE_NAME_MAX} characters, \
         without '/', ':' or spaces)"
    )]
    BadInterfaceName(String),
}

/// Parses `--net`: `none`, `user` or `tap:IFNAME`.
pub fn parse_network(text: &str) -> Result<Network, NetworkParseError> {
    match text {
        "none" => Ok(Network::None),
        "user" => Ok(Network::User),
        _ => match text.strip_prefix("tap:") {
            Some(interface) if is_interface_name(interface) => Ok(Network::Tap(interface.to_string())),
            Some(interface) => Err(NetworkParseError::BadInterfaceName(interface.to_string())),
            None => Err(NetworkParseError::Unknown(text.to_string())),
        },
    }
}

/// Whether Linux accepts `name` for a network interface (its
/// `dev_valid_name`).
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= INTERFACE_NAME_MAX
        && name != "."
        && name != ".."
        && !name.chars().any(|character| character == '/' || character == ':' || character.is_whitespace())
}

/// The transport protocol of a forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `--forward`: connections to a host address and port reach the guest
/// at a port of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address to listen on.
    pub host_address: Ipv4Addr,
    /// The host port to listen on.
    pub host_port: u16,
    /// The guest port the traffic goes to.
    pub guest_port: u16,
}

impl PortForward {
    /// QEMU's `hostfwd` value: `tcp:127.0.0.1:8080-:80`. The guest address
    /// is left empty, which QEMU reads as the first address its DHCP
    /// server hands out (10.0.2.15).
    pub fn hostfwd(&self) -> String {
        format!("{}:{}:{}-:{}", self.protocol.name(), self.host_address, self.host_port, self.guest_port)
    }
}

impl fmt::Display for PortForward {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PortForward { protocol, host_address, host_port, guest_port } = self;
        write!(formatter, "{}:{host_address}:{host_port}:{guest_port}", protocol.name())
    }
}

/// A `--forward` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardParseError {
    /// Too few or too many `:`-separated parts.
    #[error(
        "\"{0}\" is not [tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp], e.g. 8080:80, udp:0.0.0.0:5353:53 or 5353:53/udp"
    )]
    Shape(String),
    /// A first part that is not a protocol (with four parts).
    #[error("unknown protocol \"{0}\"; use tcp or udp")]
    UnknownProtocol(String),
    /// A host address that is not IPv4 (with four parts).
    #[error("\"{0}\" is not an IPv4 host address such as 127.0.0.1 or 0.0.0.0")]
    BadHostAddress(String),
    /// A first part that is neither (with three parts).
    #[error("\"{0}\" is neither a protocol (tcp, udp) nor an IPv4 host address such as 127.0.0.1")]
    NeitherProtocolNorAddress(String),
    /// An empty port.
    #[error("the {0} is missing")]
    MissingPort(&'static str),
    /// A port that is not a number from 1 to 65535.
    #[error("{which} \"{text}\" is not a number from 1 to 65535")]
    BadPort {
        /// "host port" or "guest port".
        which: &'static str,
        /// What was given.
        text: String,
    },
}

/// Parses `--forward [tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT`; the
/// protocol defaults to TCP and the host address to 127.0.0.1, so that
/// only the host itself reaches the guest.
pub fn parse_forward(text: &str) -> Result<PortForward, ForwardParseError> {
    // docker's spelling puts the protocol last: 8080:80/udp.
    let (text, suffix) = match text.rsplit_once('/') {
        Some((rest, name)) => {
            (rest, Some(protocol(name).ok_or_else(|| ForwardParseError::UnknownProtocol(name.to_string()))?))
        }
        None => (text, None),
    };
    let forward = parse_forward_parts(text)?;
    match suffix {
        Some(protocol) if text.starts_with("tcp:") || text.starts_with("udp:") => {
            Err(ForwardParseError::Shape(format!("{text}/{}", protocol.name())))
        }
        Some(protocol) => Ok(PortForward { protocol, ..forward }),
        None => Ok(forward),
    }
}

fn parse_forward_parts(text: &str) -> Result<PortForward, ForwardParseError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (protocol, host_address, ports) = match parts.as_slice() {
        [_, _] => (Protocol::Tcp, Ipv4Addr::LOCALHOST, &parts[..]),
        [first, _, _] => match (protocol(first), first.parse::<Ipv4Addr>()) {
            (Some(protocol), _) => (protocol, Ipv4Addr::LOCALHOST, &parts[1..]),
            (None, Ok(address)) => (Protocol::Tcp, address, &parts[1..]),
            (None, Err(_)) => return Err(ForwardParseError::NeitherProtocolNorAddress(first.to_string())),
        },
        [first, address, _, _] => {
            let protocol =
                protocol(first).ok_or_else(|| ForwardParseError::UnknownProtocol(first.to_string()))?;
            let address = address
                .parse::<Ipv4Addr>()
                .map_err(|_| ForwardParseError::BadHostAddress(address.to_string()))?;
            (protocol, address, &parts[2..])
        }
        _ => return Err(ForwardParseError::Shape(text.to_string())),
    };
    Ok(PortForward {
        protocol,
        host_address,
        host_port: port(ports[0], "host port")?,
        guest_port: port(ports[1], "guest port")?,
    })
}

fn protocol(text: &str) -> Option<Protocol> {
    match text {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

fn port(text: &str, which: &'static str) -> Result<u16, ForwardParseError> {
    if text.is_empty() {
        return Err(ForwardParseError::MissingPort(which));
    }
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ForwardParseError::BadPort { which, text: text.to_string() }),
    }
}

/// A network that the hypervisor or the host cannot provide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// `--net user` asked of Firecracker.
    #[error(
        "--net user is QEMU's user-mode network, which Firecracker lacks; give Firecracker a tap \
         device with --net tap:IFNAME, or use --hypervisor qemu"
    )]
    UserOnFirecracker,
    /// `--net user` asked of the built-in monitor.
    #[error(
        "--net user is QEMU's user-mode network, which the built-in monitor lacks; give it a tap \
         device with --net tap:IFNAME, or use --hypervisor qemu"
    )]
    UserOnBuiltin,
    /// `--forward` without a card.
    #[error("--forward needs a network card on QEMU's user-mode network: add --net user")]
    ForwardWithoutCard,
    /// `--forward` with a tap device, where nothing forwards.
    #[error(
        "--forward works with --net user only; with --net {0}, connect to the guest's own address \
         (set it with --kernel-args=--ip=eth0,ADDRESS,NETMASK, or serve DHCP on the tap device)"
    )]
    ForwardOverTap(String),
    /// One host port forwarded twice.
    #[error("--forward {0}: that host port is forwarded twice; give each host port once")]
    DuplicateForward(String),
    /// A tap device that does not exist.
    #[error(
        "--net tap:{0}: the host has no network interface {0}; create it first, e.g. \
         `ip tuntap add dev {0} mode tap user $USER && ip link set {0} up`"
    )]
    MissingTap(String),
}

/// Checks that `hypervisor` can give the guest `network` with `forwards`.
pub fn check(
    hypervisor: Hypervisor,
    network: &Network,
    forwards: &[PortForward],
) -> Result<(), NetworkError> {
    match (hypervisor, network) {
        (Hypervisor::Firecracker, Network::User) => return Err(NetworkError::UserOnFirecracker),
        (Hypervisor::Builtin, Network::User) => return Err(NetworkError::UserOnBuiltin),
        _ => {}
    }
    if !forwards.is_empty() {
        match network {
            Network::None => return Err(NetworkError::ForwardWithoutCard),
            Network::Tap(_) => return Err(NetworkError::ForwardOverTap(network.name())),
            Network::User => {}
        }
    }
    for (index, forward) in forwards.iter().enumerate() {
        let is_repeated = forwards[..index].iter().any(|earlier| {
            (earlier.protocol, earlier.host_address, earlier.host_port)
                == (forward.protocol, forward.host_address, forward.host_port)
        });
        if is_repeated {
            return Err(NetworkError::DuplicateForward(forward.to_string()));
        }
    }
    Ok(())
}

/// Checks that the tap device `network` names exists on this host.
pub fn check_host(network: &Network) -> Result<(), NetworkError> {
    match network {
        Network::Tap(interface) if !Path::new("/sys/class/net").join(interface).exists() => {
            Err(NetworkError::MissingTap(interface.clone()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(protocol: Protocol, host_address: [u8; 4], host_port: u16, guest_port: u16) -> PortForward {
        PortForward { protocol, host_address: host_address.into(), host_port, guest_port }
    }

    #[test]
    fn networks_are_none_user_or_a_tap_device() {
        assert_eq!(parse_network("none"), Ok(Network::None));
        assert_eq!(parse_network("user"), Ok(Network::User));
        assert_eq!(parse_network("tap:tap0"), Ok(Network::Tap("tap0".into())));
        assert_eq!(parse_network("tap:rosv-tap-12345"), Ok(Network::Tap("rosv-tap-12345".into())));
        assert_eq!(parse_network("bridge"), Err(NetworkParseError::Unknown("bridge".into())));
        assert_eq!(parse_network("tap"), Err(NetworkParseError::Unknown("tap".into())));
        for bad in ["", "a/b", "a:b", "a b", "sixteen-letters!", ".."] {
            assert_eq!(
                parse_network(&format!("tap:{bad}")),
                Err(NetworkParseError::BadInterfaceName(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(Network::Tap("tap0".into()).name(), "tap:tap0");
    }

    #[test]
    fn forwards_default_to_tcp_on_the_host_loopback() {
        assert_eq!(parse_forward("8080:80"), Ok(forward(Protocol::Tcp, [127, 0, 0, 1], 8080, 80)));
        assert_eq!(parse_forward("udp:5353:53"), Ok(forward(Protocol::Udp, [127, 0, 0, 1], 5353, 53)));
        assert_eq!(parse_forward("tcp:1:65535"), Ok(forward(Protocol::Tcp, [127, 0, 0, 1], 1, 65535)));
        assert_eq!(parse_forward("0.0.0.0:8080:80"), Ok(forward(Protocol::Tcp, [0, 0, 0, 0], 8080, 80)));
        assert_eq!(
            parse_forward("udp:192.168.1.2:6000:7000"),
            Ok(forward(Protocol::Udp, [192, 168, 1, 2], 6000, 7000))
        );
    }

    #[test]
    fn forwards_take_dockers_protocol_suffix() {
        assert_eq!(parse_forward("5353:53/udp"), Ok(forward(Protocol::Udp, [127, 0, 0, 1], 5353, 53)));
        assert_eq!(parse_forward("0.0.0.0:80:8080/tcp"), Ok(forward(Protocol::Tcp, [0, 0, 0, 0], 80, 8080)));
        assert_eq!(parse_forward("80:80/sctp"), Err(ForwardParseError::UnknownProtocol("sctp".into())));
        assert_eq!(parse_forward("udp:80:80/tcp"), Err(ForwardParseError::Shape("udp:80:80/tcp".into())));
    }

    #[test]
    fn bad_forwards_say_what_is_wrong_in_one_line() {
        use ForwardParseError::*;
        let cases = [
            ("8080", Shape("8080".into())),
            ("", Shape("".into())),
            ("tcp:1.2.3.4:1:2:3", Shape("tcp:1.2.3.4:1:2:3".into())),
            ("0:80", BadPort { which: "host port", text: "0".into() }),
            ("8080:0", BadPort { which: "guest port", text: "0".into() }),
            ("65536:80", BadPort { which: "host port", text: "65536".into() }),
            ("8080:99999", BadPort { which: "guest port", text: "99999".into() }),
            ("8080:-1", BadPort { which: "guest port", text: "-1".into() }),
            ("http:80", BadPort { which: "host port", text: "http".into() }),
            (":80", MissingPort("host port")),
            ("8080:", MissingPort("guest port")),
            ("tcp::80", MissingPort("host port")),
            ("sctp:8080:80", NeitherProtocolNorAddress("sctp".into())),
            ("localhost:8080:80", NeitherProtocolNorAddress("localhost".into())),
            ("sctp:127.0.0.1:8080:80", UnknownProtocol("sctp".into())),
            ("tcp:localhost:8080:80", BadHostAddress("localhost".into())),
            ("tcp::8080:80", BadHostAddress("".into())),
            ("tcp:::1:8080:80", Shape("tcp:::1:8080:80".into())),
        ];
        for (text, expected) in cases {
            let error = parse_forward(text).expect_err(text);
            assert_eq!(error, expected, "{text}");
            let message = error.to_string();
            assert!(!message.contains('\n') && !message.is_empty(), "{message}");
        }
        assert!(parse_forward("0:80").unwrap_err().to_string().contains("from 1 to 65535"));
        assert!(parse_forward("sctp:1.2.3.4:1:2").unwrap_err().to_string().contains("use tcp or udp"));
    }

    #[test]
    fn forwards_become_qemu_hostfwd_rules() {
        assert_eq!(forward(Protocol::Tcp, [127, 0, 0, 1], 8080, 7000).hostfwd(), "tcp:127.0.0.1:8080-:7000");
        assert_eq!(forward(Protocol::Udp, [0, 0, 0, 0], 53, 5353).hostfwd(), "udp:0.0.0.0:53-:5353");
        assert_eq!(forward(Protocol::Udp, [0, 0, 0, 0], 53, 5353).to_string(), "udp:0.0.0.0:53:5353");
    }

    #[test]
    fn the_mac_address_reads_the_same_in_text_and_bytes() {
        let text: Vec<String> = GUEST_MAC_BYTES.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(text.join(":"), GUEST_MAC);
    }

    #[test]
    fn networks_the_hypervisor_lacks_are_refused() {
        use Hypervisor::{Builtin, Firecracker, Qemu};
        let tap = Network::Tap("tap0".into());
        let web = forward(Protocol::Tcp, [127, 0, 0, 1], 8080, 80);
        assert_eq!(check(Qemu, &Network::User, &[web]), Ok(()));
        assert_eq!(check(Qemu, &tap, &[]), Ok(()));
        assert_eq!(check(Firecracker, &tap, &[]), Ok(()));
        assert_eq!(check(Firecracker, &Network::None, &[]), Ok(()));
        assert_eq!(check(Firecracker, &Network::User, &[]), Err(NetworkError::UserOnFirecracker));
        assert_eq!(check(Builtin, &tap, &[]), Ok(()));
        assert_eq!(check(Builtin, &Network::User, &[web]), Err(NetworkError::UserOnBuiltin));
        assert_eq!(check(Builtin, &tap, &[web]), Err(NetworkError::ForwardOverTap("tap:tap0".into())));
        assert_eq!(check(Qemu, &Network::None, &[web]), Err(NetworkError::ForwardWithoutCard));
        assert_eq!(check(Qemu, &tap, &[web]), Err(NetworkError::ForwardOverTap("tap:tap0".into())));
        let other_guest_port = PortForward { guest_port: 81, ..web };
        assert_eq!(
            check(Qemu, &Network::User, &[web, other_guest_port]),
            Err(NetworkError::DuplicateForward("tcp:127.0.0.1:8080:81".into()))
        );
        let udp = PortForward { protocol: Protocol::Udp, ..web };
        let other_address = PortForward { host_address: Ipv4Addr::UNSPECIFIED, ..web };
        assert_eq!(check(Qemu, &Network::User, &[web, udp, other_address]), Ok(()));
        for error in [
            NetworkError::UserOnFirecracker,
            NetworkError::UserOnBuiltin,
            NetworkError::ForwardWithoutCard,
            NetworkError::ForwardOverTap("tap:tap0".into()),
            NetworkError::MissingTap("tap0".into()),
        ] {
            let message = error.to_string();
            assert!(!message.contains('\n') && message.contains("--"), "{message}");
        }
    }

    #[test]
    fn a_missing_tap_device_is_named() {
        assert_eq!(check_host(&Network::User), Ok(()));
        assert_eq!(check_host(&Network::Tap("lo".into())), Ok(()));
        assert_eq!(
            check_host(&Network::Tap("rosv-absent0".into())),
            Err(NetworkError::MissingTap("rosv-absent0".into()))
        );
    }
}
