//! The `gopigo` command: the local IoT core, robot and controller tools in
//! one binary. Each subcommand parses its arguments here and calls a library.

mod cmd_agent;
mod cmd_controller;
mod cmd_core;
mod cmd_pki;
mod cmd_provision;
mod cmd_swarm;
mod cmd_update;
mod cmd_vision;

use std::io::IsTerminal;

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
    #[command(flatten)]
    Update(cmd_update::Commands),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(use_colour(std::io::stderr().is_terminal()))
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
        Command::Update(cmd) => cmd_update::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gopigo: error: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Colour codes only on a terminal, and never with `NO_COLOR` set
/// (no-color.org): log files and journals get plain text.
fn use_colour(stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The error and its causes, each said once: library errors often repeat
/// their source's words in their own message (`MQTT: cannot read ...`), so
/// a cause already contained in what was printed is left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let words = cause.to_string();
        if words.is_empty() || text.contains(&words) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&words);
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error(
            "cannot read certificate file /b/cert.pem: No such file or directory (os error 2)"
        )]
        Read(#[source] std::io::Error),
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("MQTT: {0}")]
        Mqtt(#[from] Inner),
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let inner = Inner::Read(std::io::Error::new(
            io.kind(),
            "No such file or directory (os error 2)",
        ));
        let e = anyhow::Error::from(Outer::from(inner)).context("cannot start the agent");
        let text = error_text(&e);
        assert_eq!(
            text,
            "cannot start the agent: MQTT: cannot read certificate file /b/cert.pem: No such file \
             or directory (os error 2)"
        );
        assert_eq!(text.matches("No such file").count(), 1);
    }

    #[test]
    fn no_colour_off_a_terminal() {
        assert!(!use_colour(false));
    }
}
