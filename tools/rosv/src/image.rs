//! Image directories: the kernel, the root filesystem and the command line.
//!
//! An image is a directory holding `kernel.elf`, `root.rofs` (a ROFS image
//! the kernel mounts as `/`), `kernel-options` (kernel options such as
//! `--env=...`) and `command` (the default command), the last two in the
//! kernel's command-line syntax. Its root holds one executable
//! ([`ImageSpec::from_executable`]) or the tree a manifest or host directory
//! gives ([`ImageSpec::from_tree`], see `image_tree`).

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rosv_cmdline::{option_with_value, quote};
use rosv_elf::{ElfError, LoadPlan};
use rosv_rofs::writer::{Contents, Directory, Node, write_image};
use rosv_rofs::{BlockSource, FileType, Rofs, SourceError};

use crate::executable::{self, Chain};
use crate::packages::{self, PackageOptions, Report};
use crate::{image_tree, kernel, libraries, oci, system_files};

const KERNEL_FILE: &str = "kernel.elf";
const ROOT_FILE: &str = "root.rofs";
const OPTIONS_FILE: &str = "kernel-options";
const COMMAND_FILE: &str = "command";

/// Why a host executable cannot go into an image.
#[derive(Debug, thiserror::Error)]
pub enum ExecutableError {
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Unreadable { path: PathBuf, cause: std::io::Error },
    /// The file is not an ELF file at all.
    #[error("{path} is not an ELF executable; rosv runs Linux x86-64 programs")]
    NotElf { path: PathBuf },
    /// The ELF file is malformed or not an x86-64 executable.
    #[error("{path} cannot be run: {reason}")]
    Invalid { path: PathBuf, reason: ElfError },
}

/// Checks that `path` is an x86-64 Linux executable; returns the
/// interpreter it names if it is dynamically linked.
pub fn check_executable(path: &Path) -> Result<Option<String>, ExecutableError> {
    let bytes =
        std::fs::read(path).map_err(|cause| ExecutableError::Unreadable { path: path.into(), cause })?;
    let plan = LoadPlan::parse(&bytes).map_err(|reason| match reason {
        ElfError::NotElf => ExecutableError::NotElf { path: path.into() },
        reason => ExecutableError::Invalid { path: path.into(), reason },
    })?;
    Ok(plan.interpreter)
}

/// What goes into an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    root: Directory,
    command: Vec<String>,
    environment: Vec<(String, String)>,
    /// Kernel options besides the environment (`--cwd`, `--user`).
    options: Vec<String>,
    /// A directory the tree's host files are in, kept until the image is
    /// written.
    _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl ImageSpec {
    /// An image holding one executable at `/<its file name>`, run with
    /// `arguments` in `environment`. A dynamically linked executable brings
    /// its interpreter and libraries from the host.
    pub fn from_executable(
        path: &Path,
        arguments: &[String],
        environment: &[(String, String)],
    ) -> Result<Self> {
        let interpreter = check_executable(path)?;
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?;
        let guest_path = format!("/{name}");
        let mut root = Directory::default();
        root.insert(&guest_path, Node::File(Contents::HostFile(path.to_path_buf())))?;
        if interpreter.is_some() {
            libraries::complete(&mut root)?;
        }
        system_files::complete(&mut root);
        let mut command = vec![guest_path];
        command.extend_from_slice(arguments);
        Ok(ImageSpec {
            root,
            command,
            environment: environment.to_vec(),
            options: Vec::new(),
            _scratch: None,
        })
    }
}

impl ImageSpec {
    /// An image for the program at `path` and what it needs at run time,
    /// run with `arguments` in `environment`. A program from a Debian
    /// package is placed where the host has it, each link to it too, with
    /// the packaged files `packages` chooses (see `packages`), and a link
    /// `/<its name>` to it; another program is placed at `/<its name>`. A
    /// `#!` script comes with its interpreter, which the command runs, and
    /// the host programs it names (see `executable::named_programs`). The
    /// command names a packaged program as `executable::Chain::command_path`
    /// says.
    pub fn from_program(
        path: &Path,
        arguments: &[String],
        environment: &[(String, String)],
        packages: &PackageOptions,
    ) -> Result<(Self, Report)> {
        let program = executable::resolve(path)?;
        let binary = program.binary();
        check_executable(Path::new(&binary.file))?;
        let chain_paths: Vec<String> =
            program.chains().into_iter().flat_map(|chain| chain.paths().cloned()).collect();
        let is_packaged =
            packages.is_enabled && packages::owns(&program.chain.paths().cloned().collect::<Vec<_>>());
        let name = Path::new(program.chain.start())
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?;
        let short_path = format!("/{name}");
        let mut root = Directory::default();
        let guest_path = if is_packaged {
            place_chain(&mut root, &program.chain)?;
            if packages::lookup(&root, &short_path).is_none() {
                root.insert(&short_path, Node::Symlink(program.chain.start().to_string()))?;
            }
            program.chain.command_path().to_string()
        } else {
            root.insert(&short_path, Node::File(Contents::HostFile(program.chain.file.clone().into())))?;
            short_path
        };
        for chain in program.chains().into_iter().skip(1) {
            place_chain(&mut root, chain)?;
        }
        // A wrapper script runs the host's tools it names.
        let scripts = program.chains().into_iter().filter(|chain| chain.file != program.binary().file);
        for script in scripts.collect::<Vec<_>>() {
            for tool in executable::named_programs(Path::new(&script.file)) {
                if let Ok(chain) = executable::follow(Path::new(&tool))
                    && check_executable(Path::new(&chain.file)).is_ok()
                {
                    place_chain(&mut root, &chain)?;
                }
            }
        }
        libraries::complete(&mut root)?;
        let report = if is_packaged || !packages.requested.is_empty() {
            let programs = if is_packaged { chain_paths } else { Vec::new() };
            collect_packages(&mut root, &programs, program.interpreter.is_some(), packages)?
        } else if packages.is_enabled {
            Report::nothing(&format!("no Debian package holds {}", path.display()))
        } else {
            Report::nothing("collecting from packages is turned off")
        };
        system_files::complete(&mut root);
        let command = program.command(&guest_path, arguments);
        Ok((
            ImageSpec {
                root,
                command,
                environment: environment.to_vec(),
                options: Vec::new(),
                _scratch: None,
            },
            report,
        ))
    }

    /// An image of the container image at `path` (see `oci`): its layers'
    /// tree, its `Entrypoint` followed by `command` or else its `Cmd`, its
    /// `Env` followed by `environment`, its `WorkingDir` and `User`. A
    /// program named without a `/` is searched in the image's `PATH`.
    pub fn from_container(path: &Path, command: &[String], environment: &[(String, String)]) -> Result<Self> {
        let container = oci::read(path)?;
        let config = &container.config;
        let mut root = image_tree::from_directory(&container.root)?;
        system_files::complete(&mut root);
        let mut words = config.entrypoint.clone();
        words.extend(if command.is_empty() { config.command.clone() } else { command.to_vec() });
        let Some(program) = words.first_mut() else {
            anyhow::bail!(
                "{} has neither an Entrypoint nor a Cmd; give the command after --, e.g. -- /bin/sh",
                path.display()
            );
        };
        if !program.contains('/') {
            *program = oci::find_program(&container.root, program, &config.environment).with_context(|| {
                format!("the image's command {program} is in none of its PATH's directories; name it by its path")
            })?;
        }
        // The container's words are the program's own: a lone `;` or `&`
        // is not the kernel's separator.
        let words = words
            .into_iter()
            .map(|word| if word == ";" || word == "&" { format!("\\{word}") } else { word })
            .collect();
        let mut all_environment = config.environment.clone();
        all_environment.extend_from_slice(environment);
        let mut options = Vec::new();
        if let Some(directory) = &config.working_directory {
            options.push(option_with_value("cwd", directory));
        }
        if let Some((user, group)) = config.user {
            options.push(format!("--user={user}:{group}"));
        }
        Ok(ImageSpec {
            root,
            command: words,
            environment: all_environment,
            options,
            _scratch: Some(std::sync::Arc::new(container.scratch)),
        })
    }

    /// Adds the packages `packages` requests, and what they need, to the
    /// image.
    pub fn add_packages(&mut self, packages: &PackageOptions) -> Result<Report> {
        if packages.requested.is_empty() {
            return Ok(Report::nothing("no package was asked for"));
        }
        collect_packages(&mut self.root, &[], false, packages)
    }

    /// The tree that becomes the image's `/`.
    pub fn root(&self) -> &Directory {
        &self.root
    }

    /// The command the image runs: the program's path and its arguments.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// An image whose root is the tree that the manifest or host directory
    /// `source` gives, run with `command` in `environment`.
    pub fn from_tree(source: &Path, command: &[String], environment: &[(String, String)]) -> Result<Self> {
        if source.is_dir()
            && std::fs::read_dir(source)
                .with_context(|| format!("cannot read {}", source.display()))?
                .next()
                .is_none()
        {
            anyhow::bail!(
                "{} is empty: put the application's files in it (its tree becomes the image's /), \
                 or build from one executable with --exec FILE",
                source.display()
            );
        }
        let mut root = if source.is_dir() {
            image_tree::from_directory(source)?
        } else {
            image_tree::from_manifest(source)?
        };
        libraries::complete(&mut root)?;
        system_files::complete(&mut root);
        Ok(ImageSpec {
            root,
            command: command.to_vec(),
            environment: environment.to_vec(),
            options: Vec::new(),
            _scratch: None,
        })
    }
}

/// Adds the packaged files for `programs` (host paths) and the requested
/// packages, then the libraries those files load (see `packages::add`).
fn collect_packages(
    root: &mut Directory,
    programs: &[String],
    is_script: bool,
    packages: &PackageOptions,
) -> Result<Report> {
    let mut report = packages::add(root, programs, is_script, packages)?;
    let (_, missing) = libraries::complete_tolerant(root);
    report.missing.extend(missing.iter().map(ToString::to_string));
    Ok(report)
}

/// Places each link of `chain` and its file at their host paths, leaving
/// what the tree already holds.
fn place_chain(root: &mut Directory, chain: &Chain) -> Result<()> {
    for (path, target) in &chain.links {
        if packages::lookup(root, path).is_none() {
            root.insert(path, Node::Symlink(target.clone()))?;
        }
    }
    if packages::lookup(root, &chain.file).is_none() {
        root.insert(&chain.file, Node::File(Contents::HostFile(chain.file.clone().into())))?;
    }
    Ok(())
}

/// Why words cannot become the kernel's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A lone `&`: the kernel's grammar runs such a command in the
    /// background, which it does not do yet.
    #[error(
        "a lone `&` would run the command before it in the background, which rosv does not do yet; \
         write \\& to pass & itself to the program"
    )]
    Background,
    /// A lone `;` with no command before or after it.
    #[error(
        "a lone `;` separates two commands, but one of them is empty; write \\; to pass ; itself to the program"
    )]
    EmptyCommand,
}

/// Splits `words` into commands as the kernel's command-line grammar
/// does: a lone `;` ends a command (the next runs after it); a lone `&` is
/// refused ([`CommandError::Background`]); `\;` and `\&` stand for the
/// words `;` and `&` themselves.
pub fn split_commands(words: &[String]) -> Result<Vec<Vec<String>>, CommandError> {
    let mut commands = Vec::new();
    let mut current = Vec::new();
    for word in words {
        match word.as_str() {
            ";" if current.is_empty() => return Err(CommandError::EmptyCommand),
            ";" => commands.push(std::mem::take(&mut current)),
            "&" => return Err(CommandError::Background),
            "\\;" | "\\&" => current.push(word[1..].to_string()),
            _ => current.push(word.clone()),
        }
    }
    if current.is_empty() && !commands.is_empty() {
        return Err(CommandError::EmptyCommand);
    }
    if !current.is_empty() {
        commands.push(current);
    }
    Ok(commands)
}

/// Quotes `words` into the kernel's command-line syntax, one command or
/// several separated by lone `;` words (see [`split_commands`]).
pub fn command_text(words: &[String]) -> Result<String, CommandError> {
    let commands = split_commands(words)?;
    let texts: Vec<String> = commands
        .iter()
        .map(|argv| argv.iter().map(|argument| quote(argument)).collect::<Vec<_>>().join(" "))
        .collect();
    Ok(texts.join(" ; "))
}

/// The kernel options that set `environment`.
pub fn environment_options(environment: &[(String, String)]) -> String {
    environment
        .iter()
        .map(|(name, value)| option_with_value("env", &format!("{name}={value}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes the image directory `directory` (created if needed).
pub fn write(spec: &ImageSpec, directory: &Path) -> Result<()> {
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let file = |name: &str| directory.join(name);
    std::fs::write(file(KERNEL_FILE), kernel::ELF).context("cannot write the kernel")?;
    let root = File::create(file(ROOT_FILE)).context("cannot create the root filesystem")?;
    let mut sink = BufWriter::new(root);
    write_image(&spec.root, &mut sink).context("cannot write the root filesystem")?;
    drop(sink);
    let command = command_text(&spec.command)?;
    for argv in split_commands(&spec.command)? {
        check_program(&file(ROOT_FILE), &argv)?;
    }
    let mut options = vec![environment_options(&spec.environment)];
    options.extend(spec.options.iter().cloned());
    options.retain(|option| !option.is_empty());
    std::fs::write(file(OPTIONS_FILE), options.join(" ") + "\n")?;
    std::fs::write(file(COMMAND_FILE), command + "\n")?;
    Ok(())
}

/// Checks that the program of `command` (if it has an absolute path) is a
/// file in the ROFS image `root`, reading the image back as the kernel will.
fn check_program(root: &Path, command: &[String]) -> Result<()> {
    let Some(program) = command.first().filter(|program| program.starts_with('/')) else {
        return Ok(());
    };
    let file = File::open(root).with_context(|| format!("cannot read back {}", root.display()))?;
    let size = file.metadata().with_context(|| format!("cannot read back {}", root.display()))?.len();
    let rofs = Rofs::mount(ImageFile { file, size })
        .with_context(|| format!("{} is not readable", root.display()))?;
    match rofs.resolve(program).and_then(|inode| rofs.metadata(inode)) {
        Ok(metadata) if metadata.file_type == FileType::Regular => Ok(()),
        Ok(_) => anyhow::bail!("the command's program {program} is a directory in the image; name a file"),
        Err(_) => anyhow::bail!(
            "the command's program {program} is not in the image; add it to the manifest or fix the command"
        ),
    }
}

/// A ROFS image file, for the reader.
struct ImageFile {
    file: File,
    size: u64,
}

impl BlockSource for ImageFile {
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), SourceError> {
        self.file.read_exact_at(buffer, offset).map_err(|_| SourceError)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// An image directory on disk.
#[derive(Debug, Clone)]
pub struct Image {
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// The ROFS root filesystem.
    pub root: PathBuf,
    /// Kernel options, in command-line syntax.
    pub options: String,
    /// The default command, in command-line syntax.
    pub command: String,
}

impl Image {
    /// Opens the image directory at `directory`.
    pub fn open(directory: &Path) -> Result<Self> {
        let file = |name: &str| directory.join(name);
        if !file(KERNEL_FILE).is_file() || !file(ROOT_FILE).is_file() || !file(COMMAND_FILE).is_file() {
            anyhow::bail!(
                "{} is not a rosv image (it needs {KERNEL_FILE}, {ROOT_FILE} and {COMMAND_FILE}); write one with `rosv build`",
                directory.display()
            );
        }
        let read = |name: &str| -> Result<String> {
            match std::fs::read_to_string(file(name)) {
                Ok(text) => Ok(text.trim().to_string()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(error) => Err(error).with_context(|| format!("cannot read {}", file(name).display())),
            }
        };
        Ok(Image {
            kernel: file(KERNEL_FILE),
            root: file(ROOT_FILE),
            options: read(OPTIONS_FILE)?,
            command: read(COMMAND_FILE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_environment_survive_the_kernel_grammar() {
        let argv = vec!["/app".to_string(), "a b".to_string(), "panic=1".to_string(), "\"q\"".to_string()];
        let environment = vec![("GREETING".to_string(), "hello world".to_string())];
        let text = format!("{} {}", environment_options(&environment), command_text(&argv).unwrap());
        let line = rosv_cmdline::CommandLine::parse(&text).unwrap();
        assert_eq!(line.commands[0].argv, argv);
        assert_eq!(line.options.environment, environment);
    }

    fn words(text: &[&str]) -> Vec<String> {
        text.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn a_lone_semicolon_separates_commands_as_in_the_kernels_grammar() {
        let text = command_text(&words(&["/bin/a", "x y", ";", "/bin/b", "\\;", "\\&"])).unwrap();
        let line = rosv_cmdline::CommandLine::parse(&text).unwrap();
        let commands: Vec<&Vec<String>> = line.commands.iter().map(|command| &command.argv).collect();
        assert_eq!(commands, [&words(&["/bin/a", "x y"]), &words(&["/bin/b", ";", "&"])]);
        assert!(line.commands.iter().all(|command| !command.is_background));
        assert_eq!(command_text(&words(&["/bin/a", "&"])), Err(CommandError::Background));
        assert_eq!(command_text(&words(&["/bin/a", ";"])), Err(CommandError::EmptyCommand));
        assert_eq!(command_text(&words(&[";", "/bin/a"])), Err(CommandError::EmptyCommand));
        assert_eq!(command_text(&words(&["/bin/a", "a;b", "&&"])).unwrap(), "/bin/a \"a;b\" \"&&\"");
    }

    #[test]
    fn an_empty_directory_is_no_image() {
        let directory = tempfile::tempdir().unwrap();
        let error = ImageSpec::from_tree(directory.path(), &[], &[]).unwrap_err().to_string();
        assert!(error.contains("is empty: put the application's files in it"), "{error}");
    }

    #[test]
    fn a_missing_file_is_said_once() {
        let missing = Path::new("/nonexistent");
        let errors = [
            anyhow::Error::new(check_executable(missing).unwrap_err()),
            ImageSpec::from_tree(missing, &[], &[]).unwrap_err(),
            ImageSpec::from_executable(missing, &[], &[]).unwrap_err(),
        ];
        for error in errors {
            let text = format!("{error:#}");
            assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
            assert!(text.contains("/nonexistent"), "{text}");
        }
    }

    #[test]
    fn refuses_non_elf_files_and_names_interpreters() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("script");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(matches!(check_executable(&script), Err(ExecutableError::NotElf { .. })));
        assert!(matches!(
            check_executable(&directory.path().join("missing")),
            Err(ExecutableError::Unreadable { .. })
        ));
        // This test binary is a dynamically linked executable.
        let this = std::env::current_exe().unwrap();
        let interpreter = check_executable(&this).unwrap().expect("an interpreter");
        assert!(interpreter.contains("ld-linux"), "{interpreter}");
    }

    #[test]
    fn missing_image_is_a_clear_error() {
        let directory = tempfile::tempdir().unwrap();
        let error = Image::open(directory.path()).unwrap_err().to_string();
        assert!(error.contains("is not a rosv image"), "{error}");
    }

    #[test]
    fn a_manifest_image_holds_its_tree_and_checks_its_program() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(host.path().join("files")).unwrap();
        std::fs::write(host.path().join("files/data.txt"), "data").unwrap();
        std::fs::write(host.path().join("image.manifest"), "/bin/tool: files/data.txt\n/d/**: files/**\n")
            .unwrap();
        let command = vec!["/bin/tool".to_string(), "x y".to_string()];
        let spec = ImageSpec::from_tree(&host.path().join("image.manifest"), &command, &[]).unwrap();
        let output = host.path().join("image");
        write(&spec, &output).unwrap();
        let image = Image::open(&output).unwrap();
        assert_eq!(image.command, "/bin/tool \"x y\"");
        let bytes = std::fs::read(&image.root).unwrap();
        let rofs = Rofs::mount(bytes.as_slice()).unwrap();
        let data = rofs.resolve("/d/data.txt").unwrap();
        assert_eq!(rofs.metadata(data).unwrap().size, 4);

        let missing =
            ImageSpec::from_tree(&host.path().join("files"), &["/bin/tool".to_string()], &[]).unwrap();
        let error = write(&missing, &host.path().join("other")).unwrap_err().to_string();
        assert!(error.contains("/bin/tool is not in the image; add it to the manifest"), "{error}");
        let directory = ImageSpec::from_tree(&host.path().join("files"), &["/".to_string()], &[]).unwrap();
        let error = write(&directory, &host.path().join("other")).unwrap_err().to_string();
        assert!(error.contains("is a directory in the image"), "{error}");
        // Images without a default command are allowed: `rosv run` then needs one.
        write(&ImageSpec::from_tree(&host.path().join("files"), &[], &[]).unwrap(), &output).unwrap();
        assert_eq!(Image::open(&output).unwrap().command, "");
    }
}
