//! virtio devices over any transport (virtio 1.2 §3, §4).
//!
//! A [`Transport`] is how the driver reaches a device's registers: its
//! features, status, queues, notifications, interrupt status and
//! configuration. [`mmio`] speaks virtio-mmio versions 1 (legacy) and 2,
//! [`pci_modern`] the capability-based PCI interface and [`pci_legacy`] the
//! I/O-port one; [`pci::open`] picks between the two for a PCI function.
//! Devices ([`block`], [`console`], [`entropy`], [`net`], [`p9`], [`vsock`]) are written once
//! against the trait and start through [`initialize`]. The block and
//! entropy drivers submit requests through a [`Virtqueue`] and wait for
//! them; the network and console drivers, which must never wait, keep
//! their queues' buffers themselves.

pub mod block;
mod buffers;
pub mod console;
pub mod entropy;
pub mod mmio;
pub mod net;
pub mod p9;
pub mod pci;
pub mod pci_legacy;
pub mod pci_modern;
mod queue;
pub mod vsock;

pub use queue::Virtqueue;
use rosv_virtio::spec::{DeviceType, feature, status};
use rosv_virtio::{LayoutKind, QueueLayout};

/// How the driver reaches one device.
pub trait Transport: Send + Sync {
    /// What the device is.
    fn device_type(&self) -> DeviceType;
    /// Whether the device uses the legacy interface (pre-1.0: no
    /// `VERSION_1`, no `FEATURES_OK`, rings in one area with a page-aligned
    /// used ring).
    fn is_legacy(&self) -> bool;
    /// The features the device offers.
    fn device_features(&self) -> u64;
    /// Tells the device the features the driver accepts.
    fn set_driver_features(&self, features: u64);
    /// The device status.
    fn status(&self) -> u8;
    /// Sets the device status (0 resets the device).
    fn set_status(&self, status: u8);
    /// The largest size queue `queue` supports (0: no such queue).
    fn max_queue_size(&self, queue: u16) -> u16;
    /// Whether the queue must have exactly its maximum size (legacy PCI).
    fn is_queue_size_fixed(&self) -> bool;
    /// Gives queue `queue` its rings and enables it.
    fn activate_queue(
        &self,
        queue: u16,
        layout: &QueueLayout,
        addresses: QueueAddresses,
    ) -> Result<(), DeviceError>;
    /// Tells the device that queue `queue` has new buffers.
    fn notify(&self, queue: u16);
    /// Reads and acknowledges the device's interrupt status; true if it
    /// signalled (always true for message-signalled interrupts, which
    /// cannot be shared).
    fn acknowledge_interrupt(&self) -> bool;
    /// Reads the device configuration byte at `offset`.
    fn read_config_u8(&self, offset: usize) -> u8;
    /// Reads the device configuration `u16` at `offset` (a multiple of 2),
    /// in one access as §4.2.2.2 and §4.1.3.1 ask for 16-bit fields.
    fn read_config_u16(&self, offset: usize) -> u16;
    /// Reads the device configuration `u32` at `offset`.
    fn read_config_u32(&self, offset: usize) -> u32;
}

/// Where a queue's parts are, by physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAddresses {
    /// The descriptor table.
    pub descriptor_table: u64,
    /// The available ring.
    pub driver_area: u64,
    /// The used ring.
    pub device_area: u64,
}

impl dyn Transport {
    /// The layout rings must follow on this transport.
    pub fn layout_kind(&self) -> LayoutKind {
        if self.is_legacy() { LayoutKind::Legacy } else { LayoutKind::Modern }
    }

    /// Reads the device configuration `u64` at `offset` (two halves).
    pub fn read_config_u64(&self, offset: usize) -> u64 {
        u64::from(self.read_config_u32(offset)) | u64::from(self.read_config_u32(offset + 4)) << 32
    }
}

/// What went wrong with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The device did not accept the features the driver can use.
    FeaturesRefused,
    /// A modern device does not offer `VERSION_1`.
    NotVersion1,
    /// The device has no usable queue at this index.
    NoQueue(u16),
    /// The device asks for queues larger than the driver supports.
    QueueTooLarge(u16),
    /// The device refused the queue's interrupt vector (MSI-X).
    VectorRefused,
    /// DMA memory ran out.
    OutOfMemory,
    /// The device broke the virtqueue protocol and was abandoned.
    Broken,
    /// The device reported an I/O error.
    IoError,
    /// The device does not support the request.
    Unsupported,
    /// A write to a read-only device.
    ReadOnly,
    /// A request outside the device.
    OutOfRange,
    /// A transfer that is not a whole number of sectors.
    Unaligned,
    /// Every transmit buffer is in flight: retry once the device has sent
    /// some.
    QueueFull,
    /// A frame that is empty or longer than the MTU allows.
    InvalidFrameLength,
    /// The host closed the console port, or the device never added it.
    PortClosed,
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::FeaturesRefused => formatter.write_str("the device refused the negotiated features"),
            DeviceError::NotVersion1 => formatter.write_str("the device does not offer VIRTIO_F_VERSION_1"),
            DeviceError::NoQueue(queue) => write!(formatter, "the device has no queue {queue}"),
            DeviceError::QueueTooLarge(size) => {
                write!(formatter, "the device wants a queue of {size} entries")
            }
            DeviceError::VectorRefused => formatter.write_str("the device refused its MSI-X vector"),
            DeviceError::OutOfMemory => formatter.write_str("out of DMA memory"),
            DeviceError::Broken => formatter.write_str("the device broke the virtqueue protocol"),
            DeviceError::IoError => formatter.write_str("the device reported an I/O error"),
            DeviceError::Unsupported => formatter.write_str("the device does not support the request"),
            DeviceError::ReadOnly => formatter.write_str("the device is read-only"),
            DeviceError::OutOfRange => formatter.write_str("the request lies outside the device"),
            DeviceError::Unaligned => formatter.write_str("the transfer is not a whole number of sectors"),
            DeviceError::QueueFull => {
                formatter.write_str("every transmit buffer is in flight: retry once the device has sent some")
            }
            DeviceError::InvalidFrameLength => {
                formatter.write_str("the frame is empty or longer than the MTU allows")
            }
            DeviceError::PortClosed => formatter.write_str("the host closed the console port"),
        }
    }
}

impl core::error::Error for DeviceError {}

/// Features every driver accepts when offered.
const COMMON_FEATURES: u64 =
    feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX | feature::ACCESS_PLATFORM;

/// Resets the device and negotiates features (§3.1.1): the driver accepts
/// `wanted` and the common features the device offers. Returns the
/// negotiated set; queues are set up next, then [`finish_initialization`].
pub fn initialize(transport: &dyn Transport, wanted: u64) -> Result<u64, DeviceError> {
    transport.set_status(0);
    for _ in 0..1000 {
        if transport.status() == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    transport.set_status(status::ACKNOWLEDGE);
    transport.set_status(status::ACKNOWLEDGE | status::DRIVER);
    let offered = transport.device_features();
    let mut accepted = offered & (wanted | COMMON_FEATURES);
    if transport.is_legacy() {
        // Legacy interfaces carry only 32 feature bits.
        accepted &= 0xffff_ffff;
    } else if offered & feature::VERSION_1 == 0 {
        fail(transport);
        return Err(DeviceError::NotVersion1);
    }
    transport.set_driver_features(accepted);
    if !transport.is_legacy() {
        transport.set_status(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        if transport.status() & status::FEATURES_OK == 0 {
            fail(transport);
            return Err(DeviceError::FeaturesRefused);
        }
    }
    Ok(accepted)
}

/// Tells the device the driver is ready (`DRIVER_OK`).
pub fn finish_initialization(transport: &dyn Transport) {
    let features_ok = if transport.is_legacy() { 0 } else { status::FEATURES_OK };
    transport.set_status(status::ACKNOWLEDGE | status::DRIVER | features_ok | status::DRIVER_OK);
}

/// Marks the device failed.
pub fn fail(transport: &dyn Transport) {
    transport.set_status(transport.status() | status::FAILED);
}
