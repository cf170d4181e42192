//! What a rollout does after a judgement that did not fail it. Pure: the run loop, the state machine's
//! calls and the benchmark of the judge all move on by it.

use super::{State, Status};
use crate::judge::health::Verdict;
use crate::judge::window;

/// The next move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// The next weight.
    NextWeight,
    /// The new version becomes the primary.
    Switch,
    /// Another check of the bake.
    NextCheck,
    /// The bake is over: the rollout succeeded.
    Finish,
    /// The same step (or the bake's last check) held another interval for more traffic.
    Extend,
    /// A person decides (the approval gate, or a step that stayed inconclusive).
    Hold(String),
    /// Still inconclusive after every extra interval, and nobody to ask: roll back.
    GiveUp(String),
}

impl State {
    /// After `verdict`, what the rollout does (unhealthy: roll back).
    pub fn next_move(&self, verdict: &Verdict) -> Move {
        let r = &self.rollout;
        let baking = self.status == Status::Baking;
        let last_check = baking && {
            let switched = self.switched_at.unwrap_or(self.step_started_at);
            window::bake_check_end(switched, r.interval, r.bake_seconds, self.bake_checks + 1).1
        };
        match verdict {
            Verdict::Unhealthy(why) => Move::GiveUp(why.clone()),
            Verdict::Inconclusive(_) if baking && !last_check => Move::NextCheck,
            Verdict::Inconclusive(why) => {
                if self.extensions < r.max_extensions {
                    return Move::Extend;
                }
                let why = format!("inconclusive after {} extra interval(s): {why}", self.extensions);
                if r.approval { Move::Hold(why) } else { Move::GiveUp(why) }
            }
            _ if baking => {
                if last_check {
                    Move::Finish
                } else {
                    Move::NextCheck
                }
            }
            _ => {
                let last = self.step + 1 >= r.weights.len() || self.promote;
                match (last, r.approval && !self.promote) {
                    (true, true) => Move::Hold("approval before the switch".to_owned()),
                    (true, false) => Move::Switch,
                    (false, _) => Move::NextWeight,
                }
            }
        }
    }
}
