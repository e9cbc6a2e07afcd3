//! The NFSv3 client: a mounted export as a VFS filesystem.
//!
//! The layers, bottom up: XDR ([`xdr`]), ONC RPC messages and record
//! marking ([`rpc`]), the RPC client that multiplexes calls from many
//! threads on one TCP connection ([`client`]), the NFSv3, MOUNT and
//! portmap messages ([`protocol`]), and the filesystem: [`NfsFileSystem`]
//! and its nodes (`node`), which cache attributes and names and move file
//! data with several calls in flight. [`mount`] asks portmap for the
//! ports (unless `port=`/`mountport=` give them), the MOUNT server for
//! the export's root handle, and the NFS server for its transfer sizes.

pub mod client;
mod node;
pub mod options;
pub mod protocol;
pub mod rpc;
pub mod xdr;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::AtomicU64;

use self::client::{Client, Connection, Connector};
use self::node::NfsNode;
pub use self::options::{OptionError, Options, Source};
use self::protocol::{Attributes, FileHandle, procedure};
use crate::errno::Errno;
use crate::machine::Machine;
use crate::net::Network;
use crate::net::kernel_stream::KernelStream;
use crate::vfs::{Caller, FileSystem, FsError, Node, Statistics};

/// `NFS_SUPER_MAGIC`, what `statfs` reports as the type.
const NFS_MAGIC: u64 = 0x6969;
/// Room for a reply's RPC and NFS headers beyond its data.
const HEADER_BYTES: usize = 4096;
/// The connection's buffer each way.
const CONNECTION_BUFFER_BYTES: usize = 512 * 1024;
/// How long the calls that set a mount up may take.
const SETUP_TIMEOUT_NS: u64 = 15_000_000_000;
/// How long the unmount waits for the MOUNT server's goodbye.
const UNMOUNT_TIMEOUT_NS: u64 = 2_000_000_000;
/// The name the client gives in its credentials.
const MACHINE_NAME: &str = "rosv";

/// Why an export could not be mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsMountError {
    /// The source or the options are wrong.
    Options(OptionError),
    /// The machine has no network card to reach a server with.
    NoNetwork,
    /// Portmap did not give the port of a program.
    NoPort(&'static str, FsError),
    /// The MOUNT server refused the export.
    Refused(FsError),
    /// The NFS server did not answer as it should.
    Server(FsError),
}

impl fmt::Display for NfsMountError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NfsMountError::Options(error) => write!(formatter, "{error}"),
            NfsMountError::NoNetwork => {
                write!(formatter, "no network card: run the machine with a network (e.g. --net user)")
            }
            NfsMountError::NoPort(program, error) => write!(
                formatter,
                "portmap gave no port for {program} ({error}); is the server running, or give port= and mountport="
            ),
            NfsMountError::Refused(error) => write!(formatter, "the server refused the export: {error}"),
            NfsMountError::Server(error) => write!(formatter, "the NFS server failed: {error}"),
        }
    }
}

/// Connects to one TCP port of the server through the kernel's stack.
struct TcpConnector {
    network: Arc<Network>,
    address: SocketAddr,
}

impl Connector for TcpConnector {
    fn connect(&self, machine: &'static dyn Machine, deadline_ns: u64) -> Result<Arc<dyn Connection>, Errno> {
        let stream = KernelStream::connect(
            &self.network,
            machine,
            self.address,
            CONNECTION_BUFFER_BYTES,
            deadline_ns,
        )?;
        Ok(Arc::new(stream))
    }
}

/// What every node of a mount shares.
pub(crate) struct Shared {
    client: Client,
    options: Options,
    /// The largest `READ` and `WRITE`, as negotiated.
    read_bytes: usize,
    write_bytes: usize,
    /// The live nodes by handle, each with its serial number.
    nodes: spin::Mutex<BTreeMap<FileHandle, (u64, Weak<NfsNode>)>>,
    next_serial: AtomicU64,
    /// For `UMNT`.
    network: Arc<Network>,
    mount_address: SocketAddr,
    export: String,
}

/// A mounted export.
pub struct NfsFileSystem {
    shared: Arc<Shared>,
    root: Arc<NfsNode>,
}

impl fmt::Debug for NfsFileSystem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("NfsFileSystem").field("export", &self.shared.export).finish()
    }
}

/// A client for one short exchange (portmap, MOUNT).
fn setup_client(
    network: &Arc<Network>,
    machine: &'static dyn Machine,
    address: SocketAddr,
    timeout_ns: u64,
) -> Client {
    let connector = TcpConnector { network: network.clone(), address };
    Client::new(machine, Box::new(connector), Some(timeout_ns), 64 * 1024, MACHINE_NAME)
}

/// The TCP port portmap gives for `program` version `version`.
fn port_of(
    network: &Arc<Network>,
    caller: &Caller<'_>,
    machine: &'static dyn Machine,
    address: Ipv4Addr,
    program: u32,
    version: u32,
) -> Result<u16, FsError> {
    let portmap = setup_client(
        network,
        machine,
        SocketAddr::new(IpAddr::V4(address), protocol::PORTMAP_PORT),
        SETUP_TIMEOUT_NS,
    );
    let reply = portmap.call(caller, protocol::PORTMAP_GETPORT, |arguments| {
        arguments.u32(program).u32(version).u32(protocol::PROTOCOL_TCP).u32(0);
    })?;
    let port = protocol::results(&reply)?.u32().map_err(protocol::malformed)?;
    u16::try_from(port).ok().filter(|port| *port != 0).ok_or(FsError::Errno(Errno::ECONNREFUSED))
}

/// Mounts `source` (`ADDRESS:/export`) with `options` (`nfs(5)`'s
/// syntax) over `network`, as `caller` (the kernel at boot).
pub fn mount(
    network: &Arc<Network>,
    machine: &'static dyn Machine,
    caller: &Caller<'_>,
    source: &str,
    options: &str,
) -> Result<Arc<NfsFileSystem>, NfsMountError> {
    let source = Source::parse(source).map_err(NfsMountError::Options)?;
    let options = Options::parse(options).map_err(NfsMountError::Options)?;
    if !network.has_card() && !source.address.is_loopback() {
        return Err(NfsMountError::NoNetwork);
    }
    let port = |program, version, name| {
        port_of(network, caller, machine, source.address, program, version)
            .map_err(|error| NfsMountError::NoPort(name, error))
    };
    let mount_port = match options.mount_port {
        Some(port) => port,
        None => port(protocol::MOUNT_PROGRAM, 3, "MOUNT v3")?,
    };
    let nfs_port = match options.port {
        Some(port) => port,
        None => port(protocol::NFS_PROGRAM, 3, "NFS v3")?,
    };
    let mount_address = SocketAddr::new(IpAddr::V4(source.address), mount_port);
    let root_handle = {
        let mounter = setup_client(network, machine, mount_address, SETUP_TIMEOUT_NS);
        let reply = mounter
            .call(caller, protocol::mount_procedure(protocol::mount::MNT), |arguments| {
                arguments.string(&source.export);
            })
            .map_err(NfsMountError::Refused)?;
        let mut results = protocol::results(&reply).map_err(NfsMountError::Refused)?;
        protocol::status(&mut results).map_err(NfsMountError::Refused)?;
        FileHandle::decode(&mut results)
            .map_err(|error| NfsMountError::Refused(protocol::malformed(error)))?
    };
    let largest = options.read_bytes.max(options.write_bytes) as usize;
    let connector = TcpConnector {
        network: network.clone(),
        address: SocketAddr::new(IpAddr::V4(source.address), nfs_port),
    };
    let client =
        Client::new(machine, Box::new(connector), options.timeout_ns, largest + HEADER_BYTES, MACHINE_NAME);
    // FSINFO: the server's transfer limits.
    let reply = client
        .call(caller, protocol::nfs(procedure::FSINFO), |arguments| root_handle.encode(arguments))
        .map_err(NfsMountError::Server)?;
    let (read_max, write_max) = {
        let mut results = protocol::results(&reply).map_err(NfsMountError::Server)?;
        protocol::status(&mut results).map_err(NfsMountError::Server)?;
        let decode = |results: &mut xdr::Decoder<'_>| -> Result<(u32, u32), xdr::XdrError> {
            Attributes::decode_optional(results)?;
            let read_max = results.u32()?;
            let _read_preferred = results.u32()?;
            let _read_multiple = results.u32()?;
            let write_max = results.u32()?;
            Ok((read_max, write_max))
        };
        decode(&mut results).map_err(|error| NfsMountError::Server(protocol::malformed(error)))?
    };
    let read_bytes = options.read_bytes.min(read_max.max(4096)) as usize;
    let write_bytes = options.write_bytes.min(write_max.max(4096)) as usize;
    let shared = Arc::new(Shared {
        client,
        options,
        read_bytes,
        write_bytes,
        nodes: spin::Mutex::new(BTreeMap::new()),
        next_serial: AtomicU64::new(0),
        network: network.clone(),
        mount_address,
        export: source.export.clone(),
    });
    let attributes = node::get_attributes(&shared, caller, &root_handle).map_err(NfsMountError::Server)?;
    let root = NfsNode::get(&shared, root_handle, attributes, None);
    log::info!("nfs: mounted {}:{} (rsize {read_bytes}, wsize {write_bytes})", source.address, source.export);
    Ok(Arc::new(NfsFileSystem { shared, root }))
}

impl FileSystem for NfsFileSystem {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "nfs"
    }

    fn is_storage_backed(&self) -> bool {
        true
    }

    fn is_read_only(&self) -> bool {
        self.shared.options.is_read_only
    }

    fn statistics(&self) -> Statistics {
        let machine = self.shared.client.machine();
        let caller = Caller::kernel(machine);
        let block_size = self.shared.write_bytes as u64;
        let mut statistics =
            Statistics { magic: NFS_MAGIC, block_size_bytes: block_size, ..Default::default() };
        match node::file_system_statistics(&self.shared, &caller, self.root.handle()) {
            Ok((total_bytes, available_bytes, total_files, free_files)) => {
                statistics.blocks = total_bytes / block_size;
                statistics.free_blocks = available_bytes / block_size;
                statistics.files = total_files;
                statistics.free_files = free_files;
            }
            Err(error) => log::warn!("nfs: FSSTAT failed: {error}"),
        }
        statistics
    }

    fn sync(&self) -> Result<(), FsError> {
        let caller = Caller::kernel(self.shared.client.machine());
        let nodes: alloc::vec::Vec<Arc<NfsNode>> =
            self.shared.nodes.lock().values().filter_map(|(_, node)| node.upgrade()).collect();
        let mut result = Ok(());
        for node in nodes {
            if let Err(error) = node.commit(&caller) {
                result = Err(error);
            }
        }
        result
    }

    fn unmount(&self, _now_ns: u64) -> Result<(), FsError> {
        let result = self.sync();
        let caller = Caller::kernel(self.shared.client.machine());
        self.shared.client.close();
        let mounter = setup_client(
            &self.shared.network,
            self.shared.client.machine(),
            self.shared.mount_address,
            UNMOUNT_TIMEOUT_NS,
        );
        if let Err(error) =
            mounter.call(&caller, protocol::mount_procedure(protocol::mount::UMNT), |arguments| {
                arguments.string(&self.shared.export);
            })
        {
            log::warn!("nfs: UMNT {} failed: {error}", self.shared.export);
        }
        result
    }
}

#[cfg(test)]
mod tests;
