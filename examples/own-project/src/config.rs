//! The `.cfg` file, read with `rust-ini` as Python's `configparser` reads
//! it: sections, then `KEY = value` lines.

use crate::error::Error;

/// What the steps need from the `.cfg` file (the book's
/// `examples/pipeline.cfg` has all of it; the password comes from the
/// environment, never from the file).
#[derive(Clone)]
pub struct Settings {
    /// `[AWS] REGION`.
    pub region: String,
    /// `[IAM] ROLE_NAME`.
    pub role_name: String,
    /// `[IAM] POLICY_NAME`.
    pub policy_name: String,
    /// `[CLUSTER] IDENTIFIER`.
    pub cluster_id: String,
    /// `[CLUSTER] CLUSTER_TYPE`: `single-node` or `multi-node`.
    pub cluster_type: String,
    /// `[CLUSTER] NODE_TYPE`.
    pub node_type: String,
    /// `[CLUSTER] NUM_NODES`.
    pub num_nodes: i32,
    /// `[CLUSTER] DB_NAME`.
    pub db_name: String,
    /// `[CLUSTER] DB_USER`.
    pub db_user: String,
    /// `S3_TO_REDSHIFT_DB_PASSWORD`, from the environment.
    pub password: String,
    /// The bucket of `[S3] SOURCE`.
    pub bucket: String,
    /// The key (or prefix) of `[S3] SOURCE`.
    pub key: String,
    /// `[TABLE] NAME`, `table` or `schema.table`.
    pub table: String,
    /// `[COLUMNS]`: name and type, in the file's order.
    pub columns: Vec<(String, String)>,
    /// `[LOAD] IGNORE_HEADER`: header lines to skip.
    pub ignore_header: u32,
}

/// Not the password: a `Settings` printed with `{:?}` must not leak it.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("cluster_id", &self.cluster_id)
            .field("table", &self.table)
            .field("password", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads `path`, and the password from `S3_TO_REDSHIFT_DB_PASSWORD`.
    pub fn read(path: &str) -> Result<Self, Error> {
        let password = std::env::var("S3_TO_REDSHIFT_DB_PASSWORD").map_err(|_| {
            Error::Config("set the cluster's admin password in S3_TO_REDSHIFT_DB_PASSWORD".into())
        })?;
        Self::read_with_password(path, password)
    }

    /// Reads `path`; the password is given.
    ///
    /// ```
    /// use own_project::config::Settings;
    ///
    /// let s = Settings::read_with_password("../../examples/pipeline.cfg", "Local-Passw0rd".into())?;
    /// assert_eq!(s.cluster_id, "s3-to-redshift-demo");
    /// assert_eq!(s.columns[0], ("sale_id".to_string(), "INTEGER NOT NULL".to_string()));
    /// assert!(!format!("{s:?}").contains("Local-Passw0rd"));
    /// # Ok::<(), own_project::Error>(())
    /// ```
    pub fn read_with_password(path: &str, password: String) -> Result<Self, Error> {
        let ini =
            ini::Ini::load_from_file(path).map_err(|e| Error::Config(format!("{path}: {e}")))?;
        let get = |section: &str, key: &str| -> Result<String, Error> {
            let missing = || Error::Config(format!("{path}: [{section}] {key} is missing"));
            let value = ini.get_from(Some(section), key).ok_or_else(missing)?;
            Ok(value.trim().to_string())
        };
        let number = |section: &str, key: &str| -> Result<u32, Error> {
            let v = get(section, key)?;
            v.parse().map_err(|_| {
                Error::Config(format!(
                    "{path}: [{section}] {key} = {v} is not a whole number"
                ))
            })
        };
        let source = get("S3", "SOURCE")?;
        let (bucket, key) = source
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{path}: [S3] SOURCE must look like s3://bucket/key"
                ))
            })?;
        let columns = ini
            .section(Some("COLUMNS"))
            .ok_or_else(|| Error::Config(format!("{path}: the [COLUMNS] section is missing")))?
            .iter()
            .map(|(name, ty)| (name.to_string(), ty.trim().to_string()))
            .collect();
        Ok(Self {
            region: get("AWS", "REGION")?,
            role_name: get("IAM", "ROLE_NAME")?,
            policy_name: get("IAM", "POLICY_NAME")?,
            cluster_id: get("CLUSTER", "IDENTIFIER")?,
            cluster_type: get("CLUSTER", "CLUSTER_TYPE")?,
            node_type: get("CLUSTER", "NODE_TYPE")?,
            num_nodes: number("CLUSTER", "NUM_NODES")? as i32,
            db_name: get("CLUSTER", "DB_NAME")?,
            db_user: get("CLUSTER", "DB_USER")?,
            password,
            bucket: bucket.to_string(),
            key: key.to_string(),
            table: get("TABLE", "NAME")?,
            columns,
            ignore_header: number("LOAD", "IGNORE_HEADER")?,
        })
    }
}
