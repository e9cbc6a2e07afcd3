//! `rosv run --nfs HOST:/export:/target[:options]`: an NFS export mounted
//! in the guest.
//!
//! The kernel's NFS client takes an IPv4 address, so a host name is
//! resolved here, and the host itself (a loopback address or
//! `localhost`) becomes 10.0.2.2, where QEMU's user network reaches the
//! host's loopback. [`attach`] turns each mount into the kernel's
//! `--mount-fs=nfs,ADDRESS:/export,/target[,options]` and gives the guest
//! a network card when it has none.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use anyhow::{Result, bail};

use crate::network::Network;

/// Where the guest reaches the host's loopback on QEMU's user network.
const HOST_FROM_GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// One `--nfs` mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsMount {
    /// The server, as given.
    pub host: String,
    /// The exported path.
    pub export: String,
    /// Where it appears in the guest.
    pub target: String,
    /// `nfs(5)` options, comma-separated (may be empty).
    pub options: String,
}

/// Parses `HOST:/export:/target[:options]`.
pub fn parse_nfs(text: &str) -> Result<NfsMount, String> {
    let usage = || format!("{text}: expected HOST:/export:/target[:options], e.g. localhost:/srv/nfs:/data");
    let (host, rest) = text.split_once(':').ok_or_else(usage)?;
    let mut parts = rest.splitn(3, ':');
    let (export, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let options = parts.next().unwrap_or_default();
    if host.is_empty() || !export.starts_with('/') || !target.starts_with('/') || options.contains(' ') {
        return Err(usage());
    }
    Ok(NfsMount {
        host: host.to_string(),
        export: export.to_string(),
        target: target.to_string(),
        options: options.to_string(),
    })
}

/// The IPv4 address the guest reaches `host` at, on `network`.
fn guest_address(host: &str, network: &Network) -> Result<Ipv4Addr> {
    let resolved: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => (host, 0).to_socket_addrs().map(|found| found.map(|address| address.ip()).collect())?,
    };
    let is_host = resolved.iter().any(IpAddr::is_loopback);
    if is_host {
        if *network != Network::User {
            bail!(
                "--nfs {host}: the host's own server is reached through the user network only (--net user)"
            );
        }
        return Ok(HOST_FROM_GUEST);
    }
    match resolved.iter().find_map(|address| match address {
        IpAddr::V4(address) => Some(*address),
        IpAddr::V6(_) => None,
    }) {
        Some(address) => Ok(address),
        None => bail!("--nfs {host}: no IPv4 address (the guest's NFS client speaks IPv4)"),
    }
}

/// The kernel options that mount `mounts`, and the network the guest
/// needs for them: the user network when `network` is none.
pub fn kernel_options(mounts: &[NfsMount], network: &Network) -> Result<(Vec<String>, Network)> {
    let network = match network {
        Network::None if !mounts.is_empty() => Network::User,
        other => other.clone(),
    };
    let mut options = Vec::new();
    for mount in mounts {
        let address = guest_address(&mount.host, &network)?;
        let mut option = format!("--mount-fs=nfs,{address}:{},{}", mount.export, mount.target);
        if !mount.options.is_empty() {
            option.push(',');
            option.push_str(&mount.options);
        }
        options.push(option);
    }
    Ok((options, network))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_with_and_without_options() {
        assert_eq!(
            parse_nfs("localhost:/srv/nfs:/data"),
            Ok(NfsMount {
                host: "localhost".into(),
                export: "/srv/nfs".into(),
                target: "/data".into(),
                options: String::new()
            })
        );
        assert_eq!(
            parse_nfs("10.1.2.3:/e:/m:port=2049,timeo=20").map(|mount| mount.options),
            Ok("port=2049,timeo=20".into())
        );
        for bad in ["localhost", "localhost:/srv", "localhost:srv:/data", ":/srv:/data", "h:/srv:data"] {
            assert!(parse_nfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_host_becomes_the_user_network_gateway() {
        let mounts =
            [parse_nfs("127.0.0.1:/srv:/data:timeo=10").unwrap(), parse_nfs("10.1.2.3:/e:/m").unwrap()];
        let (options, network) = kernel_options(&mounts, &Network::None).unwrap();
        assert_eq!(network, Network::User);
        assert_eq!(options, ["--mount-fs=nfs,10.0.2.2:/srv,/data,timeo=10", "--mount-fs=nfs,10.1.2.3:/e,/m"]);
        assert!(kernel_options(&mounts[..1], &Network::Tap("tap0".into())).is_err());
        assert_eq!(kernel_options(&[], &Network::None).unwrap().1, Network::None);
    }
}
