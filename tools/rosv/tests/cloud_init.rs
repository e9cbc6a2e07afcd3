//! cloud-init's NoCloud data source: a `cidata` disk written by
//! genisoimage (as cloud-localds does), or a vfat one, sets the host name
//! and the application's environment, writes files and runs commands
//! before the application.

mod support;

use std::path::Path;
use std::process::Command;

use support::{path, rosv_run, skip, text};

/// Writes a `cidata` ISO9660 disk holding `meta_data` and `user_data` in
/// `directory`; `None` after saying why when genisoimage is missing.
fn cidata_disk(test: &str, directory: &Path, meta_data: &str, user_data: &str) -> Option<std::path::PathBuf> {
    std::fs::write(directory.join("meta-data"), meta_data).expect("write meta-data");
    std::fs::write(directory.join("user-data"), user_data).expect("write user-data");
    let disk = directory.join("seed.iso");
    let made = Command::new("genisoimage")
        .args([
            "-quiet",
            "-output",
            path(&disk),
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            "user-data",
            "meta-data",
        ])
        .current_dir(directory)
        .status();
    if !made.is_ok_and(|status| status.success()) {
        skip(test, "genisoimage is missing or failed (apt-get install genisoimage)");
        return None;
    }
    Some(disk)
}

#[test]
fn a_cidata_disk_configures_the_application() {
    let test = "a_cidata_disk_configures_the_application";
    if !Path::new("/bin/busybox").is_file() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let user_data = "#cloud-config\n\
                     hostname: appliance\n\
                     environment:\n  GREETING: hello from cidata\n\
                     write_files:\n\
                     - path: /tmp/config/app.conf\n  content: |\n    written before the application\n  permissions: '0600'\n\
                     runcmd:\n  - [/bin/busybox, echo, ran first]\n";
    let Some(disk) =
        cidata_disk(test, directory.path(), "instance-id: one\nlocal-hostname: from-meta\n", user_data)
    else {
        return;
    };
    let script = "echo \"$GREETING\"; cat /tmp/config/app.conf; hostname; stat -c %a /tmp/config/app.conf";
    let output = rosv_run(&["--disk", path(&disk), "--exec", "/bin/busybox", "--", "sh", "-c", script]);
    assert_eq!(
        text(&output.stdout),
        "ran first\nhello from cidata\nwritten before the application\nappliance\n600\n",
        "{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn unreadable_user_data_is_reported_and_skipped() {
    let test = "unreadable_user_data_is_reported_and_skipped";
    if !Path::new("/bin/busybox").is_file() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let Some(disk) = cidata_disk(test, directory.path(), "local-hostname: x\n", "#!/bin/sh\necho a script\n")
    else {
        return;
    };
    let output = rosv_run(&["--disk", path(&disk), "--exec", "/bin/busybox", "--", "hostname"]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cidata disk cannot be read") && stderr.contains("#cloud-config"), "{stderr}");
    assert_ne!(text(&output.stdout), "x\n", "nothing of the disk is applied");
    assert_eq!(output.status.code(), Some(0));
}

/// Writes a `cidata` vfat disk holding `meta_data` and `user_data` in
/// `directory`, as `cloud-localds --filesystem=vfat` does (mkfs.vfat, then
/// mcopy); `None` after saying why when dosfstools or mtools is missing.
fn vfat_cidata_disk(
    test: &str,
    directory: &Path,
    meta_data: &str,
    user_data: &str,
) -> Option<std::path::PathBuf> {
    let disk = directory.join("seed.img");
    let made = Command::new("mkfs.vfat").args(["-C", "-n", "CIDATA"]).arg(&disk).arg("2048").output();
    if !made.is_ok_and(|output| output.status.success()) {
        skip(test, "mkfs.vfat is missing or failed (apt-get install dosfstools)");
        return None;
    }
    for (name, contents) in [("meta-data", meta_data), ("user-data", user_data)] {
        std::fs::write(directory.join(name), contents).expect("write a settings file");
        let copied = Command::new("mcopy")
            .arg("-i")
            .arg(&disk)
            .arg(directory.join(name))
            .arg(format!("::{name}"))
            .env("MTOOLS_SKIP_CHECK", "1")
            .status();
        if !copied.is_ok_and(|status| status.success()) {
            skip(test, "mcopy is missing or failed (apt-get install mtools)");
            return None;
        }
    }
    Some(disk)
}

#[test]
fn a_vfat_cidata_disk_sets_the_host_name_and_environment() {
    let test = "a_vfat_cidata_disk_sets_the_host_name_and_environment";
    if !Path::new("/bin/busybox").is_file() {
        skip(test, "/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let user_data = "#cloud-config\nenvironment:\n  FROM: a vfat disk\n";
    let Some(disk) = vfat_cidata_disk(test, directory.path(), "local-hostname: vfat-host\n", user_data)
    else {
        return;
    };
    let output = rosv_run(&[
        "--disk",
        path(&disk),
        "--exec",
        "/bin/busybox",
        "--",
        "sh",
        "-c",
        "hostname; echo \"$FROM\"",
    ]);
    assert_eq!(text(&output.stdout), "vfat-host\na vfat disk\n", "{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}
