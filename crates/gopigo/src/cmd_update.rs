//! `gopigo update`: roll a new agent build out to robots as an AWS IoT job.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gopigo_provision::update;

use crate::cmd_provision::TargetArgs;

/// The update subcommand.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Update robots' agents over the air: creates an AWS IoT job whose
    /// document holds the binary's URL, SHA-256, size and version. Each
    /// robot downloads it, checks it, swaps it in, restarts, and reports
    /// SUCCEEDED once the new version is connected (or FAILED, staying on
    /// or rolling back to the old one). Locally the core serves the file;
    /// on AWS pass --url.
    Update(UpdateArgs),
}

/// Arguments of `gopigo update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A robot to update (repeat for several).
    #[arg(long, required_unless_present = "group")]
    thing: Vec<String>,
    /// A thing group whose robots to update.
    #[arg(long)]
    group: Option<String>,
    /// The new `gopigo` binary, built for the robots' CPU.
    #[arg(long)]
    binary: PathBuf,
    /// Where robots download it: required with --aws (an S3 presigned URL or
    /// any https URL serving exactly this file). Locally the core serves it.
    #[arg(long)]
    url: Option<String>,
    /// The version to announce [default: the version marked in the binary].
    #[arg(long)]
    version: Option<String>,
    /// The job id [default: agent-update-VERSION-UNIXTIME].
    #[arg(long)]
    job_id: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Runs it.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    let Commands::Update(args) = cmd;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(update_robots(args))
}

async fn update_robots(args: UpdateArgs) -> anyhow::Result<()> {
    let build = update::read_build(&args.binary, args.version.as_deref())?;
    let resolved = args.target.resolve()?;
    let url = match (&args.url, &resolved.local) {
        (Some(u), _) => u.clone(),
        (None, Some(local)) => {
            let dir = args.target.data.resolve();
            let token = update::stage_local(&dir, &build)?;
            format!(
                "{}/files/{token}",
                local.control_plane.trim_end_matches('/')
            )
        }
        (None, None) => bail!(
            "--url is required with --aws: upload the binary (e.g. to S3) and pass an https URL \
             the robots can fetch, such as an S3 presigned URL (see docs/run-on-aws.md)"
        ),
    };
    let mut targets = Vec::new();
    for t in &args.thing {
        targets.push(update::thing_arn(&resolved.client, t).await?);
    }
    if let Some(g) = &args.group {
        targets.push(update::group_arn(&resolved.client, g).await?);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let job_id = args
        .job_id
        .clone()
        .unwrap_or_else(|| update::default_job_id(&build.version, now));
    let doc = update::job_document(&build, &url);
    let description = format!("gopigo agent update to {}", build.version);
    let arn = update::create_job(&resolved.client, &job_id, &targets, &doc, &description).await?;
    println!("job         {job_id} ({arn})");
    println!(
        "binary      {} bytes, sha256 {}, version {}",
        build.bytes.len(),
        build.sha256,
        build.version
    );
    println!("url         {url}");
    println!("follow it   aws iot list-job-executions-for-job --job-id {job_id}");
    Ok(())
}
