//! An expression evaluated on one container instance, in three-valued logic: what is not known (an
//! attribute the instance lacks, a task group whose hosts were not read, a count that changes as the plan
//! moves tasks) is neither a match nor a mismatch, and an unknown result is never a match.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Expr, Order, Subject, Test, Value};

/// The facts of one container instance an expression is evaluated against.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub ec2_instance_id: &'a str,
    pub agent_connected: bool,
    /// Attribute name to value; attributes such as `ecs.capability.*` have none.
    pub attributes: &'a BTreeMap<String, Option<String>>,
    pub agent_version: Option<&'a str>,
    pub registered_at: Option<DateTime<Utc>>,
    /// Its tasks before and after those the plan moves onto it arrive: ECS evaluates the count when it
    /// places each task, and the drain's other replacements may or may not be there yet.
    pub running_tasks: (i64, i64),
    /// Whether it runs a task of a group; `None` when that is not known (the group's hosts were not read,
    /// or a task of it moves there only with the plan).
    pub runs_group: &'a dyn Fn(&str) -> Option<bool>,
}

impl std::fmt::Debug for Facts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts").field("ec2_instance_id", &self.ec2_instance_id).finish_non_exhaustive()
    }
}

impl Expr {
    /// Whether the instance is known to match. ECS's documentation does not say how a comparison with an
    /// attribute the instance lacks evaluates (`attribute:stack != prod` on an instance without `stack`),
    /// so such a comparison is unknown, combined as in three-valued logic, and an unknown result is not a
    /// match: the planner never counts on an instance ECS might refuse.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.eval(facts) == Some(true)
    }

    fn eval(&self, facts: &Facts<'_>) -> Option<bool> {
        match self {
            Expr::And(a, b) => match (a.eval(facts), b.eval(facts)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.eval(facts), b.eval(facts)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(e) => e.eval(facts).map(|v| !v),
            Expr::Test(Subject::TaskGroup, test) => groups(test, facts),
            Expr::Test(Subject::RunningTasksCount, test) => {
                let (before, after) = facts.running_tasks;
                let (a, b) = (compare(test, &Value::Count(before)), compare(test, &Value::Count(after)));
                if a == b { a } else { None }
            }
            Expr::Test(Subject::AgentVersion, test) => {
                compare(test, &super::version(facts.agent_version?).ok()?)
            }
            Expr::Test(Subject::RegisteredAt, test) => compare(test, &Value::Time(facts.registered_at?)),
            Expr::Test(subject, test) => {
                let agent = facts.agent_connected.to_string();
                let value = match subject {
                    Subject::Attribute(name) => facts.attributes.get(name).map(|v| v.as_deref()),
                    Subject::Ec2InstanceId => Some(Some(facts.ec2_instance_id)),
                    _ => Some(Some(agent.as_str())),
                };
                test.holds(value)
            }
        }
    }
}

/// `task:group == g` (or `in [...]`): runs a task of the group.
fn groups(test: &Test, facts: &Facts<'_>) -> Option<bool> {
    match test {
        Test::Equals(g) => (facts.runs_group)(g),
        Test::In(list) => {
            list.iter().map(|g| (facts.runs_group)(g)).try_fold(false, |any, v| Some(any || v?))
        }
        Test::Negated(inner) => groups(inner, facts).map(|v| !v),
        _ => None,
    }
}

/// A value compared by its kind; a value of another kind is unknown.
fn compare(test: &Test, have: &Value) -> Option<bool> {
    match test {
        Test::Negated(inner) => compare(inner, have).map(|v| !v),
        Test::Compare(order, want) => {
            if std::mem::discriminant(have) != std::mem::discriminant(want) {
                return None;
            }
            Some(match order {
                Order::Equal => have == want,
                Order::Greater => have > want,
                Order::GreaterOrEqual => have >= want,
                Order::Less => have < want,
                Order::LessOrEqual => have <= want,
            })
        }
        _ => None,
    }
}

impl Test {
    /// `value`: `None` when the subject does not exist, `Some(None)` when it exists without a value.
    /// Only `exists` and `!exists` are known for a subject that does not exist.
    fn holds(&self, value: Option<Option<&str>>) -> Option<bool> {
        let text = value.flatten();
        match self {
            Test::Exists => Some(value.is_some()),
            Test::Negated(inner) => inner.holds(value).map(|v| !v),
            _ if value.is_none() => None,
            Test::Equals(v) => Some(text == Some(v.as_str())),
            Test::In(list) => Some(text.is_some_and(|t| list.iter().any(|v| v == t))),
            Test::Matches(re) => Some(text.is_some_and(|t| re.is_match(t))),
            Test::Compare(..) => None,
        }
    }
}
