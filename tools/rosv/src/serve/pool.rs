//! The VMs of one function: booting on demand, choosing, stopping.
//!
//! A [`Pool`] holds a function's [`Instance`]s. [`Pool::acquire`] picks
//! one for a request: an idle answering instance, else a new one while the
//! function is below its `max_instances`, else the least busy. The first
//! request sent to a booting instance probes it ([`Pool::send`]): it waits
//! for the kernel's boot line, then sends the request until the guest
//! answers (QEMU accepts forwarded connections before the guest listens,
//! and drops them), and the other requests wait for that outcome.
//! [`Pool::housekeep`] stops idle instances and notices dead ones.

use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, ValueEnum};

use super::config::Function;
use super::http::{Reader, ResponseHead};
use super::instance::{Failure, Instance, Readiness};
use super::log;
use super::stats::FunctionStats;
use crate::cli::MachineArgs;
use crate::image::Image;
use crate::vm::{Accelerator, VmConfig};

/// How long to wait between tries to reach a booting guest.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// How long a connection to QEMU's forwarded port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the kernel's boot line before trying the guest
/// anyway (in case a kernel option changed what it prints).
const BOOT_LINE_GRACE: Duration = Duration::from_secs(20);

/// The VMs of one function and its counters.
#[derive(Debug)]
pub struct Pool {
    /// The function as configured.
    pub function: Function,
    vm_config: VmConfig,
    accel: Accelerator,
    instances: Mutex<Instances>,
    stats: Mutex<FunctionStats>,
}

#[derive(Debug, Default)]
struct Instances {
    list: Vec<Arc<Instance>>,
    next_number: u64,
    is_closed: bool,
}

/// A request's hold on an instance; lets go when dropped.
#[derive(Debug)]
pub struct Lease {
    /// The instance.
    pub instance: Arc<Instance>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.instance.end_request();
    }
}

/// Machine options parsed as `rosv run` would parse them, so that a
/// function's VM is set up by the same code and defaults.
#[derive(Debug, Parser)]
struct MachineWords {
    #[command(flatten)]
    machine: MachineArgs,
}

impl Pool {
    /// A pool for `function`, whose VMs run with `accel`; checks that its
    /// image and machine can be booted.
    pub fn new(function: Function, accel: Accelerator) -> Result<Pool> {
        let image = Image::open(&function.image_directory)?;
        let accel_name =
            accel.to_possible_value().map(|value| value.get_name().to_string()).unwrap_or_default();
        let words = [
            "serve".to_string(),
            "--net".into(),
            "user".into(),
            "--memory".into(),
            function.memory_mib.to_string(),
            "--cpus".into(),
            function.cpus.to_string(),
            "--accel".into(),
            accel_name,
        ];
        let machine = MachineWords::try_parse_from(words)?.machine;
        // The host waits for the kernel's `Booted in` line (see `instance`).
        let vm_config = VmConfig::new(&image, &machine, &function.environment, function.command.as_deref())?
            .reporting_boot();
        Ok(Pool {
            function,
            vm_config,
            accel,
            instances: Mutex::new(Instances::default()),
            stats: Mutex::new(FunctionStats::default()),
        })
    }

    fn instances(&self) -> MutexGuard<'_, Instances> {
        self.instances.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the counters.
    pub fn update_stats(&self, change: impl FnOnce(&mut FunctionStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    /// The function's counters as JSON.
    pub fn stats_json(&self) -> serde_json::Value {
        let (running, booting) = {
            let mut instances = self.instances();
            self.reap(&mut instances);
            let booting = instances
                .list
                .iter()
                .filter(|instance| matches!(instance.readiness(), Readiness::Booting { .. }))
                .count();
            (instances.list.len(), booting)
        };
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).to_json(running, booting)
    }

    /// An instance for one request: an idle one that answers, else a new
    /// one if the function may have more, else the least busy.
    pub fn acquire(&self) -> Result<Lease, Failure> {
        let mut instances = self.instances();
        if instances.is_closed {
            return Err(Failure::new(503, "the function host is stopping"));
        }
        self.reap(&mut instances);
        let least_busy = instances.list.iter().min_by_key(|instance| instance.active()).cloned();
        let may_boot = instances.list.len() < self.function.max_instances as usize;
        let instance = match least_busy {
            Some(instance) if instance.active() == 0 || !may_boot => instance,
            _ => {
                instances.next_number += 1;
                let label = format!("{}#{}", self.function.name, instances.next_number);
                let started = Instance::start(label, &self.vm_config, self.accel, self.function.port);
                self.update_stats(|stats| stats.boots += 1);
                let instance = match started {
                    Ok(instance) => Arc::new(instance),
                    Err(error) => {
                        self.update_stats(|stats| stats.boot_failures += 1);
                        let message =
                            format!("cannot start a VM for function {}: {error:#}", self.function.name);
                        log(&message);
                        return Err(Failure::new(502, message));
                    }
                };
                log(&format!("{} booting (host port {})", instance.label, instance.host_port));
                instances.list.push(instance.clone());
                instance
            }
        };
        instance.begin_request();
        Ok(Lease { instance })
    }

    /// Removes instances that ended or failed, saying so in the log.
    fn reap(&self, instances: &mut Instances) {
        instances.list.retain(|instance| {
            if instance.is_usable() {
                return true;
            }
            if matches!(instance.readiness(), Readiness::Failed(_)) {
                // Failed boots were reported when they failed; make sure
                // the process is gone.
                instance.stop("it failed");
                log(&format!("{} stopped: {}", instance.label, self.summary(instance)));
            } else {
                log(&format!(
                    "{} stopped: it exited on its own ({}); {}",
                    instance.label,
                    instance.describe_exit(),
                    self.summary(instance)
                ));
                instance.stop("it exited");
            }
            false
        });
    }

    fn summary(&self, instance: &Instance) -> String {
        format!("up {:.1} s, {} requests", instance.started.elapsed().as_secs_f64(), instance.answered())
    }

    /// Stops instances idle for longer than the function's idle timeout
    /// and removes dead ones.
    pub fn housekeep(&self) {
        let mut instances = self.instances();
        self.reap(&mut instances);
        let Some(idle_timeout) = self.function.idle_timeout else { return };
        instances.list.retain(|instance| {
            let is_idle = instance.readiness() == Readiness::Answering
                && instance.active() == 0
                && instance.idle_for() >= idle_timeout;
            if is_idle {
                instance.stop("it was idle");
                log(&format!(
                    "{} stopped: idle for {} s; {}",
                    instance.label,
                    idle_timeout.as_secs(),
                    self.summary(instance)
                ));
            }
            !is_idle
        });
    }

    /// The host port of an instance that answers, if there is one.
    pub fn answering_port(&self) -> Option<u16> {
        let instances = self.instances();
        instances
            .list
            .iter()
            .find(|instance| instance.readiness() == Readiness::Answering)
            .map(|instance| instance.host_port)
    }

    /// Stops every instance because of `reason`; with `is_final`, refuses
    /// to start more.
    pub fn stop_all(&self, reason: &str, is_final: bool) {
        let mut instances = self.instances();
        instances.is_closed |= is_final;
        for instance in instances.list.drain(..) {
            instance.stop(reason);
            log(&format!("{} stopped: {reason}; {}", instance.label, self.summary(&instance)));
        }
    }

    /// Sends `request` (a whole request, head and body) to the leased
    /// instance and reads the answer's head. A booting instance is probed
    /// first: see the module's description.
    pub fn send(&self, lease: &Lease, request: &[u8]) -> Result<(Reader<TcpStream>, ResponseHead), Failure> {
        let instance = &lease.instance;
        match instance.claim_probe_or_wait() {
            Readiness::Answering => self.send_once(instance, request),
            Readiness::Failed(failure) => Err(failure),
            Readiness::Booting { .. } => {
                let outcome = self.probe(instance, request);
                match &outcome {
                    Ok(_) => {
                        let cold_start = instance.started.elapsed();
                        self.update_stats(|stats| stats.record_cold_start(cold_start));
                        log(&format!(
                            "{} answered {:.3} s after it was started (cold start)",
                            instance.label,
                            cold_start.as_secs_f64()
                        ));
                        instance.set_readiness(Readiness::Answering);
                    }
                    Err(failure) => {
                        self.update_stats(|stats| stats.boot_failures += 1);
                        log(&format!(
                            "{} failed: {}; its console ended with:\n{}",
                            instance.label,
                            failure.message,
                            instance.console.text()
                        ));
                        instance.set_readiness(Readiness::Failed(failure.clone()));
                        instance.stop("it failed to boot");
                    }
                }
                outcome
            }
        }
    }

    /// Tries `request` on a booting instance until the guest answers, its
    /// VM ends or the boot timeout passes.
    fn probe(
        &self,
        instance: &Instance,
        request: &[u8],
    ) -> Result<(Reader<TcpStream>, ResponseHead), Failure> {
        let name = &self.function.name;
        let boot_timeout = self.function.boot_timeout;
        let deadline = instance.started + boot_timeout;
        let timed_out = || {
            Failure::new(
                504,
                format!(
                    "function {name} did not answer within {} s of starting its VM",
                    boot_timeout.as_secs()
                ),
            )
        };
        let ended = |instance: &Instance| {
            Failure::new(
                502,
                format!("the VM of function {name} ended before it answered: {}", instance.describe_exit()),
            )
        };
        // Before the kernel has booted its network, QEMU holds connections
        // without passing them on; after it, a guest that does not listen
        // yet refuses them at once.
        instance.console.wait_for_boot(deadline.min(Instant::now() + BOOT_LINE_GRACE));
        loop {
            if instance.exit_status().is_some() {
                return Err(ended(instance));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out());
            }
            match self.try_send(instance, request, deadline - now) {
                Ok(answer) => return Ok(answer),
                Err(error) if error.is_timeout() => return Err(timed_out()),
                Err(_) => std::thread::sleep(PROBE_INTERVAL),
            }
        }
    }

    /// Sends `request` to an instance that has answered before.
    fn send_once(
        &self,
        instance: &Instance,
        request: &[u8],
    ) -> Result<(Reader<TcpStream>, ResponseHead), Failure> {
        let name = &self.function.name;
        match self.try_send(instance, request, self.function.request_timeout) {
            Ok(answer) => Ok(answer),
            Err(error) if error.is_timeout() => Err(Failure::new(
                504,
                format!(
                    "function {name} did not answer within {} s",
                    self.function.request_timeout.as_secs()
                ),
            )),
            Err(error) => {
                // Give QEMU a moment to finish exiting, so that a dead VM
                // is reported as such and replaced.
                std::thread::sleep(Duration::from_millis(50));
                match instance.exit_status() {
                    Some(_) => Err(Failure::new(
                        502,
                        format!("the VM of function {name} ended: {}", instance.describe_exit()),
                    )),
                    None => Err(Failure::new(502, format!("function {name} gave no answer: {error}"))),
                }
            }
        }
    }

    /// One try: connect, send, read the head within `timeout`.
    fn try_send(
        &self,
        instance: &Instance,
        request: &[u8],
        timeout: Duration,
    ) -> Result<(Reader<TcpStream>, ResponseHead), super::http::HttpError> {
        use std::io::Write;
        let mut stream = instance.connect(CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        stream.write_all(request)?;
        let mut reader = Reader::new(stream);
        let head = reader.read_response_head()?;
        // Reads of the body may take as long as a request may.
        reader.get_ref().set_read_timeout(Some(self.function.request_timeout))?;
        instance.count_answer();
        Ok((reader, head))
    }
}
