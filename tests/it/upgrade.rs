//! An upgrade with drains in flight: what the previous release (0.1.0) and the unreleased drainers before
//! the reconcile left behind, taken over by this code. 0.1.0's lifecycle-drainer set the instance DRAINING
//! without a marker and published continuations (the lifecycle message plus its state) to the topic; the
//! spot-drainer marked a stop drain `shipshape.spot-drainer.drained-for` = `stop@<time>`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::scenarios::{Hook, not_stopped, scene};
use crate::stack::{CLUSTER, described, finished_actions, now_iso, state_change};

#[tokio::test]
async fn drains_begun_by_the_previous_release_carry_on() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::Ours(6, "ABANDON"), (3000, 300)).await;
    // Instance 0: 0.1.0 was draining it for its lifecycle action: DRAINING, no marker, a continuation on
    // the topic.
    s.busy(0).await;
    s.world().terminate(&s.instances[0]).await;
    let mut messages = s.world().sns_events(&s.stack.hooks).await;
    assert_eq!(messages.len(), 1);
    drain_by_hand(&s, 0).await;
    let mut continuation = messages.remove(0);
    let mut body: Value =
        serde_json::from_str(continuation["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    body["ShipshapeDrain"] = json!({"started_at": now_iso(), "deadline": now_iso(), "hop": 1, "cluster": CLUSTER,
        "container_instance_arn": s.arns[0], "heartbeat_timeout": 6, "last_heartbeat_at": now_iso()});
    continuation["Records"][0]["Sns"]["Message"] = json!(body.to_string());
    // Instance 1: the spot-drainer drained it for a Spot stop, with the marker it wrote then; the instance
    // has run again since.
    drain_by_hand(&s, 1).await;
    put(&s, 1, "shipshape.spot-drainer.drained-for", &format!("stop@{}", now_iso())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let id = s.instances[1].clone();
    world_restart(&s, &id).await;

    // The new code: the continuation is delivered, the schedules run.
    let _ = s.stack.lifecycle(continuation).await;
    let _ = s.stack.spot(state_change(&id, "running", &now_iso())).await;
    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("terminated");
    let transcript = s.stack.transcript();
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{transcript}");
    assert_eq!(
        finished_actions(s.world(), &s.instances[0]),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
    let (status, attributes) = described(s.world(), &s.arns[1]).await;
    assert_eq!(
        (status.as_str(), attributes),
        ("ACTIVE", vec![]),
        "the old marker read as ours, and removed\n{transcript}"
    );
}

async fn drain_by_hand(s: &crate::scenarios::Scene, i: usize) {
    s.world()
        .ecs
        .update_container_instances_state()
        .cluster(CLUSTER)
        .container_instances(&s.arns[i])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("UpdateContainerInstancesState");
}

async fn put(s: &crate::scenarios::Scene, i: usize, name: &str, value: &str) {
    let attribute = aws_sdk_ecs::types::Attribute::builder()
        .name(name)
        .value(value)
        .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
        .target_id(&s.arns[i])
        .build()
        .unwrap();
    s.world()
        .ecs
        .put_attributes()
        .cluster(CLUSTER)
        .attributes(attribute)
        .send()
        .await
        .expect("PutAttributes");
}

async fn world_restart(s: &crate::scenarios::Scene, id: &str) {
    s.world().ec2.stop_instances().instance_ids(id).send().await.expect("StopInstances");
    s.world().ec2.start_instances().instance_ids(id).send().await.expect("StartInstances");
}
