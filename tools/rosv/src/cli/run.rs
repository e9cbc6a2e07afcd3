//! `rosv run`: a VM in the foreground or the background, from an image
//! directory, a disk, a host program or a container.

use anyhow::{Context, Result, bail};

use super::{MachineArgs, RunArgs};
use crate::image;
use crate::image::{Image, ImageSpec};
use crate::streams::StreamOptions;
use crate::vm::{self, VmConfig};

pub(super) fn run(arguments: RunArgs) -> Result<u8> {
    if arguments.detach {
        if arguments.tty {
            bail!("-d and -t do not mix: a VM in the background has no terminal");
        }
        let program = match (&arguments.exec, arguments.command.first()) {
            (Some(executable), _) => executable.to_string_lossy().into_owned(),
            (None, Some(program)) => program.clone(),
            (None, None) => arguments
                .image
                .as_deref()
                .map(|image| image.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let name = crate::detached::start(
            without_detach(std::env::args_os().skip(1)),
            arguments.name.as_deref(),
            &program,
        )?;
        println!("{name}");
        return Ok(0);
    }
    let status = run_here(&arguments);
    if let Some(record) = std::env::var_os(crate::detached::RECORD_VARIABLE) {
        let code = match &status {
            Ok(code) => *code,
            Err(_) => vm::TOOL_FAILURE,
        };
        crate::detached::Record::record_exit(std::path::Path::new(&record), code);
    }
    status
}

fn run_here(arguments: &RunArgs) -> Result<u8> {
    let temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = match (&arguments.image, &arguments.exec) {
        (Some(path), None) if path.is_file() => return run_disk(arguments, path, temporary.path()),
        (Some(path), None) => {
            let packages = &arguments.packages;
            if !packages.packages.is_empty() || !packages.excludes.is_empty() || packages.dry_run {
                bail!(
                    "--package, --exclude and --dry-run choose what --exec FILE takes; an image is already built"
                );
            }
            Image::open(path)?
        }
        (None, Some(executable)) => {
            let (spec, report) =
                ImageSpec::from_program(executable, &arguments.command, &[], &arguments.packages.options())?;
            if arguments.packages.dry_run {
                print!("{report}");
                return Ok(0);
            }
            if arguments.machine.verbose {
                eprint!("{report}");
            }
            let directory = temporary.path().join("image");
            image::write(&spec, &directory)?;
            Image::open(&directory)?
        }
        (None, None) if let Some(container) = &arguments.oci => {
            let spec = ImageSpec::from_container(container, &arguments.command, &[])?;
            let directory = temporary.path().join("image");
            image::write(&spec, &directory)?;
            Image::open(&directory)?
        }
        _ => bail!("give an image directory, --exec FILE or --oci PATH"),
    };
    let command = if arguments.exec.is_none() && arguments.oci.is_none() && !arguments.command.is_empty() {
        Some(arguments.command.as_slice())
    } else {
        None
    };
    let (nfs_options, network) = crate::nfs::kernel_options(&arguments.nfs, &arguments.machine.network())?;
    let machine = MachineArgs { net: Some(network), ..arguments.machine.clone() };
    let mut config = VmConfig::new(&image, &machine, &arguments.environment, command)?;
    crate::volume::attach(&mut config, &arguments.volume, arguments.machine.hypervisor)?;
    config.add_kernel_options(&nfs_options);
    let mut options = Vec::new();
    if let Some(directory) = &arguments.workdir {
        if !directory.starts_with('/') {
            bail!("-w {directory}: give the working directory as an absolute path in the image, e.g. /srv");
        }
        options.push(rosv_cmdline::option_with_value("cwd", directory));
    }
    if let Some((user, group)) = arguments.user {
        options.push(format!("--user={user}:{group}"));
    }
    config.override_kernel_options(&options);
    let streams = StreamOptions { is_interactive: arguments.interactive, has_terminal: arguments.tty };
    vm::run(&config, &machine, temporary.path(), streams)
}

/// Boots the disk image at `path` through its firmware.
fn run_disk(arguments: &RunArgs, path: &std::path::Path, scratch: &std::path::Path) -> Result<u8> {
    let packages = &arguments.packages;
    if !arguments.command.is_empty()
        || !arguments.environment.is_empty()
        || arguments.workdir.is_some()
        || arguments.user.is_some()
        || !arguments.volume.is_empty()
        || !packages.packages.is_empty()
        || !packages.excludes.is_empty()
        || packages.dry_run
    {
        bail!(
            "{}: a disk boots with the command, environment and options it was built with; \
             build it again with rosv build --format to change them",
            path.display()
        );
    }
    if arguments.tty {
        bail!(
            "{}: -t needs the kernel to know about the terminal, and a disk's kernel options are fixed; \
             leave out -t (-i still forwards standard input)",
            path.display()
        );
    }
    let disk = crate::disk::inspect(path, arguments.firmware)?;
    let config = VmConfig::for_disk(disk, &arguments.machine)?;
    let streams = StreamOptions { is_interactive: arguments.interactive, has_terminal: arguments.tty };
    vm::run(&config, &arguments.machine, scratch, streams)
}

/// `rosv run`'s arguments without `-d`/`--detach` (also taken out of a
/// group of short flags such as `-di`) and `--name`, which only go with
/// it, for the rosv that runs the VM in the background.
pub(super) fn without_detach(arguments: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut kept = Vec::new();
    let mut is_after_separator = false;
    let mut is_name_next = false;
    for argument in arguments {
        if is_after_separator {
            kept.push(argument);
            continue;
        }
        if std::mem::take(&mut is_name_next) {
            continue;
        }
        let text = argument.to_string_lossy();
        if text == "--" {
            is_after_separator = true;
        } else if text == "--name" {
            is_name_next = true;
            continue;
        } else if text == "--detach" || text == "-d" || text.starts_with("--name=") {
            continue;
        } else if text.starts_with('-')
            && !text.starts_with("--")
            && text.len() > 2
            && text[1..].chars().all(|character| "dit".contains(character))
        {
            let rest: String = text[1..].chars().filter(|&character| character != 'd').collect();
            kept.push(format!("-{rest}").into());
            continue;
        }
        kept.push(argument);
    }
    kept
}
