//! AWS IoT's eventual consistency, emulated where it bites.
//!
//! - DetachThingPrincipal is asynchronous on AWS: for a few seconds the
//!   principal stays listed (ListThingPrincipals, ListPrincipalThings) and
//!   DeleteThing and DeleteCertificate refuse as if it were still attached.
//!   The registry row goes at once; a [`Lingering`] entry keeps the
//!   attachment visible to the control plane for `detach_delay`.
//! - Policy changes reach AWS's message broker late (AWS: "several minutes"
//!   in the worst case). With `policy_delay` set, [`PolicyDelay`] keeps the
//!   broker's view of a changed policy attachment or default version as it
//!   was until the delay is over. Off by default.
//!
//! Both live only in memory: a restart completes every pending change.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Thing-principal attachments that were detached and are still visible.
#[derive(Debug, Default)]
pub struct Lingering {
    entries: Mutex<Vec<(String, String, Instant)>>,
}

impl Lingering {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, Instant)>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        e.retain(|(_, _, until)| *until > now);
        e
    }

    /// Records that `principal` was detached from `thing` and stays visible
    /// for `delay`.
    pub fn detached(&self, thing: &str, principal: &str, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        let mut e = self.live();
        e.retain(|(t, p, _)| !(t == thing && p == principal));
        e.push((
            thing.to_string(),
            principal.to_string(),
            Instant::now() + delay,
        ));
    }

    /// Forgets a lingering attachment (it was attached again, or the thing
    /// is gone).
    pub fn attached(&self, thing: &str, principal: &str) {
        self.live()
            .retain(|(t, p, _)| !(t == thing && p == principal));
    }

    /// Principals still visible on `thing`, merged into `attached` (sorted).
    pub fn principals_of(&self, thing: &str, mut attached: Vec<String>) -> Vec<String> {
        for (t, p, _) in self.live().iter() {
            if t == thing && !attached.contains(p) {
                attached.push(p.clone());
            }
        }
        attached.sort();
        attached
    }

    /// Things still visible on `principal`, merged into `attached` (sorted).
    pub fn things_of(&self, principal: &str, mut attached: Vec<String>) -> Vec<String> {
        for (t, p, _) in self.live().iter() {
            if p == principal && !attached.contains(t) {
                attached.push(t.clone());
            }
        }
        attached.sort();
        attached
    }
}

/// A policy change the broker does not see yet.
#[derive(Debug, Clone)]
enum Pending {
    /// `policy` was attached to `target`: the broker ignores it for now.
    Attached { policy: String, target: String },
    /// `policy` was detached from `target`: the broker still applies
    /// `document`.
    Detached {
        policy: String,
        target: String,
        document: String,
    },
    /// `policy` got a new default version: the broker still applies
    /// `document`, the old default.
    NewDefault { policy: String, document: String },
}

/// Policy changes that reach the broker only after a delay.
#[derive(Debug, Default)]
pub struct PolicyDelay {
    entries: Mutex<Vec<(Pending, Instant)>>,
}

impl PolicyDelay {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<(Pending, Instant)>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        e.retain(|(_, until)| *until > now);
        e
    }

    fn push(&self, p: Pending, delay: Duration) {
        if !delay.is_zero() {
            self.live().push((p, Instant::now() + delay));
        }
    }

    /// `policy` was attached to `target`.
    pub fn attached(&self, policy: &str, target: &str, delay: Duration) {
        let mut e = self.live();
        // Attaching again undoes a pending detach: the old view stays until
        // the new change lands, which is what the broker sees anyway.
        e.retain(|(p, _)| !matches!(p, Pending::Detached { policy: q, target: t, .. } if q == policy && t == target));
        drop(e);
        self.push(
            Pending::Attached {
                policy: policy.to_string(),
                target: target.to_string(),
            },
            delay,
        );
    }

    /// `policy`, whose default document was `document`, was detached from
    /// `target`.
    pub fn detached(&self, policy: &str, target: &str, document: String, delay: Duration) {
        let mut e = self.live();
        e.retain(|(p, _)| !matches!(p, Pending::Attached { policy: q, target: t } if q == policy && t == target));
        drop(e);
        self.push(
            Pending::Detached {
                policy: policy.to_string(),
                target: target.to_string(),
                document,
            },
            delay,
        );
    }

    /// `policy`'s default version changed; `old` was the default document.
    pub fn new_default(&self, policy: &str, old: String, delay: Duration) {
        if self
            .live()
            .iter()
            .any(|(p, _)| matches!(p, Pending::NewDefault { policy: q, .. } if q == policy))
        {
            return; // the broker still has the oldest one
        }
        self.push(
            Pending::NewDefault {
                policy: policy.to_string(),
                document: old,
            },
            delay,
        );
    }

    /// The broker's view of `(policy name, document)` for `principal`,
    /// given the registry's current one.
    pub fn broker_view(
        &self,
        principal: &str,
        mut docs: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        for (p, _) in self.live().iter() {
            match p {
                Pending::Attached { policy, target } if target == principal => {
                    docs.retain(|(n, _)| n != policy)
                }
                Pending::Detached {
                    policy,
                    target,
                    document,
                } if target == principal && !docs.iter().any(|(n, _)| n == policy) => {
                    docs.push((policy.clone(), document.clone()))
                }
                Pending::NewDefault { policy, document } => {
                    for (n, d) in docs.iter_mut() {
                        if n == policy {
                            d.clone_from(document);
                        }
                    }
                }
                _ => {}
            }
        }
        docs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_detached_principal_stays_listed_until_the_delay_is_over() {
        let l = Lingering::default();
        l.detached("bot", "arn:cert/a", LONG);
        assert_eq!(l.principals_of("bot", vec![]), ["arn:cert/a"]);
        assert_eq!(l.things_of("arn:cert/a", vec![]), ["bot"]);
        assert!(l.principals_of("other", vec![]).is_empty());
        l.detached("bot", "arn:cert/b", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(l.principals_of("bot", vec![]), ["arn:cert/a"]);
        l.attached("bot", "arn:cert/a");
        assert!(l.principals_of("bot", vec![]).is_empty());
    }

    #[test]
    fn a_zero_delay_detaches_at_once() {
        let l = Lingering::default();
        l.detached("bot", "arn:cert/a", Duration::ZERO);
        assert!(l.principals_of("bot", vec![]).is_empty());
    }

    fn doc(n: &str, d: &str) -> (String, String) {
        (n.to_string(), d.to_string())
    }

    #[test]
    fn the_broker_sees_policy_changes_late() {
        let d = PolicyDelay::default();
        d.attached("new", "cert", LONG);
        d.detached("gone", "cert", "old-gone".into(), LONG);
        d.new_default("kept", "v1".into(), LONG);
        d.new_default("kept", "v2".into(), LONG);
        let now = vec![doc("new", "n"), doc("kept", "v3")];
        let seen = d.broker_view("cert", now.clone());
        assert_eq!(seen, [doc("kept", "v1"), doc("gone", "old-gone")]);
        // Another principal sees the new default too, not the attachments.
        assert_eq!(
            d.broker_view("other", now),
            [doc("new", "n"), doc("kept", "v1")]
        );
    }

    #[test]
    fn without_a_delay_the_broker_sees_the_registry() {
        let d = PolicyDelay::default();
        d.attached("new", "cert", Duration::ZERO);
        d.new_default("kept", "v1".into(), Duration::ZERO);
        let now = vec![doc("new", "n"), doc("kept", "v3")];
        assert_eq!(d.broker_view("cert", now.clone()), now);
    }
}
