//! The stack as deployed, around the emulator: the drainers wired to their triggers as `template.yaml`
//! wires them. What reaches the lifecycle topic is delivered to the lifecycle-drainer as SNS delivers it,
//! a tick is the schedules firing (the spot-drainer's sweep, the lifecycle-drainer's reconcile), and events
//! are handed to the function their rule targets. A scenario drives it and then asserts on AWS's state.

use std::time::{Duration, Instant};

use integration_tests::{Topic, World};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;

pub const CLUSTER: &str = "web";
pub const GROUP: &str = "web";
pub const HOOK: &str = "drain";

/// What an invocation returned: its summary as JSON, or its error's message.
pub type Answer = Result<Value, String>;

pub struct Stack {
    pub world: World,
    /// The stack's lifecycle topic, which our hooks notify.
    pub hooks: Topic,
    pub spot: spot_drainer::Deps,
    pub lifecycle: lifecycle_drainer::Deps,
    /// Every answer, in order, for a failing test to print.
    pub answers: Vec<(String, Answer)>,
}

fn env(pairs: &[(String, String)]) -> Env<'static> {
    let map: std::collections::HashMap<String, String> = pairs.iter().cloned().collect();
    Env::new(move |name| map.get(name).cloned())
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Stack {
    /// The functions configured for cluster and group `web` and hook `drain` on `hooks`, with times
    /// compressed for a test (hooks of a few seconds, a reconcile every tick); `spot` and `lifecycle` add
    /// or replace settings.
    pub fn new(world: World, hooks: Topic, spot: &[(&str, &str)], lifecycle: &[(&str, &str)]) -> Stack {
        let mut spot_env = owned(&[
            ("CLUSTERS", CLUSTER),
            ("DRAIN_ON", "terminate,stop,hibernate,rebalance,scheduled"),
            ("LIFECYCLE_HOOK_NAMES", HOOK),
            ("LIFECYCLE_TOPIC_ARN", &hooks.arn),
        ]);
        spot_env.extend(owned(spot));
        let mut lifecycle_env = owned(&[
            ("CLUSTERS", CLUSTER),
            ("LIFECYCLE_HOOK_NAMES", HOOK),
            ("AUTO_SCALING_GROUPS", GROUP),
            ("DRAIN_TIMEOUT_SECONDS", "60"),
            ("LIFECYCLE_TOPIC_ARN", &hooks.arn),
            ("RECONCILE_PERIOD_SECONDS", "1"),
            ("SETTLE_SECONDS", "2"),
            // What the drainer before the reconcile took: its poll loop and continuations.
            ("POLL_INTERVAL_SECONDS", "1"),
            ("POLL_WINDOW_SECONDS", "2"),
            ("CONTINUATION_TOPIC_ARN", &hooks.arn),
        ]);
        lifecycle_env.extend(owned(lifecycle));
        let spot = spot_drainer::Deps::new(
            &world.sdk,
            spot_drainer::Config::from_env(env(&spot_env)).expect("spot-drainer config"),
        );
        let lifecycle = lifecycle_drainer::Deps::new(
            &world.sdk,
            lifecycle_drainer::Config::from_env(env(&lifecycle_env)).expect("lifecycle-drainer config"),
        );
        Stack { world, hooks, spot, lifecycle, answers: Vec::new() }
    }

    pub async fn lifecycle(&mut self, payload: Value) -> Answer {
        let answer =
            lifecycle_drainer::handler(&self.lifecycle, LambdaEvent::new(payload, Context::default()))
                .await
                .map(|o| serde_json::to_value(o).expect("summary"))
                .map_err(|e| e.to_string());
        self.answers.push(("lifecycle-drainer".into(), answer.clone()));
        answer
    }

    pub async fn spot(&mut self, payload: Value) -> Answer {
        let answer = spot_drainer::handler(&self.spot, LambdaEvent::new(payload, Context::default()))
            .await
            .map(|o| serde_json::to_value(o).expect("summary"))
            .map_err(|e| e.to_string());
        self.answers.push(("spot-drainer".into(), answer.clone()));
        answer
    }

    /// SNS delivers what reached the lifecycle topic since the last delivery.
    pub async fn deliver(&mut self) -> Vec<Answer> {
        let mut out = Vec::new();
        for event in self.world.sns_events(&self.hooks).await {
            out.push(self.lifecycle(event).await);
        }
        out
    }

    /// What reached the lifecycle topic is lost: SNS never delivers it.
    pub async fn drop_deliveries(&self) -> usize {
        self.world.sns_events(&self.hooks).await.len()
    }

    /// The schedules fire: the spot-drainer's sweep and the lifecycle-drainer's reconcile.
    pub async fn tick(&mut self) {
        let _ = self.spot(scheduled()).await;
        let _ = self.lifecycle(scheduled()).await;
    }

    /// Delivers and ticks every `period` until `done` says so or `limit` has passed; whether it was done.
    pub async fn run_until(&mut self, limit: Duration, mut done: impl AsyncFnMut(&World) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.deliver().await;
            self.tick().await;
            if done(&self.world).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    }

    /// Runs the stack for `period`, delivering and ticking as `run_until` does.
    pub async fn run_for(&mut self, period: Duration) {
        self.run_until(period, async |_| false).await;
    }

    /// The answers so far, one per line, for an assertion's message.
    pub fn transcript(&self) -> String {
        self.answers.iter().map(|(f, a)| format!("{f}: {a:?}")).collect::<Vec<_>>().join("\n")
    }
}

/// The event a schedule sends (an EventBridge scheduled rule).
pub fn scheduled() -> Value {
    json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
           "source": "aws.events", "account": "123456789012", "time": now_iso(), "region": "us-east-1",
           "resources": ["arn:aws:events:us-east-1:123456789012:rule/shipshape-reconcile"], "detail": {}})
}

pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A container instance's status and its attributes with a value.
pub async fn described(world: &World, arn: &str) -> (String, Vec<(String, String)>) {
    let out = world
        .ecs
        .describe_container_instances()
        .cluster(CLUSTER)
        .container_instances(arn)
        .send()
        .await
        .expect("DescribeContainerInstances");
    let ci = &out.container_instances()[0];
    let attributes = ci
        .attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
        .filter(|(n, _)| n.starts_with("shipshape"))
        .collect();
    (ci.status().unwrap_or_default().to_owned(), attributes)
}

pub async fn status(world: &World, arn: &str) -> String {
    described(world, arn).await.0
}

/// The instance's termination record, once it is terminated.
pub fn termination(world: &World, instance: &str) -> Option<Value> {
    world.emulator.terminations().into_iter().find(|t| t["instance_id"] == instance)
}

/// The instance's finished lifecycle actions: how each ended (`completed` or `timed-out`) and its result.
pub fn finished_actions(world: &World, instance: &str) -> Vec<(String, String)> {
    let actions = world.emulator.lifecycle_actions();
    actions["finished"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["instance_id"] == instance)
        .map(|a| (a["how"].as_str().unwrap_or("").to_owned(), a["result"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The pending lifecycle action of an instance, as the emulator shows it (its token among the fields).
pub fn pending_action(world: &World, instance: &str) -> Option<Value> {
    let actions = world.emulator.lifecycle_actions();
    actions["pending"].as_array().into_iter().flatten().find(|a| a["instance_id"] == instance).cloned()
}

/// The EventBridge form of a pending terminating lifecycle action ("EC2 Instance-terminate Lifecycle
/// Action"): its `detail` has no `Time`; only the envelope has `time`.
pub fn eventbridge_lifecycle(action: &Value) -> Value {
    json!({"version": "0", "id": "2fe2b8f7-8e79-4c39-a3cf-3a9a3c1e2bd0",
           "detail-type": "EC2 Instance-terminate Lifecycle Action", "source": "aws.autoscaling",
           "account": "123456789012", "time": now_iso(), "region": "us-east-1",
           "resources": [format!("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/{}", action["group"].as_str().unwrap_or(""))],
           "detail": {"LifecycleActionToken": action["token"], "AutoScalingGroupName": action["group"],
                      "LifecycleHookName": action["hook"], "EC2InstanceId": action["instance_id"],
                      "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                      "Origin": "AutoScalingGroup", "Destination": "EC2"}})
}

/// An AWS Health event of scheduled EC2 maintenance naming `entities` (instance ids or ARNs).
pub fn health(code: &str, status_code: &str, entities: &[String]) -> Value {
    let affected: Vec<Value> = entities.iter().map(|e| json!({"entityValue": e})).collect();
    json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "AWS Health Event",
           "source": "aws.health", "account": "123456789012", "time": now_iso(), "region": "us-east-1",
           "resources": entities,
           "detail": {"eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_1",
                      "service": "EC2", "eventTypeCode": code, "eventTypeCategory": "scheduledChange",
                      "eventScopeCode": "ACCOUNT_SPECIFIC", "communicationId": "1234abc01232a4012345678-1",
                      "startTime": "Wed, 30 Dec 2026 10:00:00 GMT", "statusCode": status_code,
                      "eventRegion": "us-east-1", "affectedEntities": affected,
                      "eventDescription": [{"language": "en_US", "latestDescription": "EC2 has detected degradation of the underlying hardware hosting your Amazon EC2 instance."}]}})
}

/// An instance's ARN, as AWS Health names it in `affectedEntities`.
pub fn instance_arn(instance: &str) -> String {
    format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance}")
}

/// "EC2 Instance State-change Notification" for `state`, at `time`.
pub fn state_change(instance: &str, state: &str, time: &str) -> Value {
    json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
           "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
           "account": "123456789012", "time": time, "region": "us-east-1",
           "resources": [instance_arn(instance)], "detail": {"instance-id": instance, "state": state}})
}
