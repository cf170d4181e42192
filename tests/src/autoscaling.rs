//! Auto Scaling fixtures: groups, lifecycle hooks, terminations.

use crate::sns::Topic;
use crate::{REGION, World};

/// moto accepts any well-formed AMI id.
pub const AMI: &str = "ami-12c6146b";

impl World {
    /// An Auto Scaling group `name` of `count` running instances; their EC2 ids.
    pub async fn group(&self, name: &str, count: i32) -> Vec<String> {
        let lc = format!("{name}-lc");
        self.autoscaling
            .create_launch_configuration()
            .launch_configuration_name(&lc)
            .image_id(AMI)
            .instance_type("m5.large")
            .send()
            .await
            .expect("CreateLaunchConfiguration");
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_configuration_name(&lc)
            .min_size(0)
            .max_size(count.max(1) * 2)
            .desired_capacity(count)
            .availability_zones(format!("{REGION}a"))
            .send()
            .await
            .expect("CreateAutoScalingGroup");
        let groups = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        groups.auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }

    /// An Auto Scaling group's (min size, desired capacity, instances in it).
    pub async fn group_size(&self, name: &str) -> (i32, i32, usize) {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        let g = &out.auto_scaling_groups()[0];
        (g.min_size().unwrap_or(0), g.desired_capacity().unwrap_or(0), g.instances().len())
    }

    pub async fn set_min_size(&self, name: &str, min: i32) {
        self.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(min)
            .send()
            .await
            .expect("UpdateAutoScalingGroup");
    }

    /// A terminating lifecycle hook `drain` on `group` that notifies `topic`.
    pub async fn hook(&self, group: &str, topic: &Topic, heartbeat_timeout: i32, default_result: &str) {
        self.autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name("drain")
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(heartbeat_timeout)
            .default_result(default_result)
            .notification_target_arn(&topic.arn)
            .role_arn("arn:aws:iam::123456789012:role/hooks")
            .send()
            .await
            .expect("PutLifecycleHook");
    }

    /// The group's lifecycle state for an instance; `None` once it left the group.
    pub async fn lifecycle_state(&self, instance_id: &str) -> Option<String> {
        let out = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .expect("DescribeAutoScalingInstances");
        out.auto_scaling_instances().first().and_then(|i| i.lifecycle_state().map(str::to_owned))
    }

    pub async fn terminate(&self, instance_id: &str) {
        self.autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .expect("TerminateInstanceInAutoScalingGroup");
    }

    /// A launching lifecycle hook `name` on `group` that notifies `topic`.
    pub async fn launch_hook(&self, group: &str, name: &str, topic: &Topic, heartbeat_timeout: i32) {
        self.autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(name)
            .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
            .heartbeat_timeout(heartbeat_timeout)
            .default_result("CONTINUE")
            .notification_target_arn(&topic.arn)
            .role_arn("arn:aws:iam::123456789012:role/hooks")
            .send()
            .await
            .expect("PutLifecycleHook");
    }

    pub async fn set_desired(&self, group: &str, desired: i32) {
        self.autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(desired)
            .send()
            .await
            .expect("SetDesiredCapacity");
    }

    /// A warm pool of stopped instances on `group` that takes instances back on scale-in.
    pub async fn warm_pool(&self, group: &str, min_size: i32) {
        use aws_sdk_autoscaling::types::{InstanceReusePolicy, WarmPoolState};
        self.autoscaling
            .put_warm_pool()
            .auto_scaling_group_name(group)
            .min_size(min_size)
            .pool_state(WarmPoolState::Stopped)
            .instance_reuse_policy(InstanceReusePolicy::builder().reuse_on_scale_in(true).build())
            .send()
            .await
            .expect("PutWarmPool");
    }
}
