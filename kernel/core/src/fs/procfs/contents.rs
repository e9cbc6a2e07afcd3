//! What procfs files say: generated from the process and the machine when
//! a file is opened.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::SystemInformation;
use crate::memory::{Area, AreaKind};
use crate::net::Network;
use crate::process::{PROCESS_ID, Process};
use crate::vfs::{Caller, Location};

/// The column where `/proc/self/maps` starts a mapping's name.
const MAPS_NAME_COLUMN: usize = 73;

/// `/proc/self/maps`: one line per area of the address space.
pub fn maps(process: &Process) -> String {
    let mut text = String::new();
    for (start, area) in process.memory().space.lock().areas() {
        text.push_str(&map_line(process, start, area));
        text.push('\n');
    }
    text
}

/// The `maps` line of the area at `start`, without its newline.
pub(super) fn map_line(process: &Process, start: u64, area: &Area) -> String {
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
    let executable;
    let name = match (&area.file, area.kind) {
        (Some(file), _) => &*file.path,
        (None, AreaKind::Image) => {
            executable = process.executable_path();
            executable.as_str()
        }
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
    line
}

/// `/proc/self/status`: the fields programs look for, in Linux's order.
pub fn status(caller: &Caller<'_>, process: &Process) -> String {
    let executable = process.executable_path();
    let name = executable.rsplit('/').next().unwrap_or_default();
    let name = &name[..name.len().min(15)];
    let (ignored, caught) = process.signal_handlers.with(|handlers| {
        let mut ignored = 0u64;
        let mut caught = 0u64;
        for (index, action) in handlers.iter().enumerate() {
            match action.handler {
                crate::process::SIG_DFL => {}
                crate::process::SIG_IGN => ignored |= 1 << index,
                _ => caught |= 1 << index,
            }
        }
        (ignored, caught)
    });
    let umask = process.umask();
    let credentials = process.state.lock().credentials.clone();
    let descriptor_limit = process.descriptors.with(|table| table.capacity());
    let shown = super::process_files::shown_thread(caller, process);
    let (blocked, pending) = shown.map_or((0, 0), |thread| {
        let state = thread.state.lock();
        (state.signal_mask, state.pending.set())
    });
    let groups: String = credentials.groups.iter().map(|group| format!("{group} ")).collect();
    let (virtual_kib, resident_kib, data_kib, stack_kib) = {
        let held = process.memory();
        let memory = held.space.lock();
        let (mut virtual_bytes, mut resident_pages, mut data_bytes, mut stack_bytes) = (0, 0, 0, 0);
        for (start, area) in memory.areas() {
            let size = area.end - start;
            virtual_bytes += size;
            match area.kind {
                AreaKind::Stack => stack_bytes += size,
                AreaKind::Heap | AreaKind::Anonymous if area.rights.write => data_bytes += size,
                _ => {}
            }
            resident_pages += memory.tables().count_mapped(start, area.end);
        }
        (virtual_bytes / 1024, resident_pages * 4, data_bytes / 1024, stack_bytes / 1024)
    };
    let cpus = caller.machine.cpu_count().max(1);
    let cpu_list = if cpus == 1 { String::from("0") } else { format!("0-{}", cpus - 1) };
    let cpu_mask = format!("{:x}", (1u128 << cpus) - 1);
    let capabilities = credentials.capabilities;
    let (pid, parent, group, session) =
        (process.pid, process.parent_id(), process.group_id(), process.session_id());
    let tracer = crate::ptrace::tracer_of(process.pid);
    let state = match super::process_files::state_letter(caller, process) {
        'Z' => "Z (zombie)",
        'T' => "T (stopped)",
        't' => "t (tracing stop)",
        'R' => "R (running)",
        _ => "S (sleeping)",
    };
    format!(
        "Name:\t{name}\nUmask:\t{umask:04o}\nState:\t{state}\nTgid:\t{pid}\nNgid:\t0\n\
         Pid:\t{pid}\nPPid:\t{parent}\nTracerPid:\t{tracer}\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\n\
         FDSize:\t{descriptor_limit}\nGroups:\t{groups}\nNStgid:\t{pid}\nNSpid:\t{pid}\n\
         NSpgid:\t{group}\nNSsid:\t{session}\nVmPeak:\t{virtual_kib:8} kB\nVmSize:\t{virtual_kib:8} kB\n\
         VmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t{resident_kib:8} kB\nVmRSS:\t{resident_kib:8} kB\n\
         VmData:\t{data_kib:8} kB\nVmStk:\t{stack_kib:8} kB\nVmSwap:\t       0 kB\nThreads:\t{}\n\
         SigQ:\t0/4096\nSigPnd:\t{pending:016x}\nShdPnd:\t0000000000000000\nSigBlk:\t{blocked:016x}\n\
         SigIgn:\t{ignored:016x}\nSigCgt:\t{caught:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\n\
         CapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\nNoNewPrivs:\t{}\nSeccomp:\t0\n\
         Seccomp_filters:\t0\nCpus_allowed:\t{cpu_mask}\nCpus_allowed_list:\t{cpu_list}\n\
         Mems_allowed:\t1\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\n\
         nonvoluntary_ctxt_switches:\t0\n",
        credentials.real_user,
        credentials.effective_user,
        credentials.saved_user,
        credentials.filesystem_user,
        credentials.real_group,
        credentials.effective_group,
        credentials.saved_group,
        credentials.filesystem_group,
        process.thread_count(),
        capabilities.inheritable,
        capabilities.permitted,
        capabilities.effective,
        capabilities.bounding,
        capabilities.ambient,
        u8::from(credentials.has_no_new_privileges),
    )
}

/// `/proc/mounts`: one line per mount.
pub fn mounts(caller: &Caller<'_>, process: &Process) -> String {
    let mut text = String::new();
    for mount in process.vfs().mounts() {
        let path = process.vfs().path_of(caller, &Location::root_of(&mount)).unwrap_or_default();
        let _ = writeln!(text, "{} {path} {} {} 0 0", mount.source(), mount.type_name(), mount.options());
    }
    text
}

/// `/proc/cpuinfo`: one paragraph per processor.
pub fn cpuinfo(caller: &Caller<'_>) -> String {
    crate::processor::description().cpuinfo(caller.machine.cpu_count())
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

/// `/proc/vmstat`: Linux's memory counters, each a name and a number, as
/// `vmstat` and `free` read them: the free pages, and 0 for the counters
/// rosv does not keep (it has no swap, and no page lists by age).
pub fn vmstat() -> String {
    let figures = crate::pages::figures();
    let free_pages = figures.free_bytes / 4096;
    let mut text = format!("nr_free_pages {free_pages}\n");
    for name in [
        "nr_inactive_anon",
        "nr_active_anon",
        "nr_inactive_file",
        "nr_active_file",
        "nr_unevictable",
        "nr_mlock",
        "nr_anon_pages",
        "nr_mapped",
        "nr_file_pages",
        "nr_dirty",
        "nr_writeback",
        "nr_shmem",
        "pgpgin",
        "pgpgout",
        "pswpin",
        "pswpout",
        "pgfault",
        "pgmajfault",
    ] {
        let _ = writeln!(text, "{name} 0");
    }
    text
}

/// `/proc/uptime`: seconds since boot, and idle seconds (not measured).
pub fn uptime(caller: &Caller<'_>) -> String {
    let centiseconds = caller.machine.monotonic_ns() / 10_000_000;
    format!("{}.{:02} 0.00\n", centiseconds / 100, centiseconds % 100)
}

/// Clock ticks per second in `/proc` files (`USER_HZ`).
const USER_HZ: u64 = 100;

/// `/proc/stat`: a line per processor (libuv's `os.cpus()` counts them,
/// top computes its percentages from them) with its user, system and idle
/// time in clock ticks (no nice, I/O-wait, interrupt or steal time is told
/// apart), the sum of them first, and the boot time.
pub fn stat(caller: &Caller<'_>) -> String {
    let ticks = |ns: u64| ns / (1_000_000_000 / USER_HZ);
    let count = caller.machine.cpu_count();
    let uptime_ns = caller.machine.monotonic_ns();
    let boot_seconds = caller.machine.realtime_ns().saturating_sub(uptime_ns) / 1_000_000_000;
    let processors: alloc::vec::Vec<_> = (0..count).map(|cpu| caller.machine.processor_times(cpu)).collect();
    let line = |text: &mut String, name: &str, user: u64, system: u64, idle: u64| {
        let _ = writeln!(text, "{name} {user} 0 {system} {idle} 0 0 0 0 0 0");
    };
    let mut text = String::new();
    let sum = |field: fn(&crate::machine::ProcessorTimes) -> u64| {
        processors.iter().map(|times| ticks(field(times))).sum()
    };
    line(
        &mut text,
        "cpu ",
        sum(|times| times.user_ns),
        sum(|times| times.system_ns),
        sum(|times| times.idle_ns),
    );
    for (processor, times) in processors.iter().enumerate() {
        line(
            &mut text,
            &alloc::format!("cpu{processor}"),
            ticks(times.user_ns),
            ticks(times.system_ns),
            ticks(times.idle_ns),
        );
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
    let newest = crate::process::all().last().map_or(PROCESS_ID, |process| process.pid);
    format!("0.00 0.00 0.00 1/{threads} {newest}\n")
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

/// `/proc/version`.
pub fn version() -> String {
    let [_, node, release, version, ..] = crate::linux::UTSNAME;
    format!("Linux version {release} ({node}) {version}\n")
}

/// `/proc/filesystems`: the types `mount` knows; `nodev` marks those that
/// need no device.
pub fn filesystems() -> String {
    let mut text = String::new();
    for (name, is_virtual) in crate::fs::TYPES {
        let _ = writeln!(text, "{}\t{name}", if is_virtual { "nodev" } else { "" });
    }
    text
}

/// `/proc/swaps`: no swap.
pub fn swaps() -> String {
    String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
}

/// What the kernel has, in Linux's configuration names: what programs
/// look for in `/proc/config.gz` to decide which features to use. Options
/// the kernel lacks are stated as not set.
const CONFIGURATION: &str = "\
# rosv: the Linux interfaces this kernel offers, in Linux's option names
CONFIG_64BIT=y
CONFIG_X86_64=y
CONFIG_SMP=y
CONFIG_MMU=y
CONFIG_MULTIUSER=y
CONFIG_FUTEX=y
# CONFIG_FUTEX_PI is not set
CONFIG_EPOLL=y
# CONFIG_SIGNALFD is not set
# CONFIG_TIMERFD is not set
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_MEMFD_CREATE=y
CONFIG_SYSVIPC=y
# CONFIG_POSIX_TIMERS is not set
# CONFIG_AIO is not set
# CONFIG_IO_URING is not set
CONFIG_INOTIFY_USER=y
# CONFIG_FANOTIFY is not set
CONFIG_FILE_LOCKING=y
CONFIG_FHANDLE=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_TMPFS_XATTR=y
CONFIG_DEVTMPFS=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_CGROUP_SCHED=y
CONFIG_CPUSETS=y
CONFIG_CGROUP_PIDS=y
# CONFIG_USER_NS is not set
# CONFIG_PID_NS is not set
# CONFIG_NET_NS is not set
# CONFIG_SECCOMP is not set
# CONFIG_BPF_SYSCALL is not set
# CONFIG_MODULES is not set
# CONFIG_SWAP is not set
# CONFIG_QUOTA is not set
# CONFIG_KEYS is not set
# CONFIG_AUDIT is not set
# CONFIG_SECURITY is not set
CONFIG_NET=y
CONFIG_INET=y
# CONFIG_IPV6 is not set
CONFIG_UNIX=y
# CONFIG_PACKET is not set
CONFIG_VIRTIO=y
CONFIG_VIRTIO_BLK=y
CONFIG_BLK_DEV=y
CONFIG_BLK_DEV_LOOP=y
CONFIG_BLK_DEV_LOOP_MIN_COUNT=8
# CONFIG_EXT2_FS is not set
CONFIG_EXT3_FS=y
CONFIG_EXT4_FS=y
CONFIG_EXT4_USE_FOR_EXT2=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_CONSOLE=y
CONFIG_HW_RANDOM_VIRTIO=y
CONFIG_HZ=100
";

/// `/proc/config.gz`: [`CONFIGURATION`], gzip-compressed with stored
/// (uncompressed) deflate blocks, which every gzip reader accepts (RFC
/// 1951 §3.2.4, RFC 1952).
pub fn configuration_gzip() -> alloc::vec::Vec<u8> {
    let data = CONFIGURATION.as_bytes();
    let mut bytes = alloc::vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        bytes.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        bytes.push(u8::from(blocks.peek().is_none()));
        let length = block.len() as u16;
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(&(!length).to_le_bytes());
        bytes.extend_from_slice(block);
    }
    bytes.extend_from_slice(&crc32(data).to_le_bytes());
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes
}

/// The CRC-32 gzip's trailer carries (polynomial 0xedb88320, reflected).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
