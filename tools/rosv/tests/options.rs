//! What `rosv` refuses, and how: each error once, with its cause and what
//! to do, before any VM boots.

mod support;

use support::{rosv, text};

/// Runs `rosv` with `arguments` and returns its status and standard error.
fn refused(arguments: &[&str]) -> (Option<i32>, String) {
    let output = rosv(arguments);
    assert_eq!(text(&output.stdout), "", "nothing on standard output");
    (output.status.code(), text(&output.stderr))
}

#[test]
fn a_missing_program_is_named_once_with_its_cause() {
    let (status, stderr) = refused(&["run", "--exec", "/nonexistent"]);
    assert_eq!(status, Some(125));
    assert_eq!(stderr, "rosv: cannot read /nonexistent: No such file or directory (os error 2)\n");
    let (status, stderr) = refused(&["build", "/nonexistent.manifest", "-o", "/tmp/never"]);
    assert_eq!(status, Some(125));
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
}

#[test]
fn values_rosv_cannot_use_are_refused_with_the_reason() {
    let (status, stderr) = refused(&["run", "--memory", "3", "--exec", "/bin/true"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("the kernel needs at least 4 MiB"), "{stderr}");
    let (status, stderr) = refused(&["run", "--timeout", "0", "--exec", "/bin/true"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("give at least 1, or leave --timeout out"), "{stderr}");
    let (status, stderr) = refused(&["run", "-v", "/nonexistent.ext4:/srv", "--exec", "/bin/true"]);
    assert_eq!(status, Some(125));
    assert!(stderr.contains("--volume /nonexistent.ext4: no such file"), "{stderr}");
    let (status, stderr) = refused(&["run", "-v", "/bin/true:/srv", "--exec", "/bin/true"]);
    assert_eq!(status, Some(125));
    assert!(stderr.contains("not an ext4 filesystem; make one with rosv volume create"), "{stderr}");
    let (status, stderr) = refused(&["run", "-v", "data.ext4:srv", "--exec", "/bin/true"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("give the guest path as an absolute path"), "{stderr}");
    let (status, stderr) = refused(&["run", "-w", "relative", "--exec", "/bin/true"]);
    assert_eq!(status, Some(125));
    assert!(stderr.contains("give the working directory as an absolute path"), "{stderr}");
    let (status, stderr) = refused(&["run", "-d", "-t", "--exec", "/bin/true"]);
    assert_eq!(status, Some(125));
    assert!(stderr.contains("-d and -t do not mix"), "{stderr}");
}

#[test]
fn a_terminal_needs_one() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["run", "-t", "--exec", "/bin/true"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rosv");
    assert_eq!(output.status.code(), Some(125));
    assert!(
        text(&output.stderr)
            .contains("-t gives the program a terminal, but rosv's standard input is not one")
    );
}

#[test]
fn an_empty_directory_is_no_image() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let empty = directory.path().join("empty");
    std::fs::create_dir(&empty).expect("create a directory");
    let image = directory.path().join("image");
    let (status, stderr) = refused(&["build", support::path(&empty), "-o", support::path(&image)]);
    assert_eq!(status, Some(125));
    assert!(stderr.contains("is empty: put the application's files in it"), "{stderr}");
    assert!(!image.exists(), "no image was written");
}
