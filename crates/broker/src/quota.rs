//! AWS IoT Core's per-connection quotas ([`Limits`]) and the token buckets
//! that meter them, apart from I/O: every method takes the time it is asked
//! at, so the arithmetic is tested without a clock.
//!
//! What each quota does when exceeded follows the AWS IoT Core quotas page
//! ("AWS IoT Core endpoints and quotas", message broker section):
//!
//! - publish requests per second, inbound and outbound (100 each):
//!   "Publish requests that exceed this limit are discarded". A discarded
//!   inbound QoS 1 PUBLISH gets no PUBACK: MQTT 3.1.1 has no failure code
//!   for it, and a PUBACK would tell the client the message was taken.
//! - throughput per connection (512 KiB/s, ingress and egress apart): data
//!   past the rate "will be delayed in processing": the connection stops
//!   reading (or writing) until its bucket has refilled.
//! - subscriptions per connection (50): a SUBSCRIBE that would pass it gets
//!   the failure code 0x80 for the filters over the count, as AWS asks
//!   clients to "validate the SUBACK message"; the connection stays open.
//!
//! A rate is metered by a bucket holding one second's worth: a burst of up
//! to the per-second quota passes at once, and the bucket refills at the
//! quota's rate. So in any window of `t` seconds at most `rate × (1 + t)`
//! passes.

use std::time::{Duration, Instant};

/// AWS IoT Core's inbound (and outbound) publish requests per second per
/// connection.
pub const AWS_PUBLISHES_PER_S: u32 = 100;
/// AWS IoT Core's throughput per connection, bytes per second (512 KiB).
pub const AWS_BYTES_PER_S: u32 = 512 * 1024;
/// AWS IoT Core's subscriptions per connection.
pub const AWS_SUBSCRIPTIONS_PER_CONNECTION: usize = 50;

/// The per-connection quotas the broker enforces; `None` = unlimited.
/// The message size ([`crate::BrokerConfig::max_payload`]) and the eight
/// filters per SUBSCRIBE ([`crate::topic::MAX_FILTERS_PER_SUBSCRIBE`]) are
/// not here: they bound what one packet may make the broker hold, so they
/// hold whatever the limits are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most PUBLISH packets a client may send per second; the excess is
    /// discarded.
    pub publishes_in_per_s: Option<u32>,
    /// Most PUBLISH packets written to a client per second; the excess is
    /// discarded.
    pub publishes_out_per_s: Option<u32>,
    /// Most bytes read from a client per second; past it reading waits.
    pub bytes_in_per_s: Option<u32>,
    /// Most message bytes written to a client per second; past it writing
    /// waits (and its bounded queue drops its oldest QoS 0 messages).
    pub bytes_out_per_s: Option<u32>,
    /// Most subscriptions one session holds; filters past it are refused
    /// in the SUBACK (0x80).
    pub subscriptions_per_connection: Option<usize>,
}

impl Limits {
    /// AWS IoT Core's quotas (none of them adjustable but subscriptions).
    pub const fn aws() -> Self {
        Limits {
            publishes_in_per_s: Some(AWS_PUBLISHES_PER_S),
            publishes_out_per_s: Some(AWS_PUBLISHES_PER_S),
            bytes_in_per_s: Some(AWS_BYTES_PER_S),
            bytes_out_per_s: Some(AWS_BYTES_PER_S),
            subscriptions_per_connection: Some(AWS_SUBSCRIPTIONS_PER_CONNECTION),
        }
    }

    /// No per-connection quota (the broker's memory bounds still hold).
    pub const fn off() -> Self {
        Limits {
            publishes_in_per_s: None,
            publishes_out_per_s: None,
            bytes_in_per_s: None,
            bytes_out_per_s: None,
            subscriptions_per_connection: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::aws()
    }
}

/// A token bucket of `rate` tokens a second holding at most one second's
/// worth, full at the start.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` per second (at least 1).
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.last = now;
    }

    /// Takes one token if there is one: whether the request may pass.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Charges `n` tokens, going into debt if need be (the bytes were
    /// already moved); returns how long to wait until the debt is paid.
    pub fn charge(&mut self, n: usize, now: Instant) -> Option<Duration> {
        self.refill(now);
        self.tokens -= n as f64;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// The buckets of one connection, from its [`Limits`].
#[derive(Debug)]
pub(crate) struct ConnectionQuota {
    publishes_in: Option<TokenBucket>,
    publishes_out: Option<TokenBucket>,
    bytes_in: Option<TokenBucket>,
    bytes_out: Option<TokenBucket>,
    /// Inbound publishes discarded since the last report.
    pub dropped_in: u64,
    /// Outbound publishes discarded since the last report.
    pub dropped_out: u64,
}

impl ConnectionQuota {
    pub fn new(limits: &Limits, now: Instant) -> Self {
        let bucket = |r: Option<u32>| r.map(|r| TokenBucket::new(r, now));
        ConnectionQuota {
            publishes_in: bucket(limits.publishes_in_per_s),
            publishes_out: bucket(limits.publishes_out_per_s),
            bytes_in: bucket(limits.bytes_in_per_s),
            bytes_out: bucket(limits.bytes_out_per_s),
            dropped_in: 0,
            dropped_out: 0,
        }
    }

    /// Whether an inbound PUBLISH may pass (counted when it may not).
    pub fn publish_in(&mut self, now: Instant) -> bool {
        let ok = self.publishes_in.as_mut().is_none_or(|b| b.try_take(now));
        self.dropped_in += u64::from(!ok);
        ok
    }

    /// Whether an outbound PUBLISH may be written (counted when it may not).
    pub fn publish_out(&mut self, now: Instant) -> bool {
        let ok = self.publishes_out.as_mut().is_none_or(|b| b.try_take(now));
        self.dropped_out += u64::from(!ok);
        ok
    }

    /// Charges `n` bytes read; how long reading must wait, if at all.
    pub fn read(&mut self, n: usize, now: Instant) -> Option<Duration> {
        self.bytes_in.as_mut().and_then(|b| b.charge(n, now))
    }

    /// Charges `n` bytes written; how long writing must wait, if at all.
    pub fn wrote(&mut self, n: usize, now: Instant) -> Option<Duration> {
        self.bytes_out.as_mut().and_then(|b| b.charge(n, now))
    }
}

/// Which of `filters` a session may hold under `max` subscriptions when it
/// holds `held` already (`is_held` says whether a filter is one of them):
/// a filter it already holds is only replaced and always passes; a new one
/// passes while the count stays within `max`. Pure.
pub(crate) fn admit_subscriptions<'a>(
    filters: impl IntoIterator<Item = &'a str>,
    held: usize,
    is_held: impl Fn(&str) -> bool,
    max: Option<usize>,
) -> Vec<bool> {
    let mut count = held;
    let mut seen: Vec<&str> = Vec::new();
    filters
        .into_iter()
        .map(|f| {
            if is_held(f) || seen.contains(&f) {
                return true;
            }
            if max.is_some_and(|m| count >= m) {
                return false;
            }
            count += 1;
            seen.push(f);
            true
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_passes_up_to_the_rate_then_the_excess_is_refused() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        let passed = (0..1000).filter(|_| b.try_take(t0)).count();
        assert_eq!(passed, 100, "a full bucket holds one second's worth");
        assert!(!b.try_take(t0));
        // Refills at the rate: 10 ms is one token.
        assert!(b.try_take(t0 + ms(10)));
        assert!(!b.try_take(t0 + ms(10)));
    }

    #[test]
    fn a_steady_flood_passes_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        // 1000 requests a second for 5 s: 100 (the burst) + 100 × 5 pass.
        let passed = (0..5000).filter(|i| b.try_take(t0 + ms(*i))).count();
        assert!((595..=601).contains(&passed), "{passed}");
    }

    #[test]
    fn a_client_within_the_rate_never_loses_one() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        // 50 a second for a minute.
        assert!((0..3000).all(|i| b.try_take(t0 + ms(i * 20))));
    }

    #[test]
    fn a_bucket_never_holds_more_than_one_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        let later = t0 + Duration::from_secs(3600);
        let passed = (0..1000).filter(|_| b.try_take(later)).count();
        assert_eq!(passed, 100);
    }

    #[test]
    fn bytes_over_the_rate_wait_for_their_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(512 * 1024, t0);
        assert_eq!(b.charge(512 * 1024, t0), None, "one second's worth at once");
        // 128 KiB more is a quarter of a second of debt.
        let wait = b.charge(128 * 1024, t0).unwrap_or_default();
        assert!((ms(249)..=ms(251)).contains(&wait), "{wait:?}");
        // After the wait, the debt is paid and the next byte waits 2 µs.
        let after = b.charge(1, t0 + wait).unwrap_or_default();
        assert!(after < ms(1), "{after:?}");
    }

    #[test]
    fn off_limits_never_refuse_or_wait() {
        let t0 = Instant::now();
        let mut q = ConnectionQuota::new(&Limits::off(), t0);
        assert!((0..100_000).all(|_| q.publish_in(t0) && q.publish_out(t0)));
        assert_eq!(q.read(usize::MAX / 2, t0), None);
        assert_eq!(q.wrote(usize::MAX / 2, t0), None);
        assert_eq!((q.dropped_in, q.dropped_out), (0, 0));
    }

    #[test]
    fn aws_limits_count_what_they_discard() {
        let t0 = Instant::now();
        let mut q = ConnectionQuota::new(&Limits::aws(), t0);
        let passed = (0..250).filter(|_| q.publish_in(t0)).count();
        assert_eq!((passed, q.dropped_in), (100, 150));
        // Inbound and outbound are metered apart.
        assert!(q.publish_out(t0));
        assert!(q.read(512 * 1024, t0).is_none());
        assert!(q.read(1, t0).is_some());
        assert!(q.wrote(512 * 1024, t0).is_none());
    }

    #[test]
    fn subscriptions_past_the_cap_are_refused_held_ones_replaced() {
        let held = ["a/1", "a/2"];
        let is_held = |f: &str| held.contains(&f);
        let admit = |fs: &[&'static str], max| {
            admit_subscriptions(fs.iter().copied(), held.len(), is_held, max)
        };
        assert_eq!(admit(&["b/1", "b/2"], Some(3)), [true, false]);
        // Re-subscribing a held filter replaces it and never counts.
        assert_eq!(admit(&["a/1", "b/1", "a/2"], Some(3)), [true, true, true]);
        // The same new filter twice in one SUBSCRIBE counts once.
        assert_eq!(admit(&["b/1", "b/1", "b/2"], Some(3)), [true, true, false]);
        assert_eq!(admit(&["b/1"], Some(2)), [false]);
        assert_eq!(admit(&["b/1", "b/2", "b/3"], None), [true, true, true]);
    }
}
