//! The jobs tables: jobs, their executions (one per job and thing) and job
//! templates, beside the registry in `core.db`. Functions take the open
//! transaction of [`Store::tx`](crate::store::Store::tx), so a request's
//! reads and writes are one atomic step.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Created with the registry at start (`CREATE ... IF NOT EXISTS`).
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    description TEXT,
    targets TEXT NOT NULL,
    target_selection TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    completed REAL,
    force_canceled INTEGER NOT NULL DEFAULT 0,
    reason_code TEXT,
    comment TEXT,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_executions (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    thing TEXT NOT NULL,
    execution_number INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL,
    queued REAL NOT NULL,
    started REAL,
    updated REAL NOT NULL,
    version INTEGER NOT NULL,
    force_canceled INTEGER NOT NULL DEFAULT 0,
    timeout_at REAL,
    PRIMARY KEY (job_id, thing)
);
CREATE INDEX IF NOT EXISTS job_executions_by_thing ON job_executions(thing);
CREATE TABLE IF NOT EXISTS job_templates (
    template_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    document TEXT,
    created REAL NOT NULL,
    config TEXT NOT NULL
);
"#;

/// A row of the jobs table: an IoT job and the things it targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// `jobId`.
    pub id: String,
    /// IN_PROGRESS, CANCELED, COMPLETED, DELETION_IN_PROGRESS.
    pub status: String,
    /// The job document, as given.
    pub document: String,
    /// `description`.
    pub description: Option<String>,
    /// Thing and thing-group ARNs.
    pub targets: Vec<String>,
    /// SNAPSHOT or CONTINUOUS.
    pub target_selection: String,
    /// Epoch seconds.
    pub created: f64,
    /// Epoch seconds.
    pub updated: f64,
    /// When it became COMPLETED or CANCELED.
    pub completed: Option<f64>,
    /// Canceled with `force`.
    pub force_canceled: bool,
    /// CancelJob's `reasonCode`.
    pub reason_code: Option<String>,
    /// CancelJob's `comment`.
    pub comment: Option<String>,
    /// Settings stored and returned as given (rollout, abort, timeout,
    /// presigned URL, retry, template ARN, document parameters).
    pub config: Map<String, Value>,
}

/// One job on one thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// `jobId`.
    pub job_id: String,
    /// The thing this execution runs on (one execution per job and thing).
    pub thing: String,
    /// `executionNumber`, increasing per thing.
    pub number: i64,
    /// QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED.
    pub status: String,
    /// `statusDetails`: strings the device reported.
    pub details: Map<String, Value>,
    /// Epoch seconds.
    pub queued: f64,
    /// When it went IN_PROGRESS.
    pub started: Option<f64>,
    /// Epoch seconds.
    pub updated: f64,
    /// `versionNumber`, bumped on every change.
    pub version: i64,
    /// Canceled with `force`.
    pub force_canceled: bool,
    /// When an IN_PROGRESS execution times out (step or job timeout).
    pub timeout_at: Option<f64>,
}

fn json_map(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let targets: String = r.get(4)?;
    let config: String = r.get(12)?;
    Ok(Job {
        id: r.get(0)?,
        status: r.get(1)?,
        document: r.get(2)?,
        description: r.get(3)?,
        targets: serde_json::from_str(&targets).unwrap_or_default(),
        target_selection: r.get(5)?,
        created: r.get(6)?,
        updated: r.get(7)?,
        completed: r.get(8)?,
        force_canceled: r.get(9)?,
        reason_code: r.get(10)?,
        comment: r.get(11)?,
        config: json_map(&config),
    })
}

const JOB_COLUMNS: &str = "job_id,status,document,description,targets,target_selection,created,updated,completed,force_canceled,reason_code,comment,config";

/// Inserts or replaces a job.
pub fn put_job(c: &Connection, j: &Job) -> Result<(), ApiError> {
    c.execute(
        // An upsert, not REPLACE: a REPLACE deletes the row first, and the
        // delete would cascade to the job's executions.
        &format!(
            "INSERT INTO jobs({JOB_COLUMNS}) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)
             ON CONFLICT(job_id) DO UPDATE SET status=excluded.status, document=excluded.document,
               description=excluded.description, targets=excluded.targets,
               target_selection=excluded.target_selection, updated=excluded.updated,
               completed=excluded.completed, force_canceled=excluded.force_canceled,
               reason_code=excluded.reason_code, comment=excluded.comment, config=excluded.config"
        ),
        params![
            j.id,
            j.status,
            j.document,
            j.description,
            serde_json::to_string(&j.targets).unwrap_or_default(),
            j.target_selection,
            j.created,
            j.updated,
            j.completed,
            j.force_canceled,
            j.reason_code,
            j.comment,
            Value::Object(j.config.clone()).to_string(),
        ],
    )?;
    Ok(())
}

/// A job by id.
pub fn job(c: &Connection, id: &str) -> Result<Option<Job>, ApiError> {
    Ok(c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=?1"),
        [id],
        job_row,
    )
    .optional()?)
}

/// Every job, in id order.
pub fn jobs(c: &Connection) -> Result<Vec<Job>, ApiError> {
    let mut stmt = c.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY job_id"))?;
    let rows = stmt.query_map([], job_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deletes a job with its executions.
pub fn delete_job(c: &Connection, id: &str) -> Result<(), ApiError> {
    c.execute("DELETE FROM job_executions WHERE job_id=?1", [id])?;
    c.execute("DELETE FROM jobs WHERE job_id=?1", [id])?;
    Ok(())
}

const EXEC_COLUMNS: &str = "job_id,thing,execution_number,status,status_details,queued,started,updated,version,force_canceled,timeout_at";

fn exec_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Execution> {
    let details: String = r.get(4)?;
    Ok(Execution {
        job_id: r.get(0)?,
        thing: r.get(1)?,
        number: r.get(2)?,
        status: r.get(3)?,
        details: json_map(&details),
        queued: r.get(5)?,
        started: r.get(6)?,
        updated: r.get(7)?,
        version: r.get(8)?,
        force_canceled: r.get(9)?,
        timeout_at: r.get(10)?,
    })
}

/// Inserts or replaces an execution.
pub fn put_execution(c: &Connection, e: &Execution) -> Result<(), ApiError> {
    c.execute(
        &format!("INSERT OR REPLACE INTO job_executions({EXEC_COLUMNS}) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
        params![
            e.job_id,
            e.thing,
            e.number,
            e.status,
            Value::Object(e.details.clone()).to_string(),
            e.queued,
            e.started,
            e.updated,
            e.version,
            e.force_canceled,
            e.timeout_at,
        ],
    )?;
    Ok(())
}

/// The execution of `job` on `thing`.
pub fn execution(c: &Connection, job: &str, thing: &str) -> Result<Option<Execution>, ApiError> {
    Ok(c.query_row(
        &format!("SELECT {EXEC_COLUMNS} FROM job_executions WHERE job_id=?1 AND thing=?2"),
        params![job, thing],
        exec_row,
    )
    .optional()?)
}

/// A job's executions, in thing order.
pub fn executions_for_job(c: &Connection, job: &str) -> Result<Vec<Execution>, ApiError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {EXEC_COLUMNS} FROM job_executions WHERE job_id=?1 ORDER BY thing"
    ))?;
    let rows = stmt.query_map([job], exec_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A thing's executions, oldest first.
pub fn executions_for_thing(c: &Connection, thing: &str) -> Result<Vec<Execution>, ApiError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {EXEC_COLUMNS} FROM job_executions WHERE thing=?1 ORDER BY queued, execution_number"
    ))?;
    let rows = stmt.query_map([thing], exec_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// IN_PROGRESS executions whose timeout has passed.
pub fn expired_executions(c: &Connection, now: f64) -> Result<Vec<Execution>, ApiError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {EXEC_COLUMNS} FROM job_executions WHERE status='IN_PROGRESS' AND timeout_at IS NOT NULL AND timeout_at <= ?1"
    ))?;
    let rows = stmt.query_map([now], exec_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deletes one execution.
pub fn delete_execution(c: &Connection, job: &str, thing: &str) -> Result<(), ApiError> {
    c.execute(
        "DELETE FROM job_executions WHERE job_id=?1 AND thing=?2",
        params![job, thing],
    )?;
    Ok(())
}

/// The next `executionNumber` for `thing`.
pub fn next_execution_number(c: &Connection, thing: &str) -> Result<i64, ApiError> {
    let n: Option<i64> = c.query_row(
        "SELECT max(execution_number) FROM job_executions WHERE thing=?1",
        [thing],
        |r| r.get(0),
    )?;
    Ok(n.unwrap_or(0) + 1)
}

/// A job template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `jobTemplateId`.
    pub id: String,
    /// `description`.
    pub description: String,
    /// The job document, if given inline.
    pub document: Option<String>,
    /// Epoch seconds.
    pub created: f64,
    /// Other settings, returned as given.
    pub config: Map<String, Value>,
}

fn template_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Template> {
    let config: String = r.get(4)?;
    Ok(Template {
        id: r.get(0)?,
        description: r.get(1)?,
        document: r.get(2)?,
        created: r.get(3)?,
        config: json_map(&config),
    })
}

/// Inserts a template.
pub fn insert_template(c: &Connection, t: &Template) -> Result<(), ApiError> {
    c.execute(
        "INSERT INTO job_templates(template_id,description,document,created,config) VALUES(?1,?2,?3,?4,?5)",
        params![t.id, t.description, t.document, t.created, Value::Object(t.config.clone()).to_string()],
    )?;
    Ok(())
}

/// A template by id.
pub fn template(c: &Connection, id: &str) -> Result<Option<Template>, ApiError> {
    Ok(c.query_row(
        "SELECT template_id,description,document,created,config FROM job_templates WHERE template_id=?1",
        [id],
        template_row,
    )
    .optional()?)
}

/// Every template, in id order.
pub fn templates(c: &Connection) -> Result<Vec<Template>, ApiError> {
    let mut stmt = c.prepare(
        "SELECT template_id,description,document,created,config FROM job_templates ORDER BY template_id",
    )?;
    let rows = stmt.query_map([], template_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deletes a template; whether it existed.
pub fn delete_template(c: &Connection, id: &str) -> Result<bool, ApiError> {
    Ok(c.execute("DELETE FROM job_templates WHERE template_id=?1", [id])? > 0)
}
