//! Provisioning robots and controllers on AWS IoT Core (or the local core)
//! and checking a device's connection.
//!
//! Parts:
//! - [`policy`]: the fleet's least-privilege policy templates, one per
//!   [`Role`], using `${iot:Connection.Thing.ThingName}`.
//! - [`plan`]: the pure diff of what should exist against what does
//!   ([`plan::plan`] for provisioning, [`plan::teardown`] for removal, in
//!   AWS's required order), which makes re-runs no-ops.
//! - [`bundle`]: the device bundle (`cert.pem`, `key.pem` 0600 through
//!   `gopigo_pki::write_new_private_file`, `ca.pem`, `robot.toml` in the
//!   agent's own format) and the embedded Amazon Root CA 1.
//! - [`creds`]: the AWS credential/region/endpoint chain and the local
//!   core's data dir.
//! - [`api`] and [`iot`]: a SigV4-signed REST-JSON client (hyper, rustls
//!   with the web PKI roots) and the IoT operations used; [`retry`]: the
//!   AWS SDKs' standard retry mode for throttling and server errors.
//! - [`provision()`] / [`deprovision()`]: observe, plan, apply, write.
//! - [`check`]: `gopigo check`, one function per step (files → validity →
//!   dns → tcp → tls → client cert → connect → subscribe → round trip), each
//!   giving its value or its FAIL line with the fix.
//!
//! The private key is generated where this runs and never sent; only the
//! CSR travels (`CreateCertificateFromCsr`).

// Tests may unwrap; the library may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod bundle;
pub mod check;
pub mod creds;
mod error;
pub mod iot;
pub mod plan;
pub mod policy;
mod provision;
pub mod retry;
pub mod update;

pub use error::ProvisionError;
pub use policy::Role;
pub use provision::{
    check_thing_name, deprovision, provision, CaSource, DeprovisionReport, ProvisionOptions,
    ProvisionReport,
};
