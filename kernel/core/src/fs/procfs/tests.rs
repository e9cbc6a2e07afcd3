use alloc::string::String;

use crate::fake::FakeMachine;
use crate::fs::testing;
use crate::machine::Rights;
use crate::memory::AreaKind;
use crate::process::Process;
use crate::vfs::file::flags;
use crate::vfs::{Caller, FsError};

fn read(process: &Process, caller: &Caller<'_>, path: &str) -> String {
    String::from_utf8(process.vfs().read_file(caller, path).unwrap()).unwrap()
}

fn link(process: &Process, caller: &Caller<'_>, path: &str) -> String {
    let location = process.vfs().resolve(caller, &process.vfs().root(), path, false).unwrap();
    process.vfs().read_link(caller, &location).unwrap()
}

#[test]
fn the_process_shows_its_executable_directory_and_descriptors() {
    let machine = FakeMachine::new();
    let process = testing::process(&machine);
    let thread = process.new_thread();
    let caller = Caller::thread(&machine, &process, &thread);
    assert_eq!(link(&process, &caller, "/proc/self"), alloc::format!("{}", process.pid));
    assert_eq!(link(&process, &caller, "/proc/self/exe"), "/bin/hello");
    assert_eq!(link(&process, &caller, "/proc/self/cwd"), "/");
    assert_eq!(link(&process, &caller, "/proc/self/fd/2"), "/dev/console");
    let root = process.vfs().root();
    let file =
        process.vfs().open(&caller, &root, "/tmp/log", flags::O_CREAT | flags::O_WRONLY, 0o644).unwrap();
    process
        .descriptors
        .with(|table| table.install(crate::vfs::Descriptor { file, close_on_exec: false }, 0, 10))
        .unwrap();
    assert_eq!(link(&process, &caller, "/proc/self/fd/3"), "/tmp/log");
    process.vfs().unlink(&caller, &root, "/tmp/log").unwrap();
    assert_eq!(link(&process, &caller, "/proc/self/fd/3"), "/tmp/log (deleted)");
    // Following a descriptor's link reaches the open file, even unlinked.
    let reopened = process.vfs().resolve(&caller, &root, "/proc/self/fd/3", true).unwrap();
    assert_eq!(reopened.file_type(), crate::vfs::FileType::Regular);
    assert!(process.vfs().resolve(&caller, &root, "/proc/self/cwd/etc/motd", true).is_ok());
    assert_eq!(
        process.vfs().resolve(&caller, &root, "/proc/self/fd/9", false).err(),
        Some(FsError::NotFound)
    );
    let mut offset = 0;
    let mut names = alloc::vec::Vec::new();
    let fd_directory = process.vfs().resolve(&caller, &root, "/proc/self/fd", true).unwrap();
    while let Some(entry) = process.vfs().read_directory(&caller, &fd_directory, offset).unwrap() {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    assert_eq!(names, [".", "..", "0", "1", "2", "3"]);
    // Closing descriptors part-way through the listing skips none of
    // those after them: the offset is a descriptor number.
    let mut offset = 0;
    let mut names = alloc::vec::Vec::new();
    while let Some(entry) = process.vfs().read_directory(&caller, &fd_directory, offset).unwrap() {
        if entry.name == "1" {
            process.descriptors.with(|table| table.remove(0).and(table.remove(1))).unwrap();
        }
        names.push(entry.name);
        offset = entry.next_offset;
    }
    assert_eq!(names, [".", "..", "0", "1", "2", "3"]);
}

#[test]
fn generated_files_describe_the_process_and_the_machine() {
    let machine = FakeMachine::new();
    let process = testing::process(&machine);
    process
        .memory()
        .space
        .lock()
        .add_area(
            &machine,
            0x40_0000,
            0x40_2000,
            Rights { read: true, write: false, execute: true },
            AreaKind::Image,
            false,
        )
        .unwrap();
    process
        .memory()
        .space
        .lock()
        .add_area(&machine, 0x7000_0000, 0x7000_1000, Rights::READ_WRITE, AreaKind::Stack, false)
        .unwrap();
    let thread = process.new_thread();
    let caller = Caller::thread(&machine, &process, &thread);
    let maps = read(&process, &caller, "/proc/self/maps");
    let lines: alloc::vec::Vec<&str> = maps.lines().collect();
    assert!(lines[0].starts_with("00400000-00402000 r-xp 00000000 00:00 0 "), "{maps}");
    assert!(lines[0].ends_with(" /bin/hello") && lines[0].find('/') == Some(73), "{maps}");
    assert!(lines[1].starts_with("70000000-70001000 rw-p") && lines[1].ends_with("[stack]"), "{maps}");
    let mounts = read(&process, &caller, "/proc/mounts");
    assert!(mounts.starts_with("/dev/root / rofs ro,relatime 0 0\n"), "{mounts}");
    assert!(
        mounts.contains("proc /proc proc rw,relatime 0 0\n")
            && mounts.contains("tmpfs /tmp tmpfs rw,relatime 0 0\n"),
        "{mounts}"
    );
    assert_eq!(read(&process, &caller, "/proc/cpuinfo").matches("processor\t:").count(), 4);
    assert!(read(&process, &caller, "/proc/meminfo").starts_with("MemTotal:         131072 kB\n"));
    let vmstat = read(&process, &caller, "/proc/vmstat");
    assert!(vmstat.starts_with("nr_free_pages ") && vmstat.contains("\npswpin 0\n"), "{vmstat}");
    machine.now_ns.store(12_345_000_000, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(read(&process, &caller, "/proc/uptime"), "12.34 0.00\n");
    assert!(
        read(&process, &caller, "/proc/self/status").contains(&alloc::format!("Pid:\t{}\n", process.pid))
    );
    assert!(read(&process, &caller, "/proc/self/status").contains("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"));
    process.state.lock().credentials = crate::process::Credentials::of(1000, 100);
    let status = read(&process, &caller, "/proc/self/status");
    assert!(status.contains("Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"), "{status}");
    let root = process.vfs().root();
    let file = process.vfs().open(&caller, &root, "/proc/uptime", flags::O_RDONLY, 0).unwrap();
    assert_eq!(file.write(&caller, b"1"), Err(FsError::BadDescriptor));
    assert_eq!(process.vfs().make_directory(&caller, &root, "/proc/new", 0o755), Err(FsError::AccessDenied));
    process.state.lock().credentials = crate::process::Credentials::root();
    assert_eq!(process.vfs().make_directory(&caller, &root, "/proc/new", 0o755), Err(FsError::NotPermitted));
}

#[test]
fn every_process_has_a_directory_that_others_may_read_as_linux_allows() {
    let machine = FakeMachine::new();
    let parent = testing::process(&machine);
    let parent_thread = parent.new_thread();
    let memory = crate::fake::address_space(&machine);
    let child = parent.fork(
        &parent_thread,
        crate::process::Memory::new(memory),
        crate::random::Random::seeded(&machine),
        0,
        crate::signal::SIGCHLD,
        crate::process::Sharing::default(),
    );
    let child_thread = child.new_thread();
    let caller = Caller::thread(&machine, &parent, &parent_thread);
    let root = parent.vfs().root();
    // /proc lists both, and /proc/self is the caller's.
    let directory = parent.vfs().resolve(&caller, &root, "/proc", true).unwrap();
    let mut names = alloc::vec::Vec::new();
    let mut offset = 0;
    while let Some(entry) = parent.vfs().read_directory(&caller, &directory, offset).unwrap() {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    for pid in [parent.pid, child.pid] {
        assert!(names.contains(&alloc::format!("{pid}")), "{names:?}");
    }
    assert_eq!(link(&parent, &caller, "/proc/self"), alloc::format!("{}", parent.pid));
    // The child's stat names its parent, group and session; it waits.
    let stat = read(&parent, &caller, &alloc::format!("/proc/{}/stat", child.pid));
    let fields: alloc::vec::Vec<&str> = stat.split(' ').collect();
    assert_eq!(fields[0], alloc::format!("{}", child.pid));
    assert_eq!(fields[2], "S", "{stat}");
    assert_eq!(fields[3], alloc::format!("{}", parent.pid), "{stat}");
    assert_eq!(fields[4], alloc::format!("{}", parent.group_id()), "{stat}");
    assert_eq!(link(&parent, &caller, &alloc::format!("/proc/{}/exe", child.pid)), "/bin/hello");
    let task = alloc::format!("/proc/{}/task/{}/stat", child.pid, child_thread.tid);
    assert!(read(&parent, &caller, &task).starts_with(&alloc::format!("{} (", child.pid)));
    // A stopped process shows T.
    child.signals.job.stop(crate::signal::SIGSTOP);
    let status = read(&parent, &caller, &alloc::format!("/proc/{}/status", child.pid));
    assert!(status.contains("State:\tT (stopped)\n"), "{status}");
    // Another user sees the public files but not the private ones.
    child.state.lock().credentials = crate::process::Credentials::of(1000, 100);
    parent.state.lock().credentials = crate::process::Credentials::of(1001, 100);
    let exe = alloc::format!("/proc/{}/exe", child.pid);
    let location = parent.vfs().resolve(&caller, &root, &exe, false).unwrap();
    assert_eq!(parent.vfs().read_link(&caller, &location).err(), Some(FsError::AccessDenied));
    let environment = alloc::format!("/proc/{}/environ", child.pid);
    assert_eq!(parent.vfs().read_file(&caller, &environment).err(), Some(FsError::AccessDenied));
    assert!(read(&parent, &caller, &alloc::format!("/proc/{}/cmdline", child.pid)).is_empty());
    // The same user may.
    parent.state.lock().credentials = crate::process::Credentials::of(1000, 100);
    assert_eq!(link(&parent, &caller, &exe), "/bin/hello");
    // A process that was reaped has no directory.
    let gone = child.pid;
    drop(child_thread);
    child.abandon();
    drop(child);
    assert_eq!(
        parent.vfs().resolve(&caller, &root, &alloc::format!("/proc/{gone}/stat"), true).err(),
        Some(FsError::NotFound)
    );
}

/// Writes `text` to `path` as `caller`: the error of the open or the write.
fn write_setting(process: &Process, caller: &Caller<'_>, path: &str, text: &str) -> Result<(), FsError> {
    let file =
        process.vfs().open(caller, &process.vfs().root(), path, flags::O_WRONLY | flags::O_TRUNC, 0)?;
    file.write(caller, text.as_bytes()).map(|_| ())
}

#[test]
fn settings_take_values_in_range_and_read_only_ones_refuse_root() {
    let machine = FakeMachine::new();
    let process = testing::process(&machine);
    let thread = process.new_thread();
    let caller = Caller::thread(&machine, &process, &thread);
    let path = "/proc/sys/vm/overcommit_ratio";
    write_setting(&process, &caller, path, "70\n").unwrap();
    assert_eq!(read(&process, &caller, path), "70\n");
    assert_eq!(write_setting(&process, &caller, path, "-1\n"), Err(FsError::InvalidArgument));
    assert_eq!(write_setting(&process, &caller, path, "seventy\n"), Err(FsError::InvalidArgument));
    assert_eq!(read(&process, &caller, path), "70\n");
    write_setting(&process, &caller, path, "50\n").unwrap();
    assert_eq!(
        write_setting(&process, &caller, "/proc/sys/kernel/pid_max", "300\n"),
        Err(FsError::InvalidArgument),
        "below RESERVED_PIDS + 1"
    );
    assert_eq!(
        write_setting(&process, &caller, "/proc/sys/kernel/osrelease", "9\n"),
        Err(FsError::AccessDenied),
        "a read-only setting refuses root too"
    );
    let metadata =
        process.vfs().resolve(&caller, &process.vfs().root(), path, true).unwrap().metadata(&caller).unwrap();
    assert_eq!(metadata.permissions & 0o777, 0o644);
}

#[test]
fn sysvipc_lists_start_with_linux_headers() {
    let machine = FakeMachine::new();
    let process = testing::process(&machine);
    let thread = process.new_thread();
    let caller = Caller::thread(&machine, &process, &thread);
    for (name, first_columns) in [
        ("msg", "       key      msqid perms      cbytes"),
        ("sem", "       key      semid perms      nsems"),
        ("shm", "       key      shmid perms                  size"),
    ] {
        let text = read(&process, &caller, &alloc::format!("/proc/sysvipc/{name}"));
        assert!(text.starts_with(first_columns), "{name}: {text}");
    }
}
