//! The sample events in `events/`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A sample event from `events/`.
pub fn sample_event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample spot event with its instance id replaced by `instance_id`.
pub fn spot_event(name: &str, instance_id: &str) -> Value {
    let mut event = sample_event(name);
    event["detail"]["instance-id"] = json!(instance_id);
    // Sent now, as EC2 would send it for this instance (the sample's own time is long past).
    event["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    event
}
