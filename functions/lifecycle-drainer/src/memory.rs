//! What a warm sandbox remembers between invocations, to save calls and to answer a stopped task without
//! one: never the truth (a cold sandbox knows nothing, and every decision reads AWS first), only what
//! spares a look.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::autoscaling::LifecycleState;

/// An action, by group, hook, instance and the wait state it holds the instance in (one instance may
/// wait for the same hook twice: into the warm pool, then out of it).
pub type Key = (String, String, String, &'static str);

#[derive(Debug, Default)]
pub struct Memory {
    /// When each instance began to wait: its scaling activity's start, or when we first saw it waiting.
    pub began: HashMap<String, DateTime<Utc>>,
    /// Instances whose `began` is only when we first saw them (no activity read): how long they had waited
    /// before is unknown, so their first heartbeat is due at once.
    pub seen_only: HashSet<String>,
    /// The last heartbeat we sent for an action.
    pub heartbeats: HashMap<Key, DateTime<Utc>>,
    /// The actions open at the end of the last pass, with their hooks: the next invocation heartbeats the
    /// ones due before it reads anything (a slow or throttled read never delays a heartbeat).
    pub open: HashMap<Key, shared::drain::hooks::Hook>,
    /// Actions we completed (Auto Scaling may show the instance waiting a moment longer, or for another
    /// tool's hook): not answered twice.
    pub answered: HashSet<Key>,
    /// Container instances of terminating actions in progress: a task stopped elsewhere needs no look.
    pub draining: HashSet<String>,
    /// Whether a full reconcile ran in this sandbox, so that `draining` is complete.
    pub synced: bool,
    /// When the last full reconcile in this sandbox began.
    pub last_full_pass: Option<DateTime<Utc>>,
}

impl Memory {
    /// After a full pass: forgets the actions that no longer wait (`waiting`: every action the pass saw
    /// waiting, answered or not), so that the memory stays as small as the work. Answers those it followed
    /// and did not answer: they ended without us.
    pub fn keep_only(&mut self, waiting: &HashSet<Key>) -> Vec<(Key, shared::drain::hooks::Hook)> {
        let lost: Vec<(Key, shared::drain::hooks::Hook)> = self
            .open
            .iter()
            .filter(|(k, _)| !waiting.contains(*k) && !self.answered.contains(*k) && self.confirmed(k))
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        self.answered.retain(|k| waiting.contains(k));
        self.heartbeats.retain(|k, _| waiting.contains(k));
        self.open.retain(|k, _| waiting.contains(k));
        let instances: HashSet<&str> = waiting.iter().map(|k| k.2.as_str()).collect();
        self.began.retain(|i, _| instances.contains(i.as_str()));
        self.seen_only.retain(|i| instances.contains(i.as_str()));
        lost
    }

    /// Whether Auto Scaling is known to hold the instance for this action: always, but in
    /// `Warmed:Pending:Wait`, where a launch into the warm pool waits too (for a launching hook), until a
    /// heartbeat for our hook was accepted.
    pub fn confirmed(&self, key: &Key) -> bool {
        key.3 != <&str>::from(LifecycleState::WarmedPendingWait) || self.heartbeats.contains_key(key)
    }

    /// The open actions of `instance` this sandbox follows (found waiting by an earlier pass), with their
    /// hooks.
    pub fn following(&self, instance: &str) -> Vec<(Key, shared::drain::hooks::Hook)> {
        self.open.iter().filter(|(k, _)| k.2 == instance).map(|(k, h)| (k.clone(), h.clone())).collect()
    }

    /// Since when the action's hook timer has run for sure: our last heartbeat, or the activity's start.
    pub fn hook_timer_since(&self, key: &Key) -> Option<DateTime<Utc>> {
        let began = self.began.get(&key.2).filter(|_| !self.seen_only.contains(&key.2));
        self.heartbeats.get(key).or(began).copied()
    }
}

/// The memory of this sandbox.
#[derive(Debug, Default)]
pub struct Shared(Mutex<Memory>);

impl Shared {
    /// Runs `f` on the memory. A poisoned lock (a panic elsewhere) is taken as it is: it only holds hints.
    pub fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}
