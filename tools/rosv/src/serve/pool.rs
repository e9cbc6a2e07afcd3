//! The VMs of one function: booting on demand and ahead of it, choosing,
//! queueing, stopping.
//!
//! A [`Pool`] holds a function's [`Instance`]s. [`Pool::acquire`] picks
//! one for a request: one with room (fewer requests in flight than
//! `max_concurrency`; those that answer first), else a new one while the
//! function is below `max_instances`, else the request waits in a bounded
//! queue until one has room. Once the busy fraction of the VMs reaches
//! `spare_threshold`, `spare_instances` idle VMs are booted ahead of
//! demand; [`Pool::housekeep`] keeps `min_instances` booted and stops VMs
//! idle for the idle timeout down to that number, by killing them.
//!
//! The first request sent to a booting HTTP instance probes it
//! ([`Pool::send`]): it waits for the kernel's boot line, then sends the
//! request until the guest answers (QEMU accepts forwarded connections
//! before the guest listens, and drops them), and the other requests wait
//! for that outcome. A Lambda instance is ready when its runtime first
//! asks for an invocation ([`Pool::invoke`]).
//!
//! Each request's cost is recorded by [`Pool::finish`] (see `billing`).
//! Sending to HTTP instances is in `forward`, invoking Lambda ones in
//! `lambda`, the template and snapshot of snapshot functions in `snapshots`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use super::backend::Backend;
use super::billing::{self, InvocationLog};
use super::config::{Function, Kind};
use super::instance::{Failure, Instance, Launcher, RUNTIME_API_PORT, Readiness, VsockDirectory};
use super::log;
use super::runtime_api::RuntimeApi;
use super::snapshot::{Launch, RUNTIME_ADDRESS};
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
/// How often a queued request looks for room again, besides being woken.
const QUEUE_RECHECK: Duration = Duration::from_millis(100);
/// The first pause before booting for `min_instances` again after VMs
/// ended before they were ready; it doubles with each such failure.
const MIN_BOOT_BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest such pause.
const MIN_BOOT_BACKOFF_LIMIT: Duration = Duration::from_secs(60);
/// The address of the host as QEMU's user network shows it to the guest.
const HOST_FROM_GUEST: &str = "10.0.2.2";
/// The region in the ARNs of Lambda functions.
const REGION: &str = "us-east-1";
/// The account in the ARNs of Lambda functions.
const ACCOUNT: &str = "000000000000";

/// The VMs of one function and its counters.
#[derive(Debug)]
pub struct Pool {
    /// The function as configured.
    pub function: Function,
    image: Image,
    machine: MachineArgs,
    /// The VM configuration of HTTP functions (Lambda functions get one
    /// per instance, which names its Runtime API).
    vm_config: VmConfig,
    /// How its VMs start.
    launcher: Launcher,
    instances: Mutex<Instances>,
    /// Signalled when an instance may have room: a request ended, an
    /// instance was removed or failed.
    room: Condvar,
    stats: Mutex<FunctionStats>,
    invocation_log: Option<Arc<InvocationLog>>,
    /// The snapshot of a function with `snapshot = true`.
    snapshots: Option<Snapshots>,
}

#[derive(Debug)]
struct Instances {
    list: Vec<Arc<Instance>>,
    next_number: u64,
    /// Requests waiting for room.
    queued: usize,
    is_closed: bool,
    /// No VM boots for `min_instances` before then: the last ones ended
    /// before they were ready.
    min_boot_after: Option<Instant>,
    /// The pause after the next such failure.
    min_boot_backoff: Duration,
}

impl Default for Instances {
    fn default() -> Self {
        Instances {
            list: Vec::new(),
            next_number: 0,
            queued: 0,
            is_closed: false,
            min_boot_after: None,
            min_boot_backoff: MIN_BOOT_BACKOFF_FIRST,
        }
    }
}

/// A request's hold on an instance; lets go when dropped.
#[derive(Debug)]
pub struct Lease<'a> {
    /// The instance.
    pub instance: Arc<Instance>,
    pool: &'a Pool,
    started: Instant,
    cpu_at_start: Duration,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.instance.end_request();
        // Taking the lock orders this after a waiter's check for room.
        drop(self.pool.instances());
        self.pool.room.notify_all();
    }
}

/// The ARN Lambda would give function `name`.
pub fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many spares `function` should boot with `total` VMs of which `busy`
/// serve requests: enough for `spare_instances` idle ones once the busy
/// fraction reaches `spare_threshold`, within `max_instances`; none while
/// nothing is busy, so that idle functions shrink.
fn spares_to_boot(function: &Function, total: usize, busy: usize) -> usize {
    let spares = function.spare_instances as usize;
    if spares == 0 || busy == 0 || (busy as f64) < function.spare_threshold * total as f64 {
        return 0;
    }
    let idle = total.saturating_sub(busy);
    let room = (function.max_instances as usize).saturating_sub(total);
    spares.saturating_sub(idle).min(room)
}

/// `config` as `launcher`'s hypervisor needs it: Firecracker on a host
/// whose KVM emulates ring 0 gets `--noxsave`, as `rosv run` gives it (the
/// built-in monitor's `rosv run` child adds it itself).
fn adjusted_for(launcher: &Launcher, mut config: VmConfig) -> VmConfig {
    let is_software_kvm = crate::host::kvm() == Some(crate::host::Kvm::Software);
    if *launcher == Launcher::Firecracker && is_software_kvm {
        config.add_kernel_options(&["--noxsave".to_string()]);
    }
    config
}

/// Machine options parsed as `rosv run` would parse them, so that a
/// function's VM is set up by the same code and defaults.
#[derive(Debug, Parser)]
struct MachineWords {
    #[command(flatten)]
    machine: MachineArgs,
}

/// The arguments of `rosv run` that boot `function`'s image on the
/// built-in monitor as `VmConfig::new` would: its memory, processors,
/// environment and command.
fn builtin_arguments(function: &Function) -> Vec<String> {
    let mut arguments = vec![
        "--memory".to_string(),
        function.memory_mib.to_string(),
        "--cpus".into(),
        function.cpus.to_string(),
    ];
    for (name, value) in &function.environment {
        arguments.push(format!("--env={name}={value}"));
    }
    arguments.push(function.image_directory.to_string_lossy().into_owned());
    if let Some(command) = &function.command {
        arguments.push("--".into());
        arguments.extend(command.iter().cloned());
    }
    arguments
}

impl Pool {
    /// A pool for `function`, whose VMs run on `backend` (QEMU with
    /// `accel`); checks that its image and machine can be booted.
    /// Invocations are logged to `invocation_log`, if given.
    pub fn new(
        function: Function,
        accel: Accelerator,
        backend: Backend,
        invocation_log: Option<Arc<InvocationLog>>,
    ) -> Result<Pool> {
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
        let snapshots = match &function.kind {
            Kind::Lambda { handler } if function.snapshot => {
                let mut environment = lambda_environment(
                    &function,
                    handler,
                    &format!("{}#snapshot", function.name),
                    RUNTIME_ADDRESS,
                );
                environment.extend(function.environment.iter().cloned());
                let vm_config = VmConfig::new(&image, &machine, &environment, function.command.as_deref())?
                    .reporting_boot();
                let directory = tempfile::Builder::new()
                    .prefix("rosv-serve-")
                    .tempdir()
                    .context("cannot create a directory for snapshots")?;
                Some(Snapshots { directory, vm_config, state: Mutex::new(SnapshotState::Missing) })
            }
            _ => None,
        };
        let launcher = match backend {
            Backend::Builtin => Launcher::Builtin(builtin_arguments(&function)),
            Backend::Firecracker => Launcher::Firecracker,
            Backend::Qemu | Backend::Auto => Launcher::Qemu(accel),
        };
        let vm_config = adjusted_for(&launcher, vm_config);
        Ok(Pool {
            function,
            image,
            machine,
            vm_config,
            launcher,
            instances: Mutex::new(Instances::default()),
            room: Condvar::new(),
            stats: Mutex::new(FunctionStats::default()),
            invocation_log,
            snapshots,
        })
    }

    /// `config` as this pool's hypervisor needs it.
    fn adjusted(&self, config: VmConfig) -> VmConfig {
        adjusted_for(&self.launcher, config)
    }

    fn instances(&self) -> MutexGuard<'_, Instances> {
        self.instances.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the counters.
    pub fn update_stats(&self, change: impl FnOnce(&mut FunctionStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    /// The function's ARN, as Lambda would name it.
    pub fn arn(&self) -> String {
        arn(&self.function.name)
    }

    /// The function's counters as JSON.
    pub fn stats_json(&self) -> serde_json::Value {
        let (running, booting, queued) = {
            let mut instances = self.instances();
            self.reap(&mut instances);
            let booting = instances
                .list
                .iter()
                .filter(|instance| matches!(instance.readiness(), Readiness::Booting { .. }))
                .count();
            (instances.list.len(), booting, instances.queued)
        };
        let mut json =
            self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).to_json(running, booting);
        json["queued"] = queued.into();
        json
    }

    /// An instance for one request: one with room, else a new one if the
    /// function may have more, else the first to have room, waiting in the
    /// queue until `deadline`.
    pub fn acquire(&self, deadline: Instant) -> Result<Lease<'_>, Failure> {
        let mut instances = self.instances();
        let mut is_queued = false;
        let outcome = loop {
            if instances.is_closed {
                break Err(Failure::new(503, "the function host is stopping"));
            }
            self.reap(&mut instances);
            if let Some(instance) = self.instance_with_room(&instances) {
                break Ok(instance);
            }
            if instances.list.len() < self.function.max_instances as usize {
                break self.boot(&mut instances, "a request");
            }
            if !is_queued {
                if instances.queued >= self.function.max_queued as usize {
                    break Err(Failure::new(
                        503,
                        format!(
                            "function {} is at its {} VMs and {} requests wait already",
                            self.function.name, self.function.max_instances, instances.queued
                        ),
                    ));
                }
                instances.queued += 1;
                is_queued = true;
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(Failure::new(
                    504,
                    format!("function {} had no VM free for this request in time", self.function.name),
                ));
            }
            instances = self
                .room
                .wait_timeout(instances, (deadline - now).min(QUEUE_RECHECK))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        };
        if is_queued {
            instances.queued -= 1;
        }
        let instance = outcome?;
        instance.begin_request();
        self.boot_spares(&mut instances);
        drop(instances);
        let cpu_at_start = instance.vcpu_time();
        Ok(Lease { instance, pool: self, started: Instant::now(), cpu_at_start })
    }

    /// The instance with room that should take a request: answering ones
    /// first, then the least busy.
    fn instance_with_room(&self, instances: &Instances) -> Option<Arc<Instance>> {
        let limit = self.function.max_concurrency as usize;
        instances
            .list
            .iter()
            .filter(|instance| instance.active() < limit)
            .min_by_key(|instance| (instance.readiness() != Readiness::Answering, instance.active()))
            .cloned()
    }

    /// Starts a VM for `why` (for the log) and adds it to the pool.
    fn boot(&self, instances: &mut Instances, why: &str) -> Result<Arc<Instance>, Failure> {
        instances.next_number += 1;
        let label = format!("{}#{}", self.function.name, instances.next_number);
        self.update_stats(|stats| stats.boots += 1);
        let started = self.start_instance(&label);
        let instance = match started {
            Ok(instance) => Arc::new(instance),
            Err(error) => {
                self.update_stats(|stats| stats.boot_failures += 1);
                let message = format!("cannot start a VM for function {}: {error:#}", self.function.name);
                log(&message);
                return Err(Failure::new(502, message));
            }
        };
        let place = match (instance.host_port, &instance.runtime) {
            (Some(port), _) => format!("host port {port}"),
            (None, _) if instance.vsock.is_some() => instance
                .vsock
                .as_ref()
                .map(|vsock| format!("vsock {}", vsock.socket.display()))
                .unwrap_or_default(),
            (None, Some(runtime)) => match (&instance.launch.incoming, &instance.launch.monitor) {
                (Some(_), _) => String::from("from the snapshot"),
                (None, Some(_)) => String::from("as the template of the snapshot"),
                (None, None) if runtime.socket.is_some() => {
                    String::from("booting while there is no snapshot")
                }
                (None, None) => format!("Runtime API on port {}", runtime.port),
            },
            (None, None) => String::new(),
        };
        log(&format!("{} booting for {why} ({place})", instance.label));
        instances.list.push(instance.clone());
        Ok(instance)
    }

    fn start_instance(&self, label: &str) -> Result<Instance> {
        match &self.function.kind {
            Kind::Http { port } => Instance::start(
                label.to_string(),
                &self.vm_config,
                &self.launcher,
                Some(*port),
                None,
                &Launch::default(),
            ),
            Kind::Lambda { .. } if self.snapshots.is_some() => self.start_snapshot_instance(label),
            Kind::Lambda { handler } if self.launcher.is_vsock() => {
                let directory = VsockDirectory::new()?;
                let socket = directory.host_port_socket(RUNTIME_API_PORT);
                let runtime = RuntimeApi::start_on_vsock(self.arn(), &socket)?;
                let address = format!("127.0.0.1:{RUNTIME_API_PORT}");
                let lambda = lambda_environment(&self.function, handler, label, &address);
                let mut environment = lambda.clone();
                environment.extend(self.function.environment.iter().cloned());
                let config = self.adjusted(
                    VmConfig::new(
                        &self.image,
                        &self.machine,
                        &environment,
                        self.function.command.as_deref(),
                    )?
                    .reporting_boot(),
                );
                Instance::start_lambda_on_vsock(
                    label.to_string(),
                    &config,
                    &self.launcher,
                    directory,
                    runtime,
                    lambda,
                )
            }
            Kind::Lambda { handler } => {
                let runtime = RuntimeApi::start(self.arn())?;
                let address = format!("{HOST_FROM_GUEST}:{}", runtime.port);
                let mut environment = lambda_environment(&self.function, handler, label, &address);
                environment.extend(self.function.environment.iter().cloned());
                let config = VmConfig::new(
                    &self.image,
                    &self.machine,
                    &environment,
                    self.function.command.as_deref(),
                )?
                .reporting_boot();
                Instance::start(
                    label.to_string(),
                    &config,
                    &self.launcher,
                    None,
                    Some(runtime),
                    &Launch::default(),
                )
            }
        }
    }

    /// Boots spares when the busy fraction of the VMs has reached the
    /// threshold, so that `spare_instances` idle ones wait for the next
    /// requests (within `max_instances`).
    fn boot_spares(&self, instances: &mut Instances) {
        let busy = instances.list.iter().filter(|instance| instance.active() > 0).count();
        let count = spares_to_boot(&self.function, instances.list.len(), busy);
        for _ in 0..count {
            if self.boot(instances, "a spare").is_err() {
                return;
            }
        }
    }

    /// Removes instances that ended or failed, saying so in the log.
    fn reap(&self, instances: &mut Instances) {
        let before = instances.list.len();
        let mut has_failed_boot = false;
        instances.list.retain(|instance| {
            if instance.is_usable() {
                return true;
            }
            has_failed_boot |= instance.answered() == 0 && !instance.has_been_ready();
            self.forget_template(instance);
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
        if instances.list.len() != before {
            self.room.notify_all();
        }
        // A function whose VMs cannot boot is not booted again and again
        // for min_instances (requests still try, and get the reason).
        if has_failed_boot {
            instances.min_boot_after = Some(Instant::now() + instances.min_boot_backoff);
            instances.min_boot_backoff = (instances.min_boot_backoff * 2).min(MIN_BOOT_BACKOFF_LIMIT);
        }
    }

    fn summary(&self, instance: &Instance) -> String {
        format!("up {:.1} s, {} requests", instance.started.elapsed().as_secs_f64(), instance.answered())
    }

    /// Keeps `min_instances` booted, notes Lambda runtimes that became
    /// ready, stops instances idle for longer than the idle timeout (down
    /// to `min_instances`) and removes dead ones.
    pub fn housekeep(&self) {
        let templates = self.housekeep_instances();
        // Saving takes a moment: not under the pool's lock.
        for template in templates {
            self.save_if_template(&template);
        }
    }

    /// [`Pool::housekeep`] under the pool's lock; returns the templates
    /// whose runtime became ready, to be saved.
    fn housekeep_instances(&self) -> Vec<Arc<Instance>> {
        let mut templates = Vec::new();
        let mut instances = self.instances();
        if instances.is_closed {
            return templates;
        }
        self.reap(&mut instances);
        if instances.list.iter().any(|instance| instance.has_been_ready()) {
            instances.min_boot_backoff = MIN_BOOT_BACKOFF_FIRST;
        }
        for instance in &instances.list {
            if let Some(runtime) = &instance.runtime
                && runtime.is_ready()
                && matches!(instance.readiness(), Readiness::Booting { is_probing: false })
                && instance.launch.incoming.is_none()
            {
                self.mark_ready(instance);
                if instance.launch.monitor.is_some() {
                    templates.push(instance.clone());
                }
            }
        }
        let may_boot = instances.min_boot_after.is_none_or(|after| Instant::now() >= after);
        while may_boot && instances.list.len() < self.function.min_instances as usize {
            if self.boot(&mut instances, "min_instances").is_err() {
                instances.min_boot_after = Some(Instant::now() + MIN_BOOT_BACKOFF_LIMIT);
                break;
            }
        }
        let Some(idle_timeout) = self.function.idle_timeout else { return templates };
        let minimum = self.function.min_instances as usize;
        let mut index = 0;
        while index < instances.list.len() && instances.list.len() > minimum {
            let instance = instances.list[index].clone();
            let is_waiting = match instance.readiness() {
                Readiness::Answering => true,
                // Booted ahead of demand and never asked.
                Readiness::Booting { is_probing: false } => match &instance.runtime {
                    None => instance.console.has_booted(),
                    // Restored from a snapshot and never asked.
                    Some(runtime) => runtime.is_ready(),
                },
                _ => false,
            };
            let is_idle = is_waiting && instance.active() == 0 && instance.idle_for() >= idle_timeout;
            if is_idle && !self.is_being_saved(&instance) {
                instances.list.remove(index);
                instance.stop("it was idle");
                log(&format!(
                    "{} stopped: idle for {} s; {}",
                    instance.label,
                    idle_timeout.as_secs(),
                    self.summary(&instance)
                ));
            } else {
                index += 1;
            }
        }
        templates
    }

    /// An instance that answers, if there is one.
    pub fn answering_instance(&self) -> Option<Arc<Instance>> {
        let instances = self.instances();
        instances.list.iter().find(|instance| instance.readiness() == Readiness::Answering).cloned()
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
        self.room.notify_all();
        if is_final && let Some(snapshots) = &self.snapshots {
            // The host exits without dropping the pool.
            let _ = std::fs::remove_dir_all(snapshots.directory.path());
        }
    }

    /// Marks `instance` ready: it answers, and its boot's CPU time is
    /// known.
    fn mark_ready(&self, instance: &Instance) {
        instance.note_ready();
        let cold_start = instance.started.elapsed();
        self.update_stats(|stats| stats.record_cold_start(cold_start));
        log(&format!(
            "{} answered {:.3} s after it was started (cold start)",
            instance.label,
            cold_start.as_secs_f64()
        ));
        instance.set_readiness(Readiness::Answering);
    }

    /// Marks `instance` failed with `failure` and stops it.
    fn fail(&self, instance: &Instance, failure: &Failure) {
        log(&format!(
            "{} failed: {}; its console ended with:\n{}",
            instance.label,
            failure.message,
            instance.console.text()
        ));
        instance.set_readiness(Readiness::Failed(failure.clone()));
        instance.stop(&failure.message);
        self.room.notify_all();
    }

    /// Records what the request served by `lease` cost, in the counters
    /// and the invocation log.
    pub fn finish(&self, lease: Lease<'_>, status: u16, request_id: &str) {
        let instance = &lease.instance;
        let wall = lease.started.elapsed();
        let cpu_now = instance.vcpu_time();
        let boot_cpu = instance.take_boot_cpu();
        // A cold invocation's share starts where the boot's ends.
        let cpu_start = boot_cpu.map_or(lease.cpu_at_start, |boot| boot.max(lease.cpu_at_start));
        let invocation = billing::Invocation {
            function: self.function.name.clone(),
            instance: instance.label.clone(),
            request_id: request_id.to_string(),
            status,
            is_cold: boot_cpu.is_some(),
            wall_us: billing::microseconds(wall),
            cpu_us: billing::microseconds(cpu_now.saturating_sub(cpu_start)),
            boot_cpu_us: boot_cpu.map_or(0, billing::microseconds),
            memory_mib_ms: self
                .function
                .memory_mib
                .saturating_mul(u64::try_from(wall.as_millis()).unwrap_or(u64::MAX)),
        };
        self.update_stats(|stats| stats.billing.add(&invocation));
        if let Some(log) = &self.invocation_log {
            log.write(&invocation);
        }
    }
}

mod forward;
mod lambda;
mod snapshots;

use lambda::lambda_environment;
use snapshots::{SnapshotState, Snapshots};

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn function(max_instances: u32, spare_instances: u32, spare_threshold: f64) -> Function {
        let mut function = Function::new("f", PathBuf::from("image"), Kind::Http { port: 80 });
        function.max_instances = max_instances;
        function.spare_instances = spare_instances;
        function.spare_threshold = spare_threshold;
        function
    }

    #[test]
    fn spares_boot_once_the_busy_fraction_reaches_the_threshold() {
        let burst = function(8, 2, 0.5);
        // (total, busy) -> spares to boot
        for ((total, busy), expected) in [
            ((0, 0), 0), // nothing busy: nothing ahead of demand
            ((1, 1), 2), // the first request: two spares behind it
            ((3, 1), 0), // 1 of 3 busy is below the threshold
            ((3, 2), 1), // 2 of 3: one idle, one more spare
            ((4, 4), 2),
            ((7, 7), 1), // max_instances bounds the spares
            ((8, 8), 0),
        ] {
            assert_eq!(spares_to_boot(&burst, total, busy), expected, "{total} VMs, {busy} busy");
        }
        assert_eq!(spares_to_boot(&function(8, 0, 0.5), 1, 1), 0, "no spares asked for");
        assert_eq!(spares_to_boot(&function(8, 1, 1.0), 2, 1), 0, "half busy is below 1.0");
        assert_eq!(spares_to_boot(&function(8, 1, 0.0), 2, 1), 0, "one idle already");
    }
}
