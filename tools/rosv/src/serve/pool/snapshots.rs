//! A snapshot function's template and snapshot: which VM boots as the
//! template, saving it once its runtime waits, and starting the others
//! from the file (see `serve::snapshot`).

use std::sync::Mutex;

use anyhow::{Context, Result};

use super::{Pool, lock};
use crate::serve::instance::Instance;
use crate::serve::log;
use crate::serve::runtime_api::RuntimeApi;
use crate::serve::snapshot::{self, Launch};
use crate::vm::VmConfig;

/// A snapshot function's template and snapshot (see `snapshot`).
#[derive(Debug)]
pub(super) struct Snapshots {
    /// Holds the snapshot and the VMs' sockets.
    pub(super) directory: tempfile::TempDir,
    /// The configuration of every VM: the template's, which the snapshot
    /// holds in its memory.
    pub(super) vm_config: VmConfig,
    pub(super) state: Mutex<SnapshotState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SnapshotState {
    /// None yet: the next VM boots as the template.
    Missing,
    /// The template boots; it is saved when its runtime is ready.
    Booting,
    /// Being saved.
    Saving,
    /// VMs start from this file.
    Ready(std::path::PathBuf),
    /// Saving or restoring failed: VMs boot.
    Failed,
}

impl Pool {
    /// Starts a VM of a snapshot function: the template if there is no
    /// snapshot yet, else from the snapshot (or booted, while the template
    /// boots or if snapshots failed).
    pub(super) fn start_snapshot_instance(&self, label: &str) -> Result<Instance> {
        let snapshots = self.snapshots.as_ref().context("the function takes no snapshots")?;
        let directory = snapshots.directory.path();
        let file_label = label.replace('#', "-");
        let socket = directory.join(format!("runtime-{file_label}.sock"));
        let mut launch = Launch {
            runtime_socket: Some(socket.clone()),
            // The template has the control port too: a snapshot restores
            // into the same devices.
            control_socket: Some(directory.join(format!("control-{file_label}.sock"))),
            ..Launch::default()
        };
        let mut state = lock(&snapshots.state);
        let is_template = *state == SnapshotState::Missing;
        match &*state {
            SnapshotState::Missing => launch.monitor = Some(directory.join("template.monitor")),
            SnapshotState::Ready(file) => {
                launch.incoming = Some(file.clone());
                launch.monitor = Some(directory.join(format!("{file_label}.monitor")));
            }
            _ => {}
        }
        let runtime = RuntimeApi::start_on_socket(self.arn(), &socket, launch.incoming.is_some())?;
        let started = Instance::start(
            label.to_string(),
            &snapshots.vm_config,
            &self.launcher,
            None,
            Some(runtime),
            &launch,
        );
        if is_template && started.is_ok() {
            *state = SnapshotState::Booting;
        }
        started
    }

    /// Saves `instance` as the function's snapshot if it is the template
    /// and its runtime is ready (it waits for an invocation now).
    pub(super) fn save_if_template(&self, instance: &Instance) {
        let (Some(snapshots), Some(monitor)) = (&self.snapshots, &instance.launch.monitor) else { return };
        {
            let mut state = lock(&snapshots.state);
            if *state != SnapshotState::Booting {
                return;
            }
            *state = SnapshotState::Saving;
        }
        let file = snapshots.directory.path().join("snapshot");
        let outcome = snapshot::save(monitor, &file);
        let mut state = lock(&snapshots.state);
        match outcome {
            Ok(time) => {
                let size_mib = std::fs::metadata(&file).map_or(0, |metadata| metadata.len() >> 20);
                log(&format!(
                    "{} saved as the snapshot of function {} in {:.3} s ({size_mib} MiB)",
                    instance.label,
                    self.function.name,
                    time.as_secs_f64()
                ));
                *state = SnapshotState::Ready(file);
            }
            Err(error) => {
                log(&format!("{}: cannot save a snapshot: {error:#}; VMs will boot", instance.label));
                *state = SnapshotState::Failed;
            }
        }
    }

    /// Whether `instance` is the template and being saved.
    pub(super) fn is_being_saved(&self, instance: &Instance) -> bool {
        match (&self.snapshots, &instance.launch.monitor, &instance.launch.incoming) {
            (Some(snapshots), Some(_), None) => *lock(&snapshots.state) == SnapshotState::Saving,
            _ => false,
        }
    }

    /// Lets the next VM be the template if `instance`, the template, ends
    /// before it was saved.
    pub(super) fn forget_template(&self, instance: &Instance) {
        if let (Some(snapshots), Some(_), None) =
            (&self.snapshots, &instance.launch.monitor, &instance.launch.incoming)
        {
            let mut state = lock(&snapshots.state);
            if *state == SnapshotState::Booting {
                *state = SnapshotState::Missing;
            }
        }
    }

    /// Gives up starting VMs from the snapshot (one started from it ended
    /// before it answered).
    pub(super) fn snapshot_failed(&self, instance: &Instance) {
        if let (Some(snapshots), Some(_)) = (&self.snapshots, &instance.launch.incoming) {
            log(&format!("{} did not resume from the snapshot; VMs will boot", instance.label));
            *lock(&snapshots.state) = SnapshotState::Failed;
        }
    }
}
