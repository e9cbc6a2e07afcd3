//! The files of `/proc/self` beyond `maps` and `status`: `limits`,
//! `mountinfo`, `smaps`, `cmdline`, `environ`, `auxv`, `oom_score_adj`,
//! `comm`, `stat`, `statm`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Write;

use crate::credentials::capability;
use crate::initial_stack::StackLayout;
use crate::process::{Process, RLIM_INFINITY, limit};
use crate::vfs::{Caller, FileType, FsError, Location, Metadata, Node};

/// Clock ticks per second in `/proc` files (`USER_HZ`).
const USER_HZ: u64 = 100;

/// `/proc/self/limits`: each resource limit, in Linux's columns.
pub fn limits(process: &Process) -> String {
    const ROWS: [(&str, usize, &str); 16] = [
        ("Max cpu time", limit::CPU, "seconds"),
        ("Max file size", limit::FSIZE, "bytes"),
        ("Max data size", limit::DATA, "bytes"),
        ("Max stack size", limit::STACK, "bytes"),
        ("Max core file size", limit::CORE, "bytes"),
        ("Max resident set", 5, "bytes"),
        ("Max processes", limit::NPROC, "processes"),
        ("Max open files", limit::NOFILE, "files"),
        ("Max locked memory", limit::MEMLOCK, "bytes"),
        ("Max address space", limit::AS, "bytes"),
        ("Max file locks", 10, "locks"),
        ("Max pending signals", limit::SIGPENDING, "signals"),
        ("Max msgqueue size", limit::MSGQUEUE, "bytes"),
        ("Max nice priority", limit::NICE, ""),
        ("Max realtime priority", limit::RTPRIO, ""),
        ("Max realtime timeout", 15, "us"),
    ];
    let limits = process.state.lock().limits;
    let shown =
        |value: u64| if value == RLIM_INFINITY { String::from("unlimited") } else { format!("{value}") };
    let mut text = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for (name, index, units) in ROWS {
        let value = limits[index];
        let _ = writeln!(
            text,
            "{name:<25} {:<20} {:<20} {units:<10}",
            shown(value.current),
            shown(value.maximum)
        );
    }
    text
}

/// Splits a device number into major and minor as Linux encodes them.
fn split_device(device: u64) -> (u64, u64) {
    ((device >> 8) & 0xfff, (device & 0xff) | ((device >> 12) & !0xff))
}

/// `/proc/self/mountinfo`: per mount, its id, its parent's, the device,
/// the root within the filesystem, the mount point, options, the type and
/// the source.
pub fn mount_information(caller: &Caller<'_>, process: &Process) -> String {
    use super::descriptor_info::FIRST_MOUNT_ID;
    let mounts = process.vfs().mounts();
    let id_of = |mount: &Arc<crate::vfs::Mount>| super::descriptor_info::mount_id(process, mount);
    let mut text = String::new();
    for mount in &mounts {
        let path = process.vfs().path_of(caller, &Location::root_of(mount)).unwrap_or_default();
        let parent = mount.mount_point().map_or(id_of(mount) - 1, |(location, _)| id_of(&location.mount));
        let (major, minor) = split_device(mount.device());
        let mode = if mount.is_read_only() { "ro" } else { "rw" };
        let _ = writeln!(
            text,
            "{} {parent} {major}:{minor} / {path} {} shared:{} - {} {} {mode}",
            id_of(mount),
            mount.options(),
            id_of(mount) - FIRST_MOUNT_ID + 1,
            mount.type_name(),
            mount.source(),
        );
    }
    text
}

/// `/proc/self/smaps`: each `maps` line with the area's sizes.
pub fn shared_maps(process: &Process) -> String {
    let mut text = String::new();
    let held = process.memory();
    let memory = held.space.lock();
    for (start, area) in memory.areas() {
        let size_kib = (area.end - start) / 1024;
        let resident_kib = memory.tables().count_mapped(start, area.end) * 4;
        let anonymous_kib = if area.file.is_none() { resident_kib } else { 0 };
        let rights = area.rights;
        let mut flags = String::new();
        for (is_set, flag) in [(rights.read, "rd "), (rights.write, "wr "), (rights.execute, "ex ")] {
            if is_set {
                flags.push_str(flag);
            }
        }
        flags.push_str("mr mw me ac");
        let _ = write!(
            text,
            "{}\nSize:           {size_kib:8} kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n\
             Rss:            {resident_kib:8} kB\nPss:            {resident_kib:8} kB\n\
             Shared_Clean:          0 kB\nShared_Dirty:          0 kB\n\
             Private_Clean:         0 kB\nPrivate_Dirty:  {resident_kib:8} kB\n\
             Referenced:     {resident_kib:8} kB\nAnonymous:      {anonymous_kib:8} kB\n\
             LazyFree:              0 kB\nAnonHugePages:         0 kB\nShmemPmdMapped:        0 kB\n\
             Shared_Hugetlb:        0 kB\nPrivate_Hugetlb:       0 kB\nSwap:                  0 kB\n\
             SwapPss:               0 kB\nLocked:                0 kB\nVmFlags: {flags}\n",
            super::contents::map_line(process, start, area)
        );
    }
    text
}

/// The bytes of the initial stack's range `range` picks: `cmdline`,
/// `environ`, `auxv`, read from the process's memory as Linux does (so a
/// program that rewrites its arguments shows the change).
pub fn stack_range(caller: &Caller<'_>, process: &Process, range: fn(&StackLayout) -> (u64, u64)) -> Vec<u8> {
    let held = process.memory();
    let memory = held.space.lock();
    let (start, end) = range(&memory.stack_layout);
    let mut bytes = alloc::vec![0u8; end.saturating_sub(start) as usize];
    if caller.process.is_some_and(|own| own.pid == process.pid) {
        drop(memory);
        if caller.machine.read_memory(start, &mut bytes).is_err() {
            bytes.clear();
        }
        return bytes;
    }
    // Another process's memory is not loaded: read it through its frames,
    // up to the first page it does not have.
    let mut done = 0;
    while done < bytes.len() {
        let at = start + done as u64;
        let page = at & !(crate::memory::PAGE_SIZE - 1);
        let offset = (at - page) as usize;
        let length = (crate::memory::PAGE_SIZE as usize - offset).min(bytes.len() - done);
        let Some(frame) = memory.tables().mapped_frame(page) else {
            bytes.truncate(done);
            break;
        };
        crate::pages::read_frame(frame, offset, &mut bytes[done..done + length]);
        done += length;
    }
    bytes
}

/// `/proc/self/oom_score`: the process is the only one, and the kernel
/// ends it first whatever its score.
pub fn oom_score(process: &Process) -> String {
    let adjustment = process.state.lock().oom_score_adjustment;
    format!("{}\n", (666 + adjustment).clamp(0, 2000))
}

/// The thread whose state a process's files show: the caller if it is
/// one of the process's, else the main thread (or any one left).
pub fn shown_thread(caller: &Caller<'_>, process: &Process) -> Option<Arc<crate::process::Thread>> {
    if let Some(thread) = caller.thread
        && caller.process.is_some_and(|own| own.pid == process.pid)
    {
        return process.thread(thread.tid);
    }
    process.thread(process.pid).or_else(|| process.threads().into_iter().next())
}

/// The process's name: its thread's if set, else the executable's.
fn name(caller: &Caller<'_>, process: &Process) -> String {
    let thread_name =
        shown_thread(caller, process).map(|thread| thread.state.lock().name).unwrap_or_default();
    let length = thread_name.iter().position(|&byte| byte == 0).unwrap_or(thread_name.len());
    if length > 0 {
        return String::from_utf8_lossy(&thread_name[..length]).into_owned();
    }
    let executable = process.executable_path();
    let name = executable.rsplit('/').next().unwrap_or_default();
    String::from(&name[..name.len().min(15)])
}

/// `/proc/self/comm`.
pub fn command(caller: &Caller<'_>, process: &Process) -> String {
    format!("{}\n", name(caller, process))
}

/// Bytes of the address space and of its resident pages.
fn sizes(process: &Process) -> (u64, u64) {
    let held = process.memory();
    let memory = held.space.lock();
    let mut virtual_bytes = 0;
    let mut resident_pages = 0;
    for (start, area) in memory.areas() {
        virtual_bytes += area.end - start;
        resident_pages += memory.tables().count_mapped(start, area.end);
    }
    (virtual_bytes, resident_pages)
}

/// The one-letter state `stat` and `status` show, as Linux shows its
/// main thread's: `Z` once it ended, `t` in a tracing stop, `T` while
/// stopped, `S` while the main thread waits (blocked in the kernel), `R`
/// while it runs or is ready to (and for the caller's own process, which
/// is running).
pub fn state_letter(caller: &Caller<'_>, process: &Process) -> char {
    if process.has_ended() {
        return 'Z';
    }
    if crate::ptrace::is_in_trace_stop(process.pid) {
        return 't';
    }
    if process.signals.job.is_stopped() {
        return 'T';
    }
    if caller.process.is_some_and(|own| own.pid == process.pid) {
        return 'R';
    }
    let threads = process.threads();
    let main = threads.iter().find(|thread| thread.tid == process.pid).or_else(|| threads.first());
    match main.and_then(|thread| thread.control()) {
        Some(control) if !control.is_blocked() => 'R',
        _ => 'S',
    }
}

/// `tty_nr` and `tpgid` of `stat`: the controlling terminal's device
/// number as Linux encodes it, and its foreground group (-1 without one).
fn terminal_fields(process: &Process) -> (u64, i64) {
    let encode = |major: u64, minor: u64| (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    match process.controlling_terminal.lock().clone() {
        None => (0, -1),
        Some(crate::process::ControllingTerminal::Console) => (encode(5, 1), process.group_id() as i64),
        Some(crate::process::ControllingTerminal::Terminal(terminal)) => {
            let number = encode(crate::terminal::file::SLAVE_MAJOR, u64::from(terminal.index()));
            (number, terminal.foreground().group(process.group_id()) as i64)
        }
    }
}

/// `/proc/PID/stat`: Linux's 52 fields; those rosv does not keep are 0.
/// For `task/TID/stat`, `thread` is the thread, whose own processor time
/// it shows (the children's figures are the process's).
pub fn stat(caller: &Caller<'_>, process: &Process, thread: Option<&crate::process::Thread>) -> String {
    let ticks = |ns: u64| ns / (1_000_000_000 / USER_HZ);
    let (virtual_bytes, resident_pages) = sizes(process);
    let threads = process.thread_count();
    let start = ticks(process.start_ns);
    let layout = process.memory().space.lock().stack_layout;
    let (terminal, foreground) = terminal_fields(process);
    let used = match thread {
        Some(thread) => thread
            .control()
            .map_or_else(crate::process::CpuTime::default, |control| crate::process::CpuTime::of(&*control)),
        None => process.cpu_time(),
    };
    let children = process.accounts.reaped_children().cpu;
    format!(
        "{} ({}) {} {} {} {} {terminal} {foreground} 4194560 0 0 0 0 {} {} {} {} 20 0 {threads} 0 {start} \
         {virtual_bytes} {resident_pages} {RLIM_INFINITY} 0 0 0 0 0 0 0 0 0 0 0 0 17 {} 0 0 0 0 0 0 0 0 {} {} {} {} 0\n",
        thread.map_or(process.pid, |thread| thread.tid),
        name(caller, process),
        state_letter(caller, process),
        process.parent_id(),
        process.group_id(),
        process.session_id(),
        ticks(used.user_ns),
        ticks(used.system_ns),
        ticks(children.user_ns),
        ticks(children.system_ns),
        caller.machine.current_cpu(),
        layout.arguments.0,
        layout.arguments.1,
        layout.environment.0,
        layout.environment.1,
    )
}

/// `/proc/self/statm`, in pages: the size, the resident pages, those of
/// them backed by files (shared), the executable file mappings (text),
/// 0 (lib), the private writable mappings (data), 0 (dirty), as Linux
/// counts them (psutil's `rss` and top's `RES` read it).
pub fn memory_statistics(process: &Process) -> String {
    let held = process.memory();
    let memory = held.space.lock();
    let (mut size, mut resident, mut shared, mut text, mut data) = (0, 0, 0, 0, 0);
    for (start, area) in memory.areas() {
        let pages = (area.end - start) / 4096;
        let mapped = memory.tables().count_mapped(start, area.end);
        size += pages;
        resident += mapped;
        match &area.file {
            Some(file) => {
                shared += mapped;
                if area.rights.execute {
                    text += pages;
                }
                if area.rights.write && !file.is_shared {
                    data += pages;
                }
            }
            None if area.rights.write => data += pages,
            None => {}
        }
    }
    format!("{size} {resident} {shared} {text} 0 {data} 0\n")
}

/// `/proc/self/oom_score_adj`: reads the process's adjustment; writes a
/// new one from -1000 to 1000 (lowering it needs `CAP_SYS_RESOURCE`).
#[derive(Debug)]
pub struct OomScoreAdjustment {
    /// The file's inode number.
    pub inode: u64,
    /// The process whose adjustment it is.
    pub pid: u64,
}

impl OomScoreAdjustment {
    fn process(&self) -> Result<Arc<Process>, FsError> {
        crate::process::find(self.pid).ok_or(FsError::NotFound)
    }
}

impl Node for OomScoreAdjustment {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        Ok(Metadata::new(self.inode, FileType::Regular, 0o644))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let process = self.process()?;
        let text = format!("{}\n", process.state.lock().oom_score_adjustment);
        let bytes = text.as_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let length = buffer.len().min(bytes.len() - start);
        buffer[..length].copy_from_slice(&bytes[start..start + length]);
        Ok(length)
    }

    fn write_at(&self, caller: &Caller<'_>, _offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let process = self.process()?;
        if !crate::process::may_inspect(caller, &process) {
            return Err(FsError::AccessDenied);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| FsError::InvalidArgument)?;
        let value: i32 = text.trim().parse().map_err(|_| FsError::InvalidArgument)?;
        if !(-1000..=1000).contains(&value) {
            return Err(FsError::InvalidArgument);
        }
        let is_privileged = caller
            .credentials()
            .is_some_and(|credentials| credentials.has_capability(capability::SYS_RESOURCE))
            || caller.process.is_none();
        let mut state = process.state.lock();
        if value < state.oom_score_adjustment && !is_privileged {
            return Err(FsError::AccessDenied);
        }
        state.oom_score_adjustment = value;
        Ok(bytes.len())
    }

    fn truncate(&self, _caller: &Caller<'_>, _size_bytes: u64) -> Result<(), FsError> {
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        true
    }
}
