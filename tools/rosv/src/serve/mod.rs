//! `rosv serve`: the function host, which boots a VM per function on demand.
//!
//! The host listens for HTTP/1.1 ([`proxy`]) and sends a request for
//! `/NAME/...` to function NAME, whose VMs a [`pool::Pool`] boots on the
//! first request, shares between requests and stops when idle. The
//! functions come from a TOML file ([`config`]). A housekeeping thread
//! stops idle VMs, notices dead ones and, on SIGINT, SIGTERM or SIGHUP,
//! stops every VM before the host exits.

mod backend;
pub mod bench;
mod billing;
mod config;
mod guest_stream;
mod http;
mod instance;
mod invoke;
mod pool;
mod proxy;
mod restore;
mod runtime_api;
mod snapshot;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;

use crate::vm::Accelerator;
use pool::Pool;

/// `rosv serve`'s exit status for a configuration it cannot use (as for
/// a bad command line).
const CONFIGURATION_ERROR: u8 = 2;
/// How often idle and dead VMs are looked for.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);
/// The most client connections served at once (503 beyond).
const CONNECTION_LIMIT: usize = 512;

/// An example configuration, for `rosv serve --help`.
pub const CONFIGURATION_EXAMPLE: &str = r#"A configuration file (TOML; image paths are relative to it):

  [[function]]
  name = "hello"                          # requests for /hello/... go to this function
  image = "images/hello"                  # written by `rosv build`
  port = 8080                             # where its HTTP server listens in the VM
  memory = "128M"                         # optional, as is cpus = 1
  environment = { GREETING = "hi" }       # optional
  command = ["/hello", "--port", "8080"]  # optional; else the image's own
  idle_timeout = 60                       # optional; seconds idle before the VM stops (0: never)
  boot_timeout = 60                       # optional; seconds from boot to the first answer
  request_timeout = 60                    # optional; seconds to wait for an answer
  max_instances = 1                       # optional; VMs of this function at once
  min_instances = 0                       # optional; VMs kept booted (0: scale to zero)
  spare_instances = 0                     # optional; idle VMs booted ahead of demand...
  spare_threshold = 0.5                   # ...once this fraction of the VMs is busy
  max_concurrency = 1                     # optional; requests in flight to one VM
  max_queued = 256                        # optional; requests waiting for a VM (503 beyond)

  [[function]]                            # a function written for AWS Lambda:
  name = "py"                             # POST /2015-03-31/functions/py/invocations
  runtime = "images/python-lambda"        # an image whose command runs a Lambda runtime
  handler = "app.handler"                 # its handler (_HANDLER)
  snapshot = false                        # optional; start VMs from a snapshot of the first"#;

/// Arguments of `rosv serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The functions to serve: a TOML file with one [[function]] table per
    /// function (see below).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The address and port to listen on for HTTP.
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Hardware acceleration of the VMs: KVM where it is real, else QEMU's
    /// TCG.
    #[arg(long, value_enum, default_value_t = Accelerator::Auto)]
    accel: Accelerator,
    /// The hypervisor that runs the VMs: `auto` takes the built-in monitor
    /// where KVM is hardware, else QEMU. On builtin and firecracker the host
    /// reaches functions over vsock (and Lambda runtimes reach their Runtime
    /// API over vsock); snapshots need QEMU.
    #[arg(long, value_enum, default_value_t = backend::Backend::Auto)]
    backend: backend::Backend,
    /// Appends a JSON line per invocation to FILE: its function, instance,
    /// status, wall time, vCPU time, the boot's vCPU time and memory-time.
    #[arg(long, value_name = "FILE")]
    invocation_log: Option<PathBuf>,
}

/// Writes one line to the host's log (standard error), with the time.
pub fn log(message: &str) {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds_today = since_epoch.as_secs() % 86_400;
    eprintln!(
        "{:02}:{:02}:{:02}.{:03} rosv serve: {message}",
        seconds_today / 3600,
        seconds_today / 60 % 60,
        seconds_today % 60,
        since_epoch.subsec_millis()
    );
}

/// The function host: its functions' pools.
#[derive(Debug)]
pub struct Host {
    pools: Vec<Pool>,
    connections: AtomicUsize,
}

impl Host {
    /// A host for `functions`, whose VMs run with `accel`, logging each
    /// invocation to `invocation_log` if given.
    fn new(
        functions: Vec<config::Function>,
        accel: Accelerator,
        backend: backend::Backend,
        invocation_log: Option<&std::path::Path>,
    ) -> Result<Host, String> {
        let invocation_log = match invocation_log {
            Some(path) => Some(Arc::new(
                billing::InvocationLog::open(path)
                    .map_err(|error| format!("--invocation-log {}: {error}", path.display()))?,
            )),
            None => None,
        };
        let mut pools = Vec::with_capacity(functions.len());
        for function in functions {
            let name = function.name.clone();
            pools.push(
                Pool::new(function, accel, backend, invocation_log.clone())
                    .map_err(|error| format!("function \"{name}\": {error:#}"))?,
            );
        }
        Ok(Host { pools, connections: AtomicUsize::new(0) })
    }

    /// The pool of function `name`.
    fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|pool| pool.function.name == name)
    }

    /// Every function's counters.
    fn stats_json(&self) -> serde_json::Value {
        let functions: serde_json::Map<String, serde_json::Value> =
            self.pools.iter().map(|pool| (pool.function.name.clone(), pool.stats_json())).collect();
        serde_json::json!({ "functions": functions })
    }

    /// Accepts connections on `listener` forever, a thread each.
    fn accept(self: &Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                // Out of descriptors, most likely: let connections end.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            if self.connections.fetch_add(1, Ordering::SeqCst) >= CONNECTION_LIMIT {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                let mut stream = stream;
                let _ =
                    http::write_response(&mut stream, 503, "text/plain", b"too many connections\n", false);
                continue;
            }
            let host = self.clone();
            let spawned = std::thread::Builder::new().name("connection".into()).spawn(move || {
                proxy::handle_connection(&host, stream);
                host.connections.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Stops idle and dead VMs until a termination signal arrives, then
    /// stops them all and returns the signal.
    fn housekeep_until_signalled(&self) -> Result<usize> {
        let signal = crate::vm::termination_signal()?;
        loop {
            let received = signal.load(Ordering::Relaxed);
            if received != 0 {
                for pool in &self.pools {
                    pool.stop_all(&format!("rosv serve received signal {received}"), true);
                }
                return Ok(received);
            }
            for pool in &self.pools {
                pool.housekeep();
            }
            std::thread::sleep(HOUSEKEEPING_INTERVAL);
        }
    }

    /// Stops every VM now (they boot again on the next request).
    fn stop_instances(&self, reason: &str) {
        for pool in &self.pools {
            pool.stop_all(reason, false);
        }
    }
}

/// Runs `rosv serve`; returns its exit status.
pub fn serve(arguments: &ServeArgs) -> Result<u8> {
    let functions = match config::load(&arguments.config) {
        Ok(config) => config.functions,
        Err(problems) => {
            for line in problems.lines() {
                eprintln!("rosv: {line}");
            }
            return Ok(CONFIGURATION_ERROR);
        }
    };
    let backend = match backend::choose(arguments.backend, backend::Available::here(), &functions) {
        Ok(backend) => backend,
        Err(problem) => {
            eprintln!("rosv: {problem}");
            return Ok(CONFIGURATION_ERROR);
        }
    };
    let host = match Host::new(functions, arguments.accel, backend, arguments.invocation_log.as_deref()) {
        Ok(host) => Arc::new(host),
        Err(problem) => {
            eprintln!("rosv: {}: {problem}", arguments.config.display());
            return Ok(CONFIGURATION_ERROR);
        }
    };
    // Watch for signals before any VM can start.
    crate::vm::termination_signal()?;
    let listener = TcpListener::bind(arguments.listen)
        .with_context(|| format!("cannot listen on {}", arguments.listen))?;
    let names: Vec<&str> = host.pools.iter().map(|pool| pool.function.name.as_str()).collect();
    log(&format!(
        "listening on http://{} for {} ({})",
        listener.local_addr().unwrap_or(arguments.listen),
        names.join(", "),
        describe_backend(backend, arguments.accel)
    ));
    let acceptor = host.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || acceptor.accept(listener))
        .context("cannot start the accepting thread")?;
    let signal = host.housekeep_until_signalled()?;
    log(&format!("stopped on signal {signal}"));
    Ok(0)
}

/// Which hypervisor runs the VMs and how, in words, for the log.
pub fn describe_backend(backend: backend::Backend, accel: Accelerator) -> String {
    match backend {
        backend::Backend::Qemu | backend::Backend::Auto => describe_acceleration(accel),
        other => format!("{} with KVM, functions reached over vsock", other.name()),
    }
}

/// How the VMs execute guest code, in words, for logs and benchmarks.
pub fn describe_acceleration(accel: Accelerator) -> String {
    match crate::qemu::acceleration(accel, crate::host::kvm()) {
        Ok(acceleration) if acceleration.accel == "tcg" => {
            String::from("QEMU TCG: guest code is emulated, without hardware virtualization")
        }
        Ok(acceleration) => format!("QEMU with {}", acceleration.accel),
        Err(error) => format!("{error}"),
    }
}
