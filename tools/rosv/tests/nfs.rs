//! Boot tests of the NFS client against a real server on the host:
//! nfs-ganesha with its VFS backend, exporting a temporary directory on the
//! loopback, which the guest reaches at 10.0.2.2 through QEMU's user
//! network. Files and directories made in the guest are checked on the
//! host, a 64 MiB file and 8 threads' 64 MiB files travel both ways with their
//! contents checked, a killed server makes reads fail with `EIO` within
//! the mount's timeout, and the guest's throughput is printed beside the
//! host's on the same directory. Each test is skipped, visibly, where
//! ganesha or rpcbind is missing or the tests do not run as root.

mod guests;
mod support;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::{Guest, free_port, path, rosv_run, skip, text};

/// One server at a time: ganesha registers with the one portmapper.
static SERVER_LOCK: Mutex<()> = Mutex::new(());

/// A program on the path or in the system directories.
fn program(name: &str) -> Option<PathBuf> {
    let mut directories: Vec<PathBuf> =
        std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect()).unwrap_or_default();
    directories.extend(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()]);
    directories.into_iter().map(|directory| directory.join(name)).find(|candidate| candidate.is_file())
}

/// Whether the tests run as root (ganesha's VFS backend opens files by
/// handle, which needs `CAP_DAC_READ_SEARCH`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
    })
}

/// Whether something listens on the loopback's `port`.
fn is_listening(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_millis(500))
        .is_ok()
}

/// A ganesha server exporting a temporary directory over NFSv3 on TCP,
/// and the portmapper it registers with when none was running.
struct Server {
    directory: tempfile::TempDir,
    ganesha: Option<Child>,
    rpcbind: Option<Child>,
    nfs_port: u16,
    mount_port: u16,
    _lock: MutexGuard<'static, ()>,
}

impl Server {
    /// Starts one, or says why it cannot and gives `None`.
    fn start(test: &str) -> Option<Server> {
        let lock = SERVER_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (Some(ganesha), Some(rpcbind)) = (program("ganesha.nfsd"), program("rpcbind")) else {
            skip(
                test,
                "nfs-ganesha or rpcbind is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)",
            );
            return None;
        };
        if !Path::new("/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so").exists() {
            skip(test, "ganesha's VFS backend is not installed (apt-get install nfs-ganesha-vfs)");
            return None;
        }
        if !is_root() {
            skip(test, "ganesha's VFS backend needs root");
            return None;
        }
        let rpcbind = if is_listening(111) {
            None
        } else {
            let child = Command::new(rpcbind)
                .args(["-f", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start rpcbind");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !is_listening(111) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(child)
        };
        let directory = tempfile::tempdir().expect("a temporary directory");
        let export = directory.path().join("export");
        std::fs::create_dir(&export).expect("make the export");
        let (nfs_port, mount_port) = (free_port(), free_port());
        let configuration = format!(
            "NFS_CORE_PARAM {{
    Protocols = 3;
    NFS_Port = {nfs_port};
    MNT_Port = {mount_port};
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Bind_addr = 127.0.0.1;
    Plugins_Dir = \"/usr/lib/x86_64-linux-gnu/ganesha\";
}}
NFSV4 {{ Graceless = true; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
    Export_Id = 1;
    Path = \"{export}\";
    Pseudo = \"{export}\";
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = WARN; }}
",
            export = export.display()
        );
        let configuration_file = directory.path().join("ganesha.conf");
        std::fs::write(&configuration_file, configuration).expect("write ganesha's configuration");
        let child = Command::new(ganesha)
            .arg("-F")
            .arg("-f")
            .arg(&configuration_file)
            .arg("-L")
            .arg(directory.path().join("ganesha.log"))
            .arg("-p")
            .arg(directory.path().join("ganesha.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ganesha");
        let mut server =
            Server { directory, ganesha: Some(child), rpcbind, nfs_port, mount_port, _lock: lock };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(is_listening(nfs_port) && is_listening(mount_port)) {
            let has_ended =
                server.ganesha.as_mut().is_some_and(|child| child.try_wait().ok().flatten().is_some());
            if has_ended || Instant::now() > deadline {
                panic!("ganesha did not start; its log:\n{}", server.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(server)
    }

    /// The exported directory.
    fn export(&self) -> PathBuf {
        self.directory.path().join("export")
    }

    /// `--nfs` for the export at `/mnt`, with explicit ports and `options`.
    fn mount_argument(&self, options: &str) -> String {
        let mut argument = format!(
            "127.0.0.1:{}:/mnt:port={},mountport={}",
            self.export().display(),
            self.nfs_port,
            self.mount_port
        );
        if !options.is_empty() {
            argument.push(',');
            argument.push_str(options);
        }
        argument
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("ganesha.log")).unwrap_or_default()
    }

    /// Kills the server at once.
    fn kill(&mut self) {
        if let Some(mut child) = self.ganesha.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.ganesha.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut child) = self.rpcbind.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The guest program of `tests/guest/nfs.c`.
fn guest_program() -> PathBuf {
    guests::c_program("nfs", guests::Variant::GlibcStatic)
}

/// Byte `offset` of `pattern(key)` in `tests/guest/nfs.c`.
fn pattern(offset: u64, key: u64) -> u8 {
    ((offset * 7 + key + offset / 4096) % 253) as u8
}

/// FNV-1a, 64 bits, as the guest computes it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(14695981039346656037u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(1099511628211))
}

/// Files, directories, links and attributes made in the guest, checked
/// there and then on the host; the mount finds its ports through the
/// host's portmapper (no port options).
#[test]
fn files_and_directories_round_trip() {
    let test = "files_and_directories_round_trip";
    let Some(server) = Server::start(test) else { return };
    std::fs::write(server.export().join("from-host"), "written by the host\n").expect("write from-host");
    let program = guest_program();
    let mount = format!("127.0.0.1:{}:/mnt", server.export().display());
    let output = rosv_run(&["--nfs", &mount, "--exec", path(&program), "--", "files", "/mnt"]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\nfiles done 0\n"), "{stdout}\nganesha:\n{}", server.log());
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
    let note = std::fs::read_to_string(server.export().join("kept/note")).expect("kept/note on the host");
    assert_eq!(note, "written by the guest\n");
    let owned = std::fs::metadata(server.export().join("kept/owned")).expect("kept/owned on the host");
    assert_eq!((owned.uid(), owned.gid()), (1234, 567));
    let mut listing: Vec<String> = std::fs::read_dir(server.export().join("work"))
        .expect("work on the host")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    listing.sort();
    assert_eq!(listing, ["c", "d1", "fifo", "many", "moved", "s"]);
    assert_eq!(std::fs::read_link(server.export().join("work/s")).expect("work/s"), Path::new("c"));
    assert_eq!(std::fs::read(server.export().join("work/c")).expect("work/c"), b"hello");
    let mode = std::fs::metadata(server.export().join("work/c")).expect("work/c").mode();
    assert_eq!(mode & 0o7777, 0o600);
    assert!(server.export().join("work/moved/d3").is_dir());
}

/// A 64 MiB file written in the guest has the bytes it wrote, on the
/// host and read back in the guest.
#[test]
fn a_large_file_keeps_its_bytes() {
    let test = "a_large_file_keeps_its_bytes";
    let Some(server) = Server::start(test) else { return };
    let program = guest_program();
    let mount = server.mount_argument("");
    let output = rosv_run(&["--nfs", &mount, "--exec", path(&program), "--", "big", "/mnt", "64"]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\nbig done 0\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
    let bytes = std::fs::read(server.export().join("big")).expect("big on the host");
    assert_eq!(bytes.len(), 64 << 20);
    let expected: Vec<u8> = (0..bytes.len() as u64).map(|offset| pattern(offset, 0)).collect();
    assert!(bytes == expected, "the host reads other bytes than the guest wrote");
    let checksum = format!("big checksum {:016x}\n", fnv(&bytes));
    assert!(stdout.contains(&checksum), "the guest read back other bytes: {stdout}");
}

/// Eight threads write and read their own 64 MiB files at once over the
/// one connection; each file holds its thread's pattern on the host.
#[test]
fn many_threads_share_the_mount() {
    let test = "many_threads_share_the_mount";
    let Some(server) = Server::start(test) else { return };
    let program = guest_program();
    let mount = server.mount_argument("");
    let output = rosv_run(&[
        "--cpus",
        "2",
        "--nfs",
        &mount,
        "--exec",
        path(&program),
        "--",
        "threads",
        "/mnt",
        "8",
        "64",
    ]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\nthreads done 0\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
    for key in 0..8u64 {
        let bytes = std::fs::read(server.export().join(format!("t{key}"))).expect("a thread's file");
        assert_eq!(bytes.len(), 64 << 20, "t{key}");
        assert!(
            bytes.iter().enumerate().all(|(offset, byte)| *byte == pattern(offset as u64, key)),
            "t{key} holds other bytes"
        );
    }
}

/// Reads from a server that is killed fail with EIO once the mount's
/// timeout (2 s × 2 tries) passes, and the machine then ends normally.
#[test]
fn a_killed_server_gives_eio_within_the_timeout() {
    let test = "a_killed_server_gives_eio_within_the_timeout";
    let Some(mut server) = Server::start(test) else { return };
    std::fs::write(server.export().join("big"), vec![7u8; 4 << 20]).expect("write big");
    let program = guest_program();
    let mount = server.mount_argument("timeo=20,retrans=1");
    let mut guest = Guest::start(&["--nfs", &mount, "--exec", path(&program), "--", "stall", "/mnt"]);
    if !guest.wait_for("reading", Duration::from_secs(120)) {
        guest.abandon("the guest did not start reading");
    }
    std::thread::sleep(Duration::from_secs(2));
    server.kill();
    let killed = Instant::now();
    let found = guest.wait_for("read failed", Duration::from_secs(120));
    let waited = killed.elapsed();
    let (status, console) = guest.finish();
    assert!(found, "no read failed: {console}");
    let line = console.lines().find(|line| line.starts_with("read failed")).expect("the failure line");
    let milliseconds: u64 = line
        .strip_prefix("read failed EIO after ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("not EIO after N ms: {line}"));
    assert!((3_500..=15_000).contains(&milliseconds), "the failing read took {milliseconds} ms: {line}");
    assert!(waited < Duration::from_secs(60), "the guest hung for {waited:?}");
    assert_eq!(status, Some(0), "{console}");
}

/// Throughput and small-file rates from the guest over NFS, beside the
/// host's own on the exported directory (figures, not bounds: the guest
/// runs under emulation here).
#[test]
fn nfs_figures_beside_the_host() {
    let test = "nfs_figures_beside_the_host";
    let Some(server) = Server::start(test) else { return };
    let program = guest_program();
    let mount = server.mount_argument("");
    let (mib, files) = (32u64, 200usize);
    let output = rosv_run(&[
        "--nfs",
        &mount,
        "--exec",
        path(&program),
        "--",
        "bench",
        "/mnt",
        &mib.to_string(),
        &files.to_string(),
    ]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\nbench done 0\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
    let figure = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("bench {name} ")))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no {name} figure: {stdout}"))
    };
    let host = host_figures(&server.export().join("host-bench"), mib, files);
    println!("nfs figures (guest over NFS under emulation | host on the export directly):");
    println!("  sequential write  {:>10.1} | {:>10.1} MiB/s", figure("write"), host.0);
    println!("  sequential read   {:>10.1} | {:>10.1} MiB/s", figure("read"), host.1);
    println!("  small files       {:>10.0} | {:>10.0} files/s", figure("small"), host.2);
    assert!(figure("write") > 0.0 && figure("read") > 0.0 && figure("small") > 0.0);
}

/// The same operations as the guest's bench on the host's directory:
/// write and read MiB/s, small files per second.
fn host_figures(directory: &Path, mib: u64, files: usize) -> (f64, f64, f64) {
    use std::io::Write;
    std::fs::create_dir_all(directory.join("small")).expect("the host's bench directory");
    let buffer: Vec<u8> = (0..1u64 << 20).map(|offset| pattern(offset, 1)).collect();
    let file_path = directory.join("bench");
    let start = Instant::now();
    let mut file = std::fs::File::create(&file_path).expect("create the host's bench file");
    for _ in 0..mib {
        file.write_all(&buffer).expect("write");
    }
    file.sync_all().expect("fsync");
    drop(file);
    let write = mib as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut file = std::fs::File::open(&file_path).expect("open the host's bench file");
    let mut read_buffer = vec![0u8; 1 << 20];
    while file.read(&mut read_buffer).expect("read") > 0 {}
    let read = mib as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for index in 0..files {
        std::fs::write(directory.join(format!("small/f{index}")), &buffer[..4096]).expect("a small file");
    }
    let small = files as f64 / start.elapsed().as_secs_f64();
    (write, read, small)
}
