//! Wires the MQTT broker to the registry: the [`Authority`] the broker asks
//! (certificate status, attached policies and things, cached and invalidated
//! on every registry change), the shadow service on `$aws/things/+/shadow/#`,
//! and disconnecting devices whose certificate leaves ACTIVE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gopigo_broker::{Authority, BrokerHandle};
use gopigo_policy::PolicyDocument;
use gopigo_shadow::ShadowOp;

use crate::{CoreEvent, CoreState};

/// Parsed policies and attached things per principal.
type PrincipalCache = HashMap<String, (Vec<Arc<PolicyDocument>>, Vec<String>)>;

/// The registry as the broker sees it.
pub struct RegistryAuthority {
    state: Arc<CoreState>,
    cache: Mutex<PrincipalCache>,
}

impl RegistryAuthority {
    /// An authority over `state`; call [`RegistryAuthority::invalidate`] on
    /// registry changes (the core does).
    pub fn new(state: Arc<CoreState>) -> Self {
        RegistryAuthority {
            state,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached principal.
    pub fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn load(&self, principal: &str) -> (Vec<Arc<PolicyDocument>>, Vec<String>) {
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(principal)
        {
            return hit.clone();
        }
        // The principal's own policies, then those of its things' groups
        // (AWS: a group's policies apply to the things in it and below it).
        let group_prefix = self.state.arn("thinggroup/");
        let docs = match self
            .state
            .store
            .policy_documents_for_target(principal)
            .and_then(|mut own| {
                let groups = self
                    .state
                    .store
                    .group_policy_documents_for_principal(principal, &group_prefix)?;
                for g in groups {
                    if !own.iter().any(|(n, _)| *n == g.0) {
                        own.push(g);
                    }
                }
                Ok(own)
            }) {
            Ok(docs) => self.state.policy_pending.broker_view(principal, docs),
            Err(e) => {
                tracing::error!(principal, error = %e, "cannot read policies; denying");
                return (Vec::new(), Vec::new());
            }
        };
        let policies: Vec<Arc<PolicyDocument>> = docs
            .into_iter()
            .filter_map(|(name, doc)| match PolicyDocument::parse(&doc) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    // Documents are validated on the way in; this would be a
                    // store written by another version. Deny rather than guess.
                    tracing::error!(policy = %name, error = %e, "stored policy does not parse; ignoring it");
                    None
                }
            })
            .collect();
        let things = self
            .state
            .store
            .principal_things(principal)
            .unwrap_or_default();
        let entry = (policies, things);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(principal.to_string(), entry.clone());
        entry
    }
}

impl Authority for RegistryAuthority {
    fn certificate_active(&self, certificate_id: &str) -> bool {
        matches!(
            self.state.store.certificate(certificate_id),
            Ok(Some(c)) if c.status == "ACTIVE"
        )
    }

    fn policies_for(&self, principal_arn: &str) -> Vec<Arc<PolicyDocument>> {
        self.load(principal_arn).0
    }

    fn things_for(&self, principal_arn: &str) -> Vec<String> {
        self.load(principal_arn).1
    }

    fn registered_cas(&self) -> Vec<Vec<u8>> {
        crate::registration::trusted_cas(&self.state)
    }

    fn registered_without_ca(&self, certificate_id: &str) -> bool {
        crate::registration::registered_without_ca(&self.state, certificate_id)
    }
}

/// Follows registry events: drops cached authorizations, disconnects devices
/// whose certificate left ACTIVE. Runs until the event channel closes.
pub async fn follow_registry(
    mut events: tokio::sync::broadcast::Receiver<CoreEvent>,
    authority: Arc<RegistryAuthority>,
    broker: BrokerHandle,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(CoreEvent::RegistryChanged) => authority.invalidate(),
            Ok(CoreEvent::CertificateDeactivated(id)) => {
                authority.invalidate();
                let n = broker.disconnect_certificate(&id);
                tracing::info!(certificate = %id, connections = n, "disconnected devices of a certificate that left ACTIVE");
            }
            Err(RecvError::Lagged(_)) => authority.invalidate(),
            Err(RecvError::Closed) => return,
        }
    }
}

/// The Device Shadow service over MQTT: answers requests published to
/// `$aws/things/{thing}/shadow/[name/{n}/]get|update|delete`.
pub async fn shadow_service(state: Arc<CoreState>, broker: BrokerHandle) {
    let mut requests = broker.subscribe_internal("$aws/things/+/shadow/#");
    while let Some((topic, payload)) = requests.recv().await {
        let Some(req) = gopigo_shadow::parse_request_topic(&topic) else {
            continue; // our own responses, or not a shadow request
        };
        let (thing, name, op) = (
            req.thing.to_string(),
            req.shadow_name.map(str::to_string),
            req.op,
        );
        let st = state.clone();
        let out = tokio::task::spawn_blocking(move || {
            crate::shadow::handle(&st, &thing, name.as_deref(), op, &payload)
                .map(|o| (o, thing, name))
        })
        .await;
        let (out, thing, name) = match out {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(topic = %topic, error = %e, "shadow request failed");
                continue;
            }
            Err(e) => {
                tracing::error!(topic = %topic, error = %e, "shadow task failed");
                continue;
            }
        };
        let now = crate::shadow::now();
        match out.result {
            Ok(accepted) => {
                if op == ShadowOp::Get {
                    let t = gopigo_shadow::response_topic(&thing, name.as_deref(), op, "accepted");
                    broker.publish(&t, Bytes::from(accepted.to_string()), 1, false);
                }
                for (t, p) in out.notifications {
                    broker.publish(&t, Bytes::from(p.to_string()), 1, false);
                }
            }
            Err((e, token)) => {
                let t = gopigo_shadow::response_topic(&thing, name.as_deref(), op, "rejected");
                let p = e.rejected_payload(token.as_deref(), now);
                broker.publish(&t, Bytes::from(p.to_string()), 1, false);
            }
        }
    }
}
