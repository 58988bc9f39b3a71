//! Per-connection authorization: the policy variables of one connection and
//! the checks for `iot:Connect`, `iot:Publish`, `iot:RetainPublish`,
//! `iot:Subscribe` and `iot:Receive`, evaluated by `gopigo-policy`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gopigo_policy::{Context, PolicyDocument};

use crate::config::BrokerConfig;
use crate::tls::ClientIdentity;
use crate::Authority;

/// IoT policy actions the broker checks.
pub mod actions {
    /// CONNECT, on `client/{clientId}`.
    pub const CONNECT: &str = "iot:Connect";
    /// PUBLISH, on `topic/{topic}`.
    pub const PUBLISH: &str = "iot:Publish";
    /// PUBLISH with RETAIN=1, on `topic/{topic}`, in addition to `iot:Publish`.
    pub const RETAIN_PUBLISH: &str = "iot:RetainPublish";
    /// SUBSCRIBE, on `topicfilter/{filter}`.
    pub const SUBSCRIBE: &str = "iot:Subscribe";
    /// Each delivery, on `topic/{topic}`.
    pub const RECEIVE: &str = "iot:Receive";
}

/// The policy context of one connection, built from its certificate, its
/// client id and the things its principal is attached to. An empty
/// `client_id` (HTTPS publish) leaves client and thing variables unresolved.
pub fn connection_context(
    identity: &ClientIdentity,
    client_id: &str,
    things: &[String],
    source_ip: Option<&str>,
) -> Context {
    let mut ctx = Context::new().with("iot:CertificateId", identity.certificate_id.as_str());
    set_certificate_variables(&mut ctx, identity);
    if client_id.is_empty() {
        // No MQTT client (HTTPS publish): client and thing variables stay unresolved.
        return ctx;
    }
    ctx.set("iot:ClientId", client_id);
    if let Some(ip) = source_ip {
        ctx.set("aws:SourceIp", ip);
    }
    let attached = things.iter().any(|t| t == client_id);
    if attached {
        ctx.set("iot:Connection.Thing.ThingName", client_id);
    }
    ctx.set(
        "iot:Connection.Thing.IsAttached",
        if attached { "true" } else { "false" },
    );
    ctx
}

/// Each `iot:Certificate.*` variable with every value the certificate
/// gives it, so `${..CommonName}` is the first, and `..CommonName.List` and
/// `..CommonName.N` reach the others, as on AWS.
fn set_certificate_variables(ctx: &mut Context, identity: &ClientIdentity) {
    let mut values: Vec<(&str, Vec<String>)> = Vec::new();
    for (k, v) in &identity.certificate_variables {
        match values.iter_mut().find(|(name, _)| name == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => values.push((k, vec![v.clone()])),
        }
    }
    for (k, vs) in values {
        ctx.set_multi(k, vs);
    }
}

/// Whether `policies` allow `action` on `resource_arn` in `ctx`.
pub fn allowed(
    policies: &[Arc<PolicyDocument>],
    action: &str,
    resource_arn: &str,
    ctx: &Context,
) -> bool {
    gopigo_policy::evaluate(
        policies.iter().map(|p| p.as_ref()),
        action,
        resource_arn,
        ctx,
    )
    .is_allowed()
}

/// The authorizer of one connection: caches its policies for
/// [`BrokerConfig::policy_refresh`].
pub struct ConnectionAuthz {
    authority: Arc<dyn Authority>,
    config: Arc<BrokerConfig>,
    identity: ClientIdentity,
    principal: String,
    client_id: String,
    source_ip: Option<String>,
    ctx: Context,
    policies: Vec<Arc<PolicyDocument>>,
    fetched: Instant,
    /// Decisions by (action, resource), valid until the next refresh.
    decisions: HashMap<(&'static str, String), bool>,
}

/// Most cached decisions per connection.
const MAX_CACHED_DECISIONS: usize = 1024;

impl ConnectionAuthz {
    /// Fetches policies and things for the connection's principal.
    pub fn new(
        authority: Arc<dyn Authority>,
        config: Arc<BrokerConfig>,
        identity: ClientIdentity,
        client_id: &str,
        source_ip: Option<String>,
    ) -> Self {
        let principal = config.cert_arn(&identity.certificate_id);
        let mut me = ConnectionAuthz {
            authority,
            config,
            identity,
            principal,
            client_id: client_id.to_owned(),
            source_ip,
            ctx: Context::new(),
            policies: Vec::new(),
            fetched: Instant::now(),
            decisions: HashMap::new(),
        };
        me.refresh();
        me
    }

    fn refresh(&mut self) {
        let things = self.authority.things_for(&self.principal);
        self.ctx = connection_context(
            &self.identity,
            &self.client_id,
            &things,
            self.source_ip.as_deref(),
        );
        self.policies = self.authority.policies_for(&self.principal);
        self.fetched = Instant::now();
        self.decisions.clear();
    }

    fn maybe_refresh(&mut self) {
        if self.fetched.elapsed() >= self.config.policy_refresh {
            self.refresh();
        }
    }

    /// The principal ARN.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The client certificate's identity.
    pub fn identity(&self) -> &ClientIdentity {
        &self.identity
    }

    fn check(&mut self, action: &'static str, resource: &str) -> bool {
        self.maybe_refresh();
        if let Some(ok) = self.decisions.get(&(action, resource.to_owned())) {
            return *ok;
        }
        let arn = self.config.arn(resource);
        let ok = allowed(&self.policies, action, &arn, &self.ctx);
        if self.decisions.len() >= MAX_CACHED_DECISIONS {
            self.decisions.clear();
        }
        self.decisions.insert((action, resource.to_owned()), ok);
        if !ok {
            tracing::info!(client_id = %self.client_id, action, resource = %arn, "denied by policy");
        }
        ok
    }

    /// `iot:Connect` on `client/{clientId}`.
    pub fn connect(&mut self) -> bool {
        let resource = format!("client/{}", self.client_id);
        self.check(actions::CONNECT, &resource)
    }

    /// `iot:Publish` (and `iot:RetainPublish` when `retain`) on `topic/{topic}`.
    pub fn publish(&mut self, topic: &str, retain: bool) -> bool {
        let resource = format!("topic/{topic}");
        self.check(actions::PUBLISH, &resource)
            && (!retain || self.check(actions::RETAIN_PUBLISH, &resource))
    }

    /// `iot:Subscribe` on `topicfilter/{filter}`.
    pub fn subscribe(&mut self, filter: &str) -> bool {
        self.check(actions::SUBSCRIBE, &format!("topicfilter/{filter}"))
    }

    /// `iot:Receive` on `topic/{topic}`.
    pub fn receive(&mut self, topic: &str) -> bool {
        self.check(actions::RECEIVE, &format!("topic/{topic}"))
    }

    /// Whether the certificate is still ACTIVE.
    pub fn certificate_active(&self) -> bool {
        self.authority
            .certificate_active(&self.identity.certificate_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn identity() -> ClientIdentity {
        ClientIdentity {
            certificate_id: "abc".into(),
            certificate_variables: vec![(
                "iot:Certificate.Subject.CommonName".into(),
                "robot1".into(),
            )],
        }
    }

    #[test]
    fn thing_variables_resolve_only_for_an_attached_thing_named_by_the_client_id() {
        let things = vec!["r1".to_string()];
        let cases = [
            ("r1", Some("r1"), "true"),
            ("r2", None, "false"),
            ("controller", None, "false"),
        ];
        for (client_id, thing, attached) in cases {
            let ctx = connection_context(&identity(), client_id, &things, None);
            assert_eq!(ctx.get("iot:ClientId"), Some(client_id));
            assert_eq!(
                ctx.get("iot:Connection.Thing.ThingName"),
                thing,
                "{client_id}"
            );
            assert_eq!(ctx.get("iot:Connection.Thing.IsAttached"), Some(attached));
            assert_eq!(
                ctx.get("iot:Certificate.Subject.CommonName"),
                Some("robot1")
            );
        }
        let https = connection_context(&identity(), "", &things, None);
        assert_eq!(https.get("iot:ClientId"), None);
        assert_eq!(https.get("iot:Connection.Thing.ThingName"), None);
    }

    #[test]
    fn policy_with_thing_variable() {
        let doc = Arc::new(
            PolicyDocument::parse(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",
                "Resource":"arn:aws:iot:us-east-1:1:topic/gopigo/${iot:Connection.Thing.ThingName}/*"}]}"#,
            )
            .unwrap(),
        );
        let ctx = connection_context(&identity(), "r1", &["r1".to_string()], None);
        let policies = [doc];
        let cases = [
            ("arn:aws:iot:us-east-1:1:topic/gopigo/r1/telemetry", true),
            ("arn:aws:iot:us-east-1:1:topic/gopigo/r2/telemetry", false),
        ];
        for (arn, want) in cases {
            assert_eq!(
                allowed(&policies, actions::PUBLISH, arn, &ctx),
                want,
                "{arn}"
            );
        }
    }

    #[test]
    fn certificate_variables_from_a_real_certificate_reach_the_policy() {
        // OpenSSL's certificate with every attribute AWS names (pki's fixture).
        let pem = include_str!("../../pki/testdata/openssl-all-attributes.pem");
        let der = gopigo_pki::parse_certificate_pem(pem).unwrap().der;
        let identity = ClientIdentity::from_der(&der);
        assert_eq!(identity.certificate_id, gopigo_pki::certificate_id(&der));
        let ctx = connection_context(&identity, "r1", &[], None);
        let cases = [
            ("iot:Certificate.Subject.Pseudonym", Some("RGB Device")),
            ("iot:Certificate.Issuer.Pseudonym", Some("RGB Device")),
            (
                "iot:Certificate.Subject.CommonName",
                Some("LightBulb Device Cert"),
            ),
            ("iot:Certificate.Subject.CommonName.1", Some("second cn")),
            ("iot:Certificate.Subject.GenerationQualifier", Some("4")),
            ("iot:Certificate.SerialNumber", Some("921285cbb7a5e086")),
        ];
        for (key, want) in cases {
            assert_eq!(ctx.get(key), want, "{key}");
        }

        let doc = Arc::new(
            PolicyDocument::parse(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish",
                "Resource":"arn:aws:iot:us-east-1:1:topic/by/${iot:Certificate.Subject.Pseudonym}",
                "Condition":{"ForAnyValue:StringEquals":
                  {"iot:Certificate.Subject.CommonName.List":"second cn"}}}]}"#,
            )
            .unwrap(),
        );
        let policies = [doc];
        let cases = [
            ("arn:aws:iot:us-east-1:1:topic/by/RGB Device", true),
            ("arn:aws:iot:us-east-1:1:topic/by/other", false),
        ];
        for (arn, want) in cases {
            assert_eq!(
                allowed(&policies, actions::PUBLISH, arn, &ctx),
                want,
                "{arn}"
            );
        }
    }
}
