//! What the broker asks the registry: is a certificate active, which
//! policies and things belong to a principal.

use std::sync::Arc;

/// The registry behind the broker (the core implements it over its store).
/// Called from connection tasks: keep each call cheap (an in-memory cache).
pub trait Authority: Send + Sync + 'static {
    /// Whether the certificate with this id (lowercase hex SHA-256 of its DER)
    /// is registered and ACTIVE.
    fn certificate_active(&self, certificate_id: &str) -> bool;
    /// The union of the policies attached to the principal (a cert ARN).
    fn policies_for(&self, principal_arn: &str) -> Vec<Arc<gopigo_policy::PolicyDocument>>;
    /// Names of the things the principal is attached to.
    fn things_for(&self, principal_arn: &str) -> Vec<String>;
    /// DER of the CA certificates the user registered and set ACTIVE: client
    /// certificates that chain to one of them are trusted too (AWS's
    /// RegisterCACertificate). Asked only when the chain to the core's own CA
    /// fails.
    fn registered_cas(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// Whether the certificate was registered without a CA (AWS's SNI_ONLY
    /// mode): trusted by its fingerprint, its chain unchecked.
    fn registered_without_ca(&self, _certificate_id: &str) -> bool {
        false
    }
}
