//! AWS's per-thing request rate of the Device Shadow service: a token bucket
//! per thing (classic and named shadows together), refilled at
//! [`REQUESTS_PER_SECOND_PER_THING`] a second and holding as many. A request
//! over it is rejected with 429 ([`crate::ShadowError::too_many_requests`]).
//! Pure: the caller passes a monotonic `now`.

use std::collections::HashMap;
use std::time::Duration;

/// AWS IoT's quota "Device Shadow requests per second per thing".
pub const REQUESTS_PER_SECOND_PER_THING: u32 = 20;

/// Things tracked before idle (full) buckets are forgotten.
const PRUNE_ABOVE: usize = 4096;

/// Token buckets by thing name.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    buckets: HashMap<String, (f64, Duration)>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(REQUESTS_PER_SECOND_PER_THING)
    }
}

impl RateLimiter {
    /// `per_second` requests a second per thing (at least 1), bursts of as many.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
        }
    }

    fn level(&self, tokens: f64, last: Duration, now: Duration) -> f64 {
        let refill = now.saturating_sub(last).as_secs_f64() * self.per_second;
        (tokens + refill).min(self.per_second)
    }

    /// Takes one request of `thing` at `now`; false when over the rate.
    pub fn allow(&mut self, thing: &str, now: Duration) -> bool {
        if self.buckets.len() > PRUNE_ABOVE && !self.buckets.contains_key(thing) {
            let per_second = self.per_second;
            self.buckets.retain(|_, (tokens, last)| {
                *tokens + now.saturating_sub(*last).as_secs_f64() * per_second < per_second
            });
        }
        let (tokens, last) = self
            .buckets
            .get(thing)
            .copied()
            .unwrap_or((self.per_second, now));
        let level = self.level(tokens, last, now);
        let allowed = level >= 1.0;
        let left = if allowed { level - 1.0 } else { level };
        self.buckets.insert(thing.to_string(), (left, now));
        allowed
    }

    /// Things tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no thing is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_20_passes_then_20_a_second() {
        let mut r = RateLimiter::default();
        let t0 = Duration::from_secs(100);
        let passed = (0..50).filter(|_| r.allow("bot", t0)).count();
        assert_eq!(passed, 20);
        assert!(!r.allow("bot", t0 + Duration::from_millis(10)));
        // Another thing has its own bucket.
        assert!(r.allow("other", t0));
        // Half a second later, 10 more.
        let t1 = t0 + Duration::from_millis(500);
        let passed = (0..50).filter(|_| r.allow("bot", t1)).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn idle_things_are_forgotten() {
        let mut r = RateLimiter::new(1);
        for i in 0..=PRUNE_ABOVE {
            r.allow(&format!("t{i}"), Duration::ZERO);
        }
        r.allow("late", Duration::from_secs(10));
        assert!(r.len() < 10, "{}", r.len());
    }
}
