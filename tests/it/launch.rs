//! lifecycle-drainer's launches, warm pools and stopped-task completions against the emulator: the group's
//! hooks send their messages to SNS, the emulator's event feed gives the ECS events EventBridge would send,
//! and the test hands both to the handler.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::{Topic, World};
use lambda_runtime::{Context, LambdaEvent};
use lifecycle_drainer::{Action, Config, Deps, Error, LifecycleResult, Outcome, handler};
use serde_json::{Value, json};
use shared::config::Env;

const MARKER: &str = "shipshape.lifecycle-drainer.drained-for";

fn deps(world: &World, extra: &[(&str, &str)]) -> Deps {
    let base = [
        ("CLUSTERS", "web"),
        ("LIFECYCLE_HOOK_NAMES", "drain,drain-launch"),
        ("POLL_INTERVAL_SECONDS", "1"),
        ("POLL_WINDOW_SECONDS", "60"),
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

/// A launch waits while the agent is not connected, and goes in service once it is.
#[tokio::test]
async fn a_launch_goes_in_service_only_once_its_agent_connects() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (id, event) = launch_one(&s).await;
    let arn = s.world.register("web", &id).await;
    s.world.emulator.agent(&arn, false);
    let deps = deps(&s.world, &[]);

    let connect = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(s.world.lifecycle_state(&id).await.as_deref(), Some("Pending:Wait"), "held meanwhile");
        s.world.emulator.agent(&arn, true);
    };
    let (outcome, ()) = tokio::join!(invoke(&deps, event.clone()), connect);
    let outcome = outcome.unwrap();

    assert_eq!(outcome.action, Action::Ready, "{outcome:?}");
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    assert_eq!(outcome.container_instance_arn.as_deref(), Some(arn.as_str()));
    assert!(outcome.polls >= 2, "{outcome:?}");
    assert_eq!(s.world.lifecycle_state(&id).await.as_deref(), Some("InService"));
    assert_eq!(s.world.status("web", &arn).await, "ACTIVE");

    // The same message again (SNS delivers at least once): the launch is over, nothing changes.
    let again = invoke(&deps, event).await.unwrap();
    assert_eq!(again.action, Action::AlreadyCompleted, "{again:?}");
}

/// An instance whose agent never joins the cluster is abandoned: Auto Scaling terminates it and launches
/// another, which waits for the hook again.
#[tokio::test]
async fn a_launch_never_ready_is_abandoned_and_replaced() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (id, event) = launch_one(&s).await;
    let deps = deps(&s.world, &[("LAUNCH_TIMEOUT_SECONDS", "3")]);

    let outcome = invoke(&deps, event).await.unwrap();

    assert_eq!(outcome.action, Action::NotReady, "{outcome:?}");
    assert_eq!(outcome.result, Some(LifecycleResult::Abandon));
    assert!(outcome.reason.as_deref().unwrap().contains("no container instance"), "{outcome:?}");
    let terminated = s.world.emulator.terminations();
    assert!(terminated.iter().any(|t| t["instance_id"] == id.as_str()), "{terminated:#?}");
    let replacement = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(replacement.len(), 1, "the group launches another");
    assert_ne!(message(&replacement[0])["EC2InstanceId"], id.as_str());
}

/// A launch message about an instance in service is stale or forged: nothing is completed or changed.
#[tokio::test]
async fn a_launch_message_for_an_instance_in_service_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let (_, event) = launch_one(&s).await;
    let mut forged = message(&event);
    forged["EC2InstanceId"] = json!(s.first);
    let forged = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:sub", s.topic.arn),
        "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": s.topic.arn,
            "Message": forged.to_string(), "Timestamp": "2026-11-22T10:00:00.000Z", "SignatureVersion": "1",
            "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}]});
    s.world.emulator.reset_calls();

    let outcome = invoke(&deps(&s.world, &[]), forged).await.unwrap();

    assert_eq!(outcome.action, Action::AlreadyCompleted, "{outcome:?}");
    assert_eq!(s.world.emulator.calls_of("autoscaling:CompleteLifecycleAction"), 0);
    assert_eq!(s.world.lifecycle_state(&s.first).await.as_deref(), Some("InService"));
}

/// The whole warm pool round: into the pool (completed at once), out of it (ready once its agent connects),
/// back into it on scale-in (drained like a termination: its container instance stays registered,
/// DRAINING), and out again: set ACTIVE again, because we drained it, then in service once its agent
/// reconnects.
#[tokio::test]
async fn a_warm_pool_instance_round_trip() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[]);
    s.world.warm_pool("web", 0).await;
    let mut into_pool = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(into_pool.len(), 1, "{into_pool:#?}");
    let m = message(&into_pool[0]);
    assert_eq!(m["Destination"], "WarmPool");
    let warm = m["EC2InstanceId"].as_str().unwrap().to_owned();
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Pending:Wait"));

    let entered = invoke(&deps, into_pool.remove(0)).await.unwrap();
    assert_eq!(entered.action, Action::EnteredWarmPool, "{entered:?}");
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Stopped"));

    // Out of the pool: its agent registers once it runs.
    let (id, out_of_pool) = launch_one(&s).await;
    assert_eq!(id, warm, "the group takes the warm instance");
    assert_eq!(message(&out_of_pool)["Origin"], "WarmPool");
    let arn = s.world.register("web", &warm).await;
    assert_eq!(invoke(&deps, out_of_pool).await.unwrap().action, Action::Ready);

    // Back into the pool on scale-in: the first instance is protected, so the warm one goes.
    s.world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .instance_ids(&s.first)
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    s.world.start_service_tasks("web", &arn, "api", 2).await;
    s.world.set_desired("web", 1).await;
    let mut back = lifecycle_events(&s.world, &s.topic).await;
    assert_eq!(back.len(), 1, "{back:#?}");
    assert_eq!(message(&back[0])["LifecycleTransition"], "autoscaling:EC2_INSTANCE_TERMINATING");
    assert_eq!(message(&back[0])["Destination"], "WarmPool");
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Pending:Wait"));

    let drained = invoke(&deps, back.remove(0)).await.unwrap();
    assert_eq!(drained.action, Action::Completed, "{drained:?}");
    assert_eq!(drained.tasks_left, 0);
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("Warmed:Stopped"));
    assert_eq!(s.world.status("web", &arn).await, "DRAINING", "ECS keeps the status while it is stopped");
    assert!(s.world.attribute("web", &arn, MARKER).await.is_some_and(|v| v.starts_with("drain@")));

    // Out again: set ACTIVE again (we drained it), in service once its agent reconnects.
    let (again, out_again) = launch_one(&s).await;
    assert_eq!(again, warm);
    let connect = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.world.emulator.agent(&arn, true);
    };
    let (ready, ()) = tokio::join!(invoke(&deps, out_again), connect);
    let ready = ready.unwrap();

    assert_eq!(ready.action, Action::Ready, "{ready:?}");
    assert_eq!(s.world.status("web", &arn).await, "ACTIVE");
    assert_eq!(s.world.attribute("web", &arn, MARKER).await, None);
    assert_eq!(s.world.lifecycle_state(&warm).await.as_deref(), Some("InService"));
}

/// With the stopped-task rule, the last task's stop completes the drain at once; an earlier stop, or a
/// forged event, completes nothing; the poll, the safety net, then finds the action over.
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
    let mut events = lifecycle_events(&s.world, &s.topic).await;
    let termination = events.pop().unwrap();
    // Slow polls: the stopped-task events must be what completes the action.
    let deps = deps(&s.world, &[("POLL_INTERVAL_SECONDS", "8")]);
    let (_, mut cursor) = s.world.emulator.events_since(0);
    // Before the drain began: a stop event (forged here) finds the instance ACTIVE and completes nothing.
    let forged = json!({"version": "0", "id": "f", "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/web",
        "containerInstanceArn": arn, "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/web/forged",
        "lastStatus": "STOPPED"}});
    let early = invoke(&deps, forged).await.unwrap();
    assert_eq!(early.action, Action::Ignored, "{early:?}");

    let pump = async {
        let mut handled = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for e in stops_on(&s.world, &arn, &mut cursor) {
                handled.push(invoke(&deps, e).await.unwrap());
            }
            if handled.iter().any(|o: &Outcome| o.action == Action::Completed) {
                break;
            }
        }
        handled
    };
    let (polled, handled) = tokio::join!(invoke(&deps, termination), pump);
    let polled = polled.unwrap();

    let completed: Vec<&Outcome> = handled.iter().filter(|o| o.action == Action::Completed).collect();
    assert_eq!(completed.len(), 1, "{handled:#?}");
    assert_eq!(completed[0].result, Some(LifecycleResult::Continue));
    // One event per task; the drain stopped both in the same step, so the first event already found
    // none left, and the second found the action over.
    assert_eq!(handled.len(), 2, "{handled:#?}");
    assert_eq!(polled.action, Action::AlreadyCompleted, "{polled:?}");
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

/// A task that stops while another stays completes nothing: the drain goes on to its deadline.
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
    let deps = deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "6"), ("POLL_INTERVAL_SECONDS", "2")]);
    let (_, mut cursor) = s.world.emulator.events_since(0);

    let pump = async {
        let mut handled = Vec::new();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for e in stops_on(&s.world, &arn, &mut cursor) {
                handled.push(invoke(&deps, e).await.unwrap());
            }
        }
        handled
    };
    let (polled, handled) = tokio::join!(invoke(&deps, termination), pump);

    // The first task's stop finds the other still there; the other stops only with its host, after the
    // drain timed out, when the container instance is gone.
    assert!(handled.iter().all(|o| o.action == Action::Ignored), "{handled:#?}");
    assert!(handled[0].reason.as_deref().unwrap().contains("1 task(s) still on it"), "{handled:#?}");
    let polled = polled.unwrap();
    assert_eq!(polled.action, Action::TimedOut, "{polled:?}");
    assert_eq!(polled.tasks_left, 1);
}
