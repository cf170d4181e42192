//! Which clusters a function acts on: named in its configuration, or every cluster in the region.

use aws_sdk_ecs::Client;

use crate::config::Env;
use crate::error::{AwsError, aws};

/// Which clusters a function acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterScope {
    /// The clusters named (names or ARNs, as given).
    Listed(Vec<String>),
    /// Every cluster in the region, listed when needed.
    All,
}

impl ClusterScope {
    /// Reads a comma-separated list of names or ARNs; empty means every cluster.
    pub fn from_env(env: &mut Env<'_>, name: &str) -> Self {
        let clusters = env.list(name);
        for c in &clusters {
            if let Err(reason) = check_cluster(c) {
                env.problem(name, Some(c), reason);
            }
        }
        if clusters.is_empty() { ClusterScope::All } else { ClusterScope::Listed(clusters) }
    }

    /// The configured cluster an event's cluster ARN is (matched by name or ARN); `None` when it is out
    /// of scope. With every cluster in scope, the ARN itself.
    pub fn covers(&self, cluster_arn: &str) -> Option<String> {
        let name = cluster_arn.rsplit_once(":cluster/").map_or(cluster_arn, |(_, n)| n);
        match self {
            ClusterScope::All => Some(cluster_arn.to_owned()),
            ClusterScope::Listed(c) => c.iter().find(|c| *c == cluster_arn || *c == name).cloned(),
        }
    }

    /// The clusters to search, in the configured order.
    pub async fn resolve(&self, ecs: &Client) -> Result<Vec<String>, AwsError> {
        match self {
            ClusterScope::Listed(c) => Ok(c.clone()),
            ClusterScope::All => ecs
                .list_clusters()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws("ListClusters")),
        }
    }
}

/// Cluster names are 1-255 letters, digits, `-` and `_`; an ARN is `arn:<partition>:ecs:...:cluster/<name>`.
fn check_cluster(c: &str) -> Result<(), String> {
    let name = if c.starts_with("arn:") {
        let parts: Vec<&str> = c.splitn(6, ':').collect();
        match parts.as_slice() {
            [_, _, "ecs", _, _, resource] => resource
                .strip_prefix("cluster/")
                .ok_or_else(|| "not a cluster ARN (expected ...:cluster/<name>)".to_owned())?,
            _ => return Err("not an ECS cluster ARN".to_owned()),
        }
    } else {
        c
    };
    let ok = (1..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err("not a cluster name (letters, digits, - and _, up to 255)".to_owned()) }
}
