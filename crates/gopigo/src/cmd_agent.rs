//! `gopigo agent`: the robot program.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use gopigo_agent::{AgentConfig, Overrides};

/// The agent subcommands.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run the robot agent: commands over MQTT (mutual TLS), safety stops,
    /// telemetry, shadow, camera stream. `--sim` simulates the board.
    Agent(AgentArgs),
    /// Run many simulated robots in one process (benches, load tests):
    /// provisions PREFIX-1..N against the local core (a no-op when they
    /// exist), then runs each with the agent's own code, a simulated board
    /// and no camera.
    Swarm(crate::cmd_swarm::SwarmArgs),
}

/// Arguments of `gopigo agent`; each overrides the same key of the config file.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The config file (see crates/agent/robot.example.toml).
    #[arg(
        long,
        short = 'c',
        default_value = "robot.toml",
        env = "GOPIGO_AGENT_CONFIG"
    )]
    config: PathBuf,
    /// Simulate the GoPiGo3 board and its room ([board] kind = "sim").
    /// Without it the board is [board] kind; unset means the real board,
    /// which only a build with `--features hardware` can drive.
    #[arg(long)]
    sim: bool,
    /// Thing name (`thing`).
    #[arg(long, env = "GOPIGO_THING")]
    thing: Option<String>,
    /// MQTT endpoint host ([mqtt] host).
    #[arg(long, env = "AWSIOT_MQTT_HOST")]
    host: Option<String>,
    /// MQTT port ([mqtt] port).
    #[arg(long, env = "AWSIOT_MQTT_PORT")]
    port: Option<u16>,
    /// MQTT client id ([mqtt] client_id).
    #[arg(long, env = "GOPIGO_CLIENT_ID")]
    client_id: Option<String>,
    /// Command topic ([topics] command; default gopigo/{thing}/cmd).
    #[arg(long, env = "AWSIOT_MQTT_TOPIC_COMMAND")]
    command_topic: Option<String>,
    /// Result topic ([topics] report; default gopigo/{thing}/cmd/result).
    #[arg(long, env = "AWSIOT_MQTT_TOPIC_REPORT")]
    report_topic: Option<String>,
    /// Folder that relative certificate and key names are taken from.
    #[arg(long, env = "AWSIOT_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// CA certificate ([mqtt] ca_file).
    #[arg(long, env = "AWSIOT_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Device certificate ([mqtt] cert_file).
    #[arg(long, env = "AWSIOT_CERT_FILE")]
    cert_file: Option<PathBuf>,
    /// Device private key ([mqtt] key_file).
    #[arg(long, env = "AWSIOT_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Camera port ([camera] port; 0 = any free port).
    #[arg(long, env = "GOPIGO_CAMERA_PORT")]
    camera_port: Option<u16>,
    /// Camera listen address ([camera] bind).
    #[arg(long, env = "GOPIGO_CAMERA_BIND")]
    camera_bind: Option<String>,
    /// Do not serve the camera ([camera] enabled = false).
    #[arg(long)]
    no_camera: bool,
    /// Telemetry rate ([telemetry] hz).
    #[arg(long, env = "GOPIGO_TELEMETRY_HZ")]
    telemetry_hz: Option<f64>,
    /// Dead-man TTL in ms ([safety] deadman_ms).
    #[arg(long, env = "GOPIGO_DEADMAN_MS")]
    deadman_ms: Option<u64>,
    /// Obstacle stop distance in mm ([safety] obstacle_mm; 0 = off).
    #[arg(long, env = "GOPIGO_OBSTACLE_MM")]
    obstacle_mm: Option<u32>,
    /// Simulation only: serve GET /sim and POST /sim/obstacle on 127.0.0.1
    /// at this port (0 = any free port) for tests ([sim] debug_port).
    #[arg(long, env = "GOPIGO_SIM_DEBUG_PORT")]
    sim_debug_port: Option<u16>,
    /// After an over-the-air update: `exec` the new binary in this process
    /// (the default; a demo or a plain terminal), or `exit` and let the
    /// service manager start it (systemd with `Restart=always`).
    #[arg(long, value_enum, default_value_t = Restart::Exec, env = "GOPIGO_UPDATE_RESTART")]
    restart: Restart,
}

/// How the agent restarts into an updated binary.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Replace this process with the new binary, same arguments.
    Exec,
    /// Exit with status 0; the service manager starts the new binary.
    Exit,
}

/// Restarts into the (updated) binary at `exe`.
fn restart(exe: &std::path::Path, how: Restart) -> anyhow::Result<()> {
    match how {
        Restart::Exit => {
            eprintln!(
                "gopigo agent: updated; exiting so that the service manager starts the new version"
            );
            Ok(())
        }
        Restart::Exec => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .exec();
            Err(anyhow::anyhow!(err).context(format!(
                "cannot start the updated agent {} (it was rolled in; start it again, or restore {}.previous)",
                exe.display(),
                exe.display()
            )))
        }
    }
}

impl AgentArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            sim: self.sim,
            thing: self.thing.clone(),
            host: self.host.clone(),
            port: self.port,
            client_id: self.client_id.clone(),
            command_topic: self.command_topic.clone(),
            report_topic: self.report_topic.clone(),
            tls_dir: self.tls_dir.clone(),
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            camera_port: self.camera_port,
            camera_bind: self.camera_bind.clone(),
            no_camera: self.no_camera,
            telemetry_hz: self.telemetry_hz,
            deadman_ms: self.deadman_ms,
            obstacle_mm: self.obstacle_mm,
            sim_debug_port: self.sim_debug_port,
        }
    }
}

/// Runs one of them.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    match cmd {
        Commands::Swarm(args) => crate::cmd_swarm::run(args),
        Commands::Agent(args) => {
            let cfg = AgentConfig::load(&args.config, &args.overrides())?;
            if args.sim_debug_port.is_some() && !args.sim {
                anyhow::ensure!(
                    cfg.board.kind() == gopigo_agent::config::BoardKind::Sim,
                    "--sim-debug-port is simulation-only; add --sim"
                );
            }
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let exe = gopigo_agent::update::exe_path();
            let shutdown = async {
                tokio::select! {
                    _ = crate::shutdown_signal() => {}
                    _ = gopigo_agent::update::restart_requested() => {}
                }
            };
            rt.block_on(gopigo_agent::run(cfg, shutdown))?;
            drop(rt);
            if gopigo_agent::update::restart_pending() {
                return restart(&exe, args.restart);
            }
            Ok(())
        }
    }
}
