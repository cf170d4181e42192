//! The poll loop in paused time: tokio's clock jumps over every sleep, so hours of drain take
//! microseconds, with the same decisions the loop makes against AWS.

use std::cell::RefCell;
use std::collections::HashMap;

use shared::config::Env;
use shared::ecs::{Found, InstanceStatus};
use shared::events::{InstanceId, LifecycleMessage, TRANSITION_TERMINATING};
use tokio::time::Instant;

use super::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:hooks";
const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/web/1";
/// When the tests' hooks began, on the wall clock.
fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
}

/// AWS as one drain sees it: one container instance whose last task stops `tasks_stop_after` into the
/// drain (never, with `None`), and a hook with `heartbeat_timeout` (unreadable, with `None`). Records when
/// each call was made.
struct Scripted {
    t0: Instant,
    tasks_stop_after: Option<Duration>,
    heartbeat_timeout: Option<u32>,
    drained: RefCell<bool>,
    /// A launch whose agent connects this long after it began to wait (never, with `None`).
    launch: Option<Option<Duration>>,
    /// Its lifecycle state in the group.
    waiting_in: &'static str,
    heartbeats: RefCell<Vec<Duration>>,
    continuations: RefCell<Vec<(Duration, DrainState)>>,
    completed: RefCell<Vec<(Duration, LifecycleResult)>>,
}

impl Scripted {
    fn new(tasks_stop_after: Option<Duration>, heartbeat_timeout: Option<u32>) -> Self {
        Scripted {
            t0: Instant::now(),
            tasks_stop_after,
            heartbeat_timeout,
            drained: RefCell::default(),
            launch: None,
            waiting_in: "Terminating:Wait",
            heartbeats: RefCell::default(),
            continuations: RefCell::default(),
            completed: RefCell::default(),
        }
    }

    fn launching(agent_after: Option<Duration>, heartbeat_timeout: u32) -> Self {
        Scripted {
            launch: Some(agent_after),
            waiting_in: "Pending:Wait",
            ..Scripted::new(None, Some(heartbeat_timeout))
        }
    }

    fn found(&self) -> Found {
        let status = if *self.drained.borrow() { InstanceStatus::Draining } else { InstanceStatus::Active };
        let agent_connected = match self.launch {
            Some(after) => after.is_some_and(|a| self.at() >= a),
            None => true,
        };
        Found {
            cluster: "web".into(),
            container_instance_arn: ARN.into(),
            ec2_instance_id: "i-1234567890abcdef0".into(),
            status,
            running_tasks: 1,
            pending_tasks: 0,
            agent_connected,
            attributes: Default::default(),
        }
    }

    fn at(&self) -> Duration {
        self.t0.elapsed()
    }
}

impl Effects for Scripted {
    async fn find(&self) -> Result<Search, Error> {
        Ok(Search { found: Some(self.found()), missing_clusters: Vec::new() })
    }

    async fn hook(&self) -> HookRead {
        match self.heartbeat_timeout {
            Some(t) => HookRead::Found { heartbeat_timeout: t, global_timeout: (100 * t).min(172_800) },
            None => HookRead::Unreadable,
        }
    }

    async fn lifecycle_state(&self) -> Result<Option<InGroup>, Error> {
        Ok(Some(InGroup { group: "web".into(), state: self.waiting_in.into() }))
    }

    async fn describe(&self, state: &DrainState) -> Result<Option<Found>, Error> {
        Ok((state.cluster == "web" && state.container_instance_arn == ARN).then(|| self.found()))
    }

    async fn mark(&self, _: &DrainState) -> Result<(), Error> {
        Ok(())
    }

    async fn reactivate(&self, _: &Found) -> Result<(), Error> {
        unreachable!("a drain never reactivates")
    }

    async fn set_draining(&self, _: &DrainState) -> Result<(), Error> {
        *self.drained.borrow_mut() = true;
        Ok(())
    }

    async fn tasks_left(&self, _: &DrainState) -> Result<Vec<TaskLeft>, AwsError> {
        let running = self.tasks_stop_after.is_none_or(|after| self.at() < after);
        let task = TaskLeft { task_arn: "arn:task/1".into(), last_status: "RUNNING".into(), group: None };
        Ok(if running { vec![task] } else { Vec::new() })
    }

    async fn heartbeat(&self) -> Result<Completion, Error> {
        self.heartbeats.borrow_mut().push(self.at());
        Ok(Completion::Done)
    }

    async fn complete(&self, result: LifecycleResult) -> Result<Completion, Error> {
        self.completed.borrow_mut().push((self.at(), result));
        Ok(Completion::Done)
    }

    async fn continue_on(&self, topic: &str, state: &DrainState) -> Result<(), Error> {
        assert_eq!(topic, TOPIC);
        self.continuations.borrow_mut().push((self.at(), state.clone()));
        Ok(())
    }
}

fn config(drain_timeout: &str) -> Config {
    let map = HashMap::from([
        ("DRAIN_TIMEOUT_SECONDS", drain_timeout),
        ("POLL_INTERVAL_SECONDS", "15"),
        ("POLL_WINDOW_SECONDS", "600"),
        ("CONTINUATION_TOPIC_ARN", TOPIC),
    ]);
    Config::from_env(Env::from_map(&map)).unwrap()
}

fn work(state: Option<DrainState>) -> Work {
    let message = LifecycleMessage {
        lifecycle_transition: TRANSITION_TERMINATING.into(),
        auto_scaling_group_name: "web".into(),
        lifecycle_hook_name: "drain".into(),
        lifecycle_action_token: "t-1".into(),
        ec2_instance_id: InstanceId::parse("EC2InstanceId", "i-1234567890abcdef0").unwrap(),
        time: Some(epoch()),
        notification_metadata: None,
        origin: None,
        destination: None,
    };
    Work { message, began_at: epoch(), state, topic_arn: None }
}

/// Runs invocations as Lambda would, the first `late` after the hook began, each with its 15 minutes, each
/// continuation delivered at once, until the drain ends; the outcomes.
async fn drain_delivered_late(fx: &Scripted, config: &Config, late: Duration) -> Vec<Outcome> {
    let wall = epoch() + chrono::Duration::from_std(late).unwrap();
    let mut outcomes = Vec::new();
    let mut state = None;
    for _ in 0..20 {
        let clock = Clock::starting_at(wall + chrono::Duration::from_std(fx.at()).unwrap());
        let outcome =
            run(fx, config, &work(state.clone()), Budget::of(Duration::from_secs(900)), clock).await.unwrap();
        let action = outcome.action;
        outcomes.push(outcome);
        if action != Action::Continued {
            return outcomes;
        }
        state = fx.continuations.borrow().last().map(|(_, s)| s.clone());
    }
    panic!("the drain did not end: {outcomes:#?}");
}

async fn drain(fx: &Scripted, config: &Config) -> Vec<Outcome> {
    drain_delivered_late(fx, config, Duration::ZERO).await
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

#[tokio::test(start_paused = true)]
async fn a_fifteen_minute_drain_beats_at_half_the_hook_timeout_and_continues_at_the_window_end() {
    let fx = Scripted::new(Some(Duration::from_secs(900)), Some(300));
    let outcomes = drain(&fx, &config("3600")).await;

    let actions: Vec<Action> = outcomes.iter().map(|o| o.action).collect();
    assert_eq!(actions, [Action::Continued, Action::Completed]);
    // The window is 10 minutes: the continuation goes out at its end, with the hop and a fresh heartbeat.
    let continuations = fx.continuations.borrow();
    let (at, state) = &continuations[0];
    assert_eq!(secs(*at), 600);
    assert_eq!(state.hop, 1);
    assert_eq!(state.last_heartbeat_at, state.started_at + chrono::Duration::seconds(600));
    // At the start of each invocation, then every 150 s (half of 300) exactly, whatever the poll jitter;
    // and before the hand-over.
    let beats: Vec<u64> = fx.heartbeats.borrow().iter().map(|d| secs(*d)).collect();
    assert_eq!(beats, [0, 150, 300, 450, 600, 600, 750]);
    // Completed at the first poll after the last task stopped, with CONTINUE.
    let (done_at, result) = fx.completed.borrow()[0];
    assert!(done_at >= Duration::from_secs(900) && done_at <= Duration::from_millis(916_500), "{done_at:?}");
    assert_eq!(result, LifecycleResult::Continue);
    let last = &outcomes[1];
    assert_eq!((last.hop, last.result, last.tasks_left), (1, Some(LifecycleResult::Continue), 0));
    assert!((900..=917).contains(&last.elapsed_seconds), "{last:?}");
    assert_eq!(outcomes[0].heartbeats + last.heartbeats, 7);
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_never_ends_times_out_at_its_deadline_with_the_hook_kept_alive() {
    let fx = Scripted::new(None, Some(60));
    let outcomes = drain(&fx, &config("1500")).await;

    let last = outcomes.last().unwrap();
    assert_eq!(last.action, Action::TimedOut);
    assert_eq!(last.reason.as_deref(), Some("DRAIN_TIMEOUT_SECONDS reached"));
    assert_eq!(outcomes.len(), 3, "1,500 s in windows of 600 s");
    let (done_at, result) = fx.completed.borrow()[0];
    assert!(
        done_at >= Duration::from_secs(1500) && done_at <= Duration::from_millis(1_516_500),
        "{done_at:?}"
    );
    assert_eq!(result, LifecycleResult::Continue);
    // No gap between heartbeats ever reaches the hook's 60 s timeout.
    let beats = fx.heartbeats.borrow();
    let gaps = beats.windows(2).map(|w| w[1] - w[0]);
    assert!(gaps.chain([beats[0]]).all(|g| g <= Duration::from_secs(30)), "{beats:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_readable_hook_timeout_heartbeats_go_out_every_fifteen_seconds() {
    let fx = Scripted::new(Some(Duration::from_secs(100)), None);
    let outcomes = drain(&fx, &config("900")).await;
    assert_eq!(outcomes.last().unwrap().action, Action::Completed);
    let beats: Vec<u64> = fx.heartbeats.borrow().iter().map(|d| secs(*d)).collect();
    assert_eq!(beats, [0, 15, 30, 45, 60, 75, 90]);
}

#[tokio::test(start_paused = true)]
async fn a_lambda_deadline_closer_than_the_window_ends_the_window_early() {
    let fx = Scripted::new(Some(Duration::from_secs(400)), Some(600));
    let clock = Clock::starting_at(epoch());
    let outcome =
        run(&fx, &config("900"), &work(None), Budget::of(Duration::from_secs(130)), clock).await.unwrap();
    assert_eq!(outcome.action, Action::Continued);
    assert_eq!(secs(fx.continuations.borrow()[0].0), 100, "130 s left less the 30 s margin");
}

/// Lambda retried the first invocation twice (after about 1 and 2 minutes): it starts 290 s into a hook
/// with a 300 s heartbeat timeout, and must reset the timer before anything else.
#[tokio::test(start_paused = true)]
async fn an_invocation_delivered_late_heartbeats_before_it_waits() {
    let fx = Scripted::new(Some(Duration::from_secs(100)), Some(300));
    let outcomes = drain_delivered_late(&fx, &config("900"), Duration::from_secs(290)).await;
    assert_eq!(outcomes.last().unwrap().action, Action::Completed);
    assert_eq!(fx.heartbeats.borrow()[0], Duration::ZERO, "the first heartbeat goes out at once");
}

/// A 30 s heartbeat timeout gives the hook 3,000 s in all, from when the instance began to wait: a
/// DRAIN_TIMEOUT_SECONDS of 2 hours can never be honoured, so the drain completes itself a minute before
/// the hook would expire, and says why.
#[tokio::test(start_paused = true)]
async fn the_hooks_lifetime_ends_a_drain_that_would_outlive_it() {
    let fx = Scripted::new(None, Some(30));
    let mut c = config("7200");
    c.max_hops = 20;
    let outcomes = drain_delivered_late(&fx, &c, Duration::from_secs(100)).await;
    let last = outcomes.last().unwrap();
    assert_eq!(last.action, Action::TimedOut);
    assert!(last.reason.as_deref().unwrap().contains("GlobalTimeout"), "{last:?}");
    assert!(
        outcomes[0].warnings[0].contains("DRAIN_TIMEOUT_SECONDS=7200 cannot be honoured"),
        "{:?}",
        outcomes[0]
    );
    let (done_at, result) = fx.completed.borrow()[0];
    // 2,940 s after the hook began, which was 100 s before the first invocation.
    assert_eq!(secs(done_at), 2840);
    assert_eq!(result, LifecycleResult::Continue);
}

#[tokio::test(start_paused = true)]
async fn a_continuation_naming_another_cluster_changes_nothing() {
    let fx = Scripted::new(Some(Duration::from_secs(100)), Some(300));
    let now = epoch() + chrono::Duration::seconds(600);
    let state = DrainState {
        started_at: epoch(),
        deadline: epoch() + chrono::Duration::seconds(900),
        hop: 1,
        cluster: "batch".into(),
        container_instance_arn: "arn:aws:ecs:us-east-1:123456789012:container-instance/batch/9".into(),
        heartbeat_timeout: Some(300),
        last_heartbeat_at: now,
    };
    let err = run(&fx, &config("900"), &work(Some(state)), Budget::unlimited(), Clock::starting_at(now))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ShipshapeDrain.cluster"), "{err}");
    assert!(fx.completed.borrow().is_empty(), "nothing completed");
    assert!(!*fx.drained.borrow(), "nothing drained");
}

fn launch_work() -> Work {
    let mut w = work(None);
    w.message.lifecycle_transition = shared::events::TRANSITION_LAUNCHING.into();
    w
}

/// The agent connects 200 s after the instance began to wait: the launch completes at the first poll after
/// that, with CONTINUE, and heartbeats kept the hook alive meanwhile.
#[tokio::test(start_paused = true)]
async fn a_launch_completes_once_its_agent_connects() {
    let fx = Scripted::launching(Some(Duration::from_secs(200)), 120);
    let clock = Clock::starting_at(epoch());
    let outcome =
        run(&fx, &config("900"), &launch_work(), Budget::of(Duration::from_secs(900)), clock).await.unwrap();

    assert_eq!(outcome.action, Action::Ready);
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    let (done_at, result) = fx.completed.borrow()[0];
    assert!(done_at >= Duration::from_secs(200) && done_at <= Duration::from_millis(216_500), "{done_at:?}");
    assert_eq!(result, LifecycleResult::Continue);
    let beats: Vec<u64> = fx.heartbeats.borrow().iter().map(|d| secs(*d)).collect();
    assert_eq!(beats, [0, 60, 120, 180]);
    assert!(!*fx.drained.borrow());
}

/// An agent that never connects: ABANDON at LAUNCH_TIMEOUT_SECONDS after the instance began to wait
/// (here it was delivered 100 s late), so the broken instance never counts as capacity.
#[tokio::test(start_paused = true)]
async fn a_launch_never_ready_is_abandoned_at_its_timeout() {
    let fx = Scripted::launching(None, 300);
    let mut c = config("900");
    c.launch_timeout = Duration::from_secs(300);
    let clock = Clock::starting_at(epoch() + chrono::Duration::seconds(100));
    let outcome = run(&fx, &c, &launch_work(), Budget::of(Duration::from_secs(900)), clock).await.unwrap();

    assert_eq!(outcome.action, Action::NotReady);
    assert_eq!(outcome.result, Some(LifecycleResult::Abandon));
    assert!(outcome.reason.as_deref().unwrap().contains("agent is not connected"), "{outcome:?}");
    let (done_at, result) = fx.completed.borrow()[0];
    assert_eq!(secs(done_at), 200, "300 s after it began to wait, 100 s before this invocation");
    assert_eq!(result, LifecycleResult::Abandon);
    assert_eq!(outcome.elapsed_seconds, 300);
}

#[tokio::test(start_paused = true)]
async fn a_launch_into_the_warm_pool_completes_at_once() {
    let fx = Scripted { waiting_in: "Warmed:Pending:Wait", ..Scripted::launching(None, 300) };
    let mut w = launch_work();
    w.message.destination = Some(shared::events::WARM_POOL.into());
    let outcome =
        run(&fx, &config("900"), &w, Budget::unlimited(), Clock::starting_at(epoch())).await.unwrap();

    assert_eq!(outcome.action, Action::EnteredWarmPool);
    assert_eq!(fx.completed.borrow()[0], (Duration::ZERO, LifecycleResult::Continue));
    assert!(fx.heartbeats.borrow().is_empty());
}

/// A termination back into the warm pool waits in Warmed:Pending:Wait and is drained like any other.
#[tokio::test(start_paused = true)]
async fn a_return_to_the_warm_pool_is_drained_like_a_termination() {
    let fx = Scripted {
        waiting_in: "Warmed:Pending:Wait",
        ..Scripted::new(Some(Duration::from_secs(100)), Some(300))
    };
    let mut w = work(None);
    w.message.destination = Some(shared::events::WARM_POOL.into());
    let outcome =
        run(&fx, &config("900"), &w, Budget::unlimited(), Clock::starting_at(epoch())).await.unwrap();

    assert_eq!(outcome.action, Action::Completed);
    assert!(*fx.drained.borrow());
    assert!(fx.completed.borrow()[0].0 >= Duration::from_secs(100));
    // Without the warm pool destination, the same state is not a termination's.
    let err = run(&fx, &config("900"), &work(None), Budget::unlimited(), Clock::starting_at(epoch()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not from Auto Scaling"), "{err}");
}
