use std::collections::HashMap;

use super::*;
use crate::config::Env;

#[test]
fn only_stopped_tasks_are_gone() {
    for status in
        ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"]
    {
        assert!(occupies_instance(Some(status)), "{status}");
    }
    assert!(occupies_instance(None));
    assert!(!occupies_instance(Some("STOPPED")));
}

#[test]
fn instance_statuses_read_as_ecs_writes_them() {
    assert_eq!(InstanceStatus::of(Some("ACTIVE")), InstanceStatus::Active);
    assert_eq!(InstanceStatus::of(Some("REGISTRATION_FAILED")), InstanceStatus::RegistrationFailed);
    assert_eq!(InstanceStatus::of(Some("SOMETHING_NEW")), InstanceStatus::Unknown);
    assert_eq!(InstanceStatus::of(None), InstanceStatus::Unknown);
    assert_eq!(InstanceStatus::Draining.to_string(), "DRAINING");
    assert_eq!(serde_json::to_value(InstanceStatus::RegistrationFailed).unwrap(), "REGISTRATION_FAILED");
}

#[test]
fn cluster_scope_from_env() {
    let map = HashMap::from([("CLUSTERS", "web, arn:aws:ecs:us-east-1:123456789012:cluster/batch_2")]);
    let mut env = Env::from_map(&map);
    let scope = ClusterScope::from_env(&mut env, "CLUSTERS");
    assert_eq!(env.finish(), Ok(()));
    assert_eq!(
        scope,
        ClusterScope::Listed(vec!["web".into(), "arn:aws:ecs:us-east-1:123456789012:cluster/batch_2".into()])
    );

    let map = HashMap::new();
    let mut env = Env::from_map(&map);
    assert_eq!(ClusterScope::from_env(&mut env, "CLUSTERS"), ClusterScope::All);
}

#[test]
fn bad_clusters_are_named() {
    let map =
        HashMap::from([("CLUSTERS", "web,my cluster,arn:aws:sns:us-east-1:1:t,arn:aws:ecs:r:1:service/x")]);
    let mut env = Env::from_map(&map);
    ClusterScope::from_env(&mut env, "CLUSTERS");
    let err = env.finish().unwrap_err();
    let values: Vec<_> = err.problems.iter().map(|p| p.value.clone().unwrap_or_default()).collect();
    assert_eq!(values, ["my cluster", "arn:aws:sns:us-east-1:1:t", "arn:aws:ecs:r:1:service/x"]);
    assert!(err.problems.iter().all(|p| p.variable == "CLUSTERS"));
}

#[test]
fn an_events_cluster_is_in_scope_by_name_or_arn() {
    let arn = "arn:aws:ecs:us-east-1:123456789012:cluster/web";
    let listed = |c: &[&str]| ClusterScope::Listed(c.iter().map(|s| s.to_string()).collect());
    assert_eq!(listed(&["batch", "web"]).covers(arn).as_deref(), Some("web"));
    assert_eq!(listed(&[arn]).covers(arn).as_deref(), Some(arn));
    assert_eq!(listed(&["batch"]).covers(arn), None);
    assert_eq!(listed(&["we"]).covers(arn), None);
    assert_eq!(ClusterScope::All.covers(arn).as_deref(), Some(arn));
}
