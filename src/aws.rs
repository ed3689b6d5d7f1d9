//! The AWS SDK clients, built once from the SDK's standard configuration.
//!
//! Credentials, region and endpoints come from the SDK's usual chain
//! (environment, `~/.aws/config` profiles, SSO, instance roles), overridden
//! only by what the `.cfg` file says. That is also how the local emulators are
//! reached: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_<SERVICE>`) in the
//! environment, never a special code path here.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_redshift::config::Region;

use crate::config::Config;
use crate::error::{ConfigError, Error, Problem, Result};

/// One client per service the pipeline uses, plus the resolved region.
#[derive(Clone, Debug)]
pub struct Clients {
    /// IAM: the role and the policy.
    pub iam: aws_sdk_iam::Client,
    /// Redshift control plane: the cluster.
    pub redshift: aws_sdk_redshift::Client,
    /// Redshift Data API: the SQL.
    pub data: aws_sdk_redshiftdata::Client,
    /// S3: checking the source before COPY.
    pub s3: aws_sdk_s3::Client,
    /// STS: the account id, for ARNs.
    pub sts: aws_sdk_sts::Client,
    /// The region every client talks to.
    pub region: String,
}

impl Clients {
    /// Loads the SDK configuration, applying `[AWS]` from the config file.
    ///
    /// Fails (before any request) if no region can be found: we never guess
    /// one, because a cluster in the wrong region costs money and a COPY from a
    /// bucket in another region fails.
    pub async fn new(cfg: &Config) -> Result<Self> {
        let aws = &cfg.aws;
        // Explicit retries: the SDK's standard mode retries throttling and
        // transient 5xx errors with jittered exponential backoff. The attempt
        // count is the config's, so a flaky network can be given more.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(aws.max_attempts));
        if let Some(region) = &aws.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &aws.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(keys) = &aws.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.expose().to_string(),
                None,
                None,
                "s3-to-redshift config file",
            ));
        }
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(ConfigError::Invalid {
                path: cfg.path.clone(),
                problems: vec![Problem {
                    section: "AWS".into(),
                    key: "REGION".into(),
                    message: "is missing and no region is set in the environment \
                              (AWS_REGION) or the profile; set one, e.g. `REGION = us-east-1`"
                        .into(),
                }],
            }
            .into());
        };
        Ok(Self::from_sdk_config(&sdk, region))
    }

    /// Builds the clients from an already-loaded SDK configuration.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, region: String) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(sdk),
            redshift: aws_sdk_redshift::Client::new(sdk),
            data: aws_sdk_redshiftdata::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            region,
        }
    }

    /// The AWS account the credentials belong to (`sts:GetCallerIdentity`,
    /// which needs no permissions).
    pub async fn account_id(&self) -> Result<String> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| Error::aws("STS", "GetCallerIdentity", "the caller", e))?;
        out.account.ok_or_else(|| Error::Aws {
            service: "STS",
            operation: "GetCallerIdentity",
            resource: "the caller".into(),
            code: None,
            message: "the reply named no account".into(),
        })
    }
}

/// The ARN partition of a region: `aws`, `aws-cn` or `aws-us-gov`.
///
/// ```
/// use s3_to_redshift::aws::partition;
/// assert_eq!(partition("eu-west-1"), "aws");
/// assert_eq!(partition("cn-north-1"), "aws-cn");
/// assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
/// ```
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
