//! Provisioning, checking and removing things against the local core,
//! started in this process on loopback ports chosen at run time.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gopigo_core::{Core, CoreConfig};
use gopigo_provision::api::IotClient;
use gopigo_provision::bundle::{self, BundlePaths};
use gopigo_provision::check::{run_check, CheckTimeouts, StepResult};
use gopigo_provision::{creds, CaSource, ProvisionOptions, Role};

struct Running {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_core(dir: &Path) -> Running {
    let mut config = CoreConfig::new(dir.to_path_buf());
    config.control_port = 0;
    config.mqtt_port = 0;
    config.https_port = 0;
    config.alpn_port = 0;
    let core = Core::open(config).unwrap();
    let bound = core.bind().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        core.serve(bound, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        shutdown: Some(tx),
        task,
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn options(
    endpoints: &creds::LocalEndpoints,
    thing: &str,
    role: Role,
    out: &Path,
) -> ProvisionOptions {
    ProvisionOptions {
        thing: thing.into(),
        role,
        bundle_dir: out.join(thing),
        install_dir: None,
        ca: CaSource::File(endpoints.ca_file.clone()),
        mqtt_host: None,
        mqtt_port: endpoints.mqtt_port().unwrap(),
        alpn: false,
        csr_file: None,
        key_algorithm: gopigo_pki::KeyAlgorithm::EcdsaP256,
        region_account: Some((endpoints.region.clone(), endpoints.account_id.clone())),
    }
}

async fn check(bundle_dir: &Path) -> Vec<StepResult> {
    let cfg = bundle::read_config(&BundlePaths::new(bundle_dir).config()).unwrap();
    let mut steps = Vec::new();
    run_check(&cfg.thing, &cfg.mqtt, CheckTimeouts::default(), &mut |r| {
        steps.push(r.clone())
    })
    .await;
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_check_rerun_deprovision() {
    let dir = tempfile::tempdir().unwrap();
    let core_dir = dir.path().join("core");
    let running = start_core(&core_dir).await;
    let (target, endpoints) = creds::local_core(&core_dir).unwrap();
    let client = IotClient::new(target).unwrap();
    let out = dir.path().join("bundles");

    let r1 = options(&endpoints, "r1", Role::Robot, &out);
    let first = gopigo_provision::provision(&client, &r1).await.unwrap();
    assert!(
        first.changes.iter().any(|c| c == "created thing r1"),
        "{:?}",
        first.changes
    );
    assert!(first
        .changes
        .iter()
        .any(|c| c == "created policy gopigo-robot"));
    assert_eq!(first.endpoint, "localhost");

    let steps = check(&r1.bundle_dir).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:#?}");
    assert_eq!(steps.last().unwrap().step, "round trip");

    // a second robot shares the policy; a re-run changes nothing
    let r2 = options(&endpoints, "r2", Role::Robot, &out);
    let second = gopigo_provision::provision(&client, &r2).await.unwrap();
    assert!(!second
        .changes
        .iter()
        .any(|c| c == "created policy gopigo-robot"));
    let again = gopigo_provision::provision(&client, &r1).await.unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.certificate_id, first.certificate_id);

    // an INACTIVE certificate: check stops at the client certificate step
    client
        .update_certificate(&first.certificate_id, "INACTIVE")
        .await
        .unwrap();
    let steps = check(&r1.bundle_dir).await;
    let last = steps.last().unwrap();
    assert!(!last.ok && last.step == "client cert", "{steps:#?}");
    assert!(last.fix.as_deref().unwrap().contains("INACTIVE"));

    // deprovision both, the policy with the last one
    let d1 = gopigo_provision::deprovision(&client, "r1", true)
        .await
        .unwrap();
    assert_eq!(d1.kept_policies, vec!["gopigo-robot".to_string()]);
    let d2 = gopigo_provision::deprovision(&client, "r2", true)
        .await
        .unwrap();
    assert!(d2.kept_policies.is_empty());
    assert!(client.describe_thing("r1").await.unwrap().is_none());
    assert!(client.describe_thing("r2").await.unwrap().is_none());
    assert!(client.get_policy("gopigo-robot").await.unwrap().is_none());
    assert!(client
        .describe_certificate(&first.certificate_id)
        .await
        .unwrap()
        .is_none());
    running.stop().await;
}
