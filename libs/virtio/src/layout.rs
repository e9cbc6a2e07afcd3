//! Where a split virtqueue's parts lie in its memory region (§2.7).

/// Bytes of one descriptor.
pub(crate) const DESCRIPTOR_SIZE: usize = 16;
/// Bytes of one used-ring element (`id: u32, len: u32`).
pub(crate) const USED_ELEMENT_SIZE: usize = 8;
/// The legacy interface's ring alignment (§2.7.2, "QUEUE_ALIGN").
const LEGACY_ALIGNMENT: usize = 4096;
/// Descriptors per indirect table: the longest chain that takes one ring
/// descriptor.
pub const INDIRECT_TABLE_LENGTH: usize = 16;

/// How the rings are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// Each part at its own natural alignment (virtio 1.0 and later: the
    /// driver gives the device three addresses).
    Modern,
    /// One contiguous area whose used ring starts on a 4096-byte boundary
    /// (legacy interfaces, which take a single page frame number).
    Legacy,
}

/// Offsets of a split virtqueue's parts in one region of shared memory,
/// followed by one indirect table per descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    /// Number of descriptors (a power of two).
    pub size: u16,
    /// The descriptor table (always at 0).
    pub descriptor_table: usize,
    /// The available ring ("driver area").
    pub available_ring: usize,
    /// The used ring ("device area").
    pub used_ring: usize,
    /// The indirect tables, `INDIRECT_TABLE_LENGTH` descriptors each.
    pub indirect_tables: usize,
    /// Bytes of the whole region.
    pub total_size: usize,
}

const fn align_up(value: usize, alignment: usize) -> usize {
    value.div_ceil(alignment) * alignment
}

impl QueueLayout {
    /// The layout of a queue of `size` descriptors; `None` unless `size` is
    /// a power of two no larger than 32768 (§2.7).
    pub fn new(size: u16, kind: LayoutKind) -> Option<Self> {
        if !size.is_power_of_two() || size > 32768 {
            return None;
        }
        let count = usize::from(size);
        let available_ring = DESCRIPTOR_SIZE * count;
        let available_end = available_ring + 6 + 2 * count;
        let used_ring = match kind {
            LayoutKind::Modern => align_up(available_end, 4),
            LayoutKind::Legacy => align_up(available_end, LEGACY_ALIGNMENT),
        };
        let used_end = used_ring + 6 + USED_ELEMENT_SIZE * count;
        let indirect_tables = align_up(used_end, DESCRIPTOR_SIZE);
        let total_size = indirect_tables + count * INDIRECT_TABLE_LENGTH * DESCRIPTOR_SIZE;
        Some(QueueLayout {
            size,
            descriptor_table: 0,
            available_ring,
            used_ring,
            indirect_tables,
            total_size,
        })
    }

    /// Offset of descriptor `index`.
    pub(crate) fn descriptor(&self, index: u16) -> usize {
        self.descriptor_table + DESCRIPTOR_SIZE * usize::from(index)
    }

    /// Offset of slot `index % size` of the available ring.
    pub(crate) fn available_slot(&self, index: u16) -> usize {
        self.available_ring + 4 + 2 * usize::from(index % self.size)
    }

    /// Offset of `used_event`, after the available ring's slots.
    pub(crate) fn used_event(&self) -> usize {
        self.available_ring + 4 + 2 * usize::from(self.size)
    }

    /// Offset of element `index % size` of the used ring.
    pub(crate) fn used_element(&self, index: u16) -> usize {
        self.used_ring + 4 + USED_ELEMENT_SIZE * usize::from(index % self.size)
    }

    /// Offset of `avail_event`, after the used ring's elements.
    pub(crate) fn available_event(&self) -> usize {
        self.used_ring + 4 + USED_ELEMENT_SIZE * usize::from(self.size)
    }

    /// Offset of the indirect table that belongs to descriptor `head`.
    pub(crate) fn indirect_table(&self, head: u16) -> usize {
        self.indirect_tables + usize::from(head) * INDIRECT_TABLE_LENGTH * DESCRIPTOR_SIZE
    }
}
