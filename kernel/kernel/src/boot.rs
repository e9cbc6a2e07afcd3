//! The boot sequence, from the boot loader's handoff to power-off.
//!
//! Each step is one line below, in the order the bootchart shows them.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use rosv_abi::boot_config::{self, BootConfig, BootConfigError};
use rosv_abi::exit::{RECORD_OPTION, status};
use rosv_cmdline::{CommandLine, Mount, Options, RootFilesystem, SelfTest};
use rosv_core::device::{BlockDevice, MemoryDisk};
use rosv_core::fs::procfs::SystemInformation;
use rosv_core::fs::{MountError, Root};
use rosv_core::net::{Network, NetworkDevice, Settings};
use rosv_core::vfs::{Caller, Vfs};
use rosv_platform::boot::{BootHandoff, BootInfo};
use rosv_platform::console::{self, Console};
use rosv_platform::memory;
use rosv_platform::power::{self, ShutdownPolicy};
use rosv_platform::{apic, cpu, firmware, ioapic, sched, smp, time};

use crate::application::{self, Launch};
use crate::bootchart::{Bootchart, milliseconds};
use crate::devices::{self, Discovery};
use crate::machine::PlatformMachine;

rosv_platform::kernel_entry!(main);

fn main(handoff: BootHandoff) -> ! {
    let mut chart = Bootchart::new(handoff.entry_tsc);
    console::init();
    let info = match BootInfo::read(&handoff) {
        Ok(info) => info,
        Err(error) => {
            let _ = writeln!(Console, "rosv: cannot read the boot information: {error}");
            power::abort(status::KERNEL_FAILURE)
        }
    };
    chart.mark("boot information read");
    let kernel = rosv_platform::layout::kernel_physical_range();
    if let Some(initrd) =
        info.initrd.filter(|initrd| initrd.start < kernel.end() && kernel.start < initrd.end())
    {
        // The loader put the initrd where the kernel's zeroed data lies (in
        // little RAM, QEMU places it below the top less its own tables).
        let _ = writeln!(
            Console,
            "rosv: the initrd ({:#x}-{:#x}) overlaps the kernel ({:#x}-{:#x}): the VM has too little memory",
            initrd.start,
            initrd.end(),
            kernel.start,
            kernel.end()
        );
        power::abort(status::KERNEL_FAILURE)
    }

    let features = cpu::features();
    rosv_platform::init_boot_cpu();
    chart.mark("CPU initialized");

    if let Err(error) = memory::init(&info) {
        fail(&alloc::format!("cannot set up memory: {error:?}"));
    }
    rosv_core::pages::install(&crate::machine::PlatformFrames);
    chart.mark("memory initialized");

    let command_line = parse_command_line(info.command_line());
    let options = &command_line.options;
    let boot_config = match read_boot_config(&info) {
        Ok(config) => config,
        Err(error) => usage_error(&alloc::format!("the initrd's boot configuration: {error}")),
    };
    let mut commands: Vec<Vec<String>> = command_line
        .commands
        .iter()
        .map(|command| command.argv.clone())
        .chain(
            boot_config
                .iter()
                .flat_map(|config| &config.commands)
                .map(|argv| argv.iter().map(|argument| String::from(*argument)).collect()),
        )
        .collect();
    if commands.is_empty() {
        usage_error("no command to run: give the program and its arguments after the options");
    }
    let uses_xsave = features.has_xsave && !options.no_xsave;
    cpu::init_extended_state(&features, uses_xsave);
    chart.mark("command line parsed");

    let (clock, tsc_hz) = time::init(handoff.entry_tsc);
    log::debug!("clock: {clock:?}, TSC at {} kHz", tsc_hz / 1000);
    rosv_core::processor::install(rosv_core::processor::Source {
        cpuid: cpu::cpuid,
        xsave_enabled: uses_xsave,
        avx_enabled: uses_xsave && features.has_avx,
        tsc_hz,
    });
    chart.mark("clock calibrated");

    let rsdp = firmware::boot_rsdp(&info);
    let hypervisor = firmware::hypervisor(rsdp.as_ref());
    if let Some(soft_off) = rsdp.as_ref().and_then(firmware::soft_off) {
        log::debug!("ACPI soft off: {soft_off:?}");
        power::configure_soft_off(soft_off);
    }
    log::debug!("boot protocol {:?}, hypervisor {hypervisor:?}, ACPI {}", info.protocol, rsdp.is_some());
    let (topology, source) = firmware::interrupt_topology(rsdp.as_ref());
    log::debug!(
        "{} processors listed ({source:?}), {} I/O APICs",
        topology.processors.len(),
        topology.io_apics.len()
    );
    chart.mark("platform discovered");

    if !apic::init_bootstrap(&features, topology.local_apic_address) {
        fail("cannot map the local APIC");
    }
    ioapic::init(&topology.io_apics, &topology.overrides);
    sched::init_fpu(uses_xsave);
    let usable = topology.processors.iter().filter(|processor| processor.is_usable).count();
    sched::init_bootstrap(usable.max(1), apic::id());
    application::init(PlatformMachine { hardware_capabilities: u64::from(features.hwcap) });
    chart.mark("interrupts initialized");

    let cpus = smp::start_application_processors(&topology.processors, uses_xsave);
    log::debug!(
        "{cpus} processors running, {} timer",
        if apic::has_tsc_deadline() { "TSC-deadline" } else { "one-shot" }
    );
    chart.mark("SMP launched");

    let dsdt = rsdp.as_ref().and_then(firmware::dsdt);
    let discovery = Discovery {
        command_line_mmio: &command_line.mmio_devices,
        dsdt,
        // Firecracker appends Linux's `pci=off` when the VM has no PCI bus:
        // probing it anyway costs a VM exit per configuration access.
        scans_pci: !options.no_pci && !command_line.ignored.iter().any(|token| token == "pci=off"),
        low_ram_end: low_ram_end(&info),
    };
    let devices = devices::start(&discovery, &mut chart);
    if let Some(entropy) = &devices.entropy {
        application::add_boot_entropy(entropy);
    }
    chart.mark("devices started");

    let initrd_is_boot_config = info.initrd_bytes().is_some_and(boot_config::is_boot_config);
    let vfs = mount_file_systems(&info, initrd_is_boot_config, options.rootfs, &devices.block_devices());
    for channel in devices.message_channels() {
        vfs.add_channel(channel);
    }
    mount_more_file_systems(&vfs, &options.mounts);
    chart.mark("VFS mounted");
    let network = start_network(&devices, options);
    start_vsock(&devices, options, &network);
    write_resolver_configuration(&vfs, &network);
    chart.mark("network configured");
    mount_network_file_systems(&vfs, &network, &options.mounts);
    let streams = crate::streams::connect(&devices.consoles, options, &vfs);
    let cloud = crate::cloud_init::apply(&devices.block_devices(), &vfs);
    commands.splice(0..0, cloud.commands);
    chart.mark("cloud-init applied");

    let environment: Vec<Vec<u8>> = options
        .environment
        .iter()
        .map(|(name, value)| alloc::format!("{name}={value}").into_bytes())
        .chain(
            boot_config.iter().flat_map(|config| &config.environment).map(|entry| entry.as_bytes().to_vec()),
        )
        .chain(cloud.environment)
        .collect();
    let passwd = || vfs.read_file(&Caller::kernel(application::machine()), "/etc/passwd").ok();
    let uid = options.user.map_or(0, |(user, _)| user);
    let environment = rosv_core::loader::environment::prepare(environment, uid, passwd);
    let working_directory = options.cwd.clone().unwrap_or_else(|| String::from("/"));
    check_working_directory(&vfs, &working_directory);
    if let Some(test) = options.self_test {
        run_self_test(test);
    }
    // Everything the boot read from low memory (the loader's structures,
    // firmware tables) has been read: its RAM is free for the rest.
    memory::add_low_memory(&info);
    let mut exit_status = 0;
    let mut is_first = true;
    for argv in &commands {
        let launch = Launch {
            vfs: &vfs,
            network: &network,
            arguments: argv,
            environment: &environment,
            working_directory: &working_directory,
            streams: streams.as_deref(),
            user: options.user,
        };
        let ended = application::run(&launch, || {
            if is_first {
                chart.mark("main");
                report_boot(&chart, options);
                firmware::signal_boot_complete(hypervisor);
            }
        });
        is_first = false;
        match ended {
            Ok(status) => exit_status = status,
            Err(status) => {
                // A command that could not start ends the sequence.
                exit_status = status;
                break;
            }
        }
    }
    if let Some(streams) = &streams
        && !streams.flush(application::machine(), OUTPUT_FLUSH_TIMEOUT_NS)
    {
        log::warn!("the host took no output for {} s; some is lost", OUTPUT_FLUSH_TIMEOUT_NS / 1_000_000_000);
    }
    // Disk filesystems write out what they hold and are left clean.
    vfs.unmount_all(rosv_core::machine::Machine::realtime_ns(application::machine()));
    if options.no_shutdown {
        log::info!("all commands ended; staying up (--noshutdown)");
        power::halt_forever();
    }
    power::power_off(exit_status)
}

/// How long the end waits for the host to take the application's last
/// output.
const OUTPUT_FLUSH_TIMEOUT_NS: u64 = 30_000_000_000;

/// Parses the command line; a malformed one ends the machine with a usage
/// status (and the exit record, if the line asked for one).
fn parse_command_line(text: &str) -> CommandLine {
    match CommandLine::parse(text) {
        Ok(line) => {
            configure_output(&line.options);
            if line.commands.iter().any(|command| command.is_background) {
                usage_error("background commands (&) are not supported yet");
            }
            line
        }
        Err(error) => {
            let wants_record = text.split_whitespace().any(|token| token == RECORD_OPTION);
            power::configure(ShutdownPolicy { prints_exit_record: wants_record, halts_on_abort: false });
            usage_error(&alloc::format!("{error}"))
        }
    }
}

fn configure_output(options: &Options) {
    let level = match (options.verbose, options.trace || options.net_activity) {
        (true, _) => log::LevelFilter::Debug,
        (false, true) => log::LevelFilter::Info,
        (false, false) => log::LevelFilter::Warn,
    };
    rosv_core::syscall::set_tracing(options.trace);
    console::init_logger(level);
    power::configure(ShutdownPolicy {
        prints_exit_record: options.exit_record,
        halts_on_abort: options.no_shutdown && !options.power_off_on_abort,
    });
}

fn usage_error(message: &str) -> ! {
    let _ = writeln!(Console, "rosv: bad command line: {message}");
    power::power_off(status::USAGE)
}

/// Fails on purpose as `test` says; the failure's report ends the VM.
fn run_self_test(test: SelfTest) -> ! {
    match test {
        SelfTest::StackOverflow => {
            log::warn!("self-test: a kernel thread recurses until its stack ends");
            if sched::spawn_kernel("stack-overflow", || {
                core::hint::black_box(recurse(0));
            })
            .is_none()
            {
                fail("self-test: no memory for the thread");
            }
        }
    }
    loop {
        sched::park();
    }
}

/// Calls itself with a page of stack each time; the stack ends long before
/// `depth` wraps.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut page = [0u8; 4096];
    core::hint::black_box(&mut page);
    page[(depth % 4096) as usize] = depth as u8;
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + u64::from(core::hint::black_box(page)[0])
}

/// One past the highest usable RAM address below 4 GiB.
fn low_ram_end(info: &BootInfo) -> u64 {
    info.memory_map
        .regions()
        .iter()
        .filter(|region| region.kind == rosv_abi::memory::MemoryKind::Usable)
        .map(|region| region.end().min(1 << 32))
        .max()
        .unwrap_or(0)
}

/// The boot configuration (commands and environment) the loader gave as a
/// module of its own, or the initrd holds rather than a ROFS image. Its
/// commands run after those of the command line, and its environment
/// follows the command line's.
fn read_boot_config(info: &BootInfo) -> Result<Option<BootConfig<'static>>, BootConfigError> {
    match info.boot_config_bytes().or_else(|| info.initrd_bytes()) {
        Some(bytes) if boot_config::is_boot_config(bytes) => BootConfig::parse(bytes).map(Some),
        _ => Ok(None),
    }
}

/// Builds the filesystem tree. `/` is a ROFS image (the initrd if the
/// loader gave one that is not a boot configuration, else the first disk,
/// `vda`), under an overlay that takes changes unless `--rootfs=rofs`
/// keeps it read-only, or an empty ramfs: `--rootfs` chooses; without it a
/// ROFS image is used, under the overlay, where one is found.
/// devfs at `/dev` holds the disks as `/dev/vda`, `/dev/vdb`, ...; procfs
/// is at `/proc`, ramfs at `/tmp`.
fn mount_file_systems(
    info: &BootInfo,
    initrd_is_boot_config: bool,
    rootfs: Option<RootFilesystem>,
    disks: &[Arc<dyn BlockDevice>],
) -> Arc<Vfs> {
    let initrd: Option<Arc<dyn BlockDevice>> = match (info.initrd, info.initrd_bytes()) {
        (None, _) => None,
        (Some(_), _) if initrd_is_boot_config => None,
        (Some(_), None) => fail("the initrd lies outside RAM"),
        (Some(_), Some(bytes)) => Some(Arc::new(MemoryDisk::read_only(bytes))),
    };
    let (root_image, root_name) = match (rootfs, initrd) {
        (Some(RootFilesystem::Ramfs), _) => (None, "ramfs"),
        (_, Some(initrd)) => (Some(initrd), "the initrd"),
        (Some(chosen @ (RootFilesystem::Rofs | RootFilesystem::Overlay)), None) => match disks.first() {
            Some(disk) => (Some(disk.clone()), "vda"),
            None => {
                let name = if chosen == RootFilesystem::Rofs { "rofs" } else { "overlay" };
                fail(&alloc::format!("--rootfs={name}: the machine has no initrd and no disk to mount as /"))
            }
        },
        (None, None) => match disks.first() {
            Some(disk) if first_word(disk.as_ref()) == Some(rosv_abi::rofs::MAGIC) => {
                (Some(disk.clone()), "vda")
            }
            Some(disk) => {
                log::warn!("{}; / is an empty ramfs", not_rofs("vda", first_word(disk.as_ref())));
                (None, "ramfs")
            }
            None => (None, "ramfs"),
        },
    };
    // A root disk that is not ROFS at all is named as such, before the
    // reader's more general complaint about its superblock.
    if let Some(image) = &root_image {
        let magic = first_word(image.as_ref());
        if magic != Some(rosv_abi::rofs::MAGIC) {
            fail(&not_rofs(root_name, magic));
        }
    }
    let root = match (root_image, rootfs) {
        (None, _) => Root::Ramfs,
        (Some(image), Some(RootFilesystem::Rofs)) => Root::Rofs(image),
        (Some(image), _) => Root::Overlay(image),
    };
    let system = SystemInformation { memory_total_bytes: info.memory_map.usable_bytes() };
    match rosv_core::fs::standard_tree(application::machine(), root, disks, system) {
        Ok(vfs) => vfs,
        Err(MountError::Image(error)) => {
            fail(&alloc::format!("the root disk ({root_name}) is a damaged ROFS image: {error}"))
        }
        Err(error) => fail(&alloc::format!("cannot build the filesystem tree: {error}")),
    }
}

/// Says that the root disk `name`, whose first word is `magic`, holds no
/// ROFS image.
fn not_rofs(name: &str, magic: Option<u64>) -> alloc::string::String {
    match magic {
        Some(magic) => alloc::format!(
            "the root disk ({name}) is not a ROFS image (bad magic {magic:#x}, expected {:#x})",
            rosv_abi::rofs::MAGIC
        ),
        None => {
            alloc::format!("the root disk ({name}) is not a ROFS image (its first sector cannot be read)")
        }
    }
}

/// How long the boot waits for a DHCP server to answer.
const DHCP_TIMEOUT_NS: u64 = 5_000_000_000;

/// Sets up the network over the first card (or the loop alone) and starts
/// its thread; without `--ip`, waits for DHCP to give an address.
fn start_network(devices: &devices::Devices, options: &Options) -> Arc<Network> {
    let cards = &devices.network_cards;
    if cards.len() > 1 {
        log::warn!("only eth0 is used; {} more network cards stay idle", cards.len() - 1);
    }
    for address in &options.addresses {
        if address.interface != "eth0" || cards.is_empty() {
            log::warn!("--ip: there is no interface {}", address.interface);
        }
    }
    let card =
        cards.first().map(|card| Arc::new(devices::VirtioCard(card.clone())) as Arc<dyn NetworkDevice>);
    let address = options.addresses.iter().find(|address| address.interface == "eth0");
    let settings = Settings {
        address: address.map(|address| (address.address, address.prefix_length)),
        gateway: options.default_gateway,
        nameservers: options.nameservers.clone(),
        reports_activity: options.net_activity,
    };
    let machine = application::machine();
    let mut seed = [0u8; 8];
    rosv_core::random::Random::seeded(machine).fill(&mut seed);
    let network = Network::new(card, &settings, u64::from_le_bytes(seed), time::since_boot_ns());
    devices::NETWORK.call_once(|| network.clone());
    let worker = network.clone();
    if sched::spawn_kernel("network", move || worker.run_worker(application::machine())).is_none() {
        fail("out of memory: no room for the network thread");
    }
    if network.has_card() {
        if settings.address.is_none() && network.wait_for_address(machine, DHCP_TIMEOUT_NS).address.is_none()
        {
            log::warn!("eth0: no DHCP server answered within 5 s; going on without an address");
        }
        log::info!("{}", network.describe());
    }
    network
}

/// Starts the vsock transport over the first socket device, its thread,
/// and a forwarding thread for each `--vsock-forward` and `--vsock-listen`.
fn start_vsock(devices: &devices::Devices, options: &Options, network: &Arc<Network>) {
    use rosv_core::net::vsock::{self, Vsock};
    let Some(device) = &devices.vsock else {
        if !options.vsock_forwards.is_empty() || !options.vsock_listens.is_empty() {
            log::warn!("--vsock-forward, --vsock-listen: the machine has no vsock device");
        }
        return;
    };
    let machine = application::machine();
    let mut seed = [0u8; 4];
    rosv_core::random::Random::seeded(machine).fill(&mut seed);
    let transport =
        Vsock::new(Arc::new(devices::VirtioSocketDevice(device.clone())), u32::from_le_bytes(seed));
    vsock::install(transport.clone());
    let worker = transport.clone();
    if sched::spawn_kernel("vsock", move || worker.run_worker(application::machine())).is_none() {
        fail("out of memory: no room for the vsock thread");
    }
    for &(vsock_port, tcp_port) in &options.vsock_forwards {
        let (transport, network) = (transport.clone(), network.clone());
        let spawned = sched::spawn_kernel("vsock forward", move || {
            let error =
                vsock::forward::run(&transport, &network, application::machine(), vsock_port, tcp_port);
            log::warn!("--vsock-forward={vsock_port}:{tcp_port}: {error:?}");
        });
        if spawned.is_none() {
            fail("out of memory: no room for a vsock forwarding thread");
        }
    }
    for &listen in &options.vsock_listens {
        let listener = match vsock::forward::listen(network, machine, listen.tcp_port) {
            Ok(listener) => listener,
            Err(error) => {
                log::warn!(
                    "--vsock-listen={}:{}:{}: {error:?}",
                    listen.tcp_port,
                    listen.cid,
                    listen.vsock_port
                );
                continue;
            }
        };
        let transport = transport.clone();
        let peer = vsock::VsockAddress { cid: listen.cid, port: listen.vsock_port };
        let spawned = sched::spawn_kernel("vsock listen", move || {
            vsock::forward::run_listen(&transport, application::machine(), listener, peer)
        });
        if spawned.is_none() {
            fail("out of memory: no room for a vsock forwarding thread");
        }
    }
}

/// Where the resolver's configuration goes; images link
/// `/etc/resolv.conf` here.
const RESOLVER_CONFIGURATION: &str = "/run/resolv.conf";

/// Writes the DNS servers `--nameserver` or DHCP gave for the C library's
/// resolver.
fn write_resolver_configuration(vfs: &Vfs, network: &Network) {
    let caller = Caller::kernel(application::machine());
    let flags = rosv_core::vfs::file::flags::O_WRONLY
        | rosv_core::vfs::file::flags::O_CREAT
        | rosv_core::vfs::file::flags::O_TRUNC;
    let text = network.resolver_configuration();
    let written = vfs
        .open(&caller, &vfs.root(), RESOLVER_CONFIGURATION, flags, 0o644)
        .and_then(|file| file.write(&caller, text.as_bytes()));
    if let Err(error) = written {
        log::warn!("cannot write {RESOLVER_CONFIGURATION}: {error:?}");
    }
}

/// Mounts what `--mount-fs` asks for, in order; a mount that fails ends the
/// machine with the reason.
fn mount_more_file_systems(vfs: &Vfs, mounts: &[Mount]) {
    let caller = Caller::kernel(application::machine());
    // NFS exports wait for the network.
    for mount in mounts.iter().filter(|mount| mount.filesystem != "nfs") {
        if mount.filesystem == "9p" {
            mount_share(vfs, &caller, mount);
            continue;
        }
        if let Err(error) =
            rosv_core::fs::mount_by_type(vfs, &caller, &mount.filesystem, &mount.source, &mount.path)
        {
            fail(&alloc::format!("--mount-fs={},{},{}: {error}", mount.filesystem, mount.source, mount.path));
        }
    }
}

/// Mounts the shared host directory `--mount-fs=9p,TAG,/path[,options]`
/// asks for; a mount that fails ends the machine with the reason.
fn mount_share(vfs: &Vfs, caller: &Caller<'_>, mount: &Mount) {
    let (path, options) = mount.path.split_once(',').unwrap_or((&mount.path, ""));
    let mounted = rosv_core::fs::p9::mount_tag(vfs, caller, &mount.source, options)
        .map_err(|error| alloc::format!("{error}"))
        .and_then(|filesystem| {
            vfs.mount(caller, path, filesystem, &mount.source)
                .map_err(|error| alloc::format!("{path}: {error}"))
        });
    if let Err(error) = mounted {
        fail(&alloc::format!("--mount-fs=9p,{},{}: {error}", mount.source, mount.path));
    }
}

/// Mounts the NFS exports `--mount-fs=nfs,ADDRESS:/export,/path[,options]`
/// asks for; a mount that fails ends the machine with the reason.
fn mount_network_file_systems(vfs: &Vfs, network: &Arc<Network>, mounts: &[Mount]) {
    let machine = application::machine();
    let caller = Caller::kernel(machine);
    for mount in mounts.iter().filter(|mount| mount.filesystem == "nfs") {
        let (path, options) = mount.path.split_once(',').unwrap_or((&mount.path, ""));
        let mounted = rosv_core::fs::nfs::mount(network, machine, &caller, &mount.source, options)
            .map_err(|error| alloc::format!("{error}"))
            .and_then(|filesystem| {
                vfs.mount(&caller, path, filesystem, &mount.source)
                    .map_err(|error| alloc::format!("{path}: {error}"))
            });
        if let Err(error) = mounted {
            fail(&alloc::format!("--mount-fs=nfs,{},{}: {error}", mount.source, mount.path));
        }
    }
}

/// The first 64-bit word of the disk, where a ROFS image has its magic
/// number; `None` if it cannot be read.
fn first_word(disk: &dyn BlockDevice) -> Option<u64> {
    let mut first = [0u8; rosv_core::device::SECTOR_SIZE];
    disk.read_sectors(0, &mut first).ok()?;
    let mut word = [0u8; 8];
    word.copy_from_slice(&first[..8]);
    Some(u64::from_le_bytes(word))
}

/// Ends the machine with a usage error if `--cwd` names no directory.
fn check_working_directory(vfs: &Vfs, path: &str) {
    let caller = Caller::kernel(application::machine());
    let is_directory =
        vfs.resolve(&caller, &vfs.root(), path, true).is_ok_and(|location| location.is_directory());
    if !is_directory || !path.starts_with('/') {
        usage_error(&alloc::format!("--cwd={path}: not an absolute path to a directory"));
    }
}

/// Prints the bootchart, or the boot time when asked for (the function
/// host waits for that line).
fn report_boot(chart: &Bootchart, options: &Options) {
    if options.bootchart {
        chart.print();
    } else if options.report_boot || options.verbose {
        let _ = writeln!(Console, "Booted in {} ms", milliseconds(chart.total_ns()));
    }
}

fn fail(message: &str) -> ! {
    let _ = writeln!(Console, "rosv: {message}");
    power::abort(status::KERNEL_FAILURE)
}
