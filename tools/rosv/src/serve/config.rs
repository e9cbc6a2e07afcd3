//! The function host's configuration file: which functions it serves.
//!
//! A TOML file with one `[[function]]` table per function:
//!
//! ```toml
//! [[function]]
//! name = "hello"               # the first path segment: /hello/...
//! image = "images/hello"       # written by `rosv build`; relative to this file
//! port = 8080                  # where the application's HTTP server listens
//! # or, for a function written for AWS Lambda (no port):
//! # runtime = "images/python"  # an image whose command runs a Lambda runtime
//! # handler = "app.handler"    # given to the runtime as _HANDLER
//! memory = "128M"              # optional; MiB as a number, or with K, M, G
//! cpus = 1                     # optional
//! environment = { GREETING = "hi" }   # optional
//! command = ["/hello", "--flag"]       # optional; replaces the image's command
//! idle_timeout = 60            # optional; seconds without requests before the VM stops
//! boot_timeout = 60            # optional; seconds from boot to the first answer
//! request_timeout = 60         # optional; seconds to wait for an answer
//! max_instances = 1            # optional; VMs of this function at once
//! min_instances = 0            # optional; VMs kept booted (0: scale to zero)
//! spare_instances = 0          # optional; idle VMs booted ahead of demand
//! spare_threshold = 0.5        # optional; busy fraction that boots spares
//! max_concurrency = 1          # optional; requests in flight to one VM
//! max_queued = 256             # optional; requests waiting for a VM (503 beyond)
//! snapshot = false             # optional (Lambda); start VMs from a snapshot
//! ```
//!
//! [`load`] checks everything it can before a VM boots, and reports each
//! problem as one line naming the file and the function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::image::Image;

/// Seconds a VM may stay idle by default.
const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Seconds from starting a VM to its first answer, by default: generous,
/// because without hardware virtualization QEMU emulates the guest.
const DEFAULT_BOOT_TIMEOUT_SECONDS: u64 = 60;
/// Seconds a request may wait for its answer, by default.
const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 60;
/// Guest memory by default, in MiB.
const DEFAULT_MEMORY_MIB: u64 = 128;
/// The most instances of one function the file may ask for.
const MAX_INSTANCES_LIMIT: u32 = 64;
/// The most requests one VM may be sent at once.
const MAX_CONCURRENCY_LIMIT: u32 = 1024;
/// Requests that may wait for a VM of one function, by default.
const DEFAULT_MAX_QUEUED: u32 = 256;
/// The busy fraction of a function's VMs that boots spares, by default.
const DEFAULT_SPARE_THRESHOLD: f64 = 0.5;

/// How a function is reached inside its VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An HTTP server listening on `port`; requests are proxied to it.
    Http {
        /// The guest port its HTTP server listens on.
        port: u16,
    },
    /// A function written for AWS Lambda: a runtime in the VM asks the
    /// host for invocations through the Lambda Runtime API.
    Lambda {
        /// The handler, as the runtime reads it from `_HANDLER`.
        handler: String,
    },
}

/// One function, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Its name, the first segment of its requests' paths.
    pub name: String,
    /// The image directory (for a Lambda function, its runtime's).
    pub image_directory: PathBuf,
    /// HTTP server or Lambda function.
    pub kind: Kind,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Environment variables added to the image's.
    pub environment: Vec<(String, String)>,
    /// The command replacing the image's, if any.
    pub command: Option<Vec<String>>,
    /// How long an instance may go without requests before it is stopped
    /// (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// How long from starting a VM to its first answer.
    pub boot_timeout: Duration,
    /// How long a request may wait for its answer from a running VM.
    pub request_timeout: Duration,
    /// The most VMs of this function at once.
    pub max_instances: u32,
    /// VMs kept booted even without requests.
    pub min_instances: u32,
    /// Idle VMs booted ahead of demand once the busy fraction reaches
    /// `spare_threshold`.
    pub spare_instances: u32,
    /// The fraction of a function's VMs serving requests (0 to 1) at which
    /// spares boot.
    pub spare_threshold: f64,
    /// Requests in flight to one VM at most.
    pub max_concurrency: u32,
    /// Requests that may wait for a VM at once.
    pub max_queued: u32,
    /// Whether VMs start from a snapshot of the first one, taken when its
    /// runtime is ready (Lambda functions).
    pub snapshot: bool,
}

impl Function {
    /// A function of `kind` running `image_directory` with every option at
    /// its default.
    pub fn new(name: &str, image_directory: PathBuf, kind: Kind) -> Function {
        Function {
            name: name.to_string(),
            image_directory,
            kind,
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: 1,
            environment: Vec::new(),
            command: None,
            idle_timeout: Some(Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECONDS)),
            boot_timeout: Duration::from_secs(DEFAULT_BOOT_TIMEOUT_SECONDS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            max_instances: 1,
            min_instances: 0,
            spare_instances: 0,
            spare_threshold: DEFAULT_SPARE_THRESHOLD,
            max_concurrency: 1,
            max_queued: DEFAULT_MAX_QUEUED,
            snapshot: false,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The functions, in the file's order.
    pub functions: Vec<Function>,
}

/// A function table as written, before checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: String,
    #[serde(default)]
    image: Option<PathBuf>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    runtime: Option<PathBuf>,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    memory: Option<Memory>,
    #[serde(default)]
    cpus: Option<i64>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    idle_timeout: Option<i64>,
    #[serde(default)]
    boot_timeout: Option<i64>,
    #[serde(default)]
    request_timeout: Option<i64>,
    #[serde(default)]
    max_instances: Option<i64>,
    #[serde(default)]
    min_instances: Option<i64>,
    #[serde(default)]
    spare_instances: Option<i64>,
    #[serde(default)]
    spare_threshold: Option<f64>,
    #[serde(default)]
    max_concurrency: Option<i64>,
    #[serde(default)]
    max_queued: Option<i64>,
    #[serde(default)]
    snapshot: bool,
}

/// A memory size: a number of MiB or a string such as `"256M"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Memory {
    Mib(i64),
    Text(String),
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    function: Vec<toml::Spanned<toml::Table>>,
}

/// Reads and checks the configuration at `path`. The error lists every
/// problem, one line each.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{}: cannot read it: {error}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let config = parse(&text, path, base)?;
    let mut problems = Vec::new();
    for function in &config.functions {
        if let Err(problem) = check_image(function) {
            problems.push(format!("{}: function \"{}\": {problem}", path.display(), function.name));
        }
    }
    if problems.is_empty() { Ok(config) } else { Err(problems.join("\n")) }
}

/// Parses `text` (the file at `path`), resolving relative image paths
/// against `base`. Checks everything but the images themselves.
pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, String> {
    let file = path.display();
    let raw: RawConfig = toml::from_str(text).map_err(|error| {
        let place = error.span().map(|span| format!(":{}", line_of(text, span.start))).unwrap_or_default();
        format!("{file}{place}: {}", one_line(error.message()))
    })?;
    if raw.function.is_empty() {
        return Err(format!(
            "{file}: no functions; add a [[function]] table with a name, an image and a port"
        ));
    }
    let mut problems = Vec::new();
    let mut functions: Vec<Function> = Vec::new();
    for (index, table) in raw.function.into_iter().enumerate() {
        let line = line_of(text, table.span().start);
        let table = table.into_inner();
        let label = match table.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("function \"{name}\""),
            None => format!("function {}", index + 1),
        };
        match check_function(table, base) {
            Ok(function) => {
                if functions.iter().any(|earlier| earlier.name == function.name) {
                    problems.push(format!(
                        "{file}:{line}: {label} is defined twice; give each function its own name"
                    ));
                } else {
                    functions.push(function);
                }
            }
            Err(problem) => problems.push(format!("{file}:{line}: {label}: {problem}")),
        }
    }
    if problems.is_empty() { Ok(Config { functions }) } else { Err(problems.join("\n")) }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&byte| byte == b'\n').count() + 1
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check_function(table: toml::Table, base: &Path) -> Result<Function, String> {
    let raw: RawFunction = table.try_into().map_err(|error: toml::de::Error| one_line(error.message()))?;
    if !is_function_name(&raw.name) {
        return Err(format!(
            "the name \"{}\" must be 1 to 64 letters, digits, '-' or '_', not starting with '_'",
            raw.name
        ));
    }
    let (image, kind) = match (raw.image, raw.port, raw.runtime, raw.handler) {
        (Some(image), Some(port), None, None) => {
            let port = u16::try_from(port)
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| format!("port {port} is not a number from 1 to 65535"))?;
            (image, Kind::Http { port })
        }
        (None, None, Some(runtime), Some(handler)) => {
            if handler.is_empty() || handler.contains(['\0', '=']) {
                return Err(format!("handler \"{handler}\" is not a handler name such as \"app.handler\""));
            }
            (runtime, Kind::Lambda { handler })
        }
        (_, _, None, None) => {
            return Err("missing field `image` or `port`; an HTTP function needs both".into());
        }
        (None, None, _, _) => {
            return Err("missing field `runtime` or `handler`; a Lambda function needs both".into());
        }
        _ => {
            return Err(
                "give either image and port (an HTTP function) or runtime and handler (a Lambda function)"
                    .into(),
            );
        }
    };
    let memory_mib = match raw.memory {
        None => DEFAULT_MEMORY_MIB,
        Some(Memory::Mib(mib)) => {
            crate::cli::parse_memory_mib(&mib.to_string()).map_err(|error| format!("memory: {error}"))?
        }
        Some(Memory::Text(text)) => {
            crate::cli::parse_memory_mib(&text).map_err(|error| format!("memory: {error}"))?
        }
    };
    let cpus = match raw.cpus {
        None => 1,
        Some(cpus) => u32::try_from(cpus)
            .ok()
            .filter(|cpus| (1..=64).contains(cpus))
            .ok_or_else(|| format!("cpus {cpus} is not a number from 1 to 64"))?,
    };
    for name in raw.environment.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(format!("environment: \"{name}\" is not a variable name"));
        }
    }
    if raw.command.as_ref().is_some_and(|command| command.is_empty()) {
        return Err("command is empty; leave it out to run the image's own command".into());
    }
    let idle_timeout = match raw.idle_timeout {
        None => Some(Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECONDS)),
        Some(0) => None,
        Some(seconds) => Some(seconds_value("idle_timeout", seconds)?),
    };
    let boot_timeout = positive_seconds("boot_timeout", raw.boot_timeout, DEFAULT_BOOT_TIMEOUT_SECONDS)?;
    let request_timeout =
        positive_seconds("request_timeout", raw.request_timeout, DEFAULT_REQUEST_TIMEOUT_SECONDS)?;
    let max_instances = count("max_instances", raw.max_instances, 1, 1..=MAX_INSTANCES_LIMIT)?;
    let min_instances = count("min_instances", raw.min_instances, 0, 0..=max_instances)?;
    let spare_instances = count("spare_instances", raw.spare_instances, 0, 0..=max_instances)?;
    let max_concurrency = count("max_concurrency", raw.max_concurrency, 1, 1..=MAX_CONCURRENCY_LIMIT)?;
    let max_queued = count("max_queued", raw.max_queued, DEFAULT_MAX_QUEUED, 0..=1_000_000)?;
    let spare_threshold = raw.spare_threshold.unwrap_or(DEFAULT_SPARE_THRESHOLD);
    if !(0.0..=1.0).contains(&spare_threshold) {
        return Err(format!("spare_threshold {spare_threshold} is not a fraction from 0 to 1"));
    }
    if raw.snapshot && !matches!(kind, Kind::Lambda { .. }) {
        return Err("snapshot is for Lambda functions, whose runtime says when it is ready".into());
    }
    if matches!(kind, Kind::Lambda { .. }) && max_concurrency != 1 {
        return Err(
            "max_concurrency must be 1 for a Lambda function: its runtime takes one invocation at a time"
                .into(),
        );
    }
    Ok(Function {
        name: raw.name,
        image_directory: base.join(image),
        kind,
        memory_mib,
        cpus,
        environment: raw.environment.into_iter().collect(),
        command: raw.command,
        idle_timeout,
        boot_timeout,
        request_timeout,
        max_instances,
        min_instances,
        spare_instances,
        spare_threshold,
        max_concurrency,
        max_queued,
        snapshot: raw.snapshot,
    })
}

/// A count `key` within `range`, `default` if it is not given.
fn count(
    key: &str,
    value: Option<i64>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, String> {
    match value {
        None => Ok(default),
        Some(count) => u32::try_from(count).ok().filter(|count| range.contains(count)).ok_or_else(|| {
            format!("{key} {count} is not a number from {} to {}", range.start(), range.end())
        }),
    }
}

fn positive_seconds(key: &str, value: Option<i64>, default: u64) -> Result<Duration, String> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(seconds) => seconds_value(key, seconds),
    }
}

fn seconds_value(key: &str, seconds: i64) -> Result<Duration, String> {
    u64::try_from(seconds)
        .ok()
        .filter(|&seconds| (1..=86_400).contains(&seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{key} {seconds} is not a number of seconds from 1 to 86400"))
}

/// Whether `name` can name a function: it becomes a path segment, and
/// names starting with `_` are the host's own (`/_rosv/stats`).
pub fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('_')
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Checks that the function's image can be booted.
fn check_image(function: &Function) -> Result<(), String> {
    let directory = &function.image_directory;
    if !directory.is_dir() {
        return Err(format!("image {}: no such directory; write one with `rosv build`", directory.display()));
    }
    let image = Image::open(directory).map_err(|error| format!("image {error}"))?;
    if image.command.is_empty() && function.command.is_none() {
        return Err(format!(
            "image {} has no default command; add command = [\"/program\", ...]",
            directory.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Config, String> {
        parse(text, Path::new("functions.toml"), Path::new("/base"))
    }

    #[test]
    fn a_full_function_is_read_with_its_defaults() {
        let config = parse_text(
            "[[function]]\nname = \"hello\"\nimage = \"images/hello\"\nport = 8080\n\n\
             [[function]]\nname = \"big-one_2\"\nimage = \"/abs\"\nport = 80\nmemory = \"1G\"\ncpus = 2\n\
             environment = { A = \"1\", B = \"two words\" }\ncommand = [\"/bin/app\", \"x\"]\n\
             idle_timeout = 0\nboot_timeout = 5\nrequest_timeout = 7\nmax_instances = 3\n",
        )
        .unwrap();
        let hello = &config.functions[0];
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.image_directory, Path::new("/base/images/hello"));
        assert_eq!(hello.kind, Kind::Http { port: 8080 });
        assert_eq!(hello.memory_mib, 128);
        assert_eq!(hello.cpus, 1);
        assert_eq!(hello.idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(hello.max_instances, 1);
        assert_eq!(hello.command, None);
        let big = &config.functions[1];
        assert_eq!(big.image_directory, Path::new("/abs"));
        assert_eq!(big.memory_mib, 1024);
        assert_eq!(big.cpus, 2);
        assert_eq!(big.environment, [("A".into(), "1".into()), ("B".into(), "two words".into())]);
        assert_eq!(big.command, Some(vec!["/bin/app".to_string(), "x".to_string()]));
        assert_eq!(big.idle_timeout, None);
        assert_eq!(big.boot_timeout, Duration::from_secs(5));
        assert_eq!(big.request_timeout, Duration::from_secs(7));
        assert_eq!(big.max_instances, 3);
        assert_eq!((hello.min_instances, hello.spare_instances, hello.max_concurrency), (0, 0, 1));
        let numeric =
            parse_text("[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nmemory = 256\n").unwrap();
        assert_eq!(numeric.functions[0].memory_mib, 256);
    }

    #[test]
    fn each_problem_is_one_line_naming_the_file_and_the_function() {
        let cases = [
            ("", "functions.toml: no functions"),
            ("listen = 1\n", "functions.toml:1: unknown field `listen`"),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nmemry = 3\n",
                "functions.toml:1: function \"a\": unknown field `memry`",
            ),
            ("[[function]]\nname = \"a\"\nport = 1\n", "function \"a\": missing field `image`"),
            ("[[function]]\nimage = \"i\"\nport = 1\n", "functions.toml:1: function 1: missing field `name`"),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 0\n",
                "function \"a\": port 0 is not a number from 1 to 65535",
            ),
            ("[[function]]\nname = \"a\"\nimage = \"i\"\nport = 70000\n", "port 70000 is not a number"),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = \"80\"\n",
                "function \"a\": invalid type: string \"80\", expected i64",
            ),
            ("[[function]]\nname = \"a/b\"\nimage = \"i\"\nport = 1\n", "the name \"a/b\" must be"),
            ("[[function]]\nname = \"_rosv\"\nimage = \"i\"\nport = 1\n", "not starting with '_'"),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nmemory = \"lots\"\n",
                "memory: \"lots\" is not a memory size",
            ),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\ncpus = 0\n",
                "cpus 0 is not a number from 1 to 64",
            ),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nmax_instances = 0\n",
                "max_instances 0 is not",
            ),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nboot_timeout = -1\n",
                "boot_timeout -1 is not",
            ),
            ("[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\ncommand = []\n", "command is empty"),
            (
                "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\nenvironment = { \"\" = \"x\" }\n",
                "environment: \"\" is not",
            ),
            ("[[function]\n", "functions.toml:1: "),
        ];
        for (text, expected) in cases {
            let error = parse_text(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }

    #[test]
    fn scaling_and_lambda_functions_are_read() {
        let config = parse_text(
            "[[function]]\nname = \"burst\"\nimage = \"i\"\nport = 1\nmax_instances = 8\nmin_instances = 1\n\
             spare_instances = 2\nspare_threshold = 0.25\nmax_concurrency = 4\nmax_queued = 10\n\
             [[function]]\nname = \"py\"\nruntime = \"python\"\nhandler = \"app.handler\"\n",
        )
        .unwrap();
        let burst = &config.functions[0];
        assert_eq!(
            (burst.max_instances, burst.min_instances, burst.spare_instances, burst.max_concurrency),
            (8, 1, 2, 4)
        );
        assert_eq!((burst.spare_threshold, burst.max_queued), (0.25, 10));
        let lambda = &config.functions[1];
        assert_eq!(lambda.kind, Kind::Lambda { handler: "app.handler".into() });
        assert_eq!(lambda.image_directory, Path::new("/base/python"));
        let cases = [
            (
                "image = \"i\"\nport = 1\nmax_instances = 2\nmin_instances = 3\n",
                "min_instances 3 is not a number from 0 to 2",
            ),
            ("image = \"i\"\nport = 1\nspare_threshold = 1.5\n", "spare_threshold 1.5 is not a fraction"),
            ("image = \"i\"\nport = 1\nmax_concurrency = 0\n", "max_concurrency 0 is not"),
            ("runtime = \"r\"\n", "missing field `runtime` or `handler`"),
            ("image = \"i\"\nhandler = \"a.b\"\n", "give either image and port"),
            ("runtime = \"r\"\nhandler = \"a.b\"\nmax_concurrency = 2\n", "max_concurrency must be 1"),
            ("runtime = \"r\"\nhandler = \"\"\n", "handler \"\" is not"),
            ("image = \"i\"\nport = 1\nsnapshot = true\n", "snapshot is for Lambda functions"),
        ];
        for (text, expected) in cases {
            let error = parse_text(&format!("[[function]]\nname = \"f\"\n{text}")).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn duplicate_names_are_refused_and_every_problem_is_listed() {
        let error = parse_text(
            "[[function]]\nname = \"a\"\nimage = \"i\"\nport = 1\n\
             [[function]]\nname = \"a\"\nimage = \"j\"\nport = 2\n\
             [[function]]\nname = \"b\"\nimage = \"k\"\nport = 0\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = error.lines().collect();
        assert_eq!(lines.len(), 2, "{error}");
        assert!(lines[0].starts_with("functions.toml:5: function \"a\" is defined twice"), "{error}");
        assert!(lines[1].starts_with("functions.toml:9: function \"b\": port 0"), "{error}");
    }

    #[test]
    fn missing_images_are_named() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("functions.toml");
        std::fs::write(&file, "[[function]]\nname = \"gone\"\nimage = \"nowhere\"\nport = 8080\n").unwrap();
        let error = load(&file).unwrap_err();
        assert!(error.contains("functions.toml: function \"gone\": image "), "{error}");
        assert!(error.contains("nowhere: no such directory; write one with `rosv build`"), "{error}");
        std::fs::create_dir(directory.path().join("nowhere")).unwrap();
        let error = load(&file).unwrap_err();
        assert!(error.contains("is not a rosv image"), "{error}");
        assert!(load(&directory.path().join("absent.toml")).unwrap_err().contains("cannot read it"));
    }

    #[test]
    fn the_example_in_the_help_is_a_valid_configuration() {
        let example = crate::serve::CONFIGURATION_EXAMPLE;
        let (_, table) = example.split_once("\n\n").unwrap();
        let config = parse_text(table).unwrap();
        assert_eq!(config.functions[0].name, "hello");
        assert_eq!(config.functions[0].command.as_deref().map(<[String]>::len), Some(3));
    }

    #[test]
    fn function_names_are_path_segments() {
        for good in ["a", "hello-world", "fn_2", "A9"] {
            assert!(is_function_name(good), "{good}");
        }
        for bad in ["", "_rosv", "a b", "a/b", "ü", "a.b", &"x".repeat(65)] {
            assert!(!is_function_name(bad), "{bad}");
        }
    }
}
