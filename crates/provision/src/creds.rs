//! Where the control plane is and who signs the requests: the AWS SDKs'
//! standard chain (environment, shared credentials and config files,
//! profiles), or the local core's data dir.
//!
//! The resolving is pure ([`resolve`] takes the environment and the two
//! files' text), so every rule is table-tested.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ProvisionError;

/// An access key (secret redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `AKIA...` / `ASIA...`.
    pub id: String,
    /// The secret access key.
    pub secret: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Everything needed to call the IoT control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Base URL, e.g. `https://iot.eu-west-1.amazonaws.com` or `http://127.0.0.1:4580`.
    pub endpoint_url: String,
    /// SigV4 region.
    pub region: String,
    /// The access key the requests are signed with.
    pub key: AccessKey,
    /// Where the key came from (for messages).
    pub source: String,
    /// CA certificates to trust for HTTPS instead of the web PKI roots
    /// (`AWS_CA_BUNDLE`, or `ca_bundle` in the profile), as the SDKs do.
    pub ca_bundle: Option<PathBuf>,
}

/// Parses an INI file the way the AWS CLI reads `credentials` / `config`:
/// `[section]` headers, `key = value` lines, `#`/`;` comments; indented
/// lines (nested `services` blocks) are skipped.
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            out.entry(s.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// Resolves the AWS target from the environment (`env` returns a variable's
/// value) and the text of the shared credentials and config files.
///
/// Credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
/// (+ `AWS_SESSION_TOKEN`); else profile `AWS_PROFILE` (default `default`)
/// in the credentials file, then in the config file (`[profile NAME]`,
/// or `[default]`). Region: `region_flag`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, the profile's `region`. Endpoint: `endpoint_flag`,
/// `AWS_ENDPOINT_URL_IOT`, `AWS_ENDPOINT_URL`, else
/// `https://iot.{region}.amazonaws.com`. HTTPS trust: `AWS_CA_BUNDLE`, the
/// profile's `ca_bundle`, else the web PKI roots.
pub fn resolve(
    env: &dyn Fn(&str) -> Option<String>,
    credentials_file: Option<&str>,
    config_file: Option<&str>,
    region_flag: Option<&str>,
    endpoint_flag: Option<&str>,
) -> Result<Target, ProvisionError> {
    let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let profile = Profile::read(
        nonempty("AWS_PROFILE").unwrap_or_else(|| "default".to_string()),
        credentials_file,
        config_file,
    );
    let (key, source) = access_key(&nonempty, &profile)?;
    let region = region_flag
        .map(str::to_string)
        .or_else(|| nonempty("AWS_REGION"))
        .or_else(|| nonempty("AWS_DEFAULT_REGION"))
        .or_else(|| profile.config("region"))
        .ok_or_else(|| {
            ProvisionError::Credentials(format!(
                "no AWS region: pass --region, set AWS_REGION, or set region in [{}] \
                 of ~/.aws/config",
                profile.config_section
            ))
        })?;
    let endpoint_url = endpoint_flag
        .map(str::to_string)
        .or_else(|| nonempty("AWS_ENDPOINT_URL_IOT"))
        .or_else(|| nonempty("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| {
            format!(
                "https://iot.{region}.{}",
                gopigo_policy::dns_suffix(&region)
            )
        });
    let ca_bundle = nonempty("AWS_CA_BUNDLE")
        .or_else(|| profile.config("ca_bundle"))
        .map(PathBuf::from);
    Ok(Target {
        endpoint_url: endpoint_url.trim_end_matches('/').to_string(),
        region,
        key,
        source,
        ca_bundle,
    })
}

/// One profile's sections of the shared credentials and config files.
struct Profile {
    name: String,
    /// `default`, or `profile NAME` (the config file's spelling).
    config_section: String,
    credentials: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
}

impl Profile {
    fn read(name: String, credentials_file: Option<&str>, config_file: Option<&str>) -> Self {
        let config_section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        let section = |file: Option<&str>, section: &str| {
            file.map(parse_ini)
                .and_then(|mut ini| ini.remove(section))
                .unwrap_or_default()
        };
        Profile {
            credentials: section(credentials_file, &name),
            config: section(config_file, &config_section),
            name,
            config_section,
        }
    }

    /// `key` from the credentials file, else from the config file.
    fn lookup(&self, key: &str) -> Option<String> {
        self.credentials
            .get(key)
            .or_else(|| self.config.get(key))
            .cloned()
    }

    /// `key` from the config file only.
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
}

/// The access key and where it came from: the environment's pair, else
/// the profile's.
fn access_key(
    nonempty: &dyn Fn(&str) -> Option<String>,
    profile: &Profile,
) -> Result<(AccessKey, String), ProvisionError> {
    match (
        nonempty("AWS_ACCESS_KEY_ID"),
        nonempty("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let session_token = nonempty("AWS_SESSION_TOKEN");
            let key = AccessKey {
                id,
                secret,
                session_token,
            };
            return Ok((key, "environment (AWS_ACCESS_KEY_ID)".to_string()));
        }
        (Some(_), None) => {
            return Err(ProvisionError::Credentials(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or unset \
                 both to use a profile"
                    .into(),
            ))
        }
        _ => {}
    }
    match (
        profile.lookup("aws_access_key_id"),
        profile.lookup("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => {
            let session_token = profile.lookup("aws_session_token");
            let key = AccessKey {
                id,
                secret,
                session_token,
            };
            Ok((key, format!("profile {}", profile.name)))
        }
        _ => Err(ProvisionError::Credentials(format!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put \
             aws_access_key_id / aws_secret_access_key in profile [{}] of \
             ~/.aws/credentials (`aws configure`), or choose a profile with AWS_PROFILE \
             (SSO and assume-role profiles are not supported: export their temporary \
             keys with `aws configure export-credentials --format env`)",
            profile.name
        ))),
    }
}

/// The standard chain read from this process's environment and files
/// (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, else `~/.aws/...`).
pub fn from_environment(
    region_flag: Option<&str>,
    endpoint_flag: Option<&str>,
) -> Result<Target, ProvisionError> {
    let env = |k: &str| std::env::var(k).ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| -> Option<String> {
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))?;
        std::fs::read_to_string(path).ok()
    };
    let creds = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = file("AWS_CONFIG_FILE", "config");
    resolve(
        &env,
        creds.as_deref(),
        config.as_deref(),
        region_flag,
        endpoint_flag,
    )
}

/// What `gopigo core` writes in its data dir's `endpoints.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalEndpoints {
    /// Control-plane URL.
    pub control_plane: String,
    /// MQTT over mTLS `host:port`.
    pub mqtt: String,
    /// Host name in the broker's certificate (`describe-endpoint`).
    #[serde(default)]
    pub endpoint_address: Option<String>,
    /// The CA certificate clients trust.
    pub ca_file: PathBuf,
    /// Region used in ARNs.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
}

impl LocalEndpoints {
    /// The MQTT port.
    pub fn mqtt_port(&self) -> Option<u16> {
        self.mqtt.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    }
}

/// Reads a local core's data dir: `endpoints.json` and the `gopigo-local`
/// profile in `aws/credentials`.
pub fn local_core(data_dir: &Path) -> Result<(Target, LocalEndpoints), ProvisionError> {
    let ep_path = data_dir.join("endpoints.json");
    let text = std::fs::read_to_string(&ep_path).map_err(|e| {
        ProvisionError::Credentials(format!(
            "cannot read {}: {e}; start the local core first (`gopigo core --data-dir {}`), or \
             pass --aws to provision on AWS",
            ep_path.display(),
            data_dir.display()
        ))
    })?;
    let endpoints: LocalEndpoints = serde_json::from_str(&text).map_err(|e| {
        ProvisionError::Credentials(format!(
            "{} is not a core's endpoints file: {e}",
            ep_path.display()
        ))
    })?;
    let creds_path = data_dir.join("aws").join("credentials");
    let creds_text = std::fs::read_to_string(&creds_path).map_err(|e| {
        ProvisionError::Credentials(format!(
            "cannot read {}: {e}; it is written by `gopigo core` on start",
            creds_path.display()
        ))
    })?;
    let env = |k: &str| (k == "AWS_PROFILE").then(|| "gopigo-local".to_string());
    let mut target = resolve(
        &env,
        Some(&creds_text),
        None,
        Some(&endpoints.region),
        Some(&endpoints.control_plane),
    )?;
    target.source = format!("local core profile in {}", creds_path.display());
    Ok((target, endpoints))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str = "\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = defsecret

# a comment
[work]
aws_access_key_id=AKIAWORK
aws_secret_access_key=worksecret
aws_session_token = tok
";
    const CONFIG: &str = "\
[default]
region = us-west-2

[profile work]
region = eu-central-1
services = x

[profile cfgonly]
aws_access_key_id = AKIACFG
aws_secret_access_key = cfgsecret
region = ap-south-1

[services x]
iot =
  endpoint_url = http://nested.invalid
";

    fn run(env: &[(&str, &str)], region: Option<&str>) -> Result<Target, ProvisionError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        resolve(&get, Some(CREDS), Some(CONFIG), region, None)
    }

    #[test]
    fn chain_table() {
        // (env, region flag, key id, region, endpoint)
        type Case<'a> = (
            Vec<(&'a str, &'a str)>,
            Option<&'a str>,
            &'a str,
            &'a str,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                vec![],
                None,
                "AKIADEFAULT",
                "us-west-2",
                "https://iot.us-west-2.amazonaws.com",
            ),
            // the China partition has its own DNS suffix; GovCloud does not
            (
                vec![],
                Some("cn-northwest-1"),
                "AKIADEFAULT",
                "cn-northwest-1",
                "https://iot.cn-northwest-1.amazonaws.com.cn",
            ),
            (
                vec![],
                Some("us-gov-west-1"),
                "AKIADEFAULT",
                "us-gov-west-1",
                "https://iot.us-gov-west-1.amazonaws.com",
            ),
            (
                vec![("AWS_PROFILE", "work")],
                None,
                "AKIAWORK",
                "eu-central-1",
                "https://iot.eu-central-1.amazonaws.com",
            ),
            (
                vec![("AWS_PROFILE", "cfgonly")],
                None,
                "AKIACFG",
                "ap-south-1",
                "https://iot.ap-south-1.amazonaws.com",
            ),
            (
                vec![
                    ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                    ("AWS_SECRET_ACCESS_KEY", "s"),
                    ("AWS_REGION", "eu-west-1"),
                    ("AWS_DEFAULT_REGION", "us-east-2"),
                ],
                None,
                "AKIAENV",
                "eu-west-1",
                "https://iot.eu-west-1.amazonaws.com",
            ),
            (
                vec![
                    ("AWS_DEFAULT_REGION", "us-east-2"),
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
                ],
                None,
                "AKIADEFAULT",
                "us-east-2",
                "http://127.0.0.1:5000",
            ),
            (
                vec![
                    ("AWS_ENDPOINT_URL", "http://generic"),
                    ("AWS_ENDPOINT_URL_IOT", "http://iot-specific"),
                ],
                Some("sa-east-1"),
                "AKIADEFAULT",
                "sa-east-1",
                "http://iot-specific",
            ),
        ];
        for (env, flag, id, region, endpoint) in cases {
            let t = run(&env, flag).unwrap();
            assert_eq!(
                (
                    t.key.id.as_str(),
                    t.region.as_str(),
                    t.endpoint_url.as_str()
                ),
                (id, region, endpoint),
                "{env:?}"
            );
        }
        let t = run(&[("AWS_PROFILE", "work")], None).unwrap();
        assert_eq!(t.key.session_token.as_deref(), Some("tok"));
        assert_eq!(t.ca_bundle, None);
        let t = run(&[("AWS_CA_BUNDLE", "/etc/corp-ca.pem")], None).unwrap();
        assert_eq!(t.ca_bundle.as_deref(), Some(Path::new("/etc/corp-ca.pem")));
    }

    #[test]
    fn chain_errors_say_what_to_set() {
        let e = run(&[("AWS_PROFILE", "nope")], Some("us-east-1")).unwrap_err();
        assert!(e.to_string().contains("[nope]"), "{e}");
        let e = run(&[("AWS_ACCESS_KEY_ID", "AKIA")], None).unwrap_err();
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let get = |_: &str| None;
        let e = resolve(&get, Some(CREDS), None, None, None).unwrap_err();
        assert!(e.to_string().contains("--region"), "{e}");
    }

    #[test]
    fn secret_not_in_debug() {
        let t = run(&[("AWS_PROFILE", "work")], None).unwrap();
        let dbg = format!("{t:?}");
        assert!(
            !dbg.contains("worksecret") && !dbg.contains("tok\""),
            "{dbg}"
        );
    }

    #[test]
    fn ini_skips_nested_blocks() {
        let ini = parse_ini(CONFIG);
        assert_eq!(ini["services x"].get("iot").map(String::as_str), Some(""));
        assert!(!ini["services x"].contains_key("endpoint_url"));
    }
}
