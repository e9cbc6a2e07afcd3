//! Language runtimes from Debian packages run with no manifest: `rosv run
//! --exec` collects their libraries, modules and data from the packages
//! that hold them, and a shell wrapper comes with its interpreter.

mod support;

use std::path::Path;

use support::{path, rosv, rosv_run, skip, text};

/// Runs `program` (from Debian's `package`) with `arguments` in `memory`
/// and checks that it printed `expected` and succeeded.
fn runs(test: &str, program: &str, package: &str, memory: &str, arguments: &[&str], expected: &str) {
    if !Path::new(program).exists() {
        skip(test, &format!("{program} is missing (apt-get install {package})"));
        return;
    }
    let mut all = vec!["--memory", memory, "--exec", program, "--"];
    all.extend_from_slice(arguments);
    let output = rosv_run(&all);
    let stdout = text(&output.stdout);
    assert!(stdout.contains(expected), "{stdout}{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn python_finds_its_standard_library() {
    runs(
        "python_finds_its_standard_library",
        "/usr/bin/python3",
        "python3",
        "256M",
        &[
            "-c",
            "import json, sqlite3, hashlib, encodings.idna; print(json.dumps([sqlite3.sqlite_version_info[0], 1]))",
        ],
        "[3, 1]\n",
    );
}

#[test]
fn perl_finds_its_modules() {
    runs(
        "perl_finds_its_modules",
        "/usr/bin/perl",
        "perl",
        "256M",
        &[
            "-MJSON::PP",
            "-MPOSIX",
            "-e",
            "print JSON::PP->new->canonical->encode({a => 1, f => POSIX::floor(2.5)}), qq{\\n}",
        ],
        "{\"a\":1,\"f\":2}\n",
    );
}

#[test]
fn ruby_loads_rubygems_and_json() {
    runs(
        "ruby_loads_rubygems_and_json",
        "/usr/bin/ruby",
        "ruby",
        "256M",
        &["-rjson", "-e", "puts JSON.generate({'gems' => defined?(Gem) ? 1 : 0})"],
        "{\"gems\":1}\n",
    );
}

#[test]
fn lua_runs() {
    runs(
        "lua_runs",
        "/usr/bin/lua5.4",
        "lua5.4",
        "128M",
        &["-e", "print(string.format('%d', 6 * 7))"],
        "42\n",
    );
}

#[test]
fn node_runs() {
    runs(
        "node_runs",
        "/usr/bin/node",
        "nodejs",
        "512M",
        &["-e", "console.log(JSON.stringify({sum: [1, 2, 3].reduce((a, b) => a + b)}))"],
        "{\"sum\":6}\n",
    );
}

#[test]
fn php_encodes_json() {
    runs(
        "php_encodes_json",
        "/usr/bin/php",
        "php-cli",
        "256M",
        &["-r", "echo json_encode(['a' => 1, 'zone' => date_default_timezone_get()]), \"\\n\";"],
        "{\"a\":1,\"zone\":\"UTC\"}\n",
    );
}

#[test]
fn java_finds_its_runtime() {
    let test = "java_finds_its_runtime";
    if !Path::new("/usr/bin/java").exists() {
        skip(test, "/usr/bin/java is missing (apt-get install openjdk-17-jre-headless)");
        return;
    }
    let output = rosv_run(&["--memory", "1G", "--exec", "/usr/bin/java", "--", "-version"]);
    // java -version writes to its standard error.
    let stderr = text(&output.stderr);
    assert!(stderr.contains("Runtime Environment"), "{stderr}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn guile_starts_with_its_iconv_modules() {
    runs(
        "guile_starts_with_its_iconv_modules",
        "/usr/bin/guile",
        "guile-3.0",
        "256M",
        &["-c", "(display (string-upcase \"guile\")) (newline)"],
        "GUILE\n",
    );
}

#[test]
fn a_shell_wrapper_runs_through_its_interpreter() {
    let test = "a_shell_wrapper_runs_through_its_interpreter";
    // Debian's zcat is a shell script that runs gzip from the PATH.
    if !Path::new("/usr/bin/zcat").exists() || !Path::new("/usr/bin/gzip").exists() {
        skip(test, "zcat and gzip are missing (apt-get install gzip)");
        return;
    }
    let compressed = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("piped").write_all(b"unpacked in the guest\n")?;
            child.wait_with_output()
        })
        .expect("gzip on the host");
    let directory = tempfile::tempdir().expect("temporary directory");
    let data = directory.path().join("data.gz");
    std::fs::write(&data, &compressed.stdout).expect("write the data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["run", "--timeout", support::TIMEOUT_SECONDS, "--exec", "/usr/bin/zcat"])
        .stdin(std::fs::File::open(&data).expect("open the data"))
        .output()
        .expect("run rosv");
    let stdout = text(&output.stdout);
    assert_eq!(stdout, "unpacked in the guest\n", "{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn erlang_runs_through_its_wrapper_script() {
    // /usr/bin/erl is a shell script that finds and runs the emulator,
    // calling dirname and basename on the way.
    let test = "erlang_runs_through_its_wrapper_script";
    if !Path::new("/usr/bin/erl").exists() {
        skip(test, "/usr/bin/erl is missing (apt-get install erlang-base)");
        return;
    }
    let output = rosv_run(&[
        "--memory",
        "512M",
        "--exec",
        "/usr/bin/erl",
        "--",
        "-noshell",
        "-eval",
        "io:format(\"~p~n\", [6 * 7]), halt().",
    ]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(stdout, "42\n", "{stderr}");
    assert!(!stderr.contains("not found"), "every tool the wrapper calls is there: {stderr}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_dry_run_reports_packages_and_excludes_trim_them() {
    let test = "the_dry_run_reports_packages_and_excludes_trim_them";
    let Ok(python) = std::fs::canonicalize("/usr/bin/python3") else {
        skip(test, "/usr/bin/python3 is missing (apt-get install python3)");
        return;
    };
    let version = python.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
    let stdlib = format!("lib{version}-stdlib");
    let report = rosv(&["build", "--dry-run", "--exec", "/usr/bin/python3", "--package", "tzdata"]);
    assert!(report.status.success());
    let report = text(&report.stdout);
    let line = |name: &str| {
        report.lines().find(|line| line.split_whitespace().next() == Some(name)).map(str::to_string)
    };
    let stdlib_line = line(&stdlib).unwrap_or_else(|| panic!("no {stdlib} in\n{report}"));
    assert!(stdlib_line.contains("dependency") && stdlib_line.contains("MiB"), "{stdlib_line}");
    assert!(line("tzdata").is_some_and(|line| line.contains("requested")), "{report}");
    assert!(line("total").is_some(), "{report}");
    let pattern = format!("/usr/lib/{version}/**");
    let trimmed = rosv(&["build", "--dry-run", "--exec", "/usr/bin/python3", "--exclude", &pattern]);
    let trimmed = text(&trimmed.stdout);
    assert!(
        trimmed.lines().any(|line| line.contains("nothing more to add") && line.contains(&stdlib)),
        "{trimmed}"
    );
    // A dry run writes nothing.
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let built = rosv(&["build", "--dry-run", "--exec", "/usr/bin/python3", "-o", path(&image)]);
    assert!(built.status.success() && !image.exists());
    let missing =
        rosv(&["build", "--dry-run", "--exec", "/usr/bin/python3", "--package", "no-such-package-here"]);
    assert!(
        text(&missing.stderr).contains("no-such-package-here is not installed"),
        "{}",
        text(&missing.stderr)
    );
    assert!(!missing.status.success());
}
