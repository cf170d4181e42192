//! Optional messages to an SNS topic, written for a person reading them in an e-mail or chat.
//!
//! API call: `sns:Publish`. A failed notification never fails the work it reports on: the drain happened
//! either way, so the failure is logged and shows in the function's summary.

use serde::{Deserialize, Serialize};

use crate::error::aws;

/// "Subjects must be UTF-8 text with no line breaks or control characters, and less than 100 characters
/// long." (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>)
const SUBJECT_MAX: usize = 99;

#[derive(Debug, Clone)]
pub struct Notifier {
    client: aws_sdk_sns::Client,
    topic_arn: Option<String>,
}

/// What became of a notification; part of each function's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Notification {
    /// No topic configured.
    Off,
    /// Dry run, or nothing worth a message.
    Skipped,
    Sent {
        message_id: String,
    },
    Failed {
        error: String,
    },
}

/// A message for a person: what each function's `report` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

impl Notifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: Option<String>) -> Self {
        Notifier { client, topic_arn }
    }

    pub fn enabled(&self) -> bool {
        self.topic_arn.is_some()
    }

    /// What a summary says before (or without) a message: `off` with no topic, `skipped` otherwise.
    pub fn silent(&self) -> Notification {
        if self.enabled() { Notification::Skipped } else { Notification::Off }
    }

    /// The same notifier sending to `topic_arn` instead, when one is given.
    pub fn to(&self, topic_arn: Option<String>) -> Notifier {
        Notifier { client: self.client.clone(), topic_arn: topic_arn.or_else(|| self.topic_arn.clone()) }
    }

    pub async fn send(&self, message: &Message) -> Notification {
        let Some(topic) = &self.topic_arn else { return Notification::Off };
        let result = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject_line(&message.subject))
            .message(&message.body)
            .send()
            .await
            .map_err(aws("Publish"));
        match result {
            Ok(out) => Notification::Sent { message_id: out.message_id().unwrap_or_default().to_owned() },
            Err(e) => {
                tracing::warn!(topic_arn = %topic, error = %e, "notification not sent");
                Notification::Failed { error: e.to_string() }
            }
        }
    }
}

/// A subject SNS accepts: one line, short enough; longer ones are cut with `...`. Kept to ASCII because
/// e-mail subscriptions show the subject as the mail's subject line.
pub fn subject_line(subject: &str) -> String {
    let one_line: String = subject
        .chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if c.is_ascii() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if one_line.len() <= SUBJECT_MAX {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(SUBJECT_MAX - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fit_sns_limits() {
        assert_eq!(subject_line("a\nb"), "a b");
        let long = "x".repeat(150);
        let s = subject_line(&long);
        assert_eq!(s.len(), 99);
        assert!(s.ends_with("..."));
        assert_eq!(subject_line(&"y".repeat(99)), "y".repeat(99));
        assert_eq!(subject_line("drained – ok"), "drained ? ok");
    }
}
