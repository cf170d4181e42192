//! Task definitions: what placing a task of each revision takes, read once per warm sandbox. A revision
//! never changes once registered (RegisterTaskDefinition makes a new one), so what was read stays true
//! until the revision is deleted, when no task runs it any more.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_ecs::types::{
    NetworkMode, ResourceType, TargetType, TaskDefinitionPlacementConstraintType, TransportProtocol,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use shared::AwsError;
use shared::error::aws;

use super::CONCURRENCY;
use crate::plan::{HostPort, Needs, Protocol, Resources};

/// Revisions kept at most: a cluster runs a few revisions per service at a time; past this many (years of
/// deployments in one sandbox), the cache starts over rather than grow.
const KEPT: usize = 2000;

/// What a task definition says about placing its tasks.
#[derive(Debug, Clone, Default)]
pub struct Definition {
    pub reserved: Resources,
    pub needs: Arc<Needs>,
}

/// The task definitions read, by ARN with its revision, shared by every run of a warm sandbox.
#[derive(Debug, Clone, Default)]
pub struct Definitions(Arc<Mutex<HashMap<String, Arc<Definition>>>>);

impl Definitions {
    pub fn get(&self, arn: &str) -> Option<Arc<Definition>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(arn).cloned()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the task definitions in `arns` not read before.
    pub async fn read(
        &self,
        ecs: &aws_sdk_ecs::Client,
        arns: impl Iterator<Item = String>,
    ) -> Result<(), AwsError> {
        let missing: BTreeSet<String> = {
            let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            arns.filter(|a| !known.contains_key(a)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let read: Vec<(String, Definition)> = stream::iter(missing)
            .map(|arn| async move {
                let out = ecs
                    .describe_task_definition()
                    .task_definition(&arn)
                    .send()
                    .await
                    .map_err(aws("DescribeTaskDefinition"))?;
                Ok::<_, AwsError>((arn, out.task_definition().map(definition).unwrap_or_default()))
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() + read.len() > KEPT {
            known.clear();
        }
        known.extend(read.into_iter().map(|(arn, d)| (arn, Arc::new(d))));
        Ok(())
    }
}

fn definition(td: &aws_sdk_ecs::types::TaskDefinition) -> Definition {
    let int = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok());
    let containers = td.container_definitions();
    let cpu = int(td.cpu()).unwrap_or_else(|| containers.iter().map(|c| i64::from(c.cpu())).sum());
    let memory = int(td.memory()).unwrap_or_else(|| {
        containers.iter().map(|c| i64::from(c.memory_reservation().or(c.memory()).unwrap_or(0))).sum()
    });
    let mode = td.network_mode().cloned().unwrap_or(NetworkMode::Bridge);
    let mut ports = Vec::new();
    if matches!(mode, NetworkMode::Bridge | NetworkMode::Host) {
        for m in containers.iter().flat_map(|c| c.port_mappings()) {
            // Host mode maps each container port to the same host port; in bridge mode a missing or 0
            // hostPort is dynamic, which never conflicts.
            let host =
                if mode == NetworkMode::Host { m.host_port().or(m.container_port()) } else { m.host_port() };
            let Some(port) = host.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else { continue };
            let protocol =
                if m.protocol() == Some(&TransportProtocol::Udp) { Protocol::Udp } else { Protocol::Tcp };
            ports.push(HostPort { port, protocol });
        }
    }
    let gpus = containers
        .iter()
        .flat_map(|c| c.resource_requirements())
        .filter(|r| r.r#type() == &ResourceType::Gpu)
        .filter_map(|r| r.value().parse::<u32>().ok())
        .sum();
    let member_of = td
        .placement_constraints()
        .iter()
        .filter(|c| c.r#type() == Some(&TaskDefinitionPlacementConstraintType::MemberOf))
        .filter_map(|c| c.expression().map(str::to_owned))
        .collect();
    // ECS places a task only on an instance with every attribute its definition requires
    // (API_TaskDefinition.html, requiresAttributes); those of other target types do not apply.
    let requires = td
        .requires_attributes()
        .iter()
        .filter(|a| a.target_type().is_none_or(|t| *t == TargetType::ContainerInstance))
        .map(|a| (a.name().to_owned(), a.value().map(str::to_owned)))
        .collect();
    Definition {
        reserved: Resources::new(cpu, memory),
        needs: Arc::new(Needs {
            ports,
            gpus,
            awsvpc: mode == NetworkMode::Awsvpc,
            requires,
            member_of,
            ..Needs::default()
        }),
    }
}
