//! A pool's Lambda instances: the environment of their runtime, and
//! handing invocations to it.

use std::time::{Duration, Instant};

use anyhow::Context;
use rosv_abi::streams::ControlMessage;

use super::{Lease, Pool, REGION};
use crate::serve::config::Function;
use crate::serve::instance::{Failure, Instance, Readiness};
use crate::serve::runtime_api::{self, NoOutcome, Outcome};
use crate::serve::{log, restore};

impl Pool {
    /// Gives `invocation` to the runtime of the leased Lambda instance,
    /// waiting for it to be ready first; a VM that fails, ends or hangs is
    /// stopped, to be replaced.
    pub fn invoke(&self, lease: &Lease<'_>, invocation: runtime_api::Invocation) -> Result<Outcome, Failure> {
        let instance = &lease.instance;
        let name = &self.function.name;
        let Some(runtime) = &instance.runtime else {
            return Err(Failure::new(500, format!("function {name} is not a Lambda function")));
        };
        let is_alive = || instance.exit_status().is_none();
        // A VM restored from a snapshot is ready once it answers.
        let is_restoring = instance.launch.incoming.is_some() && instance.readiness() != Readiness::Answering;
        if instance.readiness() != Readiness::Answering && !is_restoring {
            let deadline = instance.started + self.function.boot_timeout;
            match runtime.wait_until_ready(deadline, is_alive) {
                Ok(()) => {
                    if instance.readiness() != Readiness::Answering {
                        self.mark_ready(instance);
                    }
                    self.save_if_template(instance);
                }
                Err(problem) => {
                    let failure = match problem {
                        NoOutcome::TimedOut => Failure::new(
                            504,
                            format!(
                                "the runtime of function {name} did not ask for an invocation within {} s of \
                                 starting its VM",
                                self.function.boot_timeout.as_secs()
                            ),
                        ),
                        NoOutcome::Ended => Failure::new(
                            502,
                            format!(
                                "the VM of function {name} ended before its runtime was ready: {}",
                                instance.describe_exit()
                            ),
                        ),
                        NoOutcome::InitError(document) => Failure::new(
                            502,
                            format!("the runtime of function {name} failed to start: {document}"),
                        ),
                    };
                    self.update_stats(|stats| stats.boot_failures += 1);
                    self.fail(instance, &failure);
                    return Err(failure);
                }
            }
        }
        if is_restoring && let Some(monitor) = &instance.launch.monitor {
            let deadline = instance.started + self.function.boot_timeout;
            let resumed = crate::serve::snapshot::wait_until_running(monitor, deadline)
                .and_then(|()| refresh(instance, deadline));
            if let Err(error) = resumed {
                let failure =
                    Failure::new(502, format!("the VM of function {name} did not resume: {error:#}"));
                self.snapshot_failed(instance);
                self.fail(instance, &failure);
                return Err(failure);
            }
        }
        let deadline = Instant::now() + self.function.request_timeout;
        match runtime.invoke(invocation, deadline, is_alive) {
            Ok(outcome) => {
                if is_restoring {
                    self.mark_ready(instance);
                }
                instance.count_answer();
                Ok(outcome)
            }
            Err(problem) => {
                let failure = match problem {
                    NoOutcome::TimedOut => Failure::new(
                        504,
                        format!(
                            "function {name} did not finish within {} s; its VM is replaced",
                            self.function.request_timeout.as_secs()
                        ),
                    ),
                    NoOutcome::Ended => {
                        // Give QEMU a moment to finish exiting, to say how.
                        std::thread::sleep(Duration::from_millis(50));
                        Failure::new(
                            502,
                            format!(
                                "the VM of function {name} ended during the invocation: {}",
                                instance.describe_exit()
                            ),
                        )
                    }
                    NoOutcome::InitError(document) => {
                        Failure::new(502, format!("the runtime of function {name} failed: {document}"))
                    }
                };
                if is_restoring {
                    self.snapshot_failed(instance);
                }
                self.fail(instance, &failure);
                Err(failure)
            }
        }
    }
}

/// Tells `instance`, restored from the snapshot and running, its own time,
/// entropy and id, and waits until its kernel has applied them (see
/// `restore`), at most until `deadline`.
fn refresh(instance: &Instance, deadline: Instant) -> anyhow::Result<()> {
    let control = instance.control.as_ref().context("the VM has no control port")?;
    let notice = restore::notice()?;
    control.send(ControlMessage::Restore(notice), deadline)?;
    if !instance.console.wait_for_restore(&restore::hex(&notice.instance_id), deadline) {
        anyhow::bail!("its kernel did not apply the restore notice: {}", instance.describe_exit());
    }
    log(&format!("{} restored as instance {}", instance.label, restore::uuid(&notice.instance_id)));
    Ok(())
}

/// The environment Lambda gives a runtime whose Runtime API is at
/// `runtime_address` (the configuration's own variables are added after,
/// and win).
pub(super) fn lambda_environment(
    function: &Function,
    handler: &str,
    label: &str,
    runtime_address: &str,
) -> Vec<(String, String)> {
    let name = &function.name;
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_address.to_string()),
        ("_HANDLER", handler.to_string()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mib.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", label.replace('#', "/")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect()
}
