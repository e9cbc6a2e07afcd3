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
        // files checks that the read-only root refuses writes.
        let cases = [
            ("threads", vec![], vec!["--", "2"]),
            ("files", vec!["--kernel-args=--rootfs=rofs"], vec![]),
            ("signals", vec![], vec![]),
        ];
        for (name, options, arguments) in cases {
            let program = guests::c_program(name, variant);
            let path = program.to_str().expect("UTF-8 path");
            let mut all = vec!["--cpus", "2"];
            all.extend(options);
            all.extend(["--exec", path]);
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
    let image = directory.path().join("image");
    let built = support::rosv(&["build", "--exec", support::path(&hello), "-o", support::path(&image)]);
    assert!(built.status.success());
    // rosv build brings the interpreter along; replace the root with one
    // that holds the program alone.
    use rosv_rofs::writer::{Contents, Directory, Node, write_image};
    let mut root = Directory::default();
    root.insert("/hello-glibc-dynamic", Node::File(Contents::HostFile(hello.clone()))).expect("insert");
    let file = std::fs::File::create(image.join("root.rofs")).expect("create the root image");
    write_image(&root, file).expect("write the root image");
    let output = rosv_run(&[support::path(&image)]);
    let stderr = support::text(&output.stderr);
    assert!(stderr.contains("its interpreter /lib64/ld-linux-x86-64.so.2 cannot be loaded"), "{stderr}");
    assert_ne!(output.status.code(), Some(0));
}

#[test]
fn python_runs_from_a_manifest_image() {
    let test = "python_runs_from_a_manifest_image";
    // Debian's python3, its standard library beside it.
    let Ok(python) = std::fs::canonicalize("/usr/bin/python3") else {
        support::skip(test, "/usr/bin/python3 is missing (apt-get install python3)");
        return;
    };
    let version = python.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
    let library = std::path::Path::new("/usr/lib").join(&version);
    if !library.is_dir() {
        support::skip(test, &format!("{} is missing", library.display()));
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let manifest = directory.path().join("python.manifest");
    let text =
        format!("/usr/bin/python3: {}\n/usr/lib/{version}/**: {}/**\n", python.display(), library.display());
    std::fs::write(&manifest, text).expect("write the manifest");
    let image = directory.path().join("image");
    // json and hashlib are pure Python and built in; sqlite3 loads an
    // extension module whose library the image must bring along; threads
    // run on both processors.
    let script = "import sys, json, hashlib, sqlite3, threading\n\
                  db = sqlite3.connect(':memory:')\n\
                  db.execute('create table t(x)')\n\
                  db.executemany('insert into t values (?)', [(i,) for i in range(10)])\n\
                  results = []\n\
                  workers = [threading.Thread(target=lambda n=n: results.append(n * n)) for n in range(4)]\n\
                  [w.start() for w in workers]; [w.join() for w in workers]\n\
                  print(json.dumps({'sum': db.execute('select sum(x) from t').fetchone()[0], \
                  'squares': sorted(results), 'sha': hashlib.sha256(b'rosv').hexdigest()[:16]}))";
    let built = support::rosv(&[
        "build",
        support::path(&manifest),
        "-o",
        support::path(&image),
        "--",
        "/usr/bin/python3",
        "-c",
        script,
    ]);
    assert!(built.status.success());
    let output = rosv_run(&["--cpus", "2", "--memory", "256M", support::path(&image)]);
    let stdout = support::text(&output.stdout);
    assert!(
        stdout.contains(r#"{"sum": 45, "squares": [0, 1, 4, 9], "sha": "e83c9c1ecb324f86"}"#),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(0));

    // asyncio: its event loop wakes itself through a socket pair; a TCP
    // server and client talk over the loopback.
    let script = "import asyncio\n\
                  async def echo(reader, writer):\n    \
                      writer.write(b'echo ' + await reader.readline()); await writer.drain(); writer.close()\n\
                  async def main():\n    \
                      server = await asyncio.start_server(echo, '127.0.0.1', 9000)\n    \
                      reader, writer = await asyncio.open_connection('127.0.0.1', 9000)\n    \
                      writer.write(b'over tcp\\n'); await writer.drain()\n    \
                      print((await reader.readline()).decode().strip())\n    \
                      server.close(); await server.wait_closed()\n\
                  asyncio.run(main())";
    let output =
        rosv_run(&["--memory", "256M", support::path(&image), "--", "/usr/bin/python3", "-c", script]);
    let stdout = support::text(&output.stdout);
    assert!(stdout.contains("echo over tcp\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));

    // Processes: subprocess starts the interpreter again (fork or vfork,
    // then execve), os.fork copies the interpreter, a pipe joins them.
    let script = "import os, subprocess, sys\n\
                  out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True)\n\
                  r, w = os.pipe()\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    os.write(w, b'from the child'); os._exit(3)\n\
                  os.close(w)\n\
                  data = os.read(r, 100).decode()\n\
                  _, status = os.waitpid(pid, 0)\n\
                  print('subprocess', out.stdout.strip(), out.returncode, data, os.waitstatus_to_exitcode(status))";
    let output =
        rosv_run(&["--memory", "256M", support::path(&image), "--", "/usr/bin/python3", "-c", script]);
    let stdout = support::text(&output.stdout);
    assert!(
        stdout.contains("subprocess 42 0 from the child 3\n"),
        "{stdout}{}",
        support::text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

/// The Java class the JVM test runs: threads, a parallel stream, and a
/// null-pointer exception (which the JVM takes as a SIGSEGV in its own
/// code and turns into the exception).
const JAVA_PROGRAM: &str = r#"
import java.util.concurrent.*;
import java.util.stream.*;
public class Hello {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        Future<Long> sum = pool.submit(() -> LongStream.rangeClosed(1, 1_000_000).parallel().sum());
        System.out.println("sum " + sum.get() + " on " + Runtime.getRuntime().availableProcessors() + " cpus");
        String nothing = null;
        try {
            nothing.length();
        } catch (NullPointerException caught) {
            System.out.println("caught a null pointer");
        }
        pool.shutdown();
    }
}
"#;

#[test]
fn the_jvm_runs_a_threaded_java_program() {
    let Some((_directory, image)) =
        support::java_image("the_jvm_runs_a_threaded_java_program", "Hello", JAVA_PROGRAM)
    else {
        return;
    };
    let output = rosv_run(&["--cpus", "2", "--memory", "1G", support::path(&image)]);
    let stdout = support::text(&output.stdout);
    assert!(stdout.contains("sum 500000500000 on 2 cpus\ncaught a null pointer\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
}

const JAVA_FILL: &str = r#"
import java.util.ArrayList;
public class Fill {
    public static void main(String[] args) {
        long max = Runtime.getRuntime().maxMemory();
        ArrayList<byte[]> kept = new ArrayList<>();
        long filled = 0;
        while (filled + (4L << 20) < max * 9 / 10) {
            byte[] block = new byte[1 << 20];
            for (int i = 0; i < block.length; i += 4096) block[i] = (byte) i;
            kept.add(block);
            filled += block.length;
        }
        System.out.println("filled " + (filled >> 20) + " MiB of a " + (max >> 20) + " MiB heap");
    }
}
"#;

#[test]
fn the_jvm_fills_a_heap_of_three_quarters_of_guest_memory() {
    let test = "the_jvm_fills_a_heap_of_three_quarters_of_guest_memory";
    let Some((_directory, image)) = support::java_image(test, "Fill", JAVA_FILL) else {
        return;
    };
    let output = rosv_run(&["--memory", "256M", "-e", "JAVA_TOOL_OPTIONS=-Xmx192m", support::path(&image)]);
    let stdout = support::text(&output.stdout);
    let figures: Vec<u64> = stdout.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    assert!(stdout.starts_with("filled ") && figures.len() == 2, "{stdout}");
    let (filled, heap) = (figures[0], figures[1]);
    assert!(heap >= 160, "the heap is about the 192 MiB asked for: {stdout}");
    assert!(filled * 10 >= heap * 8, "most of the heap was filled and touched: {stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn a_go_program_runs_its_runtime_and_network_poller() {
    let test = "a_go_program_runs_its_runtime_and_network_poller";
    let directory = tempfile::tempdir().expect("temporary directory");
    let program = directory.path().join("go-server");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guest/go-server");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(&source)
        .env("CGO_ENABLED", "0")
        .status();
    if !built.is_ok_and(|status| status.success()) {
        support::skip(test, "go is missing or failed (apt-get install golang-go)");
        return;
    }
    let output = rosv_run(&["--cpus", "2", "--memory", "256M", "--exec", support::path(&program)]);
    let stdout = support::text(&output.stdout);
    for wanted in [
        "goroutines done: 3500000 on 2 cpus\n",
        "go served /request/0\ngo served /request/1\ngo served /request/2\n",
        "timers work\n",
        "preempted a spinning goroutine\n",
    ] {
        assert!(stdout.contains(wanted), "{wanted:?} missing:\n{stdout}");
    }
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn php_runs_a_script() {
    let test = "php_runs_a_script";
    let Ok(php) = std::fs::canonicalize("/usr/bin/php") else {
        support::skip(test, "/usr/bin/php is missing (apt-get install php-cli)");
        return;
    };
    let script = "echo json_encode(['sum' => array_sum(range(1, 100)), 'zone' => date_default_timezone_get(), \
                  'sha' => substr(hash('sha256', 'rosv'), 0, 16)]), \"\\n\";";
    let output = rosv_run(&["--memory", "256M", "--exec", support::path(&php), "--", "-r", script]);
    let stdout = support::text(&output.stdout);
    assert!(stdout.contains(r#"{"sum":5050,"zone":"UTC","sha":"e83c9c1ecb324f86"}"#), "{stdout}");
    assert!(!stdout.contains("Warning"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
}
