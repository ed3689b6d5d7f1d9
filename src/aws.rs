//! The AWS SDK clients, built once from the SDK's standard configuration.
//!
//! Credentials, region and endpoints come from the SDK's usual chain
//! (environment, `~/.aws/config` profiles, SSO, instance roles), overridden
//! only by what the `.cfg` file says. That is also how the local emulators are
//! reached: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_<SERVICE>`) in the
//! environment, never a special code path here.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_sdk_redshift::config::Region;

use crate::config::{AwsSettings, Config, RetryMode};
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
    /// Redshift Serverless: the namespace and workgroup (`[SERVERLESS]`).
    pub serverless: aws_sdk_redshiftserverless::Client,
    /// The region every client talks to.
    pub region: String,
}

impl Clients {
    // ANCHOR: clients
    /// Loads the SDK configuration, applying `[AWS]` from the config file.
    ///
    /// Fails (before any request) if no region can be found: we never guess
    /// one, because a cluster in the wrong region costs money and a COPY from a
    /// bucket in another region fails.
    pub async fn new(cfg: &Config) -> Result<Self> {
        let aws = &cfg.aws;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry_config(aws))
            .timeout_config(timeout_config(aws));
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
            serverless: aws_sdk_redshiftserverless::Client::new(sdk),
            region,
        }
    }
    // ANCHOR_END: clients

    /// The AWS account the credentials belong to: [`account_id`].
    pub async fn account_id(&self) -> Result<String> {
        account_id(&self.sts).await
    }
}

// ANCHOR: account_id
/// The AWS account the credentials belong to (`sts:GetCallerIdentity`,
/// which needs no permission: it cannot be denied).
pub async fn account_id(sts: &aws_sdk_sts::Client) -> Result<String> {
    let out = sts
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
// ANCHOR_END: account_id

/// The SDK retry settings from `[AWS]`.
///
/// Why explicit: the SDK's defaults (3 attempts, no attempt timeout) suit an
/// interactive call; a pipeline that waits half an hour for a cluster meets
/// throttling and a dropped connection sooner or later, and should ride them
/// out. Every client gets the same settings, and they are in the `.cfg`, so a
/// flaky network can be given more attempts without a rebuild. What is
/// retried is the SDK's decision: throttling codes (`Throttling`,
/// `ThrottlingException`, …), 500/502/503/504, I/O errors such as a dropped
/// connection or a truncated body, and attempts that time out.
///
/// ```
/// # let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
/// # let cfg = s3_to_redshift::config::Config::parse(&text, "p.cfg", None).unwrap();
/// let retry = s3_to_redshift::aws::retry_config(&cfg.aws);
/// assert_eq!(retry.max_attempts(), 5);
/// ```
pub fn retry_config(aws: &AwsSettings) -> RetryConfig {
    let base = match aws.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    };
    base.with_max_attempts(aws.max_attempts)
        .with_initial_backoff(aws.initial_backoff)
}

/// The SDK timeouts from `[AWS]`: a connect timeout, and a per-attempt
/// timeout so that a reply that stalls is abandoned and retried instead of
/// hanging the run. (No overall operation timeout: the attempts bound it.)
pub fn timeout_config(aws: &AwsSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(aws.connect_timeout)
        .operation_attempt_timeout(aws.attempt_timeout)
        .build()
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
