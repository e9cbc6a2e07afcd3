//! Boot tests of databases that live on shared file mappings: Debian's
//! sqlite3 in WAL mode with two connections (its `-shm` file is shared
//! through `MAP_SHARED`), and LMDB's tools, whose database is one mapped
//! file. Each compares what rosv prints with what the host prints, and is
//! skipped, visibly, where the program is not installed.

mod support;

use std::path::Path;

use support::{path, rosv, rosv_run, skip, text};

/// A tree with `programs` (host paths, placed at the same paths) and
/// `files` (guest path, contents).
fn tree(directory: &Path, programs: &[&str], files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let root = directory.join("tree");
    for program in programs {
        let target = root.join(program.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create the tree");
        std::fs::copy(program, &target).expect("copy the program");
    }
    for (name, contents) in files {
        std::fs::write(root.join(name), contents).expect("write a file");
    }
    root
}

#[test]
fn sqlite_in_wal_mode_shares_its_database_between_two_connections() {
    let test = "sqlite_in_wal_mode_shares_its_database_between_two_connections";
    if !Path::new("/usr/bin/sqlite3").is_file() {
        skip(test, "sqlite3 is not installed (apt-get install sqlite3)");
        return;
    }
    let script = |database: &str| {
        format!(
            ".open {database}\n\
             PRAGMA journal_mode=WAL;\n\
             CREATE TABLE t(x INTEGER, y TEXT);\n\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)\n\
             INSERT INTO t SELECT i, 'row ' || i FROM n;\n\
             .connection 1\n\
             .open {database}\n\
             SELECT count(*), sum(x) FROM t;\n\
             INSERT INTO t VALUES (10001, 'from the second connection');\n\
             .connection 0\n\
             SELECT count(*), sum(x), max(y) FROM t;\n\
             PRAGMA journal_mode;\n"
        )
    };
    let directory = tempfile::tempdir().expect("a temporary directory");
    let host_script = directory.path().join("host.sql");
    let host_database = directory.path().join("host.db");
    std::fs::write(&host_script, script(path(&host_database))).expect("write the script");
    let host = std::process::Command::new("/usr/bin/sqlite3")
        .args(["-init", "/dev/null", ":memory:"])
        .arg(format!(".read {}", path(&host_script)))
        .output()
        .expect("run sqlite3 on the host");
    assert!(host.status.success());
    let expected = text(&host.stdout);
    assert!(expected.contains("10001|50015001|row 9999"), "{expected}");

    let guest_script = script("/tmp/test.db");
    let root = tree(directory.path(), &["/usr/bin/sqlite3"], &[("wal.sql", guest_script.as_bytes())]);
    let image = directory.path().join("image");
    let built = rosv(&[
        "build",
        path(&root),
        "-o",
        path(&image),
        "--",
        "/usr/bin/sqlite3",
        "-init",
        "/dev/null",
        ":memory:",
        ".read /wal.sql",
    ]);
    assert!(built.status.success());
    for cpus in ["1", "2"] {
        let output = rosv_run(&["--cpus", cpus, path(&image)]);
        assert_eq!(text(&output.stdout), expected, "on {cpus} CPUs");
        assert_eq!(output.status.code(), Some(0), "on {cpus} CPUs");
    }
}

#[test]
fn lmdb_round_trips_a_database_on_ramfs() {
    let test = "lmdb_round_trips_a_database_on_ramfs";
    let tools = ["/usr/bin/mdb_load", "/usr/bin/mdb_dump", "/usr/bin/mdb_stat"];
    if tools.iter().any(|tool| !Path::new(tool).is_file()) {
        skip(test, "LMDB's tools are not installed (apt-get install lmdb-utils)");
        return;
    }
    let mut input = String::from("VERSION=3\nformat=print\ntype=btree\nmapsize=16777216\nHEADER=END\n");
    for index in 0..2000 {
        input.push_str(&format!(" key{index:05}\n value {} {}\n", index * index, "x".repeat(index % 50)));
    }
    input.push_str("DATA=END\n");
    let directory = tempfile::tempdir().expect("a temporary directory");
    let host_input = directory.path().join("input.txt");
    std::fs::write(&host_input, &input).expect("write the input");
    let host_database = directory.path().join("host.mdb");
    let loaded = std::process::Command::new(tools[0])
        .args(["-n", "-f", path(&host_input), path(&host_database)])
        .status()
        .expect("run mdb_load on the host");
    assert!(loaded.success());
    let dumped = std::process::Command::new(tools[1])
        .args(["-n", path(&host_database)])
        .output()
        .expect("run mdb_dump");
    assert!(dumped.status.success());
    let expected = text(&dumped.stdout);

    let root = tree(directory.path(), &tools, &[("input.txt", input.as_bytes())]);
    let image = directory.path().join("image");
    // Commands separated by `;` run one after another over the same /tmp.
    let built = rosv(&[
        "build",
        path(&root),
        "-o",
        path(&image),
        "--",
        "/usr/bin/mdb_load",
        "-n",
        "-f",
        "/input.txt",
        "/tmp/db",
        ";",
        "/usr/bin/mdb_dump",
        "-n",
        "/tmp/db",
    ]);
    assert!(built.status.success());
    let output = rosv_run(&["--memory", "128M", path(&image)]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout) == expected, "the dump differs from the host's");
}
