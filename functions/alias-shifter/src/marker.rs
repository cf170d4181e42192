//! The shift's mark on its alias: the alias's description while a shift runs. Pure.
//!
//! Every `UpdateAlias` of a shift writes, in the same call, what the shift is and where it stands:
//!
//! `shipshape alias-shifter shift 20261122T210127.705Z 3f9a0c6d1e2b4a5f68790a1b: 1 -> 2, weight 2 of 4 since 1795383687705`
//!
//! (its id, a digest of its rollout, its versions, its phase and when that phase began, and `, awaiting
//! approval` while a person is asked), and the last one puts the alias's own description back. Only a
//! principal that may update the alias can write it, so it is what a state handed back by a caller is
//! checked against: the digest binds the whole rollout (criteria, weights, hooks, timeouts, the versions'
//! timeout) and the phase's start binds the step's timing. It is also how a person controls a running shift
//! without the state: `abort` and `promote` append their request to it (` | abort: <reason>`,
//! ` | promote`), which the shift reads at its next check.

use std::fmt;

pub const PREFIX: &str = "shipshape alias-shifter shift ";
/// Lambda's limit on an alias's description.
pub const MAX_DESCRIPTION: usize = 256;
const AWAITING: &str = ", awaiting approval";

/// Where a shift stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The weight at `step` (0-based) of `of` is routed (or awaits approval).
    Weight { step: usize, of: usize },
    /// The new version is the primary and is being judged.
    Baking,
}

impl Phase {
    /// Order within a shift: a later phase than a state's means the state is stale.
    pub fn order(self) -> usize {
        match self {
            Phase::Weight { step, .. } => step,
            Phase::Baking => usize::MAX,
        }
    }
}

/// A person's request, appended to the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Abort(String),
    Promote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The shift's id: its start time.
    pub shift: String,
    /// The digest of the rollout and of what the shift fixed at its start (see `State::digest`).
    pub digest: String,
    pub from: String,
    pub to: String,
    pub phase: Phase,
    /// When the phase began (the weight was set, the primary switched), in milliseconds since the epoch.
    pub since: i64,
    /// Paused for a person's approval.
    pub awaiting: bool,
    pub control: Option<Control>,
}

impl Marker {
    /// The same mark with `control`, cut to fit Lambda's limit (the reason is what gets cut).
    pub fn with(&self, control: Control) -> String {
        let marked = Marker { control: Some(control), ..self.clone() }.to_string();
        if marked.len() <= MAX_DESCRIPTION {
            return marked;
        }
        let mut cut = String::new();
        for c in marked.chars() {
            if cut.len() + c.len_utf8() > MAX_DESCRIPTION - 3 {
                break;
            }
            cut.push(c);
        }
        cut + "..."
    }

    /// The mark without a request, as the shift wrote it.
    pub fn plain(&self) -> Marker {
        Marker { control: None, ..self.clone() }
    }

    /// Whether a description is any shift's mark, even one this version cannot read (an earlier
    /// version's): a new shift must not start over it.
    pub fn present(description: &str) -> bool {
        description.starts_with(PREFIX)
    }

    /// The mark in an alias's description, if it is one.
    pub fn parse(description: &str) -> Option<Marker> {
        let rest = description.strip_prefix(PREFIX)?;
        let (head, rest) = rest.split_once(": ")?;
        let (shift, digest) = head.split_once(' ')?;
        let (from, rest) = rest.split_once(" -> ")?;
        let (to, rest) = rest.split_once(", ")?;
        let (phase, control) = match rest.split_once(" | ") {
            Some((phase, control)) => (phase, Some(control)),
            None => (rest, None),
        };
        let (phase, awaiting) = match phase.strip_suffix(AWAITING) {
            Some(phase) => (phase, true),
            None => (phase, false),
        };
        let (phase, since) = phase.split_once(" since ")?;
        let phase = match phase {
            "baking" => Phase::Baking,
            weight => {
                let (step, of) = weight.strip_prefix("weight ")?.split_once(" of ")?;
                let step: usize = step.parse().ok()?;
                Phase::Weight { step: step.checked_sub(1)?, of: of.parse().ok()? }
            }
        };
        let control = match control {
            None => None,
            Some("promote") => Some(Control::Promote),
            Some(other) => Some(Control::Abort(other.strip_prefix("abort: ")?.to_owned())),
        };
        let version = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let hex = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
        (version(from) && version(to) && hex).then(|| Marker {
            shift: shift.to_owned(),
            digest: digest.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            phase,
            since: since.parse().unwrap_or(i64::MIN),
            awaiting,
            control,
        })
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{} {}: {} -> {}, ", self.shift, self.digest, self.from, self.to)?;
        match self.phase {
            Phase::Weight { step, of } => write!(f, "weight {} of {of}", step + 1)?,
            Phase::Baking => f.write_str("baking")?,
        }
        write!(f, " since {}", self.since)?;
        if self.awaiting {
            f.write_str(AWAITING)?;
        }
        match &self.control {
            None => Ok(()),
            Some(Control::Promote) => f.write_str(" | promote"),
            Some(Control::Abort(reason)) => write!(f, " | abort: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(phase: Phase) -> Marker {
        Marker {
            shift: "20261122T210127.705Z".into(),
            digest: "3f9a0c6d1e2b4a5f68790a1b".into(),
            from: "1".into(),
            to: "2".into(),
            phase,
            since: 1_795_383_687_705,
            awaiting: false,
            control: None,
        }
    }

    #[test]
    fn a_mark_reads_back_as_written() {
        let m = mark(Phase::Weight { step: 1, of: 4 });
        assert_eq!(
            m.to_string(),
            "shipshape alias-shifter shift 20261122T210127.705Z 3f9a0c6d1e2b4a5f68790a1b: 1 -> 2, weight 2 of 4 since 1795383687705"
        );
        assert_eq!(Marker::parse(&m.to_string()), Some(m.clone()));
        let baking = mark(Phase::Baking);
        assert_eq!(Marker::parse(&baking.to_string()), Some(baking.clone()));
        let waiting = Marker { awaiting: true, ..baking };
        assert!(waiting.to_string().ends_with("baking since 1795383687705, awaiting approval"));
        assert_eq!(Marker::parse(&waiting.to_string()), Some(waiting.clone()));
        let promoted = waiting.with(Control::Promote);
        assert_eq!(
            Marker::parse(&promoted).map(|p| (p.awaiting, p.control)),
            Some((true, Some(Control::Promote)))
        );
        let aborted = m.with(Control::Abort("p99 up: see the dashboard".into()));
        assert!(aborted.ends_with(" | abort: p99 up: see the dashboard"), "{aborted}");
        assert_eq!(Marker::parse(&aborted).map(|p| p.plain()), Some(m));
    }

    #[test]
    fn other_descriptions_are_not_marks() {
        for d in [
            "",
            "prod traffic",
            "shipshape alias-shifter shift x 3f9a: a -> 2, baking since 1",
            "shipshape alias-shifter shift x 3f9a: 1 -> 2, weight 0 of 4 since 1",
            "shipshape alias-shifter shift x zz: 1 -> 2, baking since 1",
            // An earlier version's mark: not readable, but still a shift in progress.
            "shipshape alias-shifter shift 20261122T210127.705Z: 1 -> 2, weight 2 of 4",
        ] {
            assert_eq!(Marker::parse(d), None, "{d}");
        }
        assert!(Marker::present("shipshape alias-shifter shift 20261122T210127.705Z: 1 -> 2, baking"));
        assert!(!Marker::present("prod traffic"));
    }

    #[test]
    fn a_long_abort_reason_is_cut_to_lambdas_limit() {
        let m = Marker { awaiting: true, ..mark(Phase::Weight { step: 99, of: 100 }) }
            .with(Control::Abort("é".repeat(300)));
        assert!(m.len() <= MAX_DESCRIPTION && m.ends_with("..."), "{}", m.len());
        assert!(matches!(Marker::parse(&m).and_then(|p| p.control), Some(Control::Abort(_))));
    }

    #[test]
    fn later_phases_order_after_earlier_ones() {
        assert!(Phase::Weight { step: 1, of: 3 }.order() < Phase::Weight { step: 2, of: 3 }.order());
        assert!(Phase::Weight { step: 2, of: 3 }.order() < Phase::Baking.order());
    }
}
