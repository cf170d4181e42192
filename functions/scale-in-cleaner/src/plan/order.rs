//! The order the candidates are examined in: empty first, then those in the zone with the most instances
//! of their group that stay, then least reserved (the larger of the CPU and memory shares, as
//! cluster-autoscaler measures a node), fewest tasks, oldest, and by ARN.
//!
//! A queue ordered by that key: the next candidate is its first, and only a removal changes a key (which
//! zone of its group has the most instances), so a removal re-keys the candidates of that group's zones
//! whose standing changed. Examining n candidates costs O(n log n), where picking the least of the rest
//! each time cost O(n²).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::model::Inventory;

/// A reserved share, ordered as `f64::total_cmp` orders it.
#[derive(Debug, Clone, Copy)]
struct Share(f64);

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// (not empty, not in its group's fullest zone, share, tasks, registered, ARN, index): least first.
type Key<'a> = (bool, bool, Share, usize, Option<DateTime<Utc>>, &'a str, usize);

pub struct Order<'a> {
    inv: &'a Inventory,
    queue: BTreeSet<Key<'a>>,
    /// Each queued candidate's key, by inventory index.
    keys: HashMap<usize, Key<'a>>,
    /// Instances of each (group, zone) that stay.
    staying: HashMap<(&'a str, &'a str), i64>,
    /// Candidates by (group, zone), queued or not.
    by_zone: HashMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> Order<'a> {
    /// `staying`: the instances of each (group, zone) that stay, before any removal of this run.
    pub fn new(inv: &'a Inventory, candidates: &[usize], staying: HashMap<(&'a str, &'a str), i64>) -> Self {
        let mut order =
            Order { inv, queue: BTreeSet::new(), keys: HashMap::new(), staying, by_zone: HashMap::new() };
        for &i in candidates {
            if let Some(z) = order.zone_of(i) {
                order.by_zone.entry(z).or_default().push(i);
            }
            let key = order.key(i);
            order.queue.insert(key);
            order.keys.insert(i, key);
        }
        order
    }

    /// The next candidate to examine.
    pub fn pop(&mut self) -> Option<usize> {
        let key = self.queue.pop_first()?;
        self.keys.remove(&key.6);
        Some(key.6)
    }

    /// `i` leaves: one instance fewer stays in its zone, which may change which zone of its group has the
    /// most, and so the keys of the candidates there.
    pub fn removed(&mut self, i: usize) {
        let Some((group, zone)) = self.zone_of(i) else { return };
        let before = self.fullest(group);
        *self.staying.entry((group, zone)).or_default() -= 1;
        let after = self.fullest(group);
        let zones: Vec<&'a str> = self.staying.keys().filter(|(g, _)| *g == group).map(|(_, z)| *z).collect();
        for z in zones {
            let here = self.staying.get(&(group, z)).copied().unwrap_or(0);
            if (here >= before) == (here >= after) && z != zone {
                continue;
            }
            for &c in self.by_zone.get(&(group, z)).map(Vec::as_slice).unwrap_or_default() {
                if let Some(old) = self.keys.get(&c).copied() {
                    let new = self.key(c);
                    if new != old {
                        self.queue.remove(&old);
                        self.queue.insert(new);
                        self.keys.insert(c, new);
                    }
                }
            }
        }
    }

    fn zone_of(&self, i: usize) -> Option<(&'a str, &'a str)> {
        let m = self.inv.instances[i].membership.as_ref()?;
        Some((m.group.as_str(), m.availability_zone.as_str()))
    }

    /// The most instances that stay in one zone of the group.
    fn fullest(&self, group: &str) -> i64 {
        self.staying.iter().filter(|((g, _), _)| *g == group).map(|(_, c)| *c).max().unwrap_or(0)
    }

    fn key(&self, i: usize) -> Key<'a> {
        let inst = &self.inv.instances[i];
        let most = self
            .zone_of(i)
            .is_some_and(|(g, z)| self.staying.get(&(g, z)).copied().unwrap_or(0) >= self.fullest(g));
        (
            !inst.is_empty(),
            !most,
            Share(inst.reserved_share()),
            inst.task_count(),
            inst.registered_at,
            inst.container_instance_arn.as_str(),
            i,
        )
    }
}
