//! The Linux reference guest of the benchmarks: Debian's cloud kernel with
//! an initramfs built here, on the same hypervisor, machine type, memory
//! and CPUs as the rosv guest it is compared with.
//!
//! The initramfs (a `newc` cpio archive) holds the measuring program as
//! `/init`, the files it needs and `/dev/console`. The kernel runs it as
//! its first process with the program's arguments (after `--` on the
//! command line); when it exits the kernel panics, and `panic=-1` with
//! QEMU's `-no-reboot` ends the VM. Only QEMU runs it: Firecracker and
//! the built-in monitor boot PVH kernels, and the cloud kernel is a
//! bzImage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rosv_rofs::writer::{Contents, Directory, Node};

use crate::cli::MachineArgs;
use crate::machine::Machine;
use crate::qemu;
use crate::vm::Hypervisor;

/// The Debian package of the reference kernel.
pub const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";

/// The newest installed cloud kernel, installing the package when none is
/// and this is a Debian system run as root.
pub fn kernel() -> Result<PathBuf> {
    if let Some(kernel) = installed_kernel() {
        return Ok(kernel);
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        bail!("no Linux kernel in /boot for the reference guest; install {KERNEL_PACKAGE} or its equivalent");
    }
    eprintln!("installing {KERNEL_PACKAGE} for the Linux reference guest");
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", KERNEL_PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("apt-get install {KERNEL_PACKAGE} failed ({status}); install it as root");
    }
    installed_kernel().with_context(|| format!("{KERNEL_PACKAGE} installed no /boot/vmlinuz-*-cloud-amd64"))
}

fn installed_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-") && name.ends_with("-cloud-amd64"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// A file or symbolic link of the initramfs.
pub struct Entry {
    /// Its path, without a leading slash.
    pub path: String,
    /// Its contents (a link's target).
    pub contents: Vec<u8>,
    /// Its type and permission bits.
    pub mode: u32,
}

impl Entry {
    /// A regular file with `permissions`.
    pub fn file(path: &str, contents: Vec<u8>, permissions: u32) -> Entry {
        Entry { path: path.to_string(), contents, mode: REGULAR | permissions }
    }

    /// A symbolic link to `target`.
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry { path: path.to_string(), contents: target.as_bytes().to_vec(), mode: SYMLINK | 0o777 }
    }
}

/// `newc` file types.
const DIRECTORY: u32 = 0o040000;
const REGULAR: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;
const CHARACTER_DEVICE: u32 = 0o020000;

/// The files and links of an image tree, as initramfs entries (every file
/// executable, as the tree keeps no modes).
pub fn entries(root: &Directory) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    collect(root, "", &mut entries)?;
    Ok(entries)
}

fn collect(directory: &Directory, prefix: &str, entries: &mut Vec<Entry>) -> Result<()> {
    for (name, node) in &directory.entries {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        match node {
            Node::Directory(inner) => collect(inner, &path, entries)?,
            Node::Symlink(target) => entries.push(Entry::symlink(&path, target)),
            Node::File(Contents::Bytes(bytes)) => entries.push(Entry::file(&path, bytes.clone(), 0o755)),
            Node::File(Contents::HostFile(host)) => {
                let bytes = std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
                entries.push(Entry::file(&path, bytes, 0o755));
            }
        }
    }
    Ok(())
}

/// A `newc` cpio archive (the initramfs format, `cpio(5)`) of `entries`,
/// with `/dev/console` (character device 5:1) and the directories every
/// entry lies in.
pub fn initramfs(entries: &[Entry]) -> Vec<u8> {
    let mut archive = Vec::new();
    let mut directories: Vec<String> = vec![String::from("dev")];
    for entry in entries {
        let mut parent = Path::new(&entry.path).parent();
        while let Some(directory) = parent.filter(|directory| !directory.as_os_str().is_empty()) {
            let name = directory.to_string_lossy().into_owned();
            if !directories.contains(&name) {
                directories.push(name);
            }
            parent = directory.parent();
        }
    }
    directories.sort();
    let mut inode = 1;
    for directory in &directories {
        push_cpio_entry(&mut archive, inode, directory, DIRECTORY | 0o755, (0, 0), &[]);
        inode += 1;
    }
    push_cpio_entry(&mut archive, inode, "dev/console", CHARACTER_DEVICE | 0o600, (5, 1), &[]);
    for entry in entries {
        inode += 1;
        push_cpio_entry(&mut archive, inode, &entry.path, entry.mode, (0, 0), &entry.contents);
    }
    push_cpio_entry(&mut archive, 0, "TRAILER!!!", 0, (0, 0), &[]);
    archive
}

fn push_cpio_entry(
    archive: &mut Vec<u8>,
    inode: u32,
    name: &str,
    mode: u32,
    device: (u32, u32),
    data: &[u8],
) {
    let links = if mode & DIRECTORY == DIRECTORY { 2 } else { 1 };
    let fields =
        [inode, mode, 0, 0, links, 0, data.len() as u32, 0, 0, device.0, device.1, name.len() as u32 + 1, 0];
    archive.extend_from_slice(b"070701");
    for field in fields {
        archive.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    archive.extend_from_slice(name.as_bytes());
    archive.push(0);
    archive.resize(archive.len().next_multiple_of(4), 0);
    archive.extend_from_slice(data);
    archive.resize(archive.len().next_multiple_of(4), 0);
}

/// What one boot of the reference guest printed, and when.
pub struct Run {
    /// From starting QEMU to the application's first line (the first that
    /// is not a kernel message).
    pub to_first_output: Option<Duration>,
    /// The console output.
    pub output: String,
}

/// Boots the cloud `kernel` with `initramfs` on QEMU as `machine` asks
/// (memory, CPUs, machine type), `/init` running with `arguments`, and
/// waits for it to end; notes when the application's first line appears.
pub fn boot(
    kernel: &Path,
    initramfs: &Path,
    machine: &MachineArgs,
    memory_mib: u64,
    cpus: u32,
    arguments: &[String],
) -> Result<Run> {
    let command = command(kernel, initramfs, machine, memory_mib, cpus, arguments)?;
    let limit = Duration::from_secs(machine.timeout.unwrap_or(600));
    Running::start(command)?.finish(limit)
}

/// The QEMU command that boots the cloud `kernel` as [`boot`] describes,
/// without a network card.
pub fn command(
    kernel: &Path,
    initramfs: &Path,
    machine: &MachineArgs,
    memory_mib: u64,
    cpus: u32,
    arguments: &[String],
) -> Result<Command> {
    if machine.hypervisor != Hypervisor::Qemu {
        bail!("the Linux reference guest runs on QEMU only; use --hypervisor qemu");
    }
    let acceleration = qemu::acceleration(machine.accel, crate::host::kvm())?;
    // Without ACPI on microvm: with it, Linux finds no timer to calibrate
    // the TSC against and waits for ever.
    let machine_type = match machine.machine {
        Machine::Microvm => "microvm,acpi=off",
        Machine::Pc => "pc",
    };
    // `no_timer_check`: under a loaded emulator the IO-APIC timer check
    // of pc can miss its ticks and panic the kernel at boot.
    let mut command_line = String::from("console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init");
    if !arguments.is_empty() {
        command_line.push_str(" --");
        for argument in arguments {
            command_line.push(' ');
            command_line.push_str(argument);
        }
    }
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-M", machine_type, "-accel", acceleration.accel, "-cpu", &acceleration.cpu])
        .args(["-m", &format!("{memory_mib}M"), "-smp", &cpus.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(if acceleration.counts_instructions { &["-icount", "shift=0"][..] } else { &[] })
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", &command_line]);
    Ok(command)
}

/// A guest whose console arrives line by line.
pub struct Running {
    child: Child,
    /// Lines as they came, with whether they are the guest's (not QEMU's).
    lines: mpsc::Receiver<(Instant, String, bool)>,
    started: Instant,
    output: String,
    to_first_output: Option<Duration>,
    /// What must live as long as the guest (files QEMU reads as it
    /// starts, such as a boot configuration).
    _kept: Option<Box<dyn std::any::Any>>,
}

/// Sends each line `source` gives, with when it came and whether it is the
/// guest's (`is_guest`), until it ends.
fn forward_lines(
    source: impl std::io::Read + Send + 'static,
    is_guest: bool,
    sender: mpsc::Sender<(Instant, String, bool)>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|count| count > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            if sender.send((Instant::now(), text, is_guest)).is_err() {
                break;
            }
            line.clear();
        }
    });
}

impl Running {
    /// Starts `command` with its output (the guest's console, and QEMU's
    /// own complaints) read line by line.
    pub fn start(mut command: Command) -> Result<Running> {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().context("cannot start qemu-system-x86_64")?;
        let stdout = child.stdout.take().context("QEMU's output is piped")?;
        let stderr = child.stderr.take().context("QEMU's errors are piped")?;
        let (sender, lines) = mpsc::channel();
        forward_lines(stdout, true, sender.clone());
        forward_lines(stderr, false, sender);
        Ok(Running { child, lines, started, output: String::new(), to_first_output: None, _kept: None })
    }

    /// Keeps `value` until the guest is stopped.
    pub fn keeping(mut self, value: Box<dyn std::any::Any>) -> Running {
        self._kept = Some(value);
        self
    }

    /// Takes the lines that came within `wait`; whether the output ended.
    fn take_lines(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok((at, line, is_guest)) => {
                if self.to_first_output.is_none() && is_guest && !is_kernel_message(&line) {
                    self.to_first_output = Some(at - self.started);
                }
                self.output.push_str(&line);
                false
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }

    /// Stops the guest.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while !self.take_lines(Duration::from_millis(10)) {}
        self.output
    }

    /// Waits for the guest to end, for at most `limit`.
    pub fn finish(mut self, limit: Duration) -> Result<Run> {
        while !self.take_lines(Duration::from_millis(50)) {
            if self.started.elapsed() > limit {
                let output = self.stop();
                bail!("the guest did not finish in {} s; output so far:\n{output}", limit.as_secs());
            }
        }
        let _ = self.child.wait();
        Ok(Run { to_first_output: self.to_first_output, output: self.output })
    }
}

/// Whether `line` is the kernel's (`[    1.234567] ...`) or QEMU's, not
/// the application's.
fn is_kernel_message(line: &str) -> bool {
    line.starts_with('[') || line.trim().is_empty() || line.starts_with("qemu-system")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_entries_are_newc_records_padded_to_four_bytes() {
        let archive = initramfs(&[Entry::file("bin/tool", b"abc".to_vec(), 0o755)]);
        let text = String::from_utf8_lossy(&archive);
        // Directories first (bin, dev), then the console, the file and the
        // trailer.
        let mut at = 0;
        for name in ["bin\0", "dev\0", "dev/console\0", "bin/tool\0", "TRAILER!!!\0"] {
            let found = text[at..].find(name).expect("every record in order");
            at += found + name.len();
        }
        assert_eq!(archive.len() % 4, 0);
        assert!(archive.starts_with(b"070701"));
        // The console is character device 5:1.
        let console = text.find("dev/console").expect("a console") - 110;
        assert_eq!(&text[console + 14..console + 22], format!("{:08x}", CHARACTER_DEVICE | 0o600));
        assert_eq!(&text[console + 78..console + 94], "0000000500000001");
    }
}
