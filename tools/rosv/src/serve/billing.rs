//! What an invocation costs: vCPU time, its boot's share, memory-time.
//!
//! [`vcpu_time`] reads the CPU time of a hypervisor's vCPU threads from
//! `/proc/PID/task/*/`: QEMU names them `CPU N/TCG` or `CPU N/KVM` (with
//! `-name ...,debug-threads=on`), so time its other threads spend (the
//! main loop, I/O) is not billed; a process without such names is billed
//! whole. Time a guest spends waiting (halted) costs nothing, as the
//! vCPU thread sleeps then. [`Invocation`] is one invocation's record:
//! a line of the JSON log ([`InvocationLog`]) and a term of the sums in
//! `/_rosv/stats`. Amounts are whole microseconds (MiB·ms for memory), so
//! the sums agree with the lines exactly.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The CPU time the vCPU threads of process `pid` have used so far; `None`
/// once the process is gone.
pub fn vcpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut vcpus = Duration::ZERO;
    let mut all = Duration::ZERO;
    let mut has_vcpu_threads = false;
    for task in tasks.flatten() {
        let path = task.path();
        let Some(time) = thread_time(&path) else { continue };
        all += time;
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if is_vcpu_thread(name.trim_end()) {
            has_vcpu_threads = true;
            vcpus += time;
        }
    }
    Some(if has_vcpu_threads { vcpus } else { all })
}

/// Whether a thread called `name` runs a vCPU: QEMU's `CPU N/KVM`, the
/// built-in monitor's `vcpuN`, Firecracker's `fc_vcpu N`.
pub fn is_vcpu_thread(name: &str) -> bool {
    let is_numbered = |rest: &str| !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_digit());
    (name.starts_with("CPU ") && (name.ends_with("/TCG") || name.ends_with("/KVM") || name.ends_with("/HVF")))
        || name.strip_prefix("vcpu").is_some_and(is_numbered)
        || name.strip_prefix("fc_vcpu ").is_some_and(is_numbered)
}

/// One thread's CPU time: `schedstat`'s nanoseconds where the kernel keeps
/// them, else `stat`'s user and system clock ticks.
fn thread_time(task: &Path) -> Option<Duration> {
    if let Ok(text) = std::fs::read_to_string(task.join("schedstat"))
        && let Some(nanoseconds) = text.split_whitespace().next().and_then(|field| field.parse::<u64>().ok())
    {
        return Some(Duration::from_nanos(nanoseconds));
    }
    let text = std::fs::read_to_string(task.join("stat")).ok()?;
    parse_stat_ticks(&text).map(|ticks| Duration::from_millis(ticks * 1000 / clock_ticks_per_second()))
}

/// User plus system time, in clock ticks, from a `stat` line (proc(5):
/// fields 14 and 15, counted after the parenthesized command, which may
/// hold spaces).
pub fn parse_stat_ticks(line: &str) -> Option<u64> {
    let (_, after_command) = line.rsplit_once(')')?;
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) is index 11.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// `sysconf(_SC_CLK_TCK)`, which is 100 on every Linux architecture rosv
/// runs on.
fn clock_ticks_per_second() -> u64 {
    100
}

/// What one invocation cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// The instance that served it (`function#number`).
    pub instance: String,
    /// The request id (Lambda's, or the host's for HTTP requests).
    pub request_id: String,
    /// The status the client got.
    pub status: u16,
    /// Whether the instance booted for it (or was booted ahead of it and
    /// served it first): then it carries the boot's cost.
    pub is_cold: bool,
    /// From taking an instance to the end of the answer.
    pub wall_us: u64,
    /// vCPU time the instance used meanwhile.
    pub cpu_us: u64,
    /// vCPU time the instance's boot used (cold invocations only).
    pub boot_cpu_us: u64,
    /// Guest memory times wall time.
    pub memory_mib_ms: u64,
}

impl Invocation {
    /// The JSON object of one log line.
    pub fn to_json(&self) -> Value {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        json!({
            "time_ms": now.as_millis() as u64,
            "function": self.function,
            "instance": self.instance,
            "request_id": self.request_id,
            "status": self.status,
            "cold": self.is_cold,
            "wall_us": self.wall_us,
            "cpu_us": self.cpu_us,
            "boot_cpu_us": self.boot_cpu_us,
            "memory_mib_ms": self.memory_mib_ms,
        })
    }
}

/// The sums of a function's invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Invocations recorded.
    pub invocations: u64,
    /// Their wall time.
    pub wall_us: u64,
    /// Their vCPU time.
    pub cpu_us: u64,
    /// Their boots' vCPU time.
    pub boot_cpu_us: u64,
    /// Their memory-time.
    pub memory_mib_ms: u64,
}

impl Totals {
    /// Adds one invocation.
    pub fn add(&mut self, invocation: &Invocation) {
        self.invocations += 1;
        self.wall_us += invocation.wall_us;
        self.cpu_us += invocation.cpu_us;
        self.boot_cpu_us += invocation.boot_cpu_us;
        self.memory_mib_ms += invocation.memory_mib_ms;
    }

    /// The sums as JSON, with readable units beside the exact ones.
    pub fn to_json(&self) -> Value {
        json!({
            "invocations": self.invocations,
            "wall_us": self.wall_us,
            "cpu_us": self.cpu_us,
            "boot_cpu_us": self.boot_cpu_us,
            "memory_mib_ms": self.memory_mib_ms,
            "cpu_ms": self.cpu_us as f64 / 1000.0,
            "memory_mib_s": self.memory_mib_ms as f64 / 1000.0,
        })
    }
}

/// The per-invocation log: a JSON object per line.
#[derive(Debug)]
pub struct InvocationLog {
    file: Mutex<File>,
}

impl InvocationLog {
    /// Opens (appending to) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<InvocationLog> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(InvocationLog { file: Mutex::new(file) })
    }

    /// Appends `invocation`'s line (a failed write is reported in the
    /// host's log, and the request goes on).
    pub fn write(&self, invocation: &Invocation) {
        let mut line = invocation.to_json().to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = file.write_all(line.as_bytes()) {
            super::log(&format!("cannot write the invocation log: {error}"));
        }
    }
}

/// Microseconds in `duration`, saturating.
pub fn microseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_and_system_ticks() {
        let line = "4242 (CPU 0/TCG) S 1 2 3 0 -1 4194624 100 0 0 0 250 17 0 0 20 0 9 0 5 1 2";
        assert_eq!(parse_stat_ticks(line), Some(267));
        assert_eq!(parse_stat_ticks("12 (a) b) R 1"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn vcpu_threads_are_named_by_qemu() {
        assert!(is_vcpu_thread("CPU 0/TCG"));
        assert!(is_vcpu_thread("CPU 12/KVM"));
        assert!(!is_vcpu_thread("qemu-system-x86"));
        assert!(!is_vcpu_thread("worker"));
        assert!(is_vcpu_thread("vcpu0") && is_vcpu_thread("fc_vcpu 3"));
        assert!(!is_vcpu_thread("vcpu") && !is_vcpu_thread("fc_vcpu x"));
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let time = vcpu_time(std::process::id()).unwrap();
        assert!(time > Duration::ZERO);
        assert_eq!(vcpu_time(u32::MAX), None);
    }

    #[test]
    fn totals_sum_the_lines() {
        let mut totals = Totals::default();
        let one = Invocation {
            wall_us: 1500,
            cpu_us: 20,
            boot_cpu_us: 7,
            memory_mib_ms: 192,
            ..Default::default()
        };
        totals.add(&one);
        totals.add(&Invocation { boot_cpu_us: 0, ..one.clone() });
        assert_eq!(
            totals,
            Totals { invocations: 2, wall_us: 3000, cpu_us: 40, boot_cpu_us: 7, memory_mib_ms: 384 }
        );
        assert_eq!(totals.to_json()["cpu_ms"], 0.04);
        assert_eq!(one.to_json()["cold"], false);
    }
}
