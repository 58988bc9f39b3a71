//! `gopigo provision`, `gopigo deprovision` and `gopigo check`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gopigo_provision::api::IotClient;
use gopigo_provision::bundle::{self, BundlePaths};
use gopigo_provision::check::{run_check, CheckTimeouts};
use gopigo_provision::creds;
use gopigo_provision::{CaSource, ProvisionOptions, Role};

use crate::cmd_core::DataDirArg;

/// The provision subcommands.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Register a robot or controller: key and CSR made here (the key never
    /// leaves), certificate signed by AWS IoT or the local core, thing, fleet
    /// policy, attachments, and a device bundle with a ready robot.toml.
    /// Running it again changes nothing.
    Provision(ProvisionArgs),
    /// Remove a thing: detach its policies and certificates, deactivate and
    /// delete the certificates, delete the thing.
    Deprovision(DeprovisionArgs),
    /// Check a device's connection step by step (DNS, TCP, TLS, certificate,
    /// MQTT CONNECT, publish/subscribe round trip), with the likely fix.
    Check(CheckArgs),
    /// Print a role's policy document: with --region and --account the one
    /// `gopigo provision` attaches, with --template the Terraform template
    /// deploy/terraform/policies/ROLE.json.tftpl holds.
    Policy(PolicyArgs),
}

/// Arguments of `gopigo policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// robot or controller.
    #[arg(long)]
    role: Role,
    /// Region of the ARNs (its partition follows: cn-* is aws-cn, us-gov-* is aws-us-gov).
    #[arg(
        long,
        required_unless_present = "template",
        conflicts_with = "template"
    )]
    region: Option<String>,
    /// 12-digit account id of the ARNs.
    #[arg(
        long,
        required_unless_present = "template",
        conflicts_with = "template"
    )]
    account: Option<String>,
    /// Print the Terraform templatefile() template instead
    /// (${partition}, ${region}, ${account_id}).
    #[arg(long)]
    template: bool,
}

/// Which control plane to talk to.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Use real AWS IoT (credentials and region from the standard AWS chain:
    /// AWS_ACCESS_KEY_ID..., AWS_PROFILE, ~/.aws/credentials, ~/.aws/config;
    /// AWS_ENDPOINT_URL_IOT / AWS_ENDPOINT_URL are honoured). Without it, the
    /// local core in --data-dir.
    #[arg(long)]
    aws: bool,
    #[command(flatten)]
    pub(crate) data: DataDirArg,
    /// AWS region (overrides AWS_REGION and the profile's region).
    #[arg(long, requires = "aws")]
    region: Option<String>,
    /// Control-plane URL (overrides AWS_ENDPOINT_URL_IOT / AWS_ENDPOINT_URL).
    #[arg(long, requires = "aws")]
    endpoint_url: Option<String>,
}

pub(crate) struct Resolved {
    pub(crate) client: IotClient,
    pub(crate) local: Option<creds::LocalEndpoints>,
}

impl TargetArgs {
    pub(crate) fn resolve(&self) -> anyhow::Result<Resolved> {
        if self.aws {
            let target =
                creds::from_environment(self.region.as_deref(), self.endpoint_url.as_deref())?;
            eprintln!(
                "AWS IoT at {} (region {}, credentials from {})",
                target.endpoint_url, target.region, target.source
            );
            Ok(Resolved {
                client: IotClient::new(target)?,
                local: None,
            })
        } else {
            let dir = self.data.resolve();
            let (target, endpoints) = creds::local_core(&dir)?;
            eprintln!(
                "local core at {} (data dir {})",
                target.endpoint_url,
                dir.display()
            );
            Ok(Resolved {
                client: IotClient::new(target)?,
                local: Some(endpoints),
            })
        }
    }
}

/// Arguments of `gopigo provision`.
#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// Thing name; also the MQTT client id (letters, digits, ':', '_', '-').
    #[arg(long)]
    thing: String,
    /// robot (its own topics and shadow) or controller (commands to all,
    /// telemetry/status/results/detections/shadows of all).
    #[arg(long, default_value = "robot")]
    role: Role,
    /// Bundle directory to write [default: ~/gopigo-bundles/THING, outside
    /// any repository, since it holds the private key].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the bundle's files will be on the device, for the paths in
    /// robot.toml (e.g. /etc/gopigo) [default: the bundle directory].
    #[arg(long)]
    install_dir: Option<PathBuf>,
    /// CA certificate to put in the bundle as ca.pem [default: the local
    /// core's CA; with --aws the embedded Amazon Root CA 1 and Root CA 3].
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Sign this CSR (made on the device, e.g. `openssl req -new ...` or
    /// `gopigo pki csr`) instead of making a key here; only cert.pem,
    /// ca.pem and robot.toml are written.
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Key type for a new key: ec (P-256) or rsa (2048).
    #[arg(long, default_value = "ec")]
    key_type: gopigo_pki::KeyAlgorithm,
    /// MQTT host for robot.toml [default: describe-endpoint iot:Data-ATS].
    #[arg(long)]
    mqtt_host: Option<String>,
    /// MQTT port for robot.toml [default: 8883 on AWS, the core's port locally];
    /// 443 turns ALPN x-amzn-mqtt-ca on.
    #[arg(long)]
    mqtt_port: Option<u16>,
    /// Use ALPN x-amzn-mqtt-ca on the MQTT port even if it is not 443 (the
    /// local core's ALPN port, or a proxy).
    #[arg(long)]
    alpn: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Arguments of `gopigo deprovision`.
#[derive(Args, Debug)]
pub struct DeprovisionArgs {
    /// Thing name.
    #[arg(long)]
    thing: String,
    /// Also delete the policies detached on the way when no other
    /// certificate uses them (the last robot of the fleet).
    #[arg(long)]
    delete_policies: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Arguments of `gopigo check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A bundle directory written by `gopigo provision` (its robot.toml,
    /// with the files taken from the directory itself).
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    bundle: Option<PathBuf>,
    /// A robot.toml (thing and [mqtt]) whose file paths are used as written.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds to wait for each step.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Seconds to keep retrying when a freshly provisioned certificate's
    /// connect, subscribe or round trip is refused (its policy may not be in
    /// force yet). Default: 480 for an AWS endpoint (AWS documents 6 to 8
    /// minutes), 0 otherwise.
    #[arg(long)]
    policy_wait: Option<u64>,
    /// Seconds between those retries.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    retry_every: u64,
}

/// Runs one of them.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cmd {
        Commands::Provision(args) => rt.block_on(provision(args)),
        Commands::Deprovision(args) => rt.block_on(deprovision(args)),
        Commands::Check(args) => rt.block_on(check(args)),
        Commands::Policy(args) => print_policy(args),
    }
}

/// `gopigo policy`.
fn print_policy(args: PolicyArgs) -> anyhow::Result<()> {
    match (args.template, args.region, args.account) {
        (true, _, _) => print!("{}", gopigo_provision::policy::policy_template(args.role)),
        (false, Some(region), Some(account)) => {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--account {account:?} is not an AWS account id: give its 12 digits");
            }
            let text = gopigo_provision::policy::policy_text(args.role, &region, &account);
            println!("{text}");
        }
        _ => bail!("give --region and --account, or --template"),
    }
    Ok(())
}

/// `~/gopigo-bundles` (the docs' and the Ansible playbook's place), else
/// `./gopigo-bundles` when there is no home folder.
fn default_bundles_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("gopigo-bundles")
}

async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve()?;
    let bundle_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_bundles_dir().join(&args.thing));
    let (ca, port, region_account) = match &resolved.local {
        Some(local) => (
            CaSource::File(
                args.ca_file
                    .clone()
                    .unwrap_or_else(|| local.ca_file.clone()),
            ),
            args.mqtt_port.or(local.mqtt_port()).unwrap_or(8883),
            Some((local.region.clone(), local.account_id.clone())),
        ),
        None => (
            args.ca_file
                .clone()
                .map(CaSource::File)
                .unwrap_or(CaSource::AmazonRoots),
            args.mqtt_port.unwrap_or(8883),
            None,
        ),
    };
    let opts = ProvisionOptions {
        thing: args.thing.clone(),
        role: args.role,
        bundle_dir: bundle_dir.clone(),
        install_dir: args.install_dir.clone(),
        ca,
        mqtt_host: args.mqtt_host.clone(),
        mqtt_port: port,
        alpn: args.alpn,
        csr_file: args.csr.clone(),
        key_algorithm: args.key_type,
        region_account,
    };
    let report = gopigo_provision::provision(&resolved.client, &opts).await?;
    if report.changes.is_empty() {
        println!(
            "nothing to do: thing {} ({}), certificate {} ACTIVE, policy {} and attachments in \
             place, bundle {} unchanged",
            args.thing,
            args.role,
            report.certificate_id,
            args.role.policy_name(),
            bundle_dir.display()
        );
    } else {
        for c in &report.changes {
            println!("changed: {c}");
        }
        println!(
            "provisioned {} ({}): certificate {}, endpoint {}:{port}",
            args.thing, args.role, report.certificate_id, report.endpoint
        );
    }
    println!("bundle: {}", bundle_dir.display());
    println!("next: gopigo check --bundle {}", bundle_dir.display());
    Ok(())
}

async fn deprovision(args: DeprovisionArgs) -> anyhow::Result<()> {
    let resolved = args.target.resolve()?;
    let report =
        gopigo_provision::deprovision(&resolved.client, &args.thing, args.delete_policies).await?;
    if report.changes.is_empty() {
        println!("nothing to do: there is no thing {}", args.thing);
    }
    for c in &report.changes {
        println!("changed: {c}");
    }
    for p in &report.kept_policies {
        println!("kept policy {p}: other certificates still use it");
    }
    Ok(())
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let config = match (&args.bundle, &args.config) {
        (Some(dir), _) => {
            let paths = BundlePaths::new(dir);
            let mut cfg = bundle::read_config(&paths.config())?;
            cfg.mqtt.ca_file = paths.ca();
            cfg.mqtt.cert_file = paths.cert();
            cfg.mqtt.key_file = paths.key();
            cfg
        }
        // Relative names come back relative to the file, as the agent reads them.
        (None, Some(file)) => bundle::read_config(file)?,
        (None, None) => bail!("give --bundle DIR or --config robot.toml"),
    };
    println!(
        "checking thing {} as client {} at {}:{}{}",
        config.thing,
        config.mqtt.client_id,
        config.mqtt.host,
        config.mqtt.port,
        if config.mqtt.alpn {
            " (ALPN x-amzn-mqtt-ca)"
        } else {
            ""
        }
    );
    let on_aws = [".amazonaws.com", ".amazonaws.com.cn"]
        .iter()
        .any(|d| config.mqtt.host.ends_with(d));
    let policy_wait = args
        .policy_wait
        .map(Duration::from_secs)
        .unwrap_or(if on_aws {
            gopigo_provision::check::AWS_POLICY_PROPAGATION
        } else {
            Duration::ZERO
        });
    let timeouts = CheckTimeouts {
        step: Duration::from_secs(args.timeout.max(1)),
        propagation: policy_wait,
        retry_every: Duration::from_secs(args.retry_every),
        ..CheckTimeouts::default()
    };
    let ok = run_check(&config.thing, &config.mqtt, timeouts, &mut |r| {
        println!("{r}")
    })
    .await;
    if ok {
        println!("all checks passed");
        Ok(())
    } else {
        bail!("the connection check failed (see the FAIL line above)")
    }
}
