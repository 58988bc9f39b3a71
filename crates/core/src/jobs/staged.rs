//! Clean-up of staged files (`<data-dir>/files/<token>`, served at
//! `/files/{token}`) once no job needs them.
//!
//! `gopigo update` stages an agent build under a random token and puts the
//! URL in the job document. A file is removed when every job whose document
//! names its token has ended (COMPLETED or CANCELED) or was deleted; a
//! CONTINUOUS job never completes, so its file stays while it runs (things
//! that join its group later still download it). A file that no job names
//! is an orphan of a `gopigo update` that failed after staging it; it goes
//! once it is older than [`ORPHAN_AGE`] (younger ones may belong to a job
//! being created right now).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::files::valid_token;
use super::store as js;
use crate::error::ApiError;
use crate::CoreState;

/// How old a staged file that no job names must be before it is removed.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Job states after which a job needs its files no more.
fn ended(status: &str) -> bool {
    matches!(status, "COMPLETED" | "CANCELED")
}

/// The staged-file tokens a job document names: each `/files/` followed by
/// exactly 64 lowercase hex digits (pure).
pub fn tokens_in(document: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = document;
    while let Some(at) = rest.find("/files/") {
        rest = &rest[at + "/files/".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        if valid_token(token) && !out.iter().any(|t| t == token) {
            out.push(token.to_string());
        }
    }
    out
}

/// Which tokens live jobs (not ended) name, and which any job names.
fn named_tokens(state: &CoreState) -> Result<(HashSet<String>, HashSet<String>), ApiError> {
    let jobs = state.store.tx(|tx| js::jobs(tx))?;
    let mut live = HashSet::new();
    let mut any = HashSet::new();
    for j in jobs {
        for t in tokens_in(&j.document) {
            if !ended(&j.status) {
                live.insert(t.clone());
            }
            any.insert(t);
        }
    }
    Ok((live, any))
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e >= age)
}

fn remove(path: &Path, why: &'static str) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(file = %path.display(), why, "staged file removed");
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove staged file");
            false
        }
    }
}

/// Removes the staged files no live job names: those of ended jobs at once,
/// orphans (named by no job at all) once older than `orphan_age`. Returns
/// how many went.
pub fn sweep(state: &CoreState, orphan_age: Duration) -> Result<usize, ApiError> {
    let Ok(entries) = std::fs::read_dir(&state.files_dir) else {
        return Ok(0); // nothing staged yet
    };
    let (live, any) = named_tokens(state)?;
    let mut n = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str().filter(|t| valid_token(t)) else {
            continue; // not a staged file
        };
        if live.contains(token) {
            continue;
        }
        let path = entry.path();
        let gone = if any.contains(token) {
            remove(&path, "its jobs ended")
        } else {
            older_than(&path, orphan_age) && remove(&path, "no job names it")
        };
        n += usize::from(gone);
    }
    Ok(n)
}

/// Removes the files `tokens` (a deleted job's) unless a live job still
/// names them. Returns how many went.
pub fn release(state: &CoreState, tokens: &[String]) -> Result<usize, ApiError> {
    if tokens.is_empty() {
        return Ok(0);
    }
    let (live, _) = named_tokens(state)?;
    Ok(tokens
        .iter()
        .filter(|t| !live.contains(*t))
        .filter(|t| remove(&state.files_dir.join(t), "its job was deleted"))
        .count())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(id: &str, status: &str, document: String) -> js::Job {
        js::Job {
            id: id.into(),
            status: status.into(),
            document,
            description: None,
            targets: Vec::new(),
            target_selection: "SNAPSHOT".into(),
            created: 0.0,
            updated: 0.0,
            completed: None,
            force_canceled: false,
            reason_code: None,
            comment: None,
            config: serde_json::Map::new(),
        }
    }

    #[test]
    fn sweep_removes_files_of_ended_jobs_and_old_orphans_only() {
        let t = tempfile::tempdir().unwrap();
        let core = crate::Core::open(crate::CoreConfig::new(t.path().join("core"))).unwrap();
        let state = core.state();
        std::fs::create_dir_all(&state.files_dir).unwrap();
        let [live, shared, ended, orphan] = ["aa", "bb", "cc", "dd"].map(|h| h.repeat(32));
        for tok in [&live, &shared, &ended, &orphan] {
            std::fs::write(state.files_dir.join(tok), b"x").unwrap();
        }
        std::fs::write(state.files_dir.join("notes.txt"), b"kept").unwrap();
        let doc = |toks: &[&String]| {
            let urls: Vec<String> = toks.iter().map(|t| format!("http://h/files/{t}")).collect();
            serde_json::json!({ "urls": urls }).to_string()
        };
        state
            .store
            .tx(|tx| {
                js::put_job(tx, &job("live", "IN_PROGRESS", doc(&[&live, &shared])))?;
                js::put_job(tx, &job("done", "COMPLETED", doc(&[&shared, &ended])))?;
                js::put_job(tx, &job("gone", "CANCELED", doc(&[&ended])))
            })
            .unwrap();
        let exists = |tok: &String| state.files_dir.join(tok).exists();
        // A young orphan may belong to a job being created: it stays.
        assert_eq!(sweep(&state, ORPHAN_AGE).unwrap(), 1);
        assert!(exists(&live) && exists(&shared) && exists(&orphan) && !exists(&ended));
        assert_eq!(sweep(&state, Duration::ZERO).unwrap(), 1);
        assert!(exists(&live) && exists(&shared) && !exists(&orphan));
        assert!(state.files_dir.join("notes.txt").exists());
        // A deleted job's files go, unless a live job still names them.
        assert_eq!(release(&state, std::slice::from_ref(&live)).unwrap(), 0);
        state.store.tx(|tx| js::delete_job(tx, "live")).unwrap();
        assert_eq!(release(&state, &[live.clone(), shared.clone()]).unwrap(), 2);
        assert!(!exists(&live) && !exists(&shared));
    }

    #[test]
    fn tokens_are_found_in_urls_only_when_well_formed() {
        let a = "ab".repeat(32);
        let b = "0c".repeat(32);
        let doc = format!(
            r#"{{"url":"http://127.0.0.1:4580/files/{a}","mirror":"http://x/files/{a}","other":"/files/{b}?x=1","short":"/files/abc","upper":"/files/{}","long":"/files/{a}00"}}"#,
            "AB".repeat(32)
        );
        assert_eq!(tokens_in(&doc), vec![a, b]);
        assert!(tokens_in("{}").is_empty());
    }
}
