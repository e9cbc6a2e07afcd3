//! Boot tests of dynamically linked programs: the C library's dynamic
//! linker runs in the VM, loading the libraries `rosv run --exec` packed
//! from the host. The same checking programs as for static ones (threads,
//! files, signals), linked against glibc's and musl's shared libraries, and
//! unmodified Debian binaries.

mod guests;
mod support;

use std::process::Command;

use guests::{DYNAMIC_VARIANTS, Variant};
use support::rosv_run;

#[test]
fn hello_runs_through_the_dynamic_linker() {
    for variant in DYNAMIC_VARIANTS {
        let program = guests::c_program("hello", variant);
        let path = program.to_str().expect("UTF-8 path");
        let output = rosv_run(&["--exec", path, "--", "one", "two"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Hello, world!") && stdout.contains("argv[2]=two"), "{variant:?}: {stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}

#[test]
fn checking_programs_pass_when_dynamically_linked() {
    for variant in DYNAMIC_VARIANTS {
        for (name, arguments) in [("threads", vec!["--", "2"]), ("files", vec![]), ("signals", vec![])] {
            let program = guests::c_program(name, variant);
            let path = program.to_str().expect("UTF-8 path");
            let mut all = vec!["--cpus", "2", "--exec", path];
            all.extend(arguments);
            let output = rosv_run(&all);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{name} ({variant:?}):\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{name} ({variant:?})");
        }
    }
}

#[test]
fn debian_binaries_run_unmodified() {
    let output = rosv_run(&["--exec", "/bin/true"]);
    assert_eq!(output.status.code(), Some(0));
    let output = rosv_run(&["--exec", "/bin/false"]);
    assert_eq!(output.status.code(), Some(1));
    let output = rosv_run(&["--exec", "/bin/echo", "--", "from", "debian"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("from debian\n"));
    assert_eq!(output.status.code(), Some(0));
    let output = rosv_run(&["--exec", "/usr/bin/sha256sum", "--", "/sha256sum"]);
    let expected = Command::new("sha256sum").arg("/usr/bin/sha256sum").output().expect("run sha256sum");
    let digest = String::from_utf8_lossy(&expected.stdout);
    let digest = digest.split_whitespace().next().expect("a digest");
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("{digest}  /sha256sum")));
}

#[test]
fn an_image_without_the_interpreter_is_a_clear_error() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let hello = guests::c_program("hello", Variant::GlibcDynamic);
    let manifest = directory.path().join("app.manifest");
    std::fs::write(&manifest, format!("/hello: {}\n", hello.display())).expect("write the manifest");
    let image = directory.path().join("image");
    let rosv = env!("CARGO_BIN_EXE_rosv");
    let built = Command::new(rosv)
        .args([
            "build",
            manifest.to_str().expect("UTF-8"),
            "-o",
            image.to_str().expect("UTF-8"),
            "--",
            "/hello",
        ])
        .output()
        .expect("run rosv build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let output = rosv_run(&[image.to_str().expect("UTF-8")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("/hello: its interpreter /lib64/ld-linux-x86-64.so.2 cannot be loaded"),
        "{stdout}"
    );
    assert_ne!(output.status.code(), Some(0));
}
