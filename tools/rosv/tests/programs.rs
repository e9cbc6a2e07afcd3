//! Real programs that need several processes, unmodified from Debian: a
//! `dash` script, Python's `multiprocessing` and `subprocess`, git, GCC
//! compiling and linking a program in the guest, nginx with a master and
//! two workers reloaded by `SIGHUP`, and PostgreSQL queried from the host. Each is skipped, visibly, when the host lacks
//! its package.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Guest, SHELL_MANIFEST, free_port, image, path, rosv_run, skip, text};

/// How long a server may take to boot and answer under TCG.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

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
fn a_dash_script_runs_pipelines_jobs_traps_and_xargs() {
    let test = "a_dash_script_runs_pipelines_jobs_traps_and_xargs";
    if !available(test, &[("/usr/bin/dash", "dash"), ("/usr/bin/xargs", "findutils")]) {
        return;
    }
    let script = r#"
echo start
echo a b c | wc -w
x=$(echo substituted | tr a-z A-Z); echo "got $x"
echo to-file > /tmp/out; cat < /tmp/out; echo appended >> /tmp/out; wc -l < /tmp/out
ls /nonexistent 2>/dev/null; echo "ls status $?"
trap 'echo trapped USR1' USR1
kill -USR1 $$
trap 'echo exiting' EXIT
sleep 0.2 & a=$!
(sleep 0.1; exit 5) & b=$!
wait $b; echo "b $?"
wait $a; echo "a $?"
printf '%s\n' 3 1 2 | sort | xargs echo sorted
printf 'x\ny\n' | xargs -n 1 sh -c 'echo item $0'
false | true; echo "pipe $?"
sh -c 'kill -TERM $$'; echo "killed $?"
cat <<END
here $x
END
exit 3
"#;
    // What Debian's dash prints on Linux.
    let expected = "start\n3\ngot SUBSTITUTED\nto-file\n2\nls status 2\ntrapped USR1\nb 5\na 0\n\
                    sorted 1 2 3\nitem x\nitem y\npipe 0\nkilled 143\nhere SUBSTITUTED\nexiting\n";
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = image(directory.path(), SHELL_MANIFEST, &["coreutils", "findutils"], &["/usr/bin/dash"]);
    for cpus in ["1", "2"] {
        let output = rosv_run(&["--cpus", cpus, path(&image), "--", "/usr/bin/dash", "-c", script]);
        assert_eq!(text(&output.stdout), expected, "on {cpus} CPUs; stderr:\n{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(3), "on {cpus} CPUs");
    }
}

#[test]
fn python_maps_over_a_process_pool_and_runs_a_subprocess() {
    let test = "python_maps_over_a_process_pool_and_runs_a_subprocess";
    if !available(test, &[("/usr/bin/python3", "python3")]) {
        return;
    }
    // The pool's locks and queues are POSIX semaphores from sem_open in
    // /dev/shm, shared by the forked workers.
    let script = r#"
import multiprocessing, subprocess, sys
def square(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(4) as pool:
        print("pool", sum(pool.map(square, range(100))))
    lock = multiprocessing.Lock()
    print("lock", lock.acquire(timeout=5), lock.acquire(timeout=0.1))
    done = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('child'); sys.exit(3)"], capture_output=True)
    print("subprocess", done.returncode, done.stdout)
    sys.exit(5)
"#;
    let output =
        rosv_run(&["--cpus", "2", "--memory", "512M", "--exec", "/usr/bin/python3", "--", "-c", script]);
    let expected = "pool 328350\nlock True False\nsubprocess 3 b'child\\n'\n";
    assert_eq!(text(&output.stdout), expected, "stderr:\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(5));
}

#[test]
fn git_commits_and_logs_in_a_writable_directory() {
    let test = "git_commits_and_logs_in_a_writable_directory";
    if !available(test, &[("/usr/bin/dash", "dash"), ("/usr/bin/git", "git")]) {
        return;
    }
    let script = r#"
set -e
mkdir -p /srv/repository && cd /srv/repository
git init -q -b main .
echo hello > a.txt
git add a.txt
git -c user.name=rosv -c user.email=rosv@example.com commit -q -m "first commit"
echo more >> a.txt
git -c user.name=rosv -c user.email=rosv@example.com commit -q -am "second commit"
git log --format=%s
git rev-list --count HEAD
git status --short | wc -l
git cat-file -p HEAD:a.txt
"#;
    let directory = tempfile::tempdir().expect("temporary directory");
    let manifest = format!("{SHELL_MANIFEST}/usr/bin/git: /usr/bin/git\n");
    let image = image(directory.path(), &manifest, &["git", "coreutils"], &["/usr/bin/dash"]);
    let output = rosv_run(&["--memory", "256M", path(&image), "--", "/usr/bin/dash", "-c", script]);
    let expected = "second commit\nfirst commit\n2\n0\nhello\nmore\n";
    assert_eq!(text(&output.stdout), expected, "stderr:\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}

/// The major version of the host's GCC (`12` on Debian 12), whose
/// packages carry it in their names.
fn gcc_version() -> Option<String> {
    let output = Command::new("gcc").arg("-dumpversion").output().ok()?;
    let version = text(&output.stdout).trim().split('.').next()?.to_string();
    (output.status.success() && !version.is_empty()).then_some(version)
}

/// GCC's driver runs cc1, as and collect2/ld as child processes, which find
/// each other through `PATH` and their own paths; the program they build
/// runs in the same VM.
#[test]
fn gcc_compiles_links_and_runs_a_program_in_the_guest() {
    let test = "gcc_compiles_links_and_runs_a_program_in_the_guest";
    let Some(version) = gcc_version() else {
        skip(test, "gcc is missing (apt-get install gcc)");
        return;
    };
    let compiler = format!("/usr/bin/gcc-{version}");
    if !available(
        test,
        &[("/usr/bin/dash", "dash"), (&compiler, "gcc"), ("/usr/include/stdio.h", "libc6-dev")],
    ) {
        return;
    }
    let script = r#"
set -e
mkdir -p /work && cd /work
cat > hello.c <<'END'
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
static void *twice(void *value) { return (void *)((long)value * 2); }
int main(void) {
    pthread_t thread;
    void *result;
    pthread_create(&thread, NULL, twice, (void *)21);
    pthread_join(thread, &result);
    printf("built and ran: %ld, EAGAIN %d\n", (long)result, EAGAIN);
    return 7;
}
END
"$CC" -O2 -pthread -o hello hello.c
set +e
./hello
echo "status $?"
"#;
    let directory = tempfile::tempdir().expect("temporary directory");
    let packages = [
        format!("gcc-{version}"),
        format!("cpp-{version}"),
        format!("libgcc-{version}-dev"),
        "binutils".into(),
        "binutils-x86-64-linux-gnu".into(),
        "libc6-dev".into(),
        "linux-libc-dev".into(),
        "libcrypt-dev".into(),
        "coreutils".into(),
    ];
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    let image = image(directory.path(), SHELL_MANIFEST, &packages, &["/usr/bin/dash"]);
    let compiler_option = format!("CC=gcc-{version}");
    let output = rosv_run(&[
        "--memory",
        "512M",
        "-e",
        &compiler_option,
        path(&image),
        "--",
        "/usr/bin/dash",
        "-c",
        script,
    ]);
    assert_eq!(
        text(&output.stdout),
        "built and ran: 42, EAGAIN 11\nstatus 7\n",
        "stderr:\n{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

/// nginx with a master and two workers; `$pid` is the worker's process id,
/// and the access log tells the script in the guest what the host asked.
const NGINX_MASTER_CONFIGURATION: &str = r#"daemon off;
master_process on;
worker_processes 2;
error_log stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 64; }
http {
    access_log /tmp/access.log;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    server {
        listen 8080;
        location / { return 200 "worker $pid\n"; }
    }
}
"#;

/// The guest's control of nginx: `GET /reload` makes it send `SIGHUP` to
/// the master, `GET /stop` `SIGQUIT` (a graceful stop), then it exits with
/// the master's status.
const NGINX_CONTROL: &str = r#"
/usr/sbin/nginx -p /tmp 2>&1 &
master=$!
until grep -q "GET /reload" /tmp/access.log 2>/dev/null; do sleep 0.2; done
echo "control: reloading"
kill -HUP $master
until grep -q "GET /stop" /tmp/access.log; do sleep 0.2; done
kill -QUIT $master
wait $master
status=$?
echo "control: nginx ended with $status"
exit $status
"#;

/// The worker that answered `GET /`, from its answer's last line.
fn worker(port: u16) -> Result<u32, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let request = b"GET / HTTP/1.0\r\nHost: rosv\r\n\r\n";
    let answer =
        support::exchange_with_retries(address, request, ANSWER_TIMEOUT).map_err(|e| e.to_string())?;
    answer
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("worker "))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or(format!("not a worker's answer: {answer:?}"))
}

/// Asks for `target`, whose answer does not matter (the access log does).
fn request(port: u16, target: &str) {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let request = format!("GET {target} HTTP/1.0\r\nHost: rosv\r\n\r\n");
    let _ = support::exchange_with_retries(address, request.as_bytes(), ANSWER_TIMEOUT);
}

#[test]
fn nginx_with_workers_reloads_on_sighup_and_still_serves() {
    let test = "nginx_with_workers_reloads_on_sighup_and_still_serves";
    if !available(
        test,
        &[("/usr/sbin/nginx", "nginx-light"), ("/usr/bin/dash", "dash"), ("/usr/bin/grep", "grep")],
    ) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let configuration = directory.path().join("nginx.conf");
    std::fs::write(&configuration, NGINX_MASTER_CONFIGURATION).expect("write nginx's configuration");
    let manifest = format!(
        "{SHELL_MANIFEST}/usr/sbin/nginx: /usr/sbin/nginx\n/etc/nginx/nginx.conf: {}\n",
        configuration.display()
    );
    let image =
        image(directory.path(), &manifest, &["coreutils", "grep"], &["/usr/bin/dash", "-c", NGINX_CONTROL]);
    let port = free_port();
    let forward = format!("{port}:8080");
    let mut guest = Guest::start(&[
        "--cpus",
        "2",
        "--memory",
        "256M",
        "--net",
        "user",
        "--forward",
        &forward,
        path(&image),
    ]);
    let first: Vec<u32> = match (0..4).map(|_| worker(port)).collect() {
        Ok(workers) => workers,
        Err(error) => guest.abandon(&format!("nginx did not answer: {error}")),
    };
    request(port, "/reload");
    if !guest.wait_for("control: reloading", ANSWER_TIMEOUT) {
        guest.abandon("the control script did not see the reload request");
    }
    // The old workers finish their connections and leave; new ones serve.
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let reloaded = loop {
        match worker(port) {
            Ok(pid) if !first.contains(&pid) => break Some(pid),
            _ if Instant::now() > deadline => break None,
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    request(port, "/stop");
    let (status, console) = guest.finish();
    let Some(reloaded) = reloaded else { panic!("no new worker answered after SIGHUP; console:\n{console}") };
    assert!(first.iter().all(|&pid| pid > 1), "{first:?}");
    assert!(reloaded > *first.iter().max().unwrap_or(&0), "{reloaded} after {first:?}");
    for line in ["reconfiguring", "gracefully shutting down", "control: nginx ended with 0"] {
        assert!(console.contains(line), "no {line:?} in:\n{console}");
    }
    assert!(!console.contains("[alert]"), "nginx raised an alert:\n{console}");
    assert_eq!(status, Some(0), "{console}");
}

/// The newest PostgreSQL server on the host: its `bin` directory and the
/// Debian package that holds it.
fn postgresql() -> Option<(PathBuf, String)> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(version, bin)| (bin, format!("postgresql-{version}")))
}

#[test]
fn postgresql_serves_concurrent_connections_from_the_host() {
    let test = "postgresql_serves_concurrent_connections_from_the_host";
    if !available(test, &[("/usr/bin/dash", "dash"), ("/usr/bin/psql", "postgresql-client")]) {
        return;
    }
    let Some((bin, package)) = postgresql() else {
        skip(test, "no /usr/lib/postgresql/*/bin/postgres (apt-get install postgresql)");
        return;
    };
    let directory = tempfile::tempdir().expect("temporary directory");
    // The host's connections may reach the `::` listener as IPv4-mapped
    // peers (rosv's `::` listeners take IPv4 even with IPV6_V6ONLY), so
    // pg_hba.conf trusts every address.
    // PostgreSQL refuses to run as root: it runs as user 1000, whom
    // initdb must find in /etc/passwd.
    let passwd = directory.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\npostgres:x:1000:1000::/tmp:/bin/sh\n")
        .expect("write passwd");
    let group = directory.path().join("group");
    std::fs::write(&group, "root:x:0:\npostgres:x:1000:\n").expect("write group");
    let manifest =
        format!("{SHELL_MANIFEST}/etc/passwd: {}\n/etc/group: {}\n", passwd.display(), group.display());
    let script = format!(
        r#"
set -e
{bin}/initdb -D /tmp/data -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/tmp/initdb.log 2>&1 || {{ cat /tmp/initdb.log; exit 1; }}
echo "listen_addresses = '*'" >> /tmp/data/postgresql.conf
echo "host all all all trust" >> /tmp/data/pg_hba.conf
exec {bin}/postgres -D /tmp/data -k /tmp 2>&1
"#,
        bin = bin.display()
    );
    let image = image(directory.path(), &manifest, &[package.as_str(), "coreutils"], &["/usr/bin/dash"]);
    let port = free_port();
    let forward = format!("{port}:5432");
    let mut guest = Guest::start(&[
        "--cpus",
        "2",
        "--memory",
        "512M",
        "--user",
        "1000:1000",
        "--net",
        "user",
        "--forward",
        &forward,
        path(&image),
        "--",
        "/usr/bin/dash",
        "-c",
        &script,
    ]);
    if !guest.wait_for("database system is ready to accept connections", ANSWER_TIMEOUT) {
        guest.abandon("PostgreSQL did not start");
    }
    let port_text = port.to_string();
    let psql = |sql: &str| {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port_text, "-U", "postgres", "-X", "-q", "-t", "-A", "-v"])
            .args(["ON_ERROR_STOP=1", "-c", sql, "postgres"])
            .env("PGCONNECT_TIMEOUT", "30")
            .output()
            .expect("run psql")
    };
    // QEMU accepts the host's first connections before the guest listens.
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let created = loop {
        let output = psql("create table numbers (n integer)");
        if output.status.success() || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !created.status.success() {
        guest.abandon(&format!("psql could not create a table: {}", text(&created.stderr)));
    }
    // Four connections at once, each a server process of its own.
    let inserts: Vec<_> = (0..4)
        .map(|part| {
            let sql = format!(
                "insert into numbers select g from generate_series({}, {}) g",
                part * 250 + 1,
                part * 250 + 250
            );
            let port_text = port_text.clone();
            std::thread::spawn(move || {
                Command::new("psql")
                    .args(["-h", "127.0.0.1", "-p", &port_text, "-U", "postgres", "-X", "-q"])
                    .args(["-v", "ON_ERROR_STOP=1", "-c", &sql, "postgres"])
                    .output()
                    .expect("run psql")
            })
        })
        .collect();
    let inserted: Vec<_> =
        inserts.into_iter().map(|insert| insert.join().expect("the psql thread")).collect();
    let counted = psql("select count(*), sum(n) from numbers");
    // SIGINT is PostgreSQL's fast shutdown; it ends with 0.
    let _ = Command::new("kill").args(["-INT", &guest.id().to_string()]).status();
    let (status, console) = guest.finish();
    for output in &inserted {
        assert!(output.status.success(), "an insert failed: {}\n{console}", text(&output.stderr));
    }
    assert_eq!(text(&counted.stdout), "1000|500500\n", "{}\n{console}", text(&counted.stderr));
    assert!(console.contains("database system is shut down"), "{console}");
    assert_eq!(status, Some(0), "{console}");
}
