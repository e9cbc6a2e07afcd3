//! The image's file tree, read from the host as a manifest or directory says.
//!
//! [`from_manifest`] follows a manifest's entries (see `manifest`);
//! [`from_directory`] takes a host directory's whole tree as the root. Both
//! give a `rosv_rofs::writer::Directory` for `image::write`. In trees,
//! host symlinks stay symlinks; a file named directly is read through them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use rosv_rofs::writer::{Contents, Directory, Node, host_modify_time};

use crate::manifest::{self, ManifestError, Source};

/// Where a part of the tree was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A manifest line.
    Line {
        /// The manifest file.
        manifest: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// A host directory given as the whole root.
    Directory(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line { manifest, line } => write!(formatter, "{}:{line}", manifest.display()),
            Origin::Directory(directory) => write!(formatter, "in {}", directory.display()),
        }
    }
}

/// Why the tree cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The manifest file cannot be read.
    #[error("cannot read the manifest {path}: {cause}")]
    UnreadableManifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// The manifest's text is wrong.
    #[error("{manifest}: {cause}")]
    Manifest {
        /// The manifest.
        manifest: PathBuf,
        /// What is wrong, with the line.
        cause: ManifestError,
    },
    /// A host path does not exist.
    #[error("{at}: {path} does not exist; fix the host path (relative ones start in {base})")]
    Missing {
        /// The entry.
        at: Origin,
        /// The host path.
        path: PathBuf,
        /// The directory relative host paths start in.
        base: PathBuf,
    },
    /// A host path cannot be read.
    #[error("{at}: cannot read {path}: {cause}")]
    Unreadable {
        /// The entry.
        at: Origin,
        /// The host path.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// A `/**` entry names something that is not a directory.
    #[error("{at}: {path} is not a directory; a `/dir/**: hostdir/**` entry copies a directory's tree")]
    NotDirectory {
        /// The entry.
        at: Origin,
        /// The host path.
        path: PathBuf,
    },
    /// A host file an image cannot hold.
    #[error("{at}: {path} is a {kind}, which an image cannot hold; leave it out")]
    Special {
        /// The entry.
        at: Origin,
        /// The host path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A host name or symlink target that is not UTF-8.
    #[error("{at}: {path} is not UTF-8 (as names and symlink targets in an image must be); rename it")]
    NotUtf8 {
        /// The entry.
        at: Origin,
        /// The host path.
        path: PathBuf,
    },
    /// Two entries give one guest path.
    #[error("{at}: {guest} is also given by {first}; keep one of the two")]
    Overlap {
        /// The second entry.
        at: Origin,
        /// The guest path.
        guest: String,
        /// The first entry.
        first: Origin,
    },
    /// Something is placed below a file or symlink.
    #[error("{at}: {guest} would lie below {parent}, which {first} makes a file or symlink")]
    BelowFile {
        /// The entry.
        at: Origin,
        /// The guest path.
        guest: String,
        /// The file or symlink above it.
        parent: String,
        /// The entry that made it.
        first: Origin,
    },
    /// A file or symlink for `/`.
    #[error("{at}: the root / must be a directory; give a host directory, or a path below /")]
    RootNotDirectory {
        /// The entry.
        at: Origin,
    },
    /// A name or target too long for ROFS.
    #[error("{at}: {guest}: {what} is longer than ROFS's 65535 bytes; shorten it")]
    TooLong {
        /// The entry.
        at: Origin,
        /// The guest path.
        guest: String,
        /// The name or symlink target.
        what: &'static str,
    },
}

/// Reads the manifest at `path` and the host files it names.
pub fn from_manifest(path: &Path) -> Result<Directory, TreeError> {
    let text = fs::read_to_string(path)
        .map_err(|cause| TreeError::UnreadableManifest { path: path.to_path_buf(), cause })?;
    let entries = manifest::parse(&text)
        .map_err(|cause| TreeError::Manifest { manifest: path.to_path_buf(), cause })?;
    let base = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = Builder::default();
    for entry in entries {
        let at = Origin::Line { manifest: path.to_path_buf(), line: entry.line };
        match entry.source {
            Source::Symlink(target) => {
                if target.len() > usize::from(u16::MAX) {
                    return Err(TreeError::TooLong { at, guest: entry.guest_path, what: "the target" });
                }
                builder.add_leaf(&entry.guest_path, Node::Symlink(target), &at)?;
            }
            Source::Host(host) => {
                let host = base.join(host);
                let metadata = metadata(&host, &at, &base)?;
                if metadata.is_dir() {
                    builder.add_tree(&host, &entry.guest_path, &at)?;
                } else if metadata.is_file() {
                    builder.add_leaf(&entry.guest_path, Node::File(Contents::HostFile(host)), &at)?;
                } else {
                    return Err(TreeError::Special { kind: kind(metadata.file_type()), at, path: host });
                }
            }
            Source::Tree(host) => {
                let host = base.join(host);
                if !metadata(&host, &at, &base)?.is_dir() {
                    return Err(TreeError::NotDirectory { at, path: host });
                }
                builder.add_tree(&host, &entry.guest_path, &at)?;
            }
        }
    }
    Ok(builder.root)
}

/// Takes the tree of the host directory `path` as the image's root.
pub fn from_directory(path: &Path) -> Result<Directory, TreeError> {
    let mut builder = Builder::default();
    builder.add_tree(path, "/", &Origin::Directory(path.to_path_buf()))?;
    Ok(builder.root)
}

fn metadata(path: &Path, at: &Origin, base: &Path) -> Result<fs::Metadata, TreeError> {
    fs::metadata(path).map_err(|cause| match cause.kind() {
        io::ErrorKind::NotFound => {
            TreeError::Missing { at: at.clone(), path: path.to_path_buf(), base: base.to_path_buf() }
        }
        _ => TreeError::Unreadable { at: at.clone(), path: path.to_path_buf(), cause },
    })
}

fn kind(file_type: fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// What an entry made of a guest path.
#[derive(Debug)]
struct Claim {
    origin: Origin,
    is_directory: bool,
}

/// The tree being built, and which entry made each of its paths.
#[derive(Debug, Default)]
struct Builder {
    root: Directory,
    claims: BTreeMap<String, Claim>,
}

impl Builder {
    /// Records that `at` makes `guest` (and the directories above it).
    fn claim(&mut self, guest: &str, is_directory: bool, at: &Origin) -> Result<(), TreeError> {
        if guest == "/" {
            return if is_directory { Ok(()) } else { Err(TreeError::RootNotDirectory { at: at.clone() }) };
        }
        let parents: Vec<&str> = guest.match_indices('/').skip(1).map(|(index, _)| &guest[..index]).collect();
        for parent in &parents {
            if let Some(claim) = self.claims.get(*parent).filter(|claim| !claim.is_directory) {
                return Err(TreeError::BelowFile {
                    at: at.clone(),
                    guest: guest.to_string(),
                    parent: parent.to_string(),
                    first: claim.origin.clone(),
                });
            }
        }
        if let Some(claim) = self.claims.get(guest)
            && !(claim.is_directory && is_directory)
        {
            return Err(TreeError::Overlap {
                at: at.clone(),
                guest: guest.to_string(),
                first: claim.origin.clone(),
            });
        }
        for parent in parents {
            self.claims
                .entry(parent.to_string())
                .or_insert_with(|| Claim { origin: at.clone(), is_directory: true });
        }
        self.claims.entry(guest.to_string()).or_insert_with(|| Claim { origin: at.clone(), is_directory });
        Ok(())
    }

    fn add_leaf(&mut self, guest: &str, node: Node, at: &Origin) -> Result<(), TreeError> {
        self.claim(guest, false, at)?;
        self.root.insert(guest, node).map_err(|_| TreeError::TooLong {
            at: at.clone(),
            guest: guest.to_string(),
            what: "a name",
        })
    }

    /// Adds the tree of host directory `host` at `guest`.
    fn add_tree(&mut self, host: &Path, guest: &str, at: &Origin) -> Result<(), TreeError> {
        self.claim(guest, true, at)?;
        let unreadable = |cause| TreeError::Unreadable { at: at.clone(), path: host.to_path_buf(), cause };
        let modify_time = Some(host_modify_time(&fs::metadata(host).map_err(unreadable)?));
        if guest == "/" {
            self.root.modify_time = modify_time;
        } else {
            let directory = Directory { modify_time, ..Directory::default() };
            self.root.insert(guest, Node::Directory(directory)).map_err(|_| TreeError::TooLong {
                at: at.clone(),
                guest: guest.to_string(),
                what: "a name",
            })?;
        }
        let mut children = fs::read_dir(host)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .map_err(unreadable)?;
        children.sort_by_key(|child| child.file_name());
        for child in children {
            let path = child.path();
            let not_utf8 = || TreeError::NotUtf8 { at: at.clone(), path: path.clone() };
            let name = child.file_name().into_string().map_err(|_| not_utf8())?;
            let child_guest = if guest == "/" { format!("/{name}") } else { format!("{guest}/{name}") };
            let file_type = child.file_type().map_err(|cause| TreeError::Unreadable {
                at: at.clone(),
                path: path.clone(),
                cause,
            })?;
            if file_type.is_symlink() {
                let target = fs::read_link(&path).map_err(|cause| TreeError::Unreadable {
                    at: at.clone(),
                    path: path.clone(),
                    cause,
                })?;
                let target = target.into_os_string().into_string().map_err(|_| not_utf8())?;
                self.add_leaf(&child_guest, Node::Symlink(target), at)?;
            } else if file_type.is_dir() {
                self.add_tree(&path, &child_guest, at)?;
            } else if file_type.is_file() {
                self.add_leaf(&child_guest, Node::File(Contents::HostFile(path)), at)?;
            } else {
                return Err(TreeError::Special { at: at.clone(), path, kind: kind(file_type) });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
