//! `provision` and `deprovision`: look at what exists, plan, apply, write
//! the bundle. The private key is made here and never sent anywhere.

use std::path::PathBuf;
use std::time::Duration;

use gopigo_pki::KeyAlgorithm;
use serde_json::Value;

use crate::api::IotClient;
use crate::bundle::{self, BundlePaths, Written};
use crate::plan::{
    self, CertState, Observed, ObservedPolicy, ObservedPrincipal, Step, TeardownStep,
};
use crate::policy::{policy_document, region_account_of_arn, Role};
use crate::ProvisionError;

/// Which CA file goes into the bundle as `ca.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// Copy this file (the local core's CA, or one you chose).
    File(PathBuf),
    /// The embedded Amazon Root CA 1 and Root CA 3 (AWS ATS endpoints).
    AmazonRoots,
}

/// What to provision.
#[derive(Clone, Debug)]
pub struct ProvisionOptions {
    /// Thing name, also the MQTT client id.
    pub thing: String,
    /// Robot or controller.
    pub role: Role,
    /// Where the bundle is written.
    pub bundle_dir: PathBuf,
    /// Where the bundle's files will be on the device (paths in `robot.toml`);
    /// `None`: beside `robot.toml` (plain file names, relative to it).
    pub install_dir: Option<PathBuf>,
    /// The CA for `ca.pem`.
    pub ca: CaSource,
    /// MQTT host for `robot.toml`; `None`: what `DescribeEndpoint` says.
    pub mqtt_host: Option<String>,
    /// MQTT port for `robot.toml` (8883; 443 turns ALPN on).
    pub mqtt_port: u16,
    /// Use ALPN `x-amzn-mqtt-ca` on any port (the local core's ALPN port).
    pub alpn: bool,
    /// Sign this CSR (made elsewhere) instead of making a key here.
    pub csr_file: Option<PathBuf>,
    /// Key type when a key is made.
    pub key_algorithm: KeyAlgorithm,
    /// Region and account for the policy ARNs when nothing in the registry
    /// says them yet (the local core's `endpoints.json`).
    pub region_account: Option<(String, String)>,
}

/// What `provision` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionReport {
    /// One line per change, in order; empty when nothing changed.
    pub changes: Vec<String>,
    /// certificateId in use.
    pub certificate_id: String,
    /// certificateArn in use.
    pub certificate_arn: String,
    /// MQTT host written to `robot.toml`.
    pub endpoint: String,
    /// The bundle's `robot.toml`.
    pub config_path: PathBuf,
}

/// Checks a thing name against AWS's rule `[a-zA-Z0-9:_-]{1,128}`.
pub fn check_thing_name(thing: &str) -> Result<(), ProvisionError> {
    if gopigo_protocol::valid_thing_name(thing) {
        Ok(())
    } else {
        Err(ProvisionError::Invalid(format!(
            "thing name {thing:?} is not allowed: use 1 to 128 letters, digits, ':', '_' or '-'"
        )))
    }
}

fn cert_id_of_arn(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// Provisions one thing; see the crate docs for the steps.
pub async fn provision(
    client: &IotClient,
    opts: &ProvisionOptions,
) -> Result<ProvisionReport, ProvisionError> {
    check_thing_name(&opts.thing)?;
    let paths = BundlePaths::new(&opts.bundle_dir);
    std::fs::create_dir_all(&paths.dir).map_err(|e| ProvisionError::io("create", &paths.dir, e))?;
    let local = LocalKey::read(opts, &paths)?;
    let certificate = bundle_certificate(client, &paths, local.public_key()?.as_deref()).await?;
    if let CertState::Unusable { reason } = &certificate {
        tracing::info!(thing = %opts.thing, "{reason}; a new certificate will be signed");
    }
    let (observed, region_account) = observe(client, opts, certificate).await?;
    let desired_for_plan = region_account
        .as_ref()
        .map(|(r, a)| policy_document(opts.role, r, a))
        .unwrap_or(Value::Null);
    let steps = plan::plan(&observed, opts.role.policy_name(), &desired_for_plan);

    let mut apply = Apply::new(client, opts, &paths, &local, &observed.certificate);
    apply.region_account = region_account;
    for step in &steps {
        apply.step(step).await?;
    }
    let endpoint = match &opts.mqtt_host {
        Some(h) => h.clone(),
        None => client.describe_endpoint().await?,
    };
    let Apply {
        mut changes,
        new_cert_pem,
        mismatch,
        cert_id,
        cert_arn,
        ..
    } = apply;
    if let Some(id) = mismatch {
        return Err(ProvisionError::CertificateMismatch {
            id,
            thing: opts.thing.clone(),
            done: changes,
        });
    }
    write_bundle(
        opts,
        &paths,
        &endpoint,
        new_cert_pem.as_deref(),
        &mut changes,
    )?;
    Ok(ProvisionReport {
        changes,
        certificate_id: cert_id,
        certificate_arn: cert_arn,
        endpoint,
        config_path: paths.config(),
    })
}

/// What our public key comes from: the CSR given with `--csr`, else the
/// bundle's `key.pem`; neither on a first run (a key is made then).
struct LocalKey {
    csr: Option<String>,
    key: Option<String>,
}

impl LocalKey {
    fn read(opts: &ProvisionOptions, paths: &BundlePaths) -> Result<Self, ProvisionError> {
        let csr = match &opts.csr_file {
            Some(p) => {
                Some(std::fs::read_to_string(p).map_err(|e| ProvisionError::io("read", p, e))?)
            }
            None => None,
        };
        let key = match std::fs::read_to_string(paths.key()) {
            Ok(t) if csr.is_none() => Some(t),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ProvisionError::io("read", &paths.key(), e)),
        };
        if csr.is_none() && key.is_none() && paths.cert().exists() {
            // A bundle made with --csr: its key lives elsewhere. Making a new key
            // here would silently replace the device's certificate.
            return Err(ProvisionError::Invalid(format!(
                "{} exists but {} does not: this bundle was made from a CSR (--csr), whose key is on \
                 the device; pass the same --csr again, or remove cert.pem to start over with a \
                 key made here",
                paths.cert().display(),
                paths.key().display()
            )));
        }
        Ok(LocalKey { csr, key })
    }

    /// The public key (SubjectPublicKeyInfo DER), when there is a CSR or a key.
    fn public_key(&self) -> Result<Option<Vec<u8>>, ProvisionError> {
        Ok(match (&self.csr, &self.key) {
            (Some(csr), _) => Some(gopigo_pki::csr_public_key_der(csr)?),
            (None, Some(key)) => Some(gopigo_pki::private_key_public_key_der(key)?),
            (None, None) => None,
        })
    }
}

/// The bundle's certificate: reusable if it carries our key and is ACTIVE.
async fn bundle_certificate(
    client: &IotClient,
    paths: &BundlePaths,
    our_public_key: Option<&[u8]>,
) -> Result<CertState, ProvisionError> {
    let (Ok(pem), Some(pk)) = (std::fs::read_to_string(paths.cert()), our_public_key) else {
        return Ok(CertState::Missing);
    };
    let info = match gopigo_pki::parse_certificate_pem(&pem) {
        Ok(info) if info.public_key_der == pk => info,
        Ok(_) => {
            return Ok(CertState::Unusable {
                reason: format!(
                    "{} is not the certificate of this key",
                    paths.cert().display()
                ),
            })
        }
        Err(e) => {
            return Ok(CertState::Unusable {
                reason: format!("{} is unreadable: {e}", paths.cert().display()),
            })
        }
    };
    Ok(match client.describe_certificate(&info.id).await? {
        Some((arn, status)) if status == "ACTIVE" => CertState::Active { id: info.id, arn },
        Some((_, status)) => CertState::Unusable {
            reason: format!("certificate {} is {status}", info.id),
        },
        None => CertState::Unusable {
            reason: format!("certificate {} is not registered", info.id),
        },
    })
}

/// What the registry holds for this thing, its certificate and its role's
/// policy; and the region and account for the policy ARNs, from the
/// registry's own ARNs first, else from `opts`.
async fn observe(
    client: &IotClient,
    opts: &ProvisionOptions,
    certificate: CertState,
) -> Result<(Observed, Option<(String, String)>), ProvisionError> {
    let policy_name = opts.role.policy_name();
    let thing_exists = client.describe_thing(&opts.thing).await?.is_some();
    let thing_principals = if thing_exists {
        client.list_thing_principals(&opts.thing).await?
    } else {
        Vec::new()
    };
    let existing_policy = client.get_policy(policy_name).await?;
    let policy = match &existing_policy {
        Some(p) => Some(ObservedPolicy {
            document: p.document.clone(),
            versions: client.list_policy_versions(policy_name).await?,
        }),
        None => None,
    };
    let (certificate_policies, cert_arn_region) = match &certificate {
        CertState::Active { arn, .. } => (
            client.list_attached_policies(arn).await?,
            region_account_of_arn(arn),
        ),
        _ => (Vec::new(), None),
    };
    let region_account = cert_arn_region
        .or_else(|| {
            existing_policy
                .as_ref()
                .and_then(|p| region_account_of_arn(&p.arn))
        })
        .or_else(|| opts.region_account.clone());
    let observed = Observed {
        thing_exists,
        certificate,
        policy,
        certificate_policies,
        thing_principals,
    };
    Ok((observed, region_account))
}

/// The plan being applied: what changed so far and the certificate in use.
struct Apply<'a> {
    client: &'a IotClient,
    opts: &'a ProvisionOptions,
    paths: &'a BundlePaths,
    local: &'a LocalKey,
    region_account: Option<(String, String)>,
    changes: Vec<String>,
    new_cert_pem: Option<String>,
    /// The id of a signed certificate that does not carry our key.
    mismatch: Option<String>,
    cert_id: String,
    cert_arn: String,
}

impl<'a> Apply<'a> {
    fn new(
        client: &'a IotClient,
        opts: &'a ProvisionOptions,
        paths: &'a BundlePaths,
        local: &'a LocalKey,
        certificate: &CertState,
    ) -> Self {
        let (cert_id, cert_arn) = match certificate {
            CertState::Active { id, arn } => (id.clone(), arn.clone()),
            _ => (String::new(), String::new()),
        };
        Apply {
            client,
            opts,
            paths,
            local,
            region_account: None,
            changes: Vec::new(),
            new_cert_pem: None,
            mismatch: None,
            cert_id,
            cert_arn,
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), ProvisionError> {
        let (client, policy_name) = (self.client, self.opts.role.policy_name());
        match step {
            Step::CreateCertificate => self.create_certificate().await?,
            Step::CreateThing => {
                client.create_thing(&self.opts.thing).await?;
                self.changes
                    .push(format!("created thing {}", self.opts.thing));
            }
            Step::CreatePolicy => {
                let doc = desired(&self.region_account, self.opts.role, &self.cert_arn)?;
                match client.create_policy(policy_name, &doc).await {
                    Ok(()) => self.changes.push(format!("created policy {policy_name}")),
                    // Another provisioning run (a second robot) made it meanwhile.
                    Err(ProvisionError::Api(f)) if f.code == "ResourceAlreadyExistsException" => {
                        tracing::info!(policy = policy_name, "policy appeared meanwhile; using it");
                    }
                    Err(e) => return Err(e),
                }
            }
            Step::DeletePolicyVersion(v) => {
                client.delete_policy_version(policy_name, v).await?;
                self.changes
                    .push(format!("deleted old version {v} of policy {policy_name}"));
            }
            Step::CreatePolicyVersion => {
                let doc = desired(&self.region_account, self.opts.role, &self.cert_arn)?;
                let v = client.create_policy_version(policy_name, &doc).await?;
                self.changes.push(format!(
                    "policy {policy_name} differed from the template: made version {v} the default"
                ));
            }
            Step::AttachPolicy => {
                client.attach_policy(policy_name, &self.cert_arn).await?;
                self.changes.push(format!(
                    "attached policy {policy_name} to certificate {}",
                    self.cert_id
                ));
            }
            Step::AttachThingPrincipal => {
                client
                    .attach_thing_principal(&self.opts.thing, &self.cert_arn)
                    .await?;
                self.changes.push(format!(
                    "attached certificate {} to thing {}",
                    self.cert_id, self.opts.thing
                ));
            }
        }
        Ok(())
    }

    /// Signs a certificate for our key: from the CSR given, or a CSR made
    /// from the bundle's key, or from a new key, written (0600) before
    /// anything is signed so that a key is never lost.
    async fn create_certificate(&mut self) -> Result<(), ProvisionError> {
        let (opts, key_path) = (self.opts, self.paths.key());
        let (csr, public_key) = match (&self.local.csr, &self.local.key) {
            (Some(csr), _) => (csr.clone(), gopigo_pki::csr_public_key_der(csr)?),
            (None, Some(key)) => (
                gopigo_pki::create_csr(key, &opts.thing)?,
                gopigo_pki::private_key_public_key_der(key)?,
            ),
            (None, None) => {
                let key = gopigo_pki::generate_key(opts.key_algorithm)?;
                gopigo_pki::write_new_private_file(&key_path, key.private_key_pem.as_bytes())?;
                self.changes.push(format!(
                    "made a new {} private key {} (mode 0600; it never leaves this machine)",
                    opts.key_algorithm,
                    key_path.display()
                ));
                (
                    gopigo_pki::create_csr(&key.private_key_pem, &opts.thing)?,
                    gopigo_pki::private_key_public_key_der(&key.private_key_pem)?,
                )
            }
        };
        let signed = self.client.create_certificate_from_csr(&csr).await?;
        let info = gopigo_pki::parse_certificate_pem(&signed.pem)?;
        if info.public_key_der != public_key {
            self.mismatch = Some(signed.id.clone());
        }
        self.changes.push(format!(
            "signed certificate {} (ACTIVE) from the CSR",
            signed.id
        ));
        if self.region_account.is_none() {
            self.region_account = region_account_of_arn(&signed.arn);
        }
        self.cert_id = signed.id;
        self.cert_arn = signed.arn;
        self.new_cert_pem = Some(signed.pem);
        Ok(())
    }
}

/// Writes the bundle: the new certificate (if one was signed), `ca.pem` and
/// `robot.toml` (each only when it changed), noting each in `changes`.
fn write_bundle(
    opts: &ProvisionOptions,
    paths: &BundlePaths,
    endpoint: &str,
    new_cert_pem: Option<&str>,
    changes: &mut Vec<String>,
) -> Result<(), ProvisionError> {
    if let Some(pem) = new_cert_pem {
        std::fs::write(paths.cert(), pem)
            .map_err(|e| ProvisionError::io("write", &paths.cert(), e))?;
        changes.push(format!("wrote {}", paths.cert().display()));
    }
    let ca_pem = match &opts.ca {
        CaSource::AmazonRoots => bundle::amazon_roots_pem().into_bytes(),
        CaSource::File(p) => {
            std::fs::read(p).map_err(|e| ProvisionError::io("read CA file", p, e))?
        }
    };
    if bundle::write_if_changed(&paths.ca(), &ca_pem)? == Written::Changed {
        changes.push(format!("wrote {}", paths.ca().display()));
    }
    // Without --install-dir the files sit beside robot.toml: plain names,
    // which the agent and the controller take relative to the file, so the
    // bundle still works when moved or copied as a whole.
    let files_dir = opts.install_dir.clone().unwrap_or_default();
    let config =
        bundle::render_config(&opts.thing, endpoint, opts.mqtt_port, opts.alpn, &files_dir)?;
    if bundle::write_if_changed(&paths.config(), config.as_bytes())? == Written::Changed {
        changes.push(format!("wrote {}", paths.config().display()));
    }
    Ok(())
}

fn desired(
    region_account: &Option<(String, String)>,
    role: Role,
    cert_arn: &str,
) -> Result<Value, ProvisionError> {
    let (r, a) = region_account.clone().ok_or_else(|| {
        ProvisionError::Invalid(format!(
            "cannot tell the region and account for the policy ARNs from certificate ARN {cert_arn:?}"
        ))
    })?;
    Ok(policy_document(role, &r, &a))
}

/// What `deprovision` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeprovisionReport {
    /// One line per change; empty when there was nothing to remove.
    pub changes: Vec<String>,
    /// Policies kept because other certificates still use them.
    pub kept_policies: Vec<String>,
}

/// Removes a thing: detaches policies and certificates, deactivates and
/// deletes the certificates, deletes the thing. With `delete_policies`, the
/// policies detached on the way are deleted too when nothing else uses them.
pub async fn deprovision(
    client: &IotClient,
    thing: &str,
    delete_policies: bool,
) -> Result<DeprovisionReport, ProvisionError> {
    check_thing_name(thing)?;
    let exists = client.describe_thing(thing).await?.is_some();
    let mut principals = Vec::new();
    if exists {
        for arn in client.list_thing_principals(thing).await? {
            let id = cert_id_of_arn(&arn);
            let status = if arn.contains(":cert/") {
                client.describe_certificate(&id).await?.map(|(_, s)| s)
            } else {
                None
            };
            let policies = client.list_attached_policies(&arn).await?;
            principals.push(ObservedPrincipal {
                arn,
                id,
                status,
                policies,
            });
        }
    }
    let steps = plan::teardown(exists, &principals);
    let mut changes = Vec::new();
    let mut detached: Vec<String> = Vec::new();
    for step in &steps {
        if let TeardownStep::DetachPolicy { policy, .. } = step {
            if !detached.contains(policy) {
                detached.push(policy.clone());
            }
        }
        run_teardown_step(client, thing, step).await?;
        changes.push(step.to_string());
    }
    let mut kept = Vec::new();
    if delete_policies {
        for policy in detached {
            for v in client.list_policy_versions(&policy).await? {
                if !v.is_default {
                    client.delete_policy_version(&policy, &v.id).await?;
                }
            }
            if client.delete_policy(&policy).await? {
                changes.push(format!("delete policy {policy}"));
            } else {
                kept.push(policy);
            }
        }
    }
    Ok(DeprovisionReport {
        changes,
        kept_policies: kept,
    })
}

/// How long deprovision waits for a detached certificate to leave the thing.
/// AWS detaches asynchronously ("DetachThingPrincipal ... is an asynchronous
/// operation"), usually within seconds.
pub const DETACH_WAIT: Duration = Duration::from_secs(60);

async fn run_teardown_step(
    client: &IotClient,
    thing: &str,
    step: &TeardownStep,
) -> Result<(), ProvisionError> {
    match step {
        TeardownStep::DetachPolicy { policy, principal } => {
            client.detach_policy(policy, principal).await
        }
        TeardownStep::DetachThingPrincipal { principal } => {
            client.detach_thing_principal(thing, principal).await?;
            wait_until_detached(client, thing, principal).await
        }
        TeardownStep::Deactivate { id } => client.update_certificate(id, "INACTIVE").await,
        TeardownStep::DeleteCertificate { id } => {
            retry_while_attached(|| client.delete_certificate(id)).await
        }
        TeardownStep::DeleteThing => retry_while_attached(|| client.delete_thing(thing)).await,
    }
}

/// Delays between polls: 250 ms doubling to 4 s, until `DETACH_WAIT` is spent.
fn poll_delays() -> impl Iterator<Item = Duration> {
    let mut spent = Duration::ZERO;
    std::iter::successors(Some(Duration::from_millis(250)), |d| {
        Some((*d * 2).min(Duration::from_secs(4)))
    })
    .take_while(move |d| {
        spent += *d;
        spent <= DETACH_WAIT
    })
}

/// Polls ListThingPrincipals until `principal` is gone from `thing`.
async fn wait_until_detached(
    client: &IotClient,
    thing: &str,
    principal: &str,
) -> Result<(), ProvisionError> {
    let mut delays = poll_delays();
    loop {
        let listed = client.list_thing_principals(thing).await?;
        if !listed.iter().any(|p| p == principal) {
            return Ok(());
        }
        match delays.next() {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                return Err(ProvisionError::Invalid(format!(
                "{principal} is still attached to thing {thing} {} s after DetachThingPrincipal; \
                     run `gopigo deprovision --thing {thing}` again in a minute",
                DETACH_WAIT.as_secs()
            )))
            }
        }
    }
}

/// Whether an API error is AWS's answer to a detach that has not landed yet:
/// DeleteCertificate's DeleteConflictException, or DeleteThing's
/// InvalidRequestException "... is still attached to one or more principals".
fn still_attached(e: &ProvisionError) -> bool {
    match e {
        ProvisionError::Api(f) => {
            f.code == "DeleteConflictException"
                || (f.code == "InvalidRequestException" && f.message.contains("still attached"))
        }
        _ => false,
    }
}

/// Runs `op`, retrying with backoff while AWS still sees an attachment.
async fn retry_while_attached<F, Fut>(mut op: F) -> Result<(), ProvisionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProvisionError>>,
{
    let mut delays = poll_delays();
    loop {
        match op().await {
            Err(e) if still_attached(&e) => match delays.next() {
                Some(d) => {
                    tracing::info!(error = %e, delay_ms = d.as_millis() as u64, "still attached; retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_delays_back_off_within_the_wait() {
        let d: Vec<Duration> = poll_delays().collect();
        assert_eq!(d[0], Duration::from_millis(250));
        assert_eq!(d[1], Duration::from_millis(500));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(4)));
        assert!(d.iter().sum::<Duration>() <= DETACH_WAIT);
        assert!(d.iter().sum::<Duration>() > DETACH_WAIT - Duration::from_secs(5));
    }

    #[tokio::test]
    async fn deletes_are_retried_while_aws_still_sees_the_attachment() {
        let calls = std::cell::Cell::new(0);
        let op = || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(ProvisionError::Api(crate::api::ApiFailure {
                        operation: "DeleteThing",
                        status: 400,
                        code: "InvalidRequestException".into(),
                        message:
                            "Cannot delete. Thing r1 is still attached to one or more principals"
                                .into(),
                    }))
                } else {
                    Ok(())
                }
            }
        };
        retry_while_attached(op).await.unwrap();
        assert_eq!(calls.get(), 3, "two refusals, then the delete went through");
        // Any other error is returned at once.
        let calls = std::cell::Cell::new(0);
        let other = || {
            calls.set(calls.get() + 1);
            async { Err(ProvisionError::Invalid("bad".into())) }
        };
        assert!(retry_while_attached(other).await.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn still_attached_errors_are_recognised() {
        let api = |code: &str, message: &str| {
            ProvisionError::Api(crate::api::ApiFailure {
                operation: "DeleteThing",
                status: 400,
                code: code.into(),
                message: message.into(),
            })
        };
        assert!(still_attached(&api(
            "InvalidRequestException",
            "Cannot delete. Thing r1 is still attached to one or more principals"
        )));
        assert!(still_attached(&api(
            "DeleteConflictException",
            "Things must be detached before deletion (arn: x)"
        )));
        assert!(!still_attached(&api("InvalidRequestException", "bad name")));
        assert!(!still_attached(&api("ResourceNotFoundException", "gone")));
    }

    #[test]
    fn thing_names() {
        for ok in ["robot-1", "a", "x:y_z", &"a".repeat(128)] {
            assert!(check_thing_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "slash/y", "dot.name", &"a".repeat(129)] {
            let e = check_thing_name(bad).unwrap_err().to_string();
            assert!(e.contains("1 to 128"), "{bad}: {e}");
        }
    }

    #[test]
    fn cert_ids_from_arns() {
        assert_eq!(cert_id_of_arn("arn:aws:iot:us-east-1:1:cert/abc"), "abc");
    }
}
