//! `gopigo pki ...`: keys and CSRs made on the machine that keeps the key.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use gopigo_pki::KeyAlgorithm;

/// PKI subcommands.
#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Make a private key (written 0600) and a CSR to sign with
    /// `aws iot create-certificate-from-csr` (or `gopigo provision --csr`).
    Csr {
        /// Common name in the CSR's subject, usually the thing name.
        #[arg(long)]
        cn: String,
        /// Directory for NAME.key and NAME.csr (created if missing).
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// File stem; defaults to the common name.
        #[arg(long)]
        name: Option<String>,
        /// Key algorithm: ec (P-256) or rsa (2048 bits).
        #[arg(long, default_value = "ec")]
        algorithm: String,
    },
}

/// Runs a PKI subcommand.
pub fn run(cmd: PkiCommand) -> anyhow::Result<()> {
    match cmd {
        PkiCommand::Csr {
            cn,
            out_dir,
            name,
            algorithm,
        } => {
            let alg: KeyAlgorithm = algorithm
                .parse()
                .map_err(|e| anyhow::anyhow!("--algorithm {algorithm}: {e}"))?;
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("cannot create {}", out_dir.display()))?;
            let stem = name.unwrap_or_else(|| cn.clone());
            let (key, csr) = gopigo_pki::write_key_and_csr(&out_dir, &stem, alg, &cn)?;
            println!("private key  {}", key.display());
            println!("CSR          {}", csr.display());
            println!(
                "sign it with: aws iot create-certificate-from-csr --set-as-active --certificate-signing-request file://{}",
                csr.display()
            );
            Ok(())
        }
    }
}
