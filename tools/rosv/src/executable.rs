//! The host files a program is: the links that lead to it, and for a `#!`
//! script, its interpreter's (as Linux's `binfmt_script` finds them).
//!
//! [`resolve`] follows a path to the program it names and, for a script,
//! to its interpreter, so that an image can hold each link and file where
//! the host has them (`/usr/bin/java` leads through `/etc/alternatives`
//! into the JDK, whose files are found from the real path) and run the
//! script through its interpreter.

use std::path::{Component, Path, PathBuf};

/// How many scripts may name each other as interpreters, as in Linux.
const SCRIPT_DEPTH: usize = 4;
/// How many links a path may go through.
const LINK_LIMIT: usize = 40;

/// Why a program cannot be followed to its files.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// A file could not be read.
    #[error("cannot read {path}: {cause}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Too many links.
    #[error("{path} goes through more than {LINK_LIMIT} symbolic links")]
    LinkLoop {
        /// The path.
        path: PathBuf,
    },
    /// A link target or interpreter that is not UTF-8.
    #[error("{path} is not UTF-8, as names in an image must be")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A script's interpreter is missing.
    #[error("the script {script} is run by {interpreter}, which is not on this host; install it")]
    MissingInterpreter {
        /// The script.
        script: PathBuf,
        /// Its `#!` line's program.
        interpreter: String,
    },
    /// Scripts name scripts too deeply.
    #[error("{script}: scripts run by scripts more than {SCRIPT_DEPTH} deep")]
    TooDeep {
        /// The first script.
        script: PathBuf,
    },
}

/// A path and the links it goes through to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Each link on the way: its absolute path and its target as written.
    pub links: Vec<(String, String)>,
    /// The file reached.
    pub file: String,
}

impl Chain {
    /// The path the chain starts from.
    pub fn start(&self) -> &str {
        self.links.first().map_or(&self.file, |(path, _)| path)
    }

    /// The path a command runs the program by. A link of another name
    /// gives the program its role (`redis-server` is a link to
    /// `redis-check-rdb`), so it is kept; a link of the same name only
    /// says where the program lives (`/usr/bin/java` through
    /// `/etc/alternatives`), so the file is named, from where programs
    /// such as the JVM find their own files.
    pub fn command_path(&self) -> &str {
        let name = |path: &str| path.rsplit('/').next().unwrap_or("").to_string();
        if name(self.start()) == name(&self.file) { &self.file } else { self.start() }
    }

    /// Every path on the chain, the links' and the file's.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.links.iter().map(|(path, _)| path).chain(std::iter::once(&self.file))
    }
}

/// A program: the chain to it, and for a script, what runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The chain from the path given.
    pub chain: Chain,
    /// For a script: its `#!` line's argument, if any, and the program
    /// that runs it.
    pub interpreter: Option<(Option<String>, Box<Program>)>,
}

impl Program {
    /// Each chain: the program's, then its interpreters'.
    pub fn chains(&self) -> Vec<&Chain> {
        let mut chains = vec![&self.chain];
        let mut current = self;
        while let Some((_, interpreter)) = &current.interpreter {
            chains.push(&interpreter.chain);
            current = interpreter;
        }
        chains
    }

    /// The ELF program that finally runs.
    pub fn binary(&self) -> &Chain {
        self.chains().last().copied().unwrap_or(&self.chain)
    }

    /// The words that run the program at `path` with `arguments`: for a
    /// script, its interpreter's words, the `#!` argument, then the script.
    /// Interpreters are named by [`Chain::command_path`].
    pub fn command(&self, path: &str, arguments: &[String]) -> Vec<String> {
        let mut words = vec![path.to_string()];
        let mut current = self;
        while let Some((argument, interpreter)) = &current.interpreter {
            let mut front = vec![interpreter.chain.command_path().to_string()];
            front.extend(argument.clone());
            words.splice(0..0, front);
            current = interpreter;
        }
        words.extend_from_slice(arguments);
        words
    }
}

/// Follows `path` to the program it names, and a script to its
/// interpreters.
pub fn resolve(path: &Path) -> Result<Program, ProgramError> {
    resolve_at_depth(path, 0, path)
}

fn resolve_at_depth(path: &Path, depth: usize, first: &Path) -> Result<Program, ProgramError> {
    let chain = follow(path)?;
    let Some((interpreter, argument)) = script_interpreter(Path::new(&chain.file))? else {
        return Ok(Program { chain, interpreter: None });
    };
    if depth == SCRIPT_DEPTH {
        return Err(ProgramError::TooDeep { script: first.to_path_buf() });
    }
    // `#!/usr/bin/env NAME` searches the PATH: search the host's now, and
    // run what it finds directly.
    let (interpreter, argument) = match (Path::new(&interpreter).file_name(), &argument) {
        (Some(name), Some(program))
            if name == "env" && !program.starts_with('-') && !program.contains(' ') =>
        {
            match find_on_path(program) {
                Some(found) => (found, None),
                None => {
                    return Err(ProgramError::MissingInterpreter {
                        script: path.to_path_buf(),
                        interpreter: program.clone(),
                    });
                }
            }
        }
        _ => (interpreter, argument),
    };
    if !Path::new(&interpreter).exists() || !interpreter.starts_with('/') {
        return Err(ProgramError::MissingInterpreter { script: path.to_path_buf(), interpreter });
    }
    let runner = resolve_at_depth(Path::new(&interpreter), depth + 1, first)?;
    Ok(Program { chain, interpreter: Some((argument, Box::new(runner))) })
}

/// The links from `path` to the file it names.
pub fn follow(path: &Path) -> Result<Chain, ProgramError> {
    let unreadable = |path: &Path, cause| ProgramError::Unreadable { path: path.to_path_buf(), cause };
    let absolute = std::path::absolute(path).map_err(|cause| unreadable(path, cause))?;
    let mut current = normalize(&absolute);
    let mut links = Vec::new();
    loop {
        let metadata = std::fs::symlink_metadata(&current).map_err(|cause| unreadable(&current, cause))?;
        let text =
            current.to_str().ok_or_else(|| ProgramError::NotUtf8 { path: current.clone() })?.to_string();
        if !metadata.file_type().is_symlink() {
            return Ok(Chain { links, file: text });
        }
        if links.len() == LINK_LIMIT {
            return Err(ProgramError::LinkLoop { path: path.to_path_buf() });
        }
        let target = std::fs::read_link(&current).map_err(|cause| unreadable(&current, cause))?;
        let target_text =
            target.to_str().ok_or_else(|| ProgramError::NotUtf8 { path: current.clone() })?.to_string();
        let next = current.parent().unwrap_or(Path::new("/")).join(&target);
        links.push((text, target_text));
        current = normalize(&next);
    }
}

/// `path` without `.` and `..` components, taken by name.
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::Normal(name) => normalized.push(name),
            _ => {}
        }
    }
    normalized
}

/// The interpreter and argument of a `#!` line, if `path` starts with one.
fn script_interpreter(path: &Path) -> Result<Option<(String, Option<String>)>, ProgramError> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(256).read_to_end(&mut head))
        .map_err(|cause| ProgramError::Unreadable { path: path.to_path_buf(), cause })?;
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = &line[..line.iter().position(|&byte| byte == b'\n').unwrap_or(line.len())];
    let line = std::str::from_utf8(line).map_err(|_| ProgramError::NotUtf8 { path: path.to_path_buf() })?;
    let line = line.trim();
    let (interpreter, argument) = match line.split_once([' ', '\t']) {
        Some((interpreter, argument)) => (interpreter, Some(argument.trim().to_string())),
        None => (line, None),
    };
    Ok(Some((interpreter.to_string(), argument.filter(|argument| !argument.is_empty()))))
}

/// The directories a shell searches by default, where [`named_programs`]
/// looks.
const PROGRAM_DIRECTORIES: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];
/// How much of a script [`named_programs`] reads.
const SCRIPT_LIMIT_BYTES: u64 = 1 << 20;

/// The host programs a script names as words (`dirname`, `sed`, `uname`
/// in a wrapper such as Erlang's `erl`): each word of the script that is a
/// file in one of [`PROGRAM_DIRECTORIES`], by the first path found. Words
/// that are shell keywords or builtins name no file there, or one the
/// shell does not run.
pub fn named_programs(script: &Path) -> Vec<String> {
    use std::io::Read;
    let mut text = Vec::new();
    if std::fs::File::open(script)
        .and_then(|file| file.take(SCRIPT_LIMIT_BYTES).read_to_end(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let words: std::collections::BTreeSet<&str> = text
        .split(|character: char| !(character.is_ascii_alphanumeric() || "._-+".contains(character)))
        .filter(|word| !word.is_empty() && !word.starts_with(['-', '.']))
        .collect();
    words
        .into_iter()
        .filter_map(|word| {
            PROGRAM_DIRECTORIES
                .iter()
                .map(|directory| format!("{directory}/{word}"))
                .find(|candidate| Path::new(candidate).is_file())
        })
        .collect()
}

/// The host's program `name`, searched in `PATH`.
fn find_on_path(name: &str) -> Option<String> {
    let paths = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&paths)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
        .and_then(|found| found.to_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_followed_to_the_file_with_their_targets_as_written() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path();
        std::fs::create_dir_all(base.join("opt/jdk/bin")).unwrap();
        std::fs::write(base.join("opt/jdk/bin/java"), "\x7fELF").unwrap();
        std::fs::create_dir(base.join("alternatives")).unwrap();
        symlink(base.join("opt/jdk/bin/java"), base.join("alternatives/java")).unwrap();
        std::fs::create_dir(base.join("bin")).unwrap();
        symlink("../alternatives/java", base.join("bin/java")).unwrap();
        let chain = follow(&base.join("bin/java")).unwrap();
        let text = |path: &Path| path.to_str().unwrap().to_string();
        assert_eq!(chain.links[0], (text(&base.join("bin/java")), "../alternatives/java".to_string()));
        assert_eq!(chain.links[1].0, text(&base.join("alternatives/java")));
        assert_eq!(chain.file, text(&base.join("opt/jdk/bin/java")));
        assert_eq!(chain.start(), text(&base.join("bin/java")));
        assert_eq!(chain.command_path(), chain.file, "a link of the same name names the file");
        symlink("opt/jdk/bin/java", base.join("other-name")).unwrap();
        let renamed = follow(&base.join("other-name")).unwrap();
        assert_eq!(renamed.command_path(), text(&base.join("other-name")), "another name is a role");
        symlink("loop", base.join("loop")).unwrap();
        assert!(matches!(follow(&base.join("loop")), Err(ProgramError::LinkLoop { .. })));
    }

    #[test]
    fn scripts_run_through_their_interpreters() {
        let directory = tempfile::tempdir().unwrap();
        let inner = directory.path().join("inner");
        std::fs::write(&inner, "#!/bin/sh -e\nexec true\n").unwrap();
        let outer = directory.path().join("outer");
        std::fs::write(&outer, format!("#!{}  with words \nx\n", inner.display())).unwrap();
        let program = resolve(&outer).unwrap();
        let command = program.command("/outer", &["a".to_string()]);
        let inner_text = inner.to_str().unwrap().to_string();
        assert_eq!(
            command,
            ["/bin/sh", "-e", &inner_text, "with words", "/outer", "a"],
            "sh is dash by another name"
        );
        assert_eq!(program.chains().len(), 3);
        assert_eq!(program.chains()[1].file, inner_text);
        let missing = directory.path().join("missing");
        std::fs::write(&missing, "#!/no/such/shell\n").unwrap();
        let error = resolve(&missing).unwrap_err().to_string();
        assert!(error.contains("/no/such/shell") && error.contains("not on this host"), "{error}");
    }

    #[test]
    fn env_is_resolved_on_the_host_path() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("script");
        std::fs::write(&script, "#!/usr/bin/env sh\n").unwrap();
        let program = resolve(&script).unwrap();
        let (argument, runner) = program.interpreter.as_ref().unwrap();
        assert_eq!(*argument, None);
        assert!(runner.chain.start().ends_with("/sh"), "{:?}", runner.chain);
    }

    #[test]
    fn the_programs_a_script_names_are_found() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("wrapper");
        std::fs::write(
            &script,
            "#!/bin/sh\nif [ -x x ]; then dir=`dirname \"$0\"`; fi\nexec no-such-tool-here -x\n",
        )
        .unwrap();
        let found = named_programs(&script);
        assert!(found.iter().any(|path| path.ends_with("/dirname")), "{found:?}");
        assert!(!found.iter().any(|path| path.contains("no-such-tool")), "{found:?}");
        assert!(!found.iter().any(|path| path.ends_with("/then") || path.ends_with("/x")), "{found:?}");
    }

    #[test]
    fn scripts_naming_themselves_stop() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("self");
        std::fs::write(&script, format!("#!{}\n", script.display())).unwrap();
        assert!(matches!(resolve(&script), Err(ProgramError::TooDeep { .. })));
    }
}
