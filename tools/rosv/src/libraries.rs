//! The files dynamically linked programs need in an image: their
//! interpreter (the C library's dynamic linker) at the path `PT_INTERP`
//! names, and every library they need, directly or through other
//! libraries, where that interpreter searches by default. [`complete`]
//! adds what an image tree lacks.
//!
//! Libraries are found on the host the way the dynamic linker would find
//! them there: the needing file's `DT_RUNPATH`/`DT_RPATH` (with `$ORIGIN`),
//! then the system directories of its C library (glibc or musl).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rosv_elf::{LoadPlan, dependencies};
use rosv_rofs::writer::{Contents, Directory, Node};

/// Why an executable's libraries cannot be gathered.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// A file could not be read.
    #[error("cannot read {path}: {cause}")]
    Unreadable { path: PathBuf, cause: std::io::Error },
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
        self.guest_search_directories()[0]
    }

    /// Every directory the interpreter searches by default.
    fn guest_search_directories(self) -> &'static [&'static str] {
        match self {
            Flavor::Glibc => &[
                "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
                "/lib64",
                "/usr/lib64",
                "/lib",
                "/usr/lib",
            ],
            Flavor::Musl => &["/lib", "/usr/local/lib", "/usr/lib"],
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

fn read(path: &Path) -> Result<Vec<u8>, LibraryError> {
    std::fs::read(path).map_err(|cause| LibraryError::Unreadable { path: path.into(), cause })
}

/// Adds to `root` what its dynamically linked programs and libraries need
/// and it lacks: each interpreter at the path `PT_INTERP` names, and each
/// `DT_NEEDED` library, transitively, from the host. A library counts as
/// present when the image holds a file of that name in a directory the
/// dynamic linker searches, or next to the file that needs it. Returns the
/// guest paths added.
pub fn complete(root: &mut Directory) -> Result<Vec<String>, LibraryError> {
    let mut missing = None;
    let added = complete_collecting(root, &mut missing)?;
    Ok(added)
}

/// As [`complete`], but a library the host lacks is noted and left out
/// rather than ending the search; returns the paths added and what is
/// missing.
pub fn complete_tolerant(root: &mut Directory) -> (Vec<String>, Vec<LibraryError>) {
    let mut missing = Some(Vec::new());
    match complete_collecting(root, &mut missing) {
        Ok(added) => (added, missing.unwrap_or_default()),
        Err(error) => (Vec::new(), vec![error]),
    }
}

/// [`complete`]'s work: a missing library goes to `missing` when it is
/// `Some`, else ends the search.
fn complete_collecting(
    root: &mut Directory,
    missing: &mut Option<Vec<LibraryError>>,
) -> Result<Vec<String>, LibraryError> {
    let mut objects: Vec<(String, PathBuf)> = Vec::new();
    let mut present: BTreeSet<String> = BTreeSet::new();
    collect_files(root, String::new(), &mut objects, &mut present);
    let mut pending: Vec<(String, PathBuf)> = Vec::new();
    let mut interpreters: Vec<(String, PathBuf)> = Vec::new();
    for (guest_path, host_path) in objects {
        let Some(bytes) = read_elf(&host_path)? else {
            continue;
        };
        if let Some(interpreter) = LoadPlan::parse(&bytes).ok().and_then(|plan| plan.interpreter) {
            interpreters.push((interpreter, host_path.clone()));
        }
        pending.push((guest_path, host_path));
    }
    let flavor = match interpreters.first() {
        Some((interpreter, _)) => Flavor::of(interpreter),
        None if pending.iter().all(|(_, host)| read_needed(host).is_none_or(|needs| needs.is_empty())) => {
            return Ok(Vec::new());
        }
        None => Flavor::Glibc,
    };
    let mut added = Vec::new();
    let mut add =
        |root: &mut Directory, guest_path: String, host_path: PathBuf, present: &mut BTreeSet<String>| {
            root.insert(&guest_path, Node::File(Contents::HostFile(host_path)))
                .expect("a guest path made of plain names fits in the tree");
            present.insert(guest_path.clone());
            added.push(guest_path);
        };
    for (interpreter, needed_by) in &interpreters {
        if !present.contains(interpreter) {
            let host_path = std::fs::canonicalize(interpreter).map_err(|_| {
                LibraryError::MissingInterpreter { path: needed_by.clone(), interpreter: interpreter.clone() }
            })?;
            add(root, interpreter.clone(), host_path, &mut present);
        }
    }
    if !interpreters.is_empty() {
        for &name in flavor.implicit_libraries() {
            if !is_present(flavor, &present, name, "/")
                && let Ok(host_path) = find(flavor, name, &[], Path::new(""), Path::new(name))
            {
                let guest_path = format!("{}/{name}", flavor.guest_directory());
                add(root, guest_path.clone(), host_path.clone(), &mut present);
                pending.push((guest_path, host_path));
            }
        }
    }
    while let Some((guest_path, host_path)) = pending.pop() {
        // Object files, core dumps and damaged files in the tree are data
        // as far as loading goes: only what parses needs anything.
        let Ok(needs) = dependencies(&read(&host_path)?) else {
            continue;
        };
        let guest_directory = guest_path.rsplit_once('/').map_or("/", |(directory, _)| directory).to_string();
        let origin = host_path.parent().map(Path::to_path_buf).unwrap_or_default();
        for name in needs.needed {
            if flavor.is_interpreter(&name) || is_present(flavor, &present, &name, &guest_directory) {
                continue;
            }
            let library = match find(flavor, &name, &needs.search_path, &origin, &host_path) {
                Ok(library) => library,
                // Shipped with the application outside the search path, as
                // the JVM's libjvm.so: whatever loads it first finds it
                // there, and the dynamic linker then knows it by name.
                Err(_) if shipped_elsewhere(&present, &name) => continue,
                Err(error) => match missing {
                    Some(missing) => {
                        missing.push(error);
                        continue;
                    }
                    None => return Err(error),
                },
            };
            let library_guest_path = format!("{}/{name}", flavor.guest_directory());
            add(root, library_guest_path.clone(), library.clone(), &mut present);
            pending.push((library_guest_path, library));
        }
    }
    Ok(added)
}

/// Whether the image holds a file named `name` anywhere.
fn shipped_elsewhere(present: &BTreeSet<String>, name: &str) -> bool {
    let suffix = format!("/{name}");
    present.iter().any(|path| path.ends_with(&suffix))
}

/// Whether the image holds library `name` where the dynamic linker finds
/// it: a system directory, or the needing file's own directory.
fn is_present(flavor: Flavor, present: &BTreeSet<String>, name: &str, beside: &str) -> bool {
    let beside = format!("{}/{name}", beside.trim_end_matches('/'));
    present.contains(&beside)
        || flavor
            .guest_search_directories()
            .iter()
            .any(|directory| present.contains(&format!("{directory}/{name}")))
}

/// The regular files of `directory` (at `prefix`) that come from the host,
/// and the paths of everything but directories.
fn collect_files(
    directory: &Directory,
    prefix: String,
    host_files: &mut Vec<(String, PathBuf)>,
    present: &mut BTreeSet<String>,
) {
    for (name, node) in &directory.entries {
        let path = format!("{prefix}/{name}");
        match node {
            Node::Directory(inner) => collect_files(inner, path, host_files, present),
            Node::File(Contents::HostFile(host)) => {
                host_files.push((path.clone(), host.clone()));
                present.insert(path);
            }
            _ => {
                present.insert(path);
            }
        }
    }
}

/// The file's bytes if it is an ELF file.
fn read_elf(path: &Path) -> Result<Option<Vec<u8>>, LibraryError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let is_elf = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut magic)).is_ok()
        && magic == *b"\x7fELF";
    if is_elf { read(path).map(Some) } else { Ok(None) }
}

/// The libraries an ELF file needs, if it can be read and parsed.
fn read_needed(path: &Path) -> Option<Vec<String>> {
    dependencies(&std::fs::read(path).ok()?).ok().map(|needs| needs.needed)
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
                .map_err(|cause| LibraryError::Unreadable { path: candidate, cause });
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
    fn libraries_shipped_anywhere_in_the_image_count() {
        let present: BTreeSet<String> =
            ["/opt/jdk/lib/server/libjvm.so".to_string(), "/opt/jdk/lib/libzip.so".to_string()].into();
        assert!(shipped_elsewhere(&present, "libjvm.so"));
        assert!(!shipped_elsewhere(&present, "jvm.so"), "whole names only");
        assert!(!shipped_elsewhere(&present, "libnothere.so"));
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

#[cfg(test)]
mod completion_tests {
    use super::*;

    #[test]
    fn a_tree_gets_the_interpreter_and_libraries_its_programs_need() {
        let mut root = Directory::default();
        root.insert("/bin/true", Node::File(Contents::HostFile("/bin/true".into()))).unwrap();
        let added = complete(&mut root).unwrap();
        assert!(added.iter().any(|path| path.starts_with("/lib64/ld-linux")), "{added:?}");
        assert!(added.contains(&"/lib/x86_64-linux-gnu/libc.so.6".to_string()), "{added:?}");
        // A second pass finds everything present.
        assert_eq!(complete(&mut root).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn libraries_already_in_the_tree_are_kept() {
        let mut root = Directory::default();
        root.insert("/bin/true", Node::File(Contents::HostFile("/bin/true".into()))).unwrap();
        root.insert("/usr/lib/libc.so.6", Node::File(Contents::Bytes(vec![1, 2, 3]))).unwrap();
        let added = complete(&mut root).unwrap();
        assert!(!added.iter().any(|path| path.ends_with("/libc.so.6")), "{added:?}");
    }

    #[test]
    fn trees_without_programs_are_left_alone() {
        let mut root = Directory::default();
        root.insert("/etc/motd", Node::File(Contents::Bytes(b"hi".to_vec()))).unwrap();
        assert!(complete(&mut root).unwrap().is_empty());
    }
}
