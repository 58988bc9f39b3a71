//! `gopigo swarm`: many simulated robots in one process, for benches and
//! load tests of the broker and the dashboard. Each robot is a bundle
//! provisioned against the local core with `gopigo_provision::provision`
//! (a no-op when it exists) and runs the agent's own code,
//! `gopigo_agent::run`, with a simulated board and no camera: its own MQTT
//! connection, executor thread, telemetry, status, shadow and jobs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gopigo_agent::{AgentConfig, Overrides};
use gopigo_provision::api::IotClient;
use gopigo_provision::bundle::BundlePaths;
use gopigo_provision::{creds, CaSource, ProvisionOptions, Role};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cmd_core::DataDirArg;

/// The most robots one swarm runs.
pub const MAX_ROBOTS: usize = 500;
/// How many robots are provisioned at once.
const PROVISION_AT_ONCE: usize = 8;

/// Arguments of `gopigo swarm`.
#[derive(Args, Debug)]
pub struct SwarmArgs {
    /// How many robots (1 to 500).
    #[arg(long)]
    count: usize,
    /// Thing names are PREFIX-1 ... PREFIX-COUNT.
    #[arg(long, default_value = "swarm")]
    prefix: String,
    /// Folder of the robots' bundles, one sub-folder per thing (made or
    /// brought up to date against the local core).
    #[arg(long)]
    bundles: PathBuf,
    #[command(flatten)]
    data: DataDirArg,
    /// MQTT host written to the bundles (a name in the core's certificate).
    #[arg(long, default_value = "localhost")]
    mqtt_host: String,
    /// Telemetry rate of every robot ([telemetry] hz).
    #[arg(long)]
    telemetry_hz: Option<f64>,
    /// Connect the robots to this MQTT port instead of the bundles' (a
    /// reference broker trusting the core's CA, for benchmarks).
    #[arg(long)]
    port: Option<u16>,
}

impl SwarmArgs {
    fn things(&self) -> Vec<String> {
        (1..=self.count)
            .map(|i| format!("{}-{i}", self.prefix))
            .collect()
    }
}

/// Provisions the bundles, then runs every robot until Ctrl-C.
pub fn run(args: SwarmArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_ROBOTS).contains(&args.count),
        "--count {} is out of range: run 1 to {MAX_ROBOTS} robots in one swarm",
        args.count
    );
    gopigo_provision::check_thing_name(&format!("{}-{}", args.prefix, args.count))
        .context("--prefix makes the thing names")?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let configs = provision_all(&args).await?;
        println!(
            "swarm       {} robots provisioned in {:.1} s (bundles in {})",
            configs.len(),
            started.elapsed().as_secs_f64(),
            args.bundles.display()
        );
        run_all(configs).await
    })
}

/// Provisions (or checks) every robot's bundle, a few at a time, and loads
/// each one's agent config with the simulated board and no camera.
async fn provision_all(args: &SwarmArgs) -> anyhow::Result<Vec<AgentConfig>> {
    let dir = args.data.resolve();
    let (target, local) = creds::local_core(&dir)?;
    let client = Arc::new(IotClient::new(target)?);
    let template = ProvisionOptions {
        thing: String::new(),
        role: Role::Robot,
        bundle_dir: PathBuf::new(),
        install_dir: None,
        ca: CaSource::File(local.ca_file.clone()),
        mqtt_host: Some(args.mqtt_host.clone()),
        mqtt_port: local.mqtt_port().unwrap_or(8883),
        alpn: false,
        csr_file: None,
        key_algorithm: gopigo_pki::KeyAlgorithm::EcdsaP256,
        region_account: Some((local.region.clone(), local.account_id.clone())),
    };
    let mut jobs = JoinSet::new();
    let mut configs = Vec::new();
    for thing in args.things() {
        if jobs.len() >= PROVISION_AT_ONCE {
            configs.push(joined(jobs.join_next().await)?);
        }
        let opts = ProvisionOptions {
            thing: thing.clone(),
            bundle_dir: args.bundles.join(&thing),
            ..template.clone()
        };
        let client = client.clone();
        let (hz, port) = (args.telemetry_hz, args.port);
        jobs.spawn(async move {
            gopigo_provision::provision(&client, &opts)
                .await
                .with_context(|| format!("cannot provision {thing}"))?;
            agent_config(&opts.bundle_dir, hz, port)
        });
    }
    while let Some(done) = jobs.join_next().await {
        configs.push(joined(Some(done))?);
    }
    Ok(configs)
}

fn joined(
    done: Option<Result<anyhow::Result<AgentConfig>, tokio::task::JoinError>>,
) -> anyhow::Result<AgentConfig> {
    done.context("no provisioning task")?
        .context("a provisioning task failed")?
}

/// The bundle's `robot.toml` with a simulated board and no camera.
fn agent_config(
    bundle: &std::path::Path,
    telemetry_hz: Option<f64>,
    port: Option<u16>,
) -> anyhow::Result<AgentConfig> {
    let overrides = Overrides {
        sim: true,
        no_camera: true,
        telemetry_hz,
        port,
        ..Overrides::default()
    };
    let path = BundlePaths::new(bundle).config();
    Ok(AgentConfig::load(&path, &overrides)?)
}

/// Runs every agent until Ctrl-C (or SIGTERM); each stops as it would alone.
async fn run_all(configs: Vec<AgentConfig>) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut agents = JoinSet::new();
    let n = configs.len();
    for cfg in configs {
        agents.spawn(gopigo_agent::run(cfg, stop.clone().cancelled_owned()));
    }
    println!("swarm       {n} simulated robots running; stop with Ctrl-C.");
    crate::shutdown_signal().await;
    stop.cancel();
    let mut failed = 0;
    while let Some(done) = agents.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("gopigo swarm: a robot failed: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("gopigo swarm: a robot's task ended: {e}");
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {n} robots failed (see above)");
    println!("swarm       {n} robots stopped");
    Ok(())
}
