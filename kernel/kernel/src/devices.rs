//! Finding and starting devices: virtio-mmio devices from the command line
//! and the ACPI DSDT, virtio PCI functions unless `--nopci`.
//!
//! Each device gets an interrupt vector before its driver starts (MSI-X
//! needs the message first); the vector's handler reaches the driver once
//! it exists. virtio-mmio lines and PCI INTx pins are routed through the
//! I/O APIC to the boot processor; MSI-X messages go there directly.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_core::device::{BlockDevice, MessageChannel};
use rosv_drivers::Hardware;
use rosv_drivers::pci::{Function, ResourceWindows};
use rosv_drivers::virtio::block::VirtioBlock;
use rosv_drivers::virtio::console::VirtioConsole;
use rosv_drivers::virtio::entropy::VirtioEntropy;
use rosv_drivers::virtio::mmio::MmioTransport;
use rosv_drivers::virtio::net::VirtioNet;
use rosv_drivers::virtio::p9::Virtio9p;
use rosv_drivers::virtio::pci::{self as virtio_pci, InterruptRoute};
use rosv_drivers::virtio::vsock::VirtioVsock;
use rosv_drivers::virtio::{DeviceError, Transport};
use rosv_platform::ioapic::Trigger;
use rosv_platform::{acpi, apic, interrupts, ioapic};
use rosv_virtio::spec::DeviceType;

use crate::bootchart::Bootchart;
use crate::hardware::HARDWARE;
use crate::streams::ConsoleDevice;

/// The devices the kernel started.
#[derive(Debug, Default)]
pub struct Devices {
    /// Block devices, in discovery order (`/dev/vda`, `/dev/vdb`, ...).
    pub disks: Vec<Arc<VirtioBlock>>,
    /// The first entropy source.
    pub entropy: Option<Arc<VirtioEntropy>>,
    /// Network cards, in discovery order (`eth0`, ...).
    pub network_cards: Vec<Arc<VirtioNet>>,
    /// Consoles, whose ports may carry the standard streams.
    pub consoles: Vec<Arc<ConsoleDevice>>,
    /// 9P transports (shared host directories), named by their mount tags.
    pub shares: Vec<Arc<Virtio9p>>,
    /// The first socket device (vsock).
    pub vsock: Option<Arc<VirtioVsock>>,
}

impl Devices {
    /// The disks, as the VFS takes them.
    pub fn block_devices(&self) -> Vec<Arc<dyn BlockDevice>> {
        self.disks.iter().map(|disk| Arc::new(VirtioDisk(disk.clone())) as Arc<dyn BlockDevice>).collect()
    }

    /// The 9P transports, as the VFS's message channels.
    pub fn message_channels(&self) -> Vec<Arc<dyn MessageChannel>> {
        self.shares
            .iter()
            .map(|share| Arc::new(VirtioShare(share.clone())) as Arc<dyn MessageChannel>)
            .collect()
    }
}

/// A virtio 9P transport as the VFS's message channel.
struct VirtioShare(Arc<Virtio9p>);

impl MessageChannel for VirtioShare {
    fn tag(&self) -> &str {
        self.0.tag()
    }

    fn exchange(
        &self,
        request: &[&[u8]],
        reply: &mut [&mut [u8]],
    ) -> Result<usize, rosv_core::device::DeviceError> {
        self.0.exchange(request, reply).map_err(|error| {
            log::warn!("9p {}: {error}", self.0.tag());
            rosv_core::device::DeviceError::Io
        })
    }
}

/// The network the cards' interrupts wake, once it exists.
pub static NETWORK: spin::Once<Arc<rosv_core::net::Network>> = spin::Once::new();

/// A virtio network card as the stack's device.
pub struct VirtioCard(pub Arc<VirtioNet>);

/// A virtio socket device as the vsock transport's packet device.
pub struct VirtioSocketDevice(pub Arc<VirtioVsock>);

impl rosv_core::net::vsock::VsockDevice for VirtioSocketDevice {
    fn guest_cid(&self) -> u32 {
        self.0.guest_cid() as u32
    }

    fn payload_max(&self) -> usize {
        rosv_drivers::virtio::vsock::PAYLOAD_BYTES_MAX
    }

    fn send(&self, header: &[u8; rosv_virtio::vsock::HEADER_SIZE], payload: &[u8]) -> bool {
        self.0.transmit(header, payload).is_ok()
    }

    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool {
        self.0.receive(|packet| consume(packet))
    }

    fn take_reset(&self) -> bool {
        self.0.take_reset()
    }
}

impl rosv_core::net::NetworkDevice for VirtioCard {
    fn mac_address(&self) -> [u8; 6] {
        self.0.mac_address()
    }

    fn mtu(&self) -> usize {
        self.0.mtu()
    }

    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool {
        self.0.receive(|frame| consume(frame))
    }

    fn transmit(&self, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        self.0.transmit(length, |buffer| fill(buffer)).is_ok()
    }

    fn can_transmit(&self) -> bool {
        self.0.can_transmit()
    }

    fn flush(&self) {
        self.0.flush();
    }

    fn describe_activity(&self) -> alloc::string::String {
        let activity = self.0.activity();
        format!(
            "card interrupts {}, frames in {} out {}, notifications receive {} transmit {}",
            activity.interrupts,
            activity.received_frames,
            activity.sent_frames,
            activity.receive_notifications,
            activity.transmit_notifications
        )
    }
}

/// A virtio disk as the VFS's block device.
struct VirtioDisk(Arc<VirtioBlock>);

fn device_error(error: DeviceError) -> rosv_core::device::DeviceError {
    match error {
        DeviceError::OutOfRange | DeviceError::Unaligned => rosv_core::device::DeviceError::OutOfRange,
        DeviceError::ReadOnly => rosv_core::device::DeviceError::ReadOnly,
        other => {
            log::warn!("disk: {other}");
            rosv_core::device::DeviceError::Io
        }
    }
}

impl BlockDevice for VirtioDisk {
    fn sector_count(&self) -> u64 {
        self.0.sector_count()
    }

    fn is_read_only(&self) -> bool {
        self.0.is_read_only()
    }

    fn read_sectors(&self, sector: u64, buffer: &mut [u8]) -> Result<(), rosv_core::device::DeviceError> {
        self.0.read_sectors(sector, buffer).map_err(device_error)
    }

    fn write_sectors(&self, sector: u64, buffer: &[u8]) -> Result<(), rosv_core::device::DeviceError> {
        self.0.write_sectors(sector, buffer).map_err(device_error)
    }

    fn flush(&self) -> Result<(), rosv_core::device::DeviceError> {
        self.0.flush().map_err(device_error)
    }
}

/// Where to look for devices.
#[derive(Debug)]
pub struct Discovery<'a> {
    /// `virtio_mmio.device=` tokens of the command line.
    pub command_line_mmio: &'a [rosv_cmdline::MmioDevice],
    /// The DSDT, when the machine has ACPI.
    pub dsdt: Option<&'static [u8]>,
    /// Whether to enumerate PCI (not with `--nopci`).
    pub scans_pci: bool,
    /// One past the highest RAM address below 4 GiB: BARs the firmware left
    /// unassigned go above it.
    pub low_ram_end: u64,
}

/// The lowest address the kernel gives unassigned memory BARs: the start
/// of the PCI hole on QEMU's pc and q35 machines.
const PCI_MEMORY_START: u64 = 0xe000_0000;
/// Where the I/O APIC and local APIC area begins.
const PCI_MEMORY_END: u64 = 0xfec0_0000;
/// I/O ports for unassigned I/O BARs.
const PCI_IO_PORTS: core::ops::Range<u32> = 0xc000..0x1_0000;

/// How often a console without a usable interrupt is looked at.
const CONSOLE_POLL_NS: u64 = 10_000_000;

/// A vector whose handler is filled in once the driver exists.
struct InterruptSlot {
    vector: u8,
    handler: Arc<spin::Once<Box<dyn Fn() + Send + Sync>>>,
}

fn allocate_slot() -> Option<InterruptSlot> {
    let handler: Arc<spin::Once<Box<dyn Fn() + Send + Sync>>> = Arc::new(spin::Once::new());
    let target = handler.clone();
    let vector = interrupts::allocate_vector(Box::new(move || {
        if let Some(handler) = target.get() {
            handler();
        }
    }))?;
    Some(InterruptSlot { vector, handler })
}

/// Finds and starts every device; marks `pci enumerated` when PCI was
/// scanned.
pub fn start(discovery: &Discovery<'_>, chart: &mut Bootchart) -> Devices {
    let mut devices = Devices::default();
    let mut mmio: Vec<acpi::MmioDevice> = discovery
        .command_line_mmio
        .iter()
        .map(|device| acpi::MmioDevice {
            base: device.base,
            size: device.size,
            gsi: device.irq,
            is_level_triggered: false,
        })
        .collect();
    for device in discovery.dsdt.map(acpi::virtio_mmio_devices).unwrap_or_default() {
        if !mmio.iter().any(|known| known.base == device.base) {
            mmio.push(device);
        }
    }
    for device in &mmio {
        start_mmio(device, &mut devices);
    }
    if discovery.scans_pci {
        let mut functions = rosv_drivers::pci::enumerate(&HARDWARE);
        let windows = ResourceWindows {
            io: PCI_IO_PORTS,
            memory: discovery.low_ram_end.next_multiple_of(1 << 28).max(PCI_MEMORY_START)..PCI_MEMORY_END,
        };
        rosv_drivers::pci::assign_resources(&HARDWARE, &mut functions, &windows);
        chart.mark("pci enumerated");
        for function in functions.iter().filter(|function| virtio_pci::device_type(function).is_some()) {
            start_pci(function, &functions, &mut devices);
        }
    }
    devices
}

fn start_mmio(device: &acpi::MmioDevice, devices: &mut Devices) {
    let Some(window) = HARDWARE.map_registers(device.base, device.size as usize) else {
        log::warn!("virtio-mmio at {:#x}: cannot map its registers", device.base);
        return;
    };
    let transport = match MmioTransport::probe(window) {
        Ok(Some(transport)) => transport,
        Ok(None) => return,
        Err(error) => {
            log::warn!("virtio-mmio at {:#x}: {error}", device.base);
            return;
        }
    };
    let Some(slot) = allocate_slot() else {
        log::warn!("virtio-mmio at {:#x}: no interrupt vector left", device.base);
        return;
    };
    let place = format!("mmio {:#x} (v{}, gsi {})", device.base, transport.version(), device.gsi);
    if attach(Box::new(transport), &slot, &place, false, devices) {
        let trigger = if device.is_level_triggered { Trigger::Level } else { Trigger::Edge };
        if !ioapic::route(device.gsi, slot.vector, apic::id(), trigger) {
            log::warn!("{place}: no I/O APIC input for its interrupt");
        }
    }
}

fn start_pci(function: &Function, functions: &[Function], devices: &mut Devices) {
    log::debug!(
        "pci {}: {:04x}:{:04x}, BARs {:x?}, line {} pin {}",
        function.address,
        function.vendor_id,
        function.device_id,
        function.bars,
        function.interrupt_line,
        function.interrupt_pin
    );
    let Some(slot) = allocate_slot() else {
        log::warn!("pci {}: no interrupt vector left", function.address);
        return;
    };
    let message = apic::msi_message(slot.vector, apic::id());
    let (transport, route) = match virtio_pci::open(function, &HARDWARE, Some(message)) {
        // The chipset's routing beats the line register, which firmware
        // may have filled in wrongly.
        Ok((transport, InterruptRoute::Intx(line))) => {
            let line = rosv_drivers::pci::piix_intx_irq(&HARDWARE, functions, function).unwrap_or(line);
            (transport, InterruptRoute::Intx(line))
        }
        Ok(opened) => opened,
        Err(error) => {
            log::warn!("pci {}: {error}", function.address);
            return;
        }
    };
    let interface = if transport.is_legacy() { "legacy" } else { "modern" };
    let signal = match &route {
        InterruptRoute::Msix(_) => String::from("MSI-X"),
        InterruptRoute::Intx(line) => format!("INTx line {line}"),
        InterruptRoute::None => String::from("polled"),
    };
    let place = format!("pci {} ({interface}, {signal})", function.address);
    let is_polled = matches!(route, InterruptRoute::None);
    if !attach(transport, &slot, &place, is_polled, devices) {
        return;
    }
    if let InterruptRoute::Intx(line) = route
        && !ioapic::route(u32::from(line), slot.vector, apic::id(), Trigger::Level)
    {
        log::warn!("{place}: no I/O APIC input for line {line}");
    }
}

/// Starts the driver for `transport`'s device type (polling its queues if
/// it has no interrupt); false if none did.
fn attach(
    transport: Box<dyn Transport>,
    slot: &InterruptSlot,
    place: &str,
    is_polled: bool,
    devices: &mut Devices,
) -> bool {
    let device_type = transport.device_type();
    let transport: Arc<dyn Transport> = Arc::from(transport);
    let result: Result<(), DeviceError> = match device_type {
        DeviceType::Block => VirtioBlock::new(transport, &HARDWARE).map(|block| {
            block.queue().set_polling(is_polled);
            let block = Arc::new(block);
            let handler = block.clone();
            slot.handler.call_once(|| Box::new(move || handler.handle_interrupt()));
            let name = format!("vd{}", char::from(b'a' + devices.disks.len().min(25) as u8));
            log::info!(
                "{name}: virtio block device at {place}, {} sectors{}",
                block.sector_count(),
                if block.is_read_only() { ", read-only" } else { "" }
            );
            devices.disks.push(block);
        }),
        DeviceType::Entropy => VirtioEntropy::new(transport, &HARDWARE).map(|entropy| {
            entropy.queue().set_polling(is_polled);
            let entropy = Arc::new(entropy);
            let handler = entropy.clone();
            slot.handler.call_once(|| Box::new(move || handler.handle_interrupt()));
            log::info!("virtio entropy source at {place}");
            devices.entropy.get_or_insert(entropy);
        }),
        DeviceType::Network => VirtioNet::new(transport, &HARDWARE).map(|card| {
            let card = Arc::new(card);
            let handler = card.clone();
            slot.handler.call_once(|| {
                Box::new(move || {
                    handler.handle_interrupt();
                    if let Some(network) = NETWORK.get() {
                        network.wake_worker();
                    }
                })
            });
            let mac = card.mac_address();
            log::info!(
                "eth{}: virtio network card at {place}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, MTU {}{}",
                devices.network_cards.len(),
                mac[0],
                mac[1],
                mac[2],
                mac[3],
                mac[4],
                mac[5],
                card.mtu(),
                if card.is_link_up() { "" } else { ", link down" }
            );
            devices.network_cards.push(card);
        }),
        DeviceType::Console => VirtioConsole::new(transport, &HARDWARE).map(|driver| {
            let console = Arc::new(ConsoleDevice::new(driver));
            let handler = console.clone();
            slot.handler.call_once(|| Box::new(move || handler.handle_interrupt()));
            if is_polled {
                let poller = console.clone();
                rosv_platform::sched::spawn_kernel("console poll", move || loop {
                    poller.handle_interrupt();
                    rosv_platform::sched::park_until(Some(rosv_platform::time::boot_ns_to_tsc(
                        rosv_platform::time::since_boot_ns() + CONSOLE_POLL_NS,
                    )));
                });
            }
            console.settle();
            let ports: Vec<_> =
                console.driver.ports().into_iter().map(|(_, name)| name.unwrap_or_default()).collect();
            log::info!("virtio console at {place}, ports {ports:?}");
            devices.consoles.push(console);
        }),
        DeviceType::NinePTransport => Virtio9p::new(transport, &HARDWARE).map(|share| {
            share.queue().set_polling(is_polled);
            let share = Arc::new(share);
            let handler = share.clone();
            slot.handler.call_once(|| Box::new(move || handler.handle_interrupt()));
            log::info!("virtio 9P transport at {place}, mount tag {:?}", share.tag());
            devices.shares.push(share);
        }),
        DeviceType::Socket => VirtioVsock::new(transport, &HARDWARE).map(|device| {
            let device = Arc::new(device);
            let handler = device.clone();
            slot.handler.call_once(|| {
                Box::new(move || {
                    handler.handle_interrupt();
                    if let Some(vsock) = rosv_core::net::vsock::installed() {
                        vsock.wake_worker();
                    }
                })
            });
            log::info!("virtio socket device at {place}, guest CID {}", device.guest_cid());
            devices.vsock.get_or_insert(device);
        }),
        other => {
            log::info!("virtio {other} device at {place}: no driver");
            return false;
        }
    };
    match result {
        Ok(()) => true,
        Err(error) => {
            log::warn!("virtio {device_type} device at {place}: {error}");
            false
        }
    }
}
