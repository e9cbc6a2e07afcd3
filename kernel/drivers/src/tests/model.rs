//! A virtio device model behind any of the four register layouts.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::console::{self, Control};
use rosv_virtio::device::{Chain, DeviceQueue};
use rosv_virtio::spec::feature;
use rosv_virtio::testing::FakeMemory;

use super::fake::{Disk, RegisterModel};

/// What the device does with a chain.
pub enum Backend {
    Block {
        disk: Disk,
    },
    Entropy,
    /// Answers each chain with what its readable part held, reversed (a
    /// stand-in for a 9P server).
    Reverse,
    /// Returns chains with an id that was never offered.
    Faulty,
    /// Keeps chains until the test completes them ([`Device::complete`]).
    Deferred {
        pending: Vec<(u16, u64)>,
    },
    /// A network card: frames the test injects fill receive chains, and
    /// transmitted frames are kept.
    Network(NetworkBackend),
    /// A console with several ports.
    Console(ConsoleBackend),
}

/// The wire side of a network card model.
#[derive(Default)]
pub struct NetworkBackend {
    /// Receive chains the driver offered and no frame has filled yet,
    /// oldest first.
    pub receive_chains: VecDeque<Chain>,
    /// What the driver sent.
    pub sent: Vec<Sent>,
    /// Whether transmit chains stay with the device until
    /// [`Device::complete_transmits`].
    pub is_transmit_deferred: bool,
    /// Heads of the transmit chains the device keeps.
    pub pending_transmits: Vec<u16>,
}

/// One transmit chain.
pub struct Sent {
    /// Its bytes, virtio header included.
    pub bytes: Vec<u8>,
    /// The length of each of its buffers.
    pub buffer_lengths: Vec<u32>,
}

impl NetworkBackend {
    /// Takes a chain from queue `index`; returns its head when it is to go
    /// back to the driver at once.
    fn take(&mut self, index: u16, chain: Chain, memory: &FakeMemory) -> Option<u16> {
        if index == rosv_virtio::net::RECEIVE_QUEUE {
            self.receive_chains.push_back(chain);
            return None;
        }
        let bytes = chain.read_all(memory).expect("in memory");
        let buffer_lengths = chain.segments.iter().map(|segment| segment.length).collect();
        self.sent.push(Sent { bytes, buffer_lengths });
        if self.is_transmit_deferred {
            self.pending_transmits.push(chain.head);
            return None;
        }
        Some(chain.head)
    }
}

/// The host side of a console model: its ports, what the driver sent on
/// each, and the receive buffers it offered.
#[derive(Default)]
pub struct ConsoleBackend {
    /// The ports announced when the driver is ready: number and name.
    pub ports: Vec<(u32, String)>,
    /// Whether the host has each announced port open.
    pub host_open: BTreeMap<u32, bool>,
    /// Control messages the driver sent.
    pub controls: Vec<Control>,
    /// Control messages waiting for a control receive buffer (with their
    /// payload).
    pub outgoing_controls: VecDeque<Vec<u8>>,
    /// Control receive buffers the driver offered.
    pub control_chains: VecDeque<Chain>,
    /// Receive buffers the driver offered, per port.
    pub receive_chains: BTreeMap<u32, VecDeque<Chain>>,
    /// Bytes the driver sent, per port.
    pub sent: BTreeMap<u32, Vec<u8>>,
    /// Whether transmit chains stay with the device until
    /// [`Device::complete_console_transmits`].
    pub is_transmit_deferred: bool,
    /// Queue and head of each transmit chain the device keeps.
    pub pending_transmits: Vec<(u16, u16)>,
}

impl ConsoleBackend {
    fn queue_control(&mut self, control: Control, payload: &[u8]) {
        let mut bytes = control.encode().to_vec();
        bytes.extend_from_slice(payload);
        self.outgoing_controls.push_back(bytes);
    }

    /// Takes a chain from queue `index`; returns its head and written
    /// length when it is to go back to the driver at once.
    fn take(&mut self, index: u16, chain: Chain, memory: &FakeMemory) -> Option<(u16, u32)> {
        match index {
            console::CONTROL_RECEIVE_QUEUE => {
                self.control_chains.push_back(chain);
                None
            }
            console::CONTROL_TRANSMIT_QUEUE => {
                let bytes = chain.read_all(memory).expect("in memory");
                let control = Control::decode(&bytes).expect("a control header");
                self.controls.push(control);
                match control.event {
                    console::event::DEVICE_READY => {
                        for (port, _) in self.ports.clone() {
                            self.queue_control(
                                Control { port, event: console::event::DEVICE_ADD, value: 0 },
                                &[],
                            );
                        }
                    }
                    console::event::PORT_READY if control.value == 1 => {
                        let name = self.ports.iter().find(|(port, _)| *port == control.port);
                        if let Some((port, name)) = name.cloned() {
                            self.queue_control(
                                Control { port, event: console::event::PORT_NAME, value: 1 },
                                name.as_bytes(),
                            );
                            if self.host_open.get(&port).copied().unwrap_or(true) {
                                self.queue_control(
                                    Control { port, event: console::event::PORT_OPEN, value: 1 },
                                    &[],
                                );
                            }
                        }
                    }
                    _ => {}
                }
                Some((chain.head, 0))
            }
            queue => {
                let port = console::port_of_queue(queue).expect("a port queue");
                if queue == console::receive_queue(port) {
                    self.receive_chains.entry(port).or_default().push_back(chain);
                    return None;
                }
                let bytes = chain.read_all(memory).expect("in memory");
                self.sent.entry(port).or_default().extend_from_slice(&bytes);
                if self.is_transmit_deferred {
                    self.pending_transmits.push((queue, chain.head));
                    return None;
                }
                Some((chain.head, 0))
            }
        }
    }
}

#[derive(Default)]
pub struct QueueRegisters {
    pub size: u16,
    pub max_size: u16,
    pub descriptor_table: u64,
    pub driver_area: u64,
    pub device_area: u64,
    pub vector: u16,
    pub device: Option<DeviceQueue>,
}

/// The transport-independent state of a device.
pub struct Device {
    pub memory: FakeMemory,
    pub device_id: u32,
    pub offered: u64,
    pub accepted: u64,
    pub status: u8,
    pub queue_select: u16,
    pub queues: Vec<QueueRegisters>,
    pub interrupt_status: u32,
    pub config: Vec<u8>,
    pub backend: Backend,
    pub features_select: u32,
    pub driver_features_select: u32,
}

impl Device {
    pub fn block(memory: FakeMemory, disk: Disk, extra_features: u64) -> Self {
        let sectors = (disk.lock().len() / 512) as u64;
        let mut config = vec![0u8; 64];
        config[..8].copy_from_slice(&sectors.to_le_bytes());
        Self::new(memory, 2, extra_features, config, Backend::Block { disk })
    }

    pub fn new(
        memory: FakeMemory,
        device_id: u32,
        extra_features: u64,
        config: Vec<u8>,
        backend: Backend,
    ) -> Self {
        let queues =
            (0..2).map(|_| QueueRegisters { max_size: 64, vector: 0xffff, ..Default::default() }).collect();
        Device {
            memory,
            device_id,
            offered: feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX | extra_features,
            accepted: 0,
            status: 0,
            queue_select: 0,
            queues,
            interrupt_status: 0,
            config,
            backend,
            features_select: 0,
            driver_features_select: 0,
        }
    }

    pub fn selected(&mut self) -> &mut QueueRegisters {
        let index = usize::from(self.queue_select).min(self.queues.len() - 1);
        &mut self.queues[index]
    }

    pub fn reset(&mut self) {
        self.status = 0;
        self.accepted = 0;
        for queue in &mut self.queues {
            queue.device = None;
        }
    }

    /// Starts the selected queue at the addresses written so far.
    pub fn enable_selected(&mut self) {
        let is_event_index = self.accepted & feature::EVENT_IDX != 0;
        let queue = self.selected();
        queue.device = Some(DeviceQueue::new(
            queue.size,
            queue.descriptor_table,
            queue.driver_area,
            queue.device_area,
            is_event_index,
        ));
    }

    /// Places the selected queue's rings the legacy way from a page number.
    pub fn enable_selected_legacy(&mut self, frame: u32) {
        let queue = self.selected();
        let size = u64::from(queue.size);
        queue.descriptor_table = u64::from(frame) * 4096;
        queue.driver_area = queue.descriptor_table + 16 * size;
        queue.device_area = (queue.driver_area + 6 + 2 * size).div_ceil(4096) * 4096;
        self.enable_selected();
    }

    pub fn notify(&mut self, index: u16) {
        let memory = self.memory.clone();
        let Some(mut queue) = self.queues.get_mut(usize::from(index)).and_then(|queue| queue.device.take())
        else {
            return;
        };
        while let Ok(Some(chain)) = queue.pop_available(&memory) {
            let (head, written) = match &mut self.backend {
                Backend::Block { disk } => (chain.head, serve_block(disk, &chain, &memory)),
                Backend::Entropy => {
                    let bytes: Vec<u8> =
                        (0..chain.writable_bytes()).map(|index| index as u8 ^ 0x5a).collect();
                    (chain.head, chain.write_all(&memory, &bytes).expect("in memory"))
                }
                Backend::Reverse => {
                    let mut bytes = chain.read_all(&memory).expect("in memory");
                    bytes.reverse();
                    (chain.head, chain.write_all(&memory, &bytes).expect("in memory"))
                }
                Backend::Faulty => (chain.head.wrapping_add(1), 0),
                Backend::Deferred { pending } => {
                    pending.push((chain.head, chain.writable_bytes()));
                    continue;
                }
                Backend::Network(network) => match network.take(index, chain, &memory) {
                    Some(head) => (head, 0),
                    None => continue,
                },
                Backend::Console(console) => match console.take(index, chain, &memory) {
                    Some(returned) => returned,
                    None => continue,
                },
            };
            queue.push_used(&memory, head, written).expect("in memory");
        }
        if queue.should_interrupt(&memory).expect("in memory") {
            self.interrupt_status |= 1;
        }
        self.queues[usize::from(index)].device = Some(queue);
        if matches!(self.backend, Backend::Console(_)) {
            self.deliver_console_controls();
        }
    }

    /// A console with `ports` (number, name), each open on the host side.
    pub fn console(memory: FakeMemory, ports: &[(u32, &str)], max_ports: u32) -> Self {
        let mut config = vec![0u8; 12];
        config[4..8].copy_from_slice(&max_ports.to_le_bytes());
        let backend = ConsoleBackend {
            ports: ports.iter().map(|(port, name)| (*port, (*name).into())).collect(),
            ..ConsoleBackend::default()
        };
        let mut device = Self::new(memory, 3, console::feature::MULTIPORT, config, Backend::Console(backend));
        let queue_count = 2 * max_ports as usize + 2;
        device.queues = (0..queue_count)
            .map(|_| QueueRegisters { max_size: 64, vector: 0xffff, ..Default::default() })
            .collect();
        device
    }

    /// The console's host side.
    pub fn console_host(&mut self) -> &mut ConsoleBackend {
        match &mut self.backend {
            Backend::Console(console) => console,
            _ => panic!("not a console"),
        }
    }

    /// Writes waiting control messages into the control receive buffers
    /// the driver offered.
    pub fn deliver_console_controls(&mut self) {
        let memory = self.memory.clone();
        loop {
            let console = self.console_host();
            if console.outgoing_controls.is_empty() || console.control_chains.is_empty() {
                return;
            }
            let (Some(message), Some(chain)) =
                (console.outgoing_controls.pop_front(), console.control_chains.pop_front())
            else {
                return;
            };
            let written = chain.write_all(&memory, &message).expect("in memory");
            self.push_used(console::CONTROL_RECEIVE_QUEUE, chain.head, written);
        }
    }

    /// The host sends a control message on the console.
    pub fn send_console_control(&mut self, control: Control) {
        self.console_host().queue_control(control, &[]);
        self.deliver_console_controls();
    }

    /// The host sends `bytes` on console port `port`, filling the oldest
    /// receive buffers; returns how many bytes fit.
    pub fn send_to_console_port(&mut self, port: u32, mut bytes: &[u8]) -> usize {
        let memory = self.memory.clone();
        let mut sent = 0;
        while !bytes.is_empty() {
            let Some(chain) =
                self.console_host().receive_chains.get_mut(&port).and_then(|chains| chains.pop_front())
            else {
                break;
            };
            let written = chain.write_all(&memory, bytes).expect("in memory");
            bytes = &bytes[written as usize..];
            sent += written as usize;
            self.push_used(console::receive_queue(port), chain.head, written);
        }
        sent
    }

    /// Returns every transmit chain a deferring console keeps.
    pub fn complete_console_transmits(&mut self) {
        for (queue, head) in core::mem::take(&mut self.console_host().pending_transmits) {
            self.push_used(queue, head, 0);
        }
    }

    /// Chains a deferred device keeps.
    pub fn pending_count(&self) -> usize {
        match &self.backend {
            Backend::Deferred { pending } => pending.len(),
            _ => 0,
        }
    }

    /// Returns the oldest chain a deferred device keeps, filled completely.
    pub fn complete(&mut self, queue_index: u16) {
        let memory = self.memory.clone();
        let Backend::Deferred { pending } = &mut self.backend else {
            return;
        };
        let (head, writable) = pending.remove(0);
        let queue = self.queues[usize::from(queue_index)].device.as_mut().expect("an active queue");
        queue.push_used(&memory, head, writable as u32).expect("in memory");
    }

    /// The network card's wire side.
    pub fn network(&mut self) -> &mut NetworkBackend {
        match &mut self.backend {
            Backend::Network(network) => network,
            _ => panic!("not a network card"),
        }
    }

    /// Returns chain `head` (or any id) on queue `queue_index` with
    /// `written` bytes claimed, and interrupts if the driver asks for it.
    pub fn push_used(&mut self, queue_index: u16, head: u16, written: u32) {
        let memory = self.memory.clone();
        let queue = self.queues[usize::from(queue_index)].device.as_mut().expect("an active queue");
        queue.push_used(&memory, head, written).expect("in memory");
        if queue.should_interrupt(&memory).expect("in memory") {
            self.interrupt_status |= 1;
        }
    }

    /// Fills the oldest receive chain with `header` and `frame` and returns
    /// it to the driver; false if the driver offered none.
    pub fn inject_frame(&mut self, header: &[u8], frame: &[u8]) -> bool {
        let memory = self.memory.clone();
        let Some(chain) = self.network().receive_chains.pop_front() else {
            return false;
        };
        let bytes = [header, frame].concat();
        let written = chain.write_all(&memory, &bytes).expect("in memory");
        assert_eq!(written as usize, bytes.len(), "the frame fits the chain");
        self.push_used(rosv_virtio::net::RECEIVE_QUEUE, chain.head, written);
        true
    }

    /// Returns every transmit chain a deferring network card keeps.
    pub fn complete_transmits(&mut self) {
        for head in core::mem::take(&mut self.network().pending_transmits) {
            self.push_used(rosv_virtio::net::TRANSMIT_QUEUE, head, 0);
        }
    }

    pub fn config_read(&self, offset: usize, width: usize) -> u32 {
        let mut value = [0u8; 4];
        for (index, byte) in value.iter_mut().enumerate().take(width) {
            *byte = self.config.get(offset + index).copied().unwrap_or(0);
        }
        u32::from_le_bytes(value)
    }
}

fn serve_block(disk: &Disk, chain: &Chain, memory: &FakeMemory) -> u32 {
    let readable = chain.read_all(memory).expect("in memory");
    let kind = u32::from_le_bytes(readable[..4].try_into().expect("a header"));
    let sector = u64::from_le_bytes(readable[8..16].try_into().expect("a header")) as usize;
    let data_length = (chain.writable_bytes() as usize).saturating_sub(1);
    let mut disk = disk.lock();
    let (status, data) = match kind {
        0 if (sector * 512 + data_length) <= disk.len() => {
            (0u8, disk[sector * 512..][..data_length].to_vec())
        }
        1 if sector * 512 + readable.len() - 16 <= disk.len() => {
            disk[sector * 512..][..readable.len() - 16].copy_from_slice(&readable[16..]);
            (0, Vec::new())
        }
        4 => (0, Vec::new()),
        0 | 1 => (1, vec![0; data_length]),
        _ => (2, vec![0; data_length]),
    };
    let mut reply = data;
    reply.push(status);
    chain.write_all(memory, &reply).expect("in memory")
}

/// virtio-mmio registers (versions 1 and 2) over a [`Device`].
pub struct MmioModel {
    pub device: Device,
    pub version: u32,
    pub magic: u32,
}

impl RegisterModel for MmioModel {
    fn read(&mut self, offset: usize, width: usize) -> u32 {
        let device = &mut self.device;
        match offset {
            0x000 => self.magic,
            0x004 => self.version,
            0x008 => device.device_id,
            0x00c => 0x554d_4551,
            0x010 => (device.offered >> (32 * device.features_select)) as u32,
            0x034 => u32::from(device.selected().max_size),
            0x044 => u32::from(device.selected().device.is_some()),
            0x060 => device.interrupt_status,
            0x070 => u32::from(device.status),
            0x100.. => device.config_read(offset - 0x100, width),
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, _width: usize, value: u32) {
        let device = &mut self.device;
        match offset {
            0x014 => device.features_select = value,
            0x020 => {
                let shift = 32 * device.driver_features_select;
                device.accepted = (device.accepted & !(0xffff_ffff << shift)) | u64::from(value) << shift;
            }
            0x024 => device.driver_features_select = value,
            0x030 => device.queue_select = value as u16,
            0x038 => device.selected().size = value as u16,
            0x040 => device.enable_selected_legacy(value),
            0x044 if value == 1 => device.enable_selected(),
            0x050 => device.notify(value as u16),
            0x064 => device.interrupt_status &= !value,
            0x070 if value == 0 => device.reset(),
            0x070 => device.status = value as u8,
            0x080 => set_low(&mut device.selected().descriptor_table, value),
            0x084 => set_high(&mut device.selected().descriptor_table, value),
            0x090 => set_low(&mut device.selected().driver_area, value),
            0x094 => set_high(&mut device.selected().driver_area, value),
            0x0a0 => set_low(&mut device.selected().device_area, value),
            0x0a4 => set_high(&mut device.selected().device_area, value),
            _ => {}
        }
    }
}

pub fn set_low(target: &mut u64, value: u32) {
    *target = (*target & !0xffff_ffff) | u64::from(value);
}

pub fn set_high(target: &mut u64, value: u32) {
    *target = (*target & 0xffff_ffff) | u64::from(value) << 32;
}

/// Legacy virtio-pci registers (I/O BAR 0) over a [`Device`].
pub struct LegacyPciModel {
    pub device: Device,
    pub is_msix_enabled: bool,
}

impl RegisterModel for LegacyPciModel {
    fn read(&mut self, offset: usize, width: usize) -> u32 {
        let config_base = if self.is_msix_enabled { 0x18 } else { 0x14 };
        let device = &mut self.device;
        match offset {
            0x00 => device.offered as u32,
            0x0c => u32::from(device.selected().max_size),
            0x12 => u32::from(device.status),
            0x13 => core::mem::take(&mut device.interrupt_status),
            0x16 if self.is_msix_enabled => u32::from(device.selected().vector),
            offset if offset >= config_base => device.config_read(offset - config_base, width),
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, _width: usize, value: u32) {
        let device = &mut self.device;
        match offset {
            0x04 => device.accepted = u64::from(value),
            0x08 => {
                let queue = device.selected();
                queue.size = queue.max_size;
                device.enable_selected_legacy(value);
            }
            0x0e => device.queue_select = value as u16,
            0x10 => device.notify(value as u16),
            0x12 if value == 0 => device.reset(),
            0x12 => device.status = value as u8,
            0x16 if self.is_msix_enabled => device.selected().vector = value as u16,
            _ => {}
        }
    }
}

/// Modern virtio-pci structures in one memory BAR over a [`Device`]:
/// common configuration at 0, ISR at 0x1000, device configuration at
/// 0x2000, notifications at 0x3000 (multiplier 4), MSI-X table at 0x4000.
pub struct ModernPciModel {
    pub device: Device,
    pub config_vector: u16,
    pub msix_table: Vec<u32>,
}

impl RegisterModel for ModernPciModel {
    fn read(&mut self, offset: usize, width: usize) -> u32 {
        let device = &mut self.device;
        match offset {
            0x00 => device.features_select,
            0x04 => (device.offered >> (32 * device.features_select)) as u32,
            0x10 => u32::from(self.config_vector),
            0x12 => device.queues.len() as u32,
            0x14 => u32::from(device.status),
            0x16 => u32::from(device.queue_select),
            0x18 => u32::from(device.selected().max_size),
            0x1a => u32::from(device.selected().vector),
            0x1c => u32::from(device.selected().device.is_some()),
            0x1e => u32::from(device.queue_select),
            0x1000 => core::mem::take(&mut device.interrupt_status),
            0x2000..0x3000 => device.config_read(offset - 0x2000, width),
            0x4000..0x5000 => self.msix_table[(offset - 0x4000) / 4],
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, _width: usize, value: u32) {
        let device = &mut self.device;
        match offset {
            0x00 => device.features_select = value,
            0x08 => device.driver_features_select = value,
            0x0c => {
                let shift = 32 * device.driver_features_select;
                device.accepted = (device.accepted & !(0xffff_ffff << shift)) | u64::from(value) << shift;
            }
            0x10 => self.config_vector = value as u16,
            0x14 if value == 0 => device.reset(),
            0x14 => device.status = value as u8,
            0x16 => device.queue_select = value as u16,
            0x18 => device.selected().size = value as u16,
            0x1a => device.selected().vector = value as u16,
            0x1c if value == 1 => device.enable_selected(),
            0x20 => set_low(&mut device.selected().descriptor_table, value),
            0x24 => set_high(&mut device.selected().descriptor_table, value),
            0x28 => set_low(&mut device.selected().driver_area, value),
            0x2c => set_high(&mut device.selected().driver_area, value),
            0x30 => set_low(&mut device.selected().device_area, value),
            0x34 => set_high(&mut device.selected().device_area, value),
            0x3000..0x4000 => device.notify(value as u16),
            0x4000..0x5000 => self.msix_table[(offset - 0x4000) / 4] = value,
            _ => {}
        }
    }
}

/// Marks the model's device read-only.
pub fn read_only() -> u64 {
    rosv_virtio::block::feature::RO
}
