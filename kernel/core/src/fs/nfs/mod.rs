//! The NFS client's protocol layers: XDR ([`xdr`]) and ONC RPC over TCP
//! ([`rpc`]), which the MOUNT and NFSv3 calls are built on.

pub mod rpc;
pub mod xdr;
