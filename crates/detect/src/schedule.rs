//! Which stream the detector's workers work on next.
//!
//! Each stream has a mailbox that holds only its newest unprocessed frame: a
//! frame that arrives while the previous one still waits replaces it, so
//! there is never a backlog. Workers take frames round-robin over the
//! mailboxes that hold one, starting after the stream served last, so a
//! stream with a frame waits for at most one frame of every other stream: a
//! fast camera cannot starve a slow one.
//!
//! A stream whose frame a worker has taken is *in flight* until that worker
//! hands it back ([`Mailboxes::done`]): no other worker takes its next frame
//! meanwhile. So one stream's results come out in capture order, and one
//! stream cannot occupy every worker while the others wait.
//!
//! [`Mailboxes`] is the pure part (unit-tested); [`Inbox`] shares it between
//! the tasks that receive frames and the detector's workers.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The newest unprocessed frame of each stream, by stream name.
#[derive(Debug)]
pub struct Mailboxes<F> {
    slots: Vec<Slot<F>>,
    /// Where the next search starts: the slot after the one served last.
    next: usize,
    replaced: u64,
}

/// One stream's mailbox.
#[derive(Debug)]
struct Slot<F> {
    stream: String,
    frame: Option<F>,
    /// A worker has its previous frame.
    in_flight: bool,
    /// Removed while in flight: goes when that frame is done, unless the
    /// stream comes back first.
    gone: bool,
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
        let replaced = match self.slots.iter_mut().find(|s| s.stream == stream) {
            Some(slot) => {
                slot.gone = false;
                slot.frame.replace(frame).is_some()
            }
            None => {
                self.slots.push(Slot {
                    stream: stream.to_string(),
                    frame: Some(frame),
                    in_flight: false,
                    gone: false,
                });
                false
            }
        };
        self.replaced += u64::from(replaced);
        replaced
    }

    /// The next stream (round-robin) with a frame and none in flight, and
    /// that frame; the stream is in flight until [`Mailboxes::done`].
    pub fn take(&mut self) -> Option<(String, F)> {
        let n = self.slots.len();
        for i in 0..n {
            let at = (self.next + i) % n;
            let slot = &mut self.slots[at];
            if slot.in_flight {
                continue;
            }
            if let Some(f) = slot.frame.take() {
                slot.in_flight = true;
                self.next = (at + 1) % n;
                return Some((slot.stream.clone(), f));
            }
        }
        None
    }

    /// The frame of `stream` taken last is processed: its next frame may be
    /// taken. A stream removed meanwhile goes now.
    pub fn done(&mut self, stream: &str) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.stream == stream) {
            slot.in_flight = false;
            if slot.gone {
                self.remove(stream);
            }
        }
    }

    /// Forgets `stream` and its waiting frame (a robot that went offline).
    /// One in flight stays until its frame is done, so a robot that comes
    /// straight back waits for it and its results stay in order.
    pub fn remove(&mut self, stream: &str) {
        if let Some(at) = self.slots.iter().position(|s| s.stream == stream) {
            if self.slots[at].in_flight {
                self.slots[at].frame = None;
                self.slots[at].gone = true;
                return;
            }
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

    /// A new frame of `stream`; wakes a waiting worker.
    pub fn put(&self, stream: &str, frame: F) {
        self.lock().put(stream, frame);
        self.ready.notify_one();
    }

    /// A worker is done with `stream`'s frame; wakes a waiting worker for
    /// the stream's next frame, if one came meanwhile.
    pub fn done(&self, stream: &str) {
        self.lock().done(stream);
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

    /// Waits for the next frame, round-robin over the streams not in
    /// flight; the caller hands the stream back with [`Inbox::done`].
    /// Cancel-safe: a frame is taken only when this returns.
    pub async fn next(&self) -> (String, F) {
        loop {
            // Registered before the take, so a put or done in between
            // wakes this wait: no frame is missed.
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(got) = self.lock().take() {
                return got;
            }
            ready.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// One worker: takes the next frame and is done with it at once.
    fn serve<F>(m: &mut Mailboxes<F>) -> Option<(String, F)> {
        let got = m.take();
        if let Some((s, _)) = &got {
            m.done(s);
        }
        got
    }

    #[test]
    fn only_the_newest_frame_waits() {
        let mut m = Mailboxes::default();
        assert!(!m.put("a", 1));
        assert!(m.put("a", 2));
        assert!(m.put("a", 3));
        assert_eq!(serve(&mut m), Some(("a".to_string(), 3)));
        assert_eq!(serve(&mut m), None);
        assert_eq!(m.replaced(), 2);
    }

    #[test]
    fn streams_take_turns() {
        let mut m = Mailboxes::default();
        for round in 0..3 {
            for s in ["a", "b", "c"] {
                m.put(s, round);
            }
            let order: Vec<String> = std::iter::from_fn(|| serve(&mut m))
                .map(|(s, _)| s)
                .collect();
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
                if let Some((s, f)) = serve(&mut m) {
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
        assert_eq!(serve(&mut m).map(|(s, _)| s).as_deref(), Some("a"));
        assert_eq!(serve(&mut m).map(|(s, _)| s).as_deref(), Some("b"));
        m.remove("b");
        m.put("a", 1);
        // c was next after b and still is
        assert_eq!(serve(&mut m).map(|(s, _)| s).as_deref(), Some("c"));
        assert_eq!(serve(&mut m).map(|(s, _)| s).as_deref(), Some("a"));
        m.remove("zzz");
        assert_eq!(serve(&mut m), None);
    }

    #[test]
    fn a_stream_in_flight_waits_until_its_frame_is_done() {
        let mut m = Mailboxes::default();
        m.put("a", 1);
        assert_eq!(m.take(), Some(("a".to_string(), 1)));
        m.put("a", 2);
        m.put("b", 1);
        // a second worker gets b, not a's next frame
        assert_eq!(m.take(), Some(("b".to_string(), 1)));
        assert_eq!(m.take(), None, "a is in flight");
        m.put("a", 3);
        assert_eq!(m.take(), None, "a is still in flight");
        m.done("a");
        assert_eq!(m.take(), Some(("a".to_string(), 3)));
        // done for a stream that left, or twice, changes nothing else
        m.remove("b");
        m.done("b");
        m.done("a");
        m.done("a");
        assert_eq!(m.take(), None);
    }

    /// A robot that goes offline while a worker has its frame, and comes
    /// straight back: its new frame waits for the old one to be done.
    #[test]
    fn a_stream_removed_in_flight_keeps_its_order_if_it_comes_back() {
        let mut m = Mailboxes::default();
        m.put("a", 1);
        m.put("b", 1);
        assert_eq!(m.take(), Some(("a".to_string(), 1)));
        m.put("a", 2);
        m.remove("a");
        assert_eq!(
            m.take(),
            Some(("b".to_string(), 1)),
            "a's waiting frame is gone"
        );
        m.put("a", 3);
        assert_eq!(m.take(), None, "a's frame 1 is still in flight");
        m.done("a");
        assert_eq!(m.take(), Some(("a".to_string(), 3)));
        m.done("a");
        // removed in flight and not back: gone once its frame is done
        m.put("a", 4);
        assert_eq!(m.take(), Some(("a".to_string(), 4)));
        m.remove("a");
        m.done("a");
        m.done("b");
        m.remove("b");
        assert_eq!(m.slots.len(), 0);
    }

    /// Two workers at 60 ms a frame on three cameras (30, 10 and 2 fps):
    /// no stream is ever on both workers, each stream's frames come out in
    /// capture order, every frame of the two slower cameras is processed,
    /// and the fast one gets about one worker's worth (it is never on two).
    #[test]
    fn two_workers_keep_order_and_share_fairly() {
        let mut m = Mailboxes::default();
        // per worker: (stream, frame, finishes at ms)
        let mut workers: [Option<(String, u32, u32)>; 2] = [None, None];
        let mut served: HashMap<String, Vec<u32>> = HashMap::new();
        let mut slow_sent = 0;
        for t in 0..20_000u32 {
            for (name, every) in [("fast", 33), ("mid", 100), ("slow", 500)] {
                if t % every == 0 {
                    m.put(name, t);
                    slow_sent += u32::from(name == "slow");
                }
            }
            for w in workers.iter_mut() {
                if let Some((s, f, _)) = w.take_if(|(_, _, end)| *end == t) {
                    served.entry(s.clone()).or_default().push(f);
                    m.done(&s);
                }
            }
            for w in 0..2 {
                if workers[w].is_none() {
                    if let Some((s, f)) = m.take() {
                        let other = &workers[1 - w];
                        assert!(
                            other.as_ref().is_none_or(|(o, _, _)| *o != s),
                            "{s} on both workers at {t} ms"
                        );
                        workers[w] = Some((s, f, t + 60));
                    }
                }
            }
        }
        for (s, frames) in &served {
            assert!(frames.windows(2).all(|w| w[1] > w[0]), "{s} out of order");
        }
        assert_eq!(served["slow"].len() as u32, slow_sent, "every slow frame");
        assert_eq!(served["mid"].len(), 200, "every mid frame");
        // one worker's worth is 20 s / 60 ms = 333 frames
        let fast = served["fast"].len();
        assert!((300..=333).contains(&fast), "fast: {fast}");
    }

    #[tokio::test]
    async fn a_worker_wakes_for_a_frame_that_waited_on_a_stream_in_flight() {
        let inbox: Arc<Inbox<u32>> = Inbox::new();
        inbox.put("r1", 1);
        assert_eq!(inbox.next().await, ("r1".to_string(), 1));
        inbox.put("r1", 2);
        let waiter = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.next().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "r1 is in flight");
        inbox.done("r1");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(got, ("r1".to_string(), 2));
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
