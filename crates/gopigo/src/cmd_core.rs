//! `gopigo core` and `gopigo env`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use gopigo_core::{Core, CoreConfig};

/// Where the core keeps its state.
#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// Data dir for the registry, CA and credentials
    /// [default: $GOPIGO_DATA_DIR, else $XDG_DATA_HOME/gopigo, else ~/.local/share/gopigo]
    #[arg(long, env = "GOPIGO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The chosen or default data dir.
    pub fn resolve(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(gopigo_core::config::default_data_dir)
    }
}

/// Arguments of `gopigo core`.
#[derive(Args, Debug)]
pub struct CoreArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address every listener binds; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1", env = "GOPIGO_CORE_HOST")]
    host: IpAddr,
    /// Control-plane HTTP port (aws CLI --endpoint-url); 0 picks a free port.
    #[arg(long, default_value_t = 4580, env = "GOPIGO_CORE_PORT")]
    port: u16,
    /// MQTT over mutual TLS port (AWS: 8883); 0 picks a free port.
    #[arg(long, default_value_t = 8883, env = "GOPIGO_CORE_MQTT_PORT")]
    mqtt_port: u16,
    /// HTTPS publish port with mutual TLS (AWS: 8443); 0 picks a free port.
    #[arg(long, default_value_t = 8443, env = "GOPIGO_CORE_HTTPS_PORT")]
    https_port: u16,
    /// MQTT over mutual TLS with ALPN x-amzn-mqtt-ca (AWS: 443); 0 picks a free port.
    #[arg(long, default_value_t = 4443, env = "GOPIGO_CORE_ALPN_PORT")]
    alpn_port: u16,
    /// Region used in ARNs and in the aws CLI profile.
    #[arg(long, default_value = "us-east-1", env = "GOPIGO_CORE_REGION")]
    region: String,
    /// 12-digit account id in ARNs, taken when the data dir is first made
    /// (e.g. your real account's, or moto's 123456789012) [default: random].
    #[arg(long, value_parser = parse_account_id, env = "GOPIGO_CORE_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Host name returned by describe-endpoint and put in the server certificate.
    #[arg(long, default_value = "localhost", env = "GOPIGO_CORE_ENDPOINT_HOST")]
    endpoint_host: String,
    /// Accept requests with any SigV4 signature. For tests only: anyone who can
    /// reach the port can then change the registry.
    #[arg(long)]
    insecure_accept_any_signature: bool,
    /// Seconds a client of the control plane or of HTTPS publish has to send
    /// a request's headers, and may stay idle between requests; it is then
    /// closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), env = "GOPIGO_CORE_HTTP_IDLE_TIMEOUT")]
    http_idle_timeout: u64,
    /// Seconds a control-plane or HTTPS publish request may take once its
    /// headers are in (body included); 408 past it.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), env = "GOPIGO_CORE_HTTP_REQUEST_TIMEOUT")]
    http_request_timeout: u64,
    /// Most open connections on the control plane and on HTTPS publish, each;
    /// further ones are closed at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), env = "GOPIGO_CORE_MAX_HTTP_CONNECTIONS")]
    max_http_connections: u64,
    /// Most open connections on each MQTT listener; further ones are closed
    /// at once.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..), env = "GOPIGO_CORE_MAX_MQTT_CONNECTIONS")]
    max_mqtt_connections: u64,
    /// Seconds a detached thing principal stays listed and keeps DeleteThing
    /// refusing, as on AWS where DetachThingPrincipal is asynchronous; 0 = at
    /// once.
    #[arg(long, default_value_t = 2.0, value_parser = parse_delay, env = "GOPIGO_CORE_DETACH_DELAY")]
    detach_delay: f64,
    /// Seconds policy changes (attach, detach, new default version) take to
    /// reach the broker, as AWS's propagation does (up to several minutes);
    /// 0 = at once.
    #[arg(long, default_value_t = 0.0, value_parser = parse_delay, env = "GOPIGO_CORE_POLICY_DELAY")]
    policy_delay: f64,
    /// Per-connection MQTT quotas. `aws`: AWS IoT Core's, with AWS's
    /// outcomes: over 100 publishes/s in or out per connection the excess is
    /// discarded (an inbound QoS 1 one gets no PUBACK); over 512 KiB/s in or
    /// out the connection is slowed down; past 50 subscriptions a filter
    /// gets SUBACK 0x80. `off`: none of these (for a test that floods on
    /// purpose). Both keep AWS's 128 KiB message size and 8 filters per
    /// SUBSCRIBE (a client past them is disconnected). See docs/core.md,
    /// "Limits".
    #[arg(long, value_enum, default_value_t = LimitsArg::Aws, env = "GOPIGO_CORE_LIMITS")]
    limits: LimitsArg,
}

/// `--limits`: which per-connection quotas the broker enforces.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LimitsArg {
    /// AWS IoT Core's quotas and outcomes.
    Aws,
    /// No per-connection quota.
    Off,
}

impl LimitsArg {
    fn limits(self) -> gopigo_core::Limits {
        match self {
            LimitsArg::Aws => gopigo_core::Limits::aws(),
            LimitsArg::Off => gopigo_core::Limits::off(),
        }
    }
}

/// What the banner says about `--limits`.
fn limits_line(l: LimitsArg) -> &'static str {
    match l {
        LimitsArg::Aws => {
            "aws (100 publishes/s and 512 KiB/s each way, 50 subscriptions per connection)"
        }
        LimitsArg::Off => "off (no per-connection quotas; AWS would throttle what passes them)",
    }
}

/// A delay in seconds: 0 to one hour.
fn parse_delay(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a delay: give seconds from 0 to 3600")),
    }
}

/// Arguments of `gopigo env`.
#[derive(Args, Debug)]
pub struct EnvArgs {
    #[command(flatten)]
    data: DataDirArg,
}

fn parse_account_id(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not an AWS account id: use 12 digits"))
    }
}

/// Runs the core until SIGINT or SIGTERM.
pub fn run(args: CoreArgs) -> anyhow::Result<()> {
    let data_dir = args.data.resolve();
    let mut config = CoreConfig::new(data_dir.clone());
    config.host = args.host;
    config.control_port = args.port;
    config.mqtt_port = args.mqtt_port;
    config.https_port = args.https_port;
    config.alpn_port = args.alpn_port;
    config.region = args.region;
    config.account_id = args.account_id;
    config.endpoint_host = args.endpoint_host;
    config.insecure_accept_any_signature = args.insecure_accept_any_signature;
    let http = gopigo_core::HttpLimits {
        header_read_timeout: Duration::from_secs(args.http_idle_timeout),
        request_timeout: Duration::from_secs(args.http_request_timeout),
        max_connections: args.max_http_connections as usize,
    };
    config.control_limits = http.clone();
    config.https_limits = http;
    config.mqtt_max_connections = args.max_mqtt_connections as usize;
    config.detach_delay = Duration::from_secs_f64(args.detach_delay);
    config.policy_delay = Duration::from_secs_f64(args.policy_delay);
    config.limits = args.limits.limits();
    let limits = args.limits;
    raise_open_file_limit();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let core = Core::open(config)?;
        let bound = core.bind().await?;
        println!("gopigo core is running");
        println!(
            "  control plane   http://{}   (aws --endpoint-url http://{} iot ...)",
            bound.control_addr, bound.control_addr
        );
        println!("  MQTT (mTLS)     {}", bound.mqtt_addr);
        println!(
            "  MQTT (ALPN)     {}   (ALPN x-amzn-mqtt-ca, the AWS SDKs' port-443 mode)",
            bound.alpn_addr
        );
        println!(
            "  HTTPS publish   https://{}/topics/{{topic}}",
            bound.https_addr
        );
        println!("  aws profile     {}", core.env_line());
        println!("  CA certificate  {}", core.ca_path().display());
        println!("  data dir        {}", data_dir.display());
        println!("  MQTT limits     {}", limits_line(limits));
        println!("Stop with Ctrl-C.");
        core.serve(bound, crate::shutdown_signal()).await?;
        println!("gopigo core stopped");
        Ok(())
    })
}

/// Prints the line that points the aws CLI and boto3 at the local core.
pub fn env(args: EnvArgs) -> anyhow::Result<()> {
    let dir = args.data.resolve();
    let config = dir.join("aws").join("config");
    if !config.exists() {
        anyhow::bail!(
            "{} does not exist yet: start the local core once with `gopigo core --data-dir {}`",
            config.display(),
            dir.display()
        );
    }
    println!("{}", gopigo_core::credentials::env_line(&dir));
    Ok(())
}

/// Raises the soft limit on open files to the hard one (Linux often starts
/// services at 1,024), so the connection caps, not the descriptor limit,
/// bound the listeners. The agent does the same at its start.
fn raise_open_file_limit() {
    match gopigo_agent::limits::raise_open_files() {
        Ok(files) => tracing::debug!(before = files.before, now = files.now, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}
