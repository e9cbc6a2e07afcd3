//! Boot tests of namespaces: the C checks (`tests/guest/namespaces.c`) on
//! Linux and in rosv, and Debian's util-linux `unshare` making UTS, user
//! and mount namespaces. A program the host lacks is skipped, visibly.

mod guests;
mod support;

use std::path::Path;

use guests::Variant;
use support::{SHELL_MANIFEST, image, path, rosv_run, skip, text};

#[test]
fn namespace_checks_behave_like_linux() {
    for variant in [Variant::GlibcStatic, Variant::MuslStatic] {
        let program = guests::c_program("namespaces", variant);
        let host = std::process::Command::new(&program).output().expect("run the program on the host");
        let host_stdout = text(&host.stdout);
        assert!(
            host_stdout.contains("\n0 checks failed\n") || host_stdout.starts_with("SKIPPED"),
            "{variant:?} on Linux:\n{host_stdout}"
        );
        for cpus in ["1", "2"] {
            let output = rosv_run(&["--cpus", cpus, "--exec", path(&program)]);
            let stdout = text(&output.stdout);
            let console = format!("{stdout}{}", text(&output.stderr));
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{console}");
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}

/// Runs `script` with dash in an image holding util-linux, coreutils,
/// `hostname` and the `(path, package)` programs of `more`; its standard
/// output, or `None` (skipped) when the host lacks a program.
fn unshare_script(test: &str, script: &str, more: &[(&str, &str)]) -> Option<String> {
    let base = [("/usr/bin/dash", "dash"), ("/usr/bin/unshare", "util-linux"), ("/bin/hostname", "hostname")];
    for (host_path, package) in base.iter().chain(more) {
        if !Path::new(host_path).exists() {
            skip(test, &format!("{host_path} is missing (apt-get install {package})"));
            return None;
        }
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut manifest =
        format!("{SHELL_MANIFEST}/usr/bin/unshare: /usr/bin/unshare\n/bin/hostname: /bin/hostname\n");
    let mut packages = vec!["util-linux", "coreutils", "hostname"];
    for (host_path, package) in more {
        manifest.push_str(&format!("{host_path}: {host_path}\n"));
        packages.push(package);
    }
    let command = ["/bin/sh", "-c", script];
    let image = image(directory.path(), &manifest, &packages, &command);
    let output = rosv_run(&[path(&image)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    Some(stdout)
}

#[test]
fn unshare_gives_a_command_its_own_host_name() {
    let script = "hostname; unshare -u sh -c 'hostname inner; hostname'; hostname";
    let Some(stdout) = unshare_script("unshare_gives_a_command_its_own_host_name", script, &[]) else {
        return;
    };
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[1], "inner", "{stdout}");
    assert_eq!(lines[2], lines[0], "the outer name is unchanged:\n{stdout}");
}

#[test]
fn unshare_maps_the_caller_to_root_in_a_user_namespace() {
    let script = "unshare -r id -u; unshare -r cat /proc/self/uid_map; id -u";
    let Some(stdout) = unshare_script("unshare_maps_the_caller_to_root_in_a_user_namespace", script, &[])
    else {
        return;
    };
    let lines: Vec<Vec<&str>> = stdout.lines().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(lines, [vec!["0"], vec!["0", "0", "1"], vec!["0"]], "{stdout}");
}

#[test]
fn unshare_links_show_new_namespaces() {
    let script = "readlink /proc/self/ns/uts /proc/self/ns/mnt; \
                  unshare -u -m readlink /proc/self/ns/uts /proc/self/ns/mnt";
    let Some(stdout) = unshare_script("unshare_links_show_new_namespaces", script, &[]) else { return };
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "uts:[4026531838]", "{stdout}");
    assert!(lines[1].starts_with("mnt:[") && lines[3].starts_with("mnt:["), "{stdout}");
    assert!(lines[2].starts_with("uts:[") && lines[2] != lines[0], "{stdout}");
    assert_ne!(lines[3], lines[1], "{stdout}");
}

#[test]
fn unshare_gives_a_command_a_network_of_its_own() {
    let test = "unshare_gives_a_command_a_network_of_its_own";
    let script =
        "unshare -n sh -c 'ip -o link show lo; ip link set lo up; ip -o link show lo; ip -o link | wc -l'";
    let Some(stdout) = unshare_script(test, script, &[("/bin/ip", "iproute2")]) else { return };
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].contains("lo: <LOOPBACK>"), "the loop starts down:\n{stdout}");
    assert!(lines[1].contains("lo: <LOOPBACK,UP"), "then it is up:\n{stdout}");
    assert_eq!(lines[2].trim(), "1", "only the loop:\n{stdout}");
}

#[test]
fn unshare_keeps_a_mount_in_its_namespace() {
    let test = "unshare_keeps_a_mount_in_its_namespace";
    let script = "mkdir -p /tmp/inner; \
                  unshare -m sh -c 'mount -t tmpfs none /tmp/inner; grep -c \" /tmp/inner \" /proc/self/mounts'; \
                  grep -c \" /tmp/inner \" /proc/self/mounts; true";
    let Some(stdout) = unshare_script(test, script, &[("/bin/mount", "mount"), ("/bin/grep", "grep")]) else {
        return;
    };
    assert_eq!(stdout, "1\n0\n");
}
