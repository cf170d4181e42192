//! One emulator process per test, and its control endpoint under `/_shipshape`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::Credentials;
use serde_json::{Value, json};

use crate::{REGION, repo_root};

fn python() -> PathBuf {
    std::env::var_os("SHIPSHAPE_EMULATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

/// Whether the emulator can start. Without it (no virtualenv yet) the tests that need it say what to run
/// and pass, unless `SHIPSHAPE_REQUIRE_EMULATOR` is set, as `make test` does: then they fail.
pub fn available() -> bool {
    let python = python();
    if python.exists() {
        return true;
    }
    assert!(
        std::env::var_os("SHIPSHAPE_REQUIRE_EMULATOR").is_none(),
        "the emulator's Python is missing at {}: run `make venv` first (or set SHIPSHAPE_EMULATOR_PYTHON)",
        python.display()
    );
    static SAID: Once = Once::new();
    // Past the test harness's output capture, so that a plain `cargo test` shows it once.
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "note: the AWS emulator is not installed ({} is missing), so the integration tests are skipped. \
             Run `make test` (it installs the emulator into .venv and runs everything), or `make unit` for \
             the tests that need no emulator.",
            python.display()
        );
    });
    false
}

/// One emulator process; stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    pub url: String,
    addr: String,
}

impl Emulator {
    pub fn start() -> Self {
        let python = python();
        assert!(available(), "the emulator is not installed");
        let mut child = Command::new(&python)
            .args(["-m", "shipshape_emulator", "--port", "0", "--quiet"])
            .current_dir(repo_root().join("tests/emulator"))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the emulator with {}: {e}", python.display()));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let url = match line.trim().rsplit_once(' ') {
            Some((head, url)) if head.ends_with("listening on") => url.to_owned(),
            _ => {
                let _ = child.kill();
                panic!("the emulator did not start (first line: {line:?}); see its stderr above");
            }
        };
        let addr = url.trim_start_matches("http://").to_owned();
        Emulator { child, url, addr }
    }

    /// An SDK configuration aimed at this emulator: the functions' own retry policy, with short backoffs
    /// so that retried throttles do not slow the suite down.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "emulator"))
            .retry_config(shared::aws::retry_config().with_initial_backoff(Duration::from_millis(10)))
            .timeout_config(shared::aws::timeout_config())
            .load()
            .await
    }

    /// A request to the control endpoint under `/_shipshape`; the JSON answer, or a panic naming the path.
    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream =
            TcpStream::connect(&self.addr).unwrap_or_else(|e| panic!("emulator at {}: {e}", self.addr));
        let request = format!(
            "{method} /_shipshape{path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let mut response = String::new();
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.read_to_string(&mut response))
            .unwrap_or_else(|e| panic!("control {method} {path}: {e}"));
        let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "control {method} {path}: {head}\n{payload}"
        );
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("control {method} {path}: {e}: {payload}"))
    }

    /// Calls received per `<service>:<Operation>` since start or the last [`Emulator::reset_calls`].
    pub fn calls(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.control("GET", "/calls", None)).unwrap_or_default()
    }

    /// Calls of one operation, e.g. `calls_of("ecs:UpdateContainerInstancesState")`.
    pub fn calls_of(&self, key: &str) -> u64 {
        self.calls().get(key).copied().unwrap_or(0)
    }

    /// All calls, summed.
    pub fn total_calls(&self) -> u64 {
        self.calls().values().sum()
    }

    pub fn reset_calls(&self) {
        self.control("POST", "/calls/reset", None);
    }

    /// The next `count` calls of `operation` fail with the AWS error `error`.
    pub fn fail(&self, operation: &str, count: u32, error: &str) {
        self.control(
            "POST",
            "/faults",
            Some(json!({"operation": operation, "count": count, "error": error})),
        );
    }

    /// Lifecycle actions pending and finished (`{"pending": [...], "finished": [...]}`).
    pub fn lifecycle_actions(&self) -> Value {
        self.control("GET", "/autoscaling", None)
    }

    /// Marks a container instance's ECS agent connected or disconnected.
    pub fn agent(&self, container_instance_arn: &str, connected: bool) {
        self.control(
            "POST",
            "/ecs/agent",
            Some(json!({"container_instance_arn": container_instance_arn, "connected": connected})),
        );
    }

    /// How fast service tasks on a DRAINING instance stop.
    pub fn draining(&self, stop_after_ms: u64, step_ms: u64) {
        self.control(
            "POST",
            "/ecs/draining",
            Some(json!({"stop_after_ms": stop_after_ms, "step_ms": step_ms})),
        );
    }

    /// Accept hook heartbeat timeouts down to `seconds` (AWS: 30).
    pub fn min_heartbeat_timeout(&self, seconds: u64) {
        self.control("POST", "/autoscaling", Some(json!({"min_heartbeat_timeout": seconds})));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
