//! Our mark on a container instance we drain: who drained it, why, since when, and whether the drain is
//! known to have happened. One attribute and one format for every function, written and read here alone;
//! what earlier versions wrote still reads.
//!
//! A marker is written in two phases around `UpdateContainerInstancesState` ([`super::act`]): `pending`
//! before the instance is set DRAINING, held once ECS said it is. Only a held marker on a DRAINING instance
//! makes a drain ours: a call that fails half-way leaves at most a pending marker, which never claims
//! anyone's drain, and which the reconcile clears.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The container-instance attribute. ECS allows letters, digits, `-`, `_`, `/`, `\` and `.` in names and
/// also `:`, `@` and spaces in values, up to 128 characters
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html>).
pub const ATTRIBUTE: &str = "shipshape.drain";

/// What earlier versions wrote: still read, and removed with our marker.
pub const LEGACY_SPOT: &str = "shipshape.spot-drainer.drained-for";
pub const LEGACY_LIFECYCLE: &str = "shipshape.lifecycle-drainer.drained-for";
pub const LEGACY_SCALE_IN: &str = "shipshape.scale-in-cleaner.drained-at";
pub const LEGACY: [&str; 3] = [LEGACY_SPOT, LEGACY_LIFECYCLE, LEGACY_SCALE_IN];

/// A pending marker older than this stands for no drain in progress: the reconcile clears it. Longer than
/// any invocation takes between writing it and finishing the drain.
pub const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// The function that drained the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Owner {
    SpotDrainer,
    LifecycleDrainer,
    ScaleInCleaner,
}

/// Whether ECS is known to have set the instance DRAINING for this marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Written before `UpdateContainerInstancesState`: the drain may not have happened.
    Pending,
    /// ECS answered the drain: the instance was set DRAINING by its owner.
    Held,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    pub owner: Owner,
    /// Why, in the owner's words: a trigger (`stop`, `scheduled`, ...), `terminating`, `consolidation`.
    pub reason: String,
    /// When the owner drained it (first saw it drained, for a lifecycle action).
    pub at: DateTime<Utc>,
    pub phase: Phase,
}

const PENDING_PREFIX: &str = "pending ";

impl Marker {
    pub fn new(owner: Owner, reason: &str, at: DateTime<Utc>) -> Self {
        // `:` and `@` delimit the value; a reason never holds them (ours are fixed words).
        let reason: String =
            reason.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
        let at = at.with_timezone(&Utc);
        Marker { owner, reason, at: truncate(at), phase: Phase::Held }
    }

    pub fn pending(&self) -> Self {
        Marker { phase: Phase::Pending, ..self.clone() }
    }

    pub fn held(&self) -> Self {
        Marker { phase: Phase::Held, ..self.clone() }
    }

    /// `<owner>:<reason>@<time>`, prefixed `pending ` while pending.
    pub fn value(&self) -> String {
        let owner: &str = self.owner.into();
        let held = format!("{owner}:{}@{}", self.reason, self.at.to_rfc3339_opts(SecondsFormat::Secs, true));
        match self.phase {
            Phase::Held => held,
            Phase::Pending => format!("{PENDING_PREFIX}{held}"),
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        let (phase, rest) = match value.strip_prefix(PENDING_PREFIX) {
            Some(rest) => (Phase::Pending, rest),
            None => (Phase::Held, value),
        };
        let (owner, rest) = rest.split_once(':')?;
        let (reason, at) = rest.rsplit_once('@')?;
        Some(Marker { owner: owner.parse().ok()?, reason: reason.to_owned(), at: at.parse().ok()?, phase })
    }

    /// The marker a container instance carries: ours, or one an earlier version wrote. Earlier versions
    /// wrote their marker before the drain and knew no phases: theirs read as held.
    pub fn read(attributes: &BTreeMap<String, String>) -> Option<Self> {
        if let Some(value) = attributes.get(ATTRIBUTE) {
            return Marker::parse(value);
        }
        let legacy = |name: &str, owner: Owner, reason: Option<&str>| {
            let value = attributes.get(name)?;
            let (why, at) = match value.rsplit_once('@') {
                Some((why, at)) => (reason.unwrap_or(why), at),
                None => (reason?, value.as_str()),
            };
            let at: DateTime<Utc> = at.parse().ok()?;
            Some(Marker::new(owner, why, at))
        };
        legacy(LEGACY_SPOT, Owner::SpotDrainer, None)
            .or_else(|| legacy(LEGACY_LIFECYCLE, Owner::LifecycleDrainer, Some("terminating")))
            .or_else(|| legacy(LEGACY_SCALE_IN, Owner::ScaleInCleaner, Some("consolidation")))
    }

    /// Whether the drain is `owner`'s: a held marker of it.
    pub fn held_by(&self, owner: Owner) -> bool {
        self.owner == owner && self.phase == Phase::Held
    }

    /// Whether the drain of a DRAINING instance with this marker is `owner`'s: held by it, or its own pending
    /// marker left by a drain whose held write failed, old enough that no invocation is still finishing it.
    pub fn adopted(&self, owner: Owner, now: DateTime<Utc>) -> bool {
        self.held_by(owner) || (self.owner == owner && self.abandoned(now))
    }

    /// A pending marker old enough that no invocation can still be finishing its drain.
    pub fn abandoned(&self, now: DateTime<Utc>) -> bool {
        self.phase == Phase::Pending && now - self.at >= PENDING_LIFETIME
    }
}

/// The names of every marker attribute an instance carries (ours and earlier versions'), to remove them.
pub fn attributes_on(attributes: &BTreeMap<String, String>) -> Vec<&'static str> {
    std::iter::once(ATTRIBUTE).chain(LEGACY).filter(|name| attributes.contains_key(*name)).collect()
}

/// Markers keep whole seconds: the value is what is compared, and it is written to the second.
fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn values_round_trip_in_both_phases() {
        let m = Marker::new(Owner::SpotDrainer, "stop", at("2026-12-07T10:00:00.700Z"));
        assert_eq!(m.value(), "spot-drainer:stop@2026-12-07T10:00:00Z");
        assert_eq!(m.pending().value(), "pending spot-drainer:stop@2026-12-07T10:00:00Z");
        assert_eq!(Marker::parse(&m.value()), Some(m.clone()));
        assert_eq!(Marker::parse(&m.pending().value()), Some(m.pending()));
        assert!(m.value().len() <= 128);
        let long = Marker::new(Owner::ScaleInCleaner, &"x".repeat(500), at("2026-12-07T10:00:00Z"));
        assert!(long.pending().value().len() <= 128);
    }

    #[test]
    fn a_reason_never_breaks_the_format() {
        let m = Marker::new(Owner::LifecycleDrainer, "a:b@c d", at("2026-12-07T10:00:00Z"));
        assert_eq!(m.reason, "abcd");
        assert_eq!(Marker::parse(&m.value()), Some(m));
        for bad in ["", "spot-drainer", "nobody:stop@2026-12-07T10:00:00Z", "spot-drainer:stop@yesterday"] {
            assert_eq!(Marker::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_earlier_versions_wrote_reads_as_held() {
        let read =
            |name: &str, value: &str| Marker::read(&BTreeMap::from([(name.to_owned(), value.to_owned())]));
        let spot = read(LEGACY_SPOT, "stop@2026-11-22T10:00:00Z").unwrap();
        assert_eq!((spot.owner, spot.reason.as_str(), spot.phase), (Owner::SpotDrainer, "stop", Phase::Held));
        let lifecycle = read(LEGACY_LIFECYCLE, "shipshape-drain-01@2026-11-22T10:00:00Z").unwrap();
        assert_eq!((lifecycle.owner, lifecycle.reason.as_str()), (Owner::LifecycleDrainer, "terminating"));
        // 0.1.0's scale-in-cleaner wrote the time alone.
        let scale_in = read(LEGACY_SCALE_IN, "2026-11-22T10:00:00Z").unwrap();
        assert_eq!((scale_in.owner, scale_in.at), (Owner::ScaleInCleaner, at("2026-11-22T10:00:00Z")));
        assert_eq!(read(LEGACY_SPOT, "rebalance"), None);
        assert_eq!(read("other", "x"), None);
    }

    #[test]
    fn our_attribute_wins_over_a_legacy_one() {
        let attributes = BTreeMap::from([
            (ATTRIBUTE.to_owned(), "lifecycle-drainer:terminating@2026-12-07T10:00:00Z".to_owned()),
            (LEGACY_SPOT.to_owned(), "stop@2026-11-22T10:00:00Z".to_owned()),
        ]);
        assert_eq!(Marker::read(&attributes).map(|m| m.owner), Some(Owner::LifecycleDrainer));
        assert_eq!(attributes_on(&attributes), [ATTRIBUTE, LEGACY_SPOT]);
    }

    #[test]
    fn only_a_held_marker_claims_a_drain() {
        let m = Marker::new(Owner::SpotDrainer, "stop", at("2026-12-07T10:00:00Z"));
        assert!(m.held_by(Owner::SpotDrainer));
        assert!(!m.held_by(Owner::ScaleInCleaner));
        assert!(!m.pending().held_by(Owner::SpotDrainer));
    }

    #[test]
    fn a_pending_marker_is_abandoned_after_its_lifetime() {
        let m = Marker::new(Owner::SpotDrainer, "stop", at("2026-12-07T10:00:00Z")).pending();
        assert!(!m.abandoned(at("2026-12-07T10:14:59Z")));
        assert!(m.abandoned(at("2026-12-07T10:15:00Z")));
        assert!(!m.held().abandoned(at("2026-12-08T10:00:00Z")));
        // On a DRAINING instance, its owner adopts it then (the drain happened, the held write failed).
        assert!(!m.adopted(Owner::SpotDrainer, at("2026-12-07T10:14:59Z")));
        assert!(m.adopted(Owner::SpotDrainer, at("2026-12-07T10:15:00Z")));
        assert!(!m.adopted(Owner::ScaleInCleaner, at("2026-12-07T10:15:00Z")));
    }
}
