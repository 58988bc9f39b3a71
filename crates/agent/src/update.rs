//! Over-the-air updates of the agent through AWS IoT Jobs.
//!
//! The robot listens on `$aws/things/{thing}/jobs/notify-next` and asks for
//! its next job with `start-next` at every connection (the execution goes
//! IN_PROGRESS). A job whose document says `"operation":
//! "gopigo-agent-update"` names the new build's `url`, `sha256`, `size`
//! and `version`. The agent:
//!
//! 1. downloads it beside its own binary (`<exe>.new`), refusing more than
//!    the document's size or [`Limits::max_bytes`];
//! 2. checks the size and SHA-256: a mismatch reports FAILED with the
//!    reason, and the robot stays online on the version it runs;
//! 3. swaps atomically: fsync the new file, keep the running binary as
//!    `<exe>.previous` (a hard link), write the pending state
//!    (`<exe>.update.json`), rename the new file over `<exe>`, fsync the
//!    folder;
//! 4. restarts: the session ends as on shutdown (motors stopped first), and
//!    `gopigo agent` execs the new binary (or exits for systemd's
//!    `Restart=always`);
//! 5. the new binary, finding the pending state, reports SUCCEEDED once it
//!    is connected and runs the promised version. If it is not connected by
//!    the deadline, it puts `<exe>.previous` back and restarts into it,
//!    which reports FAILED.
//!
//! A job of another operation is REJECTED. Progress also goes to the
//! thing's shadow (`reported.agent`), so dashboards show it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gopigo_protocol::{JobsFilter, JobsMsg, JobsRequest, ShadowMsg, Topic};
use rumqttc::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `operation` of an agent update job document.
pub const OPERATION: &str = "gopigo-agent-update";

/// The version this binary reports (its marked version; see
/// [`gopigo_protocol::version`]).
pub fn version() -> String {
    gopigo_protocol::agent_version()
}

static EXE: OnceLock<PathBuf> = OnceLock::new();
static RESTART: tokio::sync::Notify = tokio::sync::Notify::const_new();
static RESTART_PENDING: AtomicBool = AtomicBool::new(false);

/// The binary this process started from, read once at start: after a swap
/// `/proc/self/exe` names the replaced file.
pub fn exe_path() -> PathBuf {
    EXE.get_or_init(|| std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gopigo")))
        .clone()
}

/// Whether an update asked for a restart into the new binary.
pub fn restart_pending() -> bool {
    RESTART_PENDING.load(Ordering::SeqCst)
}

/// Resolves when an update asks for a restart (used as a shutdown cause).
pub async fn restart_requested() {
    RESTART.notified().await
}

fn request_restart() {
    RESTART_PENDING.store(true, Ordering::SeqCst);
    RESTART.notify_one();
}

/// Bounds of an update, from the environment.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest binary accepted (`GOPIGO_UPDATE_MAX_BYTES`, default 256 MiB).
    pub max_bytes: u64,
    /// How long a new binary has to connect (`GOPIGO_UPDATE_DEADLINE_S`, default 120).
    pub connect_deadline: Duration,
    /// Longest download (`GOPIGO_UPDATE_DOWNLOAD_TIMEOUT_S`, default 600).
    pub download_timeout: Duration,
}

impl Limits {
    /// The limits, with the environment's overrides.
    pub fn from_env() -> Self {
        let num = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(d)
        };
        Limits {
            max_bytes: num("GOPIGO_UPDATE_MAX_BYTES", 256 * 1024 * 1024),
            connect_deadline: Duration::from_secs(num("GOPIGO_UPDATE_DEADLINE_S", 120)),
            download_timeout: Duration::from_secs(num("GOPIGO_UPDATE_DOWNLOAD_TIMEOUT_S", 600)),
        }
    }
}

/// An agent update job document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UpdateDocument {
    /// Always [`OPERATION`].
    pub operation: String,
    /// The new build's version.
    pub version: String,
    /// Where to download it (http or https).
    pub url: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Reads and checks a job document; `Ok(None)` when it is not an update.
pub fn parse_document(doc: &Value, max_bytes: u64) -> Result<Option<UpdateDocument>, String> {
    if doc.get("operation").and_then(Value::as_str) != Some(OPERATION) {
        return Ok(None);
    }
    let d: UpdateDocument = serde_json::from_value(doc.clone())
        .map_err(|e| format!("the update document is incomplete: {e}"))?;
    if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("sha256 must be 64 hex digits".into());
    }
    if !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
        return Err(format!("url '{}' must be http:// or https://", d.url));
    }
    if d.size == 0 || d.size > max_bytes {
        return Err(format!(
            "size {} is not within 1..={max_bytes} bytes (GOPIGO_UPDATE_MAX_BYTES)",
            d.size
        ));
    }
    Ok(Some(d))
}

/// What the pending-update file says.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Pending {
    /// The IoT job that started the update; its status is reported
    /// against this id once the update settles.
    pub job_id: String,
    /// The version the job installs.
    pub version: String,
    /// The version that ran before.
    pub from_version: String,
    /// `trial`: the new binary must connect by `deadline_ms`;
    /// `rolled_back`: it did not, and the previous binary is back.
    pub phase: String,
    /// Unix ms.
    pub deadline_ms: u64,
    /// Why it was rolled back.
    #[serde(default)]
    pub reason: Option<String>,
}

fn state_path(exe: &Path) -> PathBuf {
    sibling(exe, "update.json")
}

fn sibling(exe: &Path, suffix: &str) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    exe.with_file_name(name)
}

fn unix_ms() -> u64 {
    gopigo_protocol::unix_ms()
}

/// Writes `bytes` to `path` through a temporary file, fsynced and renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = sibling(path, "tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn read_pending(exe: &Path) -> Option<Pending> {
    let text = std::fs::read(state_path(exe)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable pending-update file");
            None
        }
    }
}

/// Installs the verified `<exe>.new` as `exe`, keeping the running one as
/// `<exe>.previous` and recording `pending` first.
pub fn swap_in(exe: &Path, pending: &Pending) -> std::io::Result<()> {
    let new = sibling(exe, "new");
    let previous = sibling(exe, "previous");
    let _ = std::fs::remove_file(&previous);
    if std::fs::hard_link(exe, &previous).is_err() {
        std::fs::copy(exe, &previous)?;
    }
    write_atomic(
        &state_path(exe),
        &serde_json::to_vec(pending).unwrap_or_default(),
    )?;
    std::fs::rename(&new, exe)?;
    sync_dir(exe)
}

/// Puts `<exe>.previous` back as `exe` (a copy through a temporary file and
/// a rename, so `.previous` stays) and records why.
pub fn roll_back(exe: &Path, pending: &Pending, reason: &str) -> std::io::Result<()> {
    let previous = sibling(exe, "previous");
    let tmp = sibling(exe, "rollback");
    std::fs::copy(&previous, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    let back = Pending {
        phase: "rolled_back".into(),
        reason: Some(reason.to_string()),
        ..pending.clone()
    };
    write_atomic(
        &state_path(exe),
        &serde_json::to_vec(&back).unwrap_or_default(),
    )?;
    std::fs::rename(&tmp, exe)?;
    sync_dir(exe)
}

/// The job side of the MQTT session.
pub struct Updater {
    thing: String,
    client: AsyncClient,
    exe: PathBuf,
    limits: Limits,
    pending: Option<Pending>,
    busy: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    awaiting_grant: bool,
    jobs_denied: bool,
}

impl Updater {
    /// The updater of `thing`; a pending trial starts its rollback deadline.
    pub fn new(thing: &str, client: AsyncClient) -> Self {
        let exe = exe_path();
        let limits = Limits::from_env();
        let pending = read_pending(&exe);
        let connected = Arc::new(AtomicBool::new(false));
        if let Some(p) = pending.as_ref().filter(|p| p.phase == "trial") {
            spawn_deadline(exe.clone(), p.clone(), connected.clone());
        }
        Updater {
            thing: thing.to_string(),
            client,
            exe,
            limits,
            pending,
            busy: Arc::new(AtomicBool::new(false)),
            connected,
            awaiting_grant: false,
            jobs_denied: false,
        }
    }

    /// The one filter of this thing's jobs topics, `$aws/things/{thing}/jobs/#`.
    fn filter(&self) -> JobsFilter<'_> {
        JobsFilter::of(&self.thing)
    }

    /// Whether `topic` is one of this thing's jobs topics.
    pub fn handles(&self, topic: &str) -> bool {
        Topic::parse(topic).is_ok_and(|t| self.filter().matches(&t))
    }

    /// After each CONNACK: report the version, subscribe to the jobs topics
    /// (one filter, so that its SUBACK is told apart by [`Self::on_suback`]).
    /// Nothing is published to them before the broker grants the filter: a
    /// policy made before updates existed does not allow them, and AWS
    /// closes the connection of a client that subscribes or publishes where
    /// it may not (see [`Self::on_link_lost`]).
    pub fn on_connect(&mut self) {
        self.connected.store(true, Ordering::SeqCst);
        self.report_shadow(None);
        if self.jobs_denied {
            return;
        }
        match self
            .client
            .try_subscribe(self.filter().to_string(), QoS::AtLeastOnce)
        {
            Ok(()) => self.awaiting_grant = true,
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to the jobs topics"),
        }
    }

    /// A SUBACK: once the jobs filter is granted, settle a pending update
    /// and ask for the next job; if refused, say why updates are off.
    pub fn on_suback(&mut self, codes: &[rumqttc::SubscribeReasonCode]) {
        if !self.awaiting_grant || codes.len() != 1 {
            return;
        }
        self.awaiting_grant = false;
        if codes[0] == rumqttc::SubscribeReasonCode::Failure {
            self.deny();
            return;
        }
        if let Some(p) = self.pending.take() {
            self.settle(&p);
        }
        self.start_next();
    }

    /// Asks the service for the next pending execution (and starts it).
    fn start_next(&self) {
        let topic = Topic::jobs(&self.thing, JobsMsg::Request(JobsRequest::StartNext));
        self.publish(&topic.to_string(), json!({}));
    }

    /// The connection closed: if the jobs SUBACK was still outstanding, the
    /// broker closed it for the subscription, so jobs stay off for this run
    /// (one reconnect, rather than one per connection).
    pub fn on_link_lost(&mut self) {
        if std::mem::take(&mut self.awaiting_grant) {
            self.deny();
        }
    }

    fn deny(&mut self) {
        self.jobs_denied = true;
        tracing::warn!(
            thing = %self.thing,
            "the broker refused the robot's jobs topics ({}): its policy predates over-the-air updates, which are off until the agent restarts; run `gopigo provision` again to update the fleet policy",
            self.filter()
        );
    }

    /// Reports the outcome of the update that restarted this process.
    fn settle(&self, p: &Pending) {
        let running = version();
        let (status, detail) = if p.phase == "rolled_back" {
            let why = p.reason.clone().unwrap_or_else(|| "rolled back".into());
            ("FAILED", format!("{why}; rolled back to {running}"))
        } else if running == p.version {
            ("SUCCEEDED", format!("running {running}"))
        } else {
            (
                "FAILED",
                format!(
                    "after the restart the agent runs {running}, not {}",
                    p.version
                ),
            )
        };
        tracing::info!(job = %p.job_id, status, detail, "update settled");
        crate::agent::announce(format!("update      {} {status}: {detail}", p.job_id));
        self.report(
            &p.job_id,
            status,
            &[("version", &running), ("detail", &detail)],
        );
        self.report_shadow(Some(
            json!({"job": p.job_id, "status": status, "detail": detail}),
        ));
        let _ = std::fs::remove_file(state_path(&self.exe));
    }

    fn publish(&self, topic: &str, body: Value) {
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, body.to_string())
        {
            tracing::warn!(topic, error = %e, "jobs publish dropped");
        }
    }

    fn report(&self, job: &str, status: &str, details: &[(&str, &str)]) {
        report(&self.client, &self.thing, job, status, details);
    }

    fn report_shadow(&self, update: Option<Value>) {
        report_shadow(&self.client, &self.thing, update);
    }

    /// Handles a message on a jobs topic.
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let Ok(Topic::Jobs { thing, msg: kind }) = Topic::parse(topic) else {
            return;
        };
        if thing != self.thing {
            return;
        }
        let msg: Value = serde_json::from_slice(payload).unwrap_or_default();
        match kind {
            JobsMsg::NotifyNext if msg.get("execution").is_some() => self.start_next(),
            JobsMsg::Accepted(JobsRequest::StartNext) => {
                if let Some(exec) = msg.get("execution") {
                    self.take(exec);
                }
            }
            JobsMsg::Rejected(_) => {
                tracing::warn!(topic, answer = %msg, "the jobs service refused a request");
            }
            _ => {}
        }
    }

    /// Starts the update an execution describes, unless one already runs.
    fn take(&mut self, exec: &Value) {
        let job = exec
            .get("jobId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let doc = exec.get("jobDocument").cloned().unwrap_or_default();
        let d = match parse_document(&doc, self.limits.max_bytes) {
            Ok(Some(d)) => d,
            Ok(None) => {
                self.report(
                    &job,
                    "REJECTED",
                    &[("reason", "not a gopigo-agent-update job")],
                );
                return;
            }
            Err(reason) => {
                self.report(&job, "FAILED", &[("reason", &reason)]);
                return;
            }
        };
        if self.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let running = version();
        if d.version == running {
            let detail = format!("already running {running}");
            self.report(
                &job,
                "SUCCEEDED",
                &[("version", &running), ("detail", &detail)],
            );
            self.busy.store(false, Ordering::SeqCst);
            return;
        }
        let run = Run {
            job,
            doc: d,
            client: self.client.clone(),
            thing: self.thing.clone(),
            exe: self.exe.clone(),
            limits: self.limits.clone(),
            busy: self.busy.clone(),
        };
        tokio::spawn(run.go());
    }
}

fn report(client: &AsyncClient, thing: &str, job: &str, status: &str, details: &[(&str, &str)]) {
    let details: serde_json::Map<String, Value> = details
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(v.chars().take(1000).collect::<String>()),
            )
        })
        .collect();
    let body = json!({ "status": status, "statusDetails": details });
    let topic = Topic::jobs(thing, JobsMsg::Request(JobsRequest::Update(job))).to_string();
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, body.to_string()) {
        tracing::warn!(job, error = %e, "job status dropped");
    }
}

fn report_shadow(client: &AsyncClient, thing: &str, update: Option<Value>) {
    let mut agent = json!({ "version": version() });
    if let Some(u) = update {
        agent["update"] = u;
    }
    let body = json!({ "state": { "reported": { "agent": agent } } });
    let topic = Topic::shadow(thing, ShadowMsg::Update).to_string();
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, body.to_string()) {
        tracing::warn!(error = %e, "shadow report dropped");
    }
}

/// The rollback deadline of a trial: if the session has not connected by
/// then, put the previous binary back and restart into it.
fn spawn_deadline(exe: PathBuf, p: Pending, connected: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let wait = p.deadline_ms.saturating_sub(unix_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if connected.load(Ordering::SeqCst) {
            return;
        }
        let reason = format!("version {} did not connect by its deadline", p.version);
        tracing::error!(job = %p.job_id, "{reason}; rolling back");
        match roll_back(&exe, &p, &reason) {
            Ok(()) => request_restart(),
            Err(e) => tracing::error!(error = %e, "cannot roll back; staying on this version"),
        }
    });
}

/// One update being carried out.
struct Run {
    job: String,
    doc: UpdateDocument,
    client: AsyncClient,
    thing: String,
    exe: PathBuf,
    limits: Limits,
    busy: Arc<AtomicBool>,
}

impl Run {
    async fn go(self) {
        let step = |s: &str| {
            report(
                &self.client,
                &self.thing,
                &self.job,
                "IN_PROGRESS",
                &[("step", s), ("version", &self.doc.version)],
            );
            report_shadow(
                &self.client,
                &self.thing,
                Some(
                    json!({"job": self.job, "status": "IN_PROGRESS", "step": s, "to": self.doc.version}),
                ),
            );
        };
        step("downloading");
        let new = sibling(&self.exe, "new");
        let got = tokio::time::timeout(
            self.limits.download_timeout,
            crate::download::fetch(&self.doc.url, &new, self.doc.size),
        )
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the download took longer than {:?}",
                self.limits.download_timeout
            ))
        });
        let checked = got.and_then(|sha| check_sha(&sha, &self.doc.sha256));
        if let Err(reason) = checked {
            let _ = std::fs::remove_file(&new);
            self.fail(&reason);
            return;
        }
        step("installing");
        let pending = Pending {
            job_id: self.job.clone(),
            version: self.doc.version.clone(),
            from_version: version(),
            phase: "trial".into(),
            deadline_ms: unix_ms() + self.limits.connect_deadline.as_millis() as u64,
            reason: None,
        };
        let exe = self.exe.clone();
        let swapped = tokio::task::spawn_blocking(move || swap_in(&exe, &pending))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = swapped {
            let _ = std::fs::remove_file(&new);
            self.fail(&format!(
                "cannot install the new binary beside {}: {e}",
                self.exe.display()
            ));
            return;
        }
        step("restarting");
        crate::agent::announce(format!(
            "update      {} installed {}; restarting",
            self.job, self.doc.version
        ));
        request_restart();
    }

    fn fail(&self, reason: &str) {
        tracing::warn!(job = %self.job, reason, "update failed; staying on this version");
        crate::agent::announce(format!("update      {} FAILED: {reason}", self.job));
        report(
            &self.client,
            &self.thing,
            &self.job,
            "FAILED",
            &[("reason", reason), ("version", &version())],
        );
        report_shadow(
            &self.client,
            &self.thing,
            Some(json!({"job": self.job, "status": "FAILED", "detail": reason})),
        );
        self.busy.store(false, Ordering::SeqCst);
    }
}

fn check_sha(got: &str, want: &str) -> Result<(), String> {
    if got.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(format!("checksum mismatch: the download's SHA-256 is {got}, the job says {want}; the file was not installed"))
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Result<Option<UpdateDocument>, String> {
        parse_document(&v, 1000)
    }

    #[test]
    fn the_updater_takes_its_own_jobs_topics_only() {
        let (client, _eventloop) =
            AsyncClient::new(rumqttc::MqttOptions::new("r1", "127.0.0.1", 1883), 10);
        let u = Updater::new("r1", client);
        assert_eq!(u.filter().to_string(), "$aws/things/r1/jobs/#");
        for topic in [
            "$aws/things/r1/jobs/notify-next",
            "$aws/things/r1/jobs/start-next/accepted",
            "$aws/things/r1/jobs/j1/update/rejected",
            "$aws/things/r1/jobs/$next/get/accepted",
        ] {
            assert!(u.handles(topic), "{topic}");
        }
        for topic in [
            "$aws/things/r2/jobs/notify-next",
            "$aws/things/r1/shadow/update/delta",
            "$aws/things/r1/jobsx/notify-next",
            "$aws/things/r1/jobs/j.1/update/accepted",
            "gopigo/r1/cmd",
        ] {
            assert!(!u.handles(topic), "{topic}");
        }
    }

    #[test]
    fn documents_are_checked() {
        let sha = "a".repeat(64);
        let good = json!({"operation": OPERATION, "version": "2", "url": "http://127.0.0.1/x", "sha256": sha, "size": 10});
        assert_eq!(doc(good.clone()).unwrap().unwrap().size, 10);
        assert_eq!(doc(json!({"operation": "reboot"})).unwrap(), None);
        let mut big = good.clone();
        big["size"] = json!(1001);
        assert!(doc(big).unwrap_err().contains("GOPIGO_UPDATE_MAX_BYTES"));
        let mut bad = good.clone();
        bad["sha256"] = json!("xyz");
        assert!(doc(bad).is_err());
        let mut ftp = good.clone();
        ftp["url"] = json!("ftp://h/x");
        assert!(doc(ftp).is_err());
        let mut missing = good;
        missing.as_object_mut().unwrap().remove("url");
        assert!(doc(missing).unwrap_err().contains("url"));
    }

    #[test]
    fn swap_keeps_the_previous_binary_and_roll_back_restores_it() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("gopigo");
        std::fs::write(&exe, b"old").unwrap();
        std::fs::write(sibling(&exe, "new"), b"new").unwrap();
        let p = Pending {
            job_id: "j".into(),
            version: "2".into(),
            from_version: "1".into(),
            phase: "trial".into(),
            deadline_ms: 1,
            reason: None,
        };
        swap_in(&exe, &p).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        assert_eq!(std::fs::read(sibling(&exe, "previous")).unwrap(), b"old");
        assert_eq!(read_pending(&exe).unwrap(), p);
        roll_back(&exe, &p, "did not connect").unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        assert_eq!(std::fs::read(sibling(&exe, "previous")).unwrap(), b"old");
        let back = read_pending(&exe).unwrap();
        assert_eq!(back.phase, "rolled_back");
        assert_eq!(back.reason.as_deref(), Some("did not connect"));
    }

    #[test]
    fn a_checksum_mismatch_names_both_sums() {
        let e = check_sha("ab", "cd").unwrap_err();
        assert!(
            e.contains("ab") && e.contains("cd") && e.contains("not installed"),
            "{e}"
        );
        assert!(check_sha("AB", "ab").is_ok());
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
