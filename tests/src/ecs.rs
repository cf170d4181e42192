//! ECS fixtures: clusters, container instances, tasks.

use serde_json::json;

use crate::{REGION, World};

impl World {
    pub async fn cluster(&self, name: &str) -> String {
        let out = self.ecs.create_cluster().cluster_name(name).send().await.expect("CreateCluster");
        out.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default().to_owned()
    }

    /// Registers an EC2 instance with a cluster, as the ECS agent does at boot; the container instance ARN.
    pub async fn register(&self, cluster: &str, instance_id: &str) -> String {
        let document =
            json!({"instanceId": instance_id, "region": REGION, "availabilityZone": format!("{REGION}a")});
        let out = self
            .ecs
            .register_container_instance()
            .cluster(cluster)
            .instance_identity_document(document.to_string())
            .send()
            .await
            .expect("RegisterContainerInstance");
        out.container_instance().and_then(|c| c.container_instance_arn()).unwrap_or_default().to_owned()
    }

    /// Starts `count` copies of a small standalone task on a container instance; their ARNs.
    pub async fn start_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
    ) -> Vec<String> {
        self.start_tasks_in(cluster, container_instance_arn, count, None).await
    }

    /// Starts `count` tasks of service `service` (group `service:<name>`, as ECS sets for service tasks):
    /// the emulator stops these when their instance drains.
    pub async fn start_service_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        service: &str,
        count: usize,
    ) -> Vec<String> {
        self.start_tasks_in(cluster, container_instance_arn, count, Some(format!("service:{service}"))).await
    }

    async fn start_tasks_in(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
        group: Option<String>,
    ) -> Vec<String> {
        self.start_sized_tasks(cluster, container_instance_arn, count, group, (256, 512)).await
    }

    /// Starts `count` tasks of `cpu` units and `memory` MiB (container-level sizes, as most EC2 task
    /// definitions have), in task group `group` (`service:<name>` for a service's tasks).
    pub async fn start_sized_tasks(
        &self,
        cluster: &str,
        container_instance_arn: &str,
        count: usize,
        group: Option<String>,
        (cpu, memory): (i32, i32),
    ) -> Vec<String> {
        use aws_sdk_ecs::types::ContainerDefinition;
        let family =
            if (cpu, memory) == (256, 512) { "web".to_owned() } else { format!("task-{cpu}-{memory}") };
        self.ecs
            .register_task_definition()
            .family(&family)
            .container_definitions(
                ContainerDefinition::builder().name("app").image("nginx").cpu(cpu).memory(memory).build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let mut arns = Vec::new();
        for _ in 0..count {
            let out = self
                .ecs
                .start_task()
                .cluster(cluster)
                .task_definition(&family)
                .container_instances(container_instance_arn)
                .set_group(group.clone())
                .send()
                .await
                .expect("StartTask");
            arns.extend(out.tasks().iter().filter_map(|t| t.task_arn().map(str::to_owned)));
        }
        arns
    }

    /// A container instance's attribute value; `None` when it does not have the attribute.
    pub async fn attribute(&self, cluster: &str, container_instance_arn: &str, name: &str) -> Option<String> {
        let out = self
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .send()
            .await
            .expect("DescribeContainerInstances");
        let ci = out.container_instances().first()?;
        ci.attributes().iter().find(|a| a.name() == name).map(|a| a.value().unwrap_or_default().to_owned())
    }

    /// A container instance's status as ECS reports it now.
    pub async fn status(&self, cluster: &str, container_instance_arn: &str) -> String {
        let out = self
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(container_instance_arn)
            .send()
            .await
            .expect("DescribeContainerInstances");
        out.container_instances()[0].status().unwrap_or_default().to_owned()
    }
}
