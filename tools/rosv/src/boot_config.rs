//! The application's commands and environment, handed to the kernel as a
//! boot configuration (`rosv_abi::boot_config`) loaded as the initrd.
//!
//! The kernel command line keeps only kernel options: hypervisors and the
//! kernel cut it at a few KiB, while a program may receive up to Linux's
//! `execve` limits (2 MiB in all, 128 KiB a string), which are checked here,
//! before boot. Every hypervisor loads the file as its initrd: QEMU's
//! `-initrd`, Firecracker's `initrd_path`, the built-in monitor's
//! `BootSpec::initrd`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rosv_abi::boot_config::{BootConfig, KERNEL_COMMAND_LINE_MAX, check_exec_limits};
use rosv_cmdline::{CommandLine, option_with_value, tokenize};

/// Room left on the kernel command line for the tokens hypervisors append
/// (`virtio_mmio.device=` per device, `pci=off`, `acpi=off`).
const HYPERVISOR_TOKENS_ROOM: usize = 512;

/// A boot configuration written to a temporary file, removed when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct BootConfigFile(Arc<tempfile::TempPath>);

impl BootConfigFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Image kernel options split: `--env=` entries, and the other options
/// written back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SplitOptions {
    /// The environment entries (`NAME=value`) the options set.
    pub environment: Vec<String>,
    /// The remaining options, in the kernel's command-line syntax.
    pub options: String,
}

/// Takes the `--env=` options out of `options` (an image's kernel options),
/// so that the environment travels with the commands.
pub fn split_options(options: &str) -> Result<SplitOptions> {
    let tokens = tokenize(options).map_err(|error| anyhow::anyhow!("the image's kernel options: {error}"))?;
    let mut split = SplitOptions::default();
    let mut kept = Vec::new();
    for token in tokens {
        if token.is_option()
            && let Some(entry) = token.text.strip_prefix("--env=")
        {
            split.environment.push(entry.to_string());
        } else if token.is_option()
            && let Some((name, value)) = token.text[2..].split_once('=')
        {
            kept.push(option_with_value(name, value));
        } else if token.is_option() {
            kept.push(token.text);
        } else {
            bail!("the image's kernel options hold \"{}\", which is not an option", token.text);
        }
    }
    split.options = kept.join(" ");
    Ok(split)
}

/// The commands of an image's command text (the kernel's command-line
/// syntax, as `rosv build` writes it).
pub fn parse_commands(text: &str) -> Result<Vec<Vec<String>>> {
    let line = CommandLine::parse(text).map_err(|error| anyhow::anyhow!("the image's command: {error}"))?;
    if line.commands.iter().any(|command| command.is_background) {
        bail!("the image's command runs something in the background (&), which the kernel does not support");
    }
    Ok(line.commands.into_iter().map(|command| command.argv).collect())
}

/// Checks `commands` (each with `environment`) against Linux's limits and
/// writes them as a boot configuration.
pub fn write(environment: &[String], commands: &[Vec<String>]) -> Result<BootConfigFile> {
    for argv in commands {
        check_exec_limits(argv.iter().map(String::as_str), environment.iter().map(String::as_str)).map_err(
            |error| anyhow::anyhow!("the application's arguments and environment are too large: {error}"),
        )?;
    }
    let config = BootConfig {
        environment: environment.iter().map(String::as_str).collect(),
        commands: commands.iter().map(|argv| argv.iter().map(String::as_str).collect()).collect(),
    };
    let mut file = tempfile::Builder::new()
        .prefix("rosv-boot-config")
        .tempfile()
        .context("cannot create the boot configuration file")?;
    std::io::Write::write_all(&mut file, &config.encode())
        .context("cannot write the boot configuration file")?;
    Ok(BootConfigFile(Arc::new(file.into_temp_path())))
}

/// Checks that the kernel command line fits the kernel's buffer, with room
/// for what hypervisors append.
pub fn check_command_line(command_line: &str) -> Result<()> {
    let limit = KERNEL_COMMAND_LINE_MAX - HYPERVISOR_TOKENS_ROOM;
    if command_line.len() > limit {
        bail!(
            "the kernel command line takes {} bytes; the kernel accepts {limit} from rosv (its {} bytes less room \
             for the hypervisor's own): shorten --kernel-args or the image's kernel options",
            command_line.len(),
            KERNEL_COMMAND_LINE_MAX
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosv_cmdline::quote as quoted;

    #[test]
    fn environment_options_move_to_the_configuration() {
        let split = split_options("--env=A=1 --env=\"B=two words\" --verbose --cwd=\"/a b\"").unwrap();
        assert_eq!(split.environment, ["A=1", "B=two words"]);
        let line = CommandLine::parse(&format!("{} /hello", split.options)).unwrap();
        assert!(line.options.verbose);
        assert_eq!(line.options.cwd.as_deref(), Some("/a b"));
        assert!(line.options.environment.is_empty());
        assert!(split_options("--verbose stray").is_err());
    }

    #[test]
    fn reads_an_image_command() {
        let text = format!("/hello {} {}", quoted("two words"), quoted(""));
        assert_eq!(
            parse_commands(&text).unwrap(),
            [vec!["/hello".to_string(), "two words".into(), "".into()]]
        );
        assert!(parse_commands("/server &").is_err());
    }

    #[test]
    fn writes_a_configuration_the_kernel_reads() {
        let environment = vec!["HOME=/".to_string()];
        let commands = vec![vec!["/hello".to_string(), "x".repeat(100_000)]];
        let file = write(&environment, &commands).unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        let config = BootConfig::parse(&bytes).unwrap();
        assert_eq!(config.environment, ["HOME=/"]);
        assert_eq!(config.commands[0][1].len(), 100_000);
    }

    #[test]
    fn refuses_more_than_linux_allows_before_boot() {
        let environment: Vec<String> =
            (0..30).map(|index| format!("V{index}={}", "v".repeat(100_000))).collect();
        let error = write(&environment, &[vec!["/hello".to_string()]]).unwrap_err().to_string();
        assert!(error.contains("too large") && error.contains("2097152"), "{error}");
        let error = write(&[], &[vec!["/hello".to_string(), "x".repeat(200_000)]]).unwrap_err().to_string();
        assert!(error.contains("argument 1") && error.contains("MAX_ARG_STRLEN"), "{error}");
    }

    #[test]
    fn a_long_command_line_is_refused() {
        assert!(check_command_line("--verbose").is_ok());
        assert!(check_command_line(&"--verbose ".repeat(500)).is_err());
    }
}
