//! The reconcile in paused time: passes every period over a scripted AWS, tokio's clock jumping over every
//! wait, so hours of drains take microseconds, with the same decisions the passes make against AWS.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use shared::autoscaling::LifecycleState;
use shared::config::Env;
use shared::drain::hooks::Transition;
use shared::ecs::InstanceStatus;
use tokio::time::Instant;

use super::*;
use crate::memory::Shared;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:hooks";

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn id(n: usize) -> String {
    format!("i-{n:08x}")
}

/// One instance of the scripted world.
struct Instance {
    state: LifecycleState,
    status: InstanceStatus,
    marker: Option<Marker>,
    /// Its tasks stop this long after it is set DRAINING (never, with `None`); how many there are.
    stop_after: Option<Duration>,
    tasks: i32,
    agent_after: Option<Duration>,
    drained_at: Option<Duration>,
}

/// AWS as the passes see it: group `web` with a hook `drain` of `heartbeat_timeout`, and instances.
/// Records each heartbeat and completion, and fails the test if a hook would have expired.
struct Scripted {
    t0: Instant,
    transition: Transition,
    heartbeat_timeout: u32,
    instances: RefCell<HashMap<String, Instance>>,
    last_heartbeat: RefCell<HashMap<String, Duration>>,
    heartbeats: RefCell<usize>,
    completed: RefCell<Vec<(String, Duration, LifecycleResult)>>,
    looks: RefCell<usize>,
    expired: RefCell<Vec<String>>,
    /// Whether the scaling activities can be read (they say every action began at the epoch).
    activities: std::cell::Cell<bool>,
    /// Whether listing tasks fails (throttled for good).
    listing_fails: std::cell::Cell<bool>,
    /// Whether describing container instances fails (throttled for good).
    registrations_fail: std::cell::Cell<bool>,
}

impl Scripted {
    fn new(transition: Transition, heartbeat_timeout: u32) -> Self {
        Scripted {
            t0: Instant::now(),
            transition,
            heartbeat_timeout,
            instances: RefCell::default(),
            last_heartbeat: RefCell::default(),
            heartbeats: RefCell::default(),
            completed: RefCell::default(),
            looks: RefCell::default(),
            expired: RefCell::default(),
            activities: std::cell::Cell::new(true),
            listing_fails: std::cell::Cell::new(false),
            registrations_fail: std::cell::Cell::new(false),
        }
    }

    fn without_activities(self) -> Self {
        self.activities.set(false);
        self
    }

    fn terminating(self, n: usize, tasks: i32, stop_after: Option<Duration>) -> Self {
        for i in 0..n {
            let instance = Instance {
                state: LifecycleState::TerminatingWait,
                status: InstanceStatus::Active,
                marker: None,
                stop_after,
                tasks,
                agent_after: Some(Duration::ZERO),
                drained_at: None,
            };
            self.instances.borrow_mut().insert(id(i), instance);
        }
        self
    }

    fn launching(self, agent_after: Option<Duration>) -> Self {
        let instance = Instance {
            state: LifecycleState::PendingWait,
            status: InstanceStatus::Active,
            marker: None,
            stop_after: None,
            tasks: 0,
            agent_after,
            drained_at: None,
        };
        self.instances.borrow_mut().insert(id(0), instance);
        self
    }

    fn at(&self) -> Duration {
        self.t0.elapsed()
    }

    /// The hook's timers, checked whenever anyone looks: a lapse is recorded, as Auto Scaling would end it.
    fn check_timers(&self) {
        let now = self.at();
        let last = self.last_heartbeat.borrow();
        for (i, inst) in self.instances.borrow().iter() {
            if !inst.state.waiting() {
                continue;
            }
            let since = last.get(i).copied().unwrap_or_default();
            if now > since + Duration::from_secs(self.heartbeat_timeout.into()) {
                self.expired.borrow_mut().push(format!("{i} at {now:?} (last heartbeat {since:?})"));
            }
        }
    }

    fn running(&self, inst: &Instance) -> i32 {
        match (inst.drained_at, inst.stop_after) {
            (Some(at), Some(after)) if self.at() >= at + after => 0,
            _ => inst.tasks,
        }
    }
}

impl Effects for Scripted {
    async fn groups(&self, _: &Scope) -> Result<Vec<Group>, Error> {
        self.check_timers();
        let instances = self.instances.borrow().iter().map(|(i, inst)| (i.clone(), inst.state)).collect();
        Ok(vec![Group { name: "web".into(), instances, has_warm_pool: false }])
    }

    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Error> {
        Ok(vec![Hook {
            group: group.into(),
            name: "drain".into(),
            transition: self.transition,
            heartbeat_timeout: self.heartbeat_timeout,
            global_timeout: (100 * self.heartbeat_timeout).min(172_800),
            default_result: "ABANDON".into(),
            target: Some(TOPIC.into()),
        }])
    }

    async fn began(
        &self,
        _: &str,
        instances: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, Error> {
        if !self.activities.get() {
            return Ok(BTreeMap::new());
        }
        Ok(instances.iter().map(|i| (i.clone(), epoch())).collect())
    }

    async fn registrations(&self, ids: &[InstanceId]) -> Result<Registrations, Error> {
        if self.registrations_fail.get() {
            let e = AwsError {
                operation: "DescribeContainerInstances",
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".to_owned(),
            };
            return Err(e.into());
        }
        let mut regs = Registrations::default();
        for i in ids {
            let instances = self.instances.borrow();
            let Some(inst) = instances.get(i.as_str()) else { continue };
            let mut attributes = std::collections::BTreeMap::new();
            if let Some(m) = &inst.marker {
                attributes.insert(shared::drain::marker::ATTRIBUTE.to_owned(), m.value());
            }
            let agent_connected = inst.agent_after.is_some_and(|a| self.at() >= a);
            let found = Found {
                cluster: "web".into(),
                container_instance_arn: format!("arn:ci/{i}"),
                ec2_instance_id: i.to_string(),
                status: inst.status,
                running_tasks: self.running(inst),
                pending_tasks: 0,
                agent_connected,
                attributes,
            };
            regs.by_instance.insert(i.to_string(), vec![found]);
        }
        Ok(regs)
    }

    async fn tasks_left(&self, registrations: &[Found]) -> Result<Vec<TaskLeft>, AwsError> {
        *self.looks.borrow_mut() += 1;
        if self.listing_fails.get() {
            let message = "Rate exceeded".to_owned();
            return Err(AwsError {
                operation: "ListTasks",
                code: Some("ThrottlingException".into()),
                message,
            });
        }
        let instances = self.instances.borrow();
        let running = registrations
            .iter()
            .map(|f| instances.get(&f.ec2_instance_id).map_or(0, |i| self.running(i)))
            .sum::<i32>();
        let task = |n: i32| TaskLeft {
            task_arn: format!("arn:task/{n}"),
            last_status: "RUNNING".into(),
            group: None,
        };
        Ok((0..running).map(task).collect())
    }

    async fn drain(&self, _: &str, targets: &[Found], marker: &Marker) -> Result<Change, Error> {
        let mut instances = self.instances.borrow_mut();
        for f in targets {
            if let Some(inst) = instances.get_mut(&f.ec2_instance_id) {
                (inst.status, inst.marker, inst.drained_at) =
                    (InstanceStatus::Draining, Some(marker.clone()), Some(self.at()));
            }
        }
        Ok(Change {
            done: targets.iter().map(|f| f.container_instance_arn.clone()).collect(),
            refused: Vec::new(),
        })
    }

    async fn mark(&self, _: &str, targets: &[Found], marker: &Marker) -> Result<(), Error> {
        for f in targets {
            if let Some(inst) = self.instances.borrow_mut().get_mut(&f.ec2_instance_id) {
                inst.marker = Some(marker.clone());
            }
        }
        Ok(())
    }

    async fn undo(&self, _: &str, targets: &[Found]) -> Result<Change, Error> {
        let mut instances = self.instances.borrow_mut();
        for f in targets {
            if let Some(inst) = instances.get_mut(&f.ec2_instance_id) {
                (inst.status, inst.marker, inst.drained_at) = (InstanceStatus::Active, None, None);
            }
        }
        Ok(Change {
            done: targets.iter().map(|f| f.container_instance_arn.clone()).collect(),
            refused: Vec::new(),
        })
    }

    async fn heartbeat(&self, _: &Hook, instance_id: &str) -> Result<Answered, Error> {
        self.check_timers();
        *self.heartbeats.borrow_mut() += 1;
        self.last_heartbeat.borrow_mut().insert(instance_id.to_owned(), self.at());
        Ok(Answered::Done)
    }

    async fn complete(
        &self,
        _: &Hook,
        instance_id: &str,
        result: LifecycleResult,
    ) -> Result<Answered, Error> {
        self.check_timers();
        let mut instances = self.instances.borrow_mut();
        let Some(inst) = instances.get_mut(instance_id).filter(|i| i.state.waiting()) else {
            return Ok(Answered::NoActiveAction("over".into()));
        };
        inst.state = LifecycleState::Terminated;
        self.completed.borrow_mut().push((instance_id.to_owned(), self.at(), result));
        Ok(Answered::Done)
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<&str, &str> = HashMap::from([
        ("LIFECYCLE_HOOK_NAMES", "drain"),
        ("LIFECYCLE_TOPIC_ARN", TOPIC),
        ("SETTLE_SECONDS", "10"),
    ]);
    map.extend(vars.iter().copied());
    Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a pass every period, as the schedule does, until every action is completed or `limit` passes.
async fn schedule(aws: &Scripted, config: &Config, memory: &Shared, limit: Duration) -> Vec<Pass> {
    let clock = Clock::starting_at(epoch());
    let mut passes = Vec::new();
    while aws.at() < limit && aws.instances.borrow().values().any(|i| i.state.waiting()) {
        passes.push(run(aws, config, memory, &Scope::All, clock).await.unwrap_or_else(|e| panic!("{e}")));
        tokio::time::sleep(config.period).await;
    }
    passes
}

#[tokio::test(start_paused = true)]
async fn a_fifteen_minute_drain_keeps_its_hook_alive_and_looks_only_once_the_counts_are_zero() {
    let aws =
        Scripted::new(Transition::Terminating, 600).terminating(1, 3, Some(Duration::from_secs(15 * 60)));
    let passes = schedule(
        &aws,
        &config(&[("DRAIN_TIMEOUT_SECONDS", "3600")]),
        &Shared::default(),
        Duration::from_secs(7200),
    )
    .await;
    assert_eq!(aws.expired.borrow().as_slice(), [] as [String; 0]);
    let completed = aws.completed.borrow();
    assert_eq!(completed.len(), 1);
    let (_, at, result) = &completed[0];
    assert_eq!(*result, LifecycleResult::Continue);
    assert!(*at >= Duration::from_secs(15 * 60) && *at <= Duration::from_secs(17 * 60), "{at:?}");
    // A heartbeat at the first pass, then one per 480 s (600 s less two periods): 3 in 16 minutes.
    assert!(*aws.heartbeats.borrow() <= 3, "{}", aws.heartbeats.borrow());
    assert_eq!(*aws.looks.borrow(), 1, "the tasks were listed once, when the counts showed none");
    assert_eq!(passes[0].actions[0].step, Step::Drained);
}

#[tokio::test(start_paused = true)]
async fn tasks_that_never_stop_time_out_at_the_deadline_with_the_result_configured() {
    let aws = Scripted::new(Transition::Terminating, 300).terminating(1, 2, None);
    let c = config(&[("DRAIN_TIMEOUT_SECONDS", "1800"), ("TIMEOUT_RESULT", "ABANDON")]);
    let passes = schedule(&aws, &c, &Shared::default(), Duration::from_secs(7200)).await;
    assert_eq!(aws.expired.borrow().as_slice(), [] as [String; 0]);
    let (_, at, result) = aws.completed.borrow()[0].clone();
    assert_eq!(result, LifecycleResult::Abandon);
    assert!(at >= Duration::from_secs(1800) && at < Duration::from_secs(1860), "{at:?}");
    let last = &passes.last().unwrap().actions[0];
    assert_eq!((last.step, last.tasks_left), (Step::TimedOut, 2));
    assert_eq!(last.reason.as_deref(), Some(crate::decide::TimeoutCause::Ours.reason()));
}

#[tokio::test(start_paused = true)]
async fn a_listing_that_fails_at_the_deadline_is_not_an_empty_instance() {
    let aws = Scripted::new(Transition::Terminating, 300).terminating(1, 2, None);
    aws.listing_fails.set(true);
    let c = config(&[("DRAIN_TIMEOUT_SECONDS", "600"), ("TIMEOUT_RESULT", "ABANDON")]);
    let passes = schedule(&aws, &c, &Shared::default(), Duration::from_secs(3600)).await;
    let (_, _, result) = aws.completed.borrow()[0].clone();
    assert_eq!(result, LifecycleResult::Abandon, "the configured result, not CONTINUE");
    let last = &passes.last().unwrap().actions[0];
    assert_eq!(last.step, Step::TimedOut);
    assert!(last.warnings.iter().any(|w| w.contains("could not be listed")), "{last:?}");
}

/// ECS cannot be read at all (throttled for good): the hook's lifetime still ends with our answer, not Auto
/// Scaling's default result, and each pass fails so that the error shows.
#[tokio::test(start_paused = true)]
async fn ecs_unreadable_still_answers_before_the_hooks_lifetime() {
    let aws = Scripted::new(Transition::Terminating, 60).terminating(1, 2, None);
    aws.registrations_fail.set(true);
    let c = config(&[("TIMEOUT_RESULT", "ABANDON")]);
    let clock = Clock::starting_at(epoch());
    let memory = Shared::default();
    let mut failed = 0;
    while aws.at() < Duration::from_secs(7200) && aws.completed.borrow().is_empty() {
        failed += usize::from(run(&aws, &c, &memory, &Scope::All, clock).await.is_err());
        tokio::time::sleep(c.period).await;
    }
    assert_eq!(aws.expired.borrow().as_slice(), [] as [String; 0]);
    let (_, at, result) = aws.completed.borrow()[0].clone();
    assert_eq!(result, LifecycleResult::Abandon, "the configured result");
    // 6,000 s of lifetime, answered two periods and a minute before.
    assert!(at >= Duration::from_secs(5820) && at < Duration::from_secs(6000), "{at:?}");
    assert!(failed > 90, "every pass failed: {failed}");
}

#[tokio::test(start_paused = true)]
async fn a_drain_ends_before_the_hooks_lifetime_whatever_drain_timeout_says() {
    // A 120 s heartbeat timeout gives the hook 12,000 s; the drain timeout asks for 48 hours.
    let aws = Scripted::new(Transition::Terminating, 120).terminating(1, 1, None);
    let c = config(&[("DRAIN_TIMEOUT_SECONDS", "172800")]);
    schedule(&aws, &c, &Shared::default(), Duration::from_secs(20_000)).await;
    assert_eq!(aws.expired.borrow().as_slice(), [] as [String; 0]);
    let (_, at, _) = aws.completed.borrow()[0].clone();
    // Answered two periods and a minute before: a late or failed pass still leaves one in time.
    assert!(at < Duration::from_secs(12_000) && at >= Duration::from_secs(11_820), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn an_empty_instance_completes_only_once_its_drain_has_settled() {
    let aws = Scripted::new(Transition::Terminating, 300).terminating(1, 0, None);
    let c = config(&[("RECONCILE_PERIOD_SECONDS", "5")]);
    let passes = schedule(&aws, &c, &Shared::default(), Duration::from_secs(600)).await;
    let steps: Vec<Step> = passes.iter().map(|p| p.actions[0].step).collect();
    assert_eq!(
        steps,
        [Step::Drained, Step::Waiting, Step::Completed],
        "drained at 0, not settled at 5, settled at 10"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cold_sandbox_heartbeats_at_once_unless_the_activity_says_the_timer_is_young() {
    let c = config(&[]);
    let clock = Clock::starting_at(epoch());
    // The activity's start bounds how long the hook's timer has run: not due at 0 or 60 s (600 s hook,
    // two 60 s periods), due at 500 s.
    let aws = Scripted::new(Transition::Terminating, 600).terminating(1, 1, None);
    run(&aws, &c, &Shared::default(), &Scope::All, clock).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    run(&aws, &c, &Shared::default(), &Scope::All, clock).await.unwrap();
    assert_eq!(*aws.heartbeats.borrow(), 0, "a fresh action needs no heartbeat");
    tokio::time::sleep(Duration::from_secs(440)).await;
    run(&aws, &c, &Shared::default(), &Scope::All, clock).await.unwrap();
    assert_eq!(*aws.heartbeats.borrow(), 1);
    // No activity to go by: a new sandbox cannot tell how long the action has waited.
    let blind = Scripted::new(Transition::Terminating, 600).terminating(1, 1, None).without_activities();
    run(&blind, &c, &Shared::default(), &Scope::All, clock).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    run(&blind, &c, &Shared::default(), &Scope::All, clock).await.unwrap();
    assert_eq!(*blind.heartbeats.borrow(), 2, "a new sandbox does not know when the last one was sent");
}

#[tokio::test(start_paused = true)]
async fn one_pass_looks_at_a_bounded_number_of_instances() {
    let aws = Scripted::new(Transition::Terminating, 600).terminating(LOOKS_PER_PASS + 50, 0, None);
    let c = config(&[("SETTLE_SECONDS", "0")]);
    let memory = Shared::default();
    let clock = Clock::starting_at(epoch());
    run(&aws, &c, &memory, &Scope::All, clock).await.unwrap();
    assert_eq!(*aws.looks.borrow(), 0, "the first pass drains");
    tokio::time::sleep(Duration::from_secs(60)).await;
    run(&aws, &c, &memory, &Scope::All, clock).await.unwrap();
    assert_eq!(*aws.looks.borrow(), LOOKS_PER_PASS);
    assert_eq!(aws.completed.borrow().len(), LOOKS_PER_PASS);
    tokio::time::sleep(Duration::from_secs(60)).await;
    run(&aws, &c, &memory, &Scope::All, clock).await.unwrap();
    assert_eq!(aws.completed.borrow().len(), LOOKS_PER_PASS + 50);
}

#[tokio::test(start_paused = true)]
async fn a_launch_goes_on_once_its_agent_connects_or_is_abandoned() {
    let ready = Scripted::new(Transition::Launching, 300).launching(Some(Duration::from_secs(150)));
    schedule(&ready, &config(&[]), &Shared::default(), Duration::from_secs(3600)).await;
    let (_, at, result) = ready.completed.borrow()[0].clone();
    assert_eq!(result, LifecycleResult::Continue);
    assert!(at >= Duration::from_secs(150) && at <= Duration::from_secs(210), "{at:?}");

    let never = Scripted::new(Transition::Launching, 300).launching(None);
    schedule(
        &never,
        &config(&[("LAUNCH_TIMEOUT_SECONDS", "900")]),
        &Shared::default(),
        Duration::from_secs(3600),
    )
    .await;
    let (_, at, result) = never.completed.borrow()[0].clone();
    assert_eq!(result, LifecycleResult::Abandon);
    assert!(at >= Duration::from_secs(900) && at < Duration::from_secs(960), "{at:?}");
    assert_eq!(never.expired.borrow().as_slice(), [] as [String; 0]);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_changes_nothing() {
    let aws = Scripted::new(Transition::Terminating, 300).terminating(1, 0, None);
    let pass = run(
        &aws,
        &config(&[("DRY_RUN", "true")]),
        &Shared::default(),
        &Scope::All,
        Clock::starting_at(epoch()),
    )
    .await
    .unwrap();
    assert_eq!(pass.actions[0].step, Step::DryRun);
    assert_eq!(*aws.heartbeats.borrow(), 0);
    assert!(aws.instances.borrow().values().all(|i| i.status == InstanceStatus::Active));
}
