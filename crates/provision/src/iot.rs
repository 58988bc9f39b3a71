//! The AWS IoT control-plane operations provisioning uses, typed.
//! Paths, methods and shapes follow botocore's `iot` service model.

use http::Method;
use serde_json::{json, Value};

use crate::api::{encode, ApiFailure, IotClient};
use crate::plan::PolicyVersion;
use crate::ProvisionError;

/// A certificate signed by the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCertificate {
    /// `certificateId`: 64 hex digits, the SHA-256 of the DER.
    pub id: String,
    /// `certificateArn`: what policies and things attach to.
    pub arn: String,
    /// `certificatePem`: the certificate the bundle stores as `cert.pem`.
    pub pem: String,
}

/// A policy as `GetPolicy` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `policyArn`, `arn:aws:iot:REGION:ACCOUNT:policy/NAME`.
    pub arn: String,
    /// The default version's document.
    pub document: String,
}

fn fail(f: ApiFailure) -> ProvisionError {
    ProvisionError::Api(f)
}

fn field(v: &Value, op: &'static str, name: &str) -> Result<String, ProvisionError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ProvisionError::Api(ApiFailure {
                operation: op,
                status: 200,
                code: "MalformedResponse".into(),
                message: format!("the answer has no {name}"),
            })
        })
}

fn not_found(f: &ApiFailure) -> bool {
    f.status == 404 || f.code == "ResourceNotFoundException"
}

impl IotClient {
    async fn ok(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, ProvisionError> {
        self.call(op, method, path, query, headers, body)
            .await?
            .map_err(fail)
    }

    /// `DescribeThing`; `None` when there is no such thing.
    pub async fn describe_thing(&self, thing: &str) -> Result<Option<Value>, ProvisionError> {
        let path = format!("/things/{}", encode(thing));
        match self
            .call("DescribeThing", Method::GET, &path, &[], &[], None)
            .await?
        {
            Ok(v) => Ok(Some(v)),
            Err(f) if not_found(&f) => Ok(None),
            Err(f) => Err(fail(f)),
        }
    }

    /// `CreateThing`.
    pub async fn create_thing(&self, thing: &str) -> Result<(), ProvisionError> {
        let path = format!("/things/{}", encode(thing));
        self.ok(
            "CreateThing",
            Method::POST,
            &path,
            &[],
            &[],
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// `DeleteThing`.
    pub async fn delete_thing(&self, thing: &str) -> Result<(), ProvisionError> {
        let path = format!("/things/{}", encode(thing));
        self.ok("DeleteThing", Method::DELETE, &path, &[], &[], None)
            .await
            .map(drop)
    }

    /// `ListThingPrincipals` (first 250).
    pub async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, ProvisionError> {
        let path = format!("/things/{}/principals", encode(thing));
        let v = self
            .ok(
                "ListThingPrincipals",
                Method::GET,
                &path,
                &[("maxResults", "250")],
                &[],
                None,
            )
            .await?;
        Ok(strings(&v["principals"]))
    }

    /// `AttachThingPrincipal`.
    pub async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
    ) -> Result<(), ProvisionError> {
        let path = format!("/things/{}/principals", encode(thing));
        self.ok(
            "AttachThingPrincipal",
            Method::PUT,
            &path,
            &[],
            &[("x-amzn-principal", principal)],
            None,
        )
        .await
        .map(drop)
    }

    /// `DetachThingPrincipal`.
    pub async fn detach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
    ) -> Result<(), ProvisionError> {
        let path = format!("/things/{}/principals", encode(thing));
        self.ok(
            "DetachThingPrincipal",
            Method::DELETE,
            &path,
            &[],
            &[("x-amzn-principal", principal)],
            None,
        )
        .await
        .map(drop)
    }

    /// `CreateCertificateFromCsr?setAsActive=true`.
    pub async fn create_certificate_from_csr(
        &self,
        csr_pem: &str,
    ) -> Result<SignedCertificate, ProvisionError> {
        const OP: &str = "CreateCertificateFromCsr";
        let v = self
            .ok(
                OP,
                Method::POST,
                "/certificates",
                &[("setAsActive", "true")],
                &[],
                Some(json!({ "certificateSigningRequest": csr_pem })),
            )
            .await?;
        Ok(SignedCertificate {
            id: field(&v, OP, "certificateId")?,
            arn: field(&v, OP, "certificateArn")?,
            pem: field(&v, OP, "certificatePem")?,
        })
    }

    /// `DescribeCertificate`: `(arn, status)`, or `None` when not registered.
    pub async fn describe_certificate(
        &self,
        id: &str,
    ) -> Result<Option<(String, String)>, ProvisionError> {
        const OP: &str = "DescribeCertificate";
        let path = format!("/certificates/{}", encode(id));
        match self.call(OP, Method::GET, &path, &[], &[], None).await? {
            Ok(v) => {
                let d = &v["certificateDescription"];
                Ok(Some((
                    field(d, OP, "certificateArn")?,
                    field(d, OP, "status")?,
                )))
            }
            Err(f) if not_found(&f) => Ok(None),
            Err(f) => Err(fail(f)),
        }
    }

    /// `UpdateCertificate?newStatus=STATUS`.
    pub async fn update_certificate(&self, id: &str, status: &str) -> Result<(), ProvisionError> {
        let path = format!("/certificates/{}", encode(id));
        self.ok(
            "UpdateCertificate",
            Method::PUT,
            &path,
            &[("newStatus", status)],
            &[],
            None,
        )
        .await
        .map(drop)
    }

    /// `DeleteCertificate`.
    pub async fn delete_certificate(&self, id: &str) -> Result<(), ProvisionError> {
        let path = format!("/certificates/{}", encode(id));
        self.ok("DeleteCertificate", Method::DELETE, &path, &[], &[], None)
            .await
            .map(drop)
    }

    /// `GetPolicy`; `None` when there is no such policy.
    pub async fn get_policy(&self, name: &str) -> Result<Option<Policy>, ProvisionError> {
        const OP: &str = "GetPolicy";
        let path = format!("/policies/{}", encode(name));
        match self.call(OP, Method::GET, &path, &[], &[], None).await? {
            Ok(v) => Ok(Some(Policy {
                arn: field(&v, OP, "policyArn")?,
                document: field(&v, OP, "policyDocument")?,
            })),
            Err(f) if not_found(&f) => Ok(None),
            Err(f) => Err(fail(f)),
        }
    }

    /// `CreatePolicy`.
    pub async fn create_policy(&self, name: &str, document: &Value) -> Result<(), ProvisionError> {
        let path = format!("/policies/{}", encode(name));
        self.ok(
            "CreatePolicy",
            Method::POST,
            &path,
            &[],
            &[],
            Some(json!({ "policyDocument": document.to_string() })),
        )
        .await
        .map(drop)
    }

    /// `ListPolicyVersions`.
    pub async fn list_policy_versions(
        &self,
        name: &str,
    ) -> Result<Vec<PolicyVersion>, ProvisionError> {
        let path = format!("/policies/{}/version", encode(name));
        let v = self
            .ok("ListPolicyVersions", Method::GET, &path, &[], &[], None)
            .await?;
        Ok(v["policyVersions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        Some(PolicyVersion {
                            id: p.get("versionId")?.as_str()?.to_string(),
                            is_default: p
                                .get("isDefaultVersion")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `CreatePolicyVersion?setAsDefault=true`; returns the new version id.
    pub async fn create_policy_version(
        &self,
        name: &str,
        document: &Value,
    ) -> Result<String, ProvisionError> {
        const OP: &str = "CreatePolicyVersion";
        let path = format!("/policies/{}/version", encode(name));
        let v = self
            .ok(
                OP,
                Method::POST,
                &path,
                &[("setAsDefault", "true")],
                &[],
                Some(json!({ "policyDocument": document.to_string() })),
            )
            .await?;
        field(&v, OP, "policyVersionId")
    }

    /// `DeletePolicyVersion`.
    pub async fn delete_policy_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<(), ProvisionError> {
        let path = format!("/policies/{}/version/{}", encode(name), encode(version));
        self.ok("DeletePolicyVersion", Method::DELETE, &path, &[], &[], None)
            .await
            .map(drop)
    }

    /// `DeletePolicy`; `Ok(false)` when it is still attached somewhere.
    pub async fn delete_policy(&self, name: &str) -> Result<bool, ProvisionError> {
        let path = format!("/policies/{}", encode(name));
        match self
            .call("DeletePolicy", Method::DELETE, &path, &[], &[], None)
            .await?
        {
            Ok(_) => Ok(true),
            Err(f) if f.code == "DeleteConflictException" || f.status == 409 => Ok(false),
            Err(f) if not_found(&f) => Ok(true),
            Err(f) => Err(fail(f)),
        }
    }

    /// `AttachPolicy` to a target (certificate ARN).
    pub async fn attach_policy(&self, name: &str, target: &str) -> Result<(), ProvisionError> {
        let path = format!("/target-policies/{}", encode(name));
        self.ok(
            "AttachPolicy",
            Method::PUT,
            &path,
            &[],
            &[],
            Some(json!({ "target": target })),
        )
        .await
        .map(drop)
    }

    /// `DetachPolicy` from a target.
    pub async fn detach_policy(&self, name: &str, target: &str) -> Result<(), ProvisionError> {
        let path = format!("/target-policies/{}", encode(name));
        self.ok(
            "DetachPolicy",
            Method::POST,
            &path,
            &[],
            &[],
            Some(json!({ "target": target })),
        )
        .await
        .map(drop)
    }

    /// `ListAttachedPolicies` of a target: the policy names.
    pub async fn list_attached_policies(
        &self,
        target: &str,
    ) -> Result<Vec<String>, ProvisionError> {
        let path = format!("/attached-policies/{}", encode(target));
        let v = self
            .ok(
                "ListAttachedPolicies",
                Method::POST,
                &path,
                &[("pageSize", "250")],
                &[],
                None,
            )
            .await?;
        Ok(v["policies"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get("policyName")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `DescribeEndpoint?endpointType=iot:Data-ATS`: the MQTT host name.
    pub async fn describe_endpoint(&self) -> Result<String, ProvisionError> {
        const OP: &str = "DescribeEndpoint";
        let v = self
            .ok(
                OP,
                Method::GET,
                "/endpoint",
                &[("endpointType", "iot:Data-ATS")],
                &[],
                None,
            )
            .await?;
        field(&v, OP, "endpointAddress")
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
