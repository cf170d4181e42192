//! Which versions may share a weighted alias. Pure.

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;

/// What Lambda requires to be equal between the two versions of a weighted alias: "the same execution
/// role" and "the same dead-letter queue configuration, or no dead-letter queue configuration"
/// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub role: String,
    pub dead_letter_queue: String,
}

impl Routing {
    pub fn of(c: &GetFunctionConfigurationOutput) -> Self {
        Routing {
            role: c.role().unwrap_or("?").to_owned(),
            dead_letter_queue: c
                .dead_letter_config()
                .and_then(|d| d.target_arn())
                .unwrap_or("none")
                .to_owned(),
        }
    }
}

/// Whether the new version and the primary can share an alias's traffic; the error says what differs.
pub fn routable_together(new_version: &str, new: &Routing, primary: &Routing) -> Result<(), String> {
    if new.role != primary.role {
        return Err(format!(
            "version {new_version} runs as {}, the primary as {}: Lambda routes an alias only between versions with the same execution role",
            new.role, primary.role
        ));
    }
    if new.dead_letter_queue != primary.dead_letter_queue {
        return Err(format!(
            "version {new_version} has dead-letter queue {}, the primary {}: Lambda routes an alias only between versions with the same dead-letter configuration",
            new.dead_letter_queue, primary.dead_letter_queue
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(role: &str, dlq: &str) -> Routing {
        Routing { role: role.into(), dead_letter_queue: dlq.into() }
    }

    #[test]
    fn versions_with_the_same_role_and_queue_share_an_alias() {
        let base = routing("arn:aws:iam::1:role/a", "none");
        assert_eq!(routable_together("2", &base, &base.clone()), Ok(()));
    }

    #[test]
    fn versions_with_different_roles_do_not() {
        let base = routing("arn:aws:iam::1:role/a", "none");
        let role = routable_together("2", &routing("arn:aws:iam::1:role/b", "none"), &base).unwrap_err();
        assert!(role.contains("same execution role"), "{role}");
    }

    #[test]
    fn versions_with_different_dead_letter_queues_do_not() {
        let base = routing("arn:aws:iam::1:role/a", "none");
        let dlq =
            routable_together("2", &routing("arn:aws:iam::1:role/a", "arn:aws:sqs:us-east-1:1:q"), &base);
        assert!(dlq.unwrap_err().contains("dead-letter queue arn:aws:sqs:us-east-1:1:q, the primary none"));
    }
}
