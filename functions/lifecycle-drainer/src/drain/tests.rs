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

/// AWS as one drain sees it: one container instance whose last task stops `tasks_stop_after` into the
/// drain (never, with `None`), and a hook with `heartbeat_timeout`. Records when each call was made.
struct Scripted {
    t0: Instant,
    tasks_stop_after: Option<Duration>,
    heartbeat_timeout: Option<u32>,
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
            heartbeats: RefCell::default(),
            continuations: RefCell::default(),
            completed: RefCell::default(),
        }
    }

    fn at(&self) -> Duration {
        self.t0.elapsed()
    }
}

impl Effects for Scripted {
    async fn find(&self) -> Result<Search, Error> {
        let found = Found {
            cluster: "web".into(),
            container_instance_arn: "arn:aws:ecs:us-east-1:123456789012:container-instance/web/1".into(),
            ec2_instance_id: "i-1234567890abcdef0".into(),
            status: InstanceStatus::Active,
            running_tasks: 1,
            pending_tasks: 0,
            agent_connected: true,
        };
        Ok(Search { found: Some(found), missing_clusters: Vec::new() })
    }

    async fn heartbeat_timeout(&self) -> Option<u32> {
        self.heartbeat_timeout
    }

    async fn ensure_draining(&self, _: &DrainState) -> Result<bool, Error> {
        Ok(true)
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
        notification_metadata: None,
    };
    Work { message, state, topic_arn: None }
}

/// Runs invocations as Lambda would, each with its 15 minutes, each continuation delivered at once, until
/// the drain ends; the outcomes.
async fn drain(fx: &Scripted, config: &Config) -> Vec<Outcome> {
    let wall = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
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
    // Heartbeats every 150 s (half of 300), exactly, whatever the poll jitter.
    let beats: Vec<u64> = fx.heartbeats.borrow().iter().map(|d| secs(*d)).collect();
    assert_eq!(beats, [150, 300, 450, 600, 750]);
    // Completed at the first poll after the last task stopped, with CONTINUE.
    let (done_at, result) = fx.completed.borrow()[0];
    assert!(done_at >= Duration::from_secs(900) && done_at <= Duration::from_millis(916_500), "{done_at:?}");
    assert_eq!(result, LifecycleResult::Continue);
    let last = &outcomes[1];
    assert_eq!((last.hop, last.result, last.tasks_left), (1, Some(LifecycleResult::Continue), 0));
    assert!((900..=917).contains(&last.elapsed_seconds), "{last:?}");
    assert_eq!(outcomes[0].heartbeats + last.heartbeats, 5);
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
    assert_eq!(beats, [15, 30, 45, 60, 75, 90]);
}

#[tokio::test(start_paused = true)]
async fn a_lambda_deadline_closer_than_the_window_ends_the_window_early() {
    let fx = Scripted::new(Some(Duration::from_secs(400)), Some(600));
    let clock = Clock::starting_at(DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap());
    let outcome =
        run(&fx, &config("900"), &work(None), Budget::of(Duration::from_secs(130)), clock).await.unwrap();
    assert_eq!(outcome.action, Action::Continued);
    assert_eq!(secs(fx.continuations.borrow()[0].0), 100, "130 s left less the 30 s margin");
}
