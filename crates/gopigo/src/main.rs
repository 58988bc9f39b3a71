//! The `gopigo` command: the local IoT core, robot and controller tools in
//! one binary. Each subcommand parses its arguments here and calls a library.

mod cmd_agent;
mod cmd_controller;
mod cmd_core;
mod cmd_pki;
mod cmd_provision;
mod cmd_vision;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Drive GoPiGo3 robots over AWS IoT Core, or over a local stand-in for it.
#[derive(Parser)]
#[command(name = "gopigo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local AWS IoT Core stand-in: control plane (aws CLI), MQTT broker
    /// over mutual TLS with policy enforcement, device shadow, HTTPS publish.
    Core(cmd_core::CoreArgs),
    /// Print the shell line that points the aws CLI and boto3 at the local core.
    Env(cmd_core::EnvArgs),
    /// Keys and certificate signing requests.
    #[command(subcommand)]
    Pki(cmd_pki::PkiCommand),
    #[command(flatten)]
    Agent(cmd_agent::Commands),
    #[command(flatten)]
    Controller(cmd_controller::Commands),
    #[command(flatten)]
    Provision(cmd_provision::Commands),
    #[command(flatten)]
    Vision(cmd_vision::Commands),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Core(args) => cmd_core::run(args),
        Command::Env(args) => cmd_core::env(args),
        Command::Pki(cmd) => cmd_pki::run(cmd),
        Command::Agent(cmd) => cmd_agent::run(cmd),
        Command::Controller(cmd) => cmd_controller::run(cmd),
        Command::Provision(cmd) => cmd_provision::run(cmd),
        Command::Vision(cmd) => cmd_vision::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gopigo: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
