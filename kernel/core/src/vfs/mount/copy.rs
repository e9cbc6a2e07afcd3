//! Copies of the mount table for new mount namespaces.
//!
//! A copy has a mount of its own for each mount of the original, in the
//! same place, so mounts and unmounts in one tree do not reach the other;
//! nothing propagates between them (every mount acts as private).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use spin::Mutex;

use super::{FileSystem, Location, Mount, Vfs};

/// The trees of every mount namespace made by [`Vfs::copy`] (and the
/// trees they were copied from), so that an unmount in one leaves a
/// filesystem another still shows.
static TABLES: Mutex<Vec<Weak<Vfs>>> = Mutex::new(Vec::new());

impl Vfs {
    /// A copy of the tree for a new mount namespace: a mount of its own in
    /// the same place for each of these, so that what is mounted or
    /// unmounted in one does not reach the other (every mount is private:
    /// nothing propagates). The copies keep their device numbers.
    pub fn copy(self: &Arc<Self>) -> Arc<Vfs> {
        let mut pairs: Vec<(Arc<Mount>, Arc<Mount>)> = Vec::new();
        for mount in self.mounts() {
            let mount_point = mount.mount_point.as_ref().map(|(location, name)| {
                let parent = pairs
                    .iter()
                    .find(|(original, _)| Arc::ptr_eq(original, &location.mount))
                    .map_or_else(|| location.mount.clone(), |(_, copy)| copy.clone());
                (Location { mount: parent, node: location.node.clone() }, name.clone())
            });
            let copy = Arc::new(Mount {
                device: mount.device,
                filesystem: mount.filesystem.clone(),
                root: mount.root.clone(),
                source: mount.source.clone(),
                type_name: mount.type_name.clone(),
                mount_point,
                read_only: AtomicBool::new(mount.read_only.load(Ordering::Relaxed)),
                attributes: AtomicU32::new(mount.attributes()),
            });
            pairs.push((mount, copy));
        }
        let root = pairs
            .iter()
            .find(|(original, _)| Arc::ptr_eq(original, &self.root))
            .map_or_else(|| self.root.clone(), |(_, copy)| copy.clone());
        let copy = Arc::new(Vfs {
            mounts: Mutex::new(pairs.into_iter().map(|(_, copy)| copy).collect()),
            root,
            next_device: self.next_device.clone(),
            channels: Mutex::new(self.channels.lock().clone()),
        });
        let mut tables = TABLES.lock();
        tables.retain(|table| table.strong_count() > 0);
        for table in [self, &copy] {
            if !tables.iter().any(|known| core::ptr::eq(known.as_ptr(), Arc::as_ptr(table))) {
                tables.push(Arc::downgrade(table));
            }
        }
        copy
    }

    /// Where `location`, found in the tree this one was copied from, is
    /// in this one: the mount with the same device and root (a working
    /// directory moves so into a new mount namespace).
    pub fn translate(&self, location: &Location) -> Location {
        let mounts = self.mounts.lock();
        let same = mounts.iter().find(|mount| {
            mount.device == location.mount.device && Arc::ptr_eq(&mount.root, &location.mount.root)
        });
        match same {
            Some(mount) => Location { mount: mount.clone(), node: location.node.clone() },
            None => location.clone(),
        }
    }

    /// The filesystems other mount namespaces' trees show.
    pub(super) fn shown_elsewhere(&self) -> Vec<Arc<dyn FileSystem>> {
        let tables: Vec<Arc<Vfs>> = TABLES.lock().iter().filter_map(Weak::upgrade).collect();
        tables
            .iter()
            .filter(|table| !core::ptr::eq(Arc::as_ptr(table), self))
            .flat_map(|table| table.mounts().into_iter().map(|mount| mount.filesystem.clone()))
            .collect()
    }
}
