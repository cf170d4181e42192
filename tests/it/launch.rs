//! lifecycle-drainer's launches, warm pools and stopped-task completions against the emulator: the group's
//! hooks send their messages to SNS, the emulator's event feed gives the ECS events EventBridge would send,
//! and the test hands both to the handler.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use integration_tests::{Topic, World};
use lambda_runtime::{Context, LambdaEvent};
use lifecycle_drainer::{ActionReport, Config, Deps, Error, LifecycleResult, Outcome, Step, handler};
use serde_json::{Value, json};
use shared::config::Env;

fn deps(world: &World, extra: &[(&str, &str)]) -> Deps {
    let base = [
        ("CLUSTERS", "web"),
        ("LIFECYCLE_HOOK_NAMES", "drain,drain-launch"),
        ("RECONCILE_PERIOD_SECONDS", "1"),
        ("SETTLE_SECONDS", "1"),
        ("DRAIN_TIMEOUT_SECONDS", "60"),
        ("LAUNCH_TIMEOUT_SECONDS", "30"),
    ];
    let map: HashMap<&str, &str> = base.iter().chain(extra).copied().collect();
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

/// The lifecycle message inside an SNS event.
fn message(event: &Value) -> Value {
    serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
}

/// The lifecycle messages that reached the topic (test notifications left out).
async fn lifecycle_events(world: &World, topic: &Topic) -> Vec<Value> {
    let events = world.sns_events(topic).await;
    events.into_iter().filter(|e| message(e).get("LifecycleTransition").is_some()).collect()
}

struct Scene {
    world: World,
    topic: Topic,
    first: String,
    first_arn: String,
}

/// Group `web` of one instance (at most two), registered in cluster `web`, with a launching hook
/// `drain-launch` and a terminating hook `drain` on topic `hooks`.
async fn scene() -> Scene {
    let world = World::new().await;
    world.emulator.draining(300, 100);
    let topic = world.topic("hooks").await;
    let first = world.group("web", 1).await.remove(0);
    world.cluster("web").await;
    let first_arn = world.register("web", &first).await;
    world.launch_hook("web", "drain-launch", &topic, 300).await;
    world.hook("web", &topic, 300, "ABANDON").await;
    world.sns_events(&topic).await;
    Scene { world, topic, first, first_arn }
}

/// Scales `web` out to two: the new instance waits in Pending:Wait; its id and launch message.
async fn launch_one(s: &Scene) -> (String, Value) {
    s.world.set_desired("web", 2).await;
    let mut events = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = events.remove(0);
    let m = message(&event);
    assert_eq!(m["LifecycleTransition"], "autoscaling:EC2_INSTANCE_LAUNCHING");
    let id = m["EC2InstanceId"].as_str().unwrap().to_owned();
    assert_eq!(s.world.lifecycle_state(&id).await.as_deref(), Some("Pending:Wait"));
    (id, event)
}

/// The report of `instance`'s action in an outcome.
fn of(outcome: &Outcome, instance: &str) -> Option<ActionReport> {
    outcome.actions.iter().find(|a| a.instance_id == instance).cloned()
}

/// Runs the schedule until `instance`'s action ends (or 20 s pass): its last report.
async fn until_over(deps: &Deps, instance: &str) -> Option<ActionReport> {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < end {
        let outcome = invoke(deps, crate::stack::scheduled()).await.unwrap();
        if let Some(a) = of(&outcome, instance) {
            let over = a.step.ends_action();
            last = Some(a);
            if over {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

/// A launch waits while the agent is not connected, and goes in service once it is.
#[tokio::test]
async fn a_launch_goes_in_service_only_once_its_agent_connects() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (id, event) = launch_one(&s).await;
    let arn = s.world.register("web", &id).await;
    s.world.emulator.agent(&arn, false);
    let deps = deps(&s.world, &[]);
    let first = of(&invoke(&deps, event.clone()).await.unwrap(), &id).unwrap();
    assert_eq!(first.step, Step::NotYet, "{first:?}");
    assert!(first.reason.as_deref().unwrap().contains("agent is not connected"), "{first:?}");
    invoke(&deps, crate::stack::scheduled()).await.unwrap();
    assert_eq!(s.world.lifecycle_state(&id).await.as_deref(), Some("Pending:Wait"), "held meanwhile");
    s.world.emulator.agent(&arn, true);
    let ready = until_over(&deps, &id).await.unwrap();
    assert_eq!((ready.step, ready.result), (Step::Ready, Some(LifecycleResult::Continue)), "{ready:?}");
    assert_eq!(ready.container_instances, std::slice::from_ref(&arn));
    assert_eq!(s.world.lifecycle_state(&id).await.as_deref(), Some("InService"));
    // The same message again (SNS delivers at least once): the launch is over, nothing changes.
    let again = invoke(&deps, event).await.unwrap();
    assert_eq!(again.actions, [], "{again:?}");
}

/// An instance whose agent never joins the cluster is abandoned: Auto Scaling terminates it and launches
/// another, which waits for the hook again.
#[tokio::test]
async fn a_launch_never_ready_is_abandoned_and_replaced() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (id, event) = launch_one(&s).await;
    let deps = deps(&s.world, &[("LAUNCH_TIMEOUT_SECONDS", "3")]);
    invoke(&deps, event).await.unwrap();
    let over = until_over(&deps, &id).await.unwrap();
    assert_eq!((over.step, over.result), (Step::NotReady, Some(LifecycleResult::Abandon)), "{over:?}");
    assert!(over.reason.as_deref().unwrap().contains("no container instance"), "{over:?}");
    let terminated = s.world.emulator.terminations();
    assert!(terminated.iter().any(|t| t["instance_id"] == id.as_str()), "{terminated:#?}");
    let replacement = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(replacement.len(), 1, "the group launches another");
    assert_ne!(message(&replacement[0])["EC2InstanceId"], id.as_str());
}

/// A launch message about an instance in service is stale or forged: it causes a look, nothing else.
#[tokio::test]
async fn a_launch_message_for_an_instance_in_service_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (_, event) = launch_one(&s).await;
    let mut forged = message(&event);
    forged["EC2InstanceId"] = json!(s.first);
    let mut forged_event = event.clone();
    forged_event["Records"][0]["Sns"]["Message"] = json!(forged.to_string());
    s.world.emulator.reset_calls();
    let outcome = invoke(&deps(&s.world, &[]), forged_event).await.unwrap();
    assert!(of(&outcome, &s.first).is_none(), "{outcome:?}");
    assert_eq!(s.world.lifecycle_state(&s.first).await.as_deref(), Some("InService"));
}

/// Into the warm pool (completed at once), then out of it (ready once its agent connects).
#[tokio::test]
async fn a_warm_pool_instance_goes_in_at_once_and_out_when_ready() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[]);
    s.world.warm_pool("web", 0).await;
    let mut into_pool = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(into_pool.len(), 1, "{into_pool:#?}");
    let warm = message(&into_pool[0])["EC2InstanceId"].as_str().unwrap().to_owned();
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Pending:Wait"));
    let entered = invoke(&deps, into_pool.remove(0)).await.unwrap();
    let entered = of(&entered, &warm).unwrap_or_else(|| panic!("{entered:?}"));
    assert_eq!(entered.step, Step::EnteredWarmPool, "{entered:?}");
    assert_eq!(entered.warnings, Vec::<String>::new(), "its agent is not up in the pool");
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Stopped"));
    let (id, out_of_pool) = launch_one(&s).await;
    assert_eq!(id, warm, "the group takes the warm instance");
    assert_eq!(message(&out_of_pool)["Origin"], "WarmPool");
    s.world.register("web", &warm).await;
    let ready = of(&invoke(&deps, out_of_pool).await.unwrap(), &warm).unwrap();
    assert_eq!(ready.step, Step::Ready, "{ready:?}");
}

/// The last task's stop completes the drain at once, without waiting for the schedule; an earlier stop, or
/// a forged event, completes nothing.
#[tokio::test]
async fn the_last_tasks_stop_completes_the_drain() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let arn = s.first_arn.clone();
    // Somewhere for the drain's replacement tasks to go.
    let spare = s.world.group("spare", 1).await;
    s.world.register("web", &spare[0]).await;
    s.world.emulator.draining(1500, 300);
    s.world.start_service_tasks("web", &arn, "api", 2).await;
    s.world.terminate(&s.first).await;
    let termination = lifecycle_events(&s.world, &s.topic).await.pop().unwrap();
    let deps = deps(&s.world, &[]);
    let (_, mut cursor) = s.world.emulator.events_since(0);
    // Before the drain began: a stop event (forged here) finds the instance ACTIVE and completes nothing.
    let forged = json!({"version": "0", "id": "f", "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/web",
        "containerInstanceArn": arn, "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/web/forged",
        "lastStatus": "STOPPED"}});
    let early = invoke(&deps, forged).await.unwrap();
    assert_eq!(early.actions, [], "{early:?}");
    let drained = of(&invoke(&deps, termination).await.unwrap(), &s.first).unwrap();
    assert_eq!(drained.step, Step::Drained);
    // No schedule from here on: only the stopped tasks' events.
    let mut handled = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for e in stops_on(&s.world, &arn, &mut cursor) {
            handled.push(invoke(&deps, e).await.unwrap());
        }
        if handled.iter().any(|o| of(o, &s.first).is_some_and(|a| a.step == Step::Completed)) {
            break;
        }
    }
    let completed: Vec<ActionReport> =
        handled.iter().filter_map(|o| of(o, &s.first)).filter(|a| a.step == Step::Completed).collect();
    assert_eq!(completed.len(), 1, "{handled:#?}");
    let terminated = s.world.emulator.terminations();
    assert_eq!(terminated.len(), 1, "{terminated:#?}");
    assert!(terminated[0]["tasks_not_stopped"].as_array().is_some_and(Vec::is_empty), "{terminated:#?}");
}

/// The "ECS Task State Change" events of tasks STOPPED on container instance `arn` since `cursor`, which
/// moves past them.
fn stops_on(world: &World, arn: &str, cursor: &mut u64) -> Vec<Value> {
    let (events, next) = world.emulator.events_since(*cursor);
    *cursor = next;
    events
        .into_iter()
        .filter(|e| e["detail-type"] == "ECS Task State Change" && e["detail"]["lastStatus"] == "STOPPED")
        .filter(|e| e["detail"]["containerInstanceArn"] == arn)
        .collect()
}

/// A task that stops while another stays completes nothing, and costs one call: the drain goes on to its
/// deadline.
#[tokio::test]
async fn a_stop_with_tasks_left_completes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let arn = s.first_arn.clone();
    let spare = s.world.group("spare", 1).await;
    s.world.register("web", &spare[0]).await;
    let tasks = s.world.start_service_tasks("web", &arn, "api", 2).await;
    s.world.emulator.draining_with(500, 100, &tasks[..1]);
    s.world.terminate(&s.first).await;
    let termination = lifecycle_events(&s.world, &s.topic).await.pop().unwrap();
    let deps = deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "4")]);
    let (_, mut cursor) = s.world.emulator.events_since(0);
    invoke(&deps, termination).await.unwrap();
    let mut handled = Vec::new();
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for e in stops_on(&s.world, &arn, &mut cursor) {
            handled.push(invoke(&deps, e).await.unwrap());
        }
    }
    // Each stop is acknowledged without a look: ECS counts a task still on the instance.
    assert!(!handled.is_empty(), "no stop event");
    for o in &handled {
        assert_eq!(o.actions, [], "{o:#?}");
        assert_eq!(o.reason.as_deref(), Some("1 task(s) still on its container instance"), "{o:#?}");
    }
    let over = until_over(&deps, &s.first).await.unwrap();
    assert_eq!((over.step, over.tasks_left), (Step::TimedOut, 1), "{over:?}");
}
