//! Reports of kernel failures: faults, panics, backtraces.
//!
//! Reports go straight to the UART without its lock, since the failure may
//! have happened while the lock was held. Backtraces follow the frame-pointer
//! chain (the kernel is built with frame pointers) and print raw return
//! addresses in a fixed form, `    at 0x<16 hex digits>`, that the host tools
//! resolve to function names and source lines with the kernel's symbols.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::console::EmergencyConsole;
use crate::interrupts::{InterruptFrame, exception_name};
use crate::layout;

const BACKTRACE_DEPTH: usize = 32;

/// Prints a fault in kernel code: what, where, registers, backtrace.
pub(crate) fn report_kernel_fault(frame: &InterruptFrame, address: Option<u64>) {
    let mut out = EmergencyConsole;
    let _ = writeln!(
        out,
        "\nrosv: kernel fault: {} (vector {}) at rip {:#018x}, error code {:#x}",
        exception_name(frame.vector),
        frame.vector,
        frame.rip,
        frame.error_code
    );
    if let Some(address) = address {
        let _ = writeln!(out, "rosv: faulting address (cr2) {address:#018x}");
    }
    let _ = writeln!(
        out,
        "rosv: rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n\
         rosv: rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}\n\
         rosv: r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}\n\
         rosv: r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}\n\
         rosv: rflags {:#x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.rsp,
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11,
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15,
        frame.rflags,
    );
    let _ = writeln!(out, "rosv: backtrace:");
    let _ = writeln!(out, "    at {:#018x}", frame.rip);
    print_backtrace(frame.rbp);
}

/// Prints that the running thread ran off one of its stacks into the guard
/// page under it, with where it was and the registers.
pub(crate) fn report_stack_overflow(frame: &InterruptFrame, address: u64, stack: &str) {
    let mut out = EmergencyConsole;
    let thread = crate::sched::current();
    let _ = writeln!(
        out,
        "\nrosv: kernel stack overflow: thread {} \"{}\" ran off its {stack} stack into the guard page (at {address:#018x})",
        thread.id(),
        thread.name()
    );
    report_kernel_fault(frame, Some(address));
}

/// Prints what the machine is doing, when an NMI to every processor asks
/// (the host tools send one when a VM seems hung): each processor prints
/// what it runs, where, and its scheduler's and timer's state; the first to
/// take the NMI then waits (a second at most) for the others and lists
/// every thread with what it waits for. Only lock-free reads and `try_lock`s
/// here: the interrupted code may hold any lock.
pub(crate) fn report_where_this_cpu_is(frame: &InterruptFrame) {
    // Processors take the NMI together: report one at a time (bounded, in
    // case a processor died holding the flag).
    static IS_REPORTING: AtomicBool = AtomicBool::new(false);
    static IS_DUMPING: AtomicBool = AtomicBool::new(false);
    static CPUS_REPORTED: AtomicUsize = AtomicUsize::new(0);
    let is_leader = !IS_DUMPING.swap(true, Ordering::AcqRel);
    let take_turn = || {
        let mut spins = 0u32;
        while IS_REPORTING.swap(true, Ordering::Acquire) && spins < 50_000_000 {
            spins += 1;
            core::hint::spin_loop();
        }
    };
    take_turn();
    if is_leader {
        let _ = writeln!(EmergencyConsole, "rosv: thread dump: every processor, then every thread");
    }
    report_thread(frame);
    IS_REPORTING.store(false, Ordering::Release);
    CPUS_REPORTED.fetch_add(1, Ordering::AcqRel);
    if !is_leader {
        // Stay until the list is printed, so that it shows the machine as
        // the processors left it (bounded, in case the leader died).
        let started = crate::cpu::read_tsc();
        while IS_DUMPING.load(Ordering::Acquire)
            && crate::cpu::read_tsc().saturating_sub(started) < 5 * crate::time::tsc_hz()
        {
            core::hint::spin_loop();
        }
        return;
    }
    let online = crate::sched::online_mask().count_ones() as usize;
    let started = crate::cpu::read_tsc();
    while CPUS_REPORTED.load(Ordering::Acquire) < online
        && crate::cpu::read_tsc().saturating_sub(started) < crate::time::tsc_hz()
    {
        core::hint::spin_loop();
    }
    take_turn();
    let mut out = EmergencyConsole;
    let reported = CPUS_REPORTED.load(Ordering::Acquire);
    if reported < online {
        let _ = writeln!(out, "rosv: only {reported} of {online} processors answered the NMI");
    }
    crate::sched::report_cpus_briefly(&mut out);
    crate::sched::report_threads(&mut out);
    let _ = writeln!(out, "rosv: end of thread dump");
    CPUS_REPORTED.store(0, Ordering::Release);
    IS_REPORTING.store(false, Ordering::Release);
    IS_DUMPING.store(false, Ordering::Release);
}

fn report_thread(frame: &InterruptFrame) {
    let mut out = EmergencyConsole;
    let cpu = crate::sched::current_cpu();
    let thread = crate::sched::current();
    let is_application = crate::interrupts::is_application_code(frame);
    let place = if is_application { "application code" } else { "the kernel" };
    let _ = writeln!(
        out,
        "rosv: cpu {cpu}: thread {} \"{}\" in {place} at rip {:#018x}, rsp {:#018x}",
        thread.id(),
        thread.name(),
        frame.rip,
        frame.rsp
    );
    if !is_application {
        let _ = writeln!(out, "    at {:#018x}", frame.rip);
        print_backtrace(frame.rbp);
    }
    report_timers(frame);
}

/// Prints what decides when this processor is interrupted next: whether
/// interrupts were enabled, its run and timer queues, and its local APIC
/// (timer, in-service and requested vectors). Takes no lock and allocates
/// nothing: the interrupted code may hold either.
fn report_timers(frame: &InterruptFrame) {
    let mut out = EmergencyConsole;
    let now = crate::cpu::read_tsc();
    let from_now_ms = |tsc: u64| {
        let ms = crate::time::ticks_to_ns(tsc.abs_diff(now)) as f64 / 1e6;
        if tsc >= now { ms } else { -ms }
    };
    let scheduler = crate::sched::report_this_cpu();
    let interrupts = if frame.rflags & (1 << 9) != 0 { "enabled" } else { "disabled" };
    let _ = write!(out, "    interrupts {interrupts}, {} queued, ", scheduler.queued);
    let _ = match scheduler.timers {
        Some((count, Some(first))) => {
            write!(out, "{count} timers, the first in {:.3} ms", from_now_ms(first))
        }
        Some((count, None)) => write!(out, "{count} timers"),
        None => write!(out, "timers locked"),
    };
    let _ = write!(
        out,
        ", slice ends in {:.3} ms, reschedule {}, attention {}, {}, timer ",
        from_now_ms(scheduler.slice_end),
        scheduler.needs_reschedule,
        scheduler.current_needs_attention,
        if scheduler.is_idle { "idle" } else { "busy" },
    );
    let _ = match scheduler.armed_deadline {
        None => writeln!(out, "masked"),
        Some(u64::MAX) => writeln!(out, "fired"),
        Some(deadline) => writeln!(out, "armed for {:.3} ms", from_now_ms(deadline)),
    };
    let apic = crate::apic::state();
    let _ = write!(
        out,
        "    local APIC: timer {:#x} count {}/{}",
        apic.lvt_timer, apic.timer_counts.1, apic.timer_counts.0
    );
    if let Some(deadline) = apic.tsc_deadline {
        let _ = write!(out, " deadline in {:.3} ms", from_now_ms(deadline));
    }
    let _ = writeln!(
        out,
        ", in service {:#010x}, requested {:#010x} (vectors 0xe0-0xff), task priority {}",
        apic.in_service_high, apic.requested_high, apic.task_priority
    );
}

/// Prints the return addresses found by following the frame pointers from
/// `frame_pointer`, on the running thread's stacks (where there is one): a
/// chain that leaves them may run into the unmapped guard page of another
/// thread's stack, and a fault here, in an NMI or a fault report, would
/// end the machine. The topmost frame of a processor's idle thread holds
/// whatever its start-up code left there, just under the top of the stack.
pub(crate) fn print_backtrace(frame_pointer: u64) {
    match crate::sched::current_if_any() {
        Some(thread) => print_frames(frame_pointer, BACKTRACE_DEPTH, &|address, size| {
            thread.holds_stack_bytes(address, size)
        }),
        None => print_frames(frame_pointer, BACKTRACE_DEPTH, &|address, size| {
            layout::is_kernel_data(address, size)
        }),
    }
}

/// Prints up to `depth` return addresses of the frame-pointer chain from
/// `frame_pointer`, reading only words `is_readable` allows.
pub(crate) fn print_frames(mut frame_pointer: u64, depth: usize, is_readable: &dyn Fn(u64, u64) -> bool) {
    let mut out = EmergencyConsole;
    for _ in 0..depth {
        if !frame_pointer.is_multiple_of(8) || !is_readable(frame_pointer, 16) {
            break;
        }
        // SAFETY: the address is aligned and both words lie in memory the
        // caller vouches for (the kernel's image, the physical map of RAM,
        // or a live thread's own stacks).
        let (next, return_address) = unsafe {
            let words = frame_pointer as *const u64;
            (words.read_volatile(), words.add(1).read_volatile())
        };
        if return_address == 0 || !layout::is_kernel_text(return_address) {
            break;
        }
        let _ = writeln!(out, "    at {:#018x}", return_address.wrapping_sub(1));
        if next <= frame_pointer {
            break;
        }
        frame_pointer = next;
    }
}

/// The current frame pointer.
fn current_frame_pointer() -> u64 {
    let frame_pointer: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) frame_pointer, options(nomem, nostack)) };
    frame_pointer
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::cpu::disable_interrupts();
    let mut out = EmergencyConsole;
    if is_allocation_failure(info) {
        // The heap could not grow: RAM is exhausted beyond the kernel's
        // reserve. End the application as Linux's out-of-memory killer
        // would, rather than report a kernel failure.
        let usage = crate::frames::usage();
        let _ = writeln!(
            out,
            "\nrosv: out of memory: {}; killed the application ({} of {} MiB in use)",
            info.message(),
            (usage.total_frames - usage.free_frames) >> 8,
            usage.total_frames >> 8
        );
        crate::power::abort(rosv_abi::exit::status::killed_by(rosv_abi::exit::status::SIGKILL))
    }
    let _ = writeln!(out, "\nrosv: kernel panic: {}", info.message());
    if let Some(location) = info.location() {
        let _ = writeln!(out, "rosv: at {}:{}:{}", location.file(), location.line(), location.column());
    }
    let _ = writeln!(out, "rosv: backtrace:");
    print_backtrace(current_frame_pointer());
    crate::power::abort(rosv_abi::exit::status::KERNEL_FAILURE)
}

/// Whether the panic is the allocation-failure report of `alloc` ("memory
/// allocation of N bytes failed"), told by the start of its message.
#[cfg(target_os = "none")]
fn is_allocation_failure(info: &core::panic::PanicInfo<'_>) -> bool {
    const PREFIX: &[u8] = b"memory allocation of ";
    /// Keeps the first bytes written to it.
    struct Start {
        bytes: [u8; PREFIX.len()],
        length: usize,
    }
    impl Write for Start {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            for &byte in text.as_bytes() {
                if self.length == self.bytes.len() {
                    return Err(core::fmt::Error);
                }
                self.bytes[self.length] = byte;
                self.length += 1;
            }
            Ok(())
        }
    }
    let mut start = Start { bytes: [0; PREFIX.len()], length: 0 };
    let _ = write!(start, "{}", info.message());
    start.bytes[..start.length] == *PREFIX
}
