//! One vCPU: its entry state, and its thread's loop around KVM_RUN.
//!
//! The boot processor starts at the PVH entry ([`enter_pvh`]); the others
//! stay in KVM's wait-for-SIPI state until the kernel starts them with
//! INIT-SIPI-SIPI, which the in-kernel local APIC handles. [`run`] passes
//! port and MMIO exits to `devices` and reports how the VM ends through
//! [`Control`].

use std::fmt;

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::boot::{ENTRY_SEGMENTS, GDT_LIMIT, Segment};
use crate::control::Control;
use crate::devices::Effect;
use crate::host::kvm::Vcpu;
use crate::layout;
use crate::{Ending, Failure};

/// CR0.PE (protected mode) and CR0.ET (always 1 on modern processors).
const CR0_PE_ET: u64 = 0x11;
/// RFLAGS bit 1, which always reads as 1.
const RFLAGS_RESERVED: u64 = 0x2;

/// Puts the boot processor in the state the PVH boot ABI describes:
/// 32-bit protected mode with paging off, flat segments, interrupts off,
/// EBX = physical address of `hvm_start_info`, at `entry`.
pub fn enter_pvh(vcpu: &VcpuFd, entry: u64) -> Result<(), kvm_ioctls::Error> {
    let mut sregs = vcpu.get_sregs()?;
    let code = kernel_segment(&ENTRY_SEGMENTS.code);
    let data = kernel_segment(&ENTRY_SEGMENTS.data);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kernel_segment(&ENTRY_SEGMENTS.task);
    sregs.gdt.base = layout::GDT_PADDR;
    sregs.gdt.limit = GDT_LIMIT;
    sregs.cr0 = CR0_PE_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs)?;
    let regs =
        kvm_regs { rip: entry, rbx: layout::START_INFO_PADDR, rflags: RFLAGS_RESERVED, ..Default::default() };
    vcpu.set_regs(&regs)
}

/// The hidden part of a segment register, as KVM loads it.
fn kernel_segment(segment: &Segment) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: segment.limit,
        selector: segment.selector,
        type_: segment.kind,
        present: 1,
        dpl: 0,
        db: u8::from(segment.is_code_or_data),
        s: u8::from(segment.is_code_or_data),
        l: 0,
        g: u8::from(segment.is_granular()),
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Runs vCPU `index` until the VM ends (by its own exit or another's).
pub fn run(mut vcpu: Vcpu, index: u32, control: &Control) {
    while !control.is_stopping() {
        if control.take_nmi_request(index) {
            // The kernel answers an NMI by printing what this processor
            // runs; losing it only loses that report.
            let _ = vcpu.fd().nmi();
        }
        let ending = match vcpu.fd().run() {
            Ok(VcpuExit::IoOut(port, data)) => effect_ending(control.devices().port_out(port, data)),
            Ok(VcpuExit::IoIn(port, data)) => {
                control.devices().port_in(port, data);
                None
            }
            Ok(VcpuExit::MmioRead(address, data)) => {
                control.devices().mmio_read(address, data);
                None
            }
            Ok(VcpuExit::MmioWrite(address, data)) => {
                effect_ending(control.devices().mmio_write(address, data))
            }
            // With the in-kernel irqchip KVM waits out HLT itself; an exit
            // here only means the processor may go on.
            Ok(VcpuExit::Hlt | VcpuExit::Intr | VcpuExit::IrqWindowOpen) => None,
            Ok(VcpuExit::SystemEvent(..)) => Some(Ending::Reset),
            Ok(VcpuExit::Shutdown) => {
                Some(failure(&mut vcpu, index, "triple fault (KVM_EXIT_SHUTDOWN)".into()))
            }
            Ok(VcpuExit::FailEntry(reason, _)) => Some(failure(
                &mut vcpu,
                index,
                format!("KVM could not enter the guest (hardware entry failure reason {reason:#x})"),
            )),
            Ok(VcpuExit::InternalError) => {
                let suberror = vcpu.internal_error();
                let reason = format!("KVM internal error {suberror} ({})", internal_error_name(suberror));
                Some(failure(&mut vcpu, index, reason))
            }
            Ok(exit) => {
                let reason = format!("unexpected KVM exit {exit:?}");
                Some(failure(&mut vcpu, index, reason))
            }
            Err(error) if error.errno() == libc::EINTR || error.errno() == libc::EAGAIN => None,
            Err(error) => Some(failure(&mut vcpu, index, format!("KVM_RUN failed: {error}"))),
        };
        if let Some(ending) = ending {
            control.finish(ending);
        }
    }
}

/// What KVM's internal error codes (`KVM_INTERNAL_ERROR_*`) mean.
fn internal_error_name(suberror: u32) -> &'static str {
    match suberror {
        1 => "KVM could not emulate an instruction",
        2 => "an exception occurred while delivering another",
        3 => "an event could not be delivered",
        4 => "unexpected exit reason",
        _ => "unknown",
    }
}

fn effect_ending(effect: Effect) -> Option<Ending> {
    match effect {
        Effect::None => None,
        Effect::PowerOff(status) => Some(Ending::PoweredOff { status }),
        Effect::Reset => Some(Ending::Reset),
    }
}

fn failure(vcpu: &mut Vcpu, index: u32, reason: String) -> Ending {
    let fd = vcpu.fd();
    let registers = match (fd.get_regs(), fd.get_sregs()) {
        (Ok(regs), Ok(sregs)) => Some(Registers::new(&regs, &sregs)),
        _ => None,
    };
    Ending::Failed(Box::new(Failure { cpu: index, reason, registers }))
}

/// A vCPU's registers, as reported when the guest failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers {
    general: [(&'static str, u64); 18],
    control: [(&'static str, u64); 5],
    segments: [(&'static str, u16, u64); 2],
}

impl Registers {
    fn new(regs: &kvm_regs, sregs: &kvm_sregs) -> Self {
        Registers {
            general: [
                ("RIP", regs.rip),
                ("RSP", regs.rsp),
                ("RFLAGS", regs.rflags),
                ("RAX", regs.rax),
                ("RBX", regs.rbx),
                ("RCX", regs.rcx),
                ("RDX", regs.rdx),
                ("RSI", regs.rsi),
                ("RDI", regs.rdi),
                ("RBP", regs.rbp),
                ("R8", regs.r8),
                ("R9", regs.r9),
                ("R10", regs.r10),
                ("R11", regs.r11),
                ("R12", regs.r12),
                ("R13", regs.r13),
                ("R14", regs.r14),
                ("R15", regs.r15),
            ],
            control: [
                ("CR0", sregs.cr0),
                ("CR2", sregs.cr2),
                ("CR3", sregs.cr3),
                ("CR4", sregs.cr4),
                ("EFER", sregs.efer),
            ],
            segments: [("CS", sregs.cs.selector, sregs.cs.base), ("SS", sregs.ss.selector, sregs.ss.base)],
        }
    }

    /// The instruction pointer.
    pub fn rip(&self) -> u64 {
        self.general[0].1
    }
}

impl fmt::Display for Registers {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in self.general.chunks(3) {
            let cells: Vec<String> =
                row.iter().map(|(name, value)| format!("{name:>6} {value:#018x}")).collect();
            writeln!(formatter, "  {}", cells.join("  "))?;
        }
        let cells: Vec<String> =
            self.control.iter().map(|(name, value)| format!("{name} {value:#x}")).collect();
        writeln!(formatter, "  {}", cells.join("  "))?;
        let cells: Vec<String> = self
            .segments
            .iter()
            .map(|(name, selector, base)| format!("{name} {selector:#06x} (base {base:#x})"))
            .collect();
        write!(formatter, "  {}", cells.join("  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_print_as_a_readable_block() {
        let regs = kvm_regs { rip: 0x20_1000, rsp: 0x8ff0, rflags: 0x2, r15: 15, ..Default::default() };
        let mut sregs = kvm_sregs { cr0: 0x8000_0011, ..Default::default() };
        sregs.cs.selector = 0x08;
        let registers = Registers::new(&regs, &sregs);
        assert_eq!(registers.rip(), 0x20_1000);
        let text = registers.to_string();
        assert!(text.contains("   RIP 0x0000000000201000"), "{text}");
        assert!(text.contains("   R15 0x000000000000000f"), "{text}");
        assert!(text.contains("CR0 0x80000011"), "{text}");
        assert!(text.contains("CS 0x0008 (base 0x0)"), "{text}");
        assert_eq!(text.lines().count(), 8);
    }

    #[test]
    fn entry_segments_become_flat_kvm_segments() {
        let code = kernel_segment(&ENTRY_SEGMENTS.code);
        assert_eq!((code.selector, code.type_, code.s, code.db, code.g, code.l), (0x08, 0xb, 1, 1, 1, 0));
        assert_eq!(code.limit, 0xffff_ffff);
        let task = kernel_segment(&ENTRY_SEGMENTS.task);
        assert_eq!((task.type_, task.s, task.g, task.present, task.limit), (0xb, 0, 0, 1, 0x67));
    }
}
