//! `/proc/PID/fdinfo/N`, a descriptor's position, flags, mount and inode
//! (lsof, and programs that check what a descriptor they inherited is),
//! then what its object adds ([`crate::vfs::SpecialFile::descriptor_info`]),
//! and the files that describe a process's session: `loginuid`,
//! `sessionid`, `smaps_rollup`.

use alloc::string::String;
use core::fmt::Write;

use crate::process::Process;
use crate::vfs::Caller;
use crate::vfs::file::flags;

/// Linux numbers mounts from about here; the root is the first.
pub const FIRST_MOUNT_ID: usize = 21;

/// The id `mountinfo` gives `mount` in `process`'s view.
pub fn mount_id(process: &Process, mount: &alloc::sync::Arc<crate::vfs::Mount>) -> usize {
    process
        .vfs()
        .mounts()
        .iter()
        .position(|other| alloc::sync::Arc::ptr_eq(other, mount))
        .map_or(FIRST_MOUNT_ID, |index| FIRST_MOUNT_ID + index)
}

/// The text of `fdinfo/number`, or `None` when the descriptor is not open.
pub fn descriptor_info(caller: &Caller<'_>, process: &Process, number: u64) -> Option<String> {
    let (file, close_on_exec) = process.descriptors.with(|table| {
        table
            .iter()
            .find(|(each, _)| *each as u64 == number)
            .map(|(_, descriptor)| (descriptor.file.clone(), descriptor.close_on_exec))
    })?;
    let mut open_flags = file.status_flags();
    if close_on_exec {
        open_flags |= flags::O_CLOEXEC;
    }
    let inode = file.metadata(caller).map_or(0, |metadata| metadata.inode);
    // Pipes, sockets and anonymous files are on internal mounts on Linux;
    // the root's id stands in, as their `/proc/PID/fd` links do.
    let mount = file.location().map_or(FIRST_MOUNT_ID, |location| mount_id(process, &location.mount));
    let mut text = String::new();
    let _ =
        write!(text, "pos:\t{}\nflags:\t0{:o}\nmnt_id:\t{mount}\nino:\t{inode}\n", file.offset(), open_flags);
    if let Some(special) = file.special() {
        text.push_str(&special.descriptor_info(caller, process));
    }
    Some(text)
}

/// `loginuid` and `sessionid`: no login ever set them (Linux's "unset",
/// -1 as an unsigned number).
pub fn unset_audit_id() -> String {
    String::from("4294967295")
}

/// `smaps_rollup`: `smaps`' figures summed over all areas, under one line
/// spanning them.
pub fn shared_maps_rollup(process: &Process) -> String {
    let held = process.memory();
    let memory = held.space.lock();
    let (mut first, mut last) = (u64::MAX, 0);
    let (mut resident_kib, mut anonymous_kib) = (0, 0);
    for (start, area) in memory.areas() {
        first = first.min(start);
        last = last.max(area.end);
        let resident = memory.tables().count_mapped(start, area.end) * 4;
        resident_kib += resident;
        if area.file.is_none() {
            anonymous_kib += resident;
        }
    }
    if first == u64::MAX {
        first = 0;
    }
    let mut text = String::new();
    let header = alloc::format!("{first:08x}-{last:08x} ---p 00000000 00:00 0");
    let _ = write!(
        text,
        "{header:<73}[rollup]\nRss:            {resident_kib:8} kB\nPss:            {resident_kib:8} kB\n\
         Pss_Dirty:      {resident_kib:8} kB\nPss_Anon:       {anonymous_kib:8} kB\n\
         Pss_File:       {:8} kB\nPss_Shmem:             0 kB\n\
         Shared_Clean:          0 kB\nShared_Dirty:          0 kB\n\
         Private_Clean:         0 kB\nPrivate_Dirty:  {resident_kib:8} kB\n\
         Referenced:     {resident_kib:8} kB\nAnonymous:      {anonymous_kib:8} kB\n\
         KSM:                   0 kB\nLazyFree:              0 kB\nAnonHugePages:         0 kB\n\
         ShmemPmdMapped:        0 kB\nFilePmdMapped:         0 kB\nShared_Hugetlb:        0 kB\n\
         Private_Hugetlb:       0 kB\nSwap:                  0 kB\nSwapPss:               0 kB\n\
         Locked:                0 kB\n",
        resident_kib - anonymous_kib
    );
    text
}
