//! Container images built here by Debian's umoci, from a local root tree,
//! run as rosv images: layers with a whiteout, and the config's
//! Entrypoint, Cmd, Env, WorkingDir and User; the same image saved by
//! skopeo as a docker archive and an OCI archive.

mod support;

use std::path::Path;
use std::process::Command;

use support::{path, rosv, rosv_run, skip, text};

/// Runs umoci with `arguments` in `directory`; false after saying why.
fn umoci(test: &str, directory: &Path, arguments: &[&str]) -> bool {
    match Command::new("umoci").args(arguments).current_dir(directory).output() {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            skip(test, &format!("umoci {arguments:?} failed: {}", text(&output.stderr).trim()));
            false
        }
        Err(error) => {
            skip(test, &format!("umoci cannot run ({error}); apt-get install umoci"));
            false
        }
    }
}

#[test]
fn an_oci_image_runs_with_its_config_and_whiteouts() {
    let test = "an_oci_image_runs_with_its_config_and_whiteouts";
    if !Path::new("/bin/busybox").is_file() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let work = directory.path();
    if !umoci(test, work, &["init", "--layout", "layout"])
        || !umoci(test, work, &["new", "--image", "layout:app"])
    {
        return;
    }
    // The first layer: busybox and two files.
    assert!(umoci(test, work, &["unpack", "--image", "layout:app", "lower"]));
    let rootfs = work.join("lower/rootfs");
    for directory in ["bin", "data", "srv"] {
        std::fs::create_dir_all(rootfs.join(directory)).expect("create a directory");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
    std::fs::write(rootfs.join("data/kept"), "kept from the lower layer\n").expect("write");
    std::fs::write(rootfs.join("data/removed"), "removed by the upper layer\n").expect("write");
    assert!(umoci(test, work, &["repack", "--image", "layout:app", "lower"]));
    // The second layer removes a file: umoci writes a whiteout for it.
    assert!(umoci(test, work, &["unpack", "--image", "layout:app", "upper"]));
    std::fs::remove_file(work.join("upper/rootfs/data/removed")).expect("remove");
    assert!(umoci(test, work, &["repack", "--image", "layout:app", "upper"]));
    let script = "echo \"$GREETING in $(pwd) as $(id -u):$(id -g)\"; cat /data/kept; ls /data";
    assert!(umoci(
        test,
        work,
        &[
            "config",
            "--image",
            "layout:app",
            "--config.entrypoint",
            "busybox",
            "--config.entrypoint",
            "sh",
            "--config.entrypoint",
            "-c",
            "--config.cmd",
            script,
            "--config.env",
            "GREETING=hello",
            "--config.env",
            "PATH=/bin",
            "--config.workingdir",
            "/srv",
            "--config.user",
            "1000:1000",
        ]
    ));
    let layout = work.join("layout");
    let image = work.join("image");
    let built = rosv(&["build", "--oci", path(&layout), "-o", path(&image)]);
    assert!(built.status.success());
    let output = rosv_run(&[path(&image)]);
    let stdout = text(&output.stdout);
    assert_eq!(
        stdout,
        "hello in /srv as 1000:1000\nkept from the lower layer\nkept\n",
        "{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));

    // The same image as a docker save archive and as an OCI archive (a
    // tar of the layout), both written by skopeo from the local layout.
    let expected = "hello in /srv as 1000:1000\nkept from the lower layer\nkept\n";
    for (transport, file) in [("docker-archive", "saved.tar"), ("oci-archive", "layout.tar")] {
        let archive = work.join(file);
        let destination = format!("{transport}:{}:app", archive.display());
        let source = format!("oci:{}:app", layout.display());
        match Command::new("skopeo").args(["copy", "--quiet", &source, &destination]).output() {
            Ok(copied) if copied.status.success() => {
                let output = rosv_run(&["--oci", path(&archive)]);
                assert_eq!(text(&output.stdout), expected, "{transport}: {}", text(&output.stderr));
                assert_eq!(output.status.code(), Some(0));
            }
            Ok(copied) => {
                skip(test, &format!("skopeo cannot write {transport}: {}", text(&copied.stderr).trim()))
            }
            Err(_) => {
                skip(test, &format!("skopeo is missing for the {transport} case (apt-get install skopeo)"))
            }
        }
    }

    // Words after -- replace Cmd but not Entrypoint; -w and -u override
    // the image's.
    let output = rosv_run(&[
        "-w",
        "/data",
        "-u",
        "0:0",
        "--oci",
        path(&layout),
        "--",
        "echo $GREETING in $(pwd) as $(id -u)",
    ]);
    assert_eq!(text(&output.stdout), "hello in /data as 0\n", "{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}
