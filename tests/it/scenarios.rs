//! What the drain side must get right: the scenarios of AWS's documentation that once broke a promise
//! (a task stopped un-drained, an instance left DRAINING for good, input trusted that should not be), each
//! played against the stack as deployed ([`crate::stack`]) and judged by AWS's state afterwards.

mod lifecycle;
mod spot;

use std::time::Duration;

use integration_tests::World;

use crate::stack::{CLUSTER, GROUP, HOOK, Stack};

/// How the group's terminating hook is set up.
pub enum Hook {
    /// Ours: named `drain`, notifying the stack's lifecycle topic; this heartbeat timeout, default result.
    Ours(i32, &'static str),
    /// Ours, but with no notification target: Auto Scaling sends its events to EventBridge only.
    OursByEventBridge(i32),
    /// Another tool's: its own name and topic, this heartbeat timeout, CONTINUE by default.
    Another(i32),
    None,
}

pub struct Scene {
    pub stack: Stack,
    pub instances: Vec<String>,
    pub arns: Vec<String>,
}

/// Group and cluster `web` of `count` instances, each registered; `hook` on the group; service tasks stop
/// `stop_after_ms` after their instance starts draining, one state every `step_ms`. Hooks may be as short
/// as 1 s here. The test notification is delivered and ignored.
pub async fn scene(count: i32, hook: Hook, (stop_after_ms, step_ms): (u64, u64)) -> Scene {
    scene_with(count, hook, (stop_after_ms, step_ms), &[], &[]).await
}

pub async fn scene_with(
    count: i32,
    hook: Hook,
    (stop_after_ms, step_ms): (u64, u64),
    spot: &[(&str, &str)],
    lifecycle: &[(&str, &str)],
) -> Scene {
    let world = World::new().await;
    world.emulator.min_heartbeat_timeout(1);
    world.emulator.draining(stop_after_ms, step_ms);
    let hooks = world.topic("hooks").await;
    let instances = world.group(GROUP, count).await;
    world.cluster(CLUSTER).await;
    let mut arns = Vec::new();
    for id in &instances {
        arns.push(world.register(CLUSTER, id).await);
    }
    let put = |name: &str, timeout: i32, result: &str, target: Option<&str>| {
        world
            .autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(GROUP)
            .lifecycle_hook_name(name)
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(timeout)
            .default_result(result)
            .set_notification_target_arn(target.map(str::to_owned))
            .set_role_arn(target.map(|_| "arn:aws:iam::123456789012:role/hooks".to_owned()))
            .send()
    };
    match hook {
        Hook::Ours(timeout, result) => {
            put(HOOK, timeout, result, Some(&hooks.arn)).await.expect("PutLifecycleHook");
        }
        Hook::OursByEventBridge(timeout) => {
            put(HOOK, timeout, "ABANDON", None).await.expect("PutLifecycleHook");
        }
        Hook::Another(timeout) => {
            let theirs = world.topic("another-tool").await;
            put("another-tool-hook", timeout, "CONTINUE", Some(&theirs.arn)).await.expect("PutLifecycleHook");
        }
        Hook::None => {}
    }
    let mut stack = Stack::new(world, hooks, spot, lifecycle);
    stack.deliver().await;
    Scene { stack, instances, arns }
}

impl Scene {
    pub fn world(&self) -> &World {
        &self.stack.world
    }

    /// Two service tasks on instance `i`, and room for their replacements on the others.
    pub async fn busy(&self, i: usize) -> Vec<String> {
        self.world().start_service_tasks(CLUSTER, &self.arns[i], "api", 2).await
    }

    /// Whether instance `i` is terminated: its termination record.
    pub fn terminated(&self, i: usize) -> Option<serde_json::Value> {
        crate::stack::termination(self.world(), &self.instances[i])
    }

    /// Runs the stack until instance `i` is terminated or `limit` passes; its termination record.
    pub async fn until_terminated(&mut self, i: usize, limit: Duration) -> Option<serde_json::Value> {
        let id = self.instances[i].clone();
        self.stack.run_until(limit, async |w| crate::stack::termination(w, &id).is_some()).await;
        self.terminated(i)
    }
}

/// The tasks a termination took down that were not STOPPED.
pub fn not_stopped(termination: &serde_json::Value) -> usize {
    termination["tasks_not_stopped"].as_array().map_or(0, Vec::len)
}
