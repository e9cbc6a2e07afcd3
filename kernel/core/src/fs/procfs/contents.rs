//! What procfs files say: generated from the process and the machine when
//! a file is opened.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::SystemInformation;
use crate::memory::AreaKind;
use crate::net::Network;
use crate::process::{PROCESS_ID, Process};
use crate::vfs::{Caller, Location};

/// The column where `/proc/self/maps` starts a mapping's name.
const MAPS_NAME_COLUMN: usize = 73;
/// Names of the `CPUID.1:EDX` feature bits (`AT_HWCAP`), as Linux lists
/// them in `/proc/cpuinfo`.
const FEATURE_NAMES: [(u32, &str); 28] = [
    (0, "fpu"),
    (1, "vme"),
    (2, "de"),
    (3, "pse"),
    (4, "tsc"),
    (5, "msr"),
    (6, "pae"),
    (7, "mce"),
    (8, "cx8"),
    (9, "apic"),
    (11, "sep"),
    (12, "mtrr"),
    (13, "pge"),
    (14, "mca"),
    (15, "cmov"),
    (16, "pat"),
    (17, "pse36"),
    (18, "pn"),
    (19, "clflush"),
    (21, "dts"),
    (22, "acpi"),
    (23, "mmx"),
    (24, "fxsr"),
    (25, "sse"),
    (26, "sse2"),
    (27, "ss"),
    (28, "ht"),
    (29, "tm"),
];

/// `/proc/self/maps`: one line per area of the address space.
pub fn maps(process: &Process) -> String {
    let mut text = String::new();
    for (start, area) in process.memory.lock().areas() {
        let rights = area.rights;
        let (offset, inode) = area.file.as_ref().map_or((0, 0), |file| (file.offset, file.node.inode()));
        let sharing = if area.file.as_ref().is_some_and(|file| file.is_shared) { 's' } else { 'p' };
        let mut line = format!(
            "{start:08x}-{:08x} {}{}{}{sharing} {offset:08x} 00:00 {inode}",
            area.end,
            if rights.read { 'r' } else { '-' },
            if rights.write { 'w' } else { '-' },
            if rights.execute { 'x' } else { '-' },
        );
        let name = match (&area.file, area.kind) {
            (Some(file), _) => &*file.path,
            (None, AreaKind::Image) => process.executable_path.as_str(),
            (None, AreaKind::Heap) => "[heap]",
            (None, AreaKind::Stack) => "[stack]",
            (None, AreaKind::Anonymous | AreaKind::File) => "",
            (None, AreaKind::Vdso) => "[vdso]",
            (None, AreaKind::VdsoData) => "[vvar]",
        };
        if !name.is_empty() {
            while line.len() < MAPS_NAME_COLUMN {
                line.push(' ');
            }
            line.push_str(name);
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// `/proc/self/status`: the fields programs look for.
pub fn status(process: &Process) -> String {
    let name = process.executable_path.rsplit('/').next().unwrap_or_default();
    let name = &name[..name.len().min(15)];
    let (umask, credentials) = {
        let state = process.state.lock();
        (state.umask, state.credentials.clone())
    };
    format!(
        "Name:\t{name}\nUmask:\t{umask:04o}\nState:\tR (running)\nTgid:\t{PROCESS_ID}\nPid:\t{PROCESS_ID}\n\
         PPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nThreads:\t{}\n",
        credentials.real_user,
        credentials.effective_user,
        credentials.saved_user,
        credentials.filesystem_user,
        credentials.real_group,
        credentials.effective_group,
        credentials.saved_group,
        credentials.filesystem_group,
        process.thread_count()
    )
}

/// `/proc/mounts`: one line per mount.
pub fn mounts(caller: &Caller<'_>, process: &Process) -> String {
    let mut text = String::new();
    for mount in process.vfs.mounts() {
        let path = process.vfs.path_of(caller, &Location::root_of(&mount)).unwrap_or_default();
        let mode = if mount.is_read_only() { "ro" } else { "rw" };
        let _ = writeln!(text, "{} {path} {} {mode} 0 0", mount.source(), mount.filesystem().type_name());
    }
    text
}

/// `/proc/cpuinfo`: one paragraph per processor.
pub fn cpuinfo(caller: &Caller<'_>) -> String {
    let capabilities = caller.machine.hardware_capabilities();
    let mut flags = String::new();
    for (bit, name) in FEATURE_NAMES {
        if capabilities & (1 << bit) != 0 {
            if !flags.is_empty() {
                flags.push(' ');
            }
            flags.push_str(name);
        }
    }
    let count = caller.machine.cpu_count();
    let mut text = String::new();
    for processor in 0..count {
        let _ = write!(
            text,
            "processor\t: {processor}\nvendor_id\t: rosv\nmodel name\t: rosv virtual processor\n\
             physical id\t: 0\nsiblings\t: {count}\ncore id\t\t: {processor}\ncpu cores\t: {count}\n\
             flags\t\t: {flags}\n\n"
        );
    }
    text
}

/// `/proc/meminfo`: the machine's memory, as the frame allocator holds it
/// (the memory map's figure before there is one).
pub fn meminfo(system: &SystemInformation) -> String {
    let figures = crate::pages::figures();
    let (total, free, available, heap) = if figures.total_bytes == 0 {
        let total = system.memory_total_bytes;
        (total, total, total, 0)
    } else {
        (figures.total_bytes, figures.free_bytes, figures.available_bytes(), figures.heap_bytes)
    };
    let [total, free, available, heap] = [total, free, available, heap].map(|bytes| bytes / 1024);
    format!(
        "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {available:8} kB\n\
         Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n\
         SwapFree:              0 kB\nSlab:           {heap:8} kB\n"
    )
}

/// `/proc/uptime`: seconds since boot, and idle seconds (not measured).
pub fn uptime(caller: &Caller<'_>) -> String {
    let centiseconds = caller.machine.monotonic_ns() / 10_000_000;
    format!("{}.{:02} 0.00\n", centiseconds / 100, centiseconds % 100)
}

/// Clock ticks per second in `/proc` files (`USER_HZ`).
const USER_HZ: u64 = 100;

/// `/proc/stat`: a line per processor (libuv's `os.cpus()` counts them),
/// with the time since boot counted as idle (the scheduler keeps no
/// per-processor accounts), and the boot time.
pub fn stat(caller: &Caller<'_>) -> String {
    let count = caller.machine.cpu_count() as u64;
    let uptime_ns = caller.machine.monotonic_ns();
    let idle = uptime_ns / (1_000_000_000 / USER_HZ);
    let boot_seconds = caller.machine.realtime_ns().saturating_sub(uptime_ns) / 1_000_000_000;
    let mut text = format!("cpu  0 0 0 {} 0 0 0 0 0 0\n", idle * count);
    for processor in 0..count {
        let _ = writeln!(text, "cpu{processor} 0 0 0 {idle} 0 0 0 0 0 0");
    }
    let _ = write!(
        text,
        "intr 0\nctxt 0\nbtime {boot_seconds}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n"
    );
    text
}

/// `/proc/loadavg`: no load history is kept; one process.
pub fn load_average(caller: &Caller<'_>) -> String {
    let threads = caller.process.map_or(1, |process| process.thread_count().max(1));
    format!("0.00 0.00 0.00 1/{threads} {PROCESS_ID}\n")
}

/// `/proc/net/dev`: each interface's counters, in Linux's layout.
pub(super) fn net_devices(network: &Network) -> String {
    let mut text = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls \
         carrier compressed\n",
    );
    for interface in network.interfaces() {
        let counters = interface.counters;
        let _ = writeln!(
            text,
            "{:>6}: {:>7} {:>7}    0    0    0     0          0         0 {:>8} {:>7}    0 {:>4}    0     0       0          0",
            interface.name,
            counters.received_bytes,
            counters.received_packets,
            counters.sent_bytes,
            counters.sent_packets,
            counters.dropped
        );
    }
    text
}

/// `/proc/net/route`: the card's network and default route, in Linux's
/// layout (addresses as little-endian hexadecimal).
pub(super) fn net_routes(network: &Network) -> String {
    let mut text =
        String::from("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
    let hex = |address: core::net::Ipv4Addr| alloc::format!("{:08X}", u32::from_le_bytes(address.octets()));
    let configuration = network.configuration();
    if let (true, Some((address, prefix_length))) = (network.has_card(), configuration.address) {
        const UP: u32 = 0x1;
        const GATEWAY: u32 = 0x2;
        if let Some(gateway) = configuration.gateway {
            let zero = core::net::Ipv4Addr::UNSPECIFIED;
            let _ = writeln!(
                text,
                "eth0\t{}\t{}\t{:04X}\t0\t0\t0\t{}\t0\t0\t0",
                hex(zero),
                hex(gateway),
                UP | GATEWAY,
                hex(zero)
            );
        }
        let network_address = crate::net::address::network_of(address, prefix_length);
        let _ = writeln!(
            text,
            "eth0\t{}\t{}\t{:04X}\t0\t0\t0\t{}\t0\t0\t0",
            hex(network_address),
            hex(core::net::Ipv4Addr::UNSPECIFIED),
            UP,
            hex(crate::net::address::netmask(prefix_length))
        );
    }
    text
}
