//! `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` tokens.
//!
//! The syntax is Linux's (drivers/virtio/virtio_mmio.c): the size takes an
//! optional K, M or G suffix; numbers are decimal or `0x` hexadecimal.

use core::fmt;

/// A virtio-mmio device announced on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDevice {
    /// Physical address of the register window.
    pub base: u64,
    /// Size of the register window in bytes.
    pub size: u64,
    /// Interrupt line (GSI).
    pub irq: u32,
    /// Platform device id, when given.
    pub id: Option<u32>,
}

/// What is wrong with a `virtio_mmio.device=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioDeviceError {
    /// The value is not `<size>@<base>:<irq>[:<id>]`.
    Syntax,
    /// A number could not be read or overflows.
    BadNumber,
    /// The size is zero or the window wraps around the address space.
    BadWindow,
}

impl core::error::Error for MmioDeviceError {}

impl fmt::Display for MmioDeviceError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            MmioDeviceError::Syntax => "expected virtio_mmio.device=<size>@<base>:<irq>[:<id>]",
            MmioDeviceError::BadNumber => "a number is malformed or too large",
            MmioDeviceError::BadWindow => "the register window is empty or wraps around",
        })
    }
}

impl MmioDevice {
    /// Parses the value after `virtio_mmio.device=`.
    pub fn parse(spec: &str) -> Result<Self, MmioDeviceError> {
        let (size, location) = spec.split_once('@').ok_or(MmioDeviceError::Syntax)?;
        let mut fields = location.split(':');
        let base = fields.next().ok_or(MmioDeviceError::Syntax)?;
        let irq = fields.next().ok_or(MmioDeviceError::Syntax)?;
        let id = fields.next();
        if fields.next().is_some() {
            return Err(MmioDeviceError::Syntax);
        }
        let device = MmioDevice {
            base: parse_number(base)?,
            size: parse_size(size)?,
            irq: u32::try_from(parse_number(irq)?).map_err(|_| MmioDeviceError::BadNumber)?,
            id: id
                .map(|id| u32::try_from(parse_number(id)?).map_err(|_| MmioDeviceError::BadNumber))
                .transpose()?,
        };
        if device.size == 0 || device.base.checked_add(device.size).is_none() {
            return Err(MmioDeviceError::BadWindow);
        }
        Ok(device)
    }
}

fn parse_size(text: &str) -> Result<u64, MmioDeviceError> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let value = parse_number(digits)?;
    value.checked_mul(1 << shift).ok_or(MmioDeviceError::BadNumber)
}

fn parse_number(text: &str) -> Result<u64, MmioDeviceError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| MmioDeviceError::BadNumber)
}
