//! The settings types: one struct per section, and the words some keys
//! take as enums that parse with [`FromStr`] (`"upsert".parse::<LoadMode>()`).
//!
//! These are plain data. Which values are allowed, and how a bad one is
//! reported against its section and key, is the reader's business
//! (`reader.rs`, `sections.rs`); these types only hold what passed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::sql::{ColumnDef, Ident, TableName, describe_char, printable};

/// A word a setting does not take, such as `MODE = merge`: what it was
/// and which words would do.
///
/// ```
/// use s3_to_redshift::config::LoadMode;
/// assert_eq!("Upsert".parse::<LoadMode>(), Ok(LoadMode::Upsert));
/// let err = "merge".parse::<LoadMode>().unwrap_err();
/// assert_eq!(err.to_string(), "`merge` is not a load mode; expected replace, append or upsert");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not {what}; expected {expected}")]
pub struct UnknownWord {
    /// The value as written (non-printable characters escaped).
    pub value: String,
    /// What the setting is, with its article: `a load mode`.
    pub what: &'static str,
    /// The words it takes, for the message.
    pub expected: &'static str,
}

/// Why the word enums share one table each: the same list parses the file's
/// word (case-insensitively, as INI files are written by hand) and prints
/// it back, so the two cannot drift apart.
fn from_word<T: Copy>(
    value: &str,
    words: &[(&str, T)],
    what: &'static str,
    expected: &'static str,
) -> Result<T, UnknownWord> {
    let v = value.trim();
    words
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(v))
        .map(|(_, t)| *t)
        .ok_or_else(|| UnknownWord {
            value: printable(v).to_string(),
            what,
            expected,
        })
}

fn to_word<T: PartialEq>(value: &T, words: &[(&'static str, T)]) -> &'static str {
    words
        .iter()
        .find(|(_, t)| t == value)
        .map(|(w, _)| *w)
        .expect("every variant is in its word table")
}

/// A value that must never be printed: `Debug` shows `***`.
///
/// ```
/// use s3_to_redshift::config::Secret;
/// let s = Secret::new("Sup3rSecret".into());
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "Sup3rSecret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }
    /// The value itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What to do when a resource of the configured name already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnExisting {
    /// Keep it and carry on (the default: re-running converges).
    #[default]
    Reuse,
    /// Delete it and create it anew (the classic tutorial's behaviour). Only
    /// allowed for resources this tool created, unless forced.
    Replace,
    /// Stop with an error.
    Fail,
}

impl OnExisting {
    const WORDS: &[(&str, Self)] = &[
        ("reuse", Self::Reuse),
        ("replace", Self::Replace),
        ("fail", Self::Fail),
    ];
}

impl FromStr for OnExisting {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(s, Self::WORDS, "a choice", "reuse, replace or fail")
    }
}

impl fmt::Display for OnExisting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(to_word(self, Self::WORDS))
    }
}

/// `[AWS]`: how to reach AWS.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// The region; `None` means "from the SDK's usual chain" (`AWS_REGION`,
    /// the profile). There is deliberately no built-in default.
    pub region: Option<String>,
    /// A named profile from `~/.aws/config`, if any.
    pub profile: Option<String>,
    /// How many attempts the SDK makes for a call that fails transiently.
    pub max_attempts: u32,
    /// How retries are paced (`RETRY_MODE`).
    pub retry_mode: RetryMode,
    /// The first retry's backoff before jitter (`INITIAL_BACKOFF_MS`); later
    /// ones grow exponentially up to the SDK's 20 s cap.
    pub initial_backoff: Duration,
    /// How long to wait for a TCP/TLS connection (`CONNECT_TIMEOUT_SECS`).
    pub connect_timeout: Duration,
    /// How long one attempt of one request may take before it is abandoned
    /// and retried (`ATTEMPT_TIMEOUT_SECS`), so a stalled reply cannot hang
    /// a run.
    pub attempt_timeout: Duration,
    /// Access keys written in the file (classic `[AWS] KEY`/`SECRET`).
    /// Accepted for compatibility; a profile or the environment is better.
    pub static_credentials: Option<StaticCredentials>,
}

/// An access key pair from the config file. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct StaticCredentials {
    /// The access key id (an identifier, not a secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
}

/// How the SDK paces retries (`[AWS] RETRY_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetryMode {
    /// Exponential backoff with jitter on throttling, 5xx and timeouts.
    #[default]
    Standard,
    /// Standard, plus a client-side rate limiter that slows down after
    /// throttling: for accounts that share API limits with other jobs.
    Adaptive,
}

impl RetryMode {
    const WORDS: &[(&str, Self)] = &[("standard", Self::Standard), ("adaptive", Self::Adaptive)];
}

impl FromStr for RetryMode {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(s, Self::WORDS, "a retry mode", "standard or adaptive")
    }
}

/// `[SERVERLESS]`: target a Redshift Serverless workgroup instead of a
/// cluster (then `[CLUSTER]` is not used and may be left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerlessSettings {
    /// The workgroup SQL runs on (`WORKGROUP`).
    pub workgroup: String,
    /// Its namespace (`NAMESPACE`, default `<WORKGROUP>-ns`); used when
    /// provisioning and to check the role is associated.
    pub namespace: String,
    /// Create the namespace and workgroup in `up`, delete them in `down`
    /// (`PROVISION`); otherwise they must exist.
    pub provision: bool,
    /// Base capacity in RPUs when provisioning (`BASE_CAPACITY`, 8 to 512
    /// in steps of 8).
    pub base_capacity: u32,
    /// The database (`DB_NAME`, default `dev`).
    pub db_name: String,
    /// How long `up` waits for the workgroup (`WAIT_TIMEOUT_SECS`).
    pub wait_timeout: Duration,
    /// Delay between status checks (`POLL_INTERVAL_SECS`).
    pub poll_interval: Duration,
}

/// `[IAM]`: the role Redshift assumes and its S3 read policy.
#[derive(Clone, Debug)]
pub struct IamSettings {
    /// The role's name.
    pub role_name: String,
    /// The customer-managed policy's name (default: `<role>-s3-read`).
    pub policy_name: String,
    /// What to do with an existing role or policy of these names.
    pub on_existing: OnExisting,
}

/// Single- or multi-node cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterType {
    /// One node: leader and compute together.
    SingleNode,
    /// A leader node plus two or more compute nodes.
    MultiNode,
}

impl ClusterType {
    const WORDS: &[(&str, Self)] = &[
        ("single-node", Self::SingleNode),
        ("multi-node", Self::MultiNode),
    ];

    /// The API's spelling, which is also the file's.
    pub fn as_str(self) -> &'static str {
        to_word(&self, Self::WORDS)
    }
}

impl FromStr for ClusterType {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(
            s,
            Self::WORDS,
            "a cluster type",
            "`single-node` or `multi-node`",
        )
    }
}

/// `[CLUSTER]`: the provisioned cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The cluster identifier.
    pub identifier: String,
    /// Single- or multi-node.
    pub cluster_type: ClusterType,
    /// The node type, e.g. `ra3.large`.
    pub node_type: String,
    /// Number of compute nodes (1 for single-node).
    pub num_nodes: u32,
    /// The database created with the cluster.
    pub db_name: String,
    /// The admin user; the Data API also connects as this user.
    pub db_user: String,
    /// The admin password (only used to create the cluster).
    pub db_password: Option<Secret>,
    /// The port the database listens on.
    pub port: u16,
    /// Whether the cluster gets a public address. Off by default: the Data
    /// API needs no open port at all.
    pub publicly_accessible: bool,
    /// What to do with an existing cluster of this identifier.
    pub on_existing: OnExisting,
    /// How long to wait for `available` or for deletion.
    pub wait_timeout: Duration,
    /// How often to ask while waiting.
    pub poll_interval: Duration,
}

/// An `s3://bucket/key-or-prefix` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket.
    pub bucket: String,
    /// The key or key prefix (may be empty: the whole bucket).
    pub key: String,
}

impl S3Uri {
    /// Parses and checks an S3 URI.
    ///
    /// ```
    /// use s3_to_redshift::config::S3Uri;
    /// let u = S3Uri::parse("s3://my-bucket/data/sales.csv").unwrap();
    /// assert_eq!((u.bucket.as_str(), u.key.as_str()), ("my-bucket", "data/sales.csv"));
    /// assert!(S3Uri::parse("https://my-bucket/x").is_err());
    /// assert!(S3Uri::parse("s3://my-bucket/it's.csv").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw.strip_prefix("s3://").ok_or_else(|| {
            format!(
                "`{}` is not an S3 URI; expected `s3://bucket/key`",
                printable(raw)
            )
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(format!(
                "bucket name `{}` is not valid: 3 to 63 lower-case letters, digits, `.` or `-`, \
                 starting and ending with a letter or digit",
                printable(bucket)
            ));
        }
        // Keys may legally hold almost anything, but the key also ends up in
        // an IAM policy resource (where `*`, `?` and `${` are patterns) and in
        // SQL and logs. Refusing the few risky characters keeps all three
        // meaning exactly the object the user named.
        if let Some(bad) = key
            .chars()
            .find(|c| c.is_control() || matches!(c, '\'' | '"' | '\\' | '*' | '?'))
        {
            return Err(format!(
                "key `{}` contains {}; rename the object or point at a prefix above it",
                printable(key),
                describe_char(bad)
            ));
        }
        if key.contains("${") {
            return Err(format!(
                "key `{}` contains `${{`, which IAM reads as a policy variable",
                printable(key)
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// `[S3]`: where the data is.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// The object, or the prefix of the objects, to load.
    pub source: S3Uri,
    /// The bucket's region when it differs from `[AWS] REGION` (COPY's `REGION`).
    pub region: Option<String>,
    /// `SOURCE` is a manifest (a JSON list of the objects to load, COPY's
    /// `MANIFEST`), not the data itself.
    pub manifest: bool,
    /// Where `stage` writes its parts and manifests (`STAGE_PREFIX`), read
    /// by the role like the source.
    pub stage_prefix: Option<S3Uri>,
}

impl S3Settings {
    /// Every location the role must be able to read: the data (for a
    /// manifest, the manifest's folder, where its parts must be) and the
    /// staging prefix.
    pub fn readable(&self) -> Vec<S3Uri> {
        let mut out = vec![if self.manifest {
            self.manifest_folder()
        } else {
            self.source.clone()
        }];
        out.extend(self.stage_prefix.clone());
        out
    }

    /// The folder of a manifest source: `s3://b/loads/m.json` → `s3://b/loads/`.
    pub fn manifest_folder(&self) -> S3Uri {
        let key = match self.source.key.rfind('/') {
            Some(i) => self.source.key[..=i].to_string(),
            None => String::new(),
        };
        S3Uri {
            bucket: self.source.bucket.clone(),
            key,
        }
    }
}

/// Redshift's distribution styles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistStyle {
    /// Let Redshift choose (the default).
    Auto,
    /// Round-robin across slices.
    Even,
    /// By the value of one column.
    Key(Ident),
    /// A full copy on every node (small dimension tables).
    All,
}

/// `[TABLE]` and `[COLUMNS]`: the target table.
#[derive(Clone, Debug)]
pub struct TableSettings {
    /// `schema.table`.
    pub name: TableName,
    /// The columns, in file order (which is also the CSV's column order).
    pub columns: Vec<ColumnDef>,
    /// The distribution style.
    pub dist_style: DistStyle,
    /// The compound sort key's columns, if any.
    pub sort_key: Vec<Ident>,
    /// `INFER_COLUMNS = true`: `columns` is empty in the file and is
    /// inferred from the data when the pipeline connects (see
    /// [`crate::schema`]).
    pub infer_columns: bool,
}

/// What `load` does with rows already in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Empty the table and load, in one transaction: re-running converges to
    /// the same rows, and a failed COPY leaves the old rows in place.
    #[default]
    Replace,
    /// Add the rows to what is there. The same objects (same keys and
    /// ETags) are appended only once: a re-run after a success or an
    /// interruption does not duplicate them.
    Append,
    /// Insert new rows and update existing ones, matched on `[LOAD] KEY`;
    /// rows absent from the new data stay as they are.
    Upsert,
}

impl LoadMode {
    const WORDS: &[(&str, Self)] = &[
        ("replace", Self::Replace),
        ("append", Self::Append),
        ("upsert", Self::Upsert),
    ];

    /// The mode as written in the config file.
    pub fn as_str(self) -> &'static str {
        to_word(&self, Self::WORDS)
    }
}

impl FromStr for LoadMode {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(s, Self::WORDS, "a load mode", "replace, append or upsert")
    }
}

/// The format of the source objects (`[LOAD] FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadFormat {
    /// Delimited text with CSV quoting.
    #[default]
    Csv,
    /// One JSON object per line, fields matched to columns by name
    /// (`FORMAT AS JSON 'auto'`).
    Json,
}

impl LoadFormat {
    const WORDS: &[(&str, Self)] = &[("csv", Self::Csv), ("json", Self::Json)];
}

impl FromStr for LoadFormat {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(
            s,
            Self::WORDS,
            "a supported format",
            "CSV or JSON (one object per line)",
        )
    }
}

/// Compression of the source objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain files.
    #[default]
    None,
    /// gzip (`GZIP`).
    Gzip,
    /// bzip2 (`BZIP2`).
    Bzip2,
    /// Zstandard (`ZSTD`).
    Zstd,
}

impl Compression {
    const WORDS: &[(&str, Self)] = &[
        ("none", Self::None),
        ("gzip", Self::Gzip),
        ("bzip2", Self::Bzip2),
        ("zstd", Self::Zstd),
    ];
}

impl FromStr for Compression {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        from_word(s, Self::WORDS, "a compression", "none, gzip, bzip2 or zstd")
    }
}

/// `[LOAD]`: the COPY options and the load's behaviour.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// Field delimiter (`DELIMITER`); `,` by default.
    pub delimiter: char,
    /// The CSV quote character (`QUOTE AS`); `"` by default.
    pub quote: char,
    /// Header lines to skip (`IGNOREHEADER`).
    pub ignore_header: u32,
    /// The string that means NULL (`NULL AS`).
    pub null_as: Option<String>,
    /// Load empty fields as NULL (`EMPTYASNULL`).
    pub empty_as_null: bool,
    /// Load whitespace-only fields as NULL (`BLANKSASNULL`).
    pub blanks_as_null: bool,
    /// `DATEFORMAT`, e.g. `auto` or `YYYY-MM-DD`.
    pub date_format: Option<String>,
    /// `TIMEFORMAT`, e.g. `auto` or `epochsecs`.
    pub time_format: Option<String>,
    /// Compression of the objects.
    pub compression: Compression,
    /// Bad rows tolerated before the COPY fails (`MAXERROR`); 0 by default.
    pub max_errors: u32,
    /// The source's format.
    pub format: LoadFormat,
    /// Replace, append or upsert.
    pub mode: LoadMode,
    /// The columns that identify a row, for `upsert` (`KEY`).
    pub key: Vec<Ident>,
    /// How long one SQL statement may run before it is cancelled.
    pub statement_timeout: Duration,
    /// If set, the load fails verification unless the table then holds exactly
    /// this many rows.
    pub expected_rows: Option<u64>,
}
