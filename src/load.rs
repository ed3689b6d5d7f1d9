//! Steps 4 and 5: the table, the `COPY` from S3, and the checks after it.
//!
//! All SQL here is built from the validated config: identifiers are
//! [`Ident`](crate::sql::Ident)s, strings go through
//! [`quote_literal`](crate::sql::quote_literal). The statements are pure
//! functions of the config so that `plan` can show them and tests can check
//! them without a database.
//!
//! How a load stays safe, whatever the mode:
//! 1. `COPY` goes into a **staging table** (`CREATE TABLE … (LIKE target)`,
//!    so it has the target's columns, encodings and keys), never into the
//!    target. A COPY that fails, or is cancelled, or a process killed half-way,
//!    leaves the target exactly as it was.
//! 2. The staged rows are checked *before* the target is touched: some rows
//!    loaded, `EXPECTED_ROWS` (in replace mode), and for upsert no NULL or
//!    duplicate keys (a duplicate would make the result depend on row order).
//! 3. One `BatchExecuteStatement`, which Redshift runs as a single
//!    transaction, then moves the rows in (replace: `DELETE` + `INSERT`;
//!    append: `INSERT`; upsert: `DELETE … USING` the staged keys + `INSERT`),
//!    records the load in a small ledger table and drops the staging table.
//!    Readers see the old rows or the new ones, never a mix.
//!
//! Why `DELETE` + `INSERT` and not swapping the tables by renaming them?
//! A renamed-in table loses the grants, comments and views that pointed at
//! the old one; `DELETE` keeps them. (`TRUNCATE` would be faster, but it
//! commits at once in Redshift and would break the single transaction.)
//!
//! The ledger (`<schema>.s3_to_redshift_loads`) is what makes `append` safe to
//! re-run: it remembers which objects (keys and ETags) were appended, so a
//! second run over the same objects, say after an interruption, adds nothing.

use std::fmt;

use crate::config::{Compression, Config, DistStyle, LoadFormat, LoadMode, S3Uri, TableSettings};
use crate::error::{Error, Result};
use crate::report::Action;
use crate::sql::{Ident, MAX_IDENT_LEN, TableName, copy_char_literal, quote_literal};
use crate::warehouse::{Target, Warehouse};

/// The staging table for `table`: `s2r_staging__<table>` in the same schema
/// (same schema so that it can take the same privileges), cut to Redshift's
/// 127-byte limit.
///
/// ```
/// use s3_to_redshift::sql::TableName;
/// let t = TableName::parse("sales.orders").unwrap();
/// assert_eq!(s3_to_redshift::load::staging_table(&t).to_string(),
///            "\"sales\".\"s2r_staging__orders\"");
/// ```
pub fn staging_table(table: &TableName) -> TableName {
    let mut name = format!("s2r_staging__{}", table.table.as_str());
    // Identifiers are ASCII, so cutting at a byte is cutting at a character.
    name.truncate(MAX_IDENT_LEN);
    TableName {
        schema: table.schema.clone(),
        table: Ident::new(&name).expect("a prefix and a valid name make a valid name"),
    }
}

/// The ledger of loads in `schema`: one row per load that reached the table.
pub fn ledger_table(schema: &Ident) -> TableName {
    TableName {
        schema: schema.clone(),
        table: Ident::new("s3_to_redshift_loads").expect("a valid name"),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the ledger.
pub fn create_ledger_sql(schema: &Ident) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  table_name VARCHAR(300) NOT NULL,\n  source VARCHAR(1100) NOT NULL,\n  \
         fingerprint VARCHAR(64) NOT NULL,\n  mode VARCHAR(16) NOT NULL,\n  rows_loaded BIGINT NOT NULL,\n  \
         loaded_at TIMESTAMP NOT NULL\n)",
        ledger_table(schema)
    )
}

/// `CREATE SCHEMA IF NOT EXISTS` for a schema other than `public`.
pub fn create_schema_sql(table: &TableSettings) -> Option<String> {
    (table.name.schema.as_str() != "public")
        .then(|| format!("CREATE SCHEMA IF NOT EXISTS {}", table.name.schema))
}

/// The table's DDL, with its distribution and sort keys.
///
/// ```
/// use s3_to_redshift::config::{DistStyle, TableSettings};
/// use s3_to_redshift::sql::{ColumnDef, Ident, TableName};
/// let table = TableSettings {
///     name: TableName::parse("sales").unwrap(),
///     columns: vec![
///         ColumnDef::parse("id", "INTEGER NOT NULL").unwrap(),
///         ColumnDef::parse("sold_on", "DATE").unwrap(),
///     ],
///     dist_style: DistStyle::Key(Ident::new("id").unwrap()),
///     sort_key: vec![Ident::new("sold_on").unwrap()],
///     infer_columns: false,
/// };
/// assert_eq!(
///     s3_to_redshift::load::create_table_sql(&table),
///     "CREATE TABLE IF NOT EXISTS \"public\".\"sales\" (\n  \"id\" INTEGER NOT NULL,\n  \"sold_on\" DATE\n)\nDISTSTYLE KEY DISTKEY (\"id\")\nCOMPOUND SORTKEY (\"sold_on\")"
/// );
/// ```
pub fn create_table_sql(table: &TableSettings) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| format!("  {c}")).collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        table.name,
        cols.join(",\n")
    );
    match &table.dist_style {
        DistStyle::Auto => sql.push_str("\nDISTSTYLE AUTO"),
        DistStyle::Even => sql.push_str("\nDISTSTYLE EVEN"),
        DistStyle::All => sql.push_str("\nDISTSTYLE ALL"),
        DistStyle::Key(k) => sql.push_str(&format!("\nDISTSTYLE KEY DISTKEY ({k})")),
    }
    if !table.sort_key.is_empty() {
        let keys: Vec<String> = table.sort_key.iter().map(ToString::to_string).collect();
        sql.push_str(&format!("\nCOMPOUND SORTKEY ({})", keys.join(", ")));
    }
    sql
}

/// The `COPY` statement for `cfg`, reading `source` as `role_arn`.
///
/// The column list is always given, so a table with more columns (or in
/// another order) than the file fails loudly instead of loading shifted data.
/// `REGION` is always given too: without it, COPY assumes the bucket is in
/// the cluster's region and fails with a redirect error when it is not.
///
/// ```
/// # use s3_to_redshift::config::Config;
/// # let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
/// # let cfg = Config::parse(&text, "examples/pipeline.cfg", None).unwrap();
/// let sql = s3_to_redshift::load::copy_sql(&cfg, &cfg.table.name, "us-east-1",
///     "arn:aws:iam::123456789012:role/demo").unwrap();
/// assert!(sql.starts_with("COPY \"public\".\"sales\" (\"sale_id\""));
/// assert!(sql.contains("IAM_ROLE 'arn:aws:iam::123456789012:role/demo'"));
/// assert!(sql.contains("REGION 'us-east-1'"));
/// ```
pub fn copy_sql(
    cfg: &Config,
    into: &TableName,
    region: &str,
    role_arn: &str,
) -> Result<String, String> {
    let load = &cfg.load;
    let region = cfg.s3.region.as_deref().unwrap_or(region);
    let mut sql = format!(
        "COPY {into} ({})\nFROM {}\nIAM_ROLE {}\nREGION {}\n",
        column_list(cfg),
        quote_literal(&cfg.s3.source.to_string())?,
        quote_literal(role_arn)?,
        quote_literal(region)?,
    );
    if cfg.s3.manifest {
        sql.push_str("MANIFEST ");
    }
    match load.format {
        LoadFormat::Csv => {
            sql.push_str(&format!(
                "CSV DELIMITER {} QUOTE AS {}",
                copy_char_literal(load.delimiter)?,
                copy_char_literal(load.quote)?,
            ));
            if load.ignore_header > 0 {
                sql.push_str(&format!(" IGNOREHEADER {}", load.ignore_header));
            }
        }
        // 'auto' matches the objects' keys to the column names, so the
        // order of fields in the file does not matter.
        LoadFormat::Json => sql.push_str("FORMAT AS JSON 'auto'"),
    }
    if let Some(null_as) = &load.null_as {
        sql.push_str(&format!(" NULL AS {}", quote_literal(null_as)?));
    }
    if load.empty_as_null {
        sql.push_str(" EMPTYASNULL");
    }
    if load.blanks_as_null {
        sql.push_str(" BLANKSASNULL");
    }
    if let Some(f) = &load.date_format {
        sql.push_str(&format!(" DATEFORMAT {}", quote_literal(f)?));
    }
    if let Some(f) = &load.time_format {
        sql.push_str(&format!(" TIMEFORMAT {}", quote_literal(f)?));
    }
    match load.compression {
        Compression::None => {}
        Compression::Gzip => sql.push_str(" GZIP"),
        Compression::Bzip2 => sql.push_str(" BZIP2"),
        Compression::Zstd => sql.push_str(" ZSTD"),
    }
    if load.max_errors > 0 {
        sql.push_str(&format!(" MAXERROR {}", load.max_errors));
    }
    Ok(sql)
}

/// The table's columns, quoted and comma-separated, in the file's order: the
/// list COPY and the swap's INSERT … SELECT both name.
fn column_list(cfg: &Config) -> String {
    let cols: Vec<String> = cfg
        .table
        .columns
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    cols.join(", ")
}

/// `SELECT COUNT(*)` of the table.
pub fn count_sql(table: &TableName) -> String {
    format!("SELECT COUNT(*) FROM {table}")
}

/// Phase 1, one transaction: a fresh staging table shaped like the target,
/// and the `COPY` into it. A staging table left by an interrupted run is
/// dropped first, so a re-run starts clean.
pub fn stage_sql(cfg: &Config, region: &str, role_arn: &str) -> Result<Vec<String>, String> {
    let stage = staging_table(&cfg.table.name);
    Ok(vec![
        format!("DROP TABLE IF EXISTS {stage}"),
        format!("CREATE TABLE {stage} (LIKE {})", cfg.table.name),
        copy_sql(cfg, &stage, region, role_arn)?,
    ])
}

/// What identifies a load in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The configured source (`s3://…`).
    pub source: String,
    /// [`SourceSummary::fingerprint`] of the objects loaded.
    pub fingerprint: String,
}

/// Phase 2, one transaction: move the staged rows into the target as the
/// mode says, record the load in the ledger, drop the staging table.
///
/// The column lists are explicit on both sides, so the statement does not
/// depend on the two tables' column order.
pub fn swap_sql(cfg: &Config, entry: &LedgerEntry) -> Result<Vec<String>, String> {
    let table = &cfg.table.name;
    let stage = staging_table(table);
    let cols = column_list(cfg);
    let mut out = Vec::new();
    match cfg.load.mode {
        LoadMode::Replace => out.push(format!("DELETE FROM {table}")),
        LoadMode::Append => {}
        LoadMode::Upsert => {
            let on: Vec<String> = cfg
                .load
                .key
                .iter()
                .map(|k| format!("{table}.{k} = {stage}.{k}"))
                .collect();
            out.push(format!(
                "DELETE FROM {table} USING {stage} WHERE {}",
                on.join(" AND ")
            ));
        }
    }
    out.push(format!(
        "INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}"
    ));
    out.push(format!(
        "INSERT INTO {} (table_name, source, fingerprint, mode, rows_loaded, loaded_at) \
         SELECT {}, {}, {}, {}, COUNT(*), GETDATE() FROM {stage}",
        ledger_table(&table.schema),
        quote_literal(&table.to_string())?,
        quote_literal(&entry.source)?,
        quote_literal(&entry.fingerprint)?,
        quote_literal(cfg.load.mode.as_str())?,
    ));
    out.push(format!("DROP TABLE {stage}"));
    Ok(out)
}

/// The statements `load` runs, in order, for `plan` to show. `fingerprint`
/// is the source's, when it could be listed.
pub fn statements(
    cfg: &Config,
    region: &str,
    role_arn: &str,
    fingerprint: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = create_schema_sql(&cfg.table).into_iter().collect();
    out.push(create_table_sql(&cfg.table));
    out.push(create_ledger_sql(&cfg.table.name.schema));
    out.extend(stage_sql(cfg, region, role_arn)?);
    out.extend(swap_sql(
        cfg,
        &LedgerEntry {
            source: cfg.s3.source.to_string(),
            fingerprint: fingerprint.unwrap_or("(fingerprint of the objects)").into(),
        },
    )?);
    out.push(count_sql(&cfg.table.name));
    Ok(out)
}

// The rejected-rows report lives in `error` (it is part of a failed
// statement's error); it is named here too, where the load produces it.
pub use crate::error::{LOAD_ERRORS_SHOWN, LoadError, LoadErrors};

/// The load errors of the COPY with Redshift query id `query_id`.
///
/// A provisioned cluster keeps the raw value in `STL_LOAD_ERRORS`; Serverless
/// has only `SYS_LOAD_ERROR_DETAIL`, which lacks it. A load with a million
/// bad rows must not fetch a million rows: the details are capped at
/// [`LOAD_ERRORS_SHOWN`] and the rest summarised by one `GROUP BY`.
pub async fn load_errors(wh: &Warehouse, query_id: i64) -> Result<LoadErrors> {
    let (rows_sql, summary_sql) = match wh.target() {
        Target::Cluster { .. } => (
            "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason) \
             FROM stl_load_errors WHERE query = :query_id ORDER BY line_number LIMIT 10",
            "SELECT TRIM(colname), TRIM(err_reason), COUNT(*) FROM stl_load_errors \
             WHERE query = :query_id GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        ),
        Target::Workgroup { .. } => (
            "SELECT TRIM(file_name), line_number, TRIM(column_name), '', TRIM(error_message) \
             FROM sys_load_error_detail WHERE query_id = :query_id ORDER BY line_number LIMIT 10",
            "SELECT TRIM(column_name), TRIM(error_message), COUNT(*) FROM sys_load_error_detail \
             WHERE query_id = :query_id GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        ),
    };
    let id = query_id.to_string();
    let rs = wh.query_with(rows_sql, &[("query_id", &id)]).await?;
    let first: Vec<LoadError> = rs
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).map(ToString::to_string).unwrap_or_default();
            LoadError {
                file: text(0),
                line: r.get(1).and_then(|v| v.as_i64()).unwrap_or_default(),
                column: text(2),
                value: text(3),
                reason: text(4),
            }
        })
        .collect();
    if first.len() < LOAD_ERRORS_SHOWN {
        // All of them are in hand: no need for the summary query.
        return Ok(LoadErrors {
            total: first.len() as i64,
            first,
            by_reason: Vec::new(),
        });
    }
    let groups = wh.query_with(summary_sql, &[("query_id", &id)]).await?;
    let mut by_reason: Vec<(String, String, i64)> = groups
        .rows
        .iter()
        .map(|r| {
            let text = |i: usize| r.get(i).map(ToString::to_string).unwrap_or_default();
            (
                text(0),
                text(1),
                r.get(2).and_then(|v| v.as_i64()).unwrap_or_default(),
            )
        })
        .collect();
    let total = by_reason.iter().map(|g| g.2).sum();
    by_reason.truncate(LOAD_ERRORS_SHOWN);
    Ok(LoadErrors {
        first,
        total,
        by_reason,
    })
}

/// What is at the source location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSummary {
    /// Objects COPY will read: those whose key starts with the configured
    /// key, or those a manifest lists.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// A digest of every object's key, size and ETag. Two listings with the
    /// same fingerprint name the same data, which is how `append` knows it
    /// has loaded these objects before. (FNV-1a: this detects change, it is
    /// not a security check.)
    pub fingerprint: String,
}

/// FNV-1a, 64 bits: tiny, stable across Rust versions and platforms (unlike
/// `std`'s `DefaultHasher`, whose output may change between releases).
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

/// Builds a [`SourceSummary`] from `(key, size, etag)` of each object.
pub fn summarise(mut objects: Vec<(String, u64, String)>) -> SourceSummary {
    objects.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for (key, size, etag) in &objects {
        fnv1a(&mut hash, key.as_bytes());
        fnv1a(&mut hash, &[0]);
        fnv1a(&mut hash, size.to_string().as_bytes());
        fnv1a(&mut hash, &[0]);
        fnv1a(&mut hash, etag.as_bytes());
        fnv1a(&mut hash, b"\n");
    }
    SourceSummary {
        objects: objects.len() as u64,
        bytes: objects.iter().map(|o| o.1).sum(),
        fingerprint: format!("{hash:016x}"),
    }
}

/// Lists the objects COPY will read (every page), so that a wrong path is a
/// clear error before any SQL runs rather than a COPY failure later.
///
/// With `manifest`, `uri` is a manifest: it is read, and each object it
/// lists is looked up (a `mandatory` one that is missing is an error, as
/// COPY would make it).
pub async fn inspect_source(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    manifest: bool,
) -> Result<SourceSummary> {
    let objects = if manifest {
        manifest_objects(s3, uri).await?
    } else {
        list_objects(s3, uri).await?
    };
    let summary = summarise(objects);
    if summary.objects == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: if manifest {
                "the manifest lists no object that exists; check its `entries`".into()
            } else {
                "no object has this key or starts with it; upload the data first, or fix [S3] SOURCE".into()
            },
        });
    }
    if summary.bytes == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: format!(
                "the {} object(s) here are all empty; there is nothing to load",
                summary.objects
            ),
        });
    }
    Ok(summary)
}

async fn list_objects(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Vec<(String, u64, String)>> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(&uri.bucket)
        .prefix(&uri.key)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => {
                return Err(Error::Source {
                    uri: uri.to_string(),
                    reason: format!("bucket `{}` does not exist; check [S3] SOURCE", uri.bucket),
                });
            }
            Err(e) => return Err(Error::aws("S3", "ListObjectsV2", uri.to_string(), e)),
        };
        for o in page.contents() {
            out.push((
                o.key().unwrap_or_default().to_string(),
                o.size().unwrap_or_default().max(0) as u64,
                o.e_tag().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(out)
}

async fn manifest_objects(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
) -> Result<Vec<(String, u64, String)>> {
    let source_err = |reason: String| Error::Source {
        uri: uri.to_string(),
        reason,
    };
    let folder = match uri.key.rfind('/') {
        Some(i) => uri.key[..=i].to_string(),
        None => String::new(),
    };
    let got = s3
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) if se.is_no_such_key() => source_err(
                "the manifest does not exist; write it first, or set [S3] MANIFEST = false".into(),
            ),
            _ => Error::aws("S3", "GetObject", uri.to_string(), e),
        })?;
    let body = got
        .body
        .collect()
        .await
        .map_err(|e| source_err(format!("reading the manifest failed: {e}")))?
        .into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        source_err(format!(
            "is not a manifest: {e}; expected {{\"entries\": [{{\"url\": \"s3://…\", \"mandatory\": true}}]}}"
        ))
    })?;
    let entries = doc
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| source_err("is not a manifest: it has no `entries` list".into()))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let url = entry
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| source_err(format!("manifest entry {i} has no `url`")))?;
        let mandatory = entry
            .get("mandatory")
            .and_then(|m| m.as_bool())
            .unwrap_or(false);
        let part = S3Uri::parse(url)
            .map_err(|m| source_err(format!("manifest entry {i}: `{url}` {m}")))?;
        // The role's read policy covers the manifest's folder (see
        // `S3Settings::readable`); an entry elsewhere would fail in COPY with
        // a bare Access Denied.
        if part.bucket != uri.bucket || !part.key.starts_with(&folder) {
            return Err(source_err(format!(
                "manifest entry {i}, `{url}`, is outside the manifest's folder s3://{}/{folder}, which is \
                 what the role may read; put the parts beside the manifest",
                uri.bucket
            )));
        }
        match s3
            .head_object()
            .bucket(&part.bucket)
            .key(&part.key)
            .send()
            .await
        {
            Ok(h) => out.push((
                url.to_string(),
                h.content_length().unwrap_or_default().max(0) as u64,
                h.e_tag().unwrap_or_default().to_string(),
            )),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => {
                if mandatory {
                    return Err(source_err(format!(
                        "manifest entry {i}, `{url}`, is mandatory and does not exist"
                    )));
                }
                tracing::warn!("manifest entry {i}, {url}, does not exist; COPY will skip it");
            }
            Err(e) => return Err(Error::aws("S3", "HeadObject", url, e)),
        }
    }
    Ok(out)
}

/// What `load` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Whether the table was created or already there.
    pub table: Action,
    /// What was at the source.
    pub source: SourceSummary,
    /// The mode the load ran in.
    pub mode: LoadMode,
    /// Rows the COPY loaded (its `ResultRows`).
    pub loaded: i64,
    /// Rows in the table before the load.
    pub rows_before: i64,
    /// Upsert: rows that replaced an existing row with the same key.
    pub updated: i64,
    /// Rows in the table afterwards.
    pub rows_in_table: i64,
    /// Rows rejected under `MAXERROR`, if any.
    pub rejected: LoadErrors,
    /// Set when nothing was done because these objects were appended before:
    /// when, as the ledger records it.
    pub skipped: Option<String>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(when) = &self.skipped {
            return write!(
                f,
                "nothing appended: these {} object(s) were appended at {when}; {} rows in the table",
                self.source.objects, self.rows_in_table
            );
        }
        match self.mode {
            LoadMode::Replace => write!(
                f,
                "{} rows loaded, replacing {}; {} in the table",
                self.loaded, self.rows_before, self.rows_in_table
            ),
            LoadMode::Append => write!(
                f,
                "{} rows appended to {}; {} in the table",
                self.loaded, self.rows_before, self.rows_in_table
            ),
            LoadMode::Upsert => write!(
                f,
                "{} rows upserted: {} updated, {} inserted; {} in the table",
                self.loaded,
                self.updated,
                self.loaded - self.updated,
                self.rows_in_table
            ),
        }
    }
}

fn verification(cfg: &Config, reason: String) -> Error {
    Error::Verification {
        table: cfg.table.name.to_string(),
        reason,
    }
}

/// Creates the table if needed, loads the data through a staging table and
/// verifies the result. See the module docs for why each step is there.
pub async fn run(
    cfg: &Config,
    wh: &Warehouse,
    s3: &aws_sdk_s3::Client,
    region: &str,
    role_arn: &str,
) -> Result<LoadReport> {
    let source = inspect_source(s3, &cfg.s3.source, cfg.s3.manifest).await?;
    let table = &cfg.table.name;
    let stage = staging_table(table);
    // Parameters, not pasted strings, even for names we validated: the habit
    // is the point for a reader who will copy this.
    let exists = wh
        .query_with(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = :schema AND table_name = :table",
            &[("schema", table.schema.as_str()), ("table", table.table.as_str())],
        )
        .await?
        .scalar_i64()
        .unwrap_or(0)
        > 0;
    if let Some(sql) = create_schema_sql(&cfg.table) {
        wh.execute(&sql).await?;
    }
    wh.execute(&create_table_sql(&cfg.table)).await?;
    wh.execute(&create_ledger_sql(&table.schema)).await?;
    let count = |t: TableName| async move {
        Ok::<i64, Error>(
            wh.query(&count_sql(&t))
                .await?
                .scalar_i64()
                .unwrap_or_default(),
        )
    };
    let rows_before = count(table.clone()).await?;
    let mut report = LoadReport {
        table: if exists {
            Action::Reuse
        } else {
            Action::Create
        },
        source,
        mode: cfg.load.mode,
        loaded: 0,
        rows_before,
        updated: 0,
        rows_in_table: rows_before,
        rejected: LoadErrors::default(),
        skipped: None,
    };

    if cfg.load.mode == LoadMode::Append {
        let earlier = wh
            .query_with(
                &format!(
                    "SELECT TO_CHAR(loaded_at, 'YYYY-MM-DD HH24:MI:SS') FROM {} \
                     WHERE table_name = :table AND fingerprint = :fingerprint ORDER BY loaded_at LIMIT 1",
                    ledger_table(&table.schema)
                ),
                &[
                    ("table", &table.to_string()),
                    ("fingerprint", &report.source.fingerprint),
                ],
            )
            .await?;
        if let Some(when) = earlier.rows.first().and_then(|r| r.first()) {
            report.skipped = Some(format!("{when} UTC"));
            return Ok(report);
        }
    }

    // Phase 1: COPY into the staging table.
    let staged = stage_sql(cfg, region, role_arn)
        .map_err(|m| verification(cfg, format!("cannot build COPY: {m}")))?;
    let copied = match wh.batch(&staged).await {
        Ok(done) => done,
        Err(Error::StatementFailed {
            id,
            sql,
            message,
            query_id,
            ..
        }) => {
            // Fetch the rejected rows so the error says which line and why.
            let load_errors = match load_errors(wh, query_id).await {
                Ok(errors) => errors,
                Err(e) => {
                    tracing::warn!("could not read the load errors: {e}");
                    LoadErrors::default()
                }
            };
            return Err(Error::StatementFailed {
                id,
                sql,
                message,
                query_id,
                load_errors: Box::new(load_errors),
            });
        }
        Err(e) => return Err(e),
    };
    let copy_result = copied.last().expect("the batch ends with the COPY");
    report.loaded = copy_result.result_rows;
    if cfg.load.max_errors > 0 {
        report.rejected = load_errors(wh, copy_result.query_id).await?;
    }

    // Checks on the staged rows, before the target is touched.
    if let Err(e) = check_staged(cfg, wh, &stage, report.loaded).await {
        if let Err(drop) = wh.execute(&format!("DROP TABLE IF EXISTS {stage}")).await {
            tracing::warn!("could not drop the staging table {stage}: {drop}");
        }
        return Err(e);
    }

    // Phase 2: one transaction moves the rows in.
    let entry = LedgerEntry {
        source: cfg.s3.source.to_string(),
        fingerprint: report.source.fingerprint.clone(),
    };
    let swap = swap_sql(cfg, &entry).map_err(|m| verification(cfg, m))?;
    let swapped = wh.batch(&swap).await?;
    if cfg.load.mode == LoadMode::Upsert {
        report.updated = swapped.first().map(|d| d.result_rows).unwrap_or_default();
    }
    report.rows_in_table = count(table.clone()).await?;
    verify(cfg, &report)?;
    Ok(report)
}

/// The checks on the staging table that must pass before the swap.
async fn check_staged(cfg: &Config, wh: &Warehouse, stage: &TableName, loaded: i64) -> Result<()> {
    if loaded == 0 {
        return Err(verification(
            cfg,
            format!(
                "COPY loaded no rows from {}; check IGNORE_HEADER and that the files hold data (the table was not changed)",
                cfg.s3.source
            ),
        ));
    }
    if cfg.load.mode == LoadMode::Replace
        && let Some(expected) = cfg.load.expected_rows
        && loaded as u64 != expected
    {
        return Err(verification(
            cfg,
            format!(
                "COPY staged {loaded} rows; [LOAD] EXPECTED_ROWS says {expected} (the table was not changed)"
            ),
        ));
    }
    if cfg.load.mode == LoadMode::Upsert {
        let key: Vec<String> = cfg.load.key.iter().map(ToString::to_string).collect();
        let key = key.join(", ");
        let nulls: Vec<String> = cfg
            .load
            .key
            .iter()
            .map(|k| format!("{k} IS NULL"))
            .collect();
        let null_rows = wh
            .query(&format!(
                "SELECT COUNT(*) FROM {stage} WHERE {}",
                nulls.join(" OR ")
            ))
            .await?
            .scalar_i64()
            .unwrap_or_default();
        if null_rows > 0 {
            return Err(verification(
                cfg,
                format!(
                    "{null_rows} staged row(s) have a NULL in the key ({key}); a NULL key matches no row, so each \
                     re-run would add them again. Fix the data or [LOAD] KEY (the table was not changed)"
                ),
            ));
        }
        let dups = wh
            .query(&format!(
                "SELECT {key}, COUNT(*) FROM {stage} GROUP BY {key} HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 5"
            ))
            .await?;
        if !dups.rows.is_empty() {
            let shown: Vec<String> = dups
                .rows
                .iter()
                .map(|r| {
                    let (n, k) = r.split_last().expect("the query has a count column");
                    let k: Vec<String> = k.iter().map(ToString::to_string).collect();
                    format!("({}) ×{n}", k.join(", "))
                })
                .collect();
            return Err(verification(
                cfg,
                format!(
                    "the new data has the same key ({key}) on several rows: {}; upsert needs one row per key, or \
                     which one wins would depend on row order (the table was not changed)",
                    shown.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the counts after a load.
///
/// ```
/// # let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
/// # let cfg = s3_to_redshift::config::Config::parse(&text, "x.cfg", None).unwrap();
/// use s3_to_redshift::load::{LoadReport, LoadErrors, SourceSummary, verify};
/// use s3_to_redshift::{config::LoadMode, report::Action};
/// let report = |loaded, rows_before, rows_in_table| LoadReport {
///     table: Action::Reuse,
///     source: SourceSummary { objects: 1, bytes: 100, fingerprint: "f".into() },
///     mode: LoadMode::Replace,
///     loaded, rows_before, updated: 0, rows_in_table,
///     rejected: LoadErrors::default(),
///     skipped: None,
/// };
/// assert!(verify(&cfg, &report(10, 7, 10)).is_ok());
/// assert!(verify(&cfg, &report(10, 7, 12)).is_err()); // replace: exactly what was loaded
/// ```
pub fn verify(cfg: &Config, r: &LoadReport) -> Result<()> {
    let fail = |reason: String| Err(verification(cfg, reason));
    let expected = match r.mode {
        LoadMode::Replace => r.loaded,
        LoadMode::Append => r.rows_before + r.loaded,
        LoadMode::Upsert => r.rows_before + r.loaded - r.updated,
    };
    if r.rows_in_table != expected {
        return fail(format!(
            "{} mode: the table held {} rows, {} were loaded ({} updating existing ones), so it should hold {}, \
             but it holds {}; another writer may be using the table",
            r.mode.as_str(),
            r.rows_before,
            r.loaded,
            r.updated,
            expected,
            r.rows_in_table
        ));
    }
    if let Some(expected) = cfg.load.expected_rows
        && r.rows_in_table as u64 != expected
    {
        return fail(format!(
            "the table holds {} rows; [LOAD] EXPECTED_ROWS says {expected}",
            r.rows_in_table
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra_load: &str) -> Config {
        let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
        let text = text.replace("[LOAD]\n", &format!("[LOAD]\n{extra_load}"));
        // Drop the example's own values for keys the test sets.
        let mut seen = std::collections::HashSet::new();
        let text: String = text
            .lines()
            .filter(|l| {
                let key = l.split('=').next().unwrap_or("").trim().to_string();
                !l.contains('=') || seen.insert(key)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        Config::parse(&text, "t.cfg", None).unwrap_or_else(|e| panic!("{e}"))
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/r";

    #[test]
    fn copy_lists_columns_and_escapes_every_literal() {
        let c = cfg(
            "DELIMITER = \\t\nQUOTE = '\nNULL_AS = \\N\nTIME_FORMAT = YYYY-MM-DD HH:MI:SS\nMAX_ERRORS = 5\nCOMPRESSION = gzip\n",
        );
        let sql = copy_sql(&c, &c.table.name, "eu-west-1", ROLE).unwrap();
        assert_eq!(
            sql,
            "COPY \"public\".\"sales\" (\"sale_id\", \"sold_on\", \"region\", \"product\", \"quantity\", \"unit_price\")\n\
             FROM 's3://s3-to-redshift-demo-data/sales/sales.csv'\n\
             IAM_ROLE 'arn:aws:iam::123456789012:role/r'\n\
             REGION 'eu-west-1'\n\
             CSV DELIMITER '\\t' QUOTE AS '''' IGNOREHEADER 1 NULL AS '\\\\N' EMPTYASNULL \
             DATEFORMAT 'auto' TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' GZIP MAXERROR 5"
        );
    }

    #[test]
    fn the_bucket_region_wins_over_the_cluster_region() {
        let mut c = cfg("");
        c.s3.region = Some("ap-south-1".into());
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(sql.contains("REGION 'ap-south-1'"), "{sql}");
    }

    #[test]
    fn a_hostile_value_stays_inside_its_literal() {
        let mut c = cfg("");
        c.load.null_as = Some("x'; DROP TABLE sales; --".into());
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(sql.contains("NULL AS 'x''; DROP TABLE sales; --'"), "{sql}");
        c.load.null_as = Some("a\nb".into());
        assert!(
            copy_sql(&c, &c.table.name, "us-east-1", ROLE)
                .unwrap_err()
                .contains("control character")
        );
    }

    #[test]
    fn every_mode_copies_into_a_staging_table_and_swaps_in_one_batch() {
        let c = cfg("");
        let stmts = statements(&c, "us-east-1", ROLE, Some("abc")).unwrap();
        let stage = "\"public\".\"s2r_staging__sales\"";
        assert!(stmts[0].starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"sales\""));
        assert!(
            stmts[1].starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"s3_to_redshift_loads\"")
        );
        assert_eq!(stmts[2], format!("DROP TABLE IF EXISTS {stage}"));
        assert_eq!(
            stmts[3],
            format!("CREATE TABLE {stage} (LIKE \"public\".\"sales\")")
        );
        assert!(
            stmts[4].starts_with(&format!("COPY {stage} (")),
            "{}",
            stmts[4]
        );
        assert_eq!(stmts[5], "DELETE FROM \"public\".\"sales\"");
        assert!(stmts[6].starts_with("INSERT INTO \"public\".\"sales\" (\"sale_id\""));
        assert!(
            stmts[7].contains("'abc', 'replace', COUNT(*)"),
            "{}",
            stmts[7]
        );
        assert_eq!(stmts[8], format!("DROP TABLE {stage}"));
        assert_eq!(stmts[9], "SELECT COUNT(*) FROM \"public\".\"sales\"");

        let c = cfg("MODE = append\n");
        let stmts = statements(&c, "us-east-1", ROLE, None).unwrap();
        assert!(!stmts.iter().any(|s| s.starts_with("DELETE")));

        let c = cfg("MODE = upsert\nKEY = sale_id, region\n");
        let swap = swap_sql(
            &c,
            &LedgerEntry {
                source: "s3://b/k".into(),
                fingerprint: "f".into(),
            },
        )
        .unwrap();
        assert_eq!(
            swap[0],
            format!(
                "DELETE FROM \"public\".\"sales\" USING {stage} WHERE \"public\".\"sales\".\"sale_id\" = {stage}.\"sale_id\" \
                 AND \"public\".\"sales\".\"region\" = {stage}.\"region\""
            )
        );
        assert_eq!(swap.len(), 4);
    }

    #[test]
    fn a_long_table_name_still_has_a_valid_staging_name() {
        let t = TableName::parse(&"t".repeat(127)).unwrap();
        let s = staging_table(&t);
        assert_eq!(s.table.as_str().len(), 127);
        assert!(s.table.as_str().starts_with("s2r_staging__t"));
    }

    #[test]
    fn the_fingerprint_changes_with_any_object_and_not_with_listing_order() {
        let a = summarise(vec![
            ("k1".into(), 10, "\"e1\"".into()),
            ("k2".into(), 20, "\"e2\"".into()),
        ]);
        let b = summarise(vec![
            ("k2".into(), 20, "\"e2\"".into()),
            ("k1".into(), 10, "\"e1\"".into()),
        ]);
        assert_eq!(a, b);
        assert_eq!((a.objects, a.bytes), (2, 30));
        let c = summarise(vec![
            ("k1".into(), 10, "\"e1\"".into()),
            ("k2".into(), 20, "\"e3\"".into()),
        ]);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn json_lines_copy_has_no_csv_options() {
        let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
        let text = text
            .replace("FORMAT = CSV", "FORMAT = json")
            .replace("DELIMITER = ,\n", "")
            .replace("IGNORE_HEADER = 1\n", "");
        let mut c = Config::parse(&text, "t.cfg", None).unwrap_or_else(|e| panic!("{e}"));
        c.s3.manifest = true;
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(
            sql.ends_with("MANIFEST FORMAT AS JSON 'auto' EMPTYASNULL DATEFORMAT 'auto'"),
            "{sql}"
        );
    }

    #[test]
    fn many_load_errors_are_capped_and_summarised() {
        let e = |line| LoadError {
            file: "s3://b/k".into(),
            line,
            column: "quantity".into(),
            value: "x".into(),
            reason: "Invalid digit".into(),
        };
        let errors = LoadErrors {
            first: (2..12).map(e).collect(),
            total: 5000,
            by_reason: vec![("quantity".into(), "Invalid digit".into(), 5000)],
        };
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 12, "{text}");
        assert!(
            text.contains("5000 rejected rows in all, 10 shown"),
            "{text}"
        );
    }

    #[test]
    fn a_schema_other_than_public_is_created() {
        let mut c = cfg("");
        c.table.name = TableName::parse("staging.sales").unwrap();
        assert_eq!(
            create_schema_sql(&c.table).as_deref(),
            Some("CREATE SCHEMA IF NOT EXISTS \"staging\"")
        );
        assert!(create_schema_sql(&cfg("").table).is_none());
    }

    #[test]
    fn verification_checks_the_counts_each_mode_implies() {
        let report = |mode, loaded, before, updated, after| LoadReport {
            table: Action::Reuse,
            source: summarise(vec![("k".into(), 1, "e".into())]),
            mode,
            loaded,
            rows_before: before,
            updated,
            rows_in_table: after,
            rejected: LoadErrors::default(),
            skipped: None,
        };
        let c = cfg("EXPECTED_ROWS = 10\n");
        assert!(verify(&c, &report(LoadMode::Replace, 10, 3, 0, 10)).is_ok());
        let err = verify(&c, &report(LoadMode::Replace, 9, 3, 0, 9))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EXPECTED_ROWS says 10"), "{err}");
        let c = cfg("");
        assert!(verify(&c, &report(LoadMode::Append, 10, 15, 0, 25)).is_ok());
        assert!(verify(&c, &report(LoadMode::Append, 10, 15, 0, 24)).is_err());
        assert!(verify(&c, &report(LoadMode::Upsert, 10, 15, 4, 21)).is_ok());
        assert!(verify(&c, &report(LoadMode::Upsert, 10, 15, 4, 25)).is_err());
    }
}
