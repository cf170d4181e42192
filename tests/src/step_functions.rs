//! A Step Functions definition followed the way Step Functions follows it, for the state types and fields
//! the alias-shifter's state machine uses:
//!
//! - `Task` with a function ARN as `Resource` (its `Parameters` are the payload), or the callback pattern
//!   `arn:aws:states:::lambda:invoke.waitForTaskToken` (`Parameters.FunctionName` and `Parameters.Payload`;
//!   the task ends when someone calls `SendTaskSuccess` or `SendTaskFailure` with the token, or fails with
//!   `States.Timeout` after `TimeoutSeconds` / `TimeoutSecondsPath`); `Parameters` built from the state's
//!   input (keys ending in `.$`, at any depth) and from the context object (`$$.Task.Token`); the result at
//!   `ResultPath` (or the whole output); errors matched against `Catch` with the error recorded at its
//!   `ResultPath`;
//! - `Choice` on `StringEquals`, `Wait` with `SecondsPath` (recorded, or slept for real), `Succeed`, `Fail`
//!   (with `CausePath`).
//!
//! Reference paths: `$`, `$.a`, `$.a.b`, `$['a-b']`, `$.a['b-c']`. The Task's work is the caller's.

use serde_json::{Value, json};

/// How an execution ended.
#[derive(Debug)]
pub struct Execution {
    /// The terminal state reached (`Done`, `RolledBack`, ...) or `failed:<error>` for an uncaught one.
    pub end: String,
    pub output: Value,
    /// Every `Wait`'s seconds, in order.
    pub waits: Vec<u64>,
    /// Every Task run, in order.
    pub tasks: Vec<String>,
}

/// What became of a Task.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A plain Task's Lambda result, or its error `(error, cause)`; for a callback Task, only an error (the
    /// invocation itself failed).
    Lambda(Result<Value, (String, String)>),
    /// `SendTaskSuccess` with this token and output (a callback Task).
    Success { token: String, output: Value },
    /// `SendTaskFailure` with this token, error and cause.
    Failure { token: String, error: String, cause: String },
    /// Nobody answered the callback: the Task's timeout ran out.
    NoAnswer,
}

/// Whether `Wait` states sleep for real (tests on the emulator's clock) or are only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    Record,
    Sleep,
}

pub const CALLBACK: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// A definition file, relative to the repository root.
pub fn definition(path: &str) -> Value {
    let path = crate::repo_root().join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The path's steps: `$.a.b` and `$.a['b-c']` are `["a", "b"]` and `["a", "b-c"]`.
fn steps(path: &str) -> Vec<String> {
    let mut rest = path.strip_prefix('$').unwrap_or_else(|| panic!("not a path: {path}"));
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let (key, after) = r.split_once("']").unwrap_or_else(|| panic!("unsupported path {path}"));
            out.push(key.to_owned());
            rest = after;
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out.push(r[..end].to_owned());
            rest = &r[end..];
        } else {
            panic!("unsupported path {path}");
        }
    }
    out
}

/// A reference path into `input`, or into the context object for `$$.`.
fn get(input: &Value, context: &Value, path: &str) -> Value {
    let (root, path) = match path.strip_prefix('$') {
        Some(rest) if rest.starts_with('$') => (context, rest),
        _ => (input, path),
    };
    steps(path)
        .iter()
        .try_fold(root, |v, key| v.get(key))
        .cloned()
        .unwrap_or_else(|| panic!("{path} not in {root}"))
}

/// `input` with `value` placed at `path` (`$` replaces it).
fn put(input: Value, path: &str, value: Value) -> Value {
    let keys = steps(path);
    let Some((last, parents)) = keys.split_last() else { return value };
    let mut out = input;
    let mut at = &mut out;
    for key in parents {
        at = &mut at[key.as_str()];
    }
    at[last.as_str()] = value;
    out
}

fn parameters(template: &Value, input: &Value, context: &Value) -> Value {
    let Some(fields) = template.as_object() else { return template.clone() };
    let mut out = serde_json::Map::new();
    for (k, v) in fields {
        match k.strip_suffix(".$") {
            Some(key) => out.insert(key.to_owned(), get(input, context, v.as_str().unwrap())),
            None => out.insert(k.clone(), parameters(v, input, context)),
        };
    }
    Value::Object(out)
}

/// Runs an execution of `def` on `input`. `task(n, state name, payload)` does the n-th (0-based) Task's
/// work and says how it ended.
pub async fn execute(
    def: &Value,
    input: Value,
    waits: Waits,
    mut task: impl AsyncFnMut(usize, &str, Value) -> Answer,
) -> Execution {
    let mut name = def["StartAt"].as_str().unwrap().to_owned();
    let mut data = input;
    let mut run = Execution { end: String::new(), output: Value::Null, waits: Vec::new(), tasks: Vec::new() };
    for _ in 0..1000 {
        let state = &def["States"][&name];
        match state["Type"].as_str().unwrap() {
            "Task" => {
                let n = run.tasks.len();
                let token = format!("token-{n}-{name}");
                let context = json!({"Task": {"Token": token}});
                let callback = state["Resource"] == CALLBACK;
                let payload = if callback {
                    parameters(&state["Parameters"]["Payload"], &data, &context)
                } else {
                    parameters(&state["Parameters"], &data, &context)
                };
                run.tasks.push(name.clone());
                let answer = task(n, &name, payload).await;
                if let Answer::Success { token: t, .. } | Answer::Failure { token: t, .. } = &answer {
                    assert_eq!(t, &token, "{name}: answered with another token than the one it was given");
                }
                let result = match answer {
                    Answer::Lambda(Ok(_)) if callback => {
                        panic!("{name}: a callback Task ends with its token")
                    }
                    Answer::Lambda(result) => result,
                    Answer::Success { output, .. } => Ok(output),
                    Answer::Failure { error, cause, .. } => Err((error, cause)),
                    Answer::NoAnswer => {
                        let timeout = state.get("TimeoutSeconds").is_some()
                            || state
                                .get("TimeoutSecondsPath")
                                .is_some_and(|p| get(&data, &context, p.as_str().unwrap()).is_u64());
                        assert!(timeout, "{name}: without a timeout the execution would wait forever");
                        Err(("States.Timeout".to_owned(), "the task timed out".to_owned()))
                    }
                };
                match result {
                    Ok(output) => {
                        data = match state["ResultPath"].as_str() {
                            Some(path) => put(data, path, output),
                            None => output,
                        };
                        name = state["Next"].as_str().unwrap().to_owned();
                    }
                    Err((error, cause)) => {
                        let caught = state["Catch"].as_array().into_iter().flatten().find(|c| {
                            c["ErrorEquals"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|e| e == "States.ALL" || *e == error)
                        });
                        let Some(catch) = caught else {
                            run.end = format!("failed:{error}");
                            run.output = json!(cause);
                            return run;
                        };
                        let recorded = json!({"Error": error, "Cause": cause});
                        data = match catch["ResultPath"].as_str() {
                            Some(path) => put(data, path, recorded),
                            None => recorded,
                        };
                        name = catch["Next"].as_str().unwrap().to_owned();
                    }
                }
            }
            "Choice" => {
                let no_context = Value::Null;
                let next =
                    state["Choices"].as_array().unwrap().iter().find(|c| {
                        get(&data, &no_context, c["Variable"].as_str().unwrap()) == c["StringEquals"]
                    });
                name = next.map_or(&state["Default"], |c| &c["Next"]).as_str().unwrap().to_owned();
            }
            "Wait" => {
                let seconds =
                    get(&data, &Value::Null, state["SecondsPath"].as_str().unwrap()).as_u64().unwrap();
                run.waits.push(seconds);
                if waits == Waits::Sleep {
                    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                }
                name = state["Next"].as_str().unwrap().to_owned();
            }
            "Succeed" => {
                run.end = name;
                run.output = data;
                return run;
            }
            "Fail" => {
                run.output = state["CausePath"]
                    .as_str()
                    .map_or_else(|| state["Cause"].clone(), |p| get(&data, &Value::Null, p));
                run.end = name;
                return run;
            }
            other => panic!("state type {other} is not followed by this harness"),
        }
    }
    panic!("the execution did not end");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_nested_and_bracketed_fields() {
        let data = json!({"rollout": {"approval-timeout": 60}, "a": 1});
        let context = json!({"Task": {"Token": "t"}});
        assert_eq!(get(&data, &context, "$.rollout['approval-timeout']"), 60);
        assert_eq!(get(&data, &context, "$$.Task.Token"), "t");
        assert_eq!(get(&data, &context, "$"), data);
        assert_eq!(put(data.clone(), "$.approval", json!({"by": "me"}))["approval"]["by"], "me");
        let p = parameters(
            &json!({"FunctionName": "f", "Payload": {"state.$": "$.a", "token.$": "$$.Task.Token"}}),
            &data,
            &context,
        );
        assert_eq!(p, json!({"FunctionName": "f", "Payload": {"state": 1, "token": "t"}}));
    }
}
