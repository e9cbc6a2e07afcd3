//! The virtio console device (§5.3): ports, queues and control messages.
//!
//! With `MULTIPORT` the device has several ports, each a pair of queues
//! (receive, transmit), and a control queue pair on which the two sides
//! announce ports, their names and whether each side has them open. Queue
//! numbering (§5.3.2): port 0 uses queues 0 and 1, the control queues are
//! 2 and 3, and port `n > 0` uses `2n + 2` and `2n + 3`.

/// Console device feature bits (§5.3.3).
pub mod feature {
    /// `cols` and `rows` in the configuration are valid.
    pub const SIZE: u64 = 1 << 0;
    /// The device has several ports and a control queue pair;
    /// `max_nr_ports` is valid.
    pub const MULTIPORT: u64 = 1 << 1;
    /// Emergency writes through `emerg_wr` are supported.
    pub const EMERG_WRITE: u64 = 1 << 2;
}

/// Byte offsets in the device configuration (§5.3.4).
pub mod config {
    /// `cols` (u16).
    pub const COLUMNS: usize = 0;
    /// `rows` (u16).
    pub const ROWS: usize = 2;
    /// `max_nr_ports` (u32).
    pub const MAX_PORTS: usize = 4;
}

/// The control receive queue (device to driver).
pub const CONTROL_RECEIVE_QUEUE: u16 = 2;
/// The control transmit queue (driver to device).
pub const CONTROL_TRANSMIT_QUEUE: u16 = 3;

/// The receive queue of port `port`.
pub const fn receive_queue(port: u32) -> u16 {
    if port == 0 { 0 } else { (2 * port + 2) as u16 }
}

/// The transmit queue of port `port`.
pub const fn transmit_queue(port: u32) -> u16 {
    receive_queue(port) + 1
}

/// The port whose receive or transmit queue is `queue` (`None` for the
/// control queues).
pub const fn port_of_queue(queue: u16) -> Option<u32> {
    match queue {
        0 | 1 => Some(0),
        2 | 3 => None,
        _ => Some((queue as u32 - 2) / 2),
    }
}

/// Control message events (§5.3.6.2).
pub mod event {
    /// Driver: ready to take ports.
    pub const DEVICE_READY: u16 = 0;
    /// Device: a port exists.
    pub const DEVICE_ADD: u16 = 1;
    /// Device: a port is gone.
    pub const DEVICE_REMOVE: u16 = 2;
    /// Driver: the port is set up (value 1) or failed (0).
    pub const PORT_READY: u16 = 3;
    /// Device: the port is a console.
    pub const CONSOLE_PORT: u16 = 4;
    /// Device: the console's size changed (a `cols`, `rows` pair follows).
    pub const RESIZE: u16 = 5;
    /// Either side: the port is open (1) or closed (0) on that side.
    pub const PORT_OPEN: u16 = 6;
    /// Device: the port's name follows the message.
    pub const PORT_NAME: u16 = 7;
}

/// Bytes of a control message header (`struct virtio_console_control`).
pub const CONTROL_SIZE: usize = 8;

/// A control message header: `id` (the port), `event`, `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The port it concerns.
    pub port: u32,
    /// What happened ([`event`]).
    pub event: u16,
    /// The event's value.
    pub value: u16,
}

impl Control {
    /// The header's bytes, little-endian as modern devices and x86 legacy
    /// ones both use.
    pub fn encode(&self) -> [u8; CONTROL_SIZE] {
        let mut bytes = [0u8; CONTROL_SIZE];
        bytes[..4].copy_from_slice(&self.port.to_le_bytes());
        bytes[4..6].copy_from_slice(&self.event.to_le_bytes());
        bytes[6..].copy_from_slice(&self.value.to_le_bytes());
        bytes
    }

    /// Reads a header from the start of `bytes`; `None` if too short.
    pub fn decode(bytes: &[u8]) -> Option<Control> {
        let header: &[u8; CONTROL_SIZE] = bytes.get(..CONTROL_SIZE)?.try_into().ok()?;
        Some(Control {
            port: u32::from_le_bytes([header[0], header[1], header[2], header[3]]),
            event: u16::from_le_bytes([header[4], header[5]]),
            value: u16::from_le_bytes([header[6], header[7]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_map_to_queues_and_back() {
        assert_eq!((receive_queue(0), transmit_queue(0)), (0, 1));
        assert_eq!((receive_queue(1), transmit_queue(1)), (4, 5));
        assert_eq!((receive_queue(3), transmit_queue(3)), (8, 9));
        for port in 0..8 {
            assert_eq!(port_of_queue(receive_queue(port)), Some(port));
            assert_eq!(port_of_queue(transmit_queue(port)), Some(port));
        }
        assert_eq!(port_of_queue(CONTROL_RECEIVE_QUEUE), None);
        assert_eq!(port_of_queue(CONTROL_TRANSMIT_QUEUE), None);
    }

    #[test]
    fn control_headers_round_trip() {
        let control = Control { port: 3, event: event::PORT_OPEN, value: 1 };
        assert_eq!(control.encode(), [3, 0, 0, 0, 6, 0, 1, 0]);
        assert_eq!(Control::decode(&control.encode()), Some(control));
        assert_eq!(Control::decode(&[0; 7]), None);
    }
}
