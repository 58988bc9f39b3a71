//! Retries of throttled and failed control-plane requests, as the AWS SDKs'
//! `standard` retry mode does (AWS SDKs and Tools Reference Guide, "Retry
//! behavior"): at most 3 attempts; throttling errors and HTTP 500, 502, 503
//! and 504 are retried; before retry `i` (from 0) the client sleeps
//! `rand(0, 1) * min(1 s * 2^i, 20 s)` (exponential backoff, full jitter).

use std::time::Duration;

use crate::api::ApiFailure;

/// The error codes botocore's standard mode treats as throttling
/// (`botocore/retries/standard.py`), less `LimitExceededException`: on AWS
/// IoT that names a hard quota (e.g. ten policies on a certificate), which
/// a retry cannot fix.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Transient error codes standard mode retries whatever the status.
const TRANSIENT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// How a client retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// The backoff base: retry `i` waits up to `base * 2^i`.
    pub base: Duration,
    /// The longest wait before one retry.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// The AWS SDKs' standard mode: 3 attempts, 1 s base, 20 s cap.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `retry` (0 for the first retry), given a
    /// random `jitter` in `[0, 1)`.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The wait before retry `retry`, with fresh jitter.
    pub fn jittered_backoff(&self, retry: u32) -> Duration {
        self.backoff(retry, rand::random::<f64>())
    }
}

/// Whether standard mode retries this answer: throttling (by code, or HTTP
/// 429), a transient code, or HTTP 500, 502, 503, 504.
pub fn is_retryable(f: &ApiFailure) -> bool {
    THROTTLING_CODES.contains(&f.code.as_str())
        || TRANSIENT_CODES.contains(&f.code.as_str())
        || matches!(f.status, 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> ApiFailure {
        ApiFailure {
            operation: "CreateThing",
            status,
            code: code.to_string(),
            message: String::new(),
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retried_client_errors_are_not() {
        for (status, code) in [
            (400, "ThrottlingException"),
            (429, "TooManyRequestsException"),
            (429, "UnknownError"),
            (500, "InternalFailureException"),
            (503, "ServiceUnavailableException"),
            (504, "UnknownError"),
            (408, "RequestTimeoutException"),
        ] {
            assert!(is_retryable(&failure(status, code)), "{status} {code}");
        }
        for (status, code) in [
            (400, "InvalidRequestException"),
            (404, "ResourceNotFoundException"),
            (409, "ResourceAlreadyExistsException"),
            (403, "UnauthorizedException"),
            (410, "LimitExceededException"),
            (501, "NotImplemented"),
        ] {
            assert!(!is_retryable(&failure(status, code)), "{status} {code}");
        }
    }

    #[test]
    fn backoff_is_exponential_with_full_jitter_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.backoff(0, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(16));
        assert_eq!(p.backoff(5, 1.0), Duration::from_secs(20));
        assert_eq!(p.backoff(40, 1.0), Duration::from_secs(20));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        for _ in 0..100 {
            assert!(p.jittered_backoff(1) <= Duration::from_secs(2));
        }
    }
}
