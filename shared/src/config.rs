//! Settings from environment variables, read once at cold start.
//!
//! Every variable is read through [`Env`], which records each problem instead of stopping at the first, so
//! one failed cold start names every bad variable. The lookup is injected: tests pass a map, `main` passes
//! the process environment.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// One bad variable: its name, the value seen, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: String,
    pub value: Option<String>,
    pub reason: String,
}

/// Every problem found in the environment at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match &p.value {
                Some(v) => write!(f, "{}={v:?}: {}", p.variable, p.reason)?,
                None => write!(f, "{}: {}", p.variable, p.reason)?,
            }
        }
        Ok(())
    }
}

/// Where variables come from: the process environment, or a map in tests.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads variables through an injected lookup and collects what is wrong with them.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    problems: Vec<Problem>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("problems", &self.problems).finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env { lookup: Box::new(lookup), problems: Vec::new() }
    }

    /// The process environment (what Lambda sets from the template's `Environment`).
    pub fn process() -> Env<'static> {
        Env::new(|name| std::env::var(name).ok())
    }

    /// A fixed map, for tests.
    pub fn from_map(map: &'a HashMap<&str, &str>) -> Self {
        Env::new(move |name| map.get(name).map(|v| (*v).to_owned()))
    }

    /// The trimmed value; unset and blank are the same (CloudFormation can only pass "" for "not set").
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn problem(&mut self, name: &str, value: Option<&str>, reason: impl Into<String>) {
        self.problems.push(Problem {
            variable: name.to_owned(),
            value: value.map(str::to_owned),
            reason: reason.into(),
        });
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.get(name) else { return default };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                self.problem(name, Some(&raw), "expected true or false");
                default
            }
        }
    }

    /// A comma-separated list; blanks between commas are dropped.
    pub fn list(&mut self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// A whole number within `min..=max`.
    pub fn number<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
    {
        let Some(raw) = self.get(name) else { return default };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            Ok(_) => {
                self.problem(name, Some(&raw), format!("must be between {min} and {max}"));
                default
            }
            Err(_) => {
                self.problem(name, Some(&raw), "expected a whole number");
                default
            }
        }
    }

    /// An optional SNS topic ARN (`arn:<partition>:sns:<region>:<account>:<name>`).
    pub fn topic_arn(&mut self, name: &str) -> Option<String> {
        let raw = self.get(name)?;
        let parts: Vec<&str> = raw.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "sns"
            && parts.iter().enumerate().all(|(i, p)| i == 1 || !p.is_empty());
        if ok {
            Some(raw)
        } else {
            self.problem(
                name,
                Some(&raw),
                "expected an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:topic",
            );
            None
        }
    }

    /// `Ok` if nothing was wrong, else every problem seen.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_blank_take_defaults() {
        let map = HashMap::from([("DRY_RUN", "  "), ("N", "")]);
        let mut env = Env::from_map(&map);
        assert!(!env.bool("DRY_RUN", false));
        assert_eq!(env.number("N", 7u32, 1, 10), 7);
        assert!(env.list("CLUSTERS").is_empty());
        assert_eq!(env.topic_arn("TOPIC"), None);
        assert_eq!(env.finish(), Ok(()));
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([("DRY_RUN", "maybe"), ("N", "11"), ("M", "x"), ("TOPIC", "my-topic")]);
        let mut env = Env::from_map(&map);
        env.bool("DRY_RUN", false);
        env.number("N", 1u32, 1, 10);
        env.number("M", 1u32, 1, 10);
        env.topic_arn("TOPIC");
        let err = env.finish().unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["DRY_RUN", "N", "M", "TOPIC"]);
        let text = err.to_string();
        assert!(text.contains(r#"DRY_RUN="maybe": expected true or false"#), "{text}");
        assert!(text.contains(r#"N="11": must be between 1 and 10"#), "{text}");
    }

    #[test]
    fn values_parse() {
        let map = HashMap::from([
            ("DRY_RUN", "TRUE"),
            ("CLUSTERS", " a, ,b ,"),
            ("TOPIC", "arn:aws:sns:eu-west-1:123456789012:ops"),
        ]);
        let mut env = Env::from_map(&map);
        assert!(env.bool("DRY_RUN", false));
        assert_eq!(env.list("CLUSTERS"), ["a", "b"]);
        assert_eq!(env.topic_arn("TOPIC").as_deref(), Some("arn:aws:sns:eu-west-1:123456789012:ops"));
        assert_eq!(env.finish(), Ok(()));
    }
}
