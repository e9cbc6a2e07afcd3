use proptest::prelude::*;

use super::*;

fn entry(line: usize, guest_path: &str, source: Source) -> Entry {
    Entry { line, guest_path: guest_path.to_string(), source }
}

fn host(path: &str) -> Source {
    Source::Host(path.to_string())
}

#[test]
fn reads_files_trees_and_symlinks() {
    let text = "\
[manifest]
# busybox and its links
/bin/busybox: /usr/bin/busybox
/bin/sh: ->busybox

/data/**: tree/**
  /etc/motd :  files/motd.txt  
; an INI-style comment
/usr/lib/&/libz.so: build/&
/**: root/**
";
    assert_eq!(
        parse(text).unwrap(),
        [
            entry(3, "/bin/busybox", host("/usr/bin/busybox")),
            entry(4, "/bin/sh", Source::Symlink("busybox".into())),
            entry(6, "/data", Source::Tree("tree".into())),
            entry(7, "/etc/motd", host("files/motd.txt")),
            entry(9, "/usr/lib/libz.so", host("build/libz.so")),
            entry(10, "/", Source::Tree("root".into())),
        ]
    );
}

#[test]
fn normalizes_guest_paths_and_tree_roots() {
    let entries = parse("//a//b/: x\n/c/**: **\n/d/**: /**\n/e: -> /abs/target \n").unwrap();
    assert_eq!(entries[0].guest_path, "/a/b");
    assert_eq!(entries[1].source, Source::Tree(".".into()));
    assert_eq!(entries[2].source, Source::Tree("/".into()));
    assert_eq!(entries[3].source, Source::Symlink("/abs/target".into()));
}

#[test]
fn crlf_line_ends_are_accepted() {
    assert_eq!(parse("/a: b\r\n/c: d\r\n").unwrap().len(), 2);
}

#[test]
fn errors_name_the_line_and_say_what_to_write() {
    let cases: [(&str, ManifestError); 10] = [
        ("\n/a b c\n", ManifestError::Syntax { line: 2, text: "/a b c".into() }),
        (": host\n", ManifestError::Syntax { line: 1, text: ": host".into() }),
        ("/a: x\n[other]\n", ManifestError::Section { line: 2, name: "other".into() }),
        ("bin/x: x\n", ManifestError::RelativeGuestPath { line: 1, path: "bin/x".into() }),
        ("/x/**: dir\n", ManifestError::UnpairedTree { line: 1 }),
        ("/x: dir/**\n", ManifestError::UnpairedTree { line: 1 }),
        ("/x:\n", ManifestError::MissingHostPath { line: 1, path: "/x".into() }),
        ("/x: %(libdir)s/x\n", ManifestError::Variable { line: 1 }),
        ("/x: ->\n", ManifestError::Syntax { line: 1, text: "/x: ->".into() }),
        (
            "/a/b: one\n# again\n/a//b: two\n",
            ManifestError::Duplicate { line: 3, first: 1, path: "/a/b".into() },
        ),
    ];
    for (text, expected) in cases {
        let error = parse(text).unwrap_err();
        assert_eq!(error, expected, "{text:?}");
        let message = error.to_string();
        assert!(message.starts_with("line "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn guest_paths_that_cannot_be_stored_are_refused() {
    for (text, reason) in [
        ("/a/../b: x", "`..`"),
        ("/./b: x", "`.`"),
        ("/a/*.so: x", "wildcard"),
        ("/a/**/b: x", "wildcard"),
        ("/a\0b: x", "NUL"),
    ] {
        let message = parse(text).unwrap_err().to_string();
        assert!(message.starts_with("line 1: the guest path"), "{message}");
        assert!(message.contains(reason), "{text:?}: {message}");
    }
    let long = format!("/{}: x", "n".repeat(70_000));
    assert!(parse(&long).unwrap_err().to_string().contains("65535"));
    let symlink_tree = parse("/a/**: ->b").unwrap_err();
    assert!(matches!(symlink_tree, ManifestError::Syntax { line: 1, .. }));
}

fn component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,8}".prop_filter("a storable name", |name| name != "." && name != "..")
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        "[a-z0-9_/.-]{1,16}"
            .prop_filter("not a tree or symlink", |path| !path.ends_with("/**"))
            .prop_map(Source::Host),
        "[a-z0-9_][a-z0-9_/-]{0,12}".prop_map(Source::Tree),
        "[a-z0-9_/.][a-z0-9_/. -]{0,12}[a-z0-9_]".prop_map(Source::Symlink),
    ]
}

/// A manifest line for `guest_path` and `source`.
fn render(guest_path: &str, source: &Source) -> String {
    match source {
        Source::Host(path) => format!("{guest_path}: {path}"),
        Source::Tree(directory) => format!("{}/**: {directory}/**", guest_path.trim_end_matches('/')),
        Source::Symlink(target) => format!("{guest_path}: ->{target}"),
    }
}

proptest! {
    #[test]
    fn rendered_entries_parse_back(
        entries in proptest::collection::btree_map(proptest::collection::vec(component(), 1..4), source(), 0..12)
    ) {
        let mut text = String::from("[manifest]\n");
        let mut expected = Vec::new();
        for (index, (components, source)) in entries.iter().enumerate() {
            let guest_path = format!("/{}", components.join("/"));
            text.push_str(&render(&guest_path, source));
            text.push_str(if index % 2 == 0 { "\n# comment\n" } else { "\n" });
            expected.push((guest_path, source.clone()));
        }
        let parsed = parse(&text).unwrap();
        let found: Vec<(String, Source)> =
            parsed.into_iter().map(|entry| (entry.guest_path, entry.source)).collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn any_text_is_an_error_or_entries_never_a_panic(text in "\\PC{0,200}") {
        if let Ok(entries) = parse(&text) {
            for entry in entries {
                prop_assert!(entry.guest_path.starts_with('/'));
                prop_assert!(!entry.guest_path.split('/').any(|part| part == ".." || part == "."));
            }
        }
    }

    #[test]
    fn lines_made_of_manifest_characters_never_panic(text in "[/a:*&>#\\[\\] \n.-]{0,80}") {
        let _ = parse(&text);
    }
}
