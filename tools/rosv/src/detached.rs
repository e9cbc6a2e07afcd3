//! VMs that run in the background: `rosv run -d`, `ps`, `logs`, `stop`,
//! `rm`.
//!
//! `rosv run -d` starts another `rosv run` with the same arguments (but
//! no `-d`) in its own process group, standard input from `/dev/null` and
//! both output streams appended to a log file, and returns at once. Each
//! such VM has a directory in the per-user runtime directory
//! ([`runtime_directory`]) holding its record: the supervising rosv's
//! process id and start time (so a recycled process id is not mistaken for
//! it), the command, the log, and the exit status once it has ended.
//! `rosv stop` sends the supervising rosv SIGTERM, which passes it to the
//! application, as for a `rosv run` in the foreground; an application
//! still running after a grace period is stopped with the VM (as many
//! SIGTERMs to rosv as make it stop the VM, see [`crate::vm::Escape`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// The environment variable that tells a `rosv run` started by `rosv run
/// -d` where its record is.
pub const RECORD_VARIABLE: &str = "ROSV_DETACHED_RECORD";
/// How long `rosv stop` lets the application shut down after SIGTERM
/// before it has the supervising rosv stop the VM.
const STOP_PATIENCE: Duration = Duration::from_secs(20);
/// How long `rosv stop` then waits for its rosv to stop the VM before
/// killing it.
const QUIT_PATIENCE: Duration = Duration::from_secs(5);
/// The pause between the SIGTERMs that make rosv stop the VM: long enough
/// for rosv to see each one apart (it looks every few milliseconds).
const ESCAPE_PAUSE: Duration = Duration::from_millis(200);

/// The directory that holds the records of background VMs:
/// `$XDG_RUNTIME_DIR/rosv`, else `/tmp/rosv-<uid>`.
pub fn runtime_directory() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|directory| !directory.is_empty()) {
        Some(directory) => PathBuf::from(directory).join("rosv"),
        None => std::env::temp_dir().join(format!("rosv-{}", rustix::process::getuid().as_raw())),
    }
}

/// Checks a name given with `--name`: letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit, as docker's container names.
pub fn parse_name(text: &str) -> Result<String, String> {
    let mut characters = text.chars();
    let is_valid = characters.next().is_some_and(|first| first.is_ascii_alphanumeric())
        && characters.all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
        && text.len() <= 64;
    if is_valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "\"{text}\" is not a name: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        ))
    }
}

/// One background VM's record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its name.
    pub name: String,
    directory: PathBuf,
}

/// Where a background VM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Its rosv runs.
    Running,
    /// It ended with this status (none: rosv was killed before it could
    /// say).
    Exited(Option<u8>),
}

impl Record {
    fn file(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }

    /// The record of the VM called `name`, if there is one.
    pub fn find(name: &str) -> Result<Record> {
        let record = Record { name: name.to_string(), directory: runtime_directory().join(name) };
        if !record.directory.is_dir() {
            bail!("there is no VM called {name}; `rosv ps -a` lists them");
        }
        Ok(record)
    }

    /// Every record, by name.
    pub fn all() -> Result<Vec<Record>> {
        let directory = runtime_directory();
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error).with_context(|| format!("cannot list {}", directory.display())),
        };
        let mut records: Vec<Record> = entries
            .flatten()
            .filter(|entry| entry.path().is_dir())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                Some(Record { name, directory: entry.path() })
            })
            .collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// The log of the VM's output.
    pub fn log(&self) -> PathBuf {
        self.file("log")
    }

    /// The command it runs, as given to `rosv run`.
    pub fn command(&self) -> String {
        std::fs::read_to_string(self.file("command")).unwrap_or_default().trim().to_string()
    }

    /// When it started.
    pub fn started(&self) -> Option<SystemTime> {
        self.file("command").metadata().and_then(|metadata| metadata.modified()).ok()
    }

    fn process(&self) -> Option<(u32, String)> {
        let text = std::fs::read_to_string(self.file("process")).ok()?;
        let (pid, start) = text.trim().split_once(' ')?;
        Some((pid.parse().ok()?, start.to_string()))
    }

    /// Whether its rosv still runs, or how it ended.
    pub fn state(&self) -> State {
        if let Ok(status) = std::fs::read_to_string(self.file("exit-status")) {
            return State::Exited(status.trim().parse().ok());
        }
        match self.process() {
            Some((pid, start)) if process_start(pid).as_deref() == Some(start.as_str()) => State::Running,
            _ => State::Exited(None),
        }
    }

    /// Records the exit status (called by the supervising rosv itself).
    pub fn record_exit(directory: &Path, status: u8) {
        let _ = std::fs::write(directory.join("exit-status"), format!("{status}\n"));
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), which
/// tells it from a later process given the same id.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the
    // last ')'.
    let fields = &stat[stat.rfind(')')? + 1..];
    fields.split_whitespace().nth(19).map(str::to_string)
}

/// A name for a VM started without `--name`: the program's name and a
/// number, the first free one.
fn default_name(program: &str) -> String {
    let base: String = program
        .rsplit('/')
        .next()
        .unwrap_or("vm")
        .chars()
        .map(
            |character| {
                if character.is_ascii_alphanumeric() || "._-".contains(character) { character } else { '-' }
            },
        )
        .collect();
    let base = if base.starts_with(|character: char| character.is_ascii_alphanumeric()) {
        base
    } else {
        format!("vm{base}")
    };
    let directory = runtime_directory();
    (1..).map(|number| format!("{base}-{number}")).find(|name| !directory.join(name).exists()).unwrap_or(base)
}

/// `rosv run -d`: starts `rosv run` with `arguments` (the original ones
/// without `-d`) in the background under `name` (or a name made from
/// `program`); returns the name.
pub fn start(arguments: Vec<std::ffi::OsString>, name: Option<&str>, program: &str) -> Result<String> {
    let name = name.map_or_else(|| default_name(program), str::to_string);
    let directory = runtime_directory().join(&name);
    std::fs::create_dir_all(runtime_directory())
        .with_context(|| format!("cannot create {}", runtime_directory().display()))?;
    let record = Record { name: name.clone(), directory: directory.clone() };
    if directory.exists() {
        if record.state() == State::Running {
            bail!("a VM called {name} is running; stop it with `rosv stop {name}` or choose another --name");
        }
        std::fs::remove_dir_all(&directory)
            .with_context(|| format!("cannot replace {}", directory.display()))?;
    }
    std::fs::create_dir(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let words: Vec<String> = arguments.iter().map(|word| word.to_string_lossy().into_owned()).collect();
    std::fs::write(record.file("command"), format!("{}\n", words.join(" ")))
        .with_context(|| format!("cannot write {}", record.file("command").display()))?;
    let log =
        File::create(record.log()).with_context(|| format!("cannot create {}", record.log().display()))?;
    let rosv = std::env::current_exe().context("cannot find rosv's own executable")?;
    let mut command = Command::new(rosv);
    command
        .args(&arguments)
        .env(RECORD_VARIABLE, &directory)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the log file")?)
        .stderr(log)
        // Away from the terminal's signals: only `rosv stop` ends it.
        .process_group(0);
    let child = command.spawn().context("cannot start rosv in the background")?;
    let start = process_start(child.id()).unwrap_or_default();
    std::fs::write(record.file("process"), format!("{} {start}\n", child.id()))
        .with_context(|| format!("cannot write {}", record.file("process").display()))?;
    Ok(name)
}

/// `rosv ps`: lists the VMs (only the running ones unless `all`).
pub fn list(all: bool, out: &mut impl Write) -> Result<()> {
    writeln!(out, "{:<24} {:<14} {:<10} COMMAND", "NAME", "STATUS", "STARTED")?;
    for record in Record::all()? {
        let state = record.state();
        if !all && state != State::Running {
            continue;
        }
        let status = match state {
            State::Running => "running".to_string(),
            State::Exited(Some(status)) => format!("exited ({status})"),
            State::Exited(None) => "exited (?)".to_string(),
        };
        let started = record
            .started()
            .and_then(|started| SystemTime::now().duration_since(started).ok())
            .map_or_else(|| "?".to_string(), |age| format!("{} ago", short_duration(age)));
        writeln!(out, "{:<24} {:<14} {:<10} {}", record.name, status, started, record.command())?;
    }
    Ok(())
}

fn short_duration(age: Duration) -> String {
    match age.as_secs() {
        seconds @ 0..120 => format!("{seconds}s"),
        seconds @ 120..7200 => format!("{}m", seconds / 60),
        seconds @ 7200..172_800 => format!("{}h", seconds / 3600),
        seconds => format!("{}d", seconds / 86_400),
    }
}

/// `rosv logs`: copies the VM's log to `out`; with `follow`, keeps copying
/// what comes until the VM ends.
pub fn logs(name: &str, follow: bool, out: &mut impl Write) -> Result<()> {
    let record = Record::find(name)?;
    let mut log =
        File::open(record.log()).with_context(|| format!("cannot read {}", record.log().display()))?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // Whether the VM ran before this read: then what it wrote last
        // is in the log by the time the read finds its end.
        let was_running = follow && record.state() == State::Running;
        let length =
            log.read(&mut buffer).with_context(|| format!("cannot read {}", record.log().display()))?;
        if length > 0 {
            out.write_all(&buffer[..length])?;
            out.flush()?;
            continue;
        }
        if !was_running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `rosv stop`: ends the VM as SIGTERM to a foreground `rosv run` would,
/// and waits for it; if the application outlasts [`STOP_PATIENCE`], its
/// rosv gets the SIGTERMs that make it stop the VM at once, and SIGKILL
/// if even that does not end it.
pub fn stop(name: &str) -> Result<State> {
    let record = Record::find(name)?;
    let Some((pid, _)) = record.process().filter(|_| record.state() == State::Running) else {
        return Ok(record.state());
    };
    let process = rustix::process::Pid::from_raw(pid as i32).context("a process id of 0 in the record")?;
    let signal = |signal| rustix::process::kill_process(process, signal);
    signal(rustix::process::Signal::TERM).with_context(|| format!("cannot signal process {pid}"))?;
    let mut deadline = Instant::now() + STOP_PATIENCE;
    let mut has_quit = false;
    while record.state() == State::Running {
        if Instant::now() > deadline {
            if has_quit {
                let _ = signal(rustix::process::Signal::KILL);
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            for _ in 0..crate::vm::ESCAPE_COUNT {
                let _ = signal(rustix::process::Signal::TERM);
                std::thread::sleep(ESCAPE_PAUSE);
            }
            has_quit = true;
            deadline = Instant::now() + QUIT_PATIENCE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(record.state())
}

/// `rosv rm`: forgets a VM that has ended.
pub fn remove(name: &str) -> Result<()> {
    let record = Record::find(name)?;
    if record.state() == State::Running {
        bail!("{name} is running; stop it first with `rosv stop {name}`");
    }
    std::fs::remove_dir_all(&record.directory)
        .with_context(|| format!("cannot remove {}", record.directory.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_dockers() {
        assert_eq!(parse_name("web-1.test_a"), Ok("web-1.test_a".into()));
        for bad in ["", "-x", "a/b", "a b", "..", &"x".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_process_is_known_by_its_id_and_start() {
        let start = process_start(std::process::id()).expect("our own start time");
        assert!(start.chars().all(|character| character.is_ascii_digit()), "{start}");
        assert_eq!(process_start(u32::MAX), None);
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(short_duration(Duration::from_secs(5)), "5s");
        assert_eq!(short_duration(Duration::from_secs(600)), "10m");
        assert_eq!(short_duration(Duration::from_secs(7300)), "2h");
        assert_eq!(short_duration(Duration::from_secs(200_000)), "2d");
    }
}
