//! Which stream the one detector works on next.
//!
//! Each stream has a mailbox that holds only its newest unprocessed frame: a
//! frame that arrives while the previous one still waits replaces it, so
//! there is never a backlog. The detector takes frames round-robin over the
//! mailboxes that hold one, starting after the stream it served last, so a
//! stream with a frame waits for at most one frame of every other stream: a
//! fast camera cannot starve a slow one.
//!
//! [`Mailboxes`] is the pure part (unit-tested); [`Inbox`] shares it between
//! the tasks that receive frames and the detector loop.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The newest unprocessed frame of each stream, by stream name.
#[derive(Debug)]
pub struct Mailboxes<F> {
    slots: Vec<(String, Option<F>)>,
    /// Where the next search starts: the slot after the one served last.
    next: usize,
    replaced: u64,
}

impl<F> Default for Mailboxes<F> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            next: 0,
            replaced: 0,
        }
    }
}

impl<F> Mailboxes<F> {
    /// Leaves `frame` as `stream`'s newest, replacing an unprocessed one
    /// (then `true`). A stream seen for the first time gets a mailbox.
    pub fn put(&mut self, stream: &str, frame: F) -> bool {
        let replaced = match self.slots.iter_mut().find(|(k, _)| k == stream) {
            Some((_, slot)) => slot.replace(frame).is_some(),
            None => {
                self.slots.push((stream.to_string(), Some(frame)));
                false
            }
        };
        self.replaced += u64::from(replaced);
        replaced
    }

    /// The next stream (round-robin) with a frame, and that frame.
    pub fn take(&mut self) -> Option<(String, F)> {
        let n = self.slots.len();
        for i in 0..n {
            let at = (self.next + i) % n;
            if let Some(f) = self.slots[at].1.take() {
                self.next = (at + 1) % n;
                return Some((self.slots[at].0.clone(), f));
            }
        }
        None
    }

    /// Forgets `stream` and its waiting frame (a robot that went offline).
    pub fn remove(&mut self, stream: &str) {
        if let Some(at) = self.slots.iter().position(|(k, _)| k == stream) {
            self.slots.remove(at);
            if self.next > at {
                self.next -= 1;
            }
            if self.next >= self.slots.len() {
                self.next = 0;
            }
        }
    }

    /// Frames that were replaced by a newer one before the detector got to
    /// them (the price of always working on the newest).
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

/// [`Mailboxes`] shared between the receiving tasks and the detector.
#[derive(Debug)]
pub struct Inbox<F> {
    boxes: Mutex<Mailboxes<F>>,
    ready: Notify,
}

impl<F> Default for Inbox<F> {
    fn default() -> Self {
        Self {
            boxes: Mutex::new(Mailboxes::default()),
            ready: Notify::new(),
        }
    }
}

impl<F> Inbox<F> {
    /// A new, shareable inbox.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mailboxes<F>> {
        self.boxes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new frame of `stream`; wakes the detector.
    pub fn put(&self, stream: &str, frame: F) {
        self.lock().put(stream, frame);
        self.ready.notify_one();
    }

    /// Forgets `stream`.
    pub fn remove(&self, stream: &str) {
        self.lock().remove(stream);
    }

    /// Frames replaced before they were processed, over all streams.
    pub fn replaced(&self) -> u64 {
        self.lock().replaced()
    }

    /// Waits for the next frame, round-robin over the streams.
    pub async fn next(&self) -> (String, F) {
        loop {
            if let Some(got) = self.lock().take() {
                return got;
            }
            // A put between the take above and this wait leaves a permit,
            // so no frame is missed.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_the_newest_frame_waits() {
        let mut m = Mailboxes::default();
        assert!(!m.put("a", 1));
        assert!(m.put("a", 2));
        assert!(m.put("a", 3));
        assert_eq!(m.take(), Some(("a".to_string(), 3)));
        assert_eq!(m.take(), None);
        assert_eq!(m.replaced(), 2);
    }

    #[test]
    fn streams_take_turns() {
        let mut m = Mailboxes::default();
        for round in 0..3 {
            for s in ["a", "b", "c"] {
                m.put(s, round);
            }
            let order: Vec<String> = std::iter::from_fn(|| m.take()).map(|(s, _)| s).collect();
            // whoever went first, every stream is served once per round
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, ["a", "b", "c"], "round {round}: {order:?}");
        }
    }

    /// A camera at 30 fps and one at 2 fps on a detector that does 10
    /// frames a second: the slow stream gets every one of its frames, the
    /// fast one the rest of the detector's time.
    #[test]
    fn a_fast_stream_does_not_starve_a_slow_one() {
        let mut m = Mailboxes::default();
        let mut served: HashMap<String, Vec<u32>> = HashMap::new();
        let mut slow_sent = 0;
        // time in ms; the detector finishes a frame every 100 ms
        for t in (0..10_000u32).step_by(1) {
            if t % 33 == 0 {
                m.put("fast", t);
            }
            if t % 500 == 0 {
                m.put("slow", t);
                slow_sent += 1;
            }
            if t % 100 == 99 {
                if let Some((s, f)) = m.take() {
                    served.entry(s).or_default().push(f);
                }
            }
        }
        let slow = &served["slow"];
        let fast = &served["fast"];
        assert_eq!(slow.len(), slow_sent, "every slow frame is processed");
        assert_eq!(slow.len() + fast.len(), 100, "the detector never idles");
        assert!(
            fast.len() >= 75,
            "the fast stream gets the rest: {}",
            fast.len()
        );
        // newest only: each fast frame taken is at most one camera interval old
        assert!(fast.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn a_removed_stream_is_skipped_and_turns_go_on() {
        let mut m = Mailboxes::default();
        for s in ["a", "b", "c"] {
            m.put(s, 0);
        }
        assert_eq!(m.take().map(|(s, _)| s).as_deref(), Some("a"));
        assert_eq!(m.take().map(|(s, _)| s).as_deref(), Some("b"));
        m.remove("b");
        m.put("a", 1);
        // c was next after b and still is
        assert_eq!(m.take().map(|(s, _)| s).as_deref(), Some("c"));
        assert_eq!(m.take().map(|(s, _)| s).as_deref(), Some("a"));
        m.remove("zzz");
        assert_eq!(m.take(), None);
    }

    #[tokio::test]
    async fn the_detector_wakes_for_a_frame_put_while_it_waits() {
        let inbox: Arc<Inbox<u32>> = Inbox::new();
        let waiter = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.next().await }
        });
        tokio::task::yield_now().await;
        inbox.put("r1", 7);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(got, ("r1".to_string(), 7));
    }
}
