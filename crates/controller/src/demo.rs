//! `gopigo demo`: the whole system on one machine with one command.
//!
//! A supervisor that runs children of the same binary, each in its own
//! process group and with a parent-death signal so none outlives it:
//! 1. the local core (`gopigo core`, ports chosen at run time);
//! 2. identities through `gopigo provision`: `dashboard` and `operator`
//!    (controllers: the page, and the CLI's default), one per robot, and
//!    `detector` for the detector; the data dir keeps them between runs
//!    (re-provisioning is a no-op);
//! 3. one `gopigo agent --sim` per robot, camera and sim debug endpoint on
//!    loopback ports picked here;
//! 4. one `gopigo detect` for all robots' streams (one model session, the
//!    newest frame of each robot in turn), when the detector and its model
//!    are set up (otherwise the page says how to set them up);
//! 5. `gopigo dashboard`.
//!
//! It waits until the robots show online on the dashboard, prints the URL
//! and writes `DATA/demo.json` (ports, pids, config paths) for scripts and
//! tests. The binary's shutdown future (SIGINT/SIGTERM) stops the children
//! in reverse order (SIGTERM to each group, then SIGKILL after a grace
//! period), also while they are still starting. Children's output goes to
//! `DATA/logs/NAME.log`.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// Why the demo could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file or folder in the data dir could not be made, read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done, e.g. `cannot create log`.
        what: &'static str,
        /// The file or folder at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A child could not be started.
    #[error("cannot start {name} ({exe}): {source}")]
    Spawn {
        /// The child, as its log is named (`core`, `agent-robot1`, ...).
        name: String,
        /// The `gopigo` binary that was run.
        exe: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A step failed; the message says which, and where its log is.
    #[error("{0}")]
    Step(String),
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `gopigo` binary to run the children with (`current_exe()`).
    pub exe: PathBuf,
    /// Where identities, the core's registry and logs live.
    pub data_dir: PathBuf,
    /// Dashboard port (0 = any free port).
    pub port: u16,
    /// The robots' thing names; each gets a simulated agent.
    pub robots: Vec<String>,
    /// Run detectors when available.
    pub detect: bool,
    /// Stop after this long (for scripted runs); `None`: until a signal.
    pub run_for: Option<Duration>,
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

/// The children, stopped in reverse start order on drop.
struct Supervisor {
    procs: Vec<Proc>,
    logs: PathBuf,
}

impl Supervisor {
    fn spawn(&mut self, name: &str, exe: &Path, args: &[String]) -> Result<u32, DemoError> {
        self.spawn_env(name, exe, args, &[])
    }

    fn spawn_env(
        &mut self,
        name: &str,
        exe: &Path,
        args: &[String],
        envs: &[(&str, &str)],
    ) -> Result<u32, DemoError> {
        let log = self.logs.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|source| DemoError::Io {
            what: "cannot create log",
            path: log.clone(),
            source,
        })?;
        let err = file.try_clone().map_err(|source| DemoError::Io {
            what: "cannot open log",
            path: log.clone(),
            source,
        })?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0);
        set_parent_death_signal(&mut cmd);
        let child = cmd.spawn().map_err(|source| DemoError::Spawn {
            name: name.to_string(),
            exe: exe.to_path_buf(),
            source,
        })?;
        let pid = child.id();
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
            exited: None,
        });
        Ok(pid)
    }

    /// Children that exited since the last call.
    fn reap(&mut self) -> Vec<(String, ExitStatus, PathBuf)> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if p.exited.is_none() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    p.exited = Some(status);
                    out.push((p.name.clone(), status, p.log.clone()));
                }
            }
        }
        out
    }

    fn running(&mut self, name: &str) -> bool {
        self.reap();
        self.procs
            .iter()
            .any(|p| p.name == name && p.exited.is_none())
    }

    /// SIGTERM to every group, newest first; SIGKILL what is left after `grace`.
    fn stop_all(&mut self, grace: Duration) {
        for p in self.procs.iter_mut().rev() {
            if p.exited.is_none() {
                if let Ok(Some(s)) = p.child.try_wait() {
                    p.exited = Some(s);
                    continue;
                }
                let _ = killpg(Pid::from_raw(p.child.id() as i32), Signal::SIGTERM);
                // Let agents say goodbye to the core before the core goes.
                let until = Instant::now() + grace / 2;
                while Instant::now() < until {
                    if let Ok(Some(s)) = p.child.try_wait() {
                        p.exited = Some(s);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let deadline = Instant::now() + grace;
        for p in self.procs.iter_mut() {
            while p.exited.is_none() && Instant::now() < deadline {
                if let Ok(Some(s)) = p.child.try_wait() {
                    p.exited = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if p.exited.is_none() {
                let _ = killpg(Pid::from_raw(p.child.id() as i32), Signal::SIGKILL);
                let _ = p.child.kill();
                p.exited = p.child.wait().ok();
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

/// Children get SIGTERM when the thread that spawned them (the demo's main
/// thread) dies, so a killed demo leaves nothing behind.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl(2), which is async-signal-safe; it touches no locks or
    // allocations of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DemoError {
    let path = path.to_path_buf();
    move |source| DemoError::Io { what, path, source }
}

/// `n` distinct free loopback ports: all are held until every one is
/// chosen, so the kernel cannot hand out the same port twice (the children
/// that bind them start at different times).
fn free_ports(n: usize) -> Result<Vec<u16>, DemoError> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("cannot find a free port on", Path::new("127.0.0.1")))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(io_err("cannot find a free port on", Path::new("127.0.0.1")))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// A tiny blocking HTTP GET on loopback with the dashboard's token (status, body).
fn http_get(addr: SocketAddr, path: &str, token: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Reads a provisioned bundle's `robot.toml` as a TOML table.
fn read_table(path: &Path) -> Result<toml::Table, DemoError> {
    let text = std::fs::read_to_string(path).map_err(io_err("cannot read", path))?;
    text.parse::<toml::Table>()
        .map_err(|e| DemoError::Step(format!("{} is not valid TOML: {e}", path.display())))
}

fn write_file(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(io_err("cannot write", path))
}

/// The core's ports from its `endpoints.json` (never a camera).
fn core_ports(endpoints: &Value) -> Vec<u16> {
    ["controlPlane", "mqtt", "mqttAlpn", "httpsPublish"]
        .iter()
        .filter_map(|k| endpoints[*k].as_str())
        .filter_map(|a| a.rsplit(':').next()?.parse().ok())
        .collect()
}

/// The controller config for a provisioned controller bundle. A dashboard
/// of the demo fetches the robots' loopback cameras, never `core_ports`.
pub fn controller_toml(
    bundle_config: &toml::Table,
    listen: SocketAddr,
    note: Option<&str>,
    robots: &[String],
    core_ports: &[u16],
) -> String {
    let mut t = toml::Table::new();
    if let Some(m) = bundle_config.get("mqtt") {
        t.insert("mqtt".into(), m.clone());
    }
    let mut d = toml::Table::new();
    d.insert("listen".into(), toml::Value::String(listen.to_string()));
    if let Some(n) = note {
        d.insert("detection_note".into(), toml::Value::String(n.to_string()));
    }
    if !robots.is_empty() {
        let list = robots.iter().map(|r| toml::Value::String(r.clone()));
        d.insert("robots".into(), toml::Value::Array(list.collect()));
    }
    d.insert("allow_loopback_camera".into(), toml::Value::Boolean(true));
    let ports = core_ports
        .iter()
        .map(|p| toml::Value::Integer(i64::from(*p)));
    d.insert("core_ports".into(), toml::Value::Array(ports.collect()));
    t.insert("dashboard".into(), toml::Value::Table(d));
    format!(
        "# Written by `gopigo demo` from the provisioned bundle beside it.\n{}",
        toml::to_string(&t).unwrap_or_default()
    )
}

/// The agent config for a demo robot: the bundle's `robot.toml` plus a
/// loopback camera and the sim debug endpoint on the given ports.
pub fn agent_toml(bundle_config: &toml::Table, camera_port: u16, debug_port: u16) -> String {
    let mut t = bundle_config.clone();
    let mut cam = toml::Table::new();
    cam.insert("port".into(), toml::Value::Integer(camera_port.into()));
    cam.insert("bind".into(), toml::Value::String("127.0.0.1".into()));
    cam.insert(
        "public_host".into(),
        toml::Value::String("127.0.0.1".into()),
    );
    t.insert("camera".into(), toml::Value::Table(cam));
    let mut sim = toml::Table::new();
    sim.insert("debug_port".into(), toml::Value::Integer(debug_port.into()));
    t.insert("sim".into(), toml::Value::Table(sim));
    let mut board = toml::Table::new();
    board.insert("kind".into(), toml::Value::String("sim".into()));
    t.insert("board".into(), toml::Value::Table(board));
    format!(
        "# Written by `gopigo demo` from the provisioned robot.toml beside it.\n{}",
        toml::to_string(&t).unwrap_or_default()
    )
}

/// Refuses to start a second demo on the same data dir, or on a dashboard
/// port that is taken, before anything is started.
fn preflight(opts: &DemoOptions) -> Result<(), DemoError> {
    let info = opts.data_dir.join("demo.json");
    if let Ok(text) = std::fs::read_to_string(&info) {
        let pid = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["pid"].as_i64());
        if let Some(pid) = pid {
            let pid = Pid::from_raw(pid as i32);
            if pid != Pid::this() && nix::sys::signal::kill(pid, None).is_ok() {
                return Err(DemoError::Step(format!(
                    "a demo is already running with the data dir {} (pid {pid}); stop it, or pass another --data-dir",
                    opts.data_dir.display()
                )));
            }
        }
    }
    if opts.port != 0 {
        TcpListener::bind(("127.0.0.1", opts.port)).map_err(|e| {
            DemoError::Step(format!(
                "the dashboard port 127.0.0.1:{} is not free ({e}); pass another --port (0 = any free port)",
                opts.port
            ))
        })?;
    }
    Ok(())
}

/// Whether `gopigo detect` can run here, or why not (shown on the page).
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// Run `gopigo detect` with these extra arguments.
    Available(Vec<String>),
    /// Why not, and how to set it up.
    Unavailable(String),
}

/// Finds out whether `gopigo detect` can publish detections here: the
/// build must have it (with `--mqtt-config`), and one detection on a small
/// probe image (written into `scratch`) must succeed, which needs the model
/// and ONNX Runtime (`crates/vision/setup.sh`).
pub fn probe_detection(exe: &Path, scratch: &Path) -> Detection {
    let help = Command::new(exe).args(["detect", "--help"]).output();
    let help = match help {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).to_string(),
        _ => return Detection::Unavailable("this build has no `gopigo detect` command".into()),
    };
    if !help.contains("--mqtt-config") {
        return Detection::Unavailable(
            "this build's `gopigo detect` cannot publish detections over MQTT".into(),
        );
    }
    let image = gopigo_camera::jpeg::RgbImage::filled(64, 48, [90, 120, 150]);
    let probe = scratch.join("detect-probe.jpg");
    let written = gopigo_camera::jpeg::encode_jpeg(&image, 80)
        .map_err(|e| e.to_string())
        .and_then(|j| std::fs::write(&probe, j).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return Detection::Unavailable(format!("cannot write {}: {e}", probe.display()));
    }
    let out = Command::new(exe)
        .args(["detect", &probe.display().to_string(), "--max-frames", "1"])
        .stdin(Stdio::null())
        .output();
    match out {
        // yolov3-tiny scores the photos on the simulated walls lower than
        // the originals (dog.jpg's dog: 0.57 there, ~0.3 in the rendered
        // view), so the demo shows boxes from 0.3 up.
        Ok(o) if o.status.success() => Detection::Available(vec!["--conf".into(), "0.3".into()]),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("it failed")
                .trim()
                .trim_start_matches("gopigo: error: ")
                .to_string();
            Detection::Unavailable(format!(
                "the detector is not set up ({last}); run crates/vision/setup.sh, then restart the demo"
            ))
        }
        Err(e) => Detection::Unavailable(format!("cannot run `gopigo detect`: {e}")),
    }
}

/// Starts `gopigo core` on ports picked by the kernel and waits for its
/// `endpoints.json`: (pid, endpoints, MQTT port).
async fn start_core(
    sup: &mut Supervisor,
    exe: &Path,
    core_dir: &Path,
) -> Result<(u32, Value, u16), DemoError> {
    let endpoints = core_dir.join("endpoints.json");
    let _ = std::fs::remove_file(&endpoints);
    let mut args = vec![
        "core".to_string(),
        "--data-dir".to_string(),
        core_dir.display().to_string(),
    ];
    for flag in ["--port", "--mqtt-port", "--https-port", "--alpn-port"] {
        args.extend([flag.to_string(), "0".to_string()]);
    }
    let pid = sup.spawn("core", exe, &args)?;
    let log = sup.logs.join("core.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let info: Value = loop {
        if let Ok(text) = std::fs::read_to_string(&endpoints) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if v["pid"].as_u64() == Some(u64::from(pid)) {
                    break v;
                }
            }
        }
        if !sup.running("core") || Instant::now() > deadline {
            return Err(DemoError::Step(format!(
                "the core did not start; its log {} ends:\n{}",
                log.display(),
                tail(&log, 15)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let port = info["mqtt"]
        .as_str()
        .and_then(|m| m.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| DemoError::Step(format!("{} has no MQTT port", endpoints.display())))?;
    Ok((pid, info, port))
}

/// Runs `gopigo provision` for one identity (a no-op when it exists).
fn provision(
    exe: &Path,
    thing: &str,
    role: &str,
    bundle: &Path,
    core_dir: &Path,
    mqtt_port: u16,
    logs: &Path,
) -> Result<(), DemoError> {
    let log = logs.join(format!("provision-{thing}.log"));
    let file = File::create(&log).map_err(io_err("cannot create", &log))?;
    let err = file.try_clone().map_err(io_err("cannot open", &log))?;
    let status = Command::new(exe)
        .args(["provision", "--thing", thing, "--role", role, "--out"])
        .arg(bundle)
        .arg("--data-dir")
        .arg(core_dir)
        .args([
            "--mqtt-host",
            "localhost",
            "--mqtt-port",
            &mqtt_port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|source| DemoError::Spawn {
            name: format!("provision {thing}"),
            exe: exe.to_path_buf(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(DemoError::Step(format!(
            "provisioning {thing} ({role}) failed; {} ends:\n{}",
            log.display(),
            tail(&log, 15)
        )))
    }
}

/// Runs the demo until `shutdown` resolves (the binary's SIGINT/SIGTERM),
/// `run_for` passes or the core dies, printing progress to `out`.
/// `detection` says whether to start detectors. A `shutdown` while starting
/// stops what was started so far.
pub async fn run(
    opts: DemoOptions,
    detection: Detection,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    preflight(&opts)?;
    let logs = opts.data_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io_err("cannot create", &logs))?;
    let mut sup = Supervisor {
        procs: Vec::new(),
        logs,
    };
    tokio::pin!(shutdown);
    let started = tokio::select! {
        biased;
        () = &mut shutdown => None,
        started = start(&mut sup, &opts, &detection, out) => Some(started?),
    };
    let info_path = opts.data_dir.join("demo.json");
    let reason = match started {
        None => "asked to stop while starting".to_string(),
        Some(started) => {
            let info = started.info(&sup.logs);
            let text = serde_json::to_string_pretty(&info).unwrap_or_default();
            write_file(&info_path, &text)?;
            started.print(&opts, &sup.logs, out)?;
            supervise(&mut sup, opts.run_for, shutdown, out).await?
        }
    };
    say(out, format_args!("stopping ({reason})…"))?;
    sup.stop_all(Duration::from_secs(6));
    let _ = std::fs::remove_file(&info_path);
    say(out, "gopigo demo stopped")?;
    Ok(())
}

/// The children the demo started and where to reach them.
struct Started {
    core_pid: u32,
    /// The core's `endpoints.json`.
    core: Value,
    robots: BTreeMap<String, Value>,
    detectors: BTreeMap<String, Value>,
    /// Why there is no detection, when there is none.
    note: Option<String>,
    dashboard: Dashboard,
}

/// The started dashboard.
struct Dashboard {
    pid: u32,
    listen: SocketAddr,
    /// Its sign-in token (printed, never written to `demo.json`).
    token: String,
    config: PathBuf,
    /// The CLI's controller config (`GOPIGO_CONTROLLER_CONFIG`).
    operator_config: PathBuf,
}

/// Starts everything in order: core, identities, agents, detectors,
/// dashboard; then waits for the robots to show online.
async fn start(
    sup: &mut Supervisor,
    opts: &DemoOptions,
    detection: &Detection,
    out: &mut (dyn Write + Send),
) -> Result<Started, DemoError> {
    let core_dir = opts.data_dir.join("core");
    say(
        out,
        format_args!("starting the local core (data dir {})", core_dir.display()),
    )?;
    let (core_pid, core, mqtt_port) = start_core(sup, &opts.exe, &core_dir).await?;
    let detect_args = match (detection, opts.detect) {
        (Detection::Available(a), true) => Some(a.clone()),
        _ => None,
    };
    let identities = identities(opts, detect_args.is_some());
    for (thing, role) in &identities {
        let bundle = opts.data_dir.join(thing);
        provision(
            &opts.exe, thing, role, &bundle, &core_dir, mqtt_port, &sup.logs,
        )?;
    }
    let names: Vec<String> = identities
        .iter()
        .map(|(t, r)| format!("{t} ({r})"))
        .collect();
    say(out, format_args!("identities ready: {}", names.join(", ")))?;

    // The robots' ports and the dashboard's, chosen together.
    let mut ports = free_ports(2 * opts.robots.len() + 1)?.into_iter();
    let dash_port = ports.next().unwrap_or_default();
    let robots = start_agents(sup, opts, &mut ports)?;
    let detectors = match &detect_args {
        Some(extra) => start_detectors(sup, opts, &robots, extra)?,
        None => BTreeMap::new(),
    };
    let note = match (detection, opts.detect) {
        (Detection::Unavailable(why), _) => Some(why.clone()),
        (_, false) => Some("the demo was started with --no-detect".to_string()),
        _ => None,
    };
    let port = if opts.port == 0 { dash_port } else { opts.port };
    let dashboard = start_dashboard(sup, opts, &core, note.as_deref(), port)?;
    wait_online(sup, opts, &dashboard, out).await?;
    Ok(Started {
        core_pid,
        core,
        robots,
        detectors,
        note,
        dashboard,
    })
}

/// Who gets an identity: `dashboard` and `operator` (controllers), each
/// robot, and `detector` (a controller) when detection runs.
fn identities(opts: &DemoOptions, detectors: bool) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = vec![
        ("dashboard".into(), "controller"),
        ("operator".into(), "controller"),
    ];
    out.extend(opts.robots.iter().map(|r| (r.clone(), "robot")));
    if detectors {
        out.push((DETECTOR.into(), "controller"));
    }
    out
}

/// One `gopigo agent --sim` per robot, with a loopback camera and sim
/// debug port from `ports`; their details by robot, for `demo.json`.
fn start_agents(
    sup: &mut Supervisor,
    opts: &DemoOptions,
    ports: &mut impl Iterator<Item = u16>,
) -> Result<BTreeMap<String, Value>, DemoError> {
    let mut robots = BTreeMap::new();
    for r in &opts.robots {
        let bundle = opts.data_dir.join(r);
        let table = read_table(&bundle.join("robot.toml"))?;
        let (cam, dbg) = (
            ports.next().unwrap_or_default(),
            ports.next().unwrap_or_default(),
        );
        let cfg = bundle.join("agent.toml");
        write_file(&cfg, &agent_toml(&table, cam, dbg))?;
        let args = ["agent", "--config", &cfg.display().to_string(), "--sim"].map(String::from);
        let pid = sup.spawn(&format!("agent-{r}"), &opts.exe, &args)?;
        robots.insert(
            r.clone(),
            json!({
                "pid": pid,
                "config": cfg,
                "camera_url": format!("http://127.0.0.1:{cam}/stream"),
                "sim_url": format!("http://127.0.0.1:{dbg}/sim"),
            }),
        );
    }
    Ok(robots)
}

/// The detector's identity (a controller): it reads the robots' camera
/// tokens from their status and publishes their detections.
const DETECTOR: &str = "detector";

/// The arguments of the one `gopigo detect` for every robot: each robot's
/// loopback camera paired with its name (pure).
pub fn detector_args(
    robots: &BTreeMap<String, Value>,
    mqtt_config: &Path,
    extra: &[String],
) -> Vec<String> {
    let mut args = vec![
        "detect".to_string(),
        "--mqtt-config".to_string(),
        mqtt_config.display().to_string(),
    ];
    for (r, info) in robots {
        let url = info["camera_url"].as_str().unwrap_or_default();
        args.extend(["--thing".into(), r.clone(), "--url".into(), url.to_string()]);
    }
    args.extend(extra.iter().cloned());
    args
}

/// One `gopigo detect` on every robot's camera, publishing as `detector`;
/// its pid under each robot's name, for `demo.json`.
fn start_detectors(
    sup: &mut Supervisor,
    opts: &DemoOptions,
    robots: &BTreeMap<String, Value>,
    extra: &[String],
) -> Result<BTreeMap<String, Value>, DemoError> {
    let config = opts.data_dir.join(DETECTOR).join("robot.toml");
    let args = detector_args(robots, &config, extra);
    let pid = sup.spawn("detect", &opts.exe, &args)?;
    Ok(robots
        .keys()
        .map(|r| (r.clone(), json!({"pid": pid})))
        .collect())
}

/// Writes the dashboard's and the operator's controller configs and starts
/// `gopigo dashboard` on `port`.
fn start_dashboard(
    sup: &mut Supervisor,
    opts: &DemoOptions,
    core: &Value,
    note: Option<&str>,
    port: u16,
) -> Result<Dashboard, DemoError> {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let controller_config = |name: &str, note: Option<&str>| -> Result<PathBuf, DemoError> {
        let dir = opts.data_dir.join(name);
        let bundle = read_table(&dir.join("robot.toml"))?;
        let path = dir.join("controller.toml");
        let text = controller_toml(&bundle, listen, note, &opts.robots, &core_ports(core));
        write_file(&path, &text)?;
        Ok(path)
    };
    let config = controller_config("dashboard", note)?;
    let operator_config = controller_config("operator", None)?;
    // The sign-in token goes to the dashboard in its environment (readable
    // only by this user), not on its command line (visible to all in ps).
    let token = crate::security::random_secret();
    let args = [
        "dashboard",
        "--config",
        &config.display().to_string(),
        "--port",
        &port.to_string(),
    ]
    .map(String::from);
    let env = [("GOPIGO_DASHBOARD_TOKEN", token.as_str())];
    let pid = sup.spawn_env("dashboard", &opts.exe, &args, &env)?;
    Ok(Dashboard {
        pid,
        listen,
        token,
        config,
        operator_config,
    })
}

/// Waits (up to 60 s) until the page would show every robot online; after
/// that, warns and goes on.
async fn wait_online(
    sup: &mut Supervisor,
    opts: &DemoOptions,
    dashboard: &Dashboard,
    out: &mut (dyn Write + Send),
) -> Result<(), DemoError> {
    let log = sup.logs.join("dashboard.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut online = Vec::new();
    loop {
        if !sup.running("dashboard") {
            return Err(DemoError::Step(format!(
                "the dashboard did not start; {} ends:\n{}",
                log.display(),
                tail(&log, 15)
            )));
        }
        if let Some((200, body)) = http_get(dashboard.listen, "/api/fleet", &dashboard.token) {
            online = online_robots(&body);
            if opts.robots.iter().all(|r| online.contains(r)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return say(
                out,
                format_args!(
                    "warning: only {online:?} of {:?} are online after 60 s; see the agents' logs in {}",
                    opts.robots,
                    sup.logs.display()
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The things `/api/fleet` shows online.
fn online_robots(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["robots"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["online"] == true)
                .filter_map(|r| r["thing"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Started {
    /// `demo.json`: ports, pids and config paths for scripts and tests.
    fn info(&self, logs: &Path) -> Value {
        json!({
            "dashboard_url": format!("http://{}/", self.dashboard.listen),
            "dashboard_pid": self.dashboard.pid,
            "core": self.core,
            "core_pid": self.core_pid,
            "robots": self.robots,
            "detectors": self.detectors,
            "detection_note": self.note,
            "operator_config": self.dashboard.operator_config,
            "dashboard_config": self.dashboard.config,
            "logs": logs,
            "pid": std::process::id(),
        })
    }

    /// The "running" banner: the sign-in URL, endpoints and a command to try.
    fn print(
        &self,
        opts: &DemoOptions,
        logs: &Path,
        out: &mut (dyn Write + Send),
    ) -> Result<(), DemoError> {
        let d = &self.dashboard;
        let mqtt = self.core["mqtt"].as_str().unwrap_or_default();
        say(out, "")?;
        say(out, "gopigo demo is running")?;
        say(
            out,
            format_args!("  dashboard   http://{}/?token={}", d.listen, d.token),
        )?;
        say(
            out,
            format_args!("  MQTT        {mqtt} (local core, mutual TLS)"),
        )?;
        for (r, i) in &self.robots {
            say(
                out,
                format_args!(
                    "  {r:<10}  camera {}  sim {}",
                    i["camera_url"].as_str().unwrap_or_default(),
                    i["sim_url"].as_str().unwrap_or_default()
                ),
            )?;
        }
        match &self.note {
            None => say(out, "  detection   on")?,
            Some(n) => say(out, format_args!("  detection   off: {n}"))?,
        }
        say(
            out,
            format_args!(
                "  try         GOPIGO_CONTROLLER_CONFIG={} gopigo drive {} forward --for 1s",
                d.operator_config.display(),
                opts.robots.first().map(String::as_str).unwrap_or("robot1")
            ),
        )?;
        say(out, format_args!("  logs        {}", logs.display()))?;
        say(out, "Stop with Ctrl-C.")?;
        out.flush().ok();
        Ok(())
    }
}

/// Watches the children until `shutdown`, `run_for` or the core's exit;
/// returns why it stopped. A child that exits is reported with its log.
async fn supervise(
    sup: &mut Supervisor,
    run_for: Option<Duration>,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    out: &mut (dyn Write + Send),
) -> Result<String, DemoError> {
    let time_up = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(time_up);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok("asked to stop".to_string()),
            () = &mut time_up => return Ok("time is up".to_string()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                let mut core_gone = None;
                for (name, status, log) in sup.reap() {
                    say(out, format_args!("{name} exited ({status}); its log: {}", log.display()))?;
                    if name == "core" {
                        core_gone = Some(status);
                    }
                }
                if let Some(status) = core_gone {
                    return Ok(format!("the core exited ({status})"));
                }
            }
        }
    }
}

/// One line to the demo's output.
fn say(out: &mut (dyn Write + Send), line: impl std::fmt::Display) -> Result<(), DemoError> {
    writeln!(out, "{line}").map_err(io_err("cannot write to", Path::new("stdout")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BUNDLE: &str = r#"
thing = "robot1"

[mqtt]
host = "localhost"
port = 40001
client_id = "robot1"
ca_file = "/d/robot1/ca.pem"
cert_file = "/d/robot1/cert.pem"
key_file = "/d/robot1/key.pem"
"#;

    #[test]
    fn controller_config_keeps_the_identity_and_sets_the_dashboard() {
        let t: toml::Table = BUNDLE.parse().unwrap();
        let text = controller_toml(
            &t,
            "127.0.0.1:9000".parse().unwrap(),
            Some("no model"),
            &["robot1".to_string()],
            &core_ports(
                &json!({"mqtt": "127.0.0.1:40001", "controlPlane": "http://127.0.0.1:40002"}),
            ),
        );
        let c = crate::ControllerConfig::parse(&text, Path::new("/d/dashboard/controller.toml"))
            .unwrap();
        assert_eq!(c.mqtt.port, 40001);
        assert_eq!(c.mqtt.cert_file, Path::new("/d/robot1/cert.pem"));
        assert_eq!(c.dashboard.listen.port(), 9000);
        assert_eq!(c.dashboard.detection_note.as_deref(), Some("no model"));
        assert_eq!(c.dashboard.robots, ["robot1"]);
        assert!(c.dashboard.allow_loopback_camera);
        assert_eq!(c.dashboard.core_ports, [40002, 40001]);
    }

    #[test]
    fn one_detector_serves_every_robot() {
        let robots: BTreeMap<String, Value> = [
            ("robot1", "http://127.0.0.1:7001/stream"),
            ("robot2", "http://127.0.0.1:7003/stream"),
        ]
        .into_iter()
        .map(|(r, u)| (r.to_string(), json!({ "camera_url": u })))
        .collect();
        let args = detector_args(
            &robots,
            Path::new("/d/detector/robot.toml"),
            &["--conf".into(), "0.3".into()],
        );
        assert_eq!(
            args.join(" "),
            "detect --mqtt-config /d/detector/robot.toml \
             --thing robot1 --url http://127.0.0.1:7001/stream \
             --thing robot2 --url http://127.0.0.1:7003/stream --conf 0.3"
        );
        let ids = identities(
            &DemoOptions {
                exe: PathBuf::from("gopigo"),
                data_dir: PathBuf::from("/d"),
                port: 0,
                robots: vec!["robot1".into(), "robot2".into()],
                detect: true,
                run_for: None,
            },
            true,
        );
        assert_eq!(ids.iter().filter(|(_, r)| *r == "controller").count(), 3);
    }

    #[test]
    fn agent_config_adds_loopback_camera_and_debug_ports() {
        let t: toml::Table = BUNDLE.parse().unwrap();
        let v: toml::Table = agent_toml(&t, 7001, 7002).parse().unwrap();
        assert_eq!(v["thing"].as_str(), Some("robot1"));
        assert_eq!(v["mqtt"]["port"].as_integer(), Some(40001));
        assert_eq!(v["camera"]["port"].as_integer(), Some(7001));
        assert_eq!(v["camera"]["bind"].as_str(), Some("127.0.0.1"));
        assert_eq!(v["sim"]["debug_port"].as_integer(), Some(7002));
    }

    #[test]
    fn refuses_a_busy_port_and_a_running_demo() {
        let dir = tempfile::tempdir().unwrap();
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut opts = DemoOptions {
            exe: PathBuf::from("gopigo"),
            data_dir: dir.path().to_path_buf(),
            port: busy.local_addr().unwrap().port(),
            robots: vec!["robot1".into()],
            detect: false,
            run_for: None,
        };
        let e = preflight(&opts).unwrap_err().to_string();
        assert!(e.contains("--port"), "{e}");
        opts.port = 0;
        preflight(&opts).unwrap();
        // demo.json of a live process (the parent of this test) means busy
        let parent = nix::unistd::getppid();
        std::fs::write(
            dir.path().join("demo.json"),
            format!(r#"{{"pid": {parent}}}"#),
        )
        .unwrap();
        let e = preflight(&opts).unwrap_err().to_string();
        assert!(e.contains("already running"), "{e}");
    }

    /// A stand-in `gopigo` whose `core` never gets ready: it writes its pid
    /// and sleeps.
    fn stuck_core_exe(dir: &Path) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let pid_file = dir.join("core.pid");
        let exe = dir.join("fake-gopigo");
        let script = format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 60\n",
            pid_file.display()
        );
        std::fs::write(&exe, script).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        (exe, pid_file)
    }

    #[tokio::test]
    async fn shutdown_while_starting_stops_what_was_started() {
        let dir = tempfile::tempdir().unwrap();
        let (exe, pid_file) = stuck_core_exe(dir.path());
        let opts = DemoOptions {
            exe,
            data_dir: dir.path().join("data"),
            port: 0,
            robots: vec!["robot1".into()],
            detect: false,
            run_for: None,
        };
        std::fs::create_dir_all(&opts.data_dir).unwrap();
        // The shutdown future fires once the stand-in core is running.
        let pid = pid_file.clone();
        let shutdown = async move {
            while !std::fs::read_to_string(&pid).is_ok_and(|t| t.ends_with('\n')) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let mut out = Vec::new();
        let detection = Detection::Unavailable("test".into());
        run(opts, detection, &mut out, shutdown).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("starting the local core"), "{text}");
        assert!(
            text.contains("stopping (asked to stop while starting)"),
            "{text}"
        );
        assert!(text.ends_with("gopigo demo stopped\n"), "{text}");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Stopped and reaped: no such process any more.
        assert!(nix::sys::signal::kill(Pid::from_raw(pid), None).is_err());
    }

    #[test]
    fn free_ports_are_distinct_and_usable() {
        let a = free_ports(1).unwrap()[0];
        let many = free_ports(9).unwrap();
        let mut distinct = many.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 9, "{many:?}");
        assert!(a > 0);
        TcpListener::bind(("127.0.0.1", a)).unwrap();
    }
}
