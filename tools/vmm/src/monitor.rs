//! Setting up the VM, running its vCPU threads, and waiting for its end.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Cap, Kvm};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use rosv_abi::pvh::Module;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::boot::{self, BootParameters, VirtioMmioWindow};
use crate::control::{self, Control};
use crate::devices::{COM1_IRQ, Devices, InterruptLine};
use crate::host::kvm::Vm;
use crate::host::tap::Tap;
use crate::virtio_block::VirtioBlock;
use crate::virtio_mmio;
use crate::virtio_net::VirtioNet;
use crate::virtio_vsock::VirtioVsock;
use crate::{BootSpec, Ending, VmmError, cpuid, layout, vcpu};

/// How long the vCPUs get to print their NMI reports at the time limit.
const REPORT_GRACE: Duration = Duration::from_secs(3);
/// How long stopping may take before the threads are left behind.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// The largest VM the MP table (8-bit APIC ids) describes.
const CPUS_MAX: u32 = 255;

/// Boots `spec`, with the serial console's output going to `console`, and
/// returns how the VM ended.
pub fn run(spec: &BootSpec, console: Box<dyn Write + Send>) -> Result<Ending, VmmError> {
    run_with_input(spec, console, None)
}

/// Boots `spec` like [`run`], with what `input` yields going to the serial
/// console's receiver, as fast as the guest takes it.
pub fn run_with_input(
    spec: &BootSpec,
    console: Box<dyn Write + Send>,
    input: Option<Box<dyn Read + Send>>,
) -> Result<Ending, VmmError> {
    if !(1..=CPUS_MAX).contains(&spec.cpus) {
        return Err(VmmError::TooManyCpus(spec.cpus));
    }
    let virtio_devices =
        spec.disks.len() + usize::from(spec.network.is_some()) + usize::from(spec.vsock.is_some());
    if virtio_devices > layout::VIRTIO_DEVICES_MAX {
        return Err(VmmError::TooManyDisks(spec.disks.len()));
    }
    let kvm = open_kvm(KVM_DEVICE)?;
    let memory_bytes = spec.memory_mib << 20;
    let ranges: Vec<(GuestAddress, usize)> = layout::ram_ranges(memory_bytes)
        .into_iter()
        .map(|(start, size)| (GuestAddress(start), size as usize))
        .collect();
    let memory = GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|error| VmmError::Memory { memory_mib: spec.memory_mib, reason: error.to_string() })?;
    let vm = Vm::new(&kvm, memory).map_err(kvm_error("registering guest memory"))?;
    let vm_fd = vm.fd();
    // Needed on Intel processors to run the real-mode start of the other
    // vCPUs; harmless elsewhere.
    vm_fd.set_tss_address(layout::KVM_TSS_PADDR as usize).map_err(kvm_error("KVM_SET_TSS_ADDR"))?;
    vm_fd.create_irq_chip().map_err(kvm_error("KVM_CREATE_IRQCHIP"))?;
    let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
    vm_fd.create_pit2(pit).map_err(kvm_error("KVM_CREATE_PIT2"))?;

    let (entry, kernel_end) = load_kernel(vm.memory(), &spec.kernel)?;
    let initrd = match &spec.initrd {
        Some(path) => Some(load_initrd(vm.memory(), path, memory_bytes, kernel_end)?),
        None => None,
    };
    // The disks' windows first, then the network card's, then the socket
    // device's.
    let windows: Vec<VirtioMmioWindow> = (0..virtio_devices)
        .map(|index| VirtioMmioWindow {
            paddr: layout::VIRTIO_MMIO_BASE + index as u64 * virtio_mmio::WINDOW_SIZE,
            size_bytes: virtio_mmio::WINDOW_SIZE,
            irq: layout::VIRTIO_FIRST_GSI + index as u32,
        })
        .collect();
    let command_line = boot::command_line(&spec.command_line, &windows);
    let parameters = BootParameters {
        memory_bytes,
        cpus: spec.cpus as u8,
        command_line: &command_line,
        initrd,
        has_acpi: spec.has_acpi,
    };
    for piece in boot::boot_structures(&parameters)? {
        vm.memory().write_slice(&piece.bytes, GuestAddress(piece.paddr)).map_err(|error| {
            VmmError::Memory {
                memory_mib: spec.memory_mib,
                reason: format!("writing the boot structures: {error}"),
            }
        })?;
    }

    let serial_event = EventFd::new(EFD_NONBLOCK)
        .map_err(|cause| VmmError::Host { what: "create an eventfd for the serial interrupt", cause })?;
    vm_fd.register_irqfd(&serial_event, COM1_IRQ).map_err(kvm_error("KVM_IRQFD"))?;
    let mut devices = Devices::new(console, InterruptLine(serial_event));
    for (index, (path, window)) in spec.disks.iter().zip(&windows).enumerate() {
        let disk_error = |cause| VmmError::Disk { path: path.clone(), cause };
        let image = File::open(path).map_err(disk_error)?;
        let interrupt = EventFd::new(EFD_NONBLOCK)
            .map_err(|cause| VmmError::Host { what: "create an eventfd for a disk interrupt", cause })?;
        vm_fd.register_irqfd(&interrupt, window.irq).map_err(kvm_error("KVM_IRQFD"))?;
        let name = format!("vd{}", char::from(b'a' + index as u8));
        let device = VirtioBlock::new(image, &name, vm.memory_handle(), interrupt).map_err(disk_error)?;
        devices.add_block(window.paddr, device);
    }
    // Stops the receiving thread when dropped, after the vCPUs.
    let mut _receiver = None;
    let network_window = spec.network.as_ref().and_then(|_| windows.get(spec.disks.len()));
    if let (Some(card), Some(window)) = (&spec.network, network_window) {
        let tap_error = |cause| VmmError::Tap { name: card.tap.clone(), cause };
        let tap = Tap::open(&card.tap).map_err(tap_error)?;
        let interrupt = EventFd::new(EFD_NONBLOCK).map_err(|cause| VmmError::Host {
            what: "create an eventfd for the network card's interrupt",
            cause,
        })?;
        vm_fd.register_irqfd(&interrupt, window.irq).map_err(kvm_error("KVM_IRQFD"))?;
        let device = VirtioNet::new(card.mac_address, vm.memory_handle(), interrupt, Arc::new(tap))
            .map_err(|cause| VmmError::Host { what: "set up the network card", cause })?;
        _receiver =
            Some(device.start_receiving().map_err(|cause| VmmError::Host {
                what: "start the network card's receiving thread",
                cause,
            })?);
        devices.add_net(window.paddr, device);
    }
    // Stops the socket device's thread when dropped, after the vCPUs.
    let mut _vsock_worker = None;
    if let (Some(vsock), Some(window)) = (&spec.vsock, windows.last()) {
        let interrupt = EventFd::new(EFD_NONBLOCK).map_err(|cause| VmmError::Host {
            what: "create an eventfd for the vsock device's interrupt",
            cause,
        })?;
        vm_fd.register_irqfd(&interrupt, window.irq).map_err(kvm_error("KVM_IRQFD"))?;
        let vsock_error = |cause| VmmError::Vsock { path: vsock.uds_path.clone(), cause };
        let device = VirtioVsock::new(vsock.guest_cid, &vsock.uds_path, vm.memory_handle(), interrupt)
            .map_err(vsock_error)?;
        _vsock_worker = Some(device.start().map_err(vsock_error)?);
        devices.add_vsock(window.paddr, device);
    }
    let control = Arc::new(Control::new(devices, spec.cpus));
    if let Some(input) = input {
        let shared = control.clone();
        std::thread::Builder::new()
            .name("serial input".into())
            .spawn(move || feed_serial(input, &shared))
            .map_err(|cause| VmmError::Host { what: "start the serial input thread", cause })?;
    }

    let supported =
        kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(kvm_error("KVM_GET_SUPPORTED_CPUID"))?;
    let mut vcpus = Vec::new();
    for index in 0..spec.cpus {
        let mut vcpu = vm.create_vcpu(u64::from(index)).map_err(kvm_error("KVM_CREATE_VCPU"))?;
        let mut cpuid = supported.clone();
        cpuid::adjust(cpuid.as_mut_slice(), index, spec.cpus, spec.hides_software_kvm_gaps);
        vcpu.fd().set_cpuid2(&cpuid).map_err(kvm_error("KVM_SET_CPUID2"))?;
        if index == 0 {
            vcpu::enter_pvh(vcpu.fd(), entry).map_err(kvm_error("setting the boot registers"))?;
        }
        vcpus.push(vcpu);
    }

    control::install_kick_handler().map_err(|error| VmmError::Host {
        what: "install the vCPU kick signal handler",
        cause: error.into(),
    })?;
    let mut threads = Vec::new();
    for (index, vcpu) in vcpus.into_iter().enumerate() {
        let shared = control.clone();
        let index = index as u32;
        let thread = std::thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || vcpu::run(vcpu, index, &shared));
        match thread {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                stop(&control, threads);
                return Err(VmmError::Host { what: "start a vCPU thread", cause: error });
            }
        }
    }

    let ending = match wait_answering_dumps(&control, &threads, spec) {
        Some(ending) => ending,
        None => {
            // The kernel answers an NMI with a report of what each
            // processor runs; whatever the guest does meanwhile (it may
            // even fail without an NMI handler), the VM ran out of time.
            control.request_nmis();
            control::kick_until(&threads, REPORT_GRACE, || !control.has_pending_nmis());
            let _ = control.wait(Some(REPORT_GRACE));
            Ending::TimedOut
        }
    };
    control.finish(ending.clone());
    stop(&control, threads);
    Ok(ending)
}

/// How often a VM that may be asked for thread dumps looks for a request.
const DUMP_POLL: Duration = Duration::from_millis(50);

/// Waits until the VM ends or `spec`'s time limit passes (`None`), sending
/// every vCPU an NMI whenever its dump flag is set meanwhile.
fn wait_answering_dumps<T>(control: &Control, threads: &[JoinHandle<T>], spec: &BootSpec) -> Option<Ending> {
    let Some(requests) = &spec.dump_requests else {
        return control.wait(spec.time_limit);
    };
    let deadline = spec.time_limit.map(|limit| Instant::now() + limit);
    loop {
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return None;
        }
        let slice = left.map_or(DUMP_POLL, |left| left.min(DUMP_POLL));
        if let Some(ending) = control.wait(Some(slice)) {
            return Some(ending);
        }
        if requests.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
            control.request_nmis();
            control::kick_until(threads, REPORT_GRACE, || !control.has_pending_nmis());
        }
    }
}

/// How often a full UART is looked at again for room.
const SERIAL_RETRY: Duration = Duration::from_millis(1);

/// Copies `input` into the UART as the guest makes room, until it ends or
/// the VM stops.
fn feed_serial(mut input: Box<dyn Read + Send>, control: &Control) {
    let mut buffer = [0u8; 4096];
    loop {
        let length = match input.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(length) => length,
        };
        let mut rest = &buffer[..length];
        while !rest.is_empty() {
            if control.is_stopping() {
                return;
            }
            let taken = control.devices().enqueue_serial_input(rest);
            rest = &rest[taken..];
            if taken == 0 {
                std::thread::sleep(SERIAL_RETRY);
            }
        }
    }
}

/// KVM's device.
const KVM_DEVICE: &CStr = c"/dev/kvm";

/// Opens KVM at `device` and checks that it can run the VM.
fn open_kvm(device: &CStr) -> Result<Kvm, VmmError> {
    let kvm = Kvm::new_with_path(device).map_err(|error| VmmError::KvmUnavailable {
        path: device.to_string_lossy().into_owned(),
        cause: error.into(),
    })?;
    let version = kvm.get_api_version();
    if version != kvm_bindings::KVM_API_VERSION as i32 {
        return Err(VmmError::ApiVersion(version));
    }
    for (capability, name) in [
        (Cap::Irqchip, "an in-kernel interrupt controller (KVM_CAP_IRQCHIP)"),
        (Cap::Pit2, "an in-kernel timer (KVM_CAP_PIT2)"),
        (Cap::UserMemory, "user memory regions (KVM_CAP_USER_MEMORY)"),
        (Cap::Irqfd, "interrupts from eventfds (KVM_CAP_IRQFD)"),
        (Cap::ExtCpuid, "KVM_GET_SUPPORTED_CPUID (KVM_CAP_EXT_CPUID)"),
    ] {
        if !kvm.check_extension(capability) {
            return Err(VmmError::MissingCapability(name));
        }
    }
    Ok(kvm)
}

fn kvm_error(what: &'static str) -> impl Fn(kvm_ioctls::Error) -> VmmError {
    move |cause| VmmError::Kvm { what, cause }
}

/// Copies the kernel's segments to their physical addresses; returns the
/// PVH entry and the end of the kernel in memory.
fn load_kernel(memory: &GuestMemoryMmap, path: &Path) -> Result<(u64, u64), VmmError> {
    let kernel_error = |reason: String| VmmError::Kernel { path: path.to_path_buf(), reason };
    let mut file = File::open(path).map_err(|error| kernel_error(error.to_string()))?;
    let loaded = Elf::load(memory, None, &mut file, Some(GuestAddress(layout::HIGH_MEMORY_START)))
        .map_err(|error| kernel_error(format!("{error} (does it fit in guest memory?)")))?;
    match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(entry) => Ok((entry.0, loaded.kernel_end)),
        _ => Err(VmmError::NoPvhEntry(path.to_path_buf())),
    }
}

/// Reads the initrd into the top of low RAM; returns its module entry.
fn load_initrd(
    memory: &GuestMemoryMmap,
    path: &Path,
    memory_bytes: u64,
    kernel_end: u64,
) -> Result<Module, VmmError> {
    let initrd_error = |cause| VmmError::Initrd { path: path.to_path_buf(), cause };
    let mut file = File::open(path).map_err(initrd_error)?;
    let size = file.metadata().map_err(initrd_error)?.len();
    let Some(paddr) = layout::initrd_address(memory_bytes, kernel_end, size) else {
        return Err(VmmError::InitrdTooLarge {
            path: path.to_path_buf(),
            size_mib: size.div_ceil(1 << 20),
            memory_mib: memory_bytes >> 20,
        });
    };
    memory
        .read_exact_volatile_from(GuestAddress(paddr), &mut file, size as usize)
        .map_err(|error| initrd_error(std::io::Error::other(error.to_string())))?;
    Ok(Module { paddr, size })
}

/// Stops every vCPU thread and waits for it.
fn stop(control: &Control, threads: Vec<std::thread::JoinHandle<()>>) {
    control.finish(Ending::TimedOut);
    control::kick_until(&threads, STOP_LIMIT, || threads.iter().all(std::thread::JoinHandle::is_finished));
    for thread in threads {
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kvm_device_is_named_with_the_way_out() {
        let Err(error) = open_kvm(c"/nonexistent/kvm") else {
            panic!("a missing device opened");
        };
        let message = error.to_string();
        assert!(message.starts_with("cannot open /nonexistent/kvm (No such file or directory"), "{message}");
        assert!(message.ends_with("use --hypervisor qemu instead"), "{message}");
        assert!(!message.contains('\n'));
    }

    #[test]
    fn only_1_to_255_vcpus_are_accepted() {
        let spec = BootSpec {
            kernel: "/nonexistent".into(),
            initrd: None,
            disks: Vec::new(),
            network: None,
            vsock: None,
            command_line: String::new(),
            memory_mib: 16,
            cpus: 256,
            has_acpi: false,
            hides_software_kvm_gaps: false,
            time_limit: None,
            dump_requests: None,
        };
        assert!(matches!(run(&spec, Box::new(std::io::sink())), Err(VmmError::TooManyCpus(256))));
    }
}
