//! `gopigo dashboard`, `drive`, `watch`, `shadow` and `demo`: argument
//! parsing for the controller crate.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use gopigo_controller::{actions, cli, demo, ControllerConfig};

/// The controller subcommands.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Web dashboard: fleet list, live video with detection boxes, teleop
    /// (buttons and keyboard), telemetry plots, command log.
    Dashboard(DashboardArgs),
    /// Send one command to a robot and wait for its result (exit code 1 when
    /// it is rejected, the robot is offline, or no result comes).
    Drive(DriveArgs),
    /// Print a robot's telemetry, command results and status as they arrive.
    Watch(WatchArgs),
    /// Read a robot's device shadow, or set its desired state.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// Everything on this machine in one command: local core, identities,
    /// two simulated robots, one detector for them (when set up) and the dashboard.
    Demo(DemoArgs),
}

/// The controller config file.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// controller.toml ([mqtt] identity, [dashboard])
    /// [default: $GOPIGO_CONTROLLER_CONFIG, else the demo's operator identity,
    /// DEMO_DIR/operator/controller.toml]
    #[arg(long, env = "GOPIGO_CONTROLLER_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self, demo_identity: &str) -> PathBuf {
        self.config.clone().unwrap_or_else(|| {
            default_demo_dir()
                .join(demo_identity)
                .join("controller.toml")
        })
    }

    fn load(&self, demo_identity: &str) -> anyhow::Result<ControllerConfig> {
        let path = self.path(demo_identity);
        if self.config.is_some() {
            return Ok(ControllerConfig::load(&path)?);
        }
        ControllerConfig::load(&path).with_context(|| {
            format!(
                "no --config and no GOPIGO_CONTROLLER_CONFIG, so the demo's \
                 {demo_identity} identity was tried"
            )
        })
    }
}

fn default_demo_dir() -> PathBuf {
    std::env::var_os("GOPIGO_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| gopigo_core::config::default_data_dir().join("demo"))
}

/// Arguments of `gopigo dashboard`.
#[derive(Args, Debug)]
pub struct DashboardArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Port to serve on (overrides [dashboard] listen's port; 0 = any free port).
    #[arg(long, env = "GOPIGO_DASHBOARD_PORT")]
    port: Option<u16>,
    /// Address to bind (overrides [dashboard] listen's address). Beyond
    /// loopback the dashboard serves HTTPS only.
    #[arg(long)]
    host: Option<IpAddr>,
    /// A fixed sign-in token (at least 22 of A-Z a-z 0-9 - _ . ~) for
    /// scripted use [default: a random 256-bit token, printed in the URL].
    #[arg(long, env = "GOPIGO_DASHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Another host name the dashboard answers to (repeatable), besides
    /// localhost, 127.0.0.1, [::1] and the bound address. Requests naming
    /// any other Host are refused (DNS-rebinding defence).
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// HTTPS certificate chain (PEM) [default: [dashboard] tls_cert].
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// HTTPS private key (PEM) [default: [dashboard] tls_key].
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS even on loopback, with a certificate made in --tls-dir
    /// (beyond loopback that is the default when no --tls-cert is given).
    #[arg(long, conflicts_with_all = ["no_tls", "tls_cert"])]
    tls: bool,
    /// Serve plain HTTP (refused beyond loopback).
    #[arg(long, conflicts_with = "tls_cert")]
    no_tls: bool,
    /// Where a made certificate and its local CA live
    /// [default: dashboard-tls/ beside the config file].
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// Fetch robots' cameras on loopback (the demo's robots run here);
    /// the core's and the dashboard's own ports stay refused.
    #[arg(long)]
    allow_loopback_camera: bool,
    /// Close a connection that sends no complete request headers for this
    /// long, including an idle keep-alive connection.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    idle_timeout: String,
    /// Most connections (and, separately, open pages) served at once.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
}

/// Arguments of `gopigo drive`.
#[derive(Args, Debug)]
pub struct DriveArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The robot's thing name.
    thing: String,
    /// forward|backward|left|right|spin-left|spin-right, `turn DEG`, `cm N`,
    /// `servo DEG`, `led R,G,B` or `stop`.
    #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
    what: Vec<String>,
    /// How long a drive lasts: 1s, 400ms, 1.5s [robot's default: 1s].
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    /// Wheel speed in degrees per second (1-1000) [robot's default].
    #[arg(long)]
    speed: Option<u32>,
    /// How long to wait for the result beyond the motion itself.
    #[arg(long, default_value = "5s")]
    timeout: String,
    /// Print the outcome as one JSON line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gopigo watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The robot's thing name [default: every robot].
    thing: Option<String>,
    /// JSON lines (topic, thing, kind, message) instead of text.
    #[arg(long)]
    json: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
    /// Also show detections.
    #[arg(long)]
    detections: bool,
}

/// `gopigo shadow ...`.
#[derive(Subcommand, Debug)]
pub enum ShadowCommand {
    /// Print the shadow document (desired, reported, delta).
    Get {
        #[command(flatten)]
        config: ConfigArg,
        /// The robot's thing name.
        thing: String,
    },
    /// Set desired keys: speed_dps=300 led=0,255,255 servo_angle=90
    /// camera_on=true detection_on=false (key=null removes a key).
    Set {
        #[command(flatten)]
        config: ConfigArg,
        /// The robot's thing name.
        thing: String,
        /// key=value pairs.
        #[arg(required = true, num_args = 1..)]
        assignments: Vec<String>,
    },
}

/// Arguments of `gopigo demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its core, identities and logs (kept between runs)
    /// [default: $GOPIGO_DEMO_DIR, else DATA_DIR/demo]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Dashboard port (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Robot names.
    #[arg(long, value_delimiter = ',', default_value = "robot1,robot2")]
    robots: Vec<String>,
    /// Do not start the detector even when it is set up.
    #[arg(long)]
    no_detect: bool,
    /// Stop after this long (e.g. 30s); for scripted runs.
    #[arg(long, value_name = "DURATION", hide = true)]
    run_for: Option<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Runs one of them.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    match cmd {
        Commands::Dashboard(a) => dashboard(a),
        Commands::Drive(a) => drive(a),
        Commands::Watch(a) => watch(a),
        Commands::Shadow(c) => shadow(c),
        Commands::Demo(a) => run_demo(a),
    }
}

fn dashboard_options(
    a: &DashboardArgs,
    config: &ControllerConfig,
) -> anyhow::Result<gopigo_controller::DashboardOptions> {
    use gopigo_controller::TlsChoice;
    let config_dir = a
        .config
        .path("dashboard")
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = a
        .tls_dir
        .clone()
        .unwrap_or_else(|| config_dir.join("dashboard-tls"));
    let files = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => config
            .dashboard
            .tls_cert
            .clone()
            .zip(config.dashboard.tls_key.clone()),
    };
    let tls = match (a.no_tls, a.tls, files) {
        (true, _, _) => TlsChoice::Off,
        (_, true, _) => TlsChoice::Make { dir },
        (_, _, Some((cert, key))) => TlsChoice::Files { cert, key },
        _ => TlsChoice::Auto { dir },
    };
    let idle = actions::parse_duration_ms(&a.idle_timeout)?;
    anyhow::ensure!(
        a.max_connections > 0,
        "--max-connections must be at least 1"
    );
    Ok(gopigo_controller::DashboardOptions {
        token: a.token.clone(),
        allow_hosts: a.allow_hosts.clone(),
        tls,
        allow_loopback_camera: a.allow_loopback_camera,
        limits: gopigo_controller::server::Limits {
            max_connections: a.max_connections,
            header_timeout: Duration::from_millis(u64::from(idle)),
            ..Default::default()
        },
    })
}

fn dashboard(a: DashboardArgs) -> anyhow::Result<()> {
    let config = a.config.load("dashboard")?;
    let mut listen = config.dashboard.listen;
    if let Some(p) = a.port {
        listen.set_port(p);
    }
    if let Some(h) = a.host {
        listen = SocketAddr::new(h, listen.port());
    }
    let options = dashboard_options(&a, &config)?;
    let fixed_token = options.token.is_some();
    let rt = runtime()?;
    let result = rt.block_on(async move {
        if matches!(options.tls, gopigo_controller::TlsChoice::Off) && !listen.ip().is_loopback() {
            // Refuse before binding anything.
            return Err(gopigo_controller::DashboardError::PlainBeyondLoopback(listen.ip()).into());
        }
        let listener = gopigo_controller::bind(listen).await?;
        let addr = listener.local_addr().context("listener address")?;
        let prepared = gopigo_controller::prepare(&config, addr, options).await?;
        if fixed_token {
            println!("gopigo dashboard on {}", prepared.base_url(addr));
            println!("  sign in with the token you gave (--token / GOPIGO_DASHBOARD_TOKEN): {}?token=TOKEN", prepared.base_url(addr));
        } else {
            println!("gopigo dashboard on {}", prepared.sign_in_url(addr));
        }
        if let Some(tls) = &prepared.tls {
            println!("  TLS certificate SHA-256 {}", tls.fingerprint);
            match &tls.ca_file {
                Some(ca) => println!("  made here; trust {} (curl --cacert {})", ca.display(), ca.display()),
                None => println!("  from {}", tls.cert_file.display()),
            }
        }
        println!(
            "  broker {}:{} as {}",
            config.mqtt.host, config.mqtt.port, config.mqtt.client_id
        );
        println!("Stop with Ctrl-C.");
        gopigo_controller::run_dashboard(
            &config,
            listener,
            prepared.security,
            crate::shutdown_signal(),
        )
        .await?;
        println!("gopigo dashboard stopped");
        Ok(())
    });
    // Tasks still winding down (a camera lookup, a closing socket) may
    // not hold the exit up.
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

fn drive(a: DriveArgs) -> anyhow::Result<()> {
    let config = a.config.load("operator")?;
    let duration = a
        .duration
        .as_deref()
        .map(actions::parse_duration_ms)
        .transpose()?;
    let timeout = actions::parse_duration_ms(&a.timeout)?;
    let action = actions::drive_action(&a.what, duration, a.speed)?;
    let options = cli::DriveOptions {
        timeout: Duration::from_millis(u64::from(timeout)),
        json: a.json,
    };
    runtime()?.block_on(async move {
        let mut out = std::io::stdout();
        cli::drive(&config.mqtt, &a.thing, action, &options, &mut out).await?;
        Ok(())
    })
}

fn watch(a: WatchArgs) -> anyhow::Result<()> {
    let config = a.config.load("operator")?;
    let options = cli::WatchOptions {
        json: a.json,
        count: a.count,
        detections: a.detections,
    };
    runtime()?.block_on(async move {
        let mut out = std::io::stdout();
        cli::watch(
            &config.mqtt,
            a.thing.as_deref(),
            &options,
            &mut out,
            crate::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}

fn shadow(c: ShadowCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    let mut out = std::io::stdout();
    match c {
        ShadowCommand::Get { config, thing } => {
            let config = config.load("operator")?;
            rt.block_on(cli::shadow_get(&config.mqtt, &thing, &mut out))?;
        }
        ShadowCommand::Set {
            config,
            thing,
            assignments,
        } => {
            let config = config.load("operator")?;
            let desired = actions::parse_assignments(&assignments)?;
            rt.block_on(cli::shadow_set(&config.mqtt, &thing, &desired, &mut out))?;
        }
    }
    Ok(())
}

fn run_demo(a: DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the gopigo binary to run")?;
    for r in &a.robots {
        actions::check_thing(r)?;
    }
    let run_for = a
        .run_for
        .as_deref()
        .map(actions::parse_duration_ms)
        .transpose()?
        .map(|ms| Duration::from_millis(u64::from(ms)));
    let data_dir = a.data_dir.unwrap_or_else(default_demo_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the demo's data dir {}", data_dir.display()))?;
    let detection = if a.no_detect {
        demo::Detection::Unavailable("the demo was started with --no-detect".into())
    } else {
        println!("checking the detector (gopigo detect on a probe image)…");
        demo::probe_detection(&exe, &data_dir)
    };
    let opts = demo::DemoOptions {
        exe,
        data_dir,
        port: a.port,
        robots: a.robots,
        detect: !a.no_detect,
        run_for,
    };
    // Children are spawned from this (the main) thread: their parent-death
    // signal follows the thread that spawned them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut out = std::io::stdout();
        demo::run(opts, detection, &mut out, crate::shutdown_signal()).await
    })?;
    Ok(())
}
