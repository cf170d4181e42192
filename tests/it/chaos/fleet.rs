//! The fleet a day runs on, what the day did to it, and the promises checked against it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use integration_tests::{Topic, World};
use serde_json::Value;
use shared::config::Env;
use shared::drain::{Marker, Owner};

pub const CLUSTER: &str = "fleet";
pub const GROUP: &str = "fleet";
pub const HOOK: &str = "shipshape-drain";
pub const MIN_SIZE: i32 = 2;
/// Per instance: 4096 CPU units and 7482 MiB registered by the emulator; tasks of 512 / 1024.
pub const TASK: (i32, i32) = (512, 1024);
/// Seconds: time is compressed about twentyfold (a 150 s hook, a 60 s reconcile period), but an
/// invocation's own work is not, so a hook keeps room for a queued invocation on a busy machine.
pub const HEARTBEAT_TIMEOUT: u16 = 8;

/// The functions, as deployed against this world.
pub struct Functions {
    pub spot: spot_drainer::Deps,
    pub lifecycle: lifecycle_drainer::Deps,
    pub scale_in: scale_in_cleaner::Deps,
}

pub struct Fleet {
    pub world: World,
    pub hooks: Topic,
    /// The live container instance ARN by EC2 instance id (where new tasks go).
    pub registered: BTreeMap<String, String>,
    /// Every container instance ARN ever registered, the stale ones among them.
    pub all_registrations: BTreeMap<String, Vec<String>>,
    /// Container instances drained by "another tool": never ours to reactivate.
    pub others_drains: BTreeSet<String>,
    /// Container instance ARNs seen DRAINING while Auto Scaling had their instance Terminating:*: never
    /// ACTIVE again.
    pub leaving_drained: BTreeSet<String>,
    /// Instances whose drain a lifecycle-drainer outcome reported as timed out.
    pub timed_out: BTreeSet<String>,
    /// Desired capacity the group should have: the start, less every decrementing termination.
    pub expected_desired: i32,
    /// Warned of a Spot stop: EC2 stops them at the step given.
    pub to_stop: Vec<(usize, String)>,
    /// Stopped by EC2: they run again later.
    pub stopped: Vec<String>,
    /// Container instance ARNs DRAINING when EC2 stopped their instance: they stay so while it is stopped.
    pub stopped_drained: BTreeSet<String>,
    /// Warned of a Spot termination: the group replaces them at the step given.
    pub doomed: Vec<(usize, String)>,
    /// Every instance EC2 ever scheduled maintenance for, and the events still open.
    pub scheduled_ever: BTreeSet<String>,
    pub open_events: Vec<(String, String)>,
    /// What the functions reported of each instance, in order: the story a violation is told with.
    pub story: BTreeMap<String, Vec<String>>,
}

fn config<T>(pairs: &[(&str, &str)], make: impl Fn(Env<'_>) -> Result<T, shared::config::ConfigError>) -> T {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    make(Env::new(move |name| map.get(name).cloned())).expect("config")
}

impl Fleet {
    pub async fn new(list_lag: f64) -> (Fleet, Functions) {
        let world = World::new().await;
        world.emulator.min_heartbeat_timeout(HEARTBEAT_TIMEOUT.into());
        world.emulator.draining(800, 100);
        world.emulator.list_tasks_lag(list_lag);
        let hooks = world.topic("hooks").await;
        let instances = world.group(GROUP, 6).await;
        world.set_min_size(GROUP, MIN_SIZE).await;
        world.cluster(CLUSTER).await;
        let mut registered = BTreeMap::new();
        for id in &instances {
            registered.insert(id.clone(), world.register(CLUSTER, id).await);
        }
        world
            .autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(GROUP)
            .lifecycle_hook_name(HOOK)
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(HEARTBEAT_TIMEOUT.into())
            .default_result("CONTINUE")
            .notification_target_arn(&hooks.arn)
            .role_arn("arn:aws:iam::123456789012:role/hooks")
            .send()
            .await
            .expect("PutLifecycleHook");
        world.sns_events(&hooks).await; // the test notification
        let topic = hooks.arn.clone();
        let spot = spot_drainer::Deps::new(
            &world.sdk,
            config(
                &[
                    ("CLUSTERS", CLUSTER),
                    ("DRAIN_ON", "terminate,stop,hibernate,scheduled"),
                    ("REPLACE_ON_SCHEDULED", "true"),
                    ("LIFECYCLE_HOOK_NAMES", HOOK),
                    ("LIFECYCLE_TOPIC_ARN", &topic),
                ],
                spot_drainer::Config::from_env,
            ),
        );
        let lifecycle = lifecycle_drainer::Deps::new(
            &world.sdk,
            config(
                &[
                    ("CLUSTERS", CLUSTER),
                    ("LIFECYCLE_HOOK_NAMES", HOOK),
                    ("LIFECYCLE_TOPIC_ARN", &topic),
                    ("AUTO_SCALING_GROUPS", GROUP),
                    ("RECONCILE_PERIOD_SECONDS", "2"),
                    // Longer than any ListTasks lag a day plays: an empty look is trusted only after it.
                    ("SETTLE_SECONDS", "2"),
                    ("DRAIN_TIMEOUT_SECONDS", "8"),
                ],
                lifecycle_drainer::Config::from_env,
            ),
        );
        let scale_in = scale_in_cleaner::Deps::new(
            &world.sdk,
            config(
                &[("CLUSTERS", CLUSTER), ("MIN_INSTANCE_AGE_MINUTES", "0"), ("MAX_REMOVALS_PER_RUN", "1")],
                scale_in_cleaner::Config::from_env,
            ),
        );
        let all_registrations = registered.iter().map(|(i, a)| (i.clone(), vec![a.clone()])).collect();
        let fleet = Fleet {
            world,
            hooks,
            registered,
            all_registrations,
            others_drains: BTreeSet::new(),
            leaving_drained: BTreeSet::new(),
            timed_out: BTreeSet::new(),
            expected_desired: 6,
            to_stop: Vec::new(),
            stopped: Vec::new(),
            stopped_drained: BTreeSet::new(),
            doomed: Vec::new(),
            scheduled_ever: BTreeSet::new(),
            open_events: Vec::new(),
            story: BTreeMap::new(),
        };
        (fleet, Functions { spot, lifecycle, scale_in })
    }

    /// Terminates an instance through its group, as a scale-in (`decrement`) or a replacement does.
    pub async fn terminate(&mut self, id: &str, decrement: bool) -> bool {
        let ok = self
            .world
            .autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .is_ok();
        if ok && decrement {
            self.expected_desired -= 1;
        }
        ok
    }

    /// The group's instances with their lifecycle state.
    pub async fn members(&self) -> Vec<(String, String)> {
        let out = self
            .world
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(GROUP)
            .send()
            .await;
        let Ok(out) = out else { return Vec::new() };
        out.auto_scaling_groups()
            .first()
            .map(|g| {
                g.instances()
                    .iter()
                    .map(|i| {
                        let state = i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap_or_default();
                        (i.instance_id().unwrap_or_default().to_owned(), state)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn in_service(&self) -> Vec<String> {
        self.members().await.into_iter().filter(|(_, s)| s == "InService").map(|(id, _)| id).collect()
    }

    /// New instances of the group register with the cluster, as their ECS agent does at boot.
    pub async fn boot_new_instances(&mut self) {
        for (id, _) in self.members().await {
            if !self.registered.contains_key(&id) {
                let arn = self.world.register(CLUSTER, &id).await;
                self.all_registrations.insert(id.clone(), vec![arn.clone()]);
                self.registered.insert(id, arn);
            }
        }
    }

    /// The agent registers the instance again (aws/amazon-ecs-agent#782): new tasks go to the new
    /// registration; the old one, with no task left, stays behind disconnected.
    pub async fn register_again(&mut self, id: &str) -> bool {
        let Some(old) = self.registered.get(id).cloned() else { return false };
        // An agent registers only on a running instance.
        if self.stopped.iter().any(|s| s == id) {
            return false;
        }
        let tasks = self.world.ecs.list_tasks().cluster(CLUSTER).container_instance(&old).send().await;
        if !tasks.is_ok_and(|t| t.task_arns().is_empty()) {
            return false;
        }
        let new = self.world.register(CLUSTER, id).await;
        self.world.emulator.agent(&old, false);
        self.all_registrations.entry(id.to_owned()).or_default().push(new.clone());
        self.registered.insert(id.to_owned(), new);
        true
    }

    /// Status and marker of every container instance still known to ECS, by ARN, with its EC2 instance.
    pub async fn container_instances(&self) -> Vec<(String, String, String, Option<Marker>)> {
        let arns: Vec<String> = self.all_registrations.values().flatten().cloned().collect();
        let mut out = Vec::new();
        for batch in arns.chunks(100) {
            let described = self
                .world
                .ecs
                .describe_container_instances()
                .cluster(CLUSTER)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await;
            let Ok(described) = described else { continue };
            for ci in described.container_instances() {
                let attributes: BTreeMap<String, String> = ci
                    .attributes()
                    .iter()
                    .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
                    .collect();
                out.push((
                    ci.ec2_instance_id().unwrap_or_default().to_owned(),
                    ci.container_instance_arn().unwrap_or_default().to_owned(),
                    ci.status().unwrap_or_default().to_owned(),
                    Marker::read(&attributes),
                ));
            }
        }
        out
    }

    /// ECS status of each instance's live registration.
    pub async fn statuses(&self) -> BTreeMap<String, String> {
        let live: BTreeSet<&String> = self.registered.values().collect();
        self.container_instances()
            .await
            .into_iter()
            .filter(|(_, arn, _, _)| live.contains(arn))
            .map(|(id, _, status, _)| (id, status))
            .collect()
    }

    /// What EC2 says of an instance: its state and when it was last launched.
    pub async fn ec2(&self, id: &str) -> Option<(String, DateTime<Utc>)> {
        let out = self.world.ec2.describe_instances().instance_ids(id).send().await.ok()?;
        let i = out.reservations().first()?.instances().first()?.clone();
        let launched = i.launch_time().and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))?;
        Some((i.state()?.name()?.as_str().to_owned(), launched))
    }

    /// Adds to an instance's story.
    pub fn tell(&mut self, id: &str, what: String) {
        let story = self.story.entry(id.to_owned()).or_default();
        story.push(what);
        if story.len() > 12 {
            story.remove(0);
        }
    }

    /// The last of an instance's story, for a violation.
    pub fn told(&self, id: &str) -> String {
        self.story.get(id).map(|s| s.join("; ")).unwrap_or_default()
    }

    /// The invariants that can be checked at any moment.
    pub async fn check(&mut self, step: usize, violations: &mut Vec<String>) {
        let cis = self.container_instances().await;
        let members: BTreeMap<String, String> = self.members().await.into_iter().collect();
        for (id, arn, status, marker) in &cis {
            if self.others_drains.contains(arn) && status == "ACTIVE" {
                violations
                    .push(format!("step {step}: {id}, drained by another tool, was set back to ACTIVE"));
            }
            if members.get(id).is_some_and(|s| s.starts_with("Terminating")) && status == "DRAINING" {
                self.leaving_drained.insert(arn.clone());
            }
            if self.leaving_drained.contains(arn) && status == "ACTIVE" {
                violations.push(format!(
                    "step {step}: {id} ({arn}) was set back to ACTIVE while Auto Scaling terminates it [{}]",
                    self.told(id)
                ));
            }
            if let Some(m) = marker.as_ref().filter(|m| m.held_by(Owner::LifecycleDrainer))
                && members.get(id).is_some_and(|s| s == "InService")
            {
                violations.push(format!(
                    "step {step}: {id} is in service, yet drained for a lifecycle action ({})",
                    m.value()
                ));
            }
            if let Some(m) =
                marker.as_ref().filter(|m| m.owner == Owner::SpotDrainer && m.reason == "scheduled")
                && !self.scheduled_ever.contains(id)
            {
                violations.push(format!(
                    "step {step}: {id} drained for maintenance EC2 never scheduled ({})",
                    m.value()
                ));
            }
            if self.stopped_drained.contains(arn) && status == "ACTIVE" {
                violations.push(format!(
                    "step {step}: {id} ({arn}) is stopped, yet its drain was undone [{}]",
                    self.told(id)
                ));
            }
        }
        let (min, desired, _) = self.world.group_size(GROUP).await;
        if desired < min {
            violations.push(format!("step {step}: group {GROUP} at {desired}, under its minimum {min}"));
        }
    }

    /// The invariants checked once every invocation has returned and the schedules have run a while.
    pub async fn check_at_the_end(&self, violations: &mut Vec<String>) {
        for t in self.world.emulator.terminations() {
            let id = t["instance_id"].as_str().unwrap_or_default();
            let left = t["tasks_not_stopped"].as_array().map_or(0, Vec::len);
            if left > 0 && !self.timed_out.contains(id) {
                violations
                    .push(format!("{id} terminated ({}) with {left} task(s) not STOPPED: {t}", t["how"]));
            }
        }
        let actions = self.world.emulator.lifecycle_actions();
        for a in actions["finished"].as_array().into_iter().flatten() {
            if a["hook"] == HOOK && a["how"] != "completed" {
                violations.push(format!("a lifecycle action of our hook expired: {a}"));
            }
        }
        for a in actions["pending"].as_array().into_iter().flatten() {
            violations.push(format!("a lifecycle action is still pending at the end: {a}"));
        }
        self.nothing_left_draining_for_good(violations).await;
        let (_, desired, _) = self.world.group_size(GROUP).await;
        if desired != self.expected_desired {
            violations.push(format!(
                "desired capacity {desired}, but the removals leave {}",
                self.expected_desired
            ));
        }
    }

    /// A drain of ours whose reason EC2 shows gone is undone by the reconcile: an instance that runs again
    /// after our stop drain, or whose maintenance was cancelled, is not left DRAINING.
    async fn nothing_left_draining_for_good(&self, violations: &mut Vec<String>) {
        let open: BTreeSet<&String> = self.open_events.iter().map(|(i, _)| i).collect();
        for (id, arn, status, marker) in self.container_instances().await {
            let Some(m) = marker.filter(|m| m.held_by(Owner::SpotDrainer)) else { continue };
            if status != "DRAINING" || self.registered.get(&id) != Some(&arn) {
                continue;
            }
            let Some((state, launched)) = self.ec2(&id).await else { continue };
            let back = state == "running" && launched > m.at;
            let gone = match m.reason.as_str() {
                "stop" | "hibernate" => back,
                "scheduled" => state == "running" && !open.contains(&id),
                _ => false,
            };
            if gone {
                violations.push(format!(
                    "{id} left DRAINING though its reason is gone ({}, EC2 {state})",
                    m.value()
                ));
            }
        }
    }
}

/// The instance a lifecycle message (SNS or EventBridge) is about.
pub fn instance_of(event: &Value) -> String {
    if let Some(id) = event["detail"]["EC2InstanceId"].as_str() {
        return id.to_owned();
    }
    let body: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap_or("{}"))
        .unwrap_or_default();
    body["EC2InstanceId"].as_str().unwrap_or_default().to_owned()
}
