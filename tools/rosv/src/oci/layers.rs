//! Applying an image's layers (tar archives, plain or gzip-compressed) to a
//! root tree in order, with the OCI whiteouts: a `.wh.NAME` entry removes
//! NAME of the layers below, and `.wh..wh..opq` empties its directory of
//! them (OCI image spec, "Representing Changes").

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use tar::{Archive, EntryType};

/// The prefix of a whiteout entry's name.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the entry that makes its directory opaque.
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why a layer cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading or writing failed.
    #[error("cannot read or apply it: {0}")]
    Io(#[from] std::io::Error),
    /// A zstd-compressed layer.
    #[error(
        "it is compressed with zstd, which rosv cannot read; save the image with gzip or uncompressed layers"
    )]
    Zstd,
    /// Not a tar archive.
    #[error("it is not a tar archive, plain or gzip-compressed ({0})")]
    NotTar(std::io::Error),
    /// An entry that leads out of the root.
    #[error("its entry {0} leads outside the image's root")]
    Escapes(String),
}

/// Opens a tar archive, plain or gzip-compressed.
fn open(path: &Path) -> Result<Archive<Box<dyn Read>>, LayerError> {
    let mut file = BufReader::new(File::open(path)?);
    let mut magic = [0u8; 4];
    let length = file.get_mut().read(&mut magic)?;
    let file = {
        use std::io::Seek;
        let mut inner = file.into_inner();
        inner.rewind()?;
        BufReader::new(inner)
    };
    let reader: Box<dyn Read> = match &magic[..length] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(file)),
        [0x28, 0xb5, 0x2f, 0xfd] => return Err(LayerError::Zstd),
        _ => Box::new(file),
    };
    let mut archive = Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    Ok(archive)
}

/// Unpacks the archive at `path` (an image saved as a tar) into `target`.
pub fn unpack_archive(path: &Path, target: &Path) -> Result<(), LayerError> {
    std::fs::create_dir_all(target)?;
    let mut archive = open(path)?;
    for entry in archive.entries().map_err(LayerError::NotTar)? {
        let mut entry = entry.map_err(LayerError::NotTar)?;
        let name = entry.path().map_err(LayerError::NotTar)?.to_string_lossy().into_owned();
        if !entry.unpack_in(target).map_err(|error| tar_error(error, &name))? {
            return Err(LayerError::Escapes(name));
        }
    }
    Ok(())
}

/// A tar crate error: a damaged archive, or one whose entries leave the
/// target through a link.
fn tar_error(error: std::io::Error, name: &str) -> LayerError {
    if error.to_string().contains("outside of") {
        LayerError::Escapes(name.to_string())
    } else {
        LayerError::NotTar(error)
    }
}

/// An entry's path as plain names below the root; `None` if it climbs out.
fn relative(path: &Path) -> Option<PathBuf> {
    let mut plain = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => plain.push(name),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(plain)
}

/// `root/relative` if no directory on the way is a symlink (which a
/// whiteout or replacement must not go through).
fn inside(root: &Path, relative: &Path) -> Option<PathBuf> {
    let mut current = root.to_path_buf();
    let count = relative.components().count();
    for (index, component) in relative.components().enumerate() {
        current.push(component);
        if index + 1 < count
            && std::fs::symlink_metadata(&current).is_ok_and(|metadata| metadata.file_type().is_symlink())
        {
            return None;
        }
    }
    Some(current)
}

/// Removes whatever `path` is, if anything.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Applies the layer at `layer` to the tree at `root`: first its whiteouts
/// to what the layers below left, then its entries. Device nodes and
/// pipes, which an image cannot hold, are left out.
pub fn apply(layer: &Path, root: &Path) -> Result<(), LayerError> {
    let mut whiteouts = Vec::new();
    let mut opaque = Vec::new();
    let mut archive = open(layer)?;
    for entry in archive.entries().map_err(LayerError::NotTar)? {
        let entry = entry.map_err(LayerError::NotTar)?;
        let path = entry.path().map_err(LayerError::NotTar)?.into_owned();
        let plain = relative(&path).ok_or_else(|| LayerError::Escapes(path.display().to_string()))?;
        let Some(name) = plain.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let parent = plain.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == OPAQUE_MARKER {
            opaque.push(parent);
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            whiteouts.push(parent.join(hidden));
        }
    }
    for directory in opaque {
        if let Some(directory) = inside(root, &directory).filter(|directory| directory.is_dir()) {
            for child in std::fs::read_dir(&directory)? {
                remove(&child?.path())?;
            }
        }
    }
    for hidden in whiteouts {
        if let Some(path) = inside(root, &hidden) {
            remove(&path)?;
        }
    }
    let mut archive = open(layer)?;
    for entry in archive.entries().map_err(LayerError::NotTar)? {
        let mut entry = entry.map_err(LayerError::NotTar)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            continue;
        }
        let path = entry.path().map_err(LayerError::NotTar)?.into_owned();
        let name = path.display().to_string();
        let plain = relative(&path).ok_or_else(|| LayerError::Escapes(name.clone()))?;
        if plain
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(WHITEOUT_PREFIX))
        {
            continue;
        }
        if plain.as_os_str().is_empty() {
            continue;
        }
        // An entry replaces what the layers below have at its path, but a
        // directory only a non-directory.
        if let Some(target) = inside(root, &plain) {
            let is_directory = std::fs::symlink_metadata(&target).is_ok_and(|metadata| metadata.is_dir());
            if !(kind == EntryType::Directory && is_directory) {
                remove(&target)?;
            }
        }
        if !entry.unpack_in(root).map_err(|error| tar_error(error, &name))? {
            return Err(LayerError::Escapes(name));
        }
    }
    Ok(())
}
