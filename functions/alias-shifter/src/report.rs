//! What a rollout tells people: the final report and the approval request by SNS (each with a link to both
//! versions' metrics in the CloudWatch console), and the metrics an invocation records.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use shared::metrics::{Metrics, Record};
use shared::notify::Message;

use crate::judge::health::Figures;
use crate::state::{State, Status, StepReport};

/// The state an invocation ended with, and what it was handed (state machine steps), so that a finished
/// shift passed again is counted once.
#[derive(Debug)]
pub struct Invocation<'a> {
    pub state: &'a State,
    /// The status and number of steps of the state the call was handed, if any.
    pub before: Option<(Status, usize)>,
}

impl Record for Invocation<'_> {
    /// `ShiftSteps` (steps judged or switched in this invocation), `ShiftsSucceeded` and `Rollbacks` (EMF),
    /// counted once: when this invocation made the change, not when a finished state is passed again.
    fn record(&self, m: &mut Metrics) {
        let state = self.state;
        let was_final = self.before.is_some_and(|(status, _)| !status.in_progress());
        if state.status == Status::DryRun || was_final {
            return;
        }
        let steps_before = self.before.map_or(0, |(_, n)| n);
        m.count("ShiftSteps", state.steps.len().saturating_sub(steps_before));
        m.count("ShiftsSucceeded", usize::from(state.status == Status::Succeeded));
        m.count("Rollbacks", usize::from(state.status == Status::RolledBack));
    }
}

/// CloudWatch's console encodes a graph in the URL's fragment: `~(...)` lists and objects, `'` before a
/// string, and `*` with the hex code for any character other than letters, digits, `-`, `_` and `.`.
fn console_text(s: &str) -> String {
    let mut out = String::from("'");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "*{b:02x}");
        }
    }
    out
}

/// A CloudWatch console graph of both versions' invocations, errors and p99 duration behind the alias
/// (and the alias's own, which covers the time before the shift and after the switch), over the rollout.
pub fn console_link(state: &State, region: &str) -> String {
    let r = &state.rollout;
    let mut metrics = Vec::new();
    let mut series = |dims: &[(&str, String)], who: &str| {
        for (metric, stat) in [("Invocations", "Sum"), ("Errors", "Sum"), ("Duration", "p99")] {
            let mut m = format!("(~{}~{}", console_text("AWS/Lambda"), console_text(metric));
            for (name, value) in dims {
                let _ = write!(m, "~{}~{}", console_text(name), console_text(value));
            }
            let label = format!("{who} {metric} {stat}");
            let _ = write!(m, "~(stat~{}~label~{}))", console_text(stat), console_text(&label));
            metrics.push(m);
        }
    };
    let alias = [("FunctionName", r.function_short_name().to_owned()), ("Resource", r.resource())];
    for (who, version) in [("new", &state.new_version), ("old", &state.original_version)] {
        let mut dims = alias.to_vec();
        dims.push(("ExecutedVersion", version.clone()));
        series(&dims, &format!("{who} (version {version})"));
    }
    series(&alias, "alias");
    let start = state.started_at - Duration::minutes(15);
    let end = state.finished_at.unwrap_or_else(Utc::now)
        + Duration::seconds(i64::from(state.timeout_seconds) + 300);
    let time = |t: DateTime<Utc>| console_text(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#metricsV2:graph=~(metrics~(~{})~view~'timeSeries~stacked~false~region~{}~period~60~start~{}~end~{})",
        metrics.join("~"),
        console_text(region),
        time(start),
        time(end)
    )
}

fn figures(f: &Figures) -> String {
    let p99 = f.p99.map(|p| format!(", p99 {p:.0} ms")).unwrap_or_default();
    format!("{} invocations, {} errors, {} throttles{p99}", f.invocations, f.errors, f.throttles)
}

fn step_line(s: &StepReport) -> String {
    let mut line = format!("  step {}, weight {}%: {}", s.step, s.weight * 100.0, <&str>::from(s.decision));
    if s.judgements > 1 {
        let _ = write!(line, " (the last of {} judgements)", s.judgements);
    }
    if let (Some(new), Some(old)) = (&s.new, &s.old) {
        let _ = write!(line, " (new: {}; old: {})", figures(new), figures(old));
    }
    if let Some(why) = &s.reason {
        let _ = write!(line, ": {why}");
    }
    line
}

fn summary(state: &State, region: &str) -> String {
    let mut body = format!(
        "{}, version {} -> {}: {}\n",
        state.rollout.resource(),
        state.original_version,
        state.new_version,
        <&str>::from(state.status)
    );
    if let Some(why) = &state.reason {
        let _ = writeln!(body, "Why: {why}");
    }
    for h in &state.hooks {
        let outcome = if h.passed { "passed" } else { "failed" };
        let _ = writeln!(body, "{} hook {}: {outcome}", <&str>::from(h.hook), h.function);
    }
    if !state.steps.is_empty() {
        body.push_str("Steps:\n");
        for s in &state.steps {
            body.push_str(&step_line(s));
            body.push('\n');
        }
    }
    let _ = writeln!(body, "Both versions' metrics: {}", console_link(state, region));
    body
}

/// The report of a rollout that ended (not between state machine steps, not a dry run).
pub fn finished(state: &State, region: &str) -> Option<Message> {
    if !state.is_final() || state.status == Status::DryRun {
        return None;
    }
    let outcome = match state.status {
        Status::Succeeded => "succeeded",
        Status::RolledBack => "rolled back",
        Status::Stopped => "stopped before any traffic",
        _ => "left as found",
    };
    let json = serde_json::to_string_pretty(state).unwrap_or_default();
    Some(Message {
        subject: format!(
            "shipshape alias-shifter: {} -> version {}: {outcome}",
            state.rollout.resource(),
            state.new_version
        ),
        body: format!("{}\nReport:\n{json}\n", summary(state, region)),
    })
}

/// The approval gate's message: what waits, and the exact commands to approve, reject or abort.
pub fn approval_request(state: &State, token: &str, shifter: &str, region: &str) -> Message {
    let r = &state.rollout;
    let what = if state.switched_at.is_some() { "the end of its bake" } else { "its next step" };
    let mut body = format!(
        "The rollout of {} from version {} to version {} is paused before {what}, {}.\n\n",
        r.resource(),
        state.original_version,
        state.new_version,
        state.reason.as_deref().unwrap_or("waiting for approval")
    );
    let _ = write!(
        body,
        "Approve (the rollout goes on):\n  aws stepfunctions send-task-success --region {region} --task-token '{token}' --task-output '{{\"approved-by\": \"<your name>\"}}'\n\n\
         Reject (back to version {old}):\n  aws stepfunctions send-task-failure --region {region} --task-token '{token}' --error Rejected --cause '<why>'\n\n\
         Abort now, without the token (back to version {old} at once):\n  aws lambda invoke --region {region} --function-name {shifter} --cli-binary-format raw-in-base64-out \
         --payload '{{\"mode\": \"abort\", \"function-name\": \"{function}\", \"alias-name\": \"{alias}\", \"reason\": \"<why>\"}}' abort.json\n\n\
         Without an answer within {timeout} s the rollout is rolled back.\n\n",
        old = state.original_version,
        function = r.function_name,
        alias = r.alias_name,
        timeout = r.approval_timeout,
    );
    body.push_str(&summary(state, region));
    Message {
        subject: format!(
            "shipshape alias-shifter: {} -> version {}: approval needed",
            r.resource(),
            state.new_version
        ),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StepDecision;

    fn state(status: Status) -> State {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        State { status, step: 1, finished_at: Some(now), ..crate::state::fixture(now) }
    }

    fn recorded(state: &State, before: Option<(Status, usize)>) -> Metrics {
        let mut m = Metrics::new("f");
        Invocation { state, before }.record(&mut m);
        m
    }

    #[test]
    fn metrics_count_what_this_invocation_did() {
        let rolled_back = state(Status::RolledBack);
        let m = recorded(&rolled_back, Some((Status::Shifting, 0)));
        assert_eq!((m.get("Rollbacks"), m.get("ShiftsSucceeded")), (Some(1.0), Some(0.0)));
        assert!(
            recorded(&rolled_back, Some((Status::RolledBack, 0))).is_empty(),
            "passed again: counted once"
        );
    }

    #[test]
    fn a_dry_run_records_nothing_and_reports_nothing() {
        let dry = state(Status::DryRun);
        assert!(recorded(&dry, None).is_empty());
        assert!(finished(&dry, "us-east-1").is_none());
        assert!(finished(&state(Status::Shifting), "us-east-1").is_none());
    }

    #[test]
    fn the_report_says_how_it_ended_and_links_both_versions() {
        let mut s = state(Status::RolledBack);
        s.reason = Some("p99 duration 400 ms is 4.00x version 1's 100 ms".into());
        let fig =
            |p99| Figures { invocations: 100.0, errors: 0.0, throttles: 0.0, p90: None, p99: Some(p99) };
        s.step = 0;
        let line = StepReport {
            new: Some(fig(400.0)),
            old: Some(fig(100.0)),
            weight: 0.1,
            ..StepReport::of(&s, StepDecision::Unhealthy, s.started_at)
        };
        s.steps.push(line);
        let report = finished(&s, "eu-west-1").unwrap_or_else(|| panic!("no report"));
        assert_eq!(report.subject, "shipshape alias-shifter: api:live -> version 2: rolled back");
        assert!(
            report.body.contains(
                "step 1, weight 10%: unhealthy (new: 100 invocations, 0 errors, 0 throttles, p99 400 ms"
            ),
            "{}",
            report.body
        );
        let link = console_link(&s, "eu-west-1");
        assert!(link.starts_with("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#metricsV2:graph=~(metrics~(~(~'AWS*2fLambda~'Invocations~'FunctionName~'api~'Resource~'api*3alive~'ExecutedVersion~'2~(stat~'Sum"), "{link}");
        assert!(
            link.contains("~'ExecutedVersion~'1~") && link.contains("start~'2027-01-15T07*3a45*3a00Z"),
            "{link}"
        );
    }

    #[test]
    fn the_approval_request_carries_the_token_and_the_commands() {
        let mut s = state(Status::AwaitingApproval);
        s.reason = Some("waiting for approval before the switch".into());
        let m = approval_request(&s, "AAAA+token/=", "stack-AliasShifterFunction-X", "us-east-1");
        assert!(m.subject.ends_with("approval needed"));
        assert!(
            m.body.contains("send-task-success --region us-east-1 --task-token 'AAAA+token/='"),
            "{}",
            m.body
        );
        assert!(m.body.contains("--error Rejected"));
        assert!(m.body.contains(r#""mode": "abort", "function-name": "api", "alias-name": "live""#));
    }
}
