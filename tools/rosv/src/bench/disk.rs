//! `rosv bench disk --volume-exec`: writes, fsyncs and metadata changes on
//! an ext4 volume and on a host directory shared over 9P in rosv, next to
//! the same program on the host; with `--nfs`, also on an NFS export of
//! this host in rosv, next to the same program in the export's directory
//! on the host.
//!
//! The measuring program (such as tests/guest/disk-ops.c) takes a
//! directory and a size in MiB and prints `name: N ns` lines. In rosv it
//! works in a fresh ext4 volume (`rosv volume create`, mounted at /data);
//! on the host in a fresh directory under the system's temporary
//! directory, whose filesystem the report names.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Measurement, boot_captured, figures, hypervisor_name};
use crate::cli::MachineArgs;
use crate::image::{self, Image, ImageSpec};
use crate::nfs::{self, NfsMount};
use crate::vm::{Outcome, VmConfig};
use crate::volume::{self, Volume};

/// The filesystem type of the directory `path`, as `stat -f` names it.
fn filesystem_type(path: &Path) -> String {
    let output = std::process::Command::new("stat").args(["-f", "-c", "%T"]).arg(path).output();
    output
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| String::from("unknown"))
}

/// Runs `program` on an ext4 volume in rosv and in a host directory with
/// `size_mib`, and prints the figures side by side.
pub fn volume_operations(program: &Path, size_mib: u32, machine: &MachineArgs) -> Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let size = size_mib.to_string();

    let host_directory = scratch.path().join("host");
    std::fs::create_dir(&host_directory).context("cannot create the host's directory")?;
    let host = run_on_host(program, &host_directory, &size)?;

    let volume_file = scratch.path().join("data.ext4");
    // Room for the written file, the journal and the metadata.
    volume::create(&volume_file, (u64::from(size_mib) + 128) << 20)?;
    let measurement = measure_on_volume(program, &size, volume_file, scratch.path(), machine, &host)?;
    println!(
        "writes, fsyncs and metadata: an ext4 volume in rosv, a directory on the host's {} (no Linux guest)",
        filesystem_type(&host_directory)
    );
    measurement.print(program, "ns", |value| value);
    Ok(())
}

/// Runs `program` with `size_mib` in rosv on a host directory shared over
/// 9P (`--volume DIR:/data`) and on the host in a directory beside it on
/// the same filesystem, and prints the figures side by side. Only QEMU
/// shares directories; with another hypervisor this says so and goes on.
pub fn shared_directory_operations(program: &Path, size_mib: u32, machine: &MachineArgs) -> Result<()> {
    if machine.hypervisor != crate::vm::Hypervisor::Qemu {
        println!("a host directory over 9P: skipped, only QEMU shares host directories");
        return Ok(());
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let size = size_mib.to_string();
    let host = run_beside_guest(program, scratch.path(), &size)?;
    let guest_directory = scratch.path().join("guest");
    let measurement = measure_on_volume(program, &size, guest_directory, scratch.path(), machine, &host)?;
    println!(
        "writes, fsyncs and metadata: a host directory over 9P in rosv, the same filesystem ({}) on the host",
        filesystem_type(scratch.path())
    );
    measurement.print(program, "ns", |value| value);
    Ok(())
}

/// Boots `config` and gives what the program printed; an error if it
/// failed.
/// Runs the bench `program` for `size` MiB in a VM on `machine` with
/// `source` (a volume file or a host directory) at /data, and pairs its
/// figures with the host's run `host`.
fn measure_on_volume(
    program: &Path,
    size: &str,
    source: std::path::PathBuf,
    scratch: &Path,
    machine: &MachineArgs,
    host: &std::process::Output,
) -> Result<Measurement> {
    let arguments = [String::from("/data"), size.to_string()];
    let spec = ImageSpec::from_executable(program, &arguments, &[])?;
    let image_directory = scratch.join("image");
    image::write(&spec, &image_directory)?;
    let mut config = VmConfig::new(&Image::open(&image_directory)?, machine, &[], None)?;
    let data = Volume { source, target: String::from("/data"), is_read_only: false };
    volume::attach(&mut config, &[data], machine.hypervisor)?;
    let output = run_guest(&config, machine, scratch)?;
    Ok(Measurement {
        guest: figures(&output),
        linux: None,
        host: figures(&String::from_utf8_lossy(&host.stdout)),
        hypervisor: hypervisor_name(machine),
        cpus: config.cpus,
        memory_mib: config.memory_mib,
    })
}

/// Runs the bench `program` on the host in `directory` for `size` MiB;
/// its output.
fn run_on_host(program: &Path, directory: &Path, size: &str) -> Result<std::process::Output> {
    let host = std::process::Command::new(program)
        .arg(directory)
        .arg(size)
        .output()
        .with_context(|| format!("cannot run {} on the host", program.display()))?;
    if !host.status.success() {
        bail!("{} failed on the host ({})", program.display(), host.status);
    }
    Ok(host)
}

/// Makes `host` and `guest` directories in the shared `directory` and
/// runs the bench `program` on the host in the first.
fn run_beside_guest(program: &Path, directory: &Path, size: &str) -> Result<std::process::Output> {
    for side in ["host", "guest"] {
        std::fs::create_dir(directory.join(side)).context("cannot make the bench's directories")?;
    }
    run_on_host(program, &directory.join("host"), size)
}

fn run_guest(config: &VmConfig, machine: &MachineArgs, scratch: &Path) -> Result<String> {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let limit = Duration::from_secs(machine.timeout.unwrap_or(600));
    let outcome = boot_captured(config, machine, scratch, limit, &captured)?;
    let output =
        String::from_utf8_lossy(&captured.lock().map(|bytes| bytes.clone()).unwrap_or_default()).into_owned();
    if !matches!(outcome, Outcome::Exited { reported: Some(0), .. }) {
        bail!("the program failed in rosv ({outcome:?}); output:\n{output}");
    }
    Ok(output)
}

/// Runs `program` with `size_mib` in rosv on the NFS export `export` (a
/// server on this host) and on the host in the exported directory itself,
/// and prints the figures side by side.
pub fn nfs_operations(program: &Path, size_mib: u32, export: &NfsMount, machine: &MachineArgs) -> Result<()> {
    let (mount_options, network) = nfs::kernel_options(std::slice::from_ref(export), &machine.network())?;
    if !mount_options.iter().all(|option| option.contains(",10.0.2.2:")) {
        bail!("--nfs {}: the export must be served by this host, to compare with its directory", export.host);
    }
    let exported = Path::new(&export.export);
    let work = tempfile::Builder::new()
        .prefix("rosv-bench-")
        .tempdir_in(exported)
        .with_context(|| format!("cannot make a directory in the export {}", exported.display()))?;
    let name = work.path().file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let size = size_mib.to_string();
    let host = run_beside_guest(program, work.path(), &size)?;
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let arguments = [format!("{}/{name}/guest", export.target), size];
    let spec = ImageSpec::from_executable(program, &arguments, &[])?;
    let image_directory = scratch.path().join("image");
    image::write(&spec, &image_directory)?;
    let machine = MachineArgs { net: Some(network), ..machine.clone() };
    let mut config = VmConfig::new(&Image::open(&image_directory)?, &machine, &[], None)?;
    config.add_kernel_options(&mount_options);
    let output = run_guest(&config, &machine, scratch.path())?;
    let measurement = Measurement {
        guest: figures(&output),
        linux: None,
        host: figures(&String::from_utf8_lossy(&host.stdout)),
        hypervisor: hypervisor_name(&machine),
        cpus: config.cpus,
        memory_mib: config.memory_mib,
    };
    println!(
        "writes, fsyncs and metadata: the NFS export in rosv, its directory on the host's {} (no Linux guest)",
        filesystem_type(work.path())
    );
    measurement.print(program, "ns", |value| value);
    Ok(())
}
