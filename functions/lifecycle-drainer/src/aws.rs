//! The lifecycle-drainer's AWS calls, for one lifecycle message: `ecs:ListClusters` (with `CLUSTERS`
//! empty), `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`,
//! `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes` and `ecs:DeleteAttributes` (our marker),
//! `ecs:ListTasks`, `ecs:DescribeTasks`,
//! `autoscaling:DescribeLifecycleHooks`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:RecordLifecycleActionHeartbeat`,
//! `autoscaling:CompleteLifecycleAction`, `sns:Publish` (continuations).

use aws_sdk_ecs::types::ContainerInstanceStatus;
use shared::AwsError;
use shared::autoscaling::{self, InGroup};
use shared::ecs::{self, Found, InstanceStatus, Search, TaskLeft};
use shared::error::aws;
use shared::events::LifecycleMessage;
use tracing::{info, warn};

use crate::drain::{Completion, Effects, HookRead};
use crate::input::{self, DrainState};
use crate::{Deps, Error, LifecycleResult};

/// The container-instance attribute that marks a drain of ours: its value is the hook whose action it is
/// for. An instance back from the warm pool is set ACTIVE again only with it.
pub const MARKER: &str = "shipshape.lifecycle-drainer.drained-for";

/// The AWS side of one message's drain.
#[derive(Debug)]
pub struct Hook<'a> {
    pub deps: &'a Deps,
    pub message: &'a LifecycleMessage,
}

/// "No active Lifecycle Action found": a duplicate delivery completed it, it expired, or the instance is
/// gone.
fn no_active_action(e: &AwsError) -> bool {
    e.code_is("ValidationError") && e.message.contains("No active Lifecycle Action")
}

impl Effects for Hook<'_> {
    async fn find(&self) -> Result<Search, Error> {
        let clusters = self.deps.config.clusters.resolve(&self.deps.ecs).await?;
        Ok(ecs::find_container_instance(&self.deps.ecs, &clusters, &self.message.ec2_instance_id).await?)
    }

    async fn hook(&self) -> HookRead {
        let m = self.message;
        let result = self
            .deps
            .autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(&m.auto_scaling_group_name)
            .lifecycle_hook_names(&m.lifecycle_hook_name)
            .send()
            .await
            .map_err(aws("DescribeLifecycleHooks"));
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                warn!(error = %e, "cannot read the hook; heartbeats every 15 s, and the shortest hook lifetime assumed");
                return HookRead::Unreadable;
            }
        };
        let Some(hook) =
            out.lifecycle_hooks().iter().find(|h| h.lifecycle_hook_name() == Some(&m.lifecycle_hook_name))
        else {
            return HookRead::Missing;
        };
        let seconds = |v: Option<i32>| v.and_then(|t| u32::try_from(t).ok());
        match (seconds(hook.heartbeat_timeout()), seconds(hook.global_timeout())) {
            (Some(heartbeat_timeout), Some(global_timeout)) => {
                HookRead::Found { heartbeat_timeout, global_timeout }
            }
            // Both are always set by AWS; the defaults are 3600 s and 100 times that, at most 48 hours.
            (heartbeat, global) => {
                let heartbeat_timeout = heartbeat.unwrap_or(3600);
                HookRead::Found {
                    heartbeat_timeout,
                    global_timeout: global.unwrap_or((100 * heartbeat_timeout).min(172_800)),
                }
            }
        }
    }

    async fn lifecycle_state(&self) -> Result<Option<InGroup>, Error> {
        Ok(autoscaling::in_group(&self.deps.autoscaling, self.message.ec2_instance_id.as_str()).await?)
    }

    async fn describe(&self, state: &DrainState) -> Result<Option<Found>, Error> {
        let arns = std::slice::from_ref(&state.container_instance_arn);
        match ecs::describe_container_instances(&self.deps.ecs, &state.cluster, arns).await {
            // A deregistered container instance stays visible as INACTIVE for a while: it is gone.
            Ok(described) => {
                Ok(described.into_iter().next().filter(|f| f.status != InstanceStatus::Inactive))
            }
            Err(e) if e.code_is("ClusterNotFoundException") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_draining(&self, state: &DrainState) -> Result<(), Error> {
        let arns = std::slice::from_ref(&state.container_instance_arn);
        let change =
            ecs::set_status(&self.deps.ecs, &state.cluster, arns, ContainerInstanceStatus::Draining).await?;
        if let Some(failure) = change.failures.into_iter().next() {
            return Err(Error::DrainRejected {
                container_instance_arn: state.container_instance_arn.clone(),
                reason: failure.reason,
            });
        }
        info!(instance_id = %self.message.ec2_instance_id, cluster = %state.cluster, "set DRAINING");
        Ok(())
    }

    async fn mark(&self, state: &DrainState) -> Result<(), Error> {
        let value = crate::decide::marker_value(&self.message.lifecycle_hook_name, state.started_at);
        let arns = std::slice::from_ref(&state.container_instance_arn);
        Ok(ecs::set_attribute(&self.deps.ecs, &state.cluster, arns, MARKER, Some(&value)).await?)
    }

    async fn reactivate(&self, found: &Found) -> Result<(), Error> {
        let arns = std::slice::from_ref(&found.container_instance_arn);
        let change =
            ecs::set_status(&self.deps.ecs, &found.cluster, arns, ContainerInstanceStatus::Active).await?;
        if let Some(failure) = change.failures.into_iter().next() {
            return Err(Error::DrainRejected {
                container_instance_arn: found.container_instance_arn.clone(),
                reason: failure.reason,
            });
        }
        Ok(ecs::set_attribute(&self.deps.ecs, &found.cluster, arns, MARKER, None).await?)
    }

    async fn tasks_left(&self, state: &DrainState) -> Result<Vec<TaskLeft>, AwsError> {
        ecs::tasks_left(&self.deps.ecs, &state.cluster, &state.container_instance_arn).await
    }

    async fn heartbeat(&self) -> Result<Completion, Error> {
        let m = self.message;
        let result = self
            .deps
            .autoscaling
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&m.auto_scaling_group_name)
            .lifecycle_hook_name(&m.lifecycle_hook_name)
            .lifecycle_action_token(&m.lifecycle_action_token)
            .instance_id(m.ec2_instance_id.as_str())
            .send()
            .await
            .map_err(aws("RecordLifecycleActionHeartbeat"));
        match result {
            Ok(_) => Ok(Completion::Done),
            Err(e) if no_active_action(&e) => Ok(Completion::NoActiveAction(e.message)),
            Err(e) => Err(e.into()),
        }
    }

    async fn complete(&self, result: LifecycleResult) -> Result<Completion, Error> {
        let m = self.message;
        let (group, hook, token) =
            (&m.auto_scaling_group_name, &m.lifecycle_hook_name, &m.lifecycle_action_token);
        complete_action(self.deps, group, hook, Some(token), m.ec2_instance_id.as_str(), result).await
    }

    async fn continue_on(&self, topic: &str, state: &DrainState) -> Result<(), Error> {
        let body = input::continuation(self.message, state)?;
        self.deps.sns.publish().topic_arn(topic).message(body).send().await.map_err(aws("Publish"))?;
        info!(instance_id = %self.message.ec2_instance_id, hop = state.hop, topic_arn = %topic, "drain continues in a new invocation");
        Ok(())
    }
}

/// Completes a lifecycle action, by its token when known, else by the instance alone (the action of that
/// hook for that instance). "No active lifecycle action" means it is over already.
pub async fn complete_action(
    deps: &Deps,
    group: &str,
    hook: &str,
    token: Option<&str>,
    instance_id: &str,
    result: LifecycleResult,
) -> Result<Completion, Error> {
    let done = deps
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(hook)
        .set_lifecycle_action_token(token.map(str::to_owned))
        .instance_id(instance_id)
        .lifecycle_action_result(result.as_str())
        .send()
        .await
        .map_err(aws("CompleteLifecycleAction"));
    match done {
        Ok(_) => Ok(Completion::Done),
        Err(e) if no_active_action(&e) => Ok(Completion::NoActiveAction(e.message)),
        Err(e) => Err(e.into()),
    }
}
