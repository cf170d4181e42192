//! One emulator per test (forked from a zygote that imported moto once), and its control endpoint under
//! `/_shipshape`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock};
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
    process: Process,
    pub url: String,
    addr: String,
}

/// Where an emulator runs: a child forked by the zygote (milliseconds to start), or a process of its own.
#[derive(Debug)]
enum Process {
    Forked(u32),
    Own(Child),
}

/// `python -m shipshape_emulator --zygote`: moto imported once for the whole test binary, each test's
/// emulator forked from it with fresh state. Starting a process of its own costs ~2 s of CPU per test.
#[derive(Debug)]
struct Zygote {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Zygote {
    fn spawn() -> Option<Zygote> {
        let mut child = Command::new(python())
            .args(["-m", "shipshape_emulator", "--zygote", "--quiet"])
            .current_dir(repo_root().join("tests/emulator"))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        if line.trim() != "shipshape-emulator zygote ready" {
            let _ = child.kill();
            return None;
        }
        Some(Zygote { child, stdin, stdout })
    }

    /// One command, one answer line.
    fn ask(&mut self, command: &str) -> Option<String> {
        writeln!(self.stdin, "{command}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        Some(line.trim().to_owned())
    }
}

/// The zygote of this test binary, started on first use; `None` when it cannot start (each test then
/// starts a process of its own) or `SHIPSHAPE_EMULATOR_ZYGOTE=0`. It exits when the test binary does: its
/// stdin closes, and it stops every child.
fn zygote() -> Option<&'static Mutex<Zygote>> {
    static ZYGOTE: OnceLock<Option<Mutex<Zygote>>> = OnceLock::new();
    ZYGOTE
        .get_or_init(|| {
            if std::env::var("SHIPSHAPE_EMULATOR_ZYGOTE").is_ok_and(|v| v == "0") {
                return None;
            }
            Zygote::spawn().map(Mutex::new)
        })
        .as_ref()
}

impl Emulator {
    pub fn start() -> Self {
        assert!(available(), "the emulator is not installed");
        if let Some(zygote) = zygote() {
            let answer = zygote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).ask("start");
            let started = answer.as_deref().and_then(|a| a.strip_prefix("started ")).and_then(|rest| {
                let (pid, url) = rest.split_once(' ')?;
                Some((pid.parse::<u32>().ok()?, url.to_owned()))
            });
            match started {
                Some((pid, url)) => {
                    let addr = url.trim_start_matches("http://").to_owned();
                    return Emulator { process: Process::Forked(pid), url, addr };
                }
                None => panic!(
                    "the emulator zygote did not start an emulator (answered {answer:?}); see its stderr above"
                ),
            }
        }
        let python = python();
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
        Emulator { process: Process::Own(child), url, addr }
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

    /// The EventBridge events EC2 and ECS would have sent since `cursor` (0: from the start), in order, and
    /// the cursor to ask from next time.
    pub fn events_since(&self, cursor: u64) -> (Vec<Value>, u64) {
        let answer = self.control("GET", &format!("/events?since={cursor}"), None);
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        (events, answer["cursor"].as_u64().unwrap_or(cursor))
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

    /// The next `count` calls of `operation` are answered `ms` milliseconds late (and then as usual).
    pub fn delay(&self, operation: &str, count: u32, ms: u64) {
        self.control(
            "POST",
            "/faults",
            Some(json!({"operation": operation, "count": count, "delay_ms": ms})),
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

    /// Tasks started less than `seconds` ago are listed by ListTasks but answered MISSING by
    /// DescribeTasks, as the eventually consistent ECS API may.
    pub fn describe_tasks_lag(&self, seconds: f64) {
        self.control("POST", "/ecs/consistency", Some(json!({"describe_tasks_lag_seconds": seconds})));
    }

    /// Tasks started less than `seconds` ago are not listed by ListTasks yet (the eventually consistent ECS
    /// API: "might not be immediately visible").
    pub fn list_tasks_lag(&self, seconds: f64) {
        self.control("POST", "/ecs/consistency", Some(json!({"list_tasks_lag_seconds": seconds})));
    }

    /// Schedules an EC2 event (`instance-retirement`, `instance-stop`, `system-reboot`, ...) for an instance,
    /// as `DescribeInstanceStatus` then lists it; its `InstanceEventId`.
    pub fn schedule_ec2_event(&self, instance_id: &str, code: &str, not_before: &str) -> String {
        let spec = json!({"instance_id": instance_id, "code": code, "not_before": not_before});
        let events = self.control("POST", "/ec2/events", Some(spec));
        let last = events.as_array().and_then(|e| e.last()).cloned().unwrap_or_default();
        last["InstanceEventId"].as_str().unwrap_or_default().to_owned()
    }

    /// An hour passes after the termination of `instance_id`: EC2 no longer knows it, and any request
    /// naming it fails with `InvalidInstanceID.NotFound`.
    pub fn forget_instance(&self, instance_id: &str) {
        self.control("POST", "/ec2/forget", Some(json!({"instance_id": instance_id})));
    }

    /// AWS cancels (`cancel`) or completes a scheduled EC2 event.
    pub fn end_ec2_event(&self, instance_id: &str, event_id: &str, cancel: bool) {
        let path = if cancel { "/ec2/events/cancel" } else { "/ec2/events/complete" };
        self.control("POST", path, Some(json!({"instance_id": instance_id, "event_id": event_id})));
    }

    /// The account's request throttling by token bucket (`settings`: `speed`, `buckets`, `background`).
    pub fn throttling(&self, settings: Value) {
        let mut body = json!({"enabled": true});
        if let (Some(b), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
            b.extend(extra.clone());
        }
        self.control("POST", "/throttling", Some(body));
    }

    /// Calls admitted and throttled per family and operation since throttling was turned on.
    pub fn throttling_status(&self) -> Value {
        self.control("GET", "/throttling", None)
    }

    /// Accept hook heartbeat timeouts down to `seconds` (AWS: 30).
    pub fn min_heartbeat_timeout(&self, seconds: u64) {
        self.control("POST", "/autoscaling", Some(json!({"min_heartbeat_timeout": seconds})));
    }

    /// Terminating lifecycle actions created from now on began `seconds` ago (their message's `Time`,
    /// their deadlines), their last heartbeat `heartbeat_age` seconds ago: a message that reaches the
    /// function late. 0 turns it off.
    pub fn lifecycle_started_ago(&self, seconds: u64, heartbeat_age: u64) {
        self.control(
            "POST",
            "/autoscaling",
            Some(json!({"lifecycle_started_ago_seconds": seconds, "heartbeat_age_seconds": heartbeat_age})),
        );
    }

    /// Every pending lifecycle action ages by `seconds`, as if that much time had passed for Auto Scaling.
    pub fn age_lifecycle_actions(&self, seconds: u64) {
        self.control("POST", "/autoscaling/advance", Some(json!({"seconds": seconds})));
    }

    /// Service tasks on a DRAINING instance: replaced and stopped `stop_after_ms` after the drain began,
    /// one state every `step_ms`; the tasks in `never_stop` are never stopped.
    pub fn draining_with(&self, stop_after_ms: u64, step_ms: u64, never_stop: &[String]) {
        self.control(
            "POST",
            "/ecs/draining",
            Some(json!({"stop_after_ms": stop_after_ms, "step_ms": step_ms, "never_stop": never_stop})),
        );
    }

    /// Every EC2 instance stopped so far (a warm pool stops them too), and the tasks on it that were not
    /// STOPPED then.
    pub fn stops(&self) -> Vec<Value> {
        self.control("GET", "/stops", None).as_array().cloned().unwrap_or_default()
    }

    /// Every EC2 instance terminated so far, and the tasks on it that were not STOPPED then.
    pub fn terminations(&self) -> Vec<Value> {
        self.control("GET", "/terminations", None).as_array().cloned().unwrap_or_default()
    }

    /// From now on each ECS and Auto Scaling request (the functions' services, not the harness's SNS and
    /// SQS) fails with probability `rate` with one of `errors` (seeded).
    pub fn random_faults(&self, seed: u64, rate: f64, errors: &[&str]) {
        let spec = json!({"seed": seed, "rate": rate, "errors": errors, "services": ["ecs", "autoscaling"]});
        self.control("POST", "/faults/random", Some(spec));
    }

    /// The random faults injected so far, by `<service>:<Operation>`.
    pub fn random_faults_injected(&self) -> BTreeMap<String, u64> {
        let stats = self.control("GET", "/faults/random", None);
        serde_json::from_value(stats["injected"].clone()).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        match &mut self.process {
            Process::Forked(pid) => {
                if let Some(zygote) = zygote() {
                    let _ = zygote
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .ask(&format!("stop {pid}"));
                }
            }
            Process::Own(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
