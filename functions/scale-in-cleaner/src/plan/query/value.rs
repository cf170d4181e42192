//! Values the cluster query language compares by kind, as the page writes them: counts, versions
//! (`agentVersion`) and times (`registeredAt`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::{Subject, Value};

/// How an argument of a subject compared by value reads.
type Reader = fn(&str) -> Result<Value, String>;

/// How an argument of a subject compared by value reads; `None` for the others.
pub(super) fn ordered(subject: &Subject) -> Option<Reader> {
    match subject {
        Subject::RunningTasksCount => {
            Some(|v| v.parse().map(Value::Count).map_err(|_| format!("{v:?} is not a count")))
        }
        Subject::AgentVersion => Some(version),
        Subject::RegisteredAt => Some(time),
        _ => None,
    }
}

/// `1.14.5`, padded with zeros so that 1.0 == 1.0.0.
pub fn version(text: &str) -> Result<Value, String> {
    let mut parts = text
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().map_err(|_| format!("{text:?} is not a version such as 1.14.5")))
        .collect::<Result<Vec<_>, _>>()?;
    parts.resize(parts.len().max(4), 0);
    Ok(Value::Version(parts))
}

/// The page's date formats: 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 and
/// 2018-06-18 (UTC when no offset is given).
fn time(text: &str) -> Result<Value, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Value::Time(t.with_timezone(&Utc)));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(Value::Time(t.and_utc()));
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Ok(Value::Time(d.and_time(chrono::NaiveTime::MIN).and_utc())),
        Err(_) => Err(format!("{text:?} is not one of the documented date formats")),
    }
}
