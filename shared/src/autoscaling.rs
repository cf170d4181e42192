//! Auto Scaling pieces the drainers share. API calls: `autoscaling:DescribeAutoScalingInstances`.

use aws_sdk_autoscaling::Client;

use crate::error::{AwsError, aws};

/// An instance's place in its Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InGroup {
    pub group: String,
    /// Its lifecycle state: `InService`, `Terminating:Wait`, `Warmed:Pending:Wait`, ...
    pub state: String,
}

/// Where Auto Scaling has the instance: its group and lifecycle state; `None` when it is in no group.
pub async fn in_group(autoscaling: &Client, instance_id: &str) -> Result<Option<InGroup>, AwsError> {
    let out = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(aws("DescribeAutoScalingInstances"))?;
    Ok(out.auto_scaling_instances().first().map(|i| InGroup {
        group: i.auto_scaling_group_name().unwrap_or_default().to_owned(),
        state: i.lifecycle_state().unwrap_or_default().to_owned(),
    }))
}
