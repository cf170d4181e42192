//! The invocation: an EventBridge scheduled event, or a manual payload (`{}` or `{"dry-run": true}`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;
use shared::events::{self, InvalidEvent};

/// What a run is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Plan only, whatever `DRY_RUN` says.
    pub dry_run: bool,
}

/// A manual invocation's payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Manual {
    #[serde(default)]
    dry_run: bool,
}

pub fn parse(payload: &Value) -> Result<Request, InvalidEvent> {
    let obj = events::object(payload).map_err(|_| {
        InvalidEvent::new("(payload)", "expected a JSON object: a scheduled event, {} or {\"dry-run\": true}")
    })?;
    if !obj.contains_key("source") {
        let manual: Manual = events::from_value(payload, "")?;
        return Ok(Request { dry_run: manual.dry_run });
    }
    // A schedule's `detail` is `{}` and unused: not required.
    let event: EventBridgeEvent<Option<Value>> = events::from_value(payload, "")?;
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.events" | "aws.scheduler", "Scheduled Event") => Ok(Request { dry_run: false }),
        ("aws.events" | "aws.scheduler", _) => {
            Err(InvalidEvent::new("detail-type", "expected \"Scheduled Event\""))
        }
        (s, _) => Err(InvalidEvent::new(
            "source",
            format!("is {s:?}; this function runs on a schedule (aws.events) or by hand"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scheduled_and_manual_runs() {
        let scheduled = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(parse(&scheduled), Ok(Request { dry_run: false }));
        assert_eq!(parse(&json!({})), Ok(Request { dry_run: false }));
        assert_eq!(parse(&json!({"dry-run": true})), Ok(Request { dry_run: true }));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let field = |v: Value| parse(&v).err().map(|e| e.field).unwrap_or_default();
        assert_eq!(field(json!({"dry-run": "yes"})), "dry-run");
        assert_eq!(field(json!({"dryrun": true})), "dryrun");
        assert_eq!(field(json!({"source": "aws.ec2", "detail-type": "Scheduled Event"})), "source");
        assert_eq!(field(json!({"source": "aws.events", "detail-type": "Other"})), "detail-type");
        assert_eq!(field(json!([1])), "(payload)");
    }
}
