//! A Step Functions definition followed the way Step Functions follows it, for the few state types and
//! paths the alias-shifter's state machine uses: each Task's `Parameters` built from the state's input, its
//! errors matched against `Catch` with the error recorded at `ResultPath`, `Choice` on the output, `Wait`
//! read from `SecondsPath`, `Succeed` and `Fail` (with `CausePath`). The Task's Lambda is the caller's.

use serde_json::{Value, json};

/// How an execution ended.
#[derive(Debug)]
pub struct Execution {
    /// The terminal state reached (`Done`, `RolledBack`, ...) or `failed:<error>` for an uncaught one.
    pub end: String,
    pub output: Value,
    /// Every `Wait`'s seconds, in order.
    pub waits: Vec<u64>,
}

/// A definition file, relative to the repository root.
pub fn definition(path: &str) -> Value {
    let path = crate::repo_root().join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `$`, `$.field` and `$['field']`: the reference paths the definition uses.
fn get(input: &Value, path: &str) -> Value {
    let rest = path.strip_prefix('$').unwrap_or_else(|| panic!("not a path: {path}"));
    if rest.is_empty() {
        return input.clone();
    }
    let key = rest
        .strip_prefix('.')
        .or_else(|| rest.strip_prefix("['").and_then(|r| r.strip_suffix("']")))
        .unwrap_or_else(|| panic!("unsupported path {path}"));
    input.get(key).cloned().unwrap_or_else(|| panic!("{path} not in the input: {input}"))
}

fn parameters(template: &Value, input: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in template.as_object().unwrap() {
        match k.strip_suffix(".$") {
            Some(key) => out.insert(key.to_owned(), get(input, v.as_str().unwrap())),
            None => out.insert(k.clone(), v.clone()),
        };
    }
    Value::Object(out)
}

/// Runs an execution of `def` on `input`. `task(n, state name, payload)` is the n-th (0-based) Task's
/// Lambda call: its result, or the `(error, cause)` it failed with.
pub async fn execute(
    def: &Value,
    input: Value,
    mut task: impl AsyncFnMut(usize, &str, Value) -> Result<Value, (String, String)>,
) -> Execution {
    let mut name = def["StartAt"].as_str().unwrap().to_owned();
    let mut data = input;
    let mut waits = Vec::new();
    let mut tasks = 0;
    for _ in 0..1000 {
        let state = &def["States"][&name];
        match state["Type"].as_str().unwrap() {
            "Task" => {
                let payload = parameters(&state["Parameters"], &data);
                let result = task(tasks, &name, payload).await;
                tasks += 1;
                match result {
                    Ok(output) => {
                        data = output;
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
                            return Execution { end: format!("failed:{error}"), output: json!(cause), waits };
                        };
                        let at = catch["ResultPath"].as_str().map(|p| p.trim_start_matches("$."));
                        let recorded = json!({"Error": error, "Cause": cause});
                        data = match at {
                            Some(key) => {
                                data[key] = recorded;
                                data
                            }
                            None => recorded,
                        };
                        name = catch["Next"].as_str().unwrap().to_owned();
                    }
                }
            }
            "Choice" => {
                let next = state["Choices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| get(&data, c["Variable"].as_str().unwrap()) == c["StringEquals"]);
                name = next.map_or(&state["Default"], |c| &c["Next"]).as_str().unwrap().to_owned();
            }
            "Wait" => {
                waits.push(get(&data, state["SecondsPath"].as_str().unwrap()).as_u64().unwrap());
                name = state["Next"].as_str().unwrap().to_owned();
            }
            "Succeed" => return Execution { end: name, output: data, waits },
            "Fail" => {
                let cause =
                    state["CausePath"].as_str().map_or_else(|| state["Cause"].clone(), |p| get(&data, p));
                return Execution { end: name, output: cause, waits };
            }
            other => panic!("state type {other} is not followed by this harness"),
        }
    }
    panic!("the execution did not end");
}
