//! The options of an NFS mount (`nfs(5)`'s names) and its source,
//! `HOST:/export`.

use alloc::string::String;
use core::fmt;
use core::net::Ipv4Addr;

/// The largest `rsize`/`wsize` (1 MiB, as Linux's `NFS_MAX_FILE_IO_SIZE`).
pub const TRANSFER_BYTES_MAX: u32 = 1 << 20;
/// The smallest (one page).
const TRANSFER_BYTES_MIN: u32 = 4096;

/// Why a mount's source or options were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// The source is not `ADDRESS:/export` with an IPv4 address.
    BadSource(String),
    /// An option rosv does not know.
    Unknown(String),
    /// An option's value is out of range or not a number.
    BadValue(String),
    /// An NFS version or transport other than v3 over TCP.
    Unsupported(String),
}

impl fmt::Display for OptionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::BadSource(source) => write!(
                formatter,
                "{source}: expected ADDRESS:/export with an IPv4 address, e.g. 10.0.2.2:/srv/nfs"
            ),
            OptionError::Unknown(option) => write!(formatter, "unknown NFS option {option}"),
            OptionError::BadValue(option) => write!(formatter, "NFS option {option}: bad value"),
            OptionError::Unsupported(option) => {
                write!(formatter, "NFS option {option}: only NFS version 3 over TCP is supported")
            }
        }
    }
}

/// Where the export is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The server.
    pub address: Ipv4Addr,
    /// The exported path.
    pub export: String,
}

impl Source {
    /// Parses `ADDRESS:/export`.
    pub fn parse(text: &str) -> Result<Source, OptionError> {
        let bad = || OptionError::BadSource(String::from(text));
        let (host, export) = text.split_once(':').ok_or_else(bad)?;
        let address = host.parse().map_err(|_| bad())?;
        if !export.starts_with('/') {
            return Err(bad());
        }
        Ok(Source { address, export: String::from(export) })
    }
}

/// How long attributes stay cached, as a minimum and a maximum: the time
/// grows from one to the other while the file does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTimes {
    /// The first timeout.
    pub minimum_ns: u64,
    /// The longest.
    pub maximum_ns: u64,
}

/// An NFS mount's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The NFS server's port (`port=`); `None`: ask portmap.
    pub port: Option<u16>,
    /// The MOUNT server's port (`mountport=`); `None`: ask portmap.
    pub mount_port: Option<u16>,
    /// How long a call may go unanswered before it fails with `EIO`
    /// (`timeo` × (`retrans` + 1)); `None` for a `hard` mount.
    pub timeout_ns: Option<u64>,
    /// The largest `READ` asked for (`rsize`).
    pub read_bytes: u32,
    /// The largest `WRITE` sent (`wsize`).
    pub write_bytes: u32,
    /// Attribute cache times of regular files (`acregmin`, `acregmax`).
    pub regular_cache: CacheTimes,
    /// Of directories (`acdirmin`, `acdirmax`).
    pub directory_cache: CacheTimes,
    /// `ro`.
    pub is_read_only: bool,
}

impl Default for Options {
    /// Linux's defaults: a soft mount's 60 s `timeo` and 2 `retrans`.
    fn default() -> Self {
        const SECOND_NS: u64 = 1_000_000_000;
        Options {
            port: None,
            mount_port: None,
            timeout_ns: Some(180 * SECOND_NS),
            read_bytes: TRANSFER_BYTES_MAX,
            write_bytes: TRANSFER_BYTES_MAX,
            regular_cache: CacheTimes { minimum_ns: 3 * SECOND_NS, maximum_ns: 60 * SECOND_NS },
            directory_cache: CacheTimes { minimum_ns: 30 * SECOND_NS, maximum_ns: 60 * SECOND_NS },
            is_read_only: false,
        }
    }
}

fn number(option: &str, value: Option<&str>) -> Result<u64, OptionError> {
    value.and_then(|value| value.parse().ok()).ok_or_else(|| OptionError::BadValue(String::from(option)))
}

fn port(option: &str, value: Option<&str>) -> Result<u16, OptionError> {
    let port = number(option, value)?;
    u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| OptionError::BadValue(String::from(option)))
}

fn transfer_size(option: &str, value: Option<&str>) -> Result<u32, OptionError> {
    let size = number(option, value)?;
    // Linux rounds down to a power of two within its bounds.
    let size = u32::try_from(size.clamp(u64::from(TRANSFER_BYTES_MIN), u64::from(TRANSFER_BYTES_MAX)))
        .unwrap_or(TRANSFER_BYTES_MAX);
    Ok(1 << (31 - size.leading_zeros()))
}

impl Options {
    /// Parses comma-separated options (`port=2049,timeo=50,ro`).
    pub fn parse(text: &str) -> Result<Options, OptionError> {
        const SECOND_NS: u64 = 1_000_000_000;
        let mut options = Options::default();
        let mut timeo_ds = 600;
        let mut retrans = 2;
        let mut is_hard = false;
        for option in text.split(',').filter(|option| !option.is_empty()) {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (option, None),
            };
            let seconds = |value| number(option, value).map(|seconds| seconds.saturating_mul(SECOND_NS));
            match name {
                "port" => options.port = Some(port(option, value)?),
                "mountport" => options.mount_port = Some(port(option, value)?),
                "timeo" => timeo_ds = number(option, value)?.max(1),
                "retrans" => retrans = number(option, value)?,
                "soft" => is_hard = false,
                "hard" => is_hard = true,
                "rsize" => options.read_bytes = transfer_size(option, value)?,
                "wsize" => options.write_bytes = transfer_size(option, value)?,
                "acregmin" => options.regular_cache.minimum_ns = seconds(value)?,
                "acregmax" => options.regular_cache.maximum_ns = seconds(value)?,
                "acdirmin" => options.directory_cache.minimum_ns = seconds(value)?,
                "acdirmax" => options.directory_cache.maximum_ns = seconds(value)?,
                "actimeo" => {
                    let time = seconds(value)?;
                    options.regular_cache = CacheTimes { minimum_ns: time, maximum_ns: time };
                    options.directory_cache = options.regular_cache;
                }
                "noac" => {
                    options.regular_cache = CacheTimes { minimum_ns: 0, maximum_ns: 0 };
                    options.directory_cache = options.regular_cache;
                }
                "ro" => options.is_read_only = true,
                "rw" => options.is_read_only = false,
                "vers" | "nfsvers" | "mountvers" if value == Some("3") => {}
                "proto" | "mountproto" if value == Some("tcp") => {}
                "vers" | "nfsvers" | "mountvers" | "proto" | "mountproto" | "udp" => {
                    return Err(OptionError::Unsupported(String::from(option)));
                }
                "tcp" | "nolock" | "lock" | "intr" | "nointr" | "sync" | "async" | "noatime" | "relatime"
                | "nocto" | "cto" | "sec" => {}
                _ => return Err(OptionError::Unknown(String::from(option))),
            }
        }
        for times in [&mut options.regular_cache, &mut options.directory_cache] {
            times.maximum_ns = times.maximum_ns.max(times.minimum_ns);
        }
        options.timeout_ns = if is_hard {
            None
        } else {
            Some(timeo_ds.saturating_mul(100_000_000).saturating_mul(retrans.saturating_add(1)))
        };
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_need_an_address_and_an_absolute_export() {
        assert_eq!(
            Source::parse("10.0.2.2:/srv/nfs"),
            Ok(Source { address: Ipv4Addr::new(10, 0, 2, 2), export: String::from("/srv/nfs") })
        );
        for bad in ["10.0.2.2", "10.0.2.2:srv", "server:/srv", ":/srv"] {
            assert!(matches!(Source::parse(bad), Err(OptionError::BadSource(_))), "{bad}");
        }
    }

    #[test]
    fn options_set_ports_timeouts_sizes_and_caching() {
        let options =
            Options::parse("port=2049,mountport=20048,timeo=20,retrans=1,rsize=70000,wsize=8192").unwrap();
        assert_eq!((options.port, options.mount_port), (Some(2049), Some(20048)));
        assert_eq!(options.timeout_ns, Some(4_000_000_000));
        assert_eq!((options.read_bytes, options.write_bytes), (65536, 8192), "rounded down to powers of two");
        assert_eq!(Options::parse("rsize=99999999").unwrap().read_bytes, TRANSFER_BYTES_MAX);
        assert_eq!(Options::parse("hard").unwrap().timeout_ns, None);
        let defaults = Options::parse("").unwrap();
        assert_eq!(defaults, Options::default());
        let noac = Options::parse("noac,ro,vers=3,proto=tcp,nolock").unwrap();
        assert_eq!(noac.regular_cache.maximum_ns, 0);
        assert!(noac.is_read_only);
        let fixed = Options::parse("acregmin=10,acregmax=5").unwrap();
        assert_eq!(fixed.regular_cache.maximum_ns, 10_000_000_000, "never below the minimum");
    }

    #[test]
    fn bad_options_are_refused_with_their_name() {
        assert_eq!(Options::parse("port=0"), Err(OptionError::BadValue(String::from("port=0"))));
        assert_eq!(Options::parse("timeo=x"), Err(OptionError::BadValue(String::from("timeo=x"))));
        assert_eq!(Options::parse("colour=red"), Err(OptionError::Unknown(String::from("colour=red"))));
        assert_eq!(Options::parse("vers=4"), Err(OptionError::Unsupported(String::from("vers=4"))));
        assert_eq!(Options::parse("proto=udp"), Err(OptionError::Unsupported(String::from("proto=udp"))));
    }
}
