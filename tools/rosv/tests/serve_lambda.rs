//! Boot tests of functions written for AWS Lambda, run by `rosv serve`.
//!
//! A Python handler runs under `awslambdaric`, the runtime interface
//! client from PyPI (installed into the image when the test runs), and a
//! Node.js handler under a small custom runtime written here; both reach
//! the host's Runtime API at 10.0.2.2. The tests invoke them through
//! Lambda's Invoke API and check the payloads, headers and error shapes
//! Lambda documents, and that crashed and hung functions get 502 and 504
//! and a new VM.

mod guests;
mod serve_host;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serve_host::{Answer, Host, post, stats};
use support::{path, rosv, skip};

/// The Invoke API's path for `function`.
fn invoke_path(function: &str) -> String {
    format!("/2015-03-31/functions/{function}/invocations")
}

/// The answer's body as JSON.
fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|error| panic!("{error}: not JSON: {answer:?}"))
}

/// Decodes standard base64 (the test's own, to check the host's).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |byte: u8| -> u32 {
        match byte {
            b'A'..=b'Z' => u32::from(byte - b'A'),
            b'a'..=b'z' => u32::from(byte - b'a') + 26,
            b'0'..=b'9' => u32::from(byte - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {text}"),
        }
    };
    let mut bytes = Vec::new();
    for group in text.as_bytes().chunks(4) {
        let digits: Vec<u8> = group.iter().copied().filter(|&byte| byte != b'=').collect();
        let mut number = 0u32;
        for (index, &digit) in digits.iter().enumerate() {
            number |= value(digit) << (18 - 6 * index);
        }
        for index in 0..digits.len().saturating_sub(1) {
            bytes.push((number >> (16 - 8 * index)) as u8);
        }
    }
    bytes
}

/// The Python handler: echoes its event with what its context says, and
/// fails, crashes or hangs when asked.
const PYTHON_HANDLER: &str = r#"import json, os, time

def handler(event, context):
    print("handling", json.dumps(event, sort_keys=True))
    if event.get("fail"):
        raise ValueError("asked to fail: " + str(event["fail"]))
    if event.get("crash"):
        os._exit(9)
    if event.get("hang"):
        time.sleep(3600)
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "function": context.function_name,
        "memory": context.memory_limit_in_mb,
        "has_time_left": context.get_remaining_time_in_millis() > 0,
        "handler": os.environ["_HANDLER"],
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "instance": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "random": os.urandom(16).hex(),
        "boot_id": open("/proc/sys/kernel/random/boot_id").read().strip(),
        "time": time.time(),
    }
"#;

/// Installs `awslambdaric` into `directory` with pip; `None` (having said
/// why) when PyPI cannot be reached.
fn install_awslambdaric(test: &str, directory: &Path) -> Option<()> {
    let output = Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
        .args(["--target", path(directory), "awslambdaric"])
        .output();
    match output {
        Ok(output) if output.status.success() => Some(()),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            skip(test, &format!("pip cannot install awslambdaric (is PyPI reachable?): {}", stderr.trim()));
            None
        }
        Err(error) => {
            skip(test, &format!("cannot run pip: {error}"));
            None
        }
    }
}

/// An image of Debian's python3 with `awslambdaric` and the handler in
/// /var/task; `None` (having said why) when it cannot be built here.
fn python_runtime(test: &str, directory: &Path) -> Option<PathBuf> {
    let Ok(python) = std::fs::canonicalize("/usr/bin/python3") else {
        skip(test, "/usr/bin/python3 is missing (apt-get install python3)");
        return None;
    };
    let version = python.file_name()?.to_str()?.to_string();
    let library = Path::new("/usr/lib").join(&version);
    let task = directory.join("task");
    std::fs::create_dir_all(&task).expect("create the task directory");
    install_awslambdaric(test, &task)?;
    std::fs::write(task.join("app.py"), PYTHON_HANDLER).expect("write the handler");
    let manifest = directory.join("python.manifest");
    let text = format!(
        "/usr/bin/python3: {}\n/usr/lib/{version}/**: {}/**\n/var/task/**: {}/**\n",
        python.display(),
        library.display(),
        task.display()
    );
    std::fs::write(&manifest, text).expect("write the manifest");
    let image = directory.join("python-lambda");
    let built = rosv(&[
        "build",
        path(&manifest),
        "-o",
        path(&image),
        "--",
        "/usr/bin/python3",
        "-m",
        "awslambdaric",
        "app.handler",
    ]);
    assert!(built.status.success(), "rosv build: {}", String::from_utf8_lossy(&built.stderr));
    Some(image)
}

/// A Lambda function's configuration.
fn lambda_function(name: &str, runtime: &Path, handler: &str, extra: &str) -> String {
    format!(
        "[[function]]\nname = \"{name}\"\nruntime = \"{}\"\nhandler = \"{handler}\"\nmemory = \"256M\"\n\
         boot_timeout = 300\n{extra}\n",
        runtime.display()
    )
}

#[test]
fn a_python_function_runs_under_awslambdaric_and_answers_invoke_as_lambda_does() {
    let test = "a_python_function_runs_under_awslambdaric_and_answers_invoke_as_lambda_does";
    let directory = tempfile::tempdir().expect("temporary directory");
    let Some(runtime) = python_runtime(test, directory.path()) else { return };
    let configuration = lambda_function(
        "py",
        &runtime,
        "app.handler",
        "request_timeout = 10\nenvironment = { PYTHONPATH = \"/var/task\", PYTHONDONTWRITEBYTECODE = \"1\" }",
    );
    let host = Host::start(directory, &configuration);
    let port = host.port;

    let answer = post(port, &invoke_path("py"), "", br#"{"n": 1, "word": "first"}"#);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", host.log());
    let result = json(&answer);
    assert_eq!(result["echo"], serde_json::json!({"n": 1, "word": "first"}), "{result}");
    assert_eq!(Some(result["request_id"].as_str().unwrap_or_default()), answer.header("X-Amzn-RequestId"));
    assert_eq!(result["arn"], "arn:aws:lambda:us-east-1:000000000000:function:py", "{result}");
    assert_eq!(
        (result["function"].as_str(), result["memory"].as_str()),
        (Some("py"), Some("256")),
        "{result}"
    );
    assert_eq!(result["has_time_left"], true, "{result}");
    assert_eq!(
        (result["handler"].as_str(), result["task_root"].as_str()),
        (Some("app.handler"), Some("/var/task"))
    );
    assert_eq!(answer.header("X-Amz-Executed-Version"), Some("$LATEST"));
    assert_eq!(answer.header("X-Amz-Function-Error"), None);

    // The log's tail, on request.
    let answer = post(port, &invoke_path("py"), "X-Amz-Log-Type: Tail\r\n", br#"{"n": 2}"#);
    assert_eq!(answer.status, 200, "{answer:?}");
    let tail = base64_decode(answer.header("X-Amz-Log-Result").expect("X-Amz-Log-Result"));
    let tail = String::from_utf8_lossy(&tail);
    assert!(tail.contains("handling {\"n\": 2}"), "{tail}");
    assert!(tail.len() <= 4096);

    // A function error: 200, X-Amz-Function-Error and the error document.
    let answer = post(port, &invoke_path("py"), "", br#"{"fail": "please"}"#);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("X-Amz-Function-Error"), Some("Unhandled"), "{answer:?}");
    let error = json(&answer);
    assert_eq!(error["errorType"], "ValueError", "{error}");
    assert_eq!(error["errorMessage"], "asked to fail: please", "{error}");

    // The host's own errors, in Lambda's shape.
    let answer = post(port, &invoke_path("py"), "", b"{not json");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(json(&answer)["errorType"], "InvalidRequestContentException");
    assert!(json(&answer)["errorMessage"].as_str().is_some_and(|text| text.contains("json")));
    let answer = post(port, &invoke_path("nobody"), "", b"{}");
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(json(&answer)["errorType"], "ResourceNotFoundException");
    let answer = post(port, &invoke_path("py"), "X-Amz-Invocation-Type: Event\r\n", br#"{"n": 3}"#);
    assert_eq!((answer.status, answer.body.as_str()), (202, ""), "{answer:?}");
    let answer = post(port, &invoke_path("py"), "X-Amz-Invocation-Type: DryRun\r\n", b"{}");
    assert_eq!(answer.status, 204, "{answer:?}");

    // A crash: 502, and the next invocation gets a new VM.
    let answer = post(port, &invoke_path("py"), "", br#"{"crash": true}"#);
    assert_eq!(answer.status, 502, "{answer:?}\n{}", host.log());
    assert_eq!(json(&answer)["errorType"], "Runtime.ExitError", "{answer:?}");
    assert!(json(&answer)["errorMessage"].as_str().is_some_and(|text| text.contains("ended")), "{answer:?}");
    let answer = post(port, &invoke_path("py"), "", br#"{"n": 4}"#);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", host.log());
    assert_eq!(json(&answer)["instance"], "py/2", "a new VM: {answer:?}");

    // A hang: 504 after the request timeout, and again a new VM.
    let answer = post(port, &invoke_path("py"), "", br#"{"hang": true}"#);
    assert_eq!(answer.status, 504, "{answer:?}\n{}", host.log());
    assert_eq!(json(&answer)["errorType"], "Sandbox.Timedout", "{answer:?}");
    let answer = post(port, &invoke_path("py"), "", br#"{"n": 5}"#);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", host.log());
    assert_eq!(json(&answer)["instance"], "py/3", "a new VM: {answer:?}");

    let counters = stats(port, "py");
    assert_eq!(counters["boots"], 3, "{counters}");
    assert_eq!(counters["errors"], 2, "{counters}");
}

#[test]
fn python_functions_start_from_a_snapshot_with_their_own_clock_ids_and_random_numbers() {
    let test = "python_functions_start_from_a_snapshot_with_their_own_clock_ids_and_random_numbers";
    let directory = tempfile::tempdir().expect("temporary directory");
    let Some(runtime) = python_runtime(test, directory.path()) else { return };
    let configuration = lambda_function(
        "snap",
        &runtime,
        "app.handler",
        "snapshot = true\nidle_timeout = 1\nrequest_timeout = 60\n\
         environment = { PYTHONPATH = \"/var/task\", PYTHONDONTWRITEBYTECODE = \"1\" }",
    );
    let host = Host::start(directory, &configuration);
    let port = host.port;
    let mut answers = Vec::new();
    for round in 0..3 {
        // Each round finds no VM: the idle one was stopped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while stats(port, "snap")["running"] != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle VM was not stopped; log:\n{}",
                host.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let before = std::time::SystemTime::now();
        let answer = post(port, &invoke_path("snap"), "", format!("{{\"round\": {round}}}").as_bytes());
        let after = std::time::SystemTime::now();
        assert_eq!(answer.status, 200, "{answer:?}\n{}", host.log());
        let result = json(&answer);
        if round > 0 {
            // A restored VM tells the host's time, not the template's
            // (which the idle timeout left seconds behind). The guest read
            // its clock during the request; a little slack covers the
            // guest's clock running at its own rate since the notice.
            let seconds = |time: std::time::SystemTime| {
                time.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
            };
            let guest = result["time"].as_f64().unwrap_or_default();
            assert!(
                seconds(before) - 0.25 <= guest && guest <= seconds(after) + 0.25,
                "round {round}: the guest's time {guest} is not within the request ({} to {})",
                seconds(before),
                seconds(after)
            );
        }
        assert_eq!(result["echo"]["round"], round, "{result}");
        assert_eq!(
            Some(result["request_id"].as_str().unwrap_or_default()),
            answer.header("X-Amzn-RequestId")
        );
        answers.push(result);
    }
    let log = host.log();
    assert!(log.contains("saved as the snapshot of function snap"), "{log}");
    assert_eq!(log.matches("booting for a request (from the snapshot)").count(), 2, "{log}");
    let randoms: std::collections::BTreeSet<&str> =
        answers.iter().map(|answer| answer["random"].as_str().unwrap_or_default()).collect();
    assert_eq!(randoms.len(), 3, "each VM draws its own random numbers: {answers:?}");
    let boot_ids: std::collections::BTreeSet<&str> =
        answers.iter().map(|answer| answer["boot_id"].as_str().unwrap_or_default()).collect();
    assert_eq!(boot_ids.len(), 3, "each VM has its own boot id: {answers:?}");
    for answer in &answers[1..] {
        // The boot id is the instance id the host gave the restored VM.
        let boot_id = answer["boot_id"].as_str().unwrap_or_default();
        assert!(log.contains(&format!("restored as instance {boot_id}")), "{boot_id}: {log}");
    }
}

/// A custom runtime for Node.js: asks for invocations, runs the handler
/// `_HANDLER` names (`file.function` in `LAMBDA_TASK_ROOT`), posts the
/// result or the error.
const NODE_BOOTSTRAP: &str = r#"
const http = require('http');
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const [file, name] = process.env._HANDLER.split('.');
const agent = new http.Agent({ keepAlive: true });
function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    const request = http.request({ host, port, path, method, headers, agent }, (response) => {
      let data = '';
      response.setEncoding('utf8');
      response.on('data', (piece) => { data += piece; });
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: data }));
    });
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}
async function main() {
  let handler;
  try {
    handler = require(process.env.LAMBDA_TASK_ROOT + '/' + file + '.js')[name];
  } catch (error) {
    await call('POST', '/2018-06-01/runtime/init/error', JSON.stringify({ errorMessage: error.message, errorType: 'Runtime.ImportModuleError' }));
    process.exit(1);
  }
  for (;;) {
    const next = await call('GET', '/2018-06-01/runtime/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const context = {
      awsRequestId: id,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      deadlineMs: Number(next.headers['lambda-runtime-deadline-ms']),
      traceId: next.headers['lambda-runtime-trace-id'],
    };
    try {
      const result = await handler(JSON.parse(next.body), context);
      await call('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(result));
    } catch (error) {
      await call('POST', `/2018-06-01/runtime/invocation/${id}/error`, JSON.stringify({ errorMessage: error.message, errorType: error.name }));
    }
  }
}
main();
"#;

/// The Node.js handler.
const NODE_HANDLER: &str = r#"
exports.handler = async (event, context) => {
  console.log('node handling', JSON.stringify(event));
  if (event.fail) throw new TypeError('asked to fail: ' + event.fail);
  return { sum: event.a + event.b, requestId: context.awsRequestId, arn: context.invokedFunctionArn,
           traced: context.traceId.startsWith('Root=1-'), deadlineAhead: context.deadlineMs > Date.now() };
};
"#;

#[test]
fn a_node_function_runs_under_a_custom_runtime() {
    let test = "a_node_function_runs_under_a_custom_runtime";
    let Some(node) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|directory| directory.join("node")).find(|node| node.is_file())
    }) else {
        skip(test, "node is not on PATH");
        return;
    };
    let directory = tempfile::tempdir().expect("temporary directory");
    let task = directory.path().join("task");
    std::fs::create_dir_all(&task).expect("create the task directory");
    std::fs::write(task.join("bootstrap.js"), NODE_BOOTSTRAP).expect("write the runtime");
    std::fs::write(task.join("index.js"), NODE_HANDLER).expect("write the handler");
    let manifest = directory.path().join("node.manifest");
    let node = std::fs::canonicalize(&node).expect("node's path");
    std::fs::write(
        &manifest,
        format!("/usr/bin/node: {}\n/var/task/**: {}/**\n", node.display(), task.display()),
    )
    .expect("write the manifest");
    let image = directory.path().join("node-lambda");
    let built = rosv(&[
        "build",
        path(&manifest),
        "-o",
        path(&image),
        "--",
        "/usr/bin/node",
        "/var/task/bootstrap.js",
    ]);
    assert!(built.status.success(), "rosv build: {}", String::from_utf8_lossy(&built.stderr));
    let configuration =
        lambda_function("js", &image, "index.handler", "memory = \"512M\"\nrequest_timeout = 30")
            .replace("memory = \"256M\"\n", "");
    let host = Host::start(directory, &configuration);

    let answer = post(host.port, &invoke_path("js"), "X-Amz-Log-Type: Tail\r\n", br#"{"a": 2, "b": 40}"#);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", host.log());
    let result = json(&answer);
    assert_eq!(result["sum"], 42, "{result}");
    assert_eq!(result["requestId"].as_str(), answer.header("X-Amzn-RequestId"), "{result}");
    assert_eq!(result["arn"], "arn:aws:lambda:us-east-1:000000000000:function:js", "{result}");
    assert_eq!(
        (result["traced"].as_bool(), result["deadlineAhead"].as_bool()),
        (Some(true), Some(true)),
        "{result}"
    );
    let tail = base64_decode(answer.header("X-Amz-Log-Result").expect("X-Amz-Log-Result"));
    assert!(String::from_utf8_lossy(&tail).contains("node handling {\"a\":2,\"b\":40}"), "{answer:?}");

    let answer = post(host.port, &invoke_path("js"), "", br#"{"fail": "now"}"#);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("X-Amz-Function-Error"), Some("Unhandled"));
    assert_eq!(
        json(&answer),
        serde_json::json!({"errorMessage": "asked to fail: now", "errorType": "TypeError"})
    );
    let counters = stats(host.port, "js");
    assert_eq!((counters["boots"].as_u64(), counters["requests"].as_u64()), (Some(1), Some(2)), "{counters}");
}
