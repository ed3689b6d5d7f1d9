//! One function per section, each reading its keys from the [`Reader`]
//! and returning its settings, or `None` after filing its problems.
//!
//! Why `Option` and not `Result`: a section with three bad keys files
//! three problems and goes on, so the user sees them all in one run; the
//! problems themselves live in the reader.

use std::time::Duration;

use super::PASSWORD_ENV;
use super::keys::{SCHEMA, did_you_mean};
use super::reader::{Entry, Reader};
use super::settings::*;
use super::values::*;
use crate::sql::{ColumnDef, Ident, TableName, describe_char, printable};

impl Reader {
    pub(super) fn aws(&mut self) -> Option<AwsSettings> {
        let region = match self.entry("AWS", "REGION") {
            Some(e) => Some(self.parse_entry(&e, parse_region)?),
            None => None,
        };
        let profile = self.entry("AWS", "PROFILE").map(|e| e.value);
        let max_attempts = self.optional("AWS", "MAX_ATTEMPTS", 5, |v| parse_int(v, 1, 20));
        let retry_mode = self.optional("AWS", "RETRY_MODE", RetryMode::Standard, str::parse);
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

    /// `[SERVERLESS]`; `None` when it has problems.
    pub(super) fn serverless(&mut self) -> Option<ServerlessSettings> {
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
        Some(ServerlessSettings {
            workgroup: workgroup?,
            namespace: namespace?,
            provision: provision?,
            base_capacity: base_capacity?,
            db_name: db_name?,
            wait_timeout: Duration::from_secs(wait?.into()),
            poll_interval: Duration::from_secs(poll?.into()),
        })
    }

    pub(super) fn iam(&mut self) -> Option<IamSettings> {
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
        let on_existing = self.optional("IAM", "ON_EXISTING", OnExisting::Reuse, str::parse)?;
        Some(IamSettings {
            role_name,
            policy_name,
            on_existing,
        })
    }

    pub(super) fn cluster(&mut self, env_password: Option<String>) -> Option<ClusterSettings> {
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
        let cluster_type = self.optional(
            "CLUSTER",
            "CLUSTER_TYPE",
            ClusterType::SingleNode,
            str::parse,
        );
        let num_nodes = self.num_nodes(cluster_type);
        let db_password = self.db_password(env_password);
        let port = self.optional("CLUSTER", "PORT", 5439u16, |v| {
            parse_int(v, 1150, 65535)
                .map(|p| p as u16)
                .map_err(|m| format!("{m} (Redshift ports are 1150-65535)"))
        });
        let publicly_accessible =
            self.optional("CLUSTER", "PUBLICLY_ACCESSIBLE", false, parse_bool);
        let on_existing = self.optional("CLUSTER", "ON_EXISTING", OnExisting::Reuse, str::parse);
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

    pub(super) fn s3(&mut self) -> Option<S3Settings> {
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
            None => match paths.as_slice() {
                [only] => self.parse_entry(only, S3Uri::parse),
                [] => {
                    let message = "is missing; expected the data's location, \
                                       e.g. `s3://my-bucket/sales/`";
                    self.problem("S3", "SOURCE", message.into());
                    None
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|p| p.key.as_str()).collect();
                    let message = format!(
                        "is missing and [S3] lists several paths ({}); set SOURCE to one \
                             of them or to a URI",
                        names.join(", ")
                    );
                    self.problem("S3", "SOURCE", message);
                    None
                }
            },
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

    pub(super) fn table(&mut self) -> Option<TableSettings> {
        let name = self
            .required(
                "TABLE",
                "NAME",
                "the target table, `table` or `schema.table`",
            )
            .and_then(|e| self.parse_entry(&e, TableName::parse));
        let infer = self.optional("TABLE", "INFER_COLUMNS", false, parse_bool)?;
        if self.columns.is_empty() && !infer {
            let message = "is missing or empty; list the table's columns in the CSV's order, \
                           one per line, e.g. `id = INTEGER NOT NULL` (or set [TABLE] \
                           INFER_COLUMNS = true to infer them from the data)";
            self.problem("COLUMNS", "", message.into());
        }
        if infer && !self.columns.is_empty() {
            let message = "is true but [COLUMNS] lists the columns; keep one: the listed \
                           columns, or inference";
            self.problem("TABLE", "INFER_COLUMNS", message.into());
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
        let listed = if infer { None } else { Some(&entries[..]) };
        let dist_key = match self.entry("TABLE", "DIST_KEY") {
            Some(e) => Some(self.column_named(&e, &e.value, listed)?),
            None => None,
        };
        let dist_style = self.dist_style(dist_key)?;
        let mut sort_key = Vec::new();
        if let Some(e) = self.entry("TABLE", "SORT_KEY") {
            for part in e.value.split(',') {
                sort_key.push(self.column_named(&e, part, listed)?);
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

    /// The column `raw` names in entry `e` (DIST_KEY, SORT_KEY), checked
    /// against the `listed` columns; inferred columns (`listed` is `None`)
    /// are checked once they are known.
    fn column_named(&mut self, e: &Entry, raw: &str, listed: Option<&[Entry]>) -> Option<Ident> {
        let id = self.parse_entry(e, |_| {
            Ident::new(raw.trim()).map_err(|m| format!("column name {m}"))
        })?;
        let Some(listed) = listed else {
            return Some(id);
        };
        if listed
            .iter()
            .any(|c| c.key.eq_ignore_ascii_case(id.as_str()))
        {
            return Some(id);
        }
        let hint = did_you_mean(id.as_str(), listed.iter().map(|c| c.key.as_str()));
        let message = format!("`{}` is not a column in [COLUMNS]{hint}", id.as_str());
        self.problem(&e.section, &e.key, message);
        None
    }

    /// `DIST_STYLE` with `DIST_KEY`: KEY needs the key, and the key needs KEY
    /// (or no style at all).
    fn dist_style(&mut self, dist_key: Option<Ident>) -> Option<DistStyle> {
        let Some(e) = self.entry("TABLE", "DIST_STYLE") else {
            return Some(dist_key.map_or(DistStyle::Auto, DistStyle::Key));
        };
        let message = match (e.value.to_ascii_lowercase().as_str(), dist_key) {
            ("key", Some(k)) => return Some(DistStyle::Key(k)),
            ("key", None) => "is KEY but DIST_KEY is not set; name the distribution column in \
                              [TABLE] DIST_KEY"
                .to_string(),
            (_, Some(_)) => "must be KEY (or left out) when DIST_KEY is set".to_string(),
            ("auto", None) => return Some(DistStyle::Auto),
            ("even", None) => return Some(DistStyle::Even),
            ("all", None) => return Some(DistStyle::All),
            (other, None) => format!(
                "`{}` is not a distribution style; expected AUTO, EVEN, KEY or ALL",
                printable(other)
            ),
        };
        self.problem(&e.section, &e.key, message);
        None
    }

    pub(super) fn load(&mut self) -> Option<LoadSettings> {
        let format = self.optional("LOAD", "FORMAT", LoadFormat::Csv, str::parse);
        let delimiter = self.optional("LOAD", "DELIMITER", ',', |v| parse_char(v, "delimiter"));
        let quote = self.optional("LOAD", "QUOTE", '"', |v| parse_char(v, "quote character"));
        let ignore_header = self.optional("LOAD", "IGNORE_HEADER", 0, |v| parse_int(v, 0, 100_000));
        let null_as = self.entry("LOAD", "NULL_AS").map(|e| e.value);
        let empty_as_null = self.optional("LOAD", "EMPTY_AS_NULL", false, parse_bool);
        let blanks_as_null = self.optional("LOAD", "BLANKS_AS_NULL", false, parse_bool);
        let date_format = self.entry("LOAD", "DATE_FORMAT").map(|e| e.value);
        let time_format = self.entry("LOAD", "TIME_FORMAT").map(|e| e.value);
        let compression = self.optional("LOAD", "COMPRESSION", Compression::None, str::parse);
        let max_errors = self.optional("LOAD", "MAX_ERRORS", 0, |v| parse_int(v, 0, 100_000));
        let mode = self.optional("LOAD", "MODE", LoadMode::Replace, str::parse);
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
        let key = self.upsert_key(mode)?;
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

    /// `[LOAD] KEY`, the columns that identify a row: required with
    /// `MODE = upsert`, refused with any other mode (where it would be
    /// silently meaningless).
    fn upsert_key(&mut self, mode: LoadMode) -> Option<Vec<Ident>> {
        let Some(e) = self.entry("LOAD", "KEY") else {
            if mode == LoadMode::Upsert {
                let message = "is missing; MODE = upsert needs the columns that identify a row, \
                               e.g. `KEY = sale_id`";
                self.problem("LOAD", "KEY", message.into());
                return None;
            }
            return Some(Vec::new());
        };
        let mut key = Vec::new();
        for part in e.value.split(',') {
            key.push(self.parse_entry(&e, |_| {
                Ident::new(part.trim()).map_err(|m| format!("column name {m}"))
            })?);
        }
        if mode != LoadMode::Upsert {
            let message = format!(
                "is only used with MODE = upsert (MODE is {}); remove it or set MODE = upsert",
                mode.as_str()
            );
            self.problem(&e.section, &e.key, message);
            return None;
        }
        Some(key)
    }

    /// `NUM_NODES`, checked against `CLUSTER_TYPE`: 1 for a single node
    /// (the default), 2 to 128 for a multi-node cluster, which must say.
    fn num_nodes(&mut self, cluster_type: Option<ClusterType>) -> Option<u32> {
        match (self.entry("CLUSTER", "NUM_NODES"), cluster_type) {
            (None, Some(ClusterType::MultiNode)) => {
                let message = "is missing; a multi-node cluster needs 2 or more nodes";
                self.problem("CLUSTER", "NUM_NODES", message.into());
                None
            }
            (None, _) => Some(1),
            (Some(e), Some(ClusterType::MultiNode)) => self.parse_entry(&e, |v| {
                parse_int(v, 2, 128)
                    .map_err(|m| format!("{m} (a multi-node cluster has at least 2 nodes)"))
            }),
            (Some(e), Some(ClusterType::SingleNode)) => self.parse_entry(&e, |v| {
                parse_int(v, 1, 1).map_err(|_| {
                    format!(
                        "is `{}` but CLUSTER_TYPE is single-node; set CLUSTER_TYPE = multi-node \
                         or NUM_NODES = 1",
                        printable(v)
                    )
                })
            }),
            (Some(_), None) => None,
        }
    }

    /// The admin password: the environment wins, so a file can be shared
    /// safely. `Some(None)` when there is none (only creating a cluster
    /// needs one); `None` after filing a problem.
    fn db_password(&mut self, env_password: Option<String>) -> Option<Option<Secret>> {
        match (env_password, self.entry("CLUSTER", "DB_PASSWORD")) {
            (Some(p), _) => match check_password(&p) {
                Ok(()) => Some(Some(Secret::new(p))),
                Err(m) => {
                    let message = format!("the password in ${PASSWORD_ENV} {m}");
                    self.problem("CLUSTER", "DB_PASSWORD", message);
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
        }
    }
}
