//! Step 0: the `.cfg` file, parsed and validated before anything touches AWS.
//!
//! The file is INI with one section per concern:
//!
//! | section     | what it holds |
//! |-------------|---------------|
//! | `[AWS]`     | region, profile, retry attempts |
//! | `[IAM]`     | the role Redshift assumes and its S3 read policy |
//! | `[CLUSTER]` | the provisioned cluster and its database, or… |
//! | `[SERVERLESS]` | …a Redshift Serverless workgroup instead |
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
//!
//! # Layout
//!
//! - `mod.rs` (here): [`Config`], the [`TargetSettings`] it names, and the ways to
//!   get one (from a file, from text, with values set on top).
//! - `settings.rs`: one plain struct per section, and the word enums
//!   (`MODE = upsert`) that parse with `FromStr`.
//! - `document.rs`: [`Document`], the file as parsed INI, where values are
//!   set or sections removed before it is read (command-line overrides,
//!   tests, the book's variations): the one place INI is edited.
//! - `keys.rs`: which keys each section takes, and the classic aliases.
//! - `reader.rs`: turns the document into a `Config`, collecting every
//!   problem with its section and key; `sections.rs`: one function per
//!   section; `values.rs`: the checks on single values (names, regions,
//!   passwords).

mod document;
mod keys;
mod reader;
mod sections;
mod settings;
mod values;

use std::path::{Path, PathBuf};

pub use document::Document;
pub use settings::*;

use crate::error::{ConfigError, Problem};
use crate::sql::{ColumnDef, Ident};
use keys::did_you_mean;

/// The environment variable that supplies the database password, so that it
/// need not be written in the file. It wins over `[CLUSTER] DB_PASSWORD`.
pub const PASSWORD_ENV: &str = "S3_TO_REDSHIFT_DB_PASSWORD";

/// What the SQL runs on: a provisioned cluster or a Serverless workgroup.
///
/// Why an enum and not two optional sections: a config has exactly one of
/// them, and every step that touches the warehouse must decide which it
/// has. A `match` makes the compiler check that each step did.
#[derive(Clone, Debug)]
pub enum TargetSettings {
    /// `[CLUSTER]`: a provisioned cluster, created and deleted by the tool.
    Cluster(ClusterSettings),
    /// `[SERVERLESS]`: a Redshift Serverless workgroup.
    Serverless(ServerlessSettings),
}

impl TargetSettings {
    /// The cluster identifier or the workgroup's name.
    pub fn name(&self) -> &str {
        match self {
            TargetSettings::Cluster(c) => &c.identifier,
            TargetSettings::Serverless(sl) => &sl.workgroup,
        }
    }

    /// What it is, for messages: `cluster` or `Serverless workgroup`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetSettings::Cluster(_) => "cluster",
            TargetSettings::Serverless(_) => "Serverless workgroup",
        }
    }

    /// The database the table lives in.
    pub fn database(&self) -> &str {
        match self {
            TargetSettings::Cluster(c) => &c.db_name,
            TargetSettings::Serverless(sl) => &sl.db_name,
        }
    }
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
    /// `[CLUSTER]` or `[SERVERLESS]`: what the SQL runs on.
    pub target: TargetSettings,
    /// `[S3]`.
    pub s3: S3Settings,
    /// `[TABLE]` and `[COLUMNS]`.
    pub table: TableSettings,
    /// `[LOAD]`.
    pub load: LoadSettings,
    /// Things worth telling the user that are not errors (ignored classic keys,
    /// credentials in the file).
    pub notes: Vec<String>,
}

impl Config {
    /// Reads and validates `path`. The password may come from the
    /// [`PASSWORD_ENV`] environment variable instead of the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, &[])
    }

    /// The provisioned cluster's settings; for a `[SERVERLESS]` config, an
    /// error that says this needs a cluster. The tutorial's chapters call
    /// it: their steps create a cluster.
    ///
    /// ```
    /// use s3_to_redshift::config::{Config, Document};
    ///
    /// let cfg = Config::load("examples/pipeline.cfg")?;
    /// assert_eq!(cfg.cluster()?.node_type, "ra3.large");
    ///
    /// let text = std::fs::read_to_string("examples/pipeline.cfg")?;
    /// let mut doc = Document::parse(&text, "pipeline.cfg")?;
    /// doc.remove_section("CLUSTER").set("SERVERLESS", "WORKGROUP", "analytics");
    /// let err = doc.config(None)?.cluster().unwrap_err();
    /// assert!(err.to_string().contains("the Serverless workgroup `analytics`"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cluster(&self) -> Result<&ClusterSettings, ConfigError> {
        match &self.target {
            TargetSettings::Cluster(c) => Ok(c),
            TargetSettings::Serverless(sl) => Err(ConfigError::Invalid {
                path: self.path.clone(),
                problems: vec![Problem {
                    section: "CLUSTER".into(),
                    key: String::new(),
                    message: format!(
                        "is needed here, and the file targets the Serverless workgroup `{}` \
                         ([SERVERLESS]); use a config with a [CLUSTER] section",
                        sl.workgroup
                    ),
                }],
            }),
        }
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
        let mut doc = Document::parse(&text, path)?;
        for (section, key, value) in overrides {
            doc.set(section, key, value);
        }
        let env_password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        doc.config(env_password)
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
        Document::parse(text, path)?.config(env_password)
    }
}
