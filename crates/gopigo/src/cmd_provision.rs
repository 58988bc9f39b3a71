//! Subcommands of the provision work (filled in by its crate's owner).

use clap::Subcommand;

/// The provision subcommands.
#[derive(Subcommand, Debug)]
pub enum Commands {}

/// Runs one of them.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    match cmd {}
}
