//! Which installed packages a program's image takes: those owning the
//! program and its libraries, their dependencies, and what completes them.
//!
//! The walk is bounded the way Debian packages are layered. Debian's base
//! system (essential, `required` and `important` packages: shells, dpkg,
//! debconf, tzdata) is on every host and is what maintainer scripts use,
//! so it is not followed. A dependency that ships programs on the `PATH`
//! is a tool the package runs (Node.js depends on Python for its build
//! helpers): its data comes along, its own dependencies do not. A program
//! in a `-minimal` or `-base` package is completed by the package of the
//! same source and name without that suffix (`perl` for `perl-base`'s
//! modules, `python3.11` for `python3.11-minimal`'s standard library),
//! and the other way round, a package brings its `-minimal` or `-base`
//! part even from the base system (`perl-base` holds `perl`'s
//! `/usr/bin/perl`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::dpkg::{Database, DpkgError};

/// Why a package is in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// It owns the program or a link to it.
    Program,
    /// It completes the program's `-minimal` or `-base` package.
    Companion,
    /// It owns one of the libraries the program loads.
    Library,
    /// Another package in the image depends on it.
    Dependency,
    /// The user asked for it (`--package`).
    Requested,
}

impl Reason {
    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Program => "program",
            Reason::Companion => "completes the program",
            Reason::Library => "library",
            Reason::Dependency => "dependency",
            Reason::Requested => "requested",
        }
    }
}

/// The packages chosen, with their files.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Each package, why, and the paths dpkg lists for it, in the order
    /// chosen.
    pub packages: Vec<(String, Reason, Vec<String>)>,
    /// Base-system packages depended on but not taken (tzdata, say, whose
    /// zone files are added on their own).
    pub base_dependencies: BTreeSet<String>,
}

/// Whether `path` is a program on the `PATH`.
pub fn is_on_path(path: &str) -> bool {
    ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/games/", "/usr/local/bin/"].iter().any(|directory| {
        path.strip_prefix(directory).is_some_and(|name| !name.is_empty() && !name.contains('/'))
    })
}

/// Chooses the packages for programs owned by `programs`, libraries owned
/// by `libraries`, and the `requested` ones; `files` lists a package's
/// paths (and whether they are directories does not matter).
pub fn select(
    database: &Database,
    programs: &BTreeSet<String>,
    libraries: &BTreeSet<String>,
    requested: &[String],
    files: &mut dyn FnMut(&str) -> Result<Vec<String>, DpkgError>,
) -> Result<Selection, DpkgError> {
    let mut chosen = Chosen::default();
    for name in programs {
        if database.packages.contains_key(name) {
            chosen.choose(name, Reason::Program);
        }
    }
    for name in programs {
        let Some(package) = database.packages.get(name) else {
            continue;
        };
        let Some(full) = name.strip_suffix("-minimal").or_else(|| name.strip_suffix("-base")) else {
            continue;
        };
        if database.packages.get(full).is_some_and(|companion| companion.source == package.source) {
            chosen.choose(full, Reason::Companion);
        }
    }
    for name in requested {
        let package = database.resolve(name).ok_or_else(|| DpkgError::NotInstalled(name.clone()))?;
        chosen.choose(&package.name, Reason::Requested);
    }
    for name in libraries {
        if database.packages.contains_key(name) {
            chosen.choose(name, Reason::Library);
        }
    }
    let mut listed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut base_dependencies = BTreeSet::new();
    while let Some(name) = chosen.queue.pop_front() {
        let paths = files(&name)?;
        let is_tool = paths.iter().any(|path| is_on_path(path));
        listed.insert(name.clone(), paths);
        let Some(package) = database.packages.get(&name) else {
            continue;
        };
        if chosen.reasons.get(&name) == Some(&Reason::Dependency) && is_tool {
            continue;
        }
        for dependency in database.dependencies(package) {
            if dependency.is_base_system && is_core_of(database, &dependency.name, &name) {
                // `perl` without `perl-base` has no `/usr/bin/perl`; the
                // core of a requested package is requested too, programs
                // included.
                let reason = match chosen.reasons.get(&name) {
                    Some(Reason::Requested) => Reason::Requested,
                    _ => Reason::Companion,
                };
                chosen.choose(&dependency.name, reason);
                continue;
            }
            if dependency.is_base_system {
                if !chosen.reasons.contains_key(&dependency.name) {
                    base_dependencies.insert(dependency.name.clone());
                }
                continue;
            }
            chosen.choose(&dependency.name, Reason::Dependency);
        }
    }
    let packages = chosen
        .order
        .into_iter()
        .map(|name| {
            let reason = chosen.reasons[&name];
            let paths = listed.remove(&name).unwrap_or_default();
            (name, reason, paths)
        })
        .collect();
    Ok(Selection { packages, base_dependencies })
}

/// Whether `core` is the `-minimal` or `-base` part of the package `name`
/// (`perl-base` of `perl`): same source, same name but for the suffix.
fn is_core_of(database: &Database, core: &str, name: &str) -> bool {
    let is_named = core.strip_suffix("-minimal").or_else(|| core.strip_suffix("-base")) == Some(name);
    is_named
        && match (database.packages.get(core), database.packages.get(name)) {
            (Some(core), Some(package)) => core.source == package.source,
            _ => false,
        }
}

/// The packages chosen so far, in order, and those still to look at.
#[derive(Debug, Default)]
struct Chosen {
    reasons: BTreeMap<String, Reason>,
    order: Vec<String>,
    queue: VecDeque<String>,
}

impl Chosen {
    /// Takes `name` for `reason`, unless it is taken already.
    fn choose(&mut self, name: &str, reason: Reason) {
        match self.reasons.get_mut(name) {
            // A package asked for by name comes whole, even one already
            // chosen for a program (`--exec /usr/bin/dash --package dash`
            // brings `/bin/sh` too).
            Some(chosen) if reason == Reason::Requested => *chosen = Reason::Requested,
            Some(_) => {}
            None => {
                self.reasons.insert(name.to_string(), reason);
                self.order.push(name.to_string());
                self.queue.push_back(name.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Database {
        Database::parse(
            "python3.11-minimal\tii \toptional\tno\tpython3.11\t\t\tlibpython3.11-minimal, zlib1g\n\
             python3.11\tii \toptional\tno\t\t\t\tpython3.11-minimal (= 1), libpython3.11-stdlib, tzdata\n\
             python3.11-dev\tii \toptional\tno\tpython3.11\t\t\tpython3.11-minimal (= 1)\n\
             libpython3.11-minimal\tii \toptional\tno\tpython3.11\t\t\t\n\
             libpython3.11-stdlib\tii \toptional\tno\tpython3.11\t\t\tlibpython3.11-minimal, media-types\n\
             media-types\tii \toptional\tno\t\t\t\t\n\
             tzdata\tii \trequired\tno\t\t\t\tdebconf\n\
             zlib1g\tii \toptional\tno\tzlib\t\t\t\n\
             nodejs\tii \toptional\tno\t\t\t\tpython3, ca-certificates\n\
             python3\tii \toptional\tno\tpython3-defaults\t\t\tpython3.11\n\
             ca-certificates\tii \toptional\tno\t\t\t\tdebconf\n",
        )
    }

    fn files(name: &str) -> Result<Vec<String>, DpkgError> {
        Ok(match name {
            "python3" => vec!["/usr/bin/pydoc3".into(), "/usr/share/python3/debian_defaults".into()],
            "ca-certificates" => vec!["/usr/sbin/update-ca-certificates".into()],
            _ => vec![format!("/usr/share/{name}/data")],
        })
    }

    fn names(selection: &Selection) -> Vec<(&str, Reason)> {
        selection.packages.iter().map(|(name, reason, _)| (name.as_str(), *reason)).collect()
    }

    #[test]
    fn a_minimal_program_is_completed_by_its_source_and_dependencies() {
        let programs = BTreeSet::from(["python3.11-minimal".to_string()]);
        let selection = select(&database(), &programs, &BTreeSet::new(), &[], &mut files).unwrap();
        assert_eq!(
            names(&selection),
            [
                ("python3.11-minimal", Reason::Program),
                ("python3.11", Reason::Companion),
                ("libpython3.11-minimal", Reason::Dependency),
                ("zlib1g", Reason::Dependency),
                ("libpython3.11-stdlib", Reason::Dependency),
                ("media-types", Reason::Dependency),
            ],
            "python3.11-dev depends on the program's package but is not its full name"
        );
        assert_eq!(selection.base_dependencies, BTreeSet::from(["tzdata".to_string()]));
        assert_eq!(selection.packages[0].2, ["/usr/share/python3.11-minimal/data"]);
    }

    #[test]
    fn tools_come_without_their_dependencies() {
        let programs = BTreeSet::from(["nodejs".to_string()]);
        let selection = select(&database(), &programs, &BTreeSet::new(), &[], &mut files).unwrap();
        assert_eq!(
            names(&selection),
            [
                ("nodejs", Reason::Program),
                ("python3", Reason::Dependency),
                ("ca-certificates", Reason::Dependency)
            ]
        );
    }

    #[test]
    fn requested_packages_must_be_installed() {
        let empty = BTreeSet::new();
        let error = select(&database(), &empty, &empty, &["nothere".to_string()], &mut files).unwrap_err();
        assert!(error.to_string().contains("apt-get install nothere"), "{error}");
        let selection = select(&database(), &empty, &empty, &["python3".to_string()], &mut files).unwrap();
        assert_eq!(names(&selection)[0], ("python3", Reason::Requested));
        assert!(
            names(&selection).contains(&("python3.11", Reason::Dependency)),
            "requested ones are followed"
        );
    }

    #[test]
    fn a_program_package_asked_for_by_name_comes_whole() {
        let programs: BTreeSet<String> = ["nodejs".to_string()].into();
        let selection =
            select(&database(), &programs, &BTreeSet::new(), &["nodejs".to_string()], &mut files).unwrap();
        assert_eq!(names(&selection)[0], ("nodejs", Reason::Requested));
    }

    #[test]
    fn a_package_brings_its_base_part_from_the_base_system() {
        let database = Database::parse(
            "perl\tii \toptional\tno\t\t\t\tperl-base (= 5.36), perl-modules-5.36, libc6\n\
             perl-base\tii \trequired\tyes\tperl\t\t\tlibc6\n\
             perl-modules-5.36\tii \toptional\tno\tperl\t\t\t\n\
             libc6\tii \trequired\tno\tglibc\t\t\t\n",
        );
        let empty = BTreeSet::new();
        let selection = select(&database, &empty, &empty, &["perl".to_string()], &mut files).unwrap();
        assert_eq!(
            names(&selection),
            [
                ("perl", Reason::Requested),
                ("perl-base", Reason::Requested),
                ("perl-modules-5.36", Reason::Dependency)
            ]
        );
        assert_eq!(selection.base_dependencies, BTreeSet::from(["libc6".to_string()]));
    }

    #[test]
    fn programs_on_the_path_are_direct_children_of_bin_directories() {
        assert!(is_on_path("/usr/bin/python3") && is_on_path("/sbin/ldconfig"));
        assert!(
            !is_on_path("/usr/bin/") && !is_on_path("/usr/lib/erlang/bin/erl") && !is_on_path("/usr/bin/x/y")
        );
    }
}
