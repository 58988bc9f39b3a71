//! A local stand-in for AWS IoT Core, so a fleet runs on one machine with no
//! AWS account; the same clients work against real AWS with another endpoint.
//!
//! Parts:
//! - [`config`]: ports, data dir, region and account settings.
//! - [`store`]: the SQLite registry (things, certificates, policies,
//!   attachments, shadows); survives restarts and `kill -9`.
//! - [`control`]: the control-plane REST-JSON API the aws CLI and boto3 drive.
//! - [`fleet`]: thing types, thing and billing groups, tags, role aliases
//!   and the legacy principal-policy calls, each family its own routes.
//! - [`data`]: the iot-data API (device shadow, named-shadow list, publish
//!   and retained messages over HTTP).
//! - [`registration`]: your own CA and device certificates made elsewhere
//!   (RegisterCACertificate, RegisterCertificate, ...), trusted by the broker.
//! - [`rules`]: topic rules, stored and listed; an enabled rule in the SQL
//!   subset of `gopigo-rulesql` runs its republish actions.
//! - [`search`]: fleet indexing: SearchIndex over the things and thing groups,
//!   its query language, and Get/UpdateIndexingConfiguration.
//! - [`shadow`]: the Device Shadow service shared by MQTT and HTTP.
//! - [`mqtt`]: the broker (crate `gopigo-broker`) wired to the registry:
//!   authorization source, shadow topics, certificate deactivation.
//! - [`sigv4`]: signature verification against the local access key.
//! - [`credentials`]: the local access key and the aws CLI profile files.
//! - [`error`]: AWS-shaped errors.
//! - [`files`]: the data dir's modes (0700, secrets 0600), checked at start.
//! - [`jobs`]: AWS IoT Jobs (control plane, device MQTT API, staged files).
//!
//! [`Core::open`] prepares the data dir (CA, credentials, store);
//! [`Core::bind`] opens the listeners; [`Core::serve`] runs until shutdown.

pub mod config;
pub mod consistency;
pub mod control;
pub mod credentials;
pub mod data;
pub mod error;
pub mod files;
pub mod fleet;
pub mod jobs;
pub mod mqtt;
pub mod registration;
pub mod rules;
pub mod search;
pub mod shadow;
pub mod sigv4;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpListener;
use tokio::sync::broadcast;

pub use config::CoreConfig;
pub use error::ApiError;
pub use gopigo_broker::{HttpLimits, Limits};

/// Something that happened in the registry that live connections care about.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreEvent {
    /// A certificate left ACTIVE: its connections must close.
    CertificateDeactivated(String),
    /// Policies or attachments changed: cached authorizations are stale.
    RegistryChanged,
}

/// Errors starting the core.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum CoreError {
    /// The data dir cannot be created or written.
    #[error("cannot use data dir {path}: {source} (pass --data-dir to choose another)")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The data dir or a secret in it is readable by others.
    #[error(transparent)]
    Files(#[from] files::FilesError),
    /// The registry database cannot be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The CA or server certificate cannot be made or loaded.
    #[error("certificate authority in {path}: {source}")]
    Pki {
        /// The CA directory.
        path: PathBuf,
        source: gopigo_pki::PkiError,
    },
    /// A port cannot be bound.
    #[error("cannot listen on {addr} for the {what}: {source} (is another core running? choose another port with its flag, or 0 for any free port)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The data dir was made with another account id than the one asked for.
    #[error("data dir {path} belongs to account {stored}, not {wanted}: start without --account-id, or choose a new --data-dir")]
    AccountId {
        path: PathBuf,
        /// The account id asked for.
        wanted: String,
        /// The account id in the data dir.
        stored: String,
    },
    /// An API-level failure during start-up (e.g. the store).
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The MQTT broker cannot start or failed.
    #[error("MQTT broker: {0}")]
    Broker(String),
    /// A server failed while running.
    #[error("{what} failed: {source}")]
    Serve {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Shared state of a running core, handed to every request handler.
pub struct CoreState {
    /// The registry in `core.db`: things, certificates, policies and
    /// their attachments.
    pub store: store::Store,
    /// The CA that signs device certificates.
    pub ca: gopigo_pki::CertificateAuthority,
    /// SigV4 verification; `None` accepts any signature (tests only).
    pub verifier: Option<sigv4::Verifier>,
    /// Region in ARNs.
    pub region: String,
    /// 12-digit account id in ARNs, made on first start.
    pub account_id: String,
    /// What DescribeEndpoint returns.
    pub endpoint_address: String,
    events: broadcast::Sender<CoreEvent>,
    publisher: OnceLock<Publisher>,
    broker: OnceLock<gopigo_broker::BrokerHandle>,
    shadow_rate: std::sync::Mutex<gopigo_shadow::RateLimiter>,
    started: std::time::Instant,
    /// How long a detached thing principal stays visible (AWS: detaching
    /// is asynchronous).
    pub detach_delay: std::time::Duration,
    /// How long policy changes take to reach the broker (0 = at once).
    pub policy_delay: std::time::Duration,
    pub(crate) lingering: consistency::Lingering,
    pub(crate) policy_pending: consistency::PolicyDelay,
    /// Things whose dynamic thing group memberships need a new look.
    pub(crate) dynamic: fleet::dynamic_groups::Pending,
    /// Where staged files (over-the-air agent builds) live.
    pub files_dir: std::path::PathBuf,
}

/// Delivers a message into the broker: `(topic, payload, qos, retain)`.
pub type Publisher = Arc<dyn Fn(&str, Vec<u8>, u8, bool) + Send + Sync>;

impl CoreState {
    /// `arn:{partition}:iot:{region}:{account}:{resource}` (the partition
    /// follows the region: `aws-cn`, `aws-us-gov` or `aws`).
    pub fn arn(&self, resource: &str) -> String {
        gopigo_policy::arn(&self.region, &self.account_id, resource)
    }

    /// The certificate id in one of this account's certificate ARNs.
    pub fn certificate_id_from_arn(&self, arn: &str) -> Option<String> {
        let prefix = self.arn("cert/");
        arn.strip_prefix(&prefix)
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
    }

    /// Subscribes to registry events.
    pub fn events(&self) -> broadcast::Receiver<CoreEvent> {
        self.events.subscribe()
    }

    /// Connects the broker: messages the core itself publishes (shadow
    /// responses, iot-data publish) go through `p`.
    pub fn set_publisher(&self, p: Publisher) {
        let _ = self.publisher.set(p);
    }

    /// The running broker (retained messages), once [`Core::serve`] started it.
    pub fn broker(&self) -> Option<&gopigo_broker::BrokerHandle> {
        self.broker.get()
    }

    /// Publishes into the broker; false when no broker is running.
    pub fn publish(&self, topic: &str, payload: Vec<u8>, qos: u8, retain: bool) -> bool {
        match self.publisher.get() {
            Some(p) => {
                p(topic, payload, qos, retain);
                true
            }
            None => false,
        }
    }

    /// Takes one Device Shadow request of `thing` from its rate (AWS: 20 a
    /// second per thing); false when over it.
    pub(crate) fn shadow_request_allowed(&self, thing: &str) -> bool {
        self.shadow_rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(thing, self.started.elapsed())
    }

    pub(crate) fn changed(&self) {
        let _ = self.events.send(CoreEvent::RegistryChanged);
    }

    /// Signals a registry change now and again after `delay`, when a
    /// delayed change lands (the broker's cache then reloads).
    pub(crate) fn changed_now_and_after(self: &Arc<Self>, delay: std::time::Duration) {
        self.changed();
        if !delay.is_zero() {
            let state = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay + std::time::Duration::from_millis(10)).await;
                state.changed();
            });
        }
    }

    /// Principals attached to `thing`, as the control plane lists them
    /// (detached ones linger for [`CoreState::detach_delay`]).
    pub fn thing_principals(&self, thing: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .lingering
            .principals_of(thing, self.store.thing_principals(thing)?))
    }

    /// Things attached to `principal`, as the control plane lists them.
    pub fn principal_things(&self, principal: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .lingering
            .things_of(principal, self.store.principal_things(principal)?))
    }

    pub(crate) fn certificate_deactivated(&self, id: &str) {
        let _ = self
            .events
            .send(CoreEvent::CertificateDeactivated(id.to_string()));
    }
}

/// A prepared core: data dir, CA, store and credentials are ready.
pub struct Core {
    config: CoreConfig,
    state: Arc<CoreState>,
    access_key: sigv4::AccessKey,
}

/// The core's listeners, bound and ready to serve.
pub struct Bound {
    control: TcpListener,
    mqtt: TcpListener,
    alpn: TcpListener,
    https: TcpListener,
    /// Where the control plane listens.
    pub control_addr: SocketAddr,
    /// MQTT over mutual TLS.
    pub mqtt_addr: SocketAddr,
    /// MQTT over mutual TLS with ALPN `x-amzn-mqtt-ca`.
    pub alpn_addr: SocketAddr,
    /// HTTPS publish with mutual TLS.
    pub https_addr: SocketAddr,
}

async fn bind_one(
    what: &'static str,
    host: std::net::IpAddr,
    port: u16,
) -> Result<(TcpListener, SocketAddr), CoreError> {
    let addr = SocketAddr::new(host, port);
    let err = |source| CoreError::Bind { what, addr, source };
    let l = TcpListener::bind(addr).await.map_err(err)?;
    let a = l.local_addr().map_err(err)?;
    Ok((l, a))
}

impl Core {
    /// Prepares the data dir: creates the CA, the access key and the store on
    /// first use, loads them afterwards.
    pub fn open(config: CoreConfig) -> Result<Self, CoreError> {
        let dir = &config.data_dir;
        files::prepare_data_dir(dir)?;
        let store = store::Store::open(&dir.join("core.db"))?;
        store.tx(|tx| Ok(tx.execute_batch(jobs::store::SCHEMA)?))?;
        // Connections open when the last run ended are over.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        store.connections_ended_by_restart(now_ms)?;
        let ca_dir = dir.join("ca");
        let ca = gopigo_pki::CertificateAuthority::load_or_create(&ca_dir).map_err(|source| {
            CoreError::Pki {
                path: ca_dir.clone(),
                source,
            }
        })?;
        let account_id = store.meta_get_or_init("account_id", || {
            config
                .account_id
                .clone()
                .unwrap_or_else(credentials::new_account_id)
        })?;
        if let Some(wanted) = config.account_id.as_ref().filter(|w| **w != account_id) {
            return Err(CoreError::AccountId {
                path: dir.clone(),
                wanted: wanted.clone(),
                stored: account_id,
            });
        }
        let access_key = credentials::load_or_create(&store)?;
        let verifier = if config.insecure_accept_any_signature {
            tracing::warn!("accepting requests with ANY signature (--insecure-accept-any-signature); never do this outside tests");
            None
        } else {
            Some(sigv4::Verifier::new(vec![access_key.clone()]))
        };
        let (events, _) = broadcast::channel(256);
        let state = Arc::new(CoreState {
            store,
            ca,
            verifier,
            region: config.region.clone(),
            account_id,
            endpoint_address: config.endpoint_host.clone(),
            events,
            publisher: OnceLock::new(),
            broker: OnceLock::new(),
            shadow_rate: std::sync::Mutex::new(gopigo_shadow::RateLimiter::default()),
            started: std::time::Instant::now(),
            detach_delay: config.detach_delay,
            policy_delay: config.policy_delay,
            lingering: Default::default(),
            policy_pending: Default::default(),
            dynamic: Default::default(),
            files_dir: dir.join(jobs::files::FILES_DIR),
        });
        Ok(Core {
            config,
            state,
            access_key,
        })
    }

    /// The shared state (registry, CA, events).
    pub fn state(&self) -> Arc<CoreState> {
        self.state.clone()
    }

    /// The configuration the core was opened with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Path of the CA certificate clients should trust.
    pub fn ca_path(&self) -> PathBuf {
        self.state.ca.cert_path().to_path_buf()
    }

    /// Binds every listener on the configured host and ports, then writes the
    /// aws CLI profile that points at the bound control-plane port.
    pub async fn bind(&self) -> Result<Bound, CoreError> {
        let host = self.config.host;
        let (control, control_addr) =
            bind_one("control plane", host, self.config.control_port).await?;
        let (mqtt, mqtt_addr) = bind_one("MQTT listener", host, self.config.mqtt_port).await?;
        let (alpn, alpn_addr) = bind_one("MQTT ALPN listener", host, self.config.alpn_port).await?;
        let (https, https_addr) =
            bind_one("HTTPS publish listener", host, self.config.https_port).await?;
        let data_err = |source| CoreError::DataDir {
            path: self.config.data_dir.clone(),
            source,
        };
        credentials::write_profile(
            &self.config.data_dir,
            &self.access_key,
            &self.config.region,
            &format!("http://{control_addr}"),
        )
        .map_err(data_err)?;
        let endpoints = serde_json::json!({
            "controlPlane": format!("http://{control_addr}"),
            "mqtt": mqtt_addr.to_string(),
            "mqttAlpn": alpn_addr.to_string(),
            "httpsPublish": https_addr.to_string(),
            "endpointAddress": self.state.endpoint_address,
            "caFile": self.state.ca.cert_path(),
            "region": self.state.region,
            "accountId": self.state.account_id,
            "pid": std::process::id(),
        });
        std::fs::write(
            self.config.data_dir.join("endpoints.json"),
            serde_json::to_vec_pretty(&endpoints).unwrap_or_default(),
        )
        .map_err(data_err)?;
        Ok(Bound {
            control,
            mqtt,
            alpn,
            https,
            control_addr,
            mqtt_addr,
            alpn_addr,
            https_addr,
        })
    }

    /// The line that points the aws CLI and boto3 at this core.
    pub fn env_line(&self) -> String {
        credentials::env_line(&self.config.data_dir)
    }

    /// Serves until `shutdown` completes, then drains and returns: the
    /// broker on the MQTT, ALPN and HTTPS-publish listeners, the registry
    /// and shadow services that feed it, and the control plane.
    pub async fn serve(
        self,
        bound: Bound,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CoreError> {
        let state = self.state.clone();
        let authority = Arc::new(mqtt::RegistryAuthority::new(state.clone()));
        let broker = self.start_broker(authority.clone())?;
        let handle = broker.handle();
        let _ = state.broker.set(handle.clone());
        let (cert_pem, key_pem) = self.server_certificate()?;
        let tls = |alpn: Option<Vec<Vec<u8>>>| {
            gopigo_broker::server_tls_config(
                state.ca.cert_der().to_vec(),
                &cert_pem,
                &key_pem,
                authority.clone(),
                alpn,
            )
            .map_err(|e| CoreError::Broker(e.to_string()))
        };
        let mqtt_tls = tls(None)?;
        let alpn_tls = tls(Some(vec![gopigo_broker::ALPN_MQTT_CA.to_vec()]))?;
        let https_tls = tls(Some(vec![b"http/1.1".to_vec()]))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let services = spawn_services(&state, &authority, &handle);
        let broker = Arc::new(broker);
        let b1 = broker.clone();
        let s1 = stopped();
        let mqtt_task = tokio::spawn(async move { b1.serve(bound.mqtt, mqtt_tls, s1).await });
        let b2 = broker.clone();
        let s2 = stopped();
        let alpn_task = tokio::spawn(async move { b2.serve(bound.alpn, alpn_tls, s2).await });
        let https_task = tokio::spawn(gopigo_broker::serve_https_publish_with(
            bound.https,
            https_tls,
            handle,
            self.config.https_limits.clone(),
            stopped(),
        ));
        let limits = self.config.control_limits.clone();
        let app = control_app(
            state,
            &limits,
            self.config.data_dir.join(jobs::files::FILES_DIR),
        );
        let control_task = tokio::spawn(serve_control(bound.control, app, limits, stop_rx.clone()));

        shutdown.await;
        let _ = stop_tx.send(true);
        let control_result = control_task.await;
        for (what, t) in [
            ("MQTT listener", mqtt_task),
            ("MQTT ALPN listener", alpn_task),
            ("HTTPS publish", https_task),
        ] {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(what, error = %e, "stopped with an error"),
                Err(e) => tracing::error!(what, error = %e, "task failed"),
            }
        }
        for service in services {
            service.abort();
        }
        control_result.map_err(|e| CoreError::Broker(e.to_string()))
    }

    /// The broker over the registry (`authority`), its sessions kept in
    /// the data dir; every message the core publishes itself goes into it.
    fn start_broker(
        &self,
        authority: Arc<mqtt::RegistryAuthority>,
    ) -> Result<gopigo_broker::Broker, CoreError> {
        let broker_config = gopigo_broker::BrokerConfig {
            region: self.state.region.clone(),
            account_id: self.state.account_id.clone(),
            max_connections: self.config.mqtt_max_connections,
            limits: self.config.limits,
            ..Default::default()
        };
        let broker = gopigo_broker::Broker::new(
            broker_config,
            authority,
            Some(self.config.data_dir.join("broker.db")),
        )
        .map_err(|e| CoreError::Broker(e.to_string()))?;
        let h = broker.handle();
        self.state
            .set_publisher(Arc::new(move |topic, payload, qos, retain| {
                h.publish(topic, bytes::Bytes::from(payload), qos, retain)
            }));
        Ok(broker)
    }

    /// A fresh server certificate (PEM and key) for the endpoint host and
    /// the loopback names, signed by the core's CA.
    fn server_certificate(&self) -> Result<(String, String), CoreError> {
        let mut hosts: Vec<String> = Vec::new();
        for h in [
            self.state.endpoint_address.as_str(),
            "localhost",
            "127.0.0.1",
            "::1",
        ] {
            if !hosts.iter().any(|x| x == h) {
                hosts.push(h.to_string());
            }
        }
        self.state
            .ca
            .issue_server_certificate(&hosts, 825)
            .map_err(|source| CoreError::Pki {
                path: self.ca_path(),
                source,
            })
    }
}

/// The services that feed the broker from the registry: certificate and
/// policy changes, the shadow, topic rules and the jobs device API; and
/// those fed by the broker: dynamic thing group membership and the stored
/// thing connectivity.
fn spawn_services(
    state: &Arc<CoreState>,
    authority: &Arc<mqtt::RegistryAuthority>,
    handle: &gopigo_broker::BrokerHandle,
) -> [tokio::task::JoinHandle<()>; 6] {
    [
        tokio::spawn(mqtt::follow_registry(
            state.events(),
            authority.clone(),
            handle.clone(),
        )),
        tokio::spawn(mqtt::shadow_service(state.clone(), handle.clone())),
        tokio::spawn(rules::run_engine(state.clone(), handle.clone())),
        tokio::spawn(jobs::device::service(state.clone(), handle.clone())),
        tokio::spawn(fleet::dynamic_groups::run(state.clone(), handle.clone())),
        tokio::spawn(search::presence::record(state.clone(), handle.clone())),
    ]
}

/// The control-plane API and the update files served by token
/// ([`jobs::files`]), with its request timeout (408 past it) and
/// request tracing.
fn control_app(
    state: Arc<CoreState>,
    limits: &HttpLimits,
    files_dir: std::path::PathBuf,
) -> axum::Router {
    control::router(state)
        .merge(jobs::files::router(files_dir))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves the control plane: at most `limits.max_connections` connections,
/// each with the header-read (and idle) timeout; on stop, connections get
/// [`gopigo_broker::limits::DRAIN`] to finish.
async fn serve_control(
    listener: TcpListener,
    app: axum::Router,
    limits: gopigo_broker::HttpLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use gopigo_broker::limits;
    let listener = gopigo_listen::CappedListener::new(
        listener,
        "control plane",
        limits.max_connections,
        gopigo_listen::Refusal::Close,
    );
    let limits = Arc::new(limits);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = limits::stopped(&mut stop) => break,
            (stream, _peer, permit) = listener.accept() => {
                let app = app.clone();
                let service = hyper::service::service_fn(move |req| {
                    tower::ServiceExt::oneshot(app.clone(), req)
                });
                let (limits, stop) = (limits.clone(), stop.clone());
                tasks.spawn(async move {
                    limits::serve_http_connection(stream, service, &limits, stop).await;
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    limits::drain(&mut tasks).await;
}
