//! What the kernel's logic needs from the hardware.

/// Access rights of application memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights {
    /// Loads are allowed.
    pub read: bool,
    /// Stores are allowed.
    pub write: bool,
    /// Instruction fetches are allowed.
    pub execute: bool,
}

impl Rights {
    /// No access at all (`PROT_NONE`).
    pub const NONE: Rights = Rights {
        read: false,
        write: false,
        execute: false,
    };
    /// Read and write, not execute.
    pub const READ_WRITE: Rights = Rights {
        read: true,
        write: true,
        execute: false,
    };

    /// Whether any access is allowed.
    pub fn is_accessible(self) -> bool {
        self.read || self.write || self.execute
    }
}

/// An application address that could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

/// Why a page could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFailure {
    /// Something is already mapped there.
    AlreadyMapped,
    /// No memory is left.
    OutOfMemory,
}

/// The hardware services the kernel's logic uses.
///
/// Addresses are application (lower-half) virtual addresses; page addresses
/// are multiples of 4096. Implementations check them and fail rather than
/// touch kernel memory.
pub trait Machine: Sync {
    /// Writes bytes to the console.
    fn console_write(&self, bytes: &[u8]);

    /// Copies application memory at `address` into `buffer`, faulting pages
    /// in as needed.
    fn read_memory(&self, address: u64, buffer: &mut [u8]) -> Result<(), BadAddress>;

    /// Copies `bytes` into application memory at `address`.
    fn write_memory(&self, address: u64, bytes: &[u8]) -> Result<(), BadAddress>;

    /// Maps a fresh zero-filled page at `page`.
    fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure>;

    /// Unmaps and frees every mapped page in `[start, end)`.
    fn unmap_range(&self, start: u64, end: u64);

    /// Sets the rights of every mapped page in `[start, end)`.
    fn protect_range(&self, start: u64, end: u64, rights: Rights);

    /// Nanoseconds since boot, monotonic.
    fn monotonic_ns(&self) -> u64;

    /// Nanoseconds since the Unix epoch, as far as the machine knows.
    fn realtime_ns(&self) -> u64;

    /// Waits until the monotonic clock reaches `deadline_ns`.
    fn wait_until(&self, deadline_ns: u64);

    /// Sets the current thread's thread pointer (the FS base).
    fn set_thread_pointer(&self, address: u64);

    /// The current thread's thread pointer.
    fn thread_pointer(&self) -> u64;

    /// A random number from the hardware, if it has a generator.
    fn hardware_random(&self) -> Option<u64>;

    /// The processor feature word for `AT_HWCAP`.
    fn hardware_capabilities(&self) -> u64;
}
