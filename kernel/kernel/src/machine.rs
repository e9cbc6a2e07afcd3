//! The platform's services, offered to the kernel's logic.

use rosv_core::machine::{BadAddress, Machine, MapFailure, Rights};
use rosv_platform::paging::{self, MapError, PageRights};
use rosv_platform::{console, cpu, time, user};

/// The machine the kernel runs on.
pub struct PlatformMachine {
    /// `AT_HWCAP`.
    pub hardware_capabilities: u64,
}

fn page_rights(rights: Rights) -> PageRights {
    PageRights {
        is_accessible: rights.is_accessible(),
        is_writable: rights.write,
        is_executable: rights.execute,
    }
}

impl Machine for PlatformMachine {
    fn console_write(&self, bytes: &[u8]) {
        console::write_bytes(bytes);
    }

    fn read_memory(&self, address: u64, buffer: &mut [u8]) -> Result<(), BadAddress> {
        user::read(address, buffer).map_err(|_| BadAddress)
    }

    fn write_memory(&self, address: u64, bytes: &[u8]) -> Result<(), BadAddress> {
        user::write(address, bytes).map_err(|_| BadAddress)
    }

    fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure> {
        paging::map_application_page(page, page_rights(rights)).map_err(|error| match error {
            MapError::AlreadyMapped => MapFailure::AlreadyMapped,
            MapError::OutOfMemory | MapError::NotApplicationPage => MapFailure::OutOfMemory,
        })
    }

    fn unmap_range(&self, start: u64, end: u64) {
        paging::unmap_application_range(start, end);
    }

    fn protect_range(&self, start: u64, end: u64, rights: Rights) {
        paging::protect_application_range(start, end, page_rights(rights));
    }

    fn monotonic_ns(&self) -> u64 {
        time::since_boot_ns()
    }

    fn realtime_ns(&self) -> u64 {
        time::realtime_ns()
    }

    fn wait_until(&self, deadline_ns: u64) {
        // There is no timer interrupt yet: wait by watching the clock.
        while time::since_boot_ns() < deadline_ns {
            core::hint::spin_loop();
        }
    }

    fn set_thread_pointer(&self, address: u64) {
        cpu::set_fs_base(address);
    }

    fn thread_pointer(&self) -> u64 {
        cpu::fs_base()
    }

    fn hardware_random(&self) -> Option<u64> {
        cpu::hardware_random()
    }

    fn hardware_capabilities(&self) -> u64 {
        self.hardware_capabilities
    }
}
