//! One day: a seeded schedule of what happens to a fleet, the events AWS sends about it (lost, late,
//! repeated, forged, by SNS or EventBridge), the functions as Lambda runs them (the lifecycle-drainer one
//! invocation at a time, its reserved concurrency), and the checks after every step.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use integration_tests::spot_event;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use super::fleet::{CLUSTER, Fleet, Functions, GROUP, TASK, instance_of};
use super::{Report, Rng, STEP, STEPS};
use crate::stack::{eventbridge_lifecycle, health, instance_arn, now_iso, scheduled, state_change};

/// A handler invocation in flight, and what to do with its result.
pub enum Done {
    Lifecycle(Value, Result<lifecycle_drainer::Outcome, lifecycle_drainer::Error>),
    Spot(Result<spot_drainer::Reply, spot_drainer::Error>),
    ScaleIn(Result<scale_in_cleaner::Outcome, scale_in_cleaner::Error>),
}

type Invocation<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Done> + 'a>>;

fn lifecycle<'a>(f: &'a Functions, event: Value) -> Invocation<'a> {
    Box::pin(async move {
        let result =
            lifecycle_drainer::handler(&f.lifecycle, LambdaEvent::new(event.clone(), Context::default()))
                .await;
        Done::Lifecycle(event, result)
    })
}

fn spot<'a>(f: &'a Functions, event: Value) -> Invocation<'a> {
    Box::pin(async move {
        Done::Spot(spot_drainer::handler(&f.spot, LambdaEvent::new(event, Context::default())).await)
    })
}

fn scale_in<'a>(f: &'a Functions) -> Invocation<'a> {
    Box::pin(async move {
        let event = integration_tests::sample_event("scale-in-scheduled.json");
        Done::ScaleIn(
            scale_in_cleaner::handler(&f.scale_in, LambdaEvent::new(event, Context::default())).await,
        )
    })
}

fn count(report: &mut Report, kind: &'static str) {
    *report.events.entry(kind).or_default() += 1;
}

/// What the day has in flight: spot and scale-in invocations side by side, the lifecycle-drainer's one at a
/// time (reserved concurrency 1) from its queue, and events that arrive a step late.
pub struct Lambda<'a> {
    f: &'a Functions,
    in_flight: FuturesUnordered<Invocation<'a>>,
    lifecycle_now: FuturesUnordered<Invocation<'a>>,
    lifecycle_queue: VecDeque<Value>,
    late: Vec<(bool, Value)>,
}

impl<'a> Lambda<'a> {
    fn spot(&mut self, event: Value) {
        self.in_flight.push(spot(self.f, event));
    }

    fn lifecycle(&mut self, event: Value) {
        self.lifecycle_queue.push_back(event);
    }

    /// Runs what is in flight for `pause`, settling what ends.
    async fn run(&mut self, fleet: &mut Fleet, report: &mut Report, pause: Duration) {
        let pause = tokio::time::sleep(pause);
        tokio::pin!(pause);
        loop {
            if self.lifecycle_now.is_empty()
                && let Some(event) = self.lifecycle_queue.pop_front()
            {
                self.lifecycle_now.push(lifecycle(self.f, event));
            }
            tokio::select! {
                () = &mut pause => break,
                Some(done) = self.in_flight.next() => settle(fleet, report, done),
                Some(done) = self.lifecycle_now.next(), if !self.lifecycle_now.is_empty() => {
                    if let Done::Lifecycle(event, Err(_)) = &done {
                        // Lambda retries a failed asynchronous invocation a minute or two later.
                        self.late.push((true, event.clone()));
                    }
                    settle(fleet, report, done);
                }
            }
        }
    }
}

/// One seed: the schedule, the checks, the report.
pub async fn day(seed: u64) -> Report {
    let started = Instant::now();
    let mut rng = Rng(seed);
    let list_lag = [0.0, 0.5, 1.5][rng.below(3)];
    let (mut fleet, functions) = Fleet::new(list_lag).await;
    let mut report = Report { seed, ..Report::default() };
    let mut violations = Vec::new();
    seed_tasks(&mut fleet, &mut rng).await;
    let mut lambda = Lambda {
        f: &functions,
        in_flight: FuturesUnordered::new(),
        lifecycle_now: FuturesUnordered::new(),
        lifecycle_queue: VecDeque::new(),
        late: Vec::new(),
    };
    let mut faulty_steps = 0;
    for step in 0..STEPS + 16 {
        let scheduling = step < STEPS;
        fleet.boot_new_instances().await;
        ec2_moves(&mut fleet, &mut lambda, &mut rng, &mut report, step).await;
        if scheduling {
            if rng.below(9) == 8 {
                let errors = ["ThrottlingException", "InternalFailure", "503"];
                fleet.world.emulator.random_faults(seed.wrapping_mul(1000) + step as u64, 0.08, &errors);
                faulty_steps = 3;
                count(&mut report, "fault burst");
            } else {
                super::events::one(&mut fleet, &mut lambda, &mut rng, &mut report, step).await;
            }
        }
        if faulty_steps > 0 {
            faulty_steps -= 1;
            if faulty_steps == 0 {
                fleet.world.emulator.control("DELETE", "/faults/random", None);
            }
        }
        deliver(&mut fleet, &mut lambda, &mut rng, &mut report, scheduling).await;
        // The schedules: most ticks arrive; EventBridge may drop or delay one.
        if rng.chance(85) {
            lambda.lifecycle(scheduled());
        }
        if step % 3 == 0 {
            lambda.spot(scheduled());
        }
        lambda.run(&mut fleet, &mut report, STEP).await;
        fleet.check(step, &mut violations).await;
    }
    fleet.world.emulator.control("DELETE", "/faults/random", None);
    // The end of the day: the schedules run on until everything has settled.
    for _ in 0..6 {
        lambda.lifecycle(scheduled());
        lambda.spot(scheduled());
        lambda.run(&mut fleet, &mut report, STEP).await;
    }
    while let Some(done) = lambda.in_flight.next().await {
        settle(&mut fleet, &mut report, done);
    }
    fleet.check_at_the_end(&mut violations).await;
    report.faults = fleet.world.emulator.random_faults_injected();
    report.violations = violations;
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Service tasks spread over the fleet, a few standalone ones, and one service task that never stops.
async fn seed_tasks(fleet: &mut Fleet, rng: &mut Rng) {
    let mut service_tasks = Vec::new();
    for (i, arn) in fleet.registered.values().cloned().collect::<Vec<_>>().iter().enumerate() {
        let service = if i % 2 == 0 { "api" } else { "web" };
        service_tasks.extend(
            fleet.world.start_sized_tasks(CLUSTER, arn, 2, Some(format!("service:{service}")), TASK).await,
        );
        if rng.chance(30) {
            fleet.world.start_sized_tasks(CLUSTER, arn, 1, None, TASK).await;
        }
    }
    let stuck: Vec<String> = rng.pick(&service_tasks).cloned().into_iter().collect();
    fleet.world.emulator.draining_with(200 + rng.below(1500) as u64, 100, &stuck);
}

/// What EC2 does on its own: instances warned of termination go, warned of a stop stop, and stopped ones
/// run again (their `running` event lost, late, repeated or on time).
async fn ec2_moves(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    step: usize,
) {
    let doomed: Vec<String> =
        fleet.doomed.iter().filter(|(at, _)| *at <= step).map(|(_, id)| id.clone()).collect();
    fleet.doomed.retain(|(at, _)| *at > step);
    for id in doomed {
        if fleet.terminate(&id, false).await {
            count(report, "spot interruption (group replaces it)");
        }
    }
    let stopping: Vec<String> =
        fleet.to_stop.iter().filter(|(at, _)| *at <= step).map(|(_, id)| id.clone()).collect();
    fleet.to_stop.retain(|(at, _)| *at > step);
    for id in stopping {
        let draining: Vec<String> = fleet
            .container_instances()
            .await
            .into_iter()
            .filter(|(of, _, status, _)| *of == id && status == "DRAINING")
            .map(|(_, arn, _, _)| arn)
            .collect();
        if fleet.world.ec2.stop_instances().instance_ids(&id).send().await.is_ok() {
            fleet.stopped_drained.extend(draining);
            fleet.stopped.push(id);
            count(report, "spot stop");
        }
    }
    if step % 4 == 2
        && let Some(id) = fleet.stopped.pop()
    {
        for arn in fleet.all_registrations.get(&id).into_iter().flatten() {
            fleet.stopped_drained.remove(arn);
        }
        // Its group may have terminated it meanwhile: EC2 starts no terminated instance.
        if fleet.world.ec2.start_instances().instance_ids(&id).send().await.is_err() {
            count(report, "stopped spot instance terminated before it could run again");
            return;
        }
        if let Some(arn) = fleet.registered.get(&id).cloned() {
            fleet.world.emulator.agent(&arn, true);
        }
        count(report, "spot instance back");
        let event = state_change(&id, "running", &now_iso());
        match rng.below(4) {
            0 => count(report, "running event lost"),
            1 => {
                lambda.late.push((false, event));
                count(report, "running event late");
            }
            _ => lambda.spot(event),
        }
    }
}

/// Lifecycle messages reach the drainer as SNS delivers them: some lost, some twice, some a step late, some
/// by EventBridge instead (no `Time` in its `detail`).
async fn deliver(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    scheduling: bool,
) {
    let mut messages: Vec<(bool, Value)> =
        fleet.world.sns_events(&fleet.hooks).await.into_iter().map(|e| (true, e)).collect();
    messages.append(&mut lambda.late);
    for (to_lifecycle, event) in messages {
        if !to_lifecycle {
            lambda.spot(event);
            continue;
        }
        if instance_of(&event).is_empty() {
            continue; // a test notification
        }
        if scheduling && rng.chance(10) {
            count(report, "lifecycle message lost");
            continue;
        }
        if scheduling && rng.chance(15) {
            lambda.late.push((true, event));
            count(report, "late delivery");
            continue;
        }
        let event = match pending_by_eventbridge(fleet, &event, rng) {
            Some(eb) => {
                count(report, "lifecycle delivery by EventBridge");
                eb
            }
            None => event,
        };
        if rng.chance(15) {
            lambda.lifecycle(event.clone());
            count(report, "duplicate delivery");
        }
        lambda.lifecycle(event);
        count(report, "lifecycle delivery");
    }
}

/// A third of the messages, as EventBridge would carry the same action.
fn pending_by_eventbridge(fleet: &Fleet, event: &Value, rng: &mut Rng) -> Option<Value> {
    if event.get("Records").is_none() || !rng.chance(33) {
        return None;
    }
    let action = crate::stack::pending_action(&fleet.world, &instance_of(event))?;
    Some(eventbridge_lifecycle(&action))
}

/// What an invocation's end means for the checks.
fn settle(fleet: &mut Fleet, report: &mut Report, done: Done) {
    match done {
        Done::Lifecycle(_, Ok(o)) => {
            for a in &o.actions {
                if a.step == lifecycle_drainer::Step::TimedOut {
                    fleet.timed_out.insert(a.instance_id.clone());
                }
                let step: &str = a.step.into();
                fleet.tell(
                    &a.instance_id,
                    format!("lifecycle {} {step} {:?} {:?}", a.kind, a.container_instances, a.reason),
                );
            }
        }
        Done::Lifecycle(_, Err(_)) => count(report, "failed lifecycle invocation, retried"),
        Done::Spot(Err(_)) => count(report, "failed spot invocation"),
        Done::ScaleIn(result) => {
            let outcome = match &result {
                Ok(o) => Some(o),
                Err(scale_in_cleaner::Error::Incomplete { outcome, .. }) => Some(outcome.as_ref()),
                Err(_) => None,
            };
            if let Some(o) = outcome {
                if let Ok(text) = serde_json::to_value(o) {
                    for c in text["clusters"].as_array().into_iter().flatten() {
                        for i in c["instances"].as_array().into_iter().flatten() {
                            let id = i["ec2_instance_id"].as_str().unwrap_or_default().to_owned();
                            fleet.tell(&id, format!("scale-in {} {}", i["decision"], i["reason"]));
                        }
                    }
                }
                let removed = o.totals.terminated + o.totals.reaped;
                fleet.expected_desired -= i32::try_from(removed).unwrap_or(0);
            }
        }
        Done::Spot(Ok(reply)) => {
            for o in reply.outcomes() {
                let action: &str = o.action.into();
                fleet.tell(&o.instance_id, format!("spot {} {action} {:?}", o.trigger.name(), o.reason));
            }
        }
    }
}

/// Health's notice of maintenance EC2 schedules for `id` (by ARN or by id, as AWS names instances).
pub fn health_notice(id: &str, status: &str, rng: &mut Rng) -> Value {
    let named = if rng.chance(50) { instance_arn(id) } else { id.to_owned() };
    health("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", status, &[named])
}

/// The group's desired capacity above its minimum: whether a scale-in may decrement it.
pub async fn may_scale_in(fleet: &Fleet) -> bool {
    let (min, desired, _) = fleet.world.group_size(GROUP).await;
    desired > min
}

pub fn scale_in_run<'a>(lambda: &mut Lambda<'a>) {
    let f = lambda.f;
    lambda.in_flight.push(scale_in(f));
}

/// A spot-drainer event, now.
pub fn spot_now(lambda: &mut Lambda<'_>, event: Value) {
    lambda.spot(event);
}

/// A lifecycle-drainer event, queued.
pub fn lifecycle_now(lambda: &mut Lambda<'_>, event: Value) {
    lambda.lifecycle(event);
}

/// A warning of `kind` for `id`.
pub fn warning(kind: &str, id: &str) -> Value {
    spot_event(kind, id)
}

/// A forged ECS task stop on a container instance.
pub fn forged_stop(arn: &str) -> Value {
    json!({"version": "0", "id": "f", "detail-type": "ECS Task State Change", "source": "aws.ecs",
           "account": "123456789012", "time": now_iso(), "region": "us-east-1", "resources": [],
           "detail": {"clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"),
                      "containerInstanceArn": arn, "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/fleet/forged",
                      "lastStatus": "STOPPED"}})
}
