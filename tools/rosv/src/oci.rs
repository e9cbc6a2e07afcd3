//! Container images as rosv images: an OCI image layout directory, or a
//! `docker save`/`podman save` archive (or either, unpacked or as a tar).
//!
//! [`read`] finds the image's manifest (`index.json` of an OCI layout, or
//! `manifest.json` of `docker save`), applies its layers in order into a
//! scratch directory (`layers` handles whiteouts), and reads the config's
//! `Entrypoint`, `Cmd`, `Env`, `WorkingDir` and `User`, which
//! `image::ImageSpec::from_container` turns into the command and kernel
//! options.

mod layers;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a container image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file cannot be read.
    #[error("cannot read {path}: {cause}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Neither an OCI layout nor a `docker save` archive.
    #[error(
        "{0} is neither an OCI image layout (index.json) nor a docker/podman save archive (manifest.json); \
         give a directory or tar archive holding one"
    )]
    NotAnImage(PathBuf),
    /// A JSON document is malformed or lacks a field.
    #[error("{document} in {image}: {what}")]
    BadDocument {
        /// The image.
        image: PathBuf,
        /// Which document.
        document: String,
        /// What is wrong.
        what: String,
    },
    /// A layer cannot be applied.
    #[error("layer {layer} of {image}: {cause}")]
    Layer {
        /// The image.
        image: PathBuf,
        /// The layer's file.
        layer: String,
        /// What went wrong.
        cause: layers::LayerError,
    },
    /// A user or group name the image's files do not define.
    #[error("the image's User {user} names {name}, which its /etc/{file} does not define; use numeric ids")]
    UnknownUser {
        /// The `User` field.
        user: String,
        /// The name.
        name: String,
        /// passwd or group.
        file: &'static str,
    },
}

/// What a container's config says about running it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub command: Vec<String>,
    /// `Env`, as names and values.
    pub environment: Vec<(String, String)>,
    /// `WorkingDir`.
    pub working_directory: Option<String>,
    /// `User`, resolved to numeric ids.
    pub user: Option<(u32, u32)>,
}

/// A container image applied into a directory.
#[derive(Debug)]
pub struct Container {
    /// The directory holding the root tree (removed when dropped).
    pub scratch: tempfile::TempDir,
    /// The root tree within it.
    pub root: PathBuf,
    /// How to run it.
    pub config: RunConfig,
}

/// Reads the container image at `path` (a directory or tar archive).
pub fn read(path: &Path) -> Result<Container, OciError> {
    let unreadable = |cause| OciError::Unreadable { path: path.to_path_buf(), cause };
    let scratch = tempfile::tempdir().map_err(unreadable)?;
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    let layout = if metadata.is_dir() {
        path.to_path_buf()
    } else {
        let unpacked = scratch.path().join("archive");
        layers::unpack_archive(path, &unpacked).map_err(|cause| OciError::Layer {
            image: path.to_path_buf(),
            layer: "(the archive itself)".into(),
            cause,
        })?;
        unpacked
    };
    let image = Image::find(path, &layout)?;
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(unreadable)?;
    for layer in &image.layers {
        layers::apply(&layout.join(layer), &root).map_err(|cause| OciError::Layer {
            image: path.to_path_buf(),
            layer: layer.clone(),
            cause,
        })?;
    }
    let config_document = read_json(path, &layout, &image.config)?;
    let config = run_config(path, &image.config, &config_document, &root)?;
    Ok(Container { scratch, root, config })
}

/// Where an image's config and layers are, relative to its layout.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Image {
    config: String,
    layers: Vec<String>,
}

impl Image {
    /// Finds the manifest: `docker save`'s `manifest.json`, else the OCI
    /// layout's `index.json` (following nested indexes to one for
    /// linux/amd64, or the first).
    fn find(image: &Path, layout: &Path) -> Result<Self, OciError> {
        if layout.join("manifest.json").is_file() {
            let document = read_json(image, layout, "manifest.json")?;
            let bad = |what: &str| bad_document(image, "manifest.json", what);
            let first =
                document.as_array().and_then(|images| images.first()).ok_or_else(|| bad("no image"))?;
            let config = first.get("Config").and_then(Value::as_str).ok_or_else(|| bad("no Config"))?;
            let layers = first
                .get("Layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("no Layers"))?
                .iter()
                .map(|layer| layer.as_str().map(str::to_string).ok_or_else(|| bad("a layer is not a path")))
                .collect::<Result<_, _>>()?;
            return Ok(Image { config: config.to_string(), layers });
        }
        if !layout.join("index.json").is_file() {
            return Err(OciError::NotAnImage(image.to_path_buf()));
        }
        let mut document_name = "index.json".to_string();
        for _ in 0..8 {
            let document = read_json(image, layout, &document_name)?;
            if let Some(manifests) = document.get("manifests").and_then(Value::as_array) {
                let is_ours = |manifest: &&Value| {
                    let platform = manifest.get("platform");
                    let field =
                        |name| platform.and_then(|platform| platform.get(name)).and_then(Value::as_str);
                    field("architecture").is_none_or(|architecture| architecture == "amd64")
                        && field("os").is_none_or(|os| os == "linux")
                };
                let chosen = manifests
                    .iter()
                    .find(is_ours)
                    .ok_or_else(|| bad_document(image, &document_name, "no manifest for linux/amd64"))?;
                document_name = blob_path(image, &document_name, chosen)?;
                continue;
            }
            let config = document
                .get("config")
                .ok_or_else(|| bad_document(image, &document_name, "no config"))
                .and_then(|config| blob_path(image, &document_name, config))?;
            let layers = document
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad_document(image, &document_name, "no layers"))?
                .iter()
                .map(|layer| blob_path(image, &document_name, layer))
                .collect::<Result<_, _>>()?;
            return Ok(Image { config, layers });
        }
        Err(bad_document(image, "index.json", "indexes nest too deeply"))
    }
}

/// The path of the blob a descriptor (`{"digest": "sha256:..."}`) names.
fn blob_path(image: &Path, document: &str, descriptor: &Value) -> Result<String, OciError> {
    let digest = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_document(image, document, "a descriptor has no digest"))?;
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad_document(image, document, &format!("bad digest {digest}")))?;
    let is_plain =
        |text: &str| !text.is_empty() && text.chars().all(|character| character.is_ascii_alphanumeric());
    if !is_plain(algorithm) || !is_plain(hex) {
        return Err(bad_document(image, document, &format!("bad digest {digest}")));
    }
    Ok(format!("blobs/{algorithm}/{hex}"))
}

fn bad_document(image: &Path, document: &str, what: &str) -> OciError {
    OciError::BadDocument {
        image: image.to_path_buf(),
        document: document.to_string(),
        what: what.to_string(),
    }
}

/// Reads JSON document `name` of the layout, which must stay inside it.
fn read_json(image: &Path, layout: &Path, name: &str) -> Result<Value, OciError> {
    if name.split('/').any(|part| part == "..") || name.starts_with('/') {
        return Err(bad_document(image, name, "the path leaves the image"));
    }
    let path = layout.join(name);
    let text = std::fs::read(&path).map_err(|cause| OciError::Unreadable { path: path.clone(), cause })?;
    serde_json::from_slice(&text).map_err(|error| bad_document(image, name, &format!("not JSON: {error}")))
}

/// The run settings of config document `document`, with `User` names
/// looked up in the image's `/etc/passwd` and `/etc/group` under `root`.
fn run_config(image: &Path, name: &str, document: &Value, root: &Path) -> Result<RunConfig, OciError> {
    let bad = |what: &str| bad_document(image, name, what);
    let Some(config) =
        document.get("config").or_else(|| document.get("Config")).filter(|config| !config.is_null())
    else {
        return Ok(RunConfig::default());
    };
    let words = |field: &str| -> Result<Vec<String>, OciError> {
        match config.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(&format!("{field} holds a non-string")))
                })
                .collect(),
            Some(_) => Err(bad(&format!("{field} is not a list of strings"))),
        }
    };
    let environment = words("Env")?
        .into_iter()
        .filter_map(|entry| entry.split_once('=').map(|(name, value)| (name.to_string(), value.to_string())))
        .collect();
    let text = |field: &str| {
        config.get(field).and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_string)
    };
    let user = match text("User") {
        Some(user) => Some(resolve_user(&user, root)?),
        None => None,
    };
    Ok(RunConfig {
        entrypoint: words("Entrypoint")?,
        command: words("Cmd")?,
        environment,
        working_directory: text("WorkingDir"),
        user,
    })
}

/// `USER[:GROUP]`, each numeric or a name from the image's files; a user
/// without a group takes its primary group.
fn resolve_user(user: &str, root: &Path) -> Result<(u32, u32), OciError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((user_part, group_part)) => (user_part, Some(group_part)),
        None => (user, None),
    };
    let unknown =
        |name: &str, file| OciError::UnknownUser { user: user.to_string(), name: name.to_string(), file };
    let entries = |file: &str| std::fs::read_to_string(root.join("etc").join(file)).unwrap_or_default();
    let passwd = entries("passwd");
    let passwd_entry = |name: &str| {
        passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.len() > 3 && fields[0] == name)
    };
    let (uid, primary_gid) = match user_part.parse::<u32>() {
        Ok(uid) => {
            let primary = passwd
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() > 3 && fields[2] == user_part)
                .and_then(|fields| fields[3].parse().ok());
            (uid, primary.unwrap_or(0))
        }
        Err(_) => {
            let fields = passwd_entry(user_part).ok_or_else(|| unknown(user_part, "passwd"))?;
            let uid = fields[2].parse().map_err(|_| unknown(user_part, "passwd"))?;
            (uid, fields[3].parse().unwrap_or(0))
        }
    };
    let gid = match group_part {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entries("group")
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() > 2 && fields[0] == group)
                .and_then(|fields| fields[2].parse().ok())
                .ok_or_else(|| unknown(group, "group"))?,
        },
    };
    Ok((uid, gid))
}

/// Finds `program` (a name without `/`) in the `PATH` the environment
/// gives (or the usual one) inside the tree at `root`; returns its path in
/// the image.
pub fn find_program(root: &Path, program: &str, environment: &[(String, String)]) -> Option<String> {
    let path = environment
        .iter()
        .find(|(name, _)| name == "PATH")
        .map_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", |(_, value)| value.as_str());
    path.split(':').filter(|directory| directory.starts_with('/')).find_map(|directory| {
        let candidate = format!("{}/{program}", directory.trim_end_matches('/'));
        let host = root.join(candidate.trim_start_matches('/'));
        std::fs::symlink_metadata(&host).is_ok().then_some(candidate)
    })
}

#[cfg(test)]
mod tests;
