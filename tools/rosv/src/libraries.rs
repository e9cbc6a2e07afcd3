//! The files a dynamically linked executable needs in an image: its
//! interpreter (the C library's dynamic linker) at the path `PT_INTERP`
//! names, and every library it needs, directly or through other libraries,
//! where that interpreter searches by default.
//!
//! Libraries are found on the host the way the dynamic linker would find
//! them there: the needing file's `DT_RUNPATH`/`DT_RPATH` (with `$ORIGIN`),
//! then the system directories of its C library (glibc or musl).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rosv_elf::{ElfError, dependencies};

/// Why an executable's libraries cannot be gathered.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    /// A file's dynamic section is malformed.
    #[error("{path}: {source}")]
    Malformed { path: PathBuf, source: ElfError },
    /// The interpreter is not on the host.
    #[error("the interpreter {interpreter} that {path} asks for is not on this host; install its C library")]
    MissingInterpreter { path: PathBuf, interpreter: String },
    /// A needed library is not on the host.
    #[error(
        "cannot find {name}, which {needed_by} needs (looked in {searched}); install it or link the program statically"
    )]
    MissingLibrary { name: String, needed_by: PathBuf, searched: String },
}

/// Which dynamic linker, and so which default search directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Glibc,
    Musl,
}

impl Flavor {
    fn of(interpreter: &str) -> Self {
        if interpreter.contains("musl") { Flavor::Musl } else { Flavor::Glibc }
    }

    /// Where the interpreter looks without a cache or configuration file,
    /// in the image: libraries are placed in the first.
    fn guest_directory(self) -> &'static str {
        match self {
            Flavor::Glibc => "/lib/x86_64-linux-gnu",
            Flavor::Musl => "/lib",
        }
    }

    /// Where libraries live on a Debian-like host.
    fn host_directories(self) -> &'static [&'static str] {
        match self {
            Flavor::Glibc => &[
                "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
                "/lib64",
                "/usr/lib64",
                "/lib",
                "/usr/lib",
            ],
            Flavor::Musl => &[
                "/usr/lib/x86_64-linux-musl",
                "/lib/x86_64-linux-musl",
                "/usr/local/lib",
                "/lib",
                "/usr/lib",
            ],
        }
    }

    /// Libraries the C library loads with `dlopen` rather than through
    /// `DT_NEEDED`, taken along when the host has them: glibc unwinds
    /// threads with libgcc_s for `pthread_exit` and cancellation.
    fn implicit_libraries(self) -> &'static [&'static str] {
        match self {
            Flavor::Glibc => &["libgcc_s.so.1"],
            Flavor::Musl => &[],
        }
    }

    /// Whether `name` is the interpreter itself (musl's libc is its dynamic
    /// linker; glibc's linker may be named as a dependency).
    fn is_interpreter(self, name: &str) -> bool {
        match self {
            Flavor::Glibc => name.starts_with("ld-linux"),
            Flavor::Musl => name.starts_with("libc.so") || name.starts_with("ld-musl"),
        }
    }
}

/// A file to put in the image: its path there and on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFile {
    /// Where the image holds it.
    pub guest_path: String,
    /// The host file (symbolic links resolved).
    pub host_path: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, LibraryError> {
    std::fs::read(path).map_err(|source| LibraryError::Unreadable { path: path.into(), source })
}

/// The interpreter and libraries `executable` (which names `interpreter`)
/// needs.
pub fn runtime_files(executable: &Path, interpreter: &str) -> Result<Vec<RuntimeFile>, LibraryError> {
    let flavor = Flavor::of(interpreter);
    let interpreter_host = std::fs::canonicalize(interpreter).map_err(|_| {
        LibraryError::MissingInterpreter { path: executable.into(), interpreter: interpreter.into() }
    })?;
    let mut files = vec![RuntimeFile { guest_path: interpreter.into(), host_path: interpreter_host }];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<PathBuf> = vec![executable.into()];
    for &name in flavor.implicit_libraries() {
        if let Ok(host_path) = find(flavor, name, &[], Path::new(""), executable) {
            seen.insert(name.into());
            files.push(RuntimeFile {
                guest_path: format!("{}/{name}", flavor.guest_directory()),
                host_path: host_path.clone(),
            });
            pending.push(host_path);
        }
    }
    while let Some(needing) = pending.pop() {
        let needs = dependencies(&read(&needing)?)
            .map_err(|source| LibraryError::Malformed { path: needing.clone(), source })?;
        let origin = needing.parent().map(Path::to_path_buf).unwrap_or_default();
        for name in needs.needed {
            if flavor.is_interpreter(&name) || !seen.insert(name.clone()) {
                continue;
            }
            let host_path = find(flavor, &name, &needs.search_path, &origin, &needing)?;
            files.push(RuntimeFile {
                guest_path: format!("{}/{name}", flavor.guest_directory()),
                host_path: host_path.clone(),
            });
            pending.push(host_path);
        }
    }
    Ok(files)
}

/// Finds library `name` on the host: in `search_path` (with `$ORIGIN` the
/// directory of the needing file), then in the system directories.
fn find(
    flavor: Flavor,
    name: &str,
    search_path: &[String],
    origin: &Path,
    needed_by: &Path,
) -> Result<PathBuf, LibraryError> {
    let origin = origin.to_string_lossy();
    let directories: Vec<String> = search_path
        .iter()
        .map(|directory| directory.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        .chain(flavor.host_directories().iter().map(|directory| directory.to_string()))
        .collect();
    for directory in &directories {
        let candidate = Path::new(directory).join(name);
        if candidate.is_file() {
            return std::fs::canonicalize(&candidate)
                .map_err(|source| LibraryError::Unreadable { path: candidate, source });
        }
    }
    Err(LibraryError::MissingLibrary {
        name: name.into(),
        needed_by: needed_by.into(),
        searched: directories.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_follow_the_interpreter() {
        assert_eq!(Flavor::of("/lib64/ld-linux-x86-64.so.2"), Flavor::Glibc);
        assert_eq!(Flavor::of("/lib/ld-musl-x86_64.so.1"), Flavor::Musl);
        assert!(Flavor::Musl.is_interpreter("libc.so"));
        assert!(!Flavor::Glibc.is_interpreter("libc.so.6"));
    }

    #[test]
    fn a_missing_library_names_what_was_searched() {
        let error = find(
            Flavor::Glibc,
            "libnothere.so.9",
            &["$ORIGIN/lib".into()],
            Path::new("/opt/app"),
            Path::new("/opt/app/app"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("libnothere.so.9") && error.contains("/opt/app/lib") && error.contains("/usr/lib"),
            "{error}"
        );
    }
}
