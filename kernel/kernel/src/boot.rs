//! The boot sequence.

use core::fmt::Write;

use rosv_platform::boot::{BootHandoff, BootInfo};
use rosv_platform::{console, cpu, power};

rosv_platform::kernel_entry!(main);

fn main(handoff: BootHandoff) -> ! {
    console::init();
    let info = BootInfo::read(&handoff);
    let _ = writeln!(console::Console, "hello from rosv {:?}", handoff.protocol);
    if let Ok(info) = &info {
        let _ = writeln!(console::Console, "cmdline: {}", info.command_line());
        for region in info.memory_map.regions() {
            let _ = writeln!(console::Console, "  {:x}..{:x} {:?}", region.start, region.end(), region.kind);
        }
        let _ = writeln!(console::Console, "initrd {:x?}", info.initrd);
    }
    let features = cpu::features();
    rosv_platform::init_boot_cpu(&features);
    let _ = writeln!(console::Console, "cpu ok");
    power::power_off(3)
}
