//! A pool's HTTP instances: sending a request, probing a booting guest.

use std::time::{Duration, Instant};

use super::{BOOT_LINE_GRACE, CONNECT_TIMEOUT, Lease, PROBE_INTERVAL, Pool};
use crate::serve::guest_stream::GuestStream;
use crate::serve::http::{HttpError, Reader, ResponseHead};
use crate::serve::instance::{Failure, Instance, Readiness};

impl Pool {
    /// Sends `request` (a whole request, head and body) to the leased
    /// instance and reads the answer's head. A booting instance is probed
    /// first: see the module's description.
    pub fn send(
        &self,
        lease: &Lease<'_>,
        request: &[u8],
    ) -> Result<(Reader<GuestStream>, ResponseHead), Failure> {
        let instance = &lease.instance;
        match instance.claim_probe_or_wait() {
            Readiness::Answering => self.send_once(instance, request),
            Readiness::Failed(failure) => Err(failure),
            Readiness::Booting { .. } => {
                let outcome = self.probe(instance, request);
                match &outcome {
                    Ok(_) => self.mark_ready(instance),
                    Err(failure) => {
                        self.update_stats(|stats| stats.boot_failures += 1);
                        self.fail(instance, failure);
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
    ) -> Result<(Reader<GuestStream>, ResponseHead), Failure> {
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
    ) -> Result<(Reader<GuestStream>, ResponseHead), Failure> {
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
    ) -> Result<(Reader<GuestStream>, ResponseHead), HttpError> {
        use std::io::Write;
        let mut stream = instance.connect(CONNECT_TIMEOUT)?;
        stream.set_nodelay()?;
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
