//! The lifecycle-drainer's AWS calls, for one lifecycle message: `ecs:ListClusters` (with `CLUSTERS`
//! empty), `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`,
//! `ecs:UpdateContainerInstancesState`, `ecs:ListTasks`, `ecs:DescribeTasks`,
//! `autoscaling:DescribeLifecycleHooks`, `autoscaling:RecordLifecycleActionHeartbeat`,
//! `autoscaling:CompleteLifecycleAction`, `sns:Publish` (continuations).

use aws_sdk_ecs::types::ContainerInstanceStatus;
use shared::AwsError;
use shared::ecs::{self, Found, InstanceStatus, Search, TaskLeft};
use shared::error::aws;
use shared::events::LifecycleMessage;
use tracing::{info, warn};

use crate::drain::{Completion, Effects};
use crate::input::{self, DrainState};
use crate::{Deps, Error, LifecycleResult};

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

    /// The hook's heartbeat timeout; `None` if it cannot be read (heartbeats then go out every 15 s).
    async fn heartbeat_timeout(&self) -> Option<u32> {
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
        match result {
            Ok(out) => out
                .lifecycle_hooks()
                .first()
                .and_then(|h| h.heartbeat_timeout())
                .and_then(|t| u32::try_from(t).ok()),
            Err(e) => {
                warn!(error = %e, "cannot read the hook's heartbeat timeout; heartbeats every 15 s");
                None
            }
        }
    }

    /// Sets the instance DRAINING unless it already is (someone may have set it back to ACTIVE between
    /// invocations). `false` if the container instance no longer exists.
    async fn ensure_draining(&self, state: &DrainState) -> Result<bool, Error> {
        let (ecs, cluster) = (&self.deps.ecs, &state.cluster);
        let arns = std::slice::from_ref(&state.container_instance_arn);
        let described: Vec<Found> = match ecs::describe_container_instances(ecs, cluster, arns).await {
            Ok(d) => d,
            Err(e) if e.code_is("ClusterNotFoundException") => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let Some(found) = described.first() else { return Ok(false) };
        if found.status != InstanceStatus::Active {
            return Ok(true);
        }
        let change = ecs::set_status(ecs, cluster, arns, ContainerInstanceStatus::Draining).await?;
        if let Some(failure) = change.failures.into_iter().next() {
            return Err(Error::DrainRejected {
                container_instance_arn: state.container_instance_arn.clone(),
                reason: failure.reason,
            });
        }
        info!(instance_id = %found.ec2_instance_id, cluster = %cluster, "set DRAINING");
        Ok(true)
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
        let done = self
            .deps
            .autoscaling
            .complete_lifecycle_action()
            .auto_scaling_group_name(&m.auto_scaling_group_name)
            .lifecycle_hook_name(&m.lifecycle_hook_name)
            .lifecycle_action_token(&m.lifecycle_action_token)
            .instance_id(m.ec2_instance_id.as_str())
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

    async fn continue_on(&self, topic: &str, state: &DrainState) -> Result<(), Error> {
        let body = input::continuation(self.message, state)?;
        self.deps.sns.publish().topic_arn(topic).message(body).send().await.map_err(aws("Publish"))?;
        info!(instance_id = %self.message.ec2_instance_id, hop = state.hop, topic_arn = %topic, "drain continues in a new invocation");
        Ok(())
    }
}
