//! Manifests in OSv's syntax: which host files go where in an image.
//!
//! One entry per line, host paths relative to the manifest's directory:
//!
//! ```text
//! [manifest]                      # optional section header, as in OSv
//! /bin/busybox: /usr/bin/busybox  # a file (or a directory's whole tree)
//! /data/**: data/**               # a host directory's tree
//! /usr/lib/&/libz.so: build/&     # the same name on both sides
//! /bin/sh: ->busybox              # a symlink
//! ```
//!
//! [`parse`] turns text into [`Entry`]s; `image_tree` reads the host files.

use std::collections::BTreeMap;

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line number, from 1.
    pub line: usize,
    /// The absolute guest path, normalized (`/` alone for the root).
    pub guest_path: String,
    /// What goes there.
    pub source: Source,
}

/// What an entry puts at its guest path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host file, or the whole tree of a host directory, as written in
    /// the manifest (relative to its directory unless absolute).
    Host(String),
    /// The tree of a host directory (`/dir/**: hostdir/**`).
    Tree(String),
    /// A symbolic link to this target.
    Symlink(String),
}

/// Why a manifest cannot be read. Each message starts with the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The line is not an entry.
    #[error(
        "line {line}: expected `/guest/path: host/path`, `/dir/**: hostdir/**` or \
         `/guest/link: ->target`, found `{text}`"
    )]
    Syntax {
        /// The line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A section other than `[manifest]`.
    #[error(
        "line {line}: unknown section [{name}]; a manifest has only entries, optionally under [manifest]"
    )]
    Section {
        /// The line number.
        line: usize,
        /// The section's name.
        name: String,
    },
    /// The guest path does not start with `/`.
    #[error("line {line}: the guest path `{path}` is not absolute; start it with /")]
    RelativeGuestPath {
        /// The line number.
        line: usize,
        /// The guest path.
        path: String,
    },
    /// The guest path has a component that cannot be stored.
    #[error("line {line}: the guest path `{path}` {reason}; write the path it stands for")]
    BadGuestPath {
        /// The line number.
        line: usize,
        /// The guest path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Only one side of a tree entry ends in `/**`.
    #[error("line {line}: write a tree as `/dir/**: hostdir/**`, with /** at the end of both paths")]
    UnpairedTree {
        /// The line number.
        line: usize,
    },
    /// The host side is empty.
    #[error("line {line}: `{path}` has no host path; write `{path}: host/path` or `{path}: ->target`")]
    MissingHostPath {
        /// The line number.
        line: usize,
        /// The guest path.
        path: String,
    },
    /// A `%(name)s` variable, which OSv's scripts substitute.
    #[error("line {line}: variables such as `%(name)s` are not supported; write the host path out")]
    Variable {
        /// The line number.
        line: usize,
    },
    /// Two entries for one guest path.
    #[error("line {line}: `{path}` is already given on line {first}; keep one of the two entries")]
    Duplicate {
        /// The line number of the second entry.
        line: usize,
        /// The line number of the first.
        first: usize,
        /// The guest path.
        path: String,
    },
}

/// Parses a manifest's text.
pub fn parse(text: &str) -> Result<Vec<Entry>, ManifestError> {
    let mut entries = Vec::new();
    let mut first_lines: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(entry) = parse_line(line, raw)? else {
            continue;
        };
        if let Some(&first) = first_lines.get(&entry.guest_path) {
            return Err(ManifestError::Duplicate { line, first, path: entry.guest_path });
        }
        first_lines.insert(entry.guest_path.clone(), line);
        entries.push(entry);
    }
    Ok(entries)
}

/// Parses one line: `None` for blank lines, comments and `[manifest]`.
fn parse_line(line: usize, raw: &str) -> Result<Option<Entry>, ManifestError> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') || text.starts_with(';') {
        return Ok(None);
    }
    if let Some(name) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return match name.trim() {
            "manifest" => Ok(None),
            other => Err(ManifestError::Section { line, name: other.to_string() }),
        };
    }
    let Some((guest, host)) = text.split_once(':') else {
        return Err(ManifestError::Syntax { line, text: text.to_string() });
    };
    let (guest, host) = (guest.trim(), host.trim());
    if guest.is_empty() {
        return Err(ManifestError::Syntax { line, text: text.to_string() });
    }
    if host.is_empty() {
        return Err(ManifestError::MissingHostPath { line, path: guest.to_string() });
    }
    if !guest.starts_with('/') {
        return Err(ManifestError::RelativeGuestPath { line, path: guest.to_string() });
    }
    if host.contains("%(") {
        return Err(ManifestError::Variable { line });
    }
    let (guest, host) = expand_same_name(guest, host);
    let guest_tree = guest.strip_suffix("/**");
    let host_tree = host.strip_suffix("/**").or((host == "**").then_some(""));
    let (guest, source) = if let Some(target) = host.strip_prefix("->") {
        let target = target.trim();
        if guest_tree.is_some() || target.is_empty() {
            return Err(ManifestError::Syntax { line, text: text.to_string() });
        }
        (guest.clone(), Source::Symlink(target.to_string()))
    } else {
        match (guest_tree, host_tree) {
            (Some(guest_directory), Some(host_directory)) => {
                let host_directory = match host_directory {
                    "" if host.starts_with('/') => "/",
                    "" => ".",
                    directory => directory,
                };
                (guest_directory.to_string(), Source::Tree(host_directory.to_string()))
            }
            (None, None) => (guest.clone(), Source::Host(host.clone())),
            _ => return Err(ManifestError::UnpairedTree { line }),
        }
    };
    let guest_path = normalize(line, &guest)?;
    Ok(Some(Entry { line, guest_path, source }))
}

/// OSv's `&`: in `/usr/lib/&/libz.so: build/&` the host path is
/// `build/libz.so` and the guest path `/usr/lib/libz.so`.
fn expand_same_name(guest: &str, host: &str) -> (String, String) {
    match (guest.split_once("/&/"), host.strip_suffix('&')) {
        (Some((prefix, suffix)), Some(host_prefix))
            if host_prefix.is_empty() || host_prefix.ends_with('/') =>
        {
            (format!("{prefix}/{suffix}"), format!("{host_prefix}{suffix}"))
        }
        _ => (guest.to_string(), host.to_string()),
    }
}

/// `/a//b/` as `/a/b`; refuses `.`, `..`, wildcards and NUL.
fn normalize(line: usize, path: &str) -> Result<String, ManifestError> {
    let bad = |reason| ManifestError::BadGuestPath { line, path: path.to_string(), reason };
    let mut normalized = String::new();
    for component in path.split('/').filter(|component| !component.is_empty()) {
        match component {
            "." | ".." => return Err(bad("has a `.` or `..` component")),
            _ if component.contains('*') => return Err(bad("has a wildcard other than a final /**")),
            _ if component.contains('\0') => return Err(bad("contains a NUL character")),
            _ if component.len() > usize::from(u16::MAX) => return Err(bad("has a name over 65535 bytes")),
            _ => {}
        }
        normalized.push('/');
        normalized.push_str(component);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests;
