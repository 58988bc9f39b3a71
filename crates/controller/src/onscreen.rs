//! Which robots the dashboard follows at full rate, as a pure state
//! machine over what the pages report, and the subscription arithmetic
//! that keeps its one MQTT connection within AWS IoT Core's quotas.
//!
//! Each page says which robots it shows (`{"type":"view","things":[..]}`:
//! the selected robot, or none while the tab is hidden); a closed page
//! shows none. The robots on screen are the union over pages, in the order
//! they were first asked for. The first [`FULL_RATE_ROBOTS`] of them get
//! their [`ON_SCREEN_TOPICS`] (telemetry and detections) subscribed by
//! exact name; the others wait, and are told so, until a slot frees. The
//! fleet list needs none of this: it is made of the low-rate wildcard
//! filters ([`gopigo_protocol::FLEET_FILTERS`]) and presence events.
//!
//! # The arithmetic (AWS IoT Core quotas, per connection)
//! - Subscriptions: at most [`SUBSCRIPTIONS_PER_CONNECTION`] (50). The
//!   dashboard holds [`FIXED_FILTERS`] wildcard filters, up to
//!   [`RETAINED_WINDOW`] exact status topics while it reads robots'
//!   retained status, 2 per full-rate robot and 1 per robot whose MQTT
//!   video is watched (at most [`MAX_VIDEO_ROBOTS`]): [`MAX_SUBSCRIPTIONS`]
//!   in all, checked against the quota at compile time.
//! - Messages: at most 100 publishes a second reach a connection. At the
//!   default rates (telemetry 5 Hz, detections 5/s) the full-rate robots
//!   bring 8 × 10 = 80 a second, which leaves room for status, results,
//!   shadow documents and presence events, each a few a minute per robot.

use std::collections::BTreeMap;

use gopigo_protocol::{Topic, FLEET_FILTERS, ON_SCREEN_TOPICS, PRESENCE_FILTERS};

/// AWS IoT Core's "Maximum subscriptions per connection".
pub const SUBSCRIPTIONS_PER_CONNECTION: usize = 50;
/// How many robots are followed at full rate at once, over all pages.
pub const FULL_RATE_ROBOTS: usize = 8;
/// How many robots' MQTT video can be relayed at once.
pub const MAX_VIDEO_ROBOTS: usize = FULL_RATE_ROBOTS;
/// How many exact status topics are subscribed at once to read robots'
/// retained status (AWS sends a retained message only to a subscription
/// naming its topic exactly); each is dropped once read.
pub const RETAINED_WINDOW: usize = 8;
/// The wildcard filters held all the time.
pub const FIXED_FILTERS: usize = FLEET_FILTERS.len() + PRESENCE_FILTERS.len();
/// The most subscriptions the dashboard's connection ever holds.
pub const MAX_SUBSCRIPTIONS: usize =
    FIXED_FILTERS + RETAINED_WINDOW + FULL_RATE_ROBOTS * ON_SCREEN_TOPICS.len() + MAX_VIDEO_ROBOTS;
const _: () = assert!(MAX_SUBSCRIPTIONS <= SUBSCRIPTIONS_PER_CONNECTION);

/// The exact topics one robot is followed on at full rate.
pub fn full_rate_topics(thing: &str) -> Vec<String> {
    ON_SCREEN_TOPICS
        .iter()
        .map(|k| Topic::robot(thing, *k).to_string())
        .collect()
}

/// What a change of the pages' views means for the broker link.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    /// Robots that now get their full-rate topics.
    pub start: Vec<String>,
    /// Robots whose full-rate topics are no longer wanted.
    pub stop: Vec<String>,
}

impl Change {
    /// Nothing to subscribe or unsubscribe.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty()
    }
}

/// The robots on the pages' screens (see the module docs).
#[derive(Debug, Default)]
pub struct OnScreen {
    /// Page id → the robots it shows.
    pages: BTreeMap<u64, Vec<String>>,
    /// Every robot some page shows, in the order first asked for.
    wanted: Vec<String>,
    /// The first [`FULL_RATE_ROBOTS`] of `wanted`, as last reported.
    full: Vec<String>,
}

impl OnScreen {
    /// Page `page` now shows `things` (at most [`FULL_RATE_ROBOTS`] are
    /// taken; the caller has checked the names).
    pub fn set(&mut self, page: u64, mut things: Vec<String>) -> Change {
        things.truncate(FULL_RATE_ROBOTS);
        if things.is_empty() {
            self.pages.remove(&page);
        } else {
            self.pages.insert(page, things);
        }
        self.settle()
    }

    /// Page `page` closed.
    pub fn leave(&mut self, page: u64) -> Change {
        self.pages.remove(&page);
        self.settle()
    }

    /// Robots followed at full rate.
    pub fn full_rate(&self) -> &[String] {
        &self.full
    }

    /// Robots on screen that wait for a full-rate slot.
    pub fn waiting(&self) -> &[String] {
        self.wanted.get(FULL_RATE_ROBOTS..).unwrap_or_default()
    }

    fn settle(&mut self) -> Change {
        let shown: Vec<&String> = self.pages.values().flatten().collect();
        self.wanted.retain(|t| shown.contains(&t));
        for t in shown {
            if !self.wanted.contains(t) {
                self.wanted.push(t.clone());
            }
        }
        let full: Vec<String> = self.wanted.iter().take(FULL_RATE_ROBOTS).cloned().collect();
        let change = Change {
            start: full
                .iter()
                .filter(|t| !self.full.contains(t))
                .cloned()
                .collect(),
            stop: self
                .full
                .iter()
                .filter(|t| !full.contains(t))
                .cloned()
                .collect(),
        };
        self.full = full;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selecting_moves_the_subscription_and_the_last_viewer_ends_it() {
        let mut s = OnScreen::default();
        assert_eq!(
            s.set(1, names(&["r1"])),
            Change {
                start: names(&["r1"]),
                stop: vec![]
            }
        );
        // a second page on the same robot changes nothing
        assert!(s.set(2, names(&["r1"])).is_empty());
        // page 1 selects r2: r1 is still on page 2's screen
        assert_eq!(s.set(1, names(&["r2"])).start, names(&["r2"]));
        assert_eq!(s.full_rate(), names(&["r1", "r2"]).as_slice());
        // page 2's tab is hidden, then page 1 closes
        assert_eq!(s.set(2, vec![]).stop, names(&["r1"]));
        assert_eq!(s.leave(1).stop, names(&["r2"]));
        assert!(s.full_rate().is_empty());
    }

    #[test]
    fn beyond_the_cap_robots_wait_for_a_slot_in_order() {
        let mut s = OnScreen::default();
        for p in 0..FULL_RATE_ROBOTS as u64 + 2 {
            s.set(p, vec![format!("r{p}")]);
        }
        assert_eq!(s.full_rate().len(), FULL_RATE_ROBOTS);
        assert_eq!(s.waiting(), names(&["r8", "r9"]).as_slice());
        // a slot frees: the first waiting robot gets it
        let c = s.leave(3);
        assert_eq!(
            c,
            Change {
                start: names(&["r8"]),
                stop: names(&["r3"])
            }
        );
        assert_eq!(s.waiting(), names(&["r9"]).as_slice());
        // one page cannot take more than the cap
        let mut one = OnScreen::default();
        let many: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        assert_eq!(one.set(1, many).start.len(), FULL_RATE_ROBOTS);
    }

    #[test]
    fn the_subscriptions_fit_aws_quota() {
        assert_eq!(FIXED_FILTERS, 7);
        assert_eq!(MAX_SUBSCRIPTIONS, 7 + 8 + 16 + 8);
        assert_eq!(
            full_rate_topics("r1"),
            names(&["gopigo/r1/telemetry", "gopigo/r1/detections"])
        );
    }
}
