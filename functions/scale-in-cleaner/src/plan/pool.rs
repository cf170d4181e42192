//! Usable capacity as the planner moves tasks around: each instance's remaining room.

use super::model::{Capacity, Inventory, Resources, Settings, Task};

#[derive(Debug, Clone)]
pub struct Pool {
    /// Index into the inventory, registered, remaining.
    room: Vec<(usize, Resources, Resources)>,
}

impl Pool {
    pub fn new(inv: &Inventory, members: impl Iterator<Item = usize>) -> Self {
        Pool { room: members.map(|i| (i, inv.instances[i].registered, inv.instances[i].remaining)).collect() }
    }

    pub fn without(&self, index: usize) -> Pool {
        Pool { room: self.room.iter().copied().filter(|(i, _, _)| *i != index).collect() }
    }

    /// Places tasks one by one, largest first, each where it leaves the least room (best fit), so that
    /// large holes stay free for large tasks. `false` if some task fits nowhere.
    pub fn place(&mut self, tasks: &[Task]) -> bool {
        let mut sorted: Vec<Resources> = tasks.iter().map(|t| t.reserved).collect();
        sorted.sort_by_key(|t| std::cmp::Reverse((t.memory, t.cpu)));
        for task in sorted {
            let best = self
                .room
                .iter_mut()
                .filter(|(_, _, room)| task.fits_in(*room))
                .min_by_key(|(_, _, room)| (room.memory - task.memory, room.cpu - task.cpu));
            match best {
                Some((_, _, room)) => *room = room.minus(task),
                None => return false,
            }
        }
        true
    }

    pub fn capacity(&self, settings: &Settings, largest_task: Resources) -> Capacity {
        let registered = self.room.iter().fold(Resources::default(), |s, (_, r, _)| s.plus(*r));
        let spare = self.room.iter().fold(Resources::default(), |s, (_, _, r)| s.plus(*r));
        let percent = |total: i64, pct: u32| (total * i64::from(pct) + 99) / 100;
        Capacity {
            instances: self.room.len(),
            registered,
            spare,
            required: Resources::new(
                percent(registered.cpu, settings.reserve_cpu_percent),
                percent(registered.memory, settings.reserve_memory_percent),
            ),
            largest_task,
        }
    }

    /// Why the pool does not meet the thresholds, if it does not.
    pub fn shortfall(&self, settings: &Settings, largest_task: Resources) -> Option<String> {
        let c = self.capacity(settings, largest_task);
        // Exact integer comparison: spare * 100 >= percent * registered.
        let short = |spare: i64, total: i64, pct: u32| spare * 100 < i64::from(pct) * total;
        if short(c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent) {
            return Some(format!(
                "spare CPU would be {} of {} units, under RESERVE_CPU_PERCENT={}",
                c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent
            ));
        }
        if short(c.spare.memory, c.registered.memory, settings.reserve_memory_percent) {
            return Some(format!(
                "spare memory would be {} of {} MiB, under RESERVE_MEMORY_PERCENT={}",
                c.spare.memory, c.registered.memory, settings.reserve_memory_percent
            ));
        }
        if largest_task != Resources::default()
            && !self.room.iter().any(|(_, _, room)| largest_task.fits_in(*room))
        {
            return Some(format!(
                "no instance would have room for the largest task ({} CPU units, {} MiB)",
                largest_task.cpu, largest_task.memory
            ));
        }
        None
    }
}
