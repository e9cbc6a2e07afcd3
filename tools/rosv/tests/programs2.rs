//! Unmodified Debian programs used as their users use them, each checked
//! against what it prints on Linux: bash's process substitution and
//! `/dev/stdin` in pipelines (descriptors opened again through
//! `/proc/self/fd`), a shell brought by `--package`, top and lscpu. Each
//! is skipped, visibly, when the host lacks its package.

mod support;

use std::path::Path;

use support::{rosv_run, skip, text};

/// Whether each of `paths` exists on the host; says which is missing
/// (and which package brings it) otherwise.
fn available(test: &str, paths: &[(&str, &str)]) -> bool {
    for (host_path, package) in paths {
        if !Path::new(host_path).exists() {
            skip(test, &format!("{host_path} is missing (apt-get install {package})"));
            return false;
        }
    }
    true
}

#[test]
fn bash_substitutes_processes_and_reads_dev_stdin() {
    let test = "bash_substitutes_processes_and_reads_dev_stdin";
    if !available(
        test,
        &[("/usr/bin/bash", "bash"), ("/usr/bin/diff", "diffutils"), ("/usr/bin/dash", "dash")],
    ) {
        return;
    }
    // `<(...)` is `/dev/fd/63`, a pipe whose writer may be gone before
    // diff opens it; `/dev/stdin` and a here-document on descriptor 7 are
    // pipes too. nohup finds `sh` because `--package dash` brings the
    // whole package, `/bin/sh` included.
    let script = r#"
diff <(seq 3) <(printf '1\n2\n3\n') && echo procsub-same
while read line; do echo "got $line"; done < <(printf 'a\nb\n')
echo piped | cat /dev/stdin
echo piped-again | head -c 6 /proc/self/fd/0; echo
cat /dev/fd/7 7<<END
heredoc
END
nohup sh -c 'echo nohupped'
exit 7
"#;
    let output = rosv_run(&[
        "--exec",
        "/usr/bin/bash",
        "--package",
        "coreutils",
        "--package",
        "diffutils",
        "--package",
        "dash",
        "--",
        "-c",
        script,
    ]);
    // What bash prints on Linux.
    let expected = "procsub-same\ngot a\ngot b\npiped\npiped-\nheredoc\nnohupped\n";
    assert_eq!(text(&output.stdout), expected, "stderr:\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(7));
}

#[test]
fn top_prints_its_batch_summary() {
    let test = "top_prints_its_batch_summary";
    if !available(test, &[("/usr/bin/top", "procps")]) {
        return;
    }
    // top reads /proc/self/stat by position and, in batch mode, the
    // `dumb` terminal's description (it exits with status 1 without it).
    let output = rosv_run(&["--exec", "/usr/bin/top", "--", "-bn1"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    assert!(stdout.starts_with("top - "), "{stdout}");
    assert!(stdout.contains("Tasks:   1 total,   1 running"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.ends_with(" top") && line.trim_start().starts_with("1 ")),
        "{stdout}"
    );
}

#[test]
fn lscpu_counts_sockets_cores_and_caches() {
    let test = "lscpu_counts_sockets_cores_and_caches";
    if !available(test, &[("/usr/bin/lscpu", "util-linux")]) {
        return;
    }
    // lscpu reads each processor's topology in sysfs and the caches'
    // directories; without them it counted 0 sockets.
    let output = rosv_run(&["--cpus", "2", "--exec", "/usr/bin/lscpu"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    let field = |name: &str| {
        stdout.lines().find_map(|line| line.strip_prefix(name).map(|value| value.trim().to_string()))
    };
    assert_eq!(field("CPU(s):").as_deref(), Some("2"), "{stdout}");
    assert_eq!(field("Socket(s):").as_deref(), Some("1"), "{stdout}");
    assert_eq!(field("Core(s) per socket:").as_deref(), Some("2"), "{stdout}");
    assert_eq!(field("Thread(s) per core:").as_deref(), Some("1"), "{stdout}");
    assert_eq!(field("NUMA node(s):").as_deref(), Some("1"), "{stdout}");
    assert!(field("Model name:").is_some_and(|name| !name.is_empty() && name != "-"), "{stdout}");
}
