//! What dpkg knows about the host's installed packages, through
//! `dpkg-query`: who owns a path (`-S`), a package's files (`-L`) and every
//! installed package's fields (`-W`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Why dpkg could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum DpkgError {
    /// `dpkg-query` is not on this host.
    #[error("dpkg-query cannot be run ({0}); packages can only be collected on a Debian-like host")]
    Unavailable(std::io::Error),
    /// A package named on the command line is not installed.
    #[error(
        "the package {0} is not installed on this host; install it (apt-get install {0}) or leave it out"
    )]
    NotInstalled(String),
    /// `dpkg-query` failed.
    #[error("dpkg-query {arguments} failed: {message}")]
    Failed {
        /// What it was asked.
        arguments: String,
        /// What it said.
        message: String,
    },
}

/// One installed package's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// Its name, without an architecture.
    pub name: String,
    /// The source package it was built from.
    pub source: String,
    /// Whether Debian's base system holds it: `Essential: yes`, or the
    /// priority `required` or `important`.
    pub is_base_system: bool,
    /// The virtual packages it provides.
    pub provides: Vec<String>,
    /// `Pre-Depends` and `Depends`: each a list of alternatives.
    pub depends: Vec<Vec<String>>,
}

/// Every installed package, by name.
#[derive(Debug, Clone, Default)]
pub struct Database {
    /// The packages.
    pub packages: BTreeMap<String, Package>,
}

/// The `dpkg-query -W` format [`Database::parse`] reads.
const FORMAT: &str = "${Package}\\t${db:Status-Abbrev}\\t${Priority}\\t${Essential}\\t${source:Package}\\t${Provides}\\t${Pre-Depends}\\t${Depends}\\n";

impl Database {
    /// Reads the host's database.
    pub fn load() -> Result<Self, DpkgError> {
        let output = query(&["-W", &format!("-f={FORMAT}")])?;
        Ok(Self::parse(&output))
    }

    /// Parses `dpkg-query -W` output in [`FORMAT`]; packages not fully
    /// installed are left out.
    pub fn parse(text: &str) -> Self {
        let mut packages = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [name, status, priority, essential, source, provides, pre_depends, depends] = fields[..]
            else {
                continue;
            };
            if !status.starts_with("ii") || packages.contains_key(name) {
                continue;
            }
            let mut relations = parse_relations(pre_depends);
            relations.extend(parse_relations(depends));
            let package = Package {
                name: name.to_string(),
                source: if source.is_empty() { name.to_string() } else { source.to_string() },
                is_base_system: essential == "yes" || priority == "required" || priority == "important",
                provides: parse_relations(provides).into_iter().flatten().collect(),
                depends: relations,
            };
            packages.insert(name.to_string(), package);
        }
        Database { packages }
    }

    /// The installed package that satisfies `name`: itself, or one that
    /// provides it.
    pub fn resolve(&self, name: &str) -> Option<&Package> {
        self.packages.get(name).or_else(|| {
            self.packages
                .values()
                .find(|package| package.provides.iter().any(|virtual_name| virtual_name == name))
        })
    }

    /// The first installed alternative of each of `package`'s dependencies.
    pub fn dependencies<'a>(&'a self, package: &'a Package) -> impl Iterator<Item = &'a Package> + 'a {
        package
            .depends
            .iter()
            .filter_map(|alternatives| alternatives.iter().find_map(|name| self.resolve(name)))
    }
}

/// Parses a relation field such as `a (>= 1) | b:any, c`: the names of
/// each relation's alternatives, without versions or architectures.
pub fn parse_relations(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|relation| {
            relation
                .split('|')
                .filter_map(|alternative| {
                    let name = alternative.split_whitespace().next()?;
                    let name = name.split_once(':').map_or(name, |(name, _)| name);
                    let name = name.split_once('(').map_or(name, |(name, _)| name);
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|alternatives| !alternatives.is_empty())
        .collect()
}

/// The packages owning any of `paths` (paths no package owns are left out).
pub fn owners(paths: &[String]) -> Result<BTreeSet<String>, DpkgError> {
    if paths.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut arguments = vec!["-S".to_string()];
    arguments.extend(paths.iter().cloned());
    // dpkg-query fails when any path has no owner; the others are still
    // printed.
    let output = Command::new("dpkg-query").args(&arguments).output().map_err(DpkgError::Unavailable)?;
    Ok(parse_owners(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses `dpkg-query -S` output: `pkg1, pkg2:arch: /path` lines, and
/// `diversion by ...` lines, which name no owner.
pub fn parse_owners(text: &str) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("diversion by") {
            continue;
        }
        let Some((names, _path)) = line.split_once(": ") else {
            continue;
        };
        for name in names.split(',') {
            let name = name.trim();
            let name = name.split_once(':').map_or(name, |(name, _)| name);
            if !name.is_empty() {
                packages.insert(name.to_string());
            }
        }
    }
    packages
}

/// The paths `package` installed, as dpkg lists them.
pub fn files(package: &str) -> Result<Vec<String>, DpkgError> {
    let output = query(&["-L", package])?;
    Ok(output.lines().filter(|line| line.starts_with('/')).map(str::to_string).collect())
}

fn query(arguments: &[&str]) -> Result<String, DpkgError> {
    let output = Command::new("dpkg-query").args(arguments).output().map_err(DpkgError::Unavailable)?;
    if !output.status.success() {
        return Err(DpkgError::Failed {
            arguments: arguments.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_lose_versions_and_architectures() {
        assert_eq!(
            parse_relations("debconf (>= 0.5) | debconf-2.0, perl:any, libc6 (>= 2.34)"),
            vec![
                vec!["debconf".to_string(), "debconf-2.0".to_string()],
                vec!["perl".into()],
                vec!["libc6".into()]
            ]
        );
        assert!(parse_relations("").is_empty());
    }

    #[test]
    fn owners_come_from_every_line_but_diversions() {
        let text = "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6\n\
                    diversion by dash from: /bin/sh\n\
                    python3.11-minimal, python3-minimal: /usr/bin/python3.11\n";
        let owners = parse_owners(text);
        assert_eq!(
            owners.into_iter().collect::<Vec<_>>(),
            ["libc6", "python3-minimal", "python3.11-minimal"]
        );
    }

    #[test]
    fn the_database_keeps_installed_packages_and_resolves_virtual_names() {
        let text = "perl\tii \tstandard\tno\tperl\tlibjson-pp-perl (= 4)\tdpkg (>= 1)\tperl-base (= 5), libperl5.36\n\
                    perl-base\tii \trequired\tyes\tperl\t\t\t\n\
                    gone\trc \toptional\tno\tgone\t\t\t\n\
                    libperl5.36\tii \toptional\tno\t\t\t\tlibc6\n";
        let database = Database::parse(text);
        assert!(!database.packages.contains_key("gone"));
        assert_eq!(database.resolve("libjson-pp-perl").map(|package| package.name.as_str()), Some("perl"));
        assert_eq!(database.packages["libperl5.36"].source, "libperl5.36", "no source: its own name");
        let perl = &database.packages["perl"];
        assert_eq!(perl.depends.len(), 3, "pre-depends count too");
        assert!(database.packages["perl-base"].is_base_system && !perl.is_base_system);
        let found: Vec<&str> = database.dependencies(perl).map(|package| package.name.as_str()).collect();
        assert_eq!(found, ["perl-base", "libperl5.36"], "uninstalled dpkg and libc6 are skipped");
    }
}
