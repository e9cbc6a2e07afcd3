//! `rosv bench servers`: Debian's nginx and Redis in rosv and in the Linux
//! reference guest, on the same QEMU machine, memory and CPUs, loaded from
//! the host through forwarded ports.
//!
//! nginx serves a 1 KiB file to a load generator of this module (a few
//! keep-alive connections for a fixed time, each request timed); Redis
//! answers Debian's `redis-benchmark` (SET and GET). The Linux guest's
//! initramfs holds the same image tree, Debian's static busybox, the
//! kernel's virtio network modules and an `/init` script that brings the
//! card up with QEMU's user-network address and runs the server. Both run
//! on QEMU's pc machine, whatever `--machine` says: the cloud kernel finds
//! microvm's virtio-mmio card only through ACPI tables, and with them
//! microvm offers it no clock to calibrate against.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::linux::{self, Entry, Running};
use crate::cli::MachineArgs;
use crate::image::{self, Image, ImageSpec};
use crate::machine::{Machine, VirtioTransport};
use crate::network::{Network, PortForward, Protocol};
use crate::qemu;
use crate::vm::{Hypervisor, VmConfig};

/// Arguments of `rosv bench servers`.
#[derive(Debug, Args)]
pub struct ServersBenchArgs {
    #[command(flatten)]
    load: ServerLoad,
    #[command(flatten)]
    machine: MachineArgs,
}

/// How the servers are loaded and measured.
#[derive(Debug, Clone, Args)]
pub struct ServerLoad {
    /// Seconds of load on nginx in each guest.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Keep-alive connections the load generator holds open.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    connections: u32,
    /// Requests of each redis-benchmark test.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    redis_requests: u32,
    /// Also find, by bisection, the least memory each guest serves one
    /// nginx request in.
    #[arg(long)]
    memory_search: bool,
}

/// The port nginx listens on in the guests, and Redis's.
const NGINX_PORT: u16 = 8080;
const REDIS_PORT: u16 = 6379;
/// How long a guest may take to start serving.
const START_LIMIT: Duration = Duration::from_secs(180);

const NGINX_CONFIGURATION: &str = "daemon off;
master_process off;
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    server {
        listen 8080;
        location / { root /srv; }
    }
}
";

/// The Linux guest's `/init`: loads the virtio network modules, brings
/// the card up as QEMU's user network expects, and runs the server (its
/// words replace `COMMAND`: the kernel's own arguments for init would mix
/// with those QEMU adds to the command line on microvm).
const LINUX_INIT: &str = "#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp/logs
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
for module in virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \\
    failover net_failover virtio_net; do
    # Its options on the kernel's command line (QEMU names microvm's
    # virtio-mmio devices there), as modprobe would pass them.
    options=
    for word in $(/bin/busybox cat /proc/cmdline); do
        case $word in $module.*) options=\"$options ${word#$module.}\" ;; esac
    done
    if [ -f /modules/$module.ko ]; then /bin/busybox insmod /modules/$module.ko $options; fi
done
/bin/busybox ip link set lo up
/bin/busybox ip addr add 10.0.2.15/24 dev eth0
/bin/busybox ip link set eth0 up
/bin/busybox ip route add default via 10.0.2.2
exec COMMAND
";

/// The modules `LINUX_INIT` loads, in that order.
const MODULES: [&str; 9] = [
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
];

/// Throughput and latency of one server in one guest.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    requests_per_second: f64,
    p99_ms: f64,
}

/// One figure of a server in both guests.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured, with its unit.
    pub name: String,
    pub rosv: f64,
    pub linux: f64,
    /// Whether a lower figure is the better one (latency, memory).
    pub is_lower_better: bool,
}

/// Runs the benchmark and prints its figures.
pub fn servers(arguments: &ServersBenchArgs) -> Result<u8> {
    let rows = measure_servers(&arguments.load, &arguments.machine)?;
    println!(
        "nginx and Redis on rosv and on a Linux guest (QEMU pc, {} CPUs, {} MiB), loaded from this host",
        arguments.machine.cpus, arguments.machine.memory
    );
    println!("{:<28} {:>12} {:>12} {:>12}", "", "rosv", "Linux", "rosv/Linux");
    for row in rows {
        let ratio =
            if row.linux > 0.0 { format!("{:.2}", row.rosv / row.linux) } else { String::from("n/a") };
        let note = if row.is_lower_better { " (lower is better)" } else { "" };
        println!("{:<28} {:>12.1} {:>12.1} {ratio:>12}{note}", row.name, row.rosv, row.linux);
    }
    Ok(0)
}

/// Serves nginx and Redis in rosv and in the Linux guest as `load` says
/// and returns their figures side by side.
pub fn measure_servers(load: &ServerLoad, machine: &MachineArgs) -> Result<Vec<Row>> {
    if machine.hypervisor != Hypervisor::Qemu {
        bail!("the servers benchmark compares with a Linux guest, which runs on QEMU only");
    }
    let nginx = Path::new("/usr/sbin/nginx");
    let redis = Path::new("/usr/bin/redis-server");
    for (program, package) in [(nginx, "nginx-light"), (redis, "redis-server")] {
        if !program.exists() {
            bail!("{} is missing: apt-get install {package}", program.display());
        }
    }
    if crate::host::find_program("redis-benchmark").is_none() {
        bail!("redis-benchmark is missing: apt-get install redis-tools");
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let kernel = linux::kernel()?;
    let nginx_spec = nginx_spec(scratch.path())?;
    let redis_arguments =
        ["--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"].map(String::from);
    let redis_spec = ImageSpec::from_executable(redis, &redis_arguments, &[])?;

    // Both guests run on pc: Debian's cloud kernel finds microvm's
    // virtio-mmio card only through ACPI, and with ACPI microvm gives it no
    // clock it can calibrate against.
    if machine.machine == Machine::Microvm {
        eprintln!("note: both guests run on QEMU pc, where the Linux guest finds its network card");
    }
    let machine = &MachineArgs { machine: Machine::Pc, virtio: None, ..machine.clone() };
    let mut rows = Vec::new();
    let row = |name: &str, rosv: f64, linux: f64, is_lower_better: bool| Row {
        name: String::from(name),
        rosv,
        linux,
        is_lower_better,
    };
    let page = |port: u16| http_load(port, load.connections, Duration::from_secs(load.seconds));
    let rosv_nginx = with_guest(Guest::Rosv(&nginx_spec), machine, scratch.path(), NGINX_PORT, page)?;
    let linux_nginx =
        with_guest(Guest::Linux(&kernel, &nginx_spec), machine, scratch.path(), NGINX_PORT, page)?;
    rows.push(row(
        "nginx 1 KiB requests/s",
        rosv_nginx.requests_per_second,
        linux_nginx.requests_per_second,
        false,
    ));
    rows.push(row("nginx 1 KiB p99 ms", rosv_nginx.p99_ms, linux_nginx.p99_ms, true));

    let benchmark = |port: u16| redis_benchmark(port, load.redis_requests, load.connections);
    let rosv_redis = with_guest(Guest::Rosv(&redis_spec), machine, scratch.path(), REDIS_PORT, benchmark)?;
    let linux_redis =
        with_guest(Guest::Linux(&kernel, &redis_spec), machine, scratch.path(), REDIS_PORT, benchmark)?;
    for (index, test) in ["SET", "GET"].into_iter().enumerate() {
        rows.push(row(&format!("redis {test} requests/s"), rosv_redis[index], linux_redis[index], false));
    }
    if load.memory_search {
        let rosv = least_memory(Guest::Rosv(&nginx_spec), machine, scratch.path())?;
        let linux = least_memory(Guest::Linux(&kernel, &nginx_spec), machine, scratch.path())?;
        rows.push(row("least MiB serving nginx", rosv as f64, linux as f64, true));
    }
    Ok(rows)
}

/// An image tree of Debian's nginx serving a 1 KiB `/srv/index.html`.
fn nginx_spec(scratch: &Path) -> Result<ImageSpec> {
    let configuration = scratch.join("nginx.conf");
    std::fs::write(&configuration, NGINX_CONFIGURATION).context("cannot write nginx's configuration")?;
    let page = scratch.join("index.html");
    std::fs::write(&page, "x".repeat(1023) + "\n").context("cannot write the page")?;
    let manifest = scratch.join("nginx.manifest");
    let text = format!(
        "/usr/sbin/nginx: /usr/sbin/nginx\n/etc/nginx/nginx.conf: {}\n/srv/index.html: {}\n",
        configuration.display(),
        page.display()
    );
    std::fs::write(&manifest, text).context("cannot write the manifest")?;
    let command = ["/usr/sbin/nginx", "-p", "/tmp"].map(String::from);
    ImageSpec::from_tree(&manifest, &command, &[])
}

/// Which guest runs a server.
#[derive(Clone, Copy)]
enum Guest<'a> {
    /// rosv with this image.
    Rosv(&'a ImageSpec),
    /// The Linux reference: its kernel, and the image whose tree and
    /// command it runs.
    Linux(&'a Path, &'a ImageSpec),
}

/// Starts `guest` with `guest_port` forwarded from a free host port, waits
/// until the port answers, runs `load` on the host port and stops it.
fn with_guest<T>(
    guest: Guest<'_>,
    machine: &MachineArgs,
    scratch: &Path,
    guest_port: u16,
    load: impl FnOnce(u16) -> Result<T>,
) -> Result<T> {
    let host_port = free_port()?;
    let running = start(guest, machine, machine.memory, scratch, host_port, guest_port)?;
    let ready = wait_until_serving(host_port, guest_port);
    if !ready {
        let output = running.stop();
        bail!("the server did not start in {} s; console:\n{output}", START_LIMIT.as_secs());
    }
    let result = load(host_port);
    let output = running.stop();
    result.with_context(|| format!("console:\n{output}"))
}

/// Starts `guest` in `memory_mib` with `guest_port` forwarded from
/// `host_port`.
fn start(
    guest: Guest<'_>,
    machine: &MachineArgs,
    memory_mib: u64,
    scratch: &Path,
    host_port: u16,
    guest_port: u16,
) -> Result<Running> {
    let forward =
        PortForward { protocol: Protocol::Tcp, host_address: Ipv4Addr::LOCALHOST, host_port, guest_port };
    match guest {
        Guest::Rosv(spec) => {
            let directory = scratch.join("rosv-image");
            let _ = std::fs::remove_dir_all(&directory);
            image::write(spec, &directory)?;
            let machine = MachineArgs {
                net: Some(Network::User),
                forwards: vec![forward],
                memory: memory_mib,
                ..machine.clone()
            };
            let config = VmConfig::new(&Image::open(&directory)?, &machine, &[], None)?;
            // QEMU reads the boot configuration file after it starts: the
            // configuration that owns it lives as long as the guest.
            let command = qemu::command(&config, machine.accel, None)?;
            Ok(Running::start(command)?.keeping(Box::new(config)))
        }
        Guest::Linux(kernel, spec) => {
            let command = spec.command();
            let initramfs = scratch.join("linux-initramfs.cpio");
            std::fs::write(&initramfs, linux::initramfs(&linux_entries(kernel, spec, command)?))
                .context("cannot write the initramfs")?;
            let mut qemu_command =
                linux::command(kernel, &initramfs, machine, memory_mib, machine.cpus, &[])?;
            let transport = match machine.machine {
                Machine::Microvm => VirtioTransport::Mmio,
                Machine::Pc => VirtioTransport::Modern,
            };
            qemu_command.args(qemu::network_arguments(&Network::User, &[forward], transport));
            Running::start(qemu_command)
        }
    }
}

/// The Linux guest's initramfs: the image tree, busybox, the network
/// modules of `kernel` and [`LINUX_INIT`] running `command`.
fn linux_entries(kernel: &Path, spec: &ImageSpec, command: &[String]) -> Result<Vec<Entry>> {
    let mut entries = linux::entries(spec.root())?;
    let busybox =
        std::fs::read("/bin/busybox").context("busybox is missing: apt-get install busybox-static")?;
    entries.push(Entry::file("bin/busybox", busybox, 0o755));
    // Each word quoted for the shell.
    let words: Vec<String> =
        command.iter().map(|word| format!("'{}'", word.replace('\'', "'\\''"))).collect();
    let init = LINUX_INIT.replace("COMMAND", &words.join(" "));
    entries.push(Entry::file("init", init.into_bytes(), 0o755));
    entries.push(Entry::file("tmp/logs/.keep", Vec::new(), 0o644));
    let version = kernel
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("vmlinuz-"))
        .context("the kernel's file name gives no version")?;
    let modules = Path::new("/lib/modules").join(version).join("kernel");
    for module in MODULES {
        if let Some(path) = find_file(&modules, &format!("{module}.ko")) {
            let contents = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            entries.push(Entry::file(&format!("modules/{module}.ko"), contents, 0o644));
        }
    }
    Ok(entries)
}

/// The file named `name` somewhere under `directory`.
fn find_file(directory: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(directory).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|file| file == name) {
            return Some(path);
        }
    }
    None
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until the forwarded port answers as its server does: nginx with
/// the page, Redis with `+PONG`.
fn wait_until_serving(host_port: u16, guest_port: u16) -> bool {
    let deadline = Instant::now() + START_LIMIT;
    while Instant::now() < deadline {
        let answered = if guest_port == NGINX_PORT {
            http_get(host_port).is_ok()
        } else {
            ask(host_port, b"PING\r\n").is_ok_and(|answer| answer.starts_with("+PONG"))
        };
        if answered {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn connect(port: u16) -> Result<TcpStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn ask(port: u16, request: &[u8]) -> Result<String> {
    let mut stream = connect(port)?;
    stream.write_all(request)?;
    let mut buffer = [0u8; 256];
    let count = stream.read(&mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer[..count]).into_owned())
}

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n";

/// One request on a new connection.
fn http_get(port: u16) -> Result<()> {
    let mut stream = connect(port)?;
    let mut pending = Vec::new();
    exchange(&mut stream, &mut pending)
}

/// Sends one request on `stream` and reads its whole answer (a 200 with a
/// `Content-Length`); `pending` keeps bytes read past it.
fn exchange(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Result<()> {
    stream.write_all(REQUEST)?;
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                bail!("the server answered {}", head.lines().next().unwrap_or(""));
            }
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .context("an answer without Content-Length")?;
            let total = end + 4 + length;
            while pending.len() < total {
                let count = stream.read(&mut buffer)?;
                if count == 0 {
                    bail!("the connection closed mid-answer");
                }
                pending.extend_from_slice(&buffer[..count]);
            }
            pending.drain(..total);
            return Ok(());
        }
        let count = stream.read(&mut buffer)?;
        if count == 0 {
            bail!("the connection closed before an answer");
        }
        pending.extend_from_slice(&buffer[..count]);
    }
}

/// `connections` keep-alive connections request the page for `duration`;
/// requests per second and the 99th percentile of their latencies.
fn http_load(port: u16, connections: u32, duration: Duration) -> Result<Figures> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut latencies = Vec::new();
                let mut stream = connect(port)?;
                let mut pending = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if exchange(&mut stream, &mut pending).is_err() {
                        // The server closed the connection: open another.
                        stream = connect(port)?;
                        pending.clear();
                        continue;
                    }
                    latencies.push(sent.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        let mut more = worker.join().map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        latencies.append(&mut more);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(figures(&mut latencies, elapsed))
}

/// Requests per second over `elapsed_seconds` and the 99th percentile.
fn figures(latencies: &mut [Duration], elapsed_seconds: f64) -> Figures {
    latencies.sort();
    let p99 = latencies
        .get((latencies.len() * 99).div_ceil(100).saturating_sub(1))
        .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0);
    Figures { requests_per_second: latencies.len() as f64 / elapsed_seconds, p99_ms: p99 }
}

/// `redis-benchmark` SET and GET against the port: requests per second.
fn redis_benchmark(port: u16, requests: u32, connections: u32) -> Result<[f64; 2]> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set,get", "--csv"])
        .args(["-n", &requests.to_string(), "-c", &connections.to_string()])
        .output()
        .context("cannot run redis-benchmark")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rate = |test: &str| {
        redis_rate(&text, test).with_context(|| format!("redis-benchmark gave no {test}: {text}"))
    };
    Ok([rate("SET")?, rate("GET")?])
}

/// The requests per second of `test` in redis-benchmark's CSV output.
fn redis_rate(csv: &str, test: &str) -> Option<f64> {
    csv.lines().find_map(|line| {
        let mut fields = line.split(',').map(|field| field.trim_matches('"'));
        (fields.next()? == test).then_some(())?;
        fields.next()?.parse().ok()
    })
}

/// The least memory, in MiB, in which `guest` serves one nginx request, by
/// bisection between 8 MiB and `--memory`.
fn least_memory(guest: Guest<'_>, machine: &MachineArgs, scratch: &Path) -> Result<u64> {
    let serves = |memory_mib: u64| -> Result<bool> {
        let host_port = free_port()?;
        let running = start(guest, machine, memory_mib, scratch, host_port, NGINX_PORT)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = false;
        while Instant::now() < deadline && !served {
            served = http_get(host_port).is_ok();
            if !served {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        running.stop();
        Ok(served)
    };
    let (mut low, mut high) = (8, machine.memory);
    if !serves(high)? {
        bail!("nginx does not serve in {high} MiB");
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if serves(middle)? { high = middle } else { low = middle }
    }
    Ok(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_rates() {
        let csv =
            "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"1234.57\",\"0.5\"\n\"GET\",\"2000.00\",\"0.4\"\n";
        assert_eq!(redis_rate(csv, "SET"), Some(1234.57));
        assert_eq!(redis_rate(csv, "GET"), Some(2000.0));
        assert_eq!(redis_rate(csv, "INCR"), None);
    }

    #[test]
    fn takes_the_99th_percentile() {
        let mut latencies: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let figures = figures(&mut latencies, 2.0);
        assert_eq!(figures.requests_per_second, 100.0);
        assert_eq!(figures.p99_ms, 198.0);
    }
}
