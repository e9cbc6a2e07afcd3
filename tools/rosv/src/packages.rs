//! A program's run-time files from the Debian packages that hold them.
//!
//! [`add`] asks dpkg which packages own the program (and each link to it)
//! and its libraries, chooses those and the packages they need (`select`
//! says how far it goes), and adds their files that a program reads at run
//! time: not documentation, manual pages, message catalogs, headers, other
//! programs on the `PATH` or top-level shared libraries (the `libraries`
//! module adds those the program loads). Files dpkg does not list or that
//! only some programs need come from `runtime_files`: glibc's iconv
//! modules and C.UTF-8 locale, zone files, CA certificates. What was added,
//! package by package, comes back as a [`Report`].

mod dpkg;
mod runtime_files;
mod select;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use rosv_rofs::writer::{Contents, Directory, Node};

pub use dpkg::DpkgError;
use select::Reason;

/// What to collect from packages.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// Whether to collect from the packages owning the program at all.
    pub is_enabled: bool,
    /// Packages to add as well (`--package`), with their programs.
    pub requested: Vec<String>,
    /// Guest-path patterns to leave out (`--exclude`): `*` and `?` within
    /// a name, `**` across names; a pattern naming a directory leaves out
    /// what is below it.
    pub excludes: Vec<String>,
}

/// One line of the report: a package or a group of files, and what it
/// added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    /// The package, or what the files are.
    pub name: String,
    /// Why it was added.
    pub reason: String,
    /// How many files and links were added.
    pub files: usize,
    /// Their size.
    pub size_bytes: u64,
}

/// What [`add`] added to an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Each package or group, in the order added.
    pub additions: Vec<Addition>,
    /// Why nothing was collected, when that is so.
    pub note: Option<String>,
    /// Libraries that packaged files load but the host lacks (a plugin
    /// for something not installed); those files cannot load.
    pub missing: Vec<String>,
}

impl Report {
    /// A report of nothing collected, saying why.
    pub fn nothing(why: &str) -> Self {
        Report { additions: Vec::new(), note: Some(why.to_string()), missing: Vec::new() }
    }

    /// All the files added.
    pub fn files(&self) -> usize {
        self.additions.iter().map(|addition| addition.files).sum()
    }

    /// Their total size.
    pub fn size_bytes(&self) -> u64 {
        self.additions.iter().map(|addition| addition.size_bytes).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(note) = &self.note {
            return writeln!(formatter, "no packages collected: {note}");
        }
        writeln!(formatter, "collected from Debian packages:")?;
        let width = self.additions.iter().map(|addition| addition.name.len()).max().unwrap_or(0).max(5);
        let (empty, full): (Vec<&Addition>, Vec<&Addition>) =
            self.additions.iter().partition(|addition| addition.files == 0);
        for addition in full {
            writeln!(
                formatter,
                "  {:width$}  {:22}  {:6} files  {}",
                addition.name,
                addition.reason,
                addition.files,
                size_text(addition.size_bytes)
            )?;
        }
        writeln!(
            formatter,
            "  {:width$}  {:22}  {:6} files  {}",
            "total",
            "",
            self.files(),
            size_text(self.size_bytes())
        )?;
        if !empty.is_empty() {
            let names: Vec<&str> = empty.iter().map(|addition| addition.name.as_str()).collect();
            writeln!(formatter, "  needed, with nothing more to add: {}", names.join(", "))?;
        }
        for missing in &self.missing {
            writeln!(formatter, "  warning: {missing}")?;
        }
        Ok(())
    }
}

/// A size in KiB or MiB, one decimal.
fn size_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// Adds to `root` the packaged files the programs at host paths `programs`
/// (each link to them included) and the libraries already in `root` need,
/// and the requested packages. Files already in `root` stay. Other
/// programs on the `PATH` come only from requested packages, and, when
/// `is_script`, from the packages owning the programs: a wrapper script
/// runs its package's programs.
pub fn add(
    root: &mut Directory,
    programs: &[String],
    is_script: bool,
    options: &PackageOptions,
) -> Result<Report, DpkgError> {
    let database = dpkg::Database::load()?;
    let program_owners = dpkg::owners(&with_aliases(programs))?;
    let mut library_paths = Vec::new();
    collect_host_files(root, &mut library_paths);
    let library_paths: Vec<String> =
        library_paths.into_iter().filter(|path| !programs.contains(path)).collect();
    let library_owners = dpkg::owners(&with_aliases(&library_paths))?;
    let selection =
        select::select(&database, &program_owners, &library_owners, &options.requested, &mut |name| {
            dpkg::files(name)
        })?;
    let keep_programs: BTreeSet<&str> = programs.iter().map(String::as_str).collect();
    let mut report = Report::default();
    for (name, reason, paths) in &selection.packages {
        let mut addition =
            Addition { name: name.clone(), reason: reason.describe().to_string(), files: 0, size_bytes: 0 };
        for path in paths {
            // Requested packages come whole but for what people read.
            let is_wanted = match reason {
                Reason::Requested => !is_for_people(path),
                Reason::Program if is_script => is_runtime_file(path),
                _ => {
                    is_runtime_file(path)
                        && (!select::is_on_path(path) || keep_programs.contains(path.as_str()))
                }
            };
            // dpkg may list `/bin/ls` where the image links `/bin` to
            // `usr/bin`: the file goes where the link leads.
            let image_path = resolve_directories(root, path);
            if !is_wanted || is_excluded(&options.excludes, path) || lookup(root, &image_path).is_some() {
                continue;
            }
            if let Some((node, size_bytes)) = host_node(Path::new(path))
                && root.insert(&image_path, node).is_ok()
            {
                addition.files += 1;
                addition.size_bytes += size_bytes;
            }
        }
        report.additions.push(addition);
    }
    let chosen: BTreeSet<&str> = selection
        .packages
        .iter()
        .map(|(name, _, _)| name.as_str())
        .chain(selection.base_dependencies.iter().map(String::as_str))
        .collect();
    report.additions.extend(runtime_files::add(root, &chosen, &options.excludes));
    Ok(report)
}

/// Whether a Debian package owns one of the host `paths` (not when dpkg
/// cannot be asked).
pub fn owns(paths: &[String]) -> bool {
    dpkg::owners(&with_aliases(paths)).is_ok_and(|owners| !owners.is_empty())
}

/// `paths` and, on a merged-`/usr` host, the names dpkg may know them by
/// (`/lib/...` for `/usr/lib/...` and the other way round).
fn with_aliases(paths: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    for path in paths {
        all.push(path.clone());
        let merged = ["/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/libx32/"];
        if let Some(rest) = path.strip_prefix("/usr")
            && merged.iter().any(|prefix| rest.starts_with(prefix))
        {
            all.push(rest.to_string());
        } else if merged.iter().any(|prefix| path.starts_with(prefix)) {
            all.push(format!("/usr{path}"));
        }
    }
    all
}

/// Whether a packaged file is read at run time by the program: not by
/// people, compilers or the init system, and not a library or iconv module
/// that comes on its own when used.
fn is_runtime_file(path: &str) -> bool {
    if is_for_people(path) || is_for_compilers(path) || path.contains("/gconv/") {
        return false;
    }
    let (directory, name) = path.rsplit_once('/').unwrap_or(("", path));
    let is_library_directory =
        ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
            .contains(&directory);
    let is_shared_object = name.ends_with(".so") || name.contains(".so.");
    !(is_library_directory && is_shared_object)
}

/// Whether a packaged file is for compilers: headers, static archives,
/// pkg-config files. A requested package brings them (`--package
/// libc6-dev` is asked for to compile in the guest); a package that comes
/// as a dependency leaves them out.
fn is_for_compilers(path: &str) -> bool {
    path.starts_with("/usr/include/")
        || path.contains("/pkgconfig/")
        || path.ends_with(".a")
        || path.ends_with(".la")
        || path.ends_with(".h")
}

/// Whether a packaged file is for people or the init system:
/// documentation, manual pages, message catalogs, services.
fn is_for_people(path: &str) -> bool {
    const LEFT_OUT: &[&str] = &[
        "/usr/share/doc/",
        "/usr/share/doc-base/",
        "/usr/share/man/",
        "/usr/share/info/",
        "/usr/share/lintian/",
        "/usr/share/bug/",
        "/usr/share/locale/",
        "/usr/share/i18n/",
        "/usr/share/bash-completion/",
        "/usr/share/zsh/",
        "/usr/share/fish/",
        "/usr/share/menu/",
        "/usr/share/applications/",
        "/usr/share/icons/",
        "/usr/share/pixmaps/",
        "/usr/share/gtk-doc/",
        "/usr/share/help/",
        "/usr/share/metainfo/",
        "/usr/share/polkit-1/",
        "/usr/lib/debug/",
        "/usr/lib/systemd/",
        "/lib/systemd/",
        "/usr/lib/tmpfiles.d/",
        "/usr/lib/sysusers.d/",
        "/etc/init.d/",
        "/etc/systemd/",
        "/etc/logrotate.d/",
        "/etc/cron.d/",
        "/etc/cron.daily/",
        "/etc/apparmor.d/",
    ];
    LEFT_OUT.iter().any(|prefix| path.starts_with(prefix))
}

/// Whether one of `patterns` matches `path` or a directory above it.
fn is_excluded(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim_end_matches('/');
        let mut prefix = path;
        loop {
            if glob_matches(pattern.as_bytes(), prefix.as_bytes()) {
                return true;
            }
            match prefix.rsplit_once('/') {
                Some((above, _)) if !above.is_empty() => prefix = above,
                _ => return false,
            }
        }
    })
}

/// Matches `text` against a pattern of `*` (within a name), `**` (across
/// names) and `?` (one character but `/`).
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|start| glob_matches(rest, &text[start..])),
        [b'*', rest @ ..] => {
            let name_end = text.iter().position(|&byte| byte == b'/').unwrap_or(text.len());
            (0..=name_end).any(|start| glob_matches(rest, &text[start..]))
        }
        [b'?', rest @ ..] => text.first().is_some_and(|&byte| byte != b'/') && glob_matches(rest, &text[1..]),
        [byte, rest @ ..] => text.first() == Some(byte) && glob_matches(rest, &text[1..]),
    }
}

/// The node for host path `path` (a file or symlink, read without
/// following a final link) and its size; `None` for directories, special
/// files and what is missing.
fn host_node(path: &Path) -> Option<(Node, u64)> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(path).ok()?.into_os_string().into_string().ok()?;
        Some((Node::Symlink(target), 0))
    } else if metadata.is_file() {
        Some((Node::File(Contents::HostFile(path.to_path_buf())), metadata.len()))
    } else {
        None
    }
}

/// The host paths of the files in `directory`.
fn collect_host_files(directory: &Directory, paths: &mut Vec<String>) {
    for node in directory.entries.values() {
        match node {
            Node::Directory(inner) => collect_host_files(inner, paths),
            Node::File(Contents::HostFile(host)) => {
                if let Some(text) = host.to_str() {
                    paths.push(text.to_string());
                }
            }
            _ => {}
        }
    }
}

/// `path` with each directory above its last name that is a symlink in
/// `root` replaced by where the link leads (relative or absolute, up to
/// 40 links, as path resolution in Linux); the last name is kept as it is.
fn resolve_directories(root: &Directory, path: &str) -> String {
    let mut pending: Vec<String> =
        path.split('/').filter(|part| !part.is_empty()).map(String::from).collect();
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links_followed = 0;
    while let Some(name) = pending.pop() {
        if pending.is_empty() {
            resolved.push(name);
            break;
        }
        if name == "." {
            continue;
        }
        if name == ".." {
            resolved.pop();
            continue;
        }
        let here = format!("/{}/{name}", resolved.join("/"));
        match lookup(root, &here) {
            Some(Node::Symlink(target)) if links_followed < 40 => {
                links_followed += 1;
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').filter(|part| !part.is_empty()).rev().map(String::from));
            }
            _ => resolved.push(name),
        }
    }
    format!("/{}", resolved.join("/"))
}

/// The node at `path`, without following symlinks; a path below a file
/// or symlink counts as taken.
pub fn lookup<'a>(root: &'a Directory, path: &str) -> Option<&'a Node> {
    let mut components = path.split('/').filter(|part| !part.is_empty()).peekable();
    let mut directory = root;
    while let Some(name) = components.next() {
        let node = directory.entries.get(name)?;
        if components.peek().is_none() {
            return Some(node);
        }
        match node {
            Node::Directory(inner) => directory = inner,
            _ => return Some(node),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documentation_programs_and_top_level_libraries_are_left_out() {
        assert!(is_runtime_file("/usr/lib/python3.11/json/__init__.py"));
        assert!(is_runtime_file("/usr/lib/x86_64-linux-gnu/perl/5.36/auto/POSIX/POSIX.so"));
        assert!(is_runtime_file("/etc/php/8.2/cli/php.ini"));
        assert!(!is_runtime_file("/usr/share/doc/perl/copyright"));
        assert!(!is_runtime_file("/usr/share/man/man1/perl.1.gz"));
        assert!(!is_runtime_file("/usr/share/locale/de/LC_MESSAGES/ruby.mo"));
        assert!(!is_runtime_file("/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1"));
        assert!(!is_runtime_file("/usr/lib/x86_64-linux-gnu/pkgconfig/ruby-3.1.pc"));
        assert!(!is_runtime_file("/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"));
    }

    #[test]
    fn patterns_match_names_trees_and_directories_above() {
        let patterns = |list: &[&str]| list.iter().map(|pattern| pattern.to_string()).collect::<Vec<_>>();
        assert!(is_excluded(&patterns(&["/usr/share/zoneinfo"]), "/usr/share/zoneinfo/Europe/Paris"));
        assert!(is_excluded(&patterns(&["/usr/lib/python3.11/test/"]), "/usr/lib/python3.11/test/a.py"));
        assert!(is_excluded(
            &patterns(&["/usr/lib/**/*.pyc"]),
            "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc"
        ));
        assert!(is_excluded(&patterns(&["*.txt"]), "notes.txt"));
        assert!(
            !is_excluded(&patterns(&["/usr/lib/*.pyc"]), "/usr/lib/python3.11/os.pyc"),
            "* stays in one name"
        );
        assert!(is_excluded(&patterns(&["/usr/lib/python3.1?"]), "/usr/lib/python3.11/os.py"));
        assert!(!is_excluded(&patterns(&["/usr/share/zone"]), "/usr/share/zoneinfo/UTC"));
    }

    #[test]
    fn files_under_a_linked_directory_go_where_the_link_leads() {
        let mut root = Directory::default();
        root.insert("/bin", Node::Symlink("usr/bin".into())).unwrap();
        root.insert("/lib64", Node::Symlink("/usr/lib64".into())).unwrap();
        root.insert("/usr/lib/x", Node::Symlink("../share".into())).unwrap();
        assert_eq!(resolve_directories(&root, "/bin/ls"), "/usr/bin/ls");
        assert_eq!(resolve_directories(&root, "/lib64/ld.so"), "/usr/lib64/ld.so");
        assert_eq!(resolve_directories(&root, "/usr/lib/x/y/z"), "/usr/share/y/z");
        assert_eq!(resolve_directories(&root, "/bin"), "/bin", "the last name stays");
        assert_eq!(resolve_directories(&root, "/opt/a"), "/opt/a");
    }

    #[test]
    fn merged_usr_paths_are_asked_for_by_both_names() {
        let paths =
            with_aliases(&["/usr/lib/x86_64-linux-gnu/libc.so.6".into(), "/bin/sh".into(), "/opt/x".into()]);
        assert_eq!(
            paths,
            [
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/bin/sh",
                "/usr/bin/sh",
                "/opt/x"
            ]
        );
    }

    #[test]
    fn the_report_lists_each_package_and_the_total() {
        let report = Report {
            additions: vec![
                Addition {
                    name: "perl".into(),
                    reason: "program".into(),
                    files: 2,
                    size_bytes: 3 * 1024 * 1024,
                },
                Addition { name: "zoneinfo".into(), reason: "zone files".into(), files: 3, size_bytes: 2048 },
            ],
            note: None,
            missing: Vec::new(),
        };
        let text = report.to_string();
        assert!(text.contains("perl") && text.contains("3.0 MiB") && text.contains("2.0 KiB"), "{text}");
        assert!(text.lines().last().unwrap().contains("5 files"), "{text}");
        assert!(Report::nothing("not from a package").to_string().contains("not from a package"));
    }
}
