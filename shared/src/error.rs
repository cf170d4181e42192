//! AWS SDK errors, mapped where the call is made so the message names the operation; the drainers' error.

use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::edge::Internal;
use crate::events::InvalidEvent;

/// An AWS API call that failed after the SDK's own retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    /// The API operation, e.g. `UpdateContainerInstancesState`.
    pub operation: &'static str,
    /// The AWS error code (`ThrottlingException`, `ClusterNotFoundException`, ...), when the service sent
    /// one; `None` for transport failures and timeouts.
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    /// Maps any SDK error; every `aws-sdk-*` crate shares these smithy types.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_owned);
        let message = match err.message() {
            Some(m) => m.to_owned(),
            // Timeouts and connection failures carry no service message; the context chain says what
            // happened (`dispatch failure: io error: connection refused`).
            None => DisplayErrorContext(&err).to_string(),
        };
        AwsError { operation, code, message }
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// `.map_err(aws("Operation"))` at each call site.
pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| AwsError::from_sdk(operation, err)
}

/// What the drainers' handlers fail with, at the Lambda edge.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum DrainError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    #[strum(serialize = "AwsApiError")]
    Aws(#[from] AwsError),
    #[error("ECS refused to drain {container_instance_arn}: {reason}")]
    DrainRejected { container_instance_arn: String, reason: String },
    #[error(transparent)]
    Internal(#[from] Internal),
}

crate::error_type!(DrainError);

impl From<crate::ecs::Failure> for DrainError {
    fn from(f: crate::ecs::Failure) -> Self {
        match f {
            crate::ecs::Failure::Aws(e) => DrainError::Aws(e),
            crate::ecs::Failure::Internal(e) => DrainError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::ErrorType;

    #[test]
    fn display_names_operation_and_code() {
        let e = AwsError {
            operation: "ListClusters",
            code: Some("AccessDeniedException".into()),
            message: "no".into(),
        };
        assert_eq!(e.to_string(), "ListClusters failed: AccessDeniedException: no");
        let e = AwsError { operation: "ListClusters", code: None, message: "timed out".into() };
        assert_eq!(e.to_string(), "ListClusters failed: timed out");
    }

    #[test]
    fn drain_error_types_are_stable() {
        let aws = AwsError { operation: "ListClusters", code: None, message: "x".into() };
        let cases = [
            (DrainError::from(InvalidEvent::new("source", "x")), "InvalidEvent"),
            (DrainError::from(aws), "AwsApiError"),
            (
                DrainError::DrainRejected { container_instance_arn: "a".into(), reason: "r".into() },
                "DrainRejected",
            ),
            (DrainError::from(Internal::new("testing", "x")), "Internal"),
        ];
        for (e, name) in cases {
            assert_eq!(e.error_type(), name);
            assert_eq!(lambda_runtime::Diagnostic::from(e).error_type, name);
        }
    }
}
