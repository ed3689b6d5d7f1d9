//! Step 0: the `.cfg` file, parsed and validated before anything touches AWS.
//!
//! The file is INI with one section per concern:
//!
//! | section     | what it holds |
//! |-------------|---------------|
//! | `[AWS]`     | region, profile, retry attempts |
//! | `[IAM]`     | the role Redshift assumes and its S3 read policy |
//! | `[CLUSTER]` | the provisioned cluster and its database |
//! | `[S3]`      | where the data is |
//! | `[TABLE]`   | the target table's name, distribution and sort keys |
//! | `[COLUMNS]` | one `name = TYPE` line per column, in order |
//! | `[LOAD]`    | `COPY` options, load mode and timeouts |
//!
//! The key names of the classic Python tutorial's `dwh.cfg` are accepted too
//! (`[DWH] DWH_CLUSTER_IDENTIFIER`, `DWH_DB`, … and `[S3] LOG_DATA`-style
//! paths), so readers can bring the file they have.
//!
//! Why collect *every* problem instead of stopping at the first? Because each
//! run against AWS costs time; a reader who sees all five typos at once fixes
//! them in one edit. And why validate so much up front? A bad value found
//! half-way through the pipeline leaves a role created and a cluster missing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ini::{Ini, ParseOption};

use crate::error::{ConfigError, Problem};
use crate::sql::{ColumnDef, Ident, TableName, describe_char, printable};

/// The environment variable that supplies the database password, so that it
/// need not be written in the file. It wins over `[CLUSTER] DB_PASSWORD`.
pub const PASSWORD_ENV: &str = "S3_TO_REDSHIFT_DB_PASSWORD";

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

impl fmt::Display for OnExisting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reuse => "reuse",
            Self::Replace => "replace",
            Self::Fail => "fail",
        })
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
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleNode => "single-node",
            Self::MultiNode => "multi-node",
        }
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
    /// The mode as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMode::Replace => "replace",
            LoadMode::Append => "append",
            LoadMode::Upsert => "upsert",
        }
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

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// `[AWS]`.
    pub aws: AwsSettings,
    /// `[IAM]`.
    pub iam: IamSettings,
    /// `[CLUSTER]`.
    pub cluster: ClusterSettings,
    /// `[S3]`.
    pub s3: S3Settings,
    /// `[TABLE]` and `[COLUMNS]`.
    pub table: TableSettings,
    /// `[LOAD]`.
    pub load: LoadSettings,
    /// `[SERVERLESS]`, when the target is a Serverless workgroup.
    pub serverless: Option<ServerlessSettings>,
    /// Things worth telling the user that are not errors (ignored classic keys,
    /// credentials in the file).
    pub notes: Vec<String>,
}

impl Config {
    /// Reads and validates `path`. The password may come from the
    /// [`PASSWORD_ENV`] environment variable instead of the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env_password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        Self::parse(&text, path, env_password)
    }

    /// Sets the columns inferred from the data (`[TABLE] INFER_COLUMNS`),
    /// then checks what names columns (DIST_KEY, SORT_KEY, [LOAD] KEY)
    /// against them, as it would have been checked for listed columns.
    pub fn set_inferred_columns(&mut self, columns: Vec<ColumnDef>) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |key: &str, id: &Ident| {
            if !columns.iter().any(|c| &c.name == id) {
                let hint = did_you_mean(id.as_str(), columns.iter().map(|c| c.name.as_str()));
                problems.push(Problem {
                    section: if key == "KEY" { "LOAD" } else { "TABLE" }.into(),
                    key: key.into(),
                    message: format!(
                        "`{}` is not among the columns inferred from the data{hint}",
                        id.as_str()
                    ),
                });
            }
        };
        if let DistStyle::Key(k) = &self.table.dist_style {
            check("DIST_KEY", k);
        }
        for k in &self.table.sort_key {
            check("SORT_KEY", k);
        }
        for k in &self.load.key {
            check("KEY", k);
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: self.path.clone(),
                problems,
            });
        }
        self.table.columns = columns;
        Ok(())
    }

    /// [`Config::load`] with some values set from elsewhere (the command
    /// line's `load --mode upsert --key id`): `(section, key, value)`. They
    /// replace the file's values and are checked exactly as if written there.
    pub fn load_with(
        path: impl AsRef<Path>,
        overrides: &[(&str, &str, &str)],
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = with_overrides(&text, overrides);
        let env_password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        Self::parse(&text, path, env_password)
    }

    /// Validates the text of a config file. `path` is only used in messages;
    /// `env_password`, when given, wins over the file's password.
    ///
    /// ```
    /// use s3_to_redshift::config::Config;
    /// let text = "
    /// [AWS]
    /// REGION = eu-west-1
    /// [IAM]
    /// ROLE_NAME = demo-redshift-s3
    /// [CLUSTER]
    /// IDENTIFIER = demo
    /// NODE_TYPE = ra3.large
    /// DB_NAME = dev
    /// DB_USER = awsuser
    /// [S3]
    /// SOURCE = s3://demo-bucket/sales/
    /// [TABLE]
    /// NAME = sales
    /// [COLUMNS]
    /// id = INTEGER NOT NULL
    /// amount = DECIMAL(10,2)
    /// ";
    /// let cfg = Config::parse(text, "demo.cfg", Some("Passw0rd!".into())).unwrap();
    /// assert_eq!(cfg.iam.policy_name, "demo-redshift-s3-s3-read");
    /// assert_eq!(cfg.table.columns.len(), 2);
    ///
    /// let err = Config::parse(&text.replace("ra3.large", "huge"), "demo.cfg", None).unwrap_err();
    /// assert!(err.to_string().contains("[CLUSTER] NODE_TYPE"));
    /// ```
    pub fn parse(
        text: &str,
        path: impl AsRef<Path>,
        env_password: Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        // Quotes and escapes are handled here, not by the INI parser: classic
        // files quote their values ('s3://…'), and `\t` must stay two
        // characters until we read it as a delimiter.
        let opts = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini = Ini::load_from_str_opt(text, opts).map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            message: format!("line {}, column {}: {}", e.line, e.col, e.msg),
        })?;
        let mut r = Reader::new(&ini);
        let cfg = r.build(path.clone(), env_password);
        match cfg {
            Some(cfg) if r.problems.is_empty() => Ok(cfg),
            _ => Err(ConfigError::Invalid {
                path,
                problems: r.problems,
            }),
        }
    }
}

/// The config text `text` with each `(section, key, value)` set, replacing
/// the file's own value for that key if it has one.
///
/// ```
/// let text = "[LOAD]\nMODE = replace\n";
/// let out = s3_to_redshift::config::with_overrides(text, &[("LOAD", "MODE", "append")]);
/// assert_eq!(out, "[LOAD]\n\n[LOAD]\nMODE = append\n");
/// ```
pub fn with_overrides(text: &str, overrides: &[(&str, &str, &str)]) -> String {
    let mut text = text.to_string();
    for (section, key, value) in overrides {
        // Appending a section again adds to it; drop the file's own line
        // for the key first so the value is not "given twice".
        text = remove_key(&text, section, key);
        text.push_str(&format!("\n[{section}]\n{key} = {value}\n"));
    }
    text
}

/// `text` without the lines setting `key` in `[section]` (case-insensitive).
fn remove_key(text: &str, section: &str, key: &str) -> String {
    let mut current = String::new();
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t[1..t.len() - 1].trim().to_ascii_uppercase();
        } else if current.eq_ignore_ascii_case(section)
            && t.split('=')
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case(key))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

impl ClusterSettings {
    /// The stand-in used with `[SERVERLESS]`: no cluster exists, and only
    /// `db_name` is read (from the workgroup's settings).
    fn unused_with(sl: &ServerlessSettings) -> Self {
        Self {
            identifier: sl.workgroup.clone(),
            cluster_type: ClusterType::SingleNode,
            node_type: String::new(),
            num_nodes: 1,
            db_name: sl.db_name.clone(),
            db_user: String::new(),
            db_password: None,
            port: 5439,
            publicly_accessible: false,
            on_existing: OnExisting::Reuse,
            wait_timeout: sl.wait_timeout,
            poll_interval: sl.poll_interval,
        }
    }
}

/// Where a value came from, as written in the file.
#[derive(Clone, Debug)]
struct Entry {
    section: String,
    key: String,
    value: String,
}

/// The canonical sections and their keys.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "AWS",
        &[
            "REGION",
            "PROFILE",
            "MAX_ATTEMPTS",
            "RETRY_MODE",
            "INITIAL_BACKOFF_MS",
            "CONNECT_TIMEOUT_SECS",
            "ATTEMPT_TIMEOUT_SECS",
            "KEY",
            "SECRET",
        ],
    ),
    ("IAM", &["ROLE_NAME", "POLICY_NAME", "ON_EXISTING"]),
    (
        "CLUSTER",
        &[
            "IDENTIFIER",
            "CLUSTER_TYPE",
            "NODE_TYPE",
            "NUM_NODES",
            "DB_NAME",
            "DB_USER",
            "DB_PASSWORD",
            "PORT",
            "PUBLICLY_ACCESSIBLE",
            "ON_EXISTING",
            "WAIT_TIMEOUT_SECS",
            "POLL_INTERVAL_SECS",
        ],
    ),
    ("S3", &["SOURCE", "REGION", "MANIFEST", "STAGE_PREFIX"]),
    (
        "SERVERLESS",
        &[
            "WORKGROUP",
            "NAMESPACE",
            "PROVISION",
            "BASE_CAPACITY",
            "DB_NAME",
            "WAIT_TIMEOUT_SECS",
            "POLL_INTERVAL_SECS",
        ],
    ),
    (
        "TABLE",
        &[
            "NAME",
            "DIST_STYLE",
            "DIST_KEY",
            "SORT_KEY",
            "INFER_COLUMNS",
        ],
    ),
    (
        "LOAD",
        &[
            "FORMAT",
            "DELIMITER",
            "QUOTE",
            "IGNORE_HEADER",
            "NULL_AS",
            "EMPTY_AS_NULL",
            "BLANKS_AS_NULL",
            "DATE_FORMAT",
            "TIME_FORMAT",
            "COMPRESSION",
            "MAX_ERRORS",
            "MODE",
            "KEY",
            "STATEMENT_TIMEOUT_SECS",
            "EXPECTED_ROWS",
        ],
    ),
];

/// The classic tutorial's keys: (section, key) → canonical (section, key).
/// A `(section, key)` pair.
type Place = (&'static str, &'static str);

const CLASSIC: &[(Place, Place)] = &[
    (("DWH", "DWH_CLUSTER_TYPE"), ("CLUSTER", "CLUSTER_TYPE")),
    (("DWH", "DWH_NUM_NODES"), ("CLUSTER", "NUM_NODES")),
    (("DWH", "DWH_NODE_TYPE"), ("CLUSTER", "NODE_TYPE")),
    (("DWH", "DWH_CLUSTER_IDENTIFIER"), ("CLUSTER", "IDENTIFIER")),
    (("DWH", "DWH_DB"), ("CLUSTER", "DB_NAME")),
    (("DWH", "DWH_DB_USER"), ("CLUSTER", "DB_USER")),
    (("DWH", "DWH_DB_PASSWORD"), ("CLUSTER", "DB_PASSWORD")),
    (("DWH", "DWH_PORT"), ("CLUSTER", "PORT")),
    (("DWH", "DWH_IAM_ROLE_NAME"), ("IAM", "ROLE_NAME")),
    (("DWH", "DWH_REGION"), ("AWS", "REGION")),
    (("CLUSTER", "DB_PORT"), ("CLUSTER", "PORT")),
    // The Python tutorial this project grew from names its cluster section
    // `[Redshift]` (read as `[CLUSTER]`), with the API's own parameter names.
    (("CLUSTER", "CLUSTER_IDENTIFIER"), ("CLUSTER", "IDENTIFIER")),
    (("CLUSTER", "NUMBER_OF_NODES"), ("CLUSTER", "NUM_NODES")),
    (("CLUSTER", "MASTER_USERNAME"), ("CLUSTER", "DB_USER")),
    (
        ("CLUSTER", "MASTER_USER_PASSWORD"),
        ("CLUSTER", "DB_PASSWORD"),
    ),
];

/// Classic keys we read but do not use, with the reason shown to the user.
const IGNORED: &[(Place, &str)] = &[
    (
        ("CLUSTER", "HOST"),
        "SQL goes through the Redshift Data API, which needs no host name",
    ),
    (
        ("IAM_ROLE", "ARN"),
        "the role is looked up by [IAM] ROLE_NAME (DWH_IAM_ROLE_NAME)",
    ),
];

struct Reader {
    /// Canonical (section, key) → entry as written.
    values: BTreeMap<(String, String), Entry>,
    /// `[COLUMNS]`, in order.
    columns: Vec<Entry>,
    /// Other `[S3]` keys: classic `LOG_DATA = s3://…` paths.
    s3_paths: Vec<Entry>,
    problems: Vec<Problem>,
    notes: Vec<String>,
}

/// Strips one pair of matching surrounding quotes, as classic files use them.
fn unquote(raw: &str) -> &str {
    let v = raw.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min();
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

impl Reader {
    fn new(ini: &Ini) -> Self {
        let mut r = Reader {
            values: BTreeMap::new(),
            columns: Vec::new(),
            s3_paths: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        for (section, props) in ini.iter() {
            let Some(section) = section else {
                for (key, _) in props.iter() {
                    r.problem(
                        "(none)",
                        key,
                        "is outside any section; put it under a `[SECTION]` header".into(),
                    );
                }
                continue;
            };
            let sec = section.trim().to_ascii_uppercase();
            let known_section = SCHEMA.iter().any(|(s, _)| *s == sec)
                || matches!(sec.as_str(), "COLUMNS" | "DWH" | "IAM_ROLE" | "REDSHIFT");
            if !known_section {
                let names = SCHEMA
                    .iter()
                    .map(|(s, _)| *s)
                    .chain(["COLUMNS", "DWH", "IAM_ROLE", "REDSHIFT"]);
                let hint = did_you_mean(&sec, names);
                r.problem(
                    section,
                    "",
                    format!(
                        "unknown section{hint}; sections are [AWS], [IAM], [CLUSTER] or [SERVERLESS], \
                         [S3], [TABLE], [COLUMNS], [LOAD] (and the classic [Redshift], [DWH], [IAM_ROLE])"
                    ),
                );
                continue;
            }
            for (key, value) in props.iter() {
                let entry = Entry {
                    section: section.to_string(),
                    key: key.to_string(),
                    value: unquote(value).to_string(),
                };
                r.take(&sec, entry);
            }
        }
        r
    }

    fn problem(&mut self, section: &str, key: &str, message: String) {
        self.problems.push(Problem {
            section: section.to_string(),
            key: key.to_string(),
            message,
        });
    }

    /// Files one key under its canonical place, or reports why it has none.
    fn take(&mut self, sec: &str, entry: Entry) {
        // `[Redshift]` is the Python tutorial's name for `[CLUSTER]`.
        let sec = if sec == "REDSHIFT" { "CLUSTER" } else { sec };
        let key = entry.key.trim().to_ascii_uppercase();
        if sec == "COLUMNS" {
            if let Some(prev) = self
                .columns
                .iter()
                .find(|c| c.key.eq_ignore_ascii_case(&entry.key))
            {
                let msg = format!("column `{}` is listed twice", prev.key);
                self.problem(&entry.section, &entry.key, msg);
            } else {
                self.columns.push(entry);
            }
            return;
        }
        if let Some((_, why)) = IGNORED.iter().find(|((s, k), _)| *s == sec && *k == key) {
            self.notes.push(format!(
                "[{}] {} is ignored: {why}",
                entry.section, entry.key
            ));
            return;
        }
        let canonical = CLASSIC
            .iter()
            .find(|((s, k), _)| *s == sec && *k == key)
            .map(|(_, (s, k))| (s.to_string(), k.to_string()))
            .or_else(|| {
                SCHEMA
                    .iter()
                    .find(|(s, keys)| *s == sec && keys.contains(&key.as_str()))
                    .map(|(s, _)| (s.to_string(), key.clone()))
            });
        let Some(canonical) = canonical else {
            if sec == "S3" {
                // Classic files name their paths freely: LOG_DATA, SONG_DATA, …
                self.s3_paths.push(entry);
                return;
            }
            let candidates: Vec<&str> = SCHEMA
                .iter()
                .filter(|(s, _)| *s == sec)
                .flat_map(|(_, keys)| keys.iter().copied())
                .chain(
                    CLASSIC
                        .iter()
                        .filter(|((s, _), _)| *s == sec)
                        .map(|((_, k), _)| *k),
                )
                .collect();
            let hint = did_you_mean(&key, candidates.iter().copied());
            let msg = format!("unknown key{hint}; [{sec}] takes {}", candidates.join(", "));
            self.problem(&entry.section, &entry.key, msg);
            return;
        };
        if let Some(prev) = self.values.get(&canonical) {
            let msg = format!(
                "is given twice: also as [{}] {}; keep one",
                prev.section, prev.key
            );
            self.problem(&entry.section, &entry.key, msg);
            return;
        }
        self.values.insert(canonical, entry);
    }

    /// The entry for a canonical key, if present and not empty. Empty values
    /// count as absent: classic files ship `DWH_DB_PASSWORD=` to be filled in.
    fn entry(&self, sec: &str, key: &str) -> Option<Entry> {
        self.values
            .get(&(sec.to_string(), key.to_string()))
            .filter(|e| !e.value.is_empty())
            .cloned()
    }

    fn required(&mut self, sec: &str, key: &str, expected: &str) -> Option<Entry> {
        let e = self.entry(sec, key);
        if e.is_none() {
            let classic = CLASSIC
                .iter()
                .find(|(_, (s, k))| *s == sec && *k == key)
                .map(|((cs, ck), _)| format!(" (or [{cs}] {ck})"))
                .unwrap_or_default();
            self.problem(
                sec,
                key,
                format!("is missing{classic}; expected {expected}"),
            );
        }
        e
    }

    /// Parses a present value with `parse`; reports failures against the
    /// entry's own section and key.
    fn parse_entry<T>(
        &mut self,
        e: &Entry,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(&e.value) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.problem(&e.section, &e.key, msg);
                None
            }
        }
    }

    fn optional<T>(
        &mut self,
        sec: &str,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.entry(sec, key) {
            None => Some(default),
            Some(e) => self.parse_entry(&e, parse),
        }
    }

    fn build(&mut self, path: PathBuf, env_password: Option<String>) -> Option<Config> {
        let aws = self.aws();
        let iam = self.iam();
        let serverless = self.serverless();
        let uses_cluster = self.values.keys().any(|(s, _)| s == "CLUSTER");
        let cluster = match &serverless {
            // The workgroup replaces the cluster; a [CLUSTER] section kept
            // beside it would be ignored, so say so instead.
            Some(Some(sl)) if !uses_cluster => Some(ClusterSettings::unused_with(sl)),
            Some(Some(_)) => {
                self.problem(
                    "CLUSTER",
                    "",
                    "is not used when [SERVERLESS] is set; remove one of the two sections".into(),
                );
                None
            }
            _ => self.cluster(env_password),
        };
        let s3 = self.s3();
        let table = self.table();
        let load = self.load();
        if let (Some(t), Some(l)) = (&table, &load)
            && !t.infer_columns
        {
            for k in &l.key {
                if !t.columns.iter().any(|c| &c.name == k) {
                    let hint = did_you_mean(k.as_str(), t.columns.iter().map(|c| c.name.as_str()));
                    self.problem(
                        "LOAD",
                        "KEY",
                        format!("`{}` is not a column in [COLUMNS]{hint}", k.as_str()),
                    );
                }
            }
            if !self.problems.is_empty() {
                return None;
            }
        }
        Some(Config {
            path,
            aws: aws?,
            iam: iam?,
            cluster: cluster?,
            s3: s3?,
            table: table?,
            load: load?,
            serverless: serverless.flatten(),
            notes: std::mem::take(&mut self.notes),
        })
    }

    fn aws(&mut self) -> Option<AwsSettings> {
        let region = match self.entry("AWS", "REGION") {
            Some(e) => Some(self.parse_entry(&e, parse_region)?),
            None => None,
        };
        let profile = self.entry("AWS", "PROFILE").map(|e| e.value);
        let max_attempts = self.optional("AWS", "MAX_ATTEMPTS", 5, |v| parse_int(v, 1, 20));
        let retry_mode = self.optional("AWS", "RETRY_MODE", RetryMode::Standard, |v| {
            match v.to_ascii_lowercase().as_str() {
                "standard" => Ok(RetryMode::Standard),
                "adaptive" => Ok(RetryMode::Adaptive),
                _ => Err(format!(
                    "`{}` is not a retry mode; expected standard or adaptive",
                    printable(v)
                )),
            }
        });
        let initial_backoff = self.optional("AWS", "INITIAL_BACKOFF_MS", 1000, |v| {
            parse_int(v, 1, 60_000)
        });
        let connect_timeout =
            self.optional("AWS", "CONNECT_TIMEOUT_SECS", 10, |v| parse_int(v, 1, 300));
        let attempt_timeout =
            self.optional("AWS", "ATTEMPT_TIMEOUT_SECS", 60, |v| parse_int(v, 1, 3600));
        let (max_attempts, retry_mode) = (max_attempts?, retry_mode?);
        let initial_backoff = Duration::from_millis(initial_backoff?.into());
        let connect_timeout = Duration::from_secs(connect_timeout?.into());
        let attempt_timeout = Duration::from_secs(attempt_timeout?.into());
        let key = self.entry("AWS", "KEY");
        let secret = self.entry("AWS", "SECRET");
        let static_credentials = match (key, secret) {
            (None, None) => None,
            (Some(k), Some(s)) => {
                self.notes.push(format!(
                    "[{}] {} and {} hold access keys in the file; a profile, SSO or the \
                     environment keeps them out of files you might share",
                    k.section, k.key, s.key
                ));
                Some(StaticCredentials {
                    access_key_id: k.value,
                    secret_access_key: Secret::new(s.value),
                })
            }
            (Some(e), None) | (None, Some(e)) => {
                self.problem(
                    &e.section,
                    &e.key,
                    "access keys need both KEY and SECRET; set both, or remove both and use \
                     a profile or the environment"
                        .into(),
                );
                return None;
            }
        };
        Some(AwsSettings {
            region,
            profile,
            max_attempts,
            retry_mode,
            initial_backoff,
            connect_timeout,
            attempt_timeout,
            static_credentials,
        })
    }

    /// `None` when there is no `[SERVERLESS]` section; `Some(None)` when it
    /// is there but has problems.
    fn serverless(&mut self) -> Option<Option<ServerlessSettings>> {
        if !self.values.keys().any(|(s, _)| s == "SERVERLESS") {
            return None;
        }
        let wg = self.required(
            "SERVERLESS",
            "WORKGROUP",
            "the workgroup's name, e.g. `analytics`",
        );
        let workgroup = wg.and_then(|e| self.parse_entry(&e, parse_serverless_name));
        let namespace = match self.entry("SERVERLESS", "NAMESPACE") {
            Some(e) => self.parse_entry(&e, parse_serverless_name),
            None => workgroup.as_ref().map(|w| format!("{w}-ns")),
        };
        let provision = self.optional("SERVERLESS", "PROVISION", false, parse_bool);
        let base_capacity = self.optional("SERVERLESS", "BASE_CAPACITY", 8, |v| {
            let n = parse_int(v, 8, 512)?;
            if n % 8 == 0 {
                Ok(n)
            } else {
                Err(format!(
                    "{n} is not a multiple of 8; base capacity comes in steps of 8 RPUs"
                ))
            }
        });
        let db_name = match self.entry("SERVERLESS", "DB_NAME") {
            Some(e) => self.parse_entry(&e, |v| parse_db_name(v, 64, "database name")),
            None => Some("dev".to_string()),
        };
        let wait = self.optional("SERVERLESS", "WAIT_TIMEOUT_SECS", 900, |v| {
            parse_int(v, 10, 86_400)
        });
        let poll = self.optional("SERVERLESS", "POLL_INTERVAL_SECS", 10, |v| {
            parse_int(v, 1, 600)
        });
        Some((|| {
            Some(ServerlessSettings {
                workgroup: workgroup?,
                namespace: namespace?,
                provision: provision?,
                base_capacity: base_capacity?,
                db_name: db_name?,
                wait_timeout: Duration::from_secs(wait?.into()),
                poll_interval: Duration::from_secs(poll?.into()),
            })
        })())
    }

    fn iam(&mut self) -> Option<IamSettings> {
        let role = self.required(
            "IAM",
            "ROLE_NAME",
            "the name of the IAM role Redshift assumes",
        );
        let role_name = self.parse_entry(&role?, |v| parse_iam_name(v, 64))?;
        let policy_name = match self.entry("IAM", "POLICY_NAME") {
            Some(e) => self.parse_entry(&e, |v| parse_iam_name(v, 128))?,
            None => format!("{role_name}-s3-read"),
        };
        let on_existing =
            self.optional("IAM", "ON_EXISTING", OnExisting::Reuse, parse_on_existing)?;
        Some(IamSettings {
            role_name,
            policy_name,
            on_existing,
        })
    }

    fn cluster(&mut self, env_password: Option<String>) -> Option<ClusterSettings> {
        let id = self.required(
            "CLUSTER",
            "IDENTIFIER",
            "a cluster identifier such as `s3-to-redshift-demo`",
        );
        let node = self.required("CLUSTER", "NODE_TYPE", "a node type such as `ra3.large`");
        let db = self.required("CLUSTER", "DB_NAME", "a database name such as `dev`");
        let user = self.required("CLUSTER", "DB_USER", "an admin user name such as `awsuser`");
        let identifier = id.and_then(|e| self.parse_entry(&e, parse_cluster_identifier));
        let node_type = node.and_then(|e| self.parse_entry(&e, parse_node_type));
        let db_name =
            db.and_then(|e| self.parse_entry(&e, |v| parse_db_name(v, 64, "database name")));
        let db_user =
            user.and_then(|e| self.parse_entry(&e, |v| parse_db_name(v, 128, "user name")));
        let cluster_type =
            self.optional(
                "CLUSTER",
                "CLUSTER_TYPE",
                ClusterType::SingleNode,
                |v| match v.to_ascii_lowercase().as_str() {
                    "single-node" => Ok(ClusterType::SingleNode),
                    "multi-node" => Ok(ClusterType::MultiNode),
                    _ => Err(format!(
                        "`{}` is not a cluster type; expected `single-node` or `multi-node`",
                        printable(v)
                    )),
                },
            );
        let num_nodes = match (self.entry("CLUSTER", "NUM_NODES"), cluster_type) {
            (None, Some(ClusterType::MultiNode)) => {
                self.problem("CLUSTER", "NUM_NODES", "is missing; a multi-node cluster needs 2 or more nodes".into());
                None
            }
            (None, _) => Some(1),
            (Some(e), Some(ClusterType::MultiNode)) => self.parse_entry(&e, |v| {
                parse_int(v, 2, 128).map_err(|m| format!("{m} (a multi-node cluster has at least 2 nodes)"))
            }),
            (Some(e), Some(ClusterType::SingleNode)) => self.parse_entry(&e, |v| match parse_int(v, 1, 1) {
                Ok(n) => Ok(n),
                Err(_) => Err(format!("is `{}` but CLUSTER_TYPE is single-node; set CLUSTER_TYPE = multi-node or NUM_NODES = 1", printable(v))),
            }),
            (Some(_), None) => None,
        };
        // The password: the environment wins, so a file can be shared safely.
        let db_password = match (env_password, self.entry("CLUSTER", "DB_PASSWORD")) {
            (Some(p), _) => match check_password(&p) {
                Ok(()) => Some(Some(Secret::new(p))),
                Err(m) => {
                    self.problem(
                        "CLUSTER",
                        "DB_PASSWORD",
                        format!("the password in ${PASSWORD_ENV} {m}"),
                    );
                    None
                }
            },
            (None, Some(e)) => match check_password(&e.value) {
                Ok(()) => Some(Some(Secret::new(e.value))),
                Err(m) => {
                    self.problem(&e.section, &e.key, format!("the password {m}"));
                    None
                }
            },
            (None, None) => Some(None),
        };
        let port = self.optional("CLUSTER", "PORT", 5439u16, |v| {
            parse_int(v, 1150, 65535)
                .map(|p| p as u16)
                .map_err(|m| format!("{m} (Redshift ports are 1150-65535)"))
        });
        let publicly_accessible =
            self.optional("CLUSTER", "PUBLICLY_ACCESSIBLE", false, parse_bool);
        let on_existing = self.optional(
            "CLUSTER",
            "ON_EXISTING",
            OnExisting::Reuse,
            parse_on_existing,
        );
        let wait_timeout = self.optional("CLUSTER", "WAIT_TIMEOUT_SECS", 1800, |v| {
            parse_int(v, 1, 86_400)
        });
        let poll_interval = self.optional("CLUSTER", "POLL_INTERVAL_SECS", 15, |v| {
            parse_int(v, 1, 600)
        });
        Some(ClusterSettings {
            identifier: identifier?,
            cluster_type: cluster_type?,
            node_type: node_type?,
            num_nodes: num_nodes?,
            db_name: db_name?,
            db_user: db_user?,
            db_password: db_password?,
            port: port?,
            publicly_accessible: publicly_accessible?,
            on_existing: on_existing?,
            wait_timeout: Duration::from_secs(wait_timeout?.into()),
            poll_interval: Duration::from_secs(poll_interval?.into()),
        })
    }

    fn s3(&mut self) -> Option<S3Settings> {
        let paths = std::mem::take(&mut self.s3_paths);
        let source = match self.entry("S3", "SOURCE") {
            Some(e) => {
                // SOURCE may name one of the classic path keys instead of a URI.
                let named = paths.iter().find(|p| p.key.eq_ignore_ascii_case(&e.value));
                match named {
                    Some(p) => self.parse_entry(p, S3Uri::parse),
                    None => self.parse_entry(&e, S3Uri::parse),
                }
            }
            None => {
                match paths.as_slice() {
                    [only] => self.parse_entry(only, S3Uri::parse),
                    [] => {
                        self.problem("S3", "SOURCE", "is missing; expected the data's location, e.g. `s3://my-bucket/sales/`".into());
                        None
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(|p| p.key.as_str()).collect();
                        self.problem(
                        "S3",
                        "SOURCE",
                        format!("is missing and [S3] lists several paths ({}); set SOURCE to one of them or to a URI", names.join(", ")),
                    );
                        None
                    }
                }
            }
        };
        // The other classic paths are fine to keep in the file, but each must
        // still be an S3 URI: a typo there is better caught now.
        for p in &paths {
            if let Err(m) = S3Uri::parse(&p.value) {
                let known = SCHEMA
                    .iter()
                    .find(|(s, _)| *s == "S3")
                    .map(|(_, k)| *k)
                    .unwrap_or_default();
                let hint = did_you_mean(&p.key.to_ascii_uppercase(), known.iter().copied());
                self.problem(&p.section, &p.key, format!("{m}{hint}"));
            }
        }
        let region = match self.entry("S3", "REGION") {
            Some(e) => Some(self.parse_entry(&e, parse_region)?),
            None => None,
        };
        let manifest = self.optional("S3", "MANIFEST", false, parse_bool)?;
        let stage_prefix = match self.entry("S3", "STAGE_PREFIX") {
            Some(e) => {
                let uri = self.parse_entry(&e, S3Uri::parse)?;
                if !uri.key.is_empty() && !uri.key.ends_with('/') {
                    self.problem(
                        &e.section,
                        &e.key,
                        format!("`{uri}` must end with `/`: it is a folder for the staged parts"),
                    );
                    return None;
                }
                Some(uri)
            }
            None => None,
        };
        Some(S3Settings {
            source: source?,
            region,
            manifest,
            stage_prefix,
        })
    }

    fn table(&mut self) -> Option<TableSettings> {
        let name = self
            .required(
                "TABLE",
                "NAME",
                "the target table, `table` or `schema.table`",
            )
            .and_then(|e| self.parse_entry(&e, TableName::parse));
        let infer = self.optional("TABLE", "INFER_COLUMNS", false, parse_bool)?;
        if self.columns.is_empty() && !infer {
            self.problem(
                "COLUMNS",
                "",
                "is missing or empty; list the table's columns in the CSV's order, one per line, e.g. `id = INTEGER NOT NULL` \
                 (or set [TABLE] INFER_COLUMNS = true to infer them from the data)".into(),
            );
        }
        if infer && !self.columns.is_empty() {
            self.problem(
                "TABLE",
                "INFER_COLUMNS",
                "is true but [COLUMNS] lists the columns; keep one: the listed columns, or inference".into(),
            );
            return None;
        }
        let entries = std::mem::take(&mut self.columns);
        let mut columns = Vec::new();
        for e in &entries {
            let (key, value) = (e.key.clone(), e.value.clone());
            if let Some(c) = self.parse_entry(e, |_| ColumnDef::parse(&key, &value)) {
                columns.push(c);
            }
        }
        let column_named = |r: &mut Reader, e: &Entry, raw: &str| -> Option<Ident> {
            let id = r.parse_entry(e, |_| {
                Ident::new(raw.trim()).map_err(|m| format!("column name {m}"))
            })?;
            // Inferred columns are checked once they are known.
            if infer {
                return Some(id);
            }
            if entries
                .iter()
                .any(|c| c.key.eq_ignore_ascii_case(id.as_str()))
            {
                Some(id)
            } else {
                let hint = did_you_mean(id.as_str(), entries.iter().map(|c| c.key.as_str()));
                r.problem(
                    &e.section,
                    &e.key,
                    format!("`{}` is not a column in [COLUMNS]{hint}", id.as_str()),
                );
                None
            }
        };
        let dist_key = match self.entry("TABLE", "DIST_KEY") {
            Some(e) => Some(column_named(self, &e, &e.value.clone())?),
            None => None,
        };
        let dist_style = match (self.entry("TABLE", "DIST_STYLE"), dist_key) {
            (None, Some(k)) => DistStyle::Key(k),
            (None, None) => DistStyle::Auto,
            (Some(e), key) => match (e.value.to_ascii_lowercase().as_str(), key) {
                ("key", Some(k)) => DistStyle::Key(k),
                ("key", None) => {
                    self.problem(&e.section, &e.key, "is KEY but DIST_KEY is not set; name the distribution column in [TABLE] DIST_KEY".into());
                    return None;
                }
                (_, Some(_)) => {
                    self.problem(
                        &e.section,
                        &e.key,
                        "must be KEY (or left out) when DIST_KEY is set".into(),
                    );
                    return None;
                }
                ("auto", None) => DistStyle::Auto,
                ("even", None) => DistStyle::Even,
                ("all", None) => DistStyle::All,
                (other, None) => {
                    self.problem(
                        &e.section,
                        &e.key,
                        format!(
                            "`{}` is not a distribution style; expected AUTO, EVEN, KEY or ALL",
                            printable(other)
                        ),
                    );
                    return None;
                }
            },
        };
        let mut sort_key = Vec::new();
        if let Some(e) = self.entry("TABLE", "SORT_KEY") {
            for part in e.value.split(',') {
                sort_key.push(column_named(self, &e, part)?);
            }
        }
        if columns.len() != entries.len() {
            return None;
        }
        Some(TableSettings {
            name: name?,
            columns,
            dist_style,
            sort_key,
            infer_columns: infer,
        })
    }

    fn load(&mut self) -> Option<LoadSettings> {
        let format = self.optional("LOAD", "FORMAT", LoadFormat::Csv, |v| {
            match v.to_ascii_lowercase().as_str() {
                "csv" => Ok(LoadFormat::Csv),
                "json" => Ok(LoadFormat::Json),
                _ => Err(format!(
                    "`{}` is not a supported format; expected CSV or JSON (one object per line)",
                    printable(v)
                )),
            }
        });
        let delimiter = self.optional("LOAD", "DELIMITER", ',', |v| parse_char(v, "delimiter"));
        let quote = self.optional("LOAD", "QUOTE", '"', |v| parse_char(v, "quote character"));
        let ignore_header = self.optional("LOAD", "IGNORE_HEADER", 0, |v| parse_int(v, 0, 100_000));
        let null_as = self.entry("LOAD", "NULL_AS").map(|e| e.value);
        let empty_as_null = self.optional("LOAD", "EMPTY_AS_NULL", false, parse_bool);
        let blanks_as_null = self.optional("LOAD", "BLANKS_AS_NULL", false, parse_bool);
        let date_format = self.entry("LOAD", "DATE_FORMAT").map(|e| e.value);
        let time_format = self.entry("LOAD", "TIME_FORMAT").map(|e| e.value);
        let compression = self.optional("LOAD", "COMPRESSION", Compression::None, |v| {
            match v.to_ascii_lowercase().as_str() {
                "none" => Ok(Compression::None),
                "gzip" => Ok(Compression::Gzip),
                "bzip2" => Ok(Compression::Bzip2),
                "zstd" => Ok(Compression::Zstd),
                _ => Err(format!(
                    "`{}` is not a compression; expected none, gzip, bzip2 or zstd",
                    printable(v)
                )),
            }
        });
        let max_errors = self.optional("LOAD", "MAX_ERRORS", 0, |v| parse_int(v, 0, 100_000));
        let mode = self.optional("LOAD", "MODE", LoadMode::Replace, |v| {
            match v.to_ascii_lowercase().as_str() {
                "replace" => Ok(LoadMode::Replace),
                "append" => Ok(LoadMode::Append),
                "upsert" => Ok(LoadMode::Upsert),
                _ => Err(format!(
                    "`{}` is not a load mode; expected replace, append or upsert",
                    printable(v)
                )),
            }
        });
        let statement_timeout = self.optional("LOAD", "STATEMENT_TIMEOUT_SECS", 900, |v| {
            parse_int(v, 1, 86_400)
        });
        let expected_rows = match self.entry("LOAD", "EXPECTED_ROWS") {
            Some(e) => Some(self.parse_entry(&e, |v| {
                v.parse::<u64>()
                    .map_err(|_| format!("`{}` is not a whole number of rows", printable(v)))
            })?),
            None => None,
        };
        let (delimiter, quote) = (delimiter?, quote?);
        if delimiter == quote {
            self.problem(
                "LOAD",
                "QUOTE",
                format!(
                    "is the same character as DELIMITER ({})",
                    describe_char(delimiter)
                ),
            );
            return None;
        }
        let format = format?;
        if format == LoadFormat::Json {
            // These shape CSV parsing; with JSON they would be silently
            // meaningless, so say so rather than ignore them.
            for key in ["DELIMITER", "QUOTE", "IGNORE_HEADER"] {
                if let Some(e) = self.entry("LOAD", key) {
                    self.problem(
                        &e.section,
                        &e.key,
                        "applies to CSV only; remove it, or set FORMAT = CSV".into(),
                    );
                }
            }
        }
        let mode = mode?;
        let key = match self.entry("LOAD", "KEY") {
            Some(e) => {
                let mut key = Vec::new();
                for part in e.value.split(',') {
                    key.push(self.parse_entry(&e, |_| {
                        Ident::new(part.trim()).map_err(|m| format!("column name {m}"))
                    })?);
                }
                if mode != LoadMode::Upsert {
                    self.problem(
                        &e.section,
                        &e.key,
                        format!(
                            "is only used with MODE = upsert (MODE is {}); remove it or set MODE = upsert",
                            mode.as_str()
                        ),
                    );
                    return None;
                }
                key
            }
            None if mode == LoadMode::Upsert => {
                self.problem(
                    "LOAD",
                    "KEY",
                    "is missing; MODE = upsert needs the columns that identify a row, e.g. `KEY = sale_id`".into(),
                );
                return None;
            }
            None => Vec::new(),
        };
        Some(LoadSettings {
            delimiter,
            quote,
            ignore_header: ignore_header?,
            null_as,
            empty_as_null: empty_as_null?,
            blanks_as_null: blanks_as_null?,
            date_format,
            time_format,
            compression: compression?,
            max_errors: max_errors?,
            format,
            mode,
            key,
            statement_timeout: Duration::from_secs(statement_timeout?.into()),
            expected_rows,
        })
    }
}

fn parse_int(v: &str, min: u32, max: u32) -> Result<u32, String> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            format!(
                "`{}` is not a whole number from {min} to {max}",
                printable(v)
            )
        })
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{}` is not true or false", printable(v))),
    }
}

fn parse_char(v: &str, what: &str) -> Result<char, String> {
    let c = match v {
        "\\t" | "tab" | "TAB" => '\t',
        _ => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(format!(
                        "the {what} must be one character (or `\\t` for tab), not `{}`",
                        printable(v)
                    ));
                }
            }
        }
    };
    if c.is_control() && c != '\t' || !c.is_ascii() {
        return Err(format!("the {what} cannot be {}", describe_char(c)));
    }
    Ok(c)
}

fn parse_on_existing(v: &str) -> Result<OnExisting, String> {
    match v.to_ascii_lowercase().as_str() {
        "reuse" => Ok(OnExisting::Reuse),
        "replace" => Ok(OnExisting::Replace),
        "fail" => Ok(OnExisting::Fail),
        _ => Err(format!(
            "`{}` is not a choice; expected reuse, replace or fail",
            printable(v)
        )),
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, …
fn parse_region(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{}` is not an AWS region; expected e.g. `us-east-1`",
            printable(v)
        ))
    }
}

/// IAM names: letters, digits and `+=,.@_-`.
/// Workgroup and namespace names: 3 to 64 lower-case letters, digits and
/// hyphens.
fn parse_serverless_name(v: &str) -> Result<String, String> {
    if !(3..=64).contains(&v.len())
        || !v
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "`{}` is not a valid name; use 3 to 64 lower-case letters, digits and hyphens",
            printable(v)
        ));
    }
    Ok(v.to_string())
}

fn parse_iam_name(v: &str, max: usize) -> Result<String, String> {
    // A pasted ARN is the commonest mistake here; say what to keep.
    if let Some(name) = v
        .strip_prefix("arn:")
        .and_then(|rest| rest.rsplit('/').next())
    {
        return Err(format!(
            "`{}` is an ARN; give the name only, e.g. `{}`",
            printable(v),
            printable(name)
        ));
    }
    if v.is_empty() || v.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if let Some(bad) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "`{}` contains {}; IAM names use letters, digits and + = , . @ _ -",
            printable(v),
            describe_char(bad)
        ));
    }
    Ok(v.to_string())
}

/// Cluster identifiers: 1-63 lower-case letters, digits and hyphens, starting
/// with a letter, no `--`, not ending with `-`.
fn parse_cluster_identifier(v: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !v.ends_with('-')
        && !v.contains("--");
    if ok {
        // Redshift stores identifiers in lower case; so do we, to compare.
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a valid cluster identifier: 1 to 63 letters, digits or hyphens, starting \
             with a letter, without `--` or a trailing `-`",
            printable(v)
        ))
    }
}

/// `ra3.large`, `dc2.8xlarge`, …: family, dot, size.
fn parse_node_type(v: &str) -> Result<String, String> {
    let ok = v.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{}` is not a node type; expected e.g. `ra3.large` or `dc2.large`",
            printable(v)
        ))
    }
}

/// Database and user names: a letter, then letters, digits or `_`.
fn parse_db_name(v: &str, max: usize, what: &str) -> Result<String, String> {
    let ok = (1..=max).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a valid {what}: 1 to {max} letters, digits or `_`, starting with a letter",
            printable(v)
        ))
    }
}

/// Redshift's admin password rules. The message never repeats the password.
fn check_password(p: &str) -> Result<(), String> {
    if !(8..=64).contains(&p.len()) {
        return Err(format!(
            "is {} characters long; Redshift wants 8 to 64",
            p.chars().count()
        ));
    }
    if !p.chars().any(|c| c.is_ascii_uppercase())
        || !p.chars().any(|c| c.is_ascii_lowercase())
        || !p.chars().any(|c| c.is_ascii_digit())
    {
        return Err(
            "needs at least one upper-case letter, one lower-case letter and one digit".into(),
        );
    }
    // Name the rule, not the character: even one character of a password
    // does not belong in a terminal or a CI log.
    if p.chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '\'' | '"' | '\\' | '/' | '@'))
    {
        return Err(
            "contains a character Redshift does not allow; use printable ASCII except ' \" \\ / @ and space"
                .into(),
        );
    }
    Ok(())
}
