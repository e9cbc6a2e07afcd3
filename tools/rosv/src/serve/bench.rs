//! `rosv bench serve`: cold-start and warm latency through the function host.
//!
//! The host runs in this process with one function, listening on a free
//! loopback port. Cold starts are timed from sending a request to having
//! its whole answer, with the function's VM stopped before each; warm
//! requests go one after another over one keep-alive connection, then
//! straight to the VM's forwarded port (what the host adds is the
//! difference), then from several clients at once for throughput. With
//! `--handler`, the image is a Lambda runtime and every request is an
//! Invoke of `{}` (there is no forwarded port to go to straight), and cold
//! starts are timed twice: booting, and from a snapshot of the function
//! taken when its runtime was ready (on QEMU, the one backend whose
//! snapshots the host takes).
//!
//! The figures are measured for each backend asked for with `--backend`
//! (by default every one this host has: QEMU, the built-in monitor where
//! `/dev/kvm` opens, Firecracker where it is on PATH) and printed side by
//! side. On the built-in monitor and Firecracker "straight to the VM" is a
//! vsock connection through the VM's Unix socket instead of QEMU's
//! forwarded port.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::backend::{Available, Backend};
use super::config::{Function, Kind};
use super::guest_stream::GuestStream;
use super::http::{Reader, response_framing};
use super::{Host, describe_acceleration};
use crate::bench::{Summary, summarize};
use crate::image::{self, ImageSpec};
use crate::vm::Accelerator;

/// Arguments of `rosv bench serve`.
#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// An image directory whose application is an HTTP server.
    #[arg(value_name = "IMAGE", required_unless_present = "exec")]
    image: Option<PathBuf>,
    /// A Linux executable on the host that serves HTTP (such as
    /// tests/guest/http-echo.c), packed into an image.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    exec: Option<PathBuf>,
    /// The guest port the server listens on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The path requested (after the function's name).
    #[arg(long, default_value = "/")]
    path: String,
    /// Cold starts to time.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Warm requests to time, in each of the three warm measurements.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: u32,
    /// Clients sending warm requests at once, for the throughput.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Guest memory, in MiB or with a K, M or G suffix.
    #[arg(long, default_value = "128M", value_parser = crate::cli::parse_memory_mib)]
    memory: u64,
    /// Hardware acceleration: KVM where it is real, else QEMU's TCG.
    #[arg(long, value_enum, default_value_t = Accelerator::Auto)]
    accel: Accelerator,
    /// Run the image as a Lambda function with this handler (the image's
    /// command runs its runtime), invoked through the Invoke API.
    #[arg(long, value_name = "HANDLER", conflicts_with = "exec")]
    handler: Option<String>,
    /// Set an environment variable of the function (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = crate::cli::parse_environment)]
    environment: Vec<(String, String)>,
    /// The backends to compare (repeatable): qemu, builtin, firecracker;
    /// by default every one this host has.
    #[arg(long = "backend", value_enum, value_name = "BACKEND")]
    backends: Vec<Backend>,
    /// With --exec: the program's arguments.
    #[arg(last = true, value_name = "ARGUMENTS")]
    arguments: Vec<String>,
}

/// The name of the snapshot function of a Lambda benchmark.
const SNAPSHOT_FUNCTION: &str = "bench-snapshot";

/// How long one cold start may take before the benchmark gives up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the benchmark and prints its figures.
pub fn serve(arguments: &ServeBenchArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image_directory = match (&arguments.image, &arguments.exec) {
        (Some(image), None) => image.clone(),
        (None, Some(program)) => {
            let directory = scratch.path().join("image");
            image::write(&ImageSpec::from_executable(program, &arguments.arguments, &[])?, &directory)?;
            directory
        }
        _ => bail!("give an image directory or --exec FILE"),
    };
    let kind = match &arguments.handler {
        Some(handler) => Kind::Lambda { handler: handler.clone() },
        None => Kind::Http { port: arguments.port },
    };
    let is_lambda = arguments.handler.is_some();
    let mut function = Function::new("bench", image_directory, kind);
    function.memory_mib = arguments.memory;
    function.environment = arguments.environment.clone();
    function.idle_timeout = None;
    function.boot_timeout = BOOT_TIMEOUT;
    // Requests from several clients at once share the one VM (a Lambda
    // runtime takes one at a time, and the others wait their turn).
    function.max_concurrency = if is_lambda { 1 } else { 1024 };
    function.max_queued = 1_000_000;
    let backends = backends_to_compare(&arguments.backends, Available::here());
    if backends.is_empty() {
        bail!("no backend to compare: install QEMU, or give rosv a usable /dev/kvm");
    }
    let target = if is_lambda {
        Target::Invoke("/2015-03-31/functions/bench/invocations".into())
    } else {
        Target::Get(
            format!("/bench{}", if arguments.path.starts_with('/') { "" } else { "/" }) + &arguments.path,
        )
    };
    let mut columns = Vec::new();
    for backend in backends {
        eprintln!("rosv bench serve: measuring {}", backend.name());
        let mut functions = vec![function.clone()];
        if is_lambda && backend == Backend::Qemu {
            // The same function again, started from a snapshot.
            let mut snapshot = function.clone();
            snapshot.name = SNAPSHOT_FUNCTION.into();
            snapshot.snapshot = true;
            functions.push(snapshot);
        }
        columns.push((backend, measure_backend(functions, backend, &target, arguments)?));
    }
    println!(
        "function host benchmark: one {} function, {} MiB, 1 CPU; {}",
        if is_lambda { "Lambda" } else { "HTTP" },
        arguments.memory,
        describe_acceleration(arguments.accel)
    );
    print_table(&columns, arguments, is_lambda);
    Ok(0)
}

/// The backends `requested` names, or every one `available` offers.
fn backends_to_compare(requested: &[Backend], available: Available) -> Vec<Backend> {
    let all = [Backend::Qemu, Backend::Builtin, Backend::Firecracker];
    let offered = |backend: &Backend| match backend {
        Backend::Qemu => available.has_qemu,
        Backend::Builtin => available.kvm.is_some(),
        Backend::Firecracker => available.has_firecracker && available.kvm.is_some(),
        Backend::Auto => false,
    };
    if requested.is_empty() {
        return all.into_iter().filter(offered).collect();
    }
    let mut chosen = Vec::new();
    for backend in requested {
        let backend = if *backend == Backend::Auto { Backend::Qemu } else { *backend };
        if !chosen.contains(&backend) {
            chosen.push(backend);
        }
    }
    chosen
}

/// Runs a host of `functions` on `backend` and measures it.
fn measure_backend(
    functions: Vec<Function>,
    backend: Backend,
    target: &Target,
    arguments: &ServeBenchArgs,
) -> Result<Figures> {
    let host = Arc::new(Host::new(functions, arguments.accel, backend, None).map_err(anyhow::Error::msg)?);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot listen on the loopback")?;
    let front = listener.local_addr().context("cannot listen on the loopback")?;
    let acceptor = host.clone();
    std::thread::spawn(move || acceptor.accept(listener));
    let watcher = host.clone();
    std::thread::spawn(move || {
        // Only a signal ends this: the VMs are stopped, then the benchmark.
        if let Ok(signal) = watcher.housekeep_until_signalled() {
            std::process::exit(128 + signal as i32);
        }
    });
    let outcome = measure(&host, front, target, arguments);
    // Final: the pools' snapshot directories go too.
    for pool in &host.pools {
        pool.stop_all("the benchmark is over", true);
    }
    outcome.with_context(|| format!("on {}", backend.name()))
}

/// Prints the figures of every backend side by side: the medians, and
/// each backend's minimum and maximum below.
fn print_table(columns: &[(Backend, Figures)], arguments: &ServeBenchArgs, is_lambda: bool) {
    let milliseconds = |summary: Option<Summary>, pick: fn(&Summary) -> Duration| {
        summary.map_or_else(
            || String::from("n/a"),
            |summary| format!("{:.3}", pick(&summary).as_secs_f64() * 1000.0),
        )
    };
    let mut rows: Vec<(String, Vec<Option<Summary>>)> = vec![(
        format!("cold start from boot ({} runs)", arguments.runs),
        columns.iter().map(|(_, figures)| figures.cold).collect(),
    )];
    if is_lambda {
        rows.push((
            format!("cold start from a snapshot ({} runs)", arguments.runs),
            columns.iter().map(|(_, figures)| figures.cold_from_snapshot).collect(),
        ));
    }
    rows.push((
        format!("warm request through the host ({})", arguments.requests),
        columns.iter().map(|(_, figures)| figures.warm).collect(),
    ));
    rows.push((
        format!("warm request straight to the VM ({})", arguments.requests),
        columns.iter().map(|(_, figures)| figures.direct).collect(),
    ));
    rows.push((
        format!("warm request, {} clients at once ({})", arguments.concurrency, arguments.requests),
        columns.iter().map(|(_, figures)| figures.concurrent).collect(),
    ));
    print!("{:<52}", "median ms (min..max)");
    for (backend, _) in columns {
        print!(" {:>26}", backend.name());
    }
    println!();
    for (label, summaries) in &rows {
        print!("{label:<52}");
        for summary in summaries {
            let cell = match summary {
                Some(_) => format!(
                    "{} ({}..{})",
                    milliseconds(*summary, |summary| summary.median),
                    milliseconds(*summary, |summary| summary.min),
                    milliseconds(*summary, |summary| summary.max)
                ),
                None => String::from("n/a"),
            };
            print!(" {cell:>26}");
        }
        println!();
    }
    print!("{:<52}", format!("warm throughput, {} clients (requests/s)", arguments.concurrency));
    for (_, figures) in columns {
        print!(" {:>26.0}", figures.throughput);
    }
    println!();
    for (backend, figures) in columns {
        if let (Some(boot), Some(snapshot)) = (figures.cold, figures.cold_from_snapshot) {
            println!(
                "{}: a cold start from a snapshot takes {:.2}x less time than from boot (medians)",
                backend.name(),
                boot.median.as_secs_f64() / snapshot.median.as_secs_f64().max(1e-9)
            );
        }
    }
}

/// What the benchmark asks for.
enum Target {
    /// GET of this path (an HTTP function).
    Get(String),
    /// POST of `{}` to this Invoke API path (a Lambda function).
    Invoke(String),
}

/// What [`measure`] found.
struct Figures {
    cold: Option<Summary>,
    cold_from_snapshot: Option<Summary>,
    warm: Option<Summary>,
    direct: Option<Summary>,
    concurrent: Option<Summary>,
    throughput: f64,
}

fn measure(host: &Host, front: SocketAddr, target: &Target, arguments: &ServeBenchArgs) -> Result<Figures> {
    let mut cold_from_snapshot = Vec::new();
    if let Target::Invoke(path) = target {
        let snapshot_target =
            Target::Invoke(path.replace("/functions/bench/", &format!("/functions/{SNAPSHOT_FUNCTION}/")));
        // The first invocation boots the template, which is saved.
        Client::connect(front)?.send(&snapshot_target, true).context("the snapshot's template")?;
        for run in 0..arguments.runs {
            host.stop_instances("the benchmark times another cold start");
            let started = Instant::now();
            let mut client = Client::connect(front)?;
            client
                .send(&snapshot_target, true)
                .with_context(|| format!("cold request from the snapshot {}", run + 1))?;
            cold_from_snapshot.push(started.elapsed());
        }
        host.stop_instances("the benchmark times cold starts from boot");
    }
    let mut cold = Vec::new();
    for run in 0..arguments.runs {
        if run > 0 {
            host.stop_instances("the benchmark times another cold start");
        }
        let started = Instant::now();
        let mut client = Client::connect(front)?;
        client.send(target, true).with_context(|| format!("cold request {}", run + 1))?;
        cold.push(started.elapsed());
    }
    let mut warm = Vec::new();
    let mut client = Client::connect(front)?;
    for _ in 0..arguments.requests {
        let started = Instant::now();
        client.send(target, true)?;
        warm.push(started.elapsed());
    }
    let mut direct = Vec::new();
    if let Target::Get(path) = target {
        let forwarded_path = super::proxy::route(path);
        let super::proxy::Route::Function { path: guest_path, .. } = forwarded_path else {
            bail!("the benchmark's path cannot be routed");
        };
        let instance =
            host.pools[0].answering_instance().context("the function's VM stopped during the benchmark")?;
        for _ in 0..arguments.requests {
            let started = Instant::now();
            // The host opens one connection per request to the VM too.
            let stream = instance.connect(BOOT_TIMEOUT)?;
            let mut client = Client::over(stream)?;
            client.send(&Target::Get(guest_path.clone()), false)?;
            direct.push(started.elapsed());
        }
    }
    let started = Instant::now();
    let per_client = arguments.requests.div_ceil(arguments.concurrency);
    let clients: Vec<_> = (0..arguments.concurrency)
        .map(|_| {
            let target = match target {
                Target::Get(path) => Target::Get(path.clone()),
                Target::Invoke(path) => Target::Invoke(path.clone()),
            };
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut client = Client::connect(front)?;
                let mut times = Vec::new();
                for _ in 0..per_client {
                    let started = Instant::now();
                    client.send(&target, true)?;
                    times.push(started.elapsed());
                }
                Ok(times)
            })
        })
        .collect();
    let mut concurrent = Vec::new();
    for client in clients {
        concurrent.extend(client.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??);
    }
    let throughput = concurrent.len() as f64 / started.elapsed().as_secs_f64();
    Ok(Figures {
        cold: summarize(&cold),
        cold_from_snapshot: summarize(&cold_from_snapshot),
        warm: summarize(&warm),
        direct: summarize(&direct),
        concurrent: summarize(&concurrent),
        throughput,
    })
}

/// A keep-alive HTTP/1.1 client of one server.
struct Client<S: std::io::Read> {
    writer: S,
    reader: Reader<S>,
}

impl Client<TcpStream> {
    fn connect(address: SocketAddr) -> Result<Client<TcpStream>> {
        let stream = TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(BOOT_TIMEOUT + Duration::from_secs(10)))?;
        Ok(Client { writer: stream.try_clone()?, reader: Reader::new(stream) })
    }
}

impl Client<GuestStream> {
    /// A client over a connection to a VM.
    fn over(stream: GuestStream) -> Result<Client<GuestStream>> {
        stream.set_nodelay()?;
        stream.set_read_timeout(Some(BOOT_TIMEOUT + Duration::from_secs(10)))?;
        Ok(Client { writer: stream.try_clone()?, reader: Reader::new(stream) })
    }
}

impl<S: std::io::Read + Write> Client<S> {
    /// Sends the request `target` asks for and reads the whole answer,
    /// which must be 200 (without a function error).
    fn send(&mut self, target: &Target, keep_alive: bool) -> Result<()> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        match target {
            Target::Get(path) => {
                write!(self.writer, "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: {connection}\r\n\r\n")?
            }
            Target::Invoke(path) => write!(
                self.writer,
                "POST {path} HTTP/1.1\r\nHost: bench\r\nConnection: {connection}\r\nContent-Length: 2\r\n\r\n{{}}"
            )?,
        }
        let head = self.reader.read_response_head()?;
        let method = if matches!(target, Target::Get(_)) { "GET" } else { "POST" };
        let framing = response_framing(method, &head)?;
        let body = self.reader.read_body(framing, 64 * 1024 * 1024)?;
        if head.headers.iter().any(|header| header.is("x-amz-function-error")) {
            bail!("the function failed: {}", String::from_utf8_lossy(&body).trim());
        }
        if head.status != 200 {
            bail!(
                "the answer was {} {}: {}",
                head.status,
                head.reason,
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(())
    }
}
