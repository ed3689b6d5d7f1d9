//! The sandbox's view of the rest of AWS: the cluster (Redshift control
//! plane), the role's permissions (IAM) and the data (S3), all read from the
//! emulator through the SDK's standard `AWS_ENDPOINT_URL`.
//!
//! This is what makes the tutorial's IAM steps testable offline: a `COPY`
//! whose role is missing, not attached to the cluster, or not allowed to read
//! the object fails here with the message Redshift gives, as it would on AWS.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::error::Rejected;

/// Clients for the emulated control plane.
pub struct ControlPlane {
    /// Redshift control plane.
    pub redshift: aws_sdk_redshift::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// The region the sandbox stands in for.
    pub region: String,
}

/// What the control plane says about a cluster.
#[derive(Clone, Debug)]
pub struct ClusterInfo {
    /// ARNs of the attached roles.
    pub roles: Vec<String>,
    /// Its status.
    pub status: String,
    /// When it was created: a cluster deleted and created again under the
    /// same name is a new cluster, with empty databases.
    pub generation: String,
}

impl ControlPlane {
    /// Clients from the standard SDK configuration.
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        Self {
            redshift: aws_sdk_redshift::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            s3: aws_sdk_s3::Client::new(&sdk),
            region,
        }
    }

    /// The cluster must exist and be `available`, as for the real Data API.
    pub async fn check_cluster(&self, id: &str) -> Result<ClusterInfo, Rejected> {
        let out = match self
            .redshift
            .describe_clusters()
            .cluster_identifier(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_cluster_not_found_fault()) =>
            {
                return Err(Rejected::Validation(format!("Cluster {id} not found")));
            }
            Err(e) => {
                return Err(Rejected::Internal(format!(
                    "sandbox: cannot reach the Redshift control plane: {}",
                    aws_sdk_redshift::error::DisplayErrorContext(&e)
                )));
            }
        };
        let Some(c) = out.clusters().first() else {
            return Err(Rejected::Validation(format!("Cluster {id} not found")));
        };
        let status = c.cluster_status().unwrap_or_default().to_string();
        if status != "available" {
            return Err(Rejected::Validation(format!(
                "Cluster {id} is not available: its status is {status}"
            )));
        }
        Ok(ClusterInfo {
            roles: c
                .iam_roles()
                .iter()
                .filter_map(|r| r.iam_role_arn().map(str::to_string))
                .collect(),
            status,
            generation: c
                .cluster_create_time()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        })
    }

    /// The policy documents in force for a role: its managed policies'
    /// default versions and its inline policies.
    pub async fn role_policies(&self, role_name: &str) -> Result<Vec<Value>, String> {
        let mut docs = Vec::new();
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(role_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| {
                format!(
                    "IAM ListAttachedRolePolicies: {}",
                    aws_sdk_iam::error::DisplayErrorContext(&e)
                )
            })?;
        for p in attached {
            let Some(arn) = p.policy_arn() else { continue };
            let policy = self
                .iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| format!("IAM GetPolicy: {e}"))?;
            let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else {
                continue;
            };
            let v = self
                .iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(|e| format!("IAM GetPolicyVersion: {e}"))?;
            if let Some(doc) = v
                .policy_version()
                .and_then(|v| v.document())
                .and_then(decode)
            {
                docs.push(doc);
            }
        }
        let inline = self
            .iam
            .list_role_policies()
            .role_name(role_name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| format!("IAM ListRolePolicies: {e}"))?;
        for name in inline {
            let p = self
                .iam
                .get_role_policy()
                .role_name(role_name)
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| format!("IAM GetRolePolicy: {e}"))?;
            if let Some(doc) = decode(p.policy_document()) {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    /// Whether the role exists.
    pub async fn role_exists(&self, role_name: &str) -> Result<bool, String> {
        match self.iam.get_role().role_name(role_name).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!(
                "IAM GetRole: {}",
                aws_sdk_iam::error::DisplayErrorContext(&e)
            )),
        }
    }
}

fn decode(raw: &str) -> Option<Value> {
    let text = percent_decode_str(raw).decode_utf8().ok()?;
    serde_json::from_str(&text).ok()
}

/// `*` and `?` wildcards, as IAM matches actions and resources.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Evaluates IAM policy documents for one request: an explicit Deny wins, then
/// any Allow; otherwise denied. `context` holds condition keys such as
/// `s3:prefix`. Only `StringEquals`/`StringLike` conditions are understood; a
/// statement with any other condition is not applied (a Deny with one is
/// applied, erring on the safe side).
pub fn allowed(docs: &[Value], action: &str, resource: &str, context: &[(&str, &str)]) -> bool {
    let mut allow = false;
    for doc in docs {
        let statements = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            s @ Value::Object(_) => vec![s.clone()],
            _ => continue,
        };
        for s in statements {
            let action_ok = as_list(&s["Action"])
                .iter()
                .any(|a| wildcard_match(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()));
            let resource_ok = as_list(&s["Resource"])
                .iter()
                .any(|r| wildcard_match(r, resource));
            if !(action_ok && resource_ok) {
                continue;
            }
            let deny = s["Effect"] == "Deny";
            let condition_ok = match &s["Condition"] {
                Value::Null => true,
                Value::Object(ops) => ops.iter().all(|(op, keys)| {
                    let Value::Object(keys) = keys else {
                        return false;
                    };
                    keys.iter().all(|(key, want)| {
                        let have = context.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
                        match (op.as_str(), have) {
                            ("StringEquals", Some(h)) => as_list(want).iter().any(|w| w == h),
                            ("StringLike", Some(h)) => {
                                as_list(want).iter().any(|w| wildcard_match(w, h))
                            }
                            _ => deny,
                        }
                    })
                }),
                _ => deny,
            };
            if condition_ok {
                if deny {
                    return false;
                }
                allow = true;
            }
        }
    }
    allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "arn:aws:s3:::b/data/*",
            "arn:aws:s3:::b/data/x.csv"
        ));
        assert!(!wildcard_match(
            "arn:aws:s3:::b/data/*",
            "arn:aws:s3:::b/other/x.csv"
        ));
        assert!(wildcard_match("s3:Get*", "s3:GetObject"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
    }

    #[test]
    fn the_tools_policy_allows_exactly_the_prefix() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/sales/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
             "Condition": {"StringLike": {"s3:prefix": ["sales/*"]}}}
        ]});
        let docs = [doc];
        assert!(allowed(
            &docs,
            "s3:GetObject",
            "arn:aws:s3:::b/sales/a.csv",
            &[]
        ));
        assert!(!allowed(
            &docs,
            "s3:GetObject",
            "arn:aws:s3:::b/hr/salaries.csv",
            &[]
        ));
        assert!(!allowed(
            &docs,
            "s3:PutObject",
            "arn:aws:s3:::b/sales/a.csv",
            &[]
        ));
        assert!(allowed(
            &docs,
            "s3:ListBucket",
            "arn:aws:s3:::b",
            &[("s3:prefix", "sales/a.csv")]
        ));
        assert!(!allowed(
            &docs,
            "s3:ListBucket",
            "arn:aws:s3:::b",
            &[("s3:prefix", "hr/")]
        ));
    }

    #[test]
    fn deny_wins() {
        let docs = [json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret/*"}
        ]})];
        assert!(allowed(&docs, "s3:GetObject", "arn:aws:s3:::b/ok", &[]));
        assert!(!allowed(
            &docs,
            "s3:GetObject",
            "arn:aws:s3:::b/secret/x",
            &[]
        ));
    }
}
