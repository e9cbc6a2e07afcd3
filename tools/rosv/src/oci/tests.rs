use super::*;

/// A tar archive of `entries`: (path, contents), `None` for a directory.
fn tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        match contents {
            Some(text) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                builder.append_data(&mut header, path, text.as_bytes()).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                builder.append_data(&mut header, path, std::io::empty()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const LOWER: &[(&str, Option<&str>)] = &[
    ("etc/", None),
    ("etc/passwd", Some("root:x:0:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")),
    ("etc/group", Some("root:x:0:\nstaff:x:50:\n")),
    ("a/", None),
    ("a/hidden", Some("lower")),
    ("a/kept", Some("lower")),
    ("b/", None),
    ("b/old", Some("lower")),
    ("c", Some("a file below")),
];

const UPPER: &[(&str, Option<&str>)] = &[
    ("a/.wh.hidden", Some("")),
    ("a/kept", Some("upper")),
    ("b/.wh..wh..opq", Some("")),
    ("b/new", Some("upper")),
    ("c/", None),
    ("c/inside", Some("a directory above")),
];

const CONFIG: &str = r#"{"architecture": "amd64", "os": "linux", "config": {
    "Entrypoint": ["/bin/app"], "Cmd": ["--flag", "x y"], "Env": ["A=1", "PATH=/bin"],
    "WorkingDir": "/srv", "User": "app:staff"}}"#;

fn check_tree(container: &Container) {
    let read = |path: &str| std::fs::read_to_string(container.root.join(path)).ok();
    assert_eq!(read("a/hidden"), None, "a whiteout hides the lower file");
    assert_eq!(read("a/kept").as_deref(), Some("upper"), "an upper file replaces a lower one");
    assert_eq!(read("b/old"), None, "an opaque directory hides what was below");
    assert_eq!(read("b/new").as_deref(), Some("upper"));
    assert_eq!(read("c/inside").as_deref(), Some("a directory above"), "a directory replaces a file");
    let config = &container.config;
    assert_eq!(config.entrypoint, ["/bin/app"]);
    assert_eq!(config.command, ["--flag", "x y"]);
    assert_eq!(
        config.environment,
        [("A".to_string(), "1".to_string()), ("PATH".to_string(), "/bin".to_string())]
    );
    assert_eq!(config.working_directory.as_deref(), Some("/srv"));
    assert_eq!(config.user, Some((1000, 50)), "names come from the image's passwd and group");
}

fn digest_name(index: usize) -> String {
    format!("{index:064x}")
}

#[test]
fn an_oci_layout_applies_layers_in_order_with_whiteouts() {
    let directory = tempfile::tempdir().unwrap();
    let layout = directory.path();
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let blob = |index: usize, bytes: &[u8]| {
        std::fs::write(layout.join("blobs/sha256").join(digest_name(index)), bytes).unwrap();
        format!("sha256:{}", digest_name(index))
    };
    let lower = blob(1, &gzip(&tar(LOWER)));
    let upper = blob(2, &tar(UPPER));
    let config = blob(3, CONFIG.as_bytes());
    let manifest = blob(
        4,
        format!(r#"{{"schemaVersion": 2, "config": {{"digest": "{config}"}}, "layers": [{{"digest": "{lower}"}}, {{"digest": "{upper}"}}]}}"#)
            .as_bytes(),
    );
    let index = format!(
        r#"{{"schemaVersion": 2, "manifests": [
            {{"digest": "sha256:{}", "platform": {{"architecture": "arm64", "os": "linux"}}}},
            {{"digest": "{manifest}", "platform": {{"architecture": "amd64", "os": "linux"}}}}]}}"#,
        digest_name(9)
    );
    std::fs::write(layout.join("index.json"), index).unwrap();
    check_tree(&read(layout).unwrap());
}

#[test]
fn a_docker_save_archive_is_read_from_its_manifest() {
    let config = CONFIG.replace(r#""config""#, r#""Config""#);
    let lower = gzip(&tar(LOWER));
    let upper = tar(UPPER);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    add("manifest.json", br#"[{"Config": "config.json", "Layers": ["one/layer.tar", "two/layer.tar"]}]"#);
    add("config.json", config.as_bytes());
    add("one/layer.tar", &lower);
    add("two/layer.tar", &upper);
    let archive = builder.into_inner().unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("saved.tar");
    std::fs::write(&path, &archive).unwrap();
    check_tree(&read(&path).unwrap());
    std::fs::write(&path, gzip(&archive)).unwrap();
    check_tree(&read(&path).unwrap());
}

#[test]
fn malformed_images_are_clear_errors() {
    let directory = tempfile::tempdir().unwrap();
    let empty = directory.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let error = read(&empty).unwrap_err().to_string();
    assert!(error.contains("neither an OCI image layout"), "{error}");

    let garbage = directory.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x5au8; 3000]).unwrap();
    let error = read(&garbage).unwrap_err().to_string();
    assert!(error.contains("not a tar archive"), "{error}");

    let layout = directory.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    std::fs::write(layout.join("index.json"), r#"{"manifests": [{"digest": "sha256:../../etc/passwd"}]}"#)
        .unwrap();
    let error = read(&layout).unwrap_err().to_string();
    assert!(error.contains("bad digest"), "{error}");
    std::fs::write(layout.join("index.json"), "{not json").unwrap();
    let error = read(&layout).unwrap_err().to_string();
    assert!(error.contains("index.json") && error.contains("not JSON"), "{error}");

    let saved = directory.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    std::fs::write(saved.join("manifest.json"), r#"[{"Config": "c.json", "Layers": ["missing.tar"]}]"#)
        .unwrap();
    let error = read(&saved).unwrap_err().to_string();
    assert!(error.contains("missing.tar"), "{error}");

    // An entry climbing out of the root.
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..9].copy_from_slice(b"../escape");
    header.set_size(1);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(b"x");
    bytes.resize(bytes.len() + 511 + 1024, 0);
    std::fs::write(saved.join("missing.tar"), bytes).unwrap();
    std::fs::write(saved.join("c.json"), "{}").unwrap();
    let error = read(&saved).unwrap_err().to_string();
    assert!(error.contains("outside the image's root"), "{error}");
    assert!(!directory.path().join("escape").exists());
}

#[test]
fn users_are_numbers_or_names_of_the_image() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir(directory.path().join("etc")).unwrap();
    std::fs::write(directory.path().join("etc/passwd"), "app:x:1000:1001::/:/bin/sh\n").unwrap();
    std::fs::write(directory.path().join("etc/group"), "staff:x:50:\n").unwrap();
    assert_eq!(resolve_user("app", directory.path()).unwrap(), (1000, 1001));
    assert_eq!(resolve_user("1000", directory.path()).unwrap(), (1000, 1001));
    assert_eq!(resolve_user("7:staff", directory.path()).unwrap(), (7, 50));
    assert_eq!(resolve_user("7", directory.path()).unwrap(), (7, 0));
    let error = resolve_user("nobody", directory.path()).unwrap_err().to_string();
    assert!(error.contains("nobody") && error.contains("/etc/passwd"), "{error}");
}

#[test]
fn programs_are_found_in_the_images_path() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("usr/bin")).unwrap();
    std::fs::write(directory.path().join("usr/bin/tool"), "").unwrap();
    assert_eq!(find_program(directory.path(), "tool", &[]).as_deref(), Some("/usr/bin/tool"));
    let path = [("PATH".to_string(), "/opt:/usr/bin/".to_string())];
    assert_eq!(find_program(directory.path(), "tool", &path).as_deref(), Some("/usr/bin/tool"));
    assert_eq!(find_program(directory.path(), "missing", &[]), None);
}
