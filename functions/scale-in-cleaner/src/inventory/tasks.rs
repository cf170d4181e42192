//! The tasks on the instances the plan examines, and what ECS needs to place each elsewhere:
//! `ecs:ListTasks` (per instance), `ecs:DescribeTasks` (100 per call), `ecs:DescribeTaskDefinition`
//! (once per revision and warm sandbox), `ecs:GetTaskProtection` (100 per call), and `ecs:ListContainerInstances`
//! with `task:group == service:<name>` (where a `distinctInstance` service runs). Independent calls go
//! at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_ecs::types::DesiredStatus;
use futures_util::{StreamExt, TryStreamExt, stream};
use shared::AwsError;
use shared::error::aws;

use super::CONCURRENCY;
use super::definitions::{Definition, Definitions};
use super::services::Placement;
use crate::plan::{Needs, Resources, Task};

/// `GetTaskProtection` takes up to 100 tasks (API_GetTaskProtection.html).
const PROTECTION_BATCH: usize = 100;

/// One cluster's task reads.
#[derive(Debug)]
pub struct Reading<'a> {
    pub ecs: &'a aws_sdk_ecs::Client,
    pub cluster: &'a str,
    pub daemons: &'a BTreeSet<String>,
    pub placement: &'a HashMap<String, Placement>,
    /// Task groups whose hosts were read earlier in the run.
    pub known_hosts: BTreeSet<String>,
}

pub type Hosts = BTreeMap<String, BTreeSet<String>>;

/// The tasks read, by container instance ARN.
#[derive(Debug, Default)]
pub struct Read {
    pub by_instance: HashMap<String, Vec<Task>>,
    /// Where the `distinctInstance` groups among them run.
    pub hosts: Hosts,
    /// Instances with a task ECS listed but could not describe: their tasks stay unknown.
    pub undescribed: BTreeSet<String>,
}

impl Reading<'_> {
    /// The tasks with desired status RUNNING on each of `instances` (daemon tasks left out), and where
    /// the `distinctInstance` groups among them run.
    pub async fn tasks(&self, instances: &[String], cache: &Definitions) -> Result<Read, AwsError> {
        let (ecs, cluster) = (self.ecs, self.cluster);
        let listed: Vec<Vec<String>> = stream::iter(instances)
            .map(|instance| async move {
                ecs.list_tasks()
                    .cluster(cluster)
                    .container_instance(instance)
                    .desired_status(DesiredStatus::Running)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(aws("ListTasks"))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let on: HashMap<&str, &str> = listed
            .iter()
            .zip(instances)
            .flat_map(|(arns, instance)| arns.iter().map(move |a| (a.as_str(), instance.as_str())))
            .collect();
        let arns: Vec<String> = listed.iter().flatten().cloned().collect();
        let described = shared::ecs::describe_tasks(ecs, cluster, &arns).await?;
        // An instance with a task ECS listed but could not describe (one just placed, as the API is
        // eventually consistent) has tasks not known this run: it is examined again by a later plan.
        // A failure naming no task listed here leaves every instance read in doubt.
        let undescribed: BTreeSet<String> =
            if described.failed.iter().all(|(arn, _)| on.contains_key(arn.as_str())) {
                described
                    .failed
                    .iter()
                    .filter_map(|(arn, _)| on.get(arn.as_str()))
                    .map(|i| (*i).to_owned())
                    .collect()
            } else {
                instances.iter().cloned().collect()
            };
        let found: Vec<aws_sdk_ecs::types::Task> = described
            .tasks
            .into_iter()
            .filter(|t| t.container_instance_arn().is_some())
            .filter(|t| !t.group().is_some_and(|g| self.daemons.contains(g)))
            .collect();
        let service_tasks: Vec<String> = found
            .iter()
            .filter(|t| t.group().is_some_and(|g| g.starts_with("service:")))
            .filter_map(|t| t.task_arn().map(str::to_owned))
            .collect();
        let td_arns = found.iter().filter_map(|t| t.task_definition_arn().map(str::to_owned));
        let (protected, ()) =
            futures_util::future::try_join(self.protected(&service_tasks), cache.read(ecs, td_arns)).await?;
        let hosts = self.hosts(&self.groups_to_locate(&found, cache)).await?;
        let mut by_instance: HashMap<String, Vec<Task>> = HashMap::new();
        // One `Needs` per (revision, group), shared by its tasks: a large service's tasks need the same.
        let mut shared: HashMap<(&str, &str), Arc<Needs>> = HashMap::new();
        for t in &found {
            let (Some(instance), Some(arn)) = (t.container_instance_arn(), t.task_arn()) else { continue };
            let td = t.task_definition_arn().unwrap_or_default();
            let definition = cache.get(td).unwrap_or_default();
            let group = t.group().map(str::to_owned);
            let needs = shared
                .entry((td, t.group().unwrap_or_default()))
                .or_insert_with(|| self.needs(&definition, group.as_deref()))
                .clone();
            let reserved = reservation(t);
            by_instance.entry(instance.to_owned()).or_default().push(Task {
                arn: arn.to_owned(),
                group,
                reserved: if reserved == Resources::default() { definition.reserved } else { reserved },
                needs,
                protected: protected.contains(arn),
            });
        }
        Ok(Read { by_instance, hosts, undescribed })
    }

    /// What a task of `definition` in `group` needs: its definition's, and its service's rules.
    fn needs(&self, definition: &Definition, group: Option<&str>) -> Arc<Needs> {
        let Some(p) = group.and_then(service_of).and_then(|s| self.placement.get(s)) else {
            return definition.needs.clone();
        };
        let mut needs = Needs::clone(&definition.needs);
        needs.member_of.extend(p.member_of.iter().cloned());
        needs.distinct_instance = p.distinct_instance;
        needs.az_spread = p.az_spread;
        needs.providers.clone_from(&p.providers);
        Arc::new(needs)
    }

    /// The task groups whose hosts placing `found` elsewhere needs, not read before: those of services
    /// with `distinctInstance`, and those the `memberOf` expressions of their definitions and services name
    /// (`task:group == <group>`). A group that cannot be written in a filter unquoted is left out: a task
    /// whose expression names it then stays where it is.
    fn groups_to_locate(&self, found: &[aws_sdk_ecs::types::Task], cache: &Definitions) -> BTreeSet<String> {
        let mut texts: BTreeSet<String> = BTreeSet::new();
        let mut groups: BTreeSet<String> = BTreeSet::new();
        for t in found {
            let placement = t.group().and_then(service_of).and_then(|s| self.placement.get(s));
            if placement.is_some_and(|p| p.distinct_instance) {
                groups.extend(t.group().map(str::to_owned));
            }
            if let Some(d) = t.task_definition_arn().and_then(|d| cache.get(d)) {
                texts.extend(d.needs.member_of.iter().cloned());
            }
            texts.extend(placement.iter().flat_map(|p| p.member_of.iter().cloned()));
        }
        let named =
            texts.iter().filter_map(|t| crate::plan::query::parse(t).ok()).flat_map(|e| e.task_groups());
        groups.extend(
            named.filter(|g| {
                !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric() || ":_-.".contains(c))
            }),
        );
        groups.retain(|g| !self.known_hosts.contains(g));
        groups
    }

    /// The tasks among `arns` with scale-in protection on (and not expired).
    async fn protected(&self, arns: &[String]) -> Result<BTreeSet<String>, AwsError> {
        let (ecs, cluster) = (self.ecs, self.cluster);
        let pages: Vec<Vec<String>> = stream::iter(arns.chunks(PROTECTION_BATCH))
            .map(|batch| async move {
                let out = ecs
                    .get_task_protection()
                    .cluster(cluster)
                    .set_tasks(Some(batch.to_vec()))
                    .send()
                    .await
                    .map_err(aws("GetTaskProtection"))?;
                // A task ECS answers with a failure (stopped meanwhile) is not protected.
                let on = out.protected_tasks().iter().filter(|p| p.protection_enabled());
                Ok::<_, AwsError>(on.filter_map(|p| p.task_arn().map(str::to_owned)).collect())
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// For each group, the container instances running one of its tasks, as ECS evaluates the cluster
    /// query `task:group == <group>`.
    async fn hosts(&self, groups: &BTreeSet<String>) -> Result<Hosts, AwsError> {
        let (ecs, cluster) = (self.ecs, self.cluster);
        stream::iter(groups)
            .map(|group| async move {
                let arns: Vec<String> = ecs
                    .list_container_instances()
                    .cluster(cluster)
                    // Groups here are letters, digits and `:_-.` (`groups_to_locate`): nothing to quote.
                    .filter(format!("task:group == {group}"))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(aws("ListContainerInstances"))?;
                Ok::<_, AwsError>((group.clone(), arns.into_iter().collect()))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }
}

fn service_of(group: &str) -> Option<&str> {
    group.strip_prefix("service:")
}

/// A task's reservation: the task-level size when the task definition sets one, otherwise the sum over
/// its containers (CPU, and the soft memory limit where set, as the scheduler reserves).
fn reservation(task: &aws_sdk_ecs::types::Task) -> Resources {
    let int = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok());
    let containers = task.containers();
    let cpu = int(task.cpu()).unwrap_or_else(|| containers.iter().filter_map(|c| int(c.cpu())).sum());
    let memory = int(task.memory()).unwrap_or_else(|| {
        containers.iter().filter_map(|c| int(c.memory_reservation()).or_else(|| int(c.memory()))).sum()
    });
    Resources::new(cpu, memory)
}

/// A task whose size neither DescribeTasks nor its task definition gave is charged what the instance has
/// reserved beyond the tasks whose size is known: never less than it can take.
pub fn size_unknown(registered: Resources, remaining: Resources, tasks: &mut [Task]) {
    let unknown = tasks.iter().filter(|t| t.reserved == Resources::default()).count();
    if unknown == 0 {
        return;
    }
    let known = tasks.iter().fold(Resources::default(), |s, t| s.plus(t.reserved));
    let rest = Resources::new(
        (registered.cpu - remaining.cpu - known.cpu).max(0),
        (registered.memory - remaining.memory - known.memory).max(0),
    );
    for t in tasks.iter_mut().filter(|t| t.reserved == Resources::default()) {
        t.reserved = rest;
    }
}
