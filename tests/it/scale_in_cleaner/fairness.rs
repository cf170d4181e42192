//! Fewer wasted dollars: one service's deployment blocks only the instances its tasks run on, and every
//! candidate is examined in time, however many of the least used ones cannot go.

use integration_tests::placement::Definition;
use scale_in_cleaner::plan::{Decision, Reason};

use super::{Scene, decision, deps, run, scene, web};

/// `api` runs on the light and the busy instance; `other`, whose deployment hangs, on the batch one.
async fn other_deploying(s: &Scene) {
    s.world.service("web", "api", "web", 9, false).await;
    s.world.emulator.deployments(None);
    s.world.definition(&Definition { family: "other", cpu: 64, memory: 64, ..Default::default() }).await;
    s.world.service("web", "other", "other", 1, false).await;
    s.world.start("web", "other", &s.arns[&s.batch], Some("service:other")).await;
}

#[tokio::test]
async fn a_deployment_blocks_only_the_instances_its_service_runs_on() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    other_deploying(&s).await;

    let outcome = run(&deps(&s.world, &[("MAX_REMOVALS_PER_RUN", "4"), ("DRY_RUN", "true")])).await;

    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate, "{outcome:#?}");
    assert_eq!(decision(&outcome, &s.light), Decision::Drain, "{outcome:#?}");
    let batch = web(&outcome).entry(&s.batch).unwrap();
    assert_eq!((batch.decision, batch.reason), (Decision::Keep, Reason::DeploymentInProgress), "{batch:?}");
    assert!(batch.detail.contains("service other is being deployed"), "{batch:?}");
}
