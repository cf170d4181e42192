//! ECS fixtures for task placement: instances with attributes and GPUs, task definitions with ports, GPUs
//! and constraints, services with placement rules, capacity provider strategies and deployment
//! configurations, capacity providers, task protection, deployments.

use aws_sdk_ecs::types::{
    Attribute, AutoScalingGroupProvider, CapacityProviderStrategyItem, ContainerDefinition,
    DeploymentConfiguration, PlacementConstraint, PlacementConstraintType, PortMapping, Resource,
    ResourceRequirement, ResourceType, TaskDefinitionPlacementConstraint,
    TaskDefinitionPlacementConstraintType, TransportProtocol,
};
use serde_json::json;

use crate::emulator::Emulator;
use crate::{REGION, World};

/// A task definition for [`World::definition`]: container-level CPU and memory, and what placement needs.
#[derive(Debug, Clone, Default)]
pub struct Definition<'a> {
    pub family: &'a str,
    pub cpu: i32,
    pub memory: i32,
    /// Static host ports, `(port, "tcp" | "udp")`, in bridge mode.
    pub host_ports: &'a [(i32, &'a str)],
    pub gpus: u32,
    /// `memberOf` expressions.
    pub member_of: &'a [&'a str],
}

/// A replica service for [`World::service_with`].
#[derive(Debug, Clone, Default)]
pub struct Service<'a> {
    pub name: &'a str,
    pub family: &'a str,
    pub desired: i32,
    /// `(capacity provider, base, weight)`; empty: the cluster's default strategy, if it has one.
    pub strategy: &'a [(&'a str, i32, i32)],
    /// `(minimumHealthyPercent, maximumPercent)`; `None`: ECS's defaults for a replica service (100, 200).
    pub deployment: Option<(i32, i32)>,
}

impl World {
    /// A capacity provider without managed scaling for each of `groups`, named `cp-<group>`, on `cluster`,
    /// with `default` (a provider's name) as the cluster's default strategy. Register the groups'
    /// instances afterwards: ECS associates an instance with its group's provider when it registers.
    pub async fn capacity_providers(&self, cluster: &str, groups: &[&str], default: Option<&str>) {
        for group in groups {
            let found = self
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(*group)
                .send()
                .await
                .expect("DescribeAutoScalingGroups");
            let arn = found.auto_scaling_groups()[0].auto_scaling_group_arn().unwrap_or_default().to_owned();
            self.ecs
                .create_capacity_provider()
                .name(format!("cp-{group}"))
                .auto_scaling_group_provider(
                    AutoScalingGroupProvider::builder()
                        .auto_scaling_group_arn(arn)
                        .build()
                        .expect("provider"),
                )
                .send()
                .await
                .expect("CreateCapacityProvider");
        }
        let strategy = default.map(|d| {
            vec![
                CapacityProviderStrategyItem::builder().capacity_provider(d).weight(1).build().expect("item"),
            ]
        });
        self.ecs
            .put_cluster_capacity_providers()
            .cluster(cluster)
            .set_capacity_providers(Some(groups.iter().map(|g| format!("cp-{g}")).collect()))
            .set_default_capacity_provider_strategy(Some(strategy.unwrap_or_default()))
            .send()
            .await
            .expect("PutClusterCapacityProviders");
    }

    /// A replica service with a capacity provider strategy and a deployment configuration.
    pub async fn service_with(&self, cluster: &str, s: &Service<'_>) {
        let mut call = self
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(s.name)
            .task_definition(s.family)
            .desired_count(s.desired);
        for (provider, base, weight) in s.strategy {
            call = call.capacity_provider_strategy(
                CapacityProviderStrategyItem::builder()
                    .capacity_provider(*provider)
                    .base(*base)
                    .weight(*weight)
                    .build()
                    .expect("strategy item"),
            );
        }
        if let Some((min, max)) = s.deployment {
            call = call.deployment_configuration(
                DeploymentConfiguration::builder().minimum_healthy_percent(min).maximum_percent(max).build(),
            );
        }
        call.send().await.expect("CreateService");
    }

    /// Registers an EC2 instance with a cluster as the ECS agent does, with `attributes` (such as
    /// `ecs.instance-type`) and GPU ids in its total resources; the container instance ARN.
    pub async fn register_with(
        &self,
        cluster: &str,
        instance_id: &str,
        attributes: &[(&str, &str)],
        gpus: &[&str],
    ) -> String {
        let document =
            json!({"instanceId": instance_id, "region": REGION, "availabilityZone": format!("{REGION}a")});
        let mut call = self
            .ecs
            .register_container_instance()
            .cluster(cluster)
            .instance_identity_document(document.to_string());
        for (name, value) in attributes {
            call =
                call.attributes(Attribute::builder().name(*name).value(*value).build().expect("attribute"));
        }
        if !gpus.is_empty() {
            let ids = gpus.iter().map(|g| (*g).to_owned()).collect();
            call = call.total_resources(
                Resource::builder().name("GPU").r#type("STRINGSET").set_string_set_value(Some(ids)).build(),
            );
        }
        let out = call.send().await.expect("RegisterContainerInstance");
        out.container_instance().and_then(|c| c.container_instance_arn()).unwrap_or_default().to_owned()
    }

    pub async fn definition(&self, d: &Definition<'_>) {
        let mut container =
            ContainerDefinition::builder().name("app").image("nginx").cpu(d.cpu).memory(d.memory);
        for (port, protocol) in d.host_ports {
            let protocol = if *protocol == "udp" { TransportProtocol::Udp } else { TransportProtocol::Tcp };
            container = container.port_mappings(
                PortMapping::builder().container_port(*port).host_port(*port).protocol(protocol).build(),
            );
        }
        if d.gpus > 0 {
            container = container.resource_requirements(
                ResourceRequirement::builder()
                    .r#type(ResourceType::Gpu)
                    .value(d.gpus.to_string())
                    .build()
                    .expect("GPU"),
            );
        }
        let mut call =
            self.ecs.register_task_definition().family(d.family).container_definitions(container.build());
        for expression in d.member_of {
            call = call.placement_constraints(
                TaskDefinitionPlacementConstraint::builder()
                    .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                    .expression(*expression)
                    .build(),
            );
        }
        call.send().await.expect("RegisterTaskDefinition");
    }

    /// A replica service `name` of `family`, with `distinctInstance` if asked.
    pub async fn service(
        &self,
        cluster: &str,
        name: &str,
        family: &str,
        desired: i32,
        distinct_instance: bool,
    ) {
        let mut call = self
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(name)
            .task_definition(family)
            .desired_count(desired);
        if distinct_instance {
            call = call.placement_constraints(
                PlacementConstraint::builder().r#type(PlacementConstraintType::DistinctInstance).build(),
            );
        }
        call.send().await.expect("CreateService");
    }

    /// Starts one task of `family` on a container instance, in `group` (`service:<name>`, or standalone);
    /// its ARN.
    pub async fn start(
        &self,
        cluster: &str,
        family: &str,
        container_instance_arn: &str,
        group: Option<&str>,
    ) -> String {
        let out = self
            .ecs
            .start_task()
            .cluster(cluster)
            .task_definition(family)
            .container_instances(container_instance_arn)
            .set_group(group.map(str::to_owned))
            .send()
            .await
            .expect("StartTask");
        out.tasks()[0].task_arn().unwrap_or_default().to_owned()
    }

    pub async fn stop(&self, cluster: &str, task_arn: &str) {
        self.ecs.stop_task().cluster(cluster).task(task_arn).send().await.expect("StopTask");
    }

    /// Turns on scale-in protection for a service's task (for an hour).
    pub async fn protect(&self, cluster: &str, task_arn: &str) {
        self.ecs
            .update_task_protection()
            .cluster(cluster)
            .tasks(task_arn)
            .protection_enabled(true)
            .expires_in_minutes(60)
            .send()
            .await
            .expect("UpdateTaskProtection");
    }

    /// The container instance each task of the service with desired status RUNNING is on.
    pub async fn placement_of(&self, cluster: &str, service: &str) -> Vec<(String, String)> {
        let arns =
            self.ecs.list_tasks().cluster(cluster).service_name(service).send().await.expect("ListTasks");
        if arns.task_arns().is_empty() {
            return Vec::new();
        }
        let tasks = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns.task_arns().to_vec()))
            .send()
            .await
            .expect("DescribeTasks");
        tasks
            .tasks()
            .iter()
            .map(|t| {
                (
                    t.task_arn().unwrap_or_default().to_owned(),
                    t.container_instance_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Emulator {
    /// How long service deployments started from now on stay IN_PROGRESS; `None`: they never complete.
    pub fn deployments(&self, rollout_ms: Option<u64>) {
        self.control("POST", "/ecs/deployments", Some(json!({ "rollout_ms": rollout_ms })));
    }
}
