//! Why a policy document was refused.

/// Largest policy document AWS IoT accepts, counted without whitespace
/// (CreatePolicy API reference: "maximum length of 2048, excluding
/// whitespace").
pub const MAX_POLICY_CHARS: usize = 2048;

/// A policy document that AWS IoT would refuse with
/// `MalformedPolicyException` (HTTP 400). The message names the element at
/// fault, as a JSON path such as `Statement[1].Action`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is empty or only whitespace.
    #[error("policy document is empty: give a JSON object with a Statement")]
    Empty,
    /// Longer than [`MAX_POLICY_CHARS`] without whitespace.
    #[error(
        "policy document is {chars} characters long excluding whitespace; \
         the maximum is {MAX_POLICY_CHARS}: split it into several policies"
    )]
    TooLong {
        /// Non-whitespace characters in the document.
        chars: usize,
    },
    /// Not parseable as JSON.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// Valid JSON, but not a valid policy.
    #[error("policy document: {at}: {reason}")]
    Invalid {
        /// JSON path of the element at fault, e.g. `Statement[0].Effect`.
        at: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(at: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            at: at.into(),
            reason: reason.into(),
        }
    }
}
