//! Why the plan decided what it did for an instance: a stable kebab-case name for machines and
//! dashboards (`reason`), and a sentence with the numbers for people (`detail`).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Reason {
    // Why an instance goes (terminate, drain, reap) or waits.
    /// Runs nothing but daemon tasks.
    Empty,
    /// Its tasks fit on the instances that stay, and the spare left meets the thresholds.
    UnderUsed,
    /// Drained by this function earlier, now empty.
    DrainedAndEmpty,
    /// Drained by this function earlier, tasks still leaving.
    TasksLeaving,

    // Why a drain of ours is undone (reactivate).
    /// The cluster needs it again: spare under the thresholds, or its tasks fit nowhere else.
    CapacityNeeded,
    /// Its tasks have not moved for `STALLED_DRAIN_MINUTES`: their services cannot place them.
    StalledDrain,
    /// Drained and empty, but a service that had tasks on it runs short of its desired count, or could not
    /// place a task since the drain began and has started none since: ECS disagreed with the plan.
    UnplacedReplacements,

    // Never touched (skip).
    AgentDisconnected,
    /// Its Auto Scaling lifecycle state is not `InService`.
    NotInService,
    /// DRAINING, but not by this function.
    DrainedByOthers,
    /// ECS status other than ACTIVE or DRAINING.
    EcsStatus,
    NoGroup,
    GroupNotFound,
    /// Its group is not in `AUTO_SCALING_GROUPS`.
    GroupNotAllowed,
    /// Its group is scaled by an ECS capacity provider with managed scaling.
    CapacityProvider,
    /// Auto Scaling scale-in protection.
    ScaleInProtected,
    /// A task on it has ECS task scale-in protection.
    TaskProtected,
    /// Registered more recently than `MIN_INSTANCE_AGE_MINUTES`.
    TooYoung,
    RegistrationUnknown,

    // Kept (keep): run-wide and group-wide rules.
    /// Outside `SCALE_IN_WINDOWS`.
    OutsideWindow,
    /// A service of the cluster is being deployed.
    DeploymentInProgress,
    /// Its group launched instances less than `SCALE_IN_COOLDOWN_MINUTES` ago.
    Cooldown,
    /// A drain of it stalled recently.
    RecentlyStalled,
    /// A service with tasks on it runs fewer tasks than its desired count: ECS is still placing them.
    ServiceShort,
    /// A service with tasks on it has a deployment configuration that lets ECS neither start a replacement
    /// before stopping the task nor stop the task first: the drain would never end.
    DeploymentConfiguration,
    /// `SCALE_IN_BUDGET_PERCENT` of its group is already leaving.
    Budget,
    /// `MAX_REMOVALS_PER_RUN` reached.
    MaxRemovals,
    /// Its group is at its minimum size.
    MinSize,
    /// The cluster is already short of spare capacity.
    ClusterShort,

    // Kept: where its tasks could go.
    /// The spare left would fall under `RESERVE_CPU_PERCENT` / `RESERVE_MEMORY_PERCENT`.
    Reserve,
    /// No instance would be left with room for the largest task.
    LargestTask,
    /// Some task has no instance with enough CPU and memory.
    NoRoom,
    /// Some task's capacity provider strategy reaches no instance with room (ECS places a service's task
    /// only on instances of the provider its strategy picks, and does not fall back to another).
    CapacityProviderStrategy,
    /// Some task needs GPUs no other instance has free.
    Gpu,
    /// Some task needs a static host port taken everywhere else.
    PortConflict,
    /// Some `awsvpc` task needs a network interface no other instance has free (or is known to have).
    Eni,
    /// Some `awsvpc` task has no instance with room in its zone, the one its service's subnets are known
    /// to cover.
    Subnet,
    /// Some task's definition requires an attribute no instance with room has (`requiresAttributes`).
    RequiredAttribute,
    /// Some task's `memberOf` constraint excludes every instance with room.
    MemberOf,
    /// Some task's service already runs on every instance with room (`distinctInstance`).
    DistinctInstance,
    /// Moving some task would unbalance its service across availability zones.
    AzSpread,
    /// A placement constraint this function cannot evaluate: never a guess.
    ConstraintUnknown,
    /// Its tasks were not read this run; a later run examines it.
    NotExamined,
    /// ECS listed a task on it that it could not describe yet (eventual consistency); a later run
    /// examines it.
    TasksUndescribed,
}
