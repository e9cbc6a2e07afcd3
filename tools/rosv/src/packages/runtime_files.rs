//! Run-time files dpkg does not list, or that only some programs need:
//! glibc's iconv modules (`gconv`) when a program calls `iconv_open`, the
//! C.UTF-8 locale when it calls `setlocale`, the zone files when a package
//! depends on tzdata, the terminal descriptions (ncurses-base, an essential
//! package nothing depends on by name) when a terminal library is taken,
//! the CA certificates bundle (which `update-ca-certificates` writes)
//! when TLS libraries are taken, and the service and protocol names
//! (netbase, which nothing depends on) when a program looks names up.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use object::{Object, ObjectSymbol};
use rosv_rofs::writer::{Directory, Node};

use super::{Addition, host_node, is_excluded, lookup};

/// Where glibc looks for its iconv modules.
const GCONV: &str = "/usr/lib/x86_64-linux-gnu/gconv";
/// The C.UTF-8 locale, which glibc ships compiled.
const C_UTF8_LOCALE: &str = "/usr/lib/locale/C.utf8";
/// Service names and their ports, and protocol names (netbase).
const SERVICES: &str = "/etc/services";
const PROTOCOLS: &str = "/etc/protocols";
/// The zone files.
const ZONEINFO: &str = "/usr/share/zoneinfo";
/// Where ncurses looks for terminal descriptions (`dumb`, `linux`,
/// `xterm`, ...), besides `$TERMINFO` and `~/.terminfo`.
const TERMINFO: [&str; 3] = ["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo"];
/// The bundle of CA certificates OpenSSL, GnuTLS and others read.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The Java keystore of the same certificates.
const JAVA_CA_STORE: &str = "/etc/ssl/certs/java/cacerts";

/// Adds what the programs and libraries in `root` and the `chosen`
/// packages call for; returns what each group added.
pub fn add(root: &mut Directory, chosen: &BTreeSet<&str>, excludes: &[String]) -> Vec<Addition> {
    let imports = imported(root, &["iconv_open", "setlocale", "newlocale", "getaddrinfo", "getservbyname"]);
    let mut additions = Vec::new();
    let mut group = |root: &mut Directory, name: &str, reason: &str, sources: &[(&str, Source)]| {
        let mut addition = Addition { name: name.into(), reason: reason.into(), files: 0, size_bytes: 0 };
        for (guest, source) in sources {
            match source {
                Source::Tree { skipped } => {
                    graft(root, Path::new(guest), guest, excludes, skipped, &mut addition)
                }
                Source::File => add_node(root, guest, host_node(&real_path(guest)), excludes, &mut addition),
                Source::Link(target) => add_node(
                    root,
                    guest,
                    Some((Node::Symlink(target.to_string()), 0)),
                    excludes,
                    &mut addition,
                ),
            }
        }
        if addition.files > 0 {
            additions.push(addition);
        }
    };
    if imports.contains("iconv_open") {
        group(root, "gconv modules", "uses iconv", &[(GCONV, Source::Tree { skipped: &[] })]);
    }
    if imports.contains("setlocale") || imports.contains("newlocale") {
        group(root, "C.UTF-8 locale", "uses locales", &[(C_UTF8_LOCALE, Source::Tree { skipped: &[] })]);
    }
    if imports.contains("getaddrinfo") || imports.contains("getservbyname") {
        // getaddrinfo(host, "http") and getservbyname read the port of a
        // service by name from /etc/services (EAI_SERVICE without it).
        group(
            root,
            "network names",
            "looks up services",
            &[(SERVICES, Source::File), (PROTOCOLS, Source::File)],
        );
    }
    if chosen.contains("tzdata") {
        // right/ holds the same zones counting leap seconds, which no
        // program here asks for.
        group(root, "zoneinfo", "tzdata is needed", &[(ZONEINFO, Source::Tree { skipped: &["right"] })]);
    }
    if chosen.iter().any(|name| name.starts_with("libtinfo") || name.starts_with("libncurses")) {
        // top, less, vim, bash's readline... call setupterm, which fails
        // (top: exits) without the description of the terminal named.
        let sources = TERMINFO.map(|path| (path, Source::Tree { skipped: &[] }));
        group(root, "terminfo", "uses a terminal library", &sources);
    }
    let uses_tls = chosen.iter().any(|name| {
        *name == "ca-certificates"
            || name.starts_with("libssl")
            || name.starts_with("libgnutls")
            || *name == "libnss3"
    });
    if uses_tls {
        group(
            root,
            "CA certificates",
            "TLS",
            &[
                (CA_BUNDLE, Source::File),
                ("/usr/lib/ssl/cert.pem", Source::Link(CA_BUNDLE)),
                ("/usr/lib/ssl/certs", Source::Link("/etc/ssl/certs")),
            ],
        );
    }
    if chosen.contains("ca-certificates-java") {
        group(root, "Java CA keystore", "TLS in Java", &[(JAVA_CA_STORE, Source::File)]);
    }
    additions
}

/// Where a group's file comes from.
enum Source {
    /// The host directory of the same path, but for some top-level names.
    Tree { skipped: &'static [&'static str] },
    /// The host file of the same path, read through links.
    File,
    /// A symlink to this target.
    Link(&'static str),
}

/// The host path a file is read from: the path itself, or where a link
/// leads (the bundle is a file, the keystore often a link).
fn real_path(path: &str) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.into())
}

fn add_node(
    root: &mut Directory,
    guest: &str,
    node: Option<(Node, u64)>,
    excludes: &[String],
    addition: &mut Addition,
) {
    let Some((node, size_bytes)) = node else {
        return;
    };
    if is_excluded(excludes, guest) || lookup(root, guest).is_some() {
        return;
    }
    if root.insert(guest, node).is_ok() {
        addition.files += 1;
        addition.size_bytes += size_bytes;
    }
}

/// Adds the files and links below host directory `host` at `guest`, but
/// for the top-level names in `skipped`.
fn graft(
    root: &mut Directory,
    host: &Path,
    guest: &str,
    excludes: &[String],
    skipped: &[&str],
    addition: &mut Addition,
) {
    let Ok(entries) = std::fs::read_dir(host) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if skipped.contains(&name.as_str()) {
            continue;
        }
        let child_guest = format!("{guest}/{name}");
        let path = entry.path();
        match entry.file_type() {
            Ok(file_type) if file_type.is_dir() => graft(root, &path, &child_guest, excludes, &[], addition),
            Ok(_) => add_node(root, &child_guest, host_node(&path), excludes, addition),
            Err(_) => {}
        }
    }
}

/// Which of `wanted` the ELF files of `root` import from a library.
fn imported(root: &Directory, wanted: &[&str]) -> BTreeSet<String> {
    let mut paths = Vec::new();
    super::collect_host_files(root, &mut paths);
    let mut found = BTreeSet::new();
    for path in paths {
        if found.len() == wanted.len() {
            break;
        }
        let mut magic = [0u8; 4];
        let is_elf = std::fs::File::open(&path).and_then(|mut file| file.read_exact(&mut magic)).is_ok()
            && magic == *b"\x7fELF";
        let Some(bytes) = is_elf.then(|| std::fs::read(&path).ok()).flatten() else {
            continue;
        };
        let Ok(file) = object::File::parse(&*bytes) else {
            continue;
        };
        for symbol in file.dynamic_symbols() {
            if symbol.is_undefined()
                && let Ok(name) = symbol.name()
                && wanted.contains(&name)
            {
                found.insert(name.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosv_rofs::writer::Contents;

    #[test]
    fn imports_are_read_from_dynamic_symbols() {
        let mut root = Directory::default();
        // The test binary is linked against the C library's malloc.
        let this = std::env::current_exe().unwrap();
        root.insert("/test", Node::File(Contents::HostFile(this))).unwrap();
        root.insert("/text", Node::File(Contents::Bytes(b"not elf".to_vec()))).unwrap();
        let found = imported(&root, &["malloc", "no_such_symbol_anywhere"]);
        assert_eq!(found, BTreeSet::from(["malloc".to_string()]));
    }

    #[test]
    fn groups_are_added_only_when_called_for_and_not_excluded() {
        let mut root = Directory::default();
        assert!(add(&mut root, &BTreeSet::new(), &[]).is_empty(), "nothing imports or needs anything");
        if Path::new(ZONEINFO).join("Europe").is_dir() {
            let excludes = vec!["/usr/share/zoneinfo/Europe".to_string()];
            let additions = add(&mut root, &BTreeSet::from(["tzdata"]), &excludes);
            assert_eq!(additions.len(), 1);
            assert_eq!(additions[0].name, "zoneinfo");
            assert!(lookup(&root, "/usr/share/zoneinfo/America").is_some());
            assert!(lookup(&root, "/usr/share/zoneinfo/Europe").is_none());
            assert!(lookup(&root, "/usr/share/zoneinfo/right").is_none());
        }
        if Path::new("/lib/terminfo/d/dumb").is_file() {
            let additions = add(&mut root, &BTreeSet::from(["libtinfo6"]), &[]);
            assert_eq!(additions.len(), 1);
            assert_eq!(additions[0].name, "terminfo");
            assert!(lookup(&root, "/lib/terminfo/d/dumb").is_some());
        }
    }
}
