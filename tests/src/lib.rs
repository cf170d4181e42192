//! The test harness: a local AWS emulator per test, SDK clients bound to it, and fixtures built with the
//! same SDK the functions use.
//!
//! The emulator is moto in server mode with shipshape's extensions (`tests/emulator/`), run from the
//! project's virtualenv (`make venv` creates it; `SHIPSHAPE_EMULATOR_PYTHON` points elsewhere). Each test
//! gets its own process on a free loopback port, so call counts and faults never leak between tests.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a harness failure must stop the test, loudly")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::Credentials;
use serde_json::{Value, json};

pub const REGION: &str = "us-east-1";
/// moto accepts any well-formed AMI id.
pub const AMI: &str = "ami-12c6146b";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
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
        let root = repo_root();
        let python = std::env::var_os("SHIPSHAPE_EMULATOR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        assert!(
            python.exists(),
            "the emulator's Python is missing at {}: run `make venv` first (or set SHIPSHAPE_EMULATOR_PYTHON)",
            python.display()
        );
        let mut child = Command::new(&python)
            .args(["-m", "shipshape_emulator", "--port", "0", "--quiet"])
            .current_dir(root.join("tests/emulator"))
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
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An emulator with clients and fixture builders.
#[derive(Debug)]
pub struct World {
    pub emulator: Emulator,
    pub sdk: SdkConfig,
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl World {
    pub async fn new() -> Self {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        World {
            ecs: aws_sdk_ecs::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            sdk,
            emulator,
        }
    }

    /// An Auto Scaling group `name` of `count` running instances; their EC2 ids.
    pub async fn group(&self, name: &str, count: i32) -> Vec<String> {
        let lc = format!("{name}-lc");
        self.autoscaling
            .create_launch_configuration()
            .launch_configuration_name(&lc)
            .image_id(AMI)
            .instance_type("m5.large")
            .send()
            .await
            .expect("CreateLaunchConfiguration");
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_configuration_name(&lc)
            .min_size(0)
            .max_size(count.max(1) * 2)
            .desired_capacity(count)
            .availability_zones(format!("{REGION}a"))
            .send()
            .await
            .expect("CreateAutoScalingGroup");
        let groups = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        groups.auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }

    pub async fn cluster(&self, name: &str) -> String {
        let out = self.ecs.create_cluster().cluster_name(name).send().await.expect("CreateCluster");
        out.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default().to_owned()
    }

    /// Registers an EC2 instance with a cluster, as the ECS agent does at boot; the container instance ARN.
    pub async fn register(&self, cluster: &str, instance_id: &str) -> String {
        let document =
            json!({"instanceId": instance_id, "region": REGION, "availabilityZone": format!("{REGION}a")});
        let out = self
            .ecs
            .register_container_instance()
            .cluster(cluster)
            .instance_identity_document(document.to_string())
            .send()
            .await
            .expect("RegisterContainerInstance");
        out.container_instance().and_then(|c| c.container_instance_arn()).unwrap_or_default().to_owned()
    }

    /// Starts `count` copies of a small standalone task on a container instance; their ARNs.
    pub async fn start_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
    ) -> Vec<String> {
        self.start_tasks_in(cluster, container_instance_arn, count, None).await
    }

    /// Starts `count` tasks of service `service` (group `service:<name>`, as ECS sets for service tasks):
    /// the emulator stops these when their instance drains.
    pub async fn start_service_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        service: &str,
        count: usize,
    ) -> Vec<String> {
        self.start_tasks_in(cluster, container_instance_arn, count, Some(format!("service:{service}"))).await
    }

    async fn start_tasks_in(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
        group: Option<String>,
    ) -> Vec<String> {
        self.start_sized_tasks(cluster, container_instance_arn, count, group, (256, 512)).await
    }

    /// Starts `count` tasks of `cpu` units and `memory` MiB (container-level sizes, as most EC2 task
    /// definitions have), in task group `group` (`service:<name>` for a service's tasks).
    pub async fn start_sized_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
        group: Option<String>,
        (cpu, memory): (i32, i32),
    ) -> Vec<String> {
        use aws_sdk_ecs::types::ContainerDefinition;
        let family =
            if (cpu, memory) == (256, 512) { "web".to_owned() } else { format!("task-{cpu}-{memory}") };
        self.ecs
            .register_task_definition()
            .family(&family)
            .container_definitions(
                ContainerDefinition::builder().name("app").image("nginx").cpu(cpu).memory(memory).build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let mut arns = Vec::new();
        for _ in 0..count {
            let out = self
                .ecs
                .start_task()
                .cluster(cluster)
                .task_definition(&family)
                .container_instances(container_instance_arn)
                .set_group(group.clone())
                .send()
                .await
                .expect("StartTask");
            arns.extend(out.tasks().iter().filter_map(|t| t.task_arn().map(str::to_owned)));
        }
        arns
    }

    /// A container instance's attribute value; `None` when it does not have the attribute.
    pub async fn attribute(&self, cluster: &str, container_instance_arn: &str, name: &str) -> Option<String> {
        let out = self
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .send()
            .await
            .expect("DescribeContainerInstances");
        let ci = out.container_instances().first()?;
        ci.attributes().iter().find(|a| a.name() == name).map(|a| a.value().unwrap_or_default().to_owned())
    }

    /// An Auto Scaling group's (min size, desired capacity, instances in it).
    pub async fn group_size(&self, name: &str) -> (i32, i32, usize) {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        let g = &out.auto_scaling_groups()[0];
        (g.min_size().unwrap_or(0), g.desired_capacity().unwrap_or(0), g.instances().len())
    }

    pub async fn set_min_size(&self, name: &str, min: i32) {
        self.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(min)
            .send()
            .await
            .expect("UpdateAutoScalingGroup");
    }

    /// A container instance's status as ECS reports it now.
    pub async fn status(&self, cluster: &str, container_instance_arn: &str) -> String {
        let out = self
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .send()
            .await
            .expect("DescribeContainerInstances");
        out.container_instances()[0].status().unwrap_or_default().to_owned()
    }
}

/// An SNS topic with an SQS queue subscribed, to read what is published to it.
#[derive(Debug, Clone)]
pub struct Topic {
    pub arn: String,
    pub queue_url: String,
}

impl World {
    pub async fn topic(&self, name: &str) -> Topic {
        let arn = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn
            .unwrap_or_default();
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .unwrap_or_default();
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes");
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        self.sns
            .subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("Subscribe");
        Topic { arn, queue_url }
    }

    /// What reached the topic since the last call, each as the SNS event Lambda would receive.
    pub async fn sns_events(&self, topic: &Topic) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&topic.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("ReceiveMessage");
            if out.messages().is_empty() {
                return events;
            }
            for m in out.messages() {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope");
                events.push(json!({"Records": [{
                    "EventSource": "aws:sns", "EventVersion": "1.0",
                    "EventSubscriptionArn": format!("{}:sub", topic.arn),
                    "Sns": {
                        "Type": "Notification", "MessageId": envelope["MessageId"], "TopicArn": topic.arn,
                        "Subject": envelope["Subject"], "Message": envelope["Message"], "Timestamp": envelope["Timestamp"],
                        "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                        "MessageAttributes": {}
                    }
                }]}));
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&topic.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
            }
        }
    }

    /// A terminating lifecycle hook `drain` on `group` that notifies `topic`.
    pub async fn hook(&self, group: &str, topic: &Topic, heartbeat_timeout: i32, default_result: &str) {
        self.autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name("drain")
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(heartbeat_timeout)
            .default_result(default_result)
            .notification_target_arn(&topic.arn)
            .role_arn("arn:aws:iam::123456789012:role/hooks")
            .send()
            .await
            .expect("PutLifecycleHook");
    }

    /// The group's lifecycle state for an instance; `None` once it left the group.
    pub async fn lifecycle_state(&self, instance_id: &str) -> Option<String> {
        let out = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .expect("DescribeAutoScalingInstances");
        out.auto_scaling_instances().first().and_then(|i| i.lifecycle_state().map(str::to_owned))
    }

    pub async fn terminate(&self, instance_id: &str) {
        self.autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .expect("TerminateInstanceInAutoScalingGroup");
    }
}

/// An empty zip archive (just its end-of-central-directory record): enough code for a function that is
/// never run.
const EMPTY_ZIP: [u8; 22] = [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

impl World {
    /// Function `name` with published versions 1..=`versions` and alias `live` on version 1.
    pub async fn function(&self, name: &str, versions: usize) {
        use aws_sdk_lambda::primitives::Blob;
        use aws_sdk_lambda::types::{FunctionCode, Runtime};
        let role = self.emulator.control("POST", "/iam/role", Some(json!({"name": format!("{name}-role")})));
        self.lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role["arn"].as_str().unwrap_or_default())
            .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP.to_vec())).build())
            .send()
            .await
            .expect("CreateFunction");
        for _ in 0..versions {
            self.new_code(name).await;
            self.lambda.publish_version().function_name(name).send().await.expect("PublishVersion");
        }
        self.lambda
            .create_alias()
            .function_name(name)
            .name("live")
            .function_version("1")
            .send()
            .await
            .expect("CreateAlias");
    }

    /// Uploads code to `$LATEST`, so that the next PublishVersion has something new to publish.
    pub async fn new_code(&self, name: &str) {
        self.lambda
            .update_function_code()
            .function_name(name)
            .zip_file(aws_sdk_lambda::primitives::Blob::new(EMPTY_ZIP.to_vec()))
            .send()
            .await
            .expect("UpdateFunctionCode");
    }

    /// The alias's (primary version, additional version weights).
    pub async fn alias(
        &self,
        function: &str,
        alias: &str,
    ) -> (String, std::collections::HashMap<String, f64>) {
        let out = self.lambda.get_alias().function_name(function).name(alias).send().await.expect("GetAlias");
        (
            out.function_version().unwrap_or_default().to_owned(),
            out.routing_config().and_then(|c| c.additional_version_weights()).cloned().unwrap_or_default(),
        )
    }

    /// Lambda's per-version metrics behind an alias, as Lambda publishes them, timestamped now.
    pub async fn lambda_metrics(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        invocations: f64,
        errors: f64,
    ) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let dims = vec![
            Dimension::builder().name("FunctionName").value(function).build(),
            Dimension::builder().name("Resource").value(format!("{function}:{alias}")).build(),
            Dimension::builder().name("ExecutedVersion").value(version).build(),
        ];
        let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
        let datum = |name: &str, value: f64| {
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dims.clone()))
                .value(value)
                .timestamp(now)
                .build()
        };
        self.cloudwatch
            .put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(datum("Invocations", invocations))
            .metric_data(datum("Errors", errors))
            .send()
            .await
            .expect("PutMetricData");
    }

    /// A CloudWatch alarm `name` in state `state` (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub async fn alarm(&self, name: &str, state: &str) {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("PutMetricAlarm");
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(StateValue::from(state))
            .state_reason("set by the test")
            .send()
            .await
            .expect("SetAlarmState");
    }
}

/// A sample event from `events/`.
pub fn sample_event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample spot event with its instance id replaced by `instance_id`.
pub fn spot_event(name: &str, instance_id: &str) -> Value {
    let mut event = sample_event(name);
    event["detail"]["instance-id"] = json!(instance_id);
    event
}
