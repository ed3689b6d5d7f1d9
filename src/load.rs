//! Steps 4 and 5: the table, the `COPY` from S3, and the checks after it.
//!
//! All SQL here is built from the validated config: identifiers are
//! [`Ident`](crate::sql::Ident)s, strings go through
//! [`quote_literal`](crate::sql::quote_literal). The statements are pure
//! functions of the config so that `plan` can show them and tests can check
//! them without a database.
//!
//! How the load stays safe to re-run: in the default `replace` mode the old
//! rows are deleted and the new ones copied in **one** `BatchExecuteStatement`,
//! which Redshift runs as a single transaction. If the `COPY` fails, the
//! `DELETE` is rolled back and the table keeps its rows. (`TRUNCATE` would be
//! faster but commits at once in Redshift, which would lose that guarantee.)

use std::fmt;

use crate::config::{Compression, Config, DistStyle, LoadMode, S3Uri, TableSettings};
use crate::error::{Error, Result};
use crate::report::Action;
use crate::sql::{TableName, copy_char_literal, quote_literal};
use crate::warehouse::{Target, Warehouse};

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
    let cols: Vec<String> = cfg
        .table
        .columns
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    let region = cfg.s3.region.as_deref().unwrap_or(region);
    let mut sql = format!(
        "COPY {into} ({})\nFROM {}\nIAM_ROLE {}\nREGION {}\nCSV DELIMITER {} QUOTE AS {}",
        cols.join(", "),
        quote_literal(&cfg.s3.source.to_string())?,
        quote_literal(role_arn)?,
        quote_literal(region)?,
        copy_char_literal(load.delimiter)?,
        copy_char_literal(load.quote)?,
    );
    if load.ignore_header > 0 {
        sql.push_str(&format!(" IGNOREHEADER {}", load.ignore_header));
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

/// `SELECT COUNT(*)` of the table.
pub fn count_sql(table: &TableName) -> String {
    format!("SELECT COUNT(*) FROM {table}")
}

/// The statements `load` runs, in order, for `plan` to show.
pub fn statements(cfg: &Config, region: &str, role_arn: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = create_schema_sql(&cfg.table).into_iter().collect();
    out.push(create_table_sql(&cfg.table));
    if cfg.load.mode == LoadMode::Replace {
        out.push(format!("DELETE FROM {}", cfg.table.name));
    }
    out.push(copy_sql(cfg, &cfg.table.name, region, role_arn)?);
    out.push(count_sql(&cfg.table.name));
    Ok(out)
}

/// One rejected row, as Redshift records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The S3 object.
    pub file: String,
    /// The line in that object (1-based, counting the header).
    pub line: i64,
    /// The column the value was for.
    pub column: String,
    /// The value as read (empty where Redshift does not record it).
    pub value: String,
    /// Redshift's reason.
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}, column `{}`",
            self.file, self.line, self.column
        )?;
        if !self.value.is_empty() {
            write!(f, ", value `{}`", self.value)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How many load errors are fetched and shown; the count says if there were more.
pub const LOAD_ERRORS_SHOWN: usize = 10;

/// The load errors of the COPY with Redshift query id `query_id`.
///
/// A provisioned cluster keeps the raw value in `STL_LOAD_ERRORS`; Serverless
/// has only `SYS_LOAD_ERROR_DETAIL`, which lacks it.
pub async fn load_errors(wh: &Warehouse, query_id: i64) -> Result<Vec<LoadError>> {
    let sql = match wh.target() {
        Target::Cluster { .. } => {
            "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason) \
             FROM stl_load_errors WHERE query = :query_id ORDER BY line_number LIMIT 10"
        }
        Target::Workgroup { .. } => {
            "SELECT TRIM(file_name), line_number, TRIM(column_name), '', TRIM(error_message) \
             FROM sys_load_error_detail WHERE query_id = :query_id ORDER BY line_number LIMIT 10"
        }
    };
    let rs = wh
        .query_with(sql, &[("query_id", &query_id.to_string())])
        .await?;
    Ok(rs
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
        .collect())
}

/// What is at the source location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSummary {
    /// Objects whose key starts with the configured key (what COPY reads).
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Lists the objects COPY will read (every page), so that a wrong path is a
/// clear error before any SQL runs rather than a COPY failure later.
pub async fn inspect_source(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<SourceSummary> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(&uri.bucket)
        .prefix(&uri.key)
        .into_paginator()
        .send();
    let mut summary = SourceSummary {
        objects: 0,
        bytes: 0,
    };
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
            summary.objects += 1;
            summary.bytes += o.size().unwrap_or_default().max(0) as u64;
        }
    }
    if summary.objects == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: "no object has this key or starts with it; upload the data first, or fix [S3] SOURCE".into(),
        });
    }
    if summary.bytes == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: format!("the {} object(s) here are all empty", summary.objects),
        });
    }
    Ok(summary)
}

/// What `load` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Whether the table was created or already there.
    pub table: Action,
    /// What was at the source.
    pub source: SourceSummary,
    /// Rows the COPY loaded (its `ResultRows`).
    pub loaded: i64,
    /// Rows in the table afterwards.
    pub rows_in_table: i64,
    /// Rows rejected under `MAXERROR`, if any.
    pub rejected: Vec<LoadError>,
}

/// Creates the table if needed, loads the data and verifies the result.
pub async fn run(
    cfg: &Config,
    wh: &Warehouse,
    s3: &aws_sdk_s3::Client,
    region: &str,
    role_arn: &str,
) -> Result<LoadReport> {
    let source = inspect_source(s3, &cfg.s3.source).await?;
    let table = &cfg.table.name;
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

    let copy = copy_sql(cfg, table, region, role_arn).map_err(|m| Error::Verification {
        table: table.to_string(),
        reason: format!("cannot build COPY: {m}"),
    })?;
    let mut batch = Vec::new();
    if cfg.load.mode == LoadMode::Replace {
        batch.push(format!("DELETE FROM {table}"));
    }
    batch.push(copy);
    let copied = match wh.batch(&batch).await {
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
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!("could not read the load errors: {e}");
                    Vec::new()
                }
            };
            return Err(Error::StatementFailed {
                id,
                sql,
                message,
                query_id,
                load_errors,
            });
        }
        Err(e) => return Err(e),
    };
    let copy_result = copied.last().expect("the batch has a COPY");
    let loaded = copy_result.result_rows;
    let rejected = if cfg.load.max_errors > 0 {
        load_errors(wh, copy_result.query_id).await?
    } else {
        Vec::new()
    };

    let rows_in_table = wh
        .query(&count_sql(table))
        .await?
        .scalar_i64()
        .unwrap_or_default();
    verify(cfg, loaded, rows_in_table)?;
    Ok(LoadReport {
        table: if exists {
            Action::Reuse
        } else {
            Action::Create
        },
        source,
        loaded,
        rows_in_table,
        rejected,
    })
}

/// Checks the counts after a load.
///
/// ```
/// # let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
/// # let cfg = s3_to_redshift::config::Config::parse(&text, "x.cfg", None).unwrap();
/// use s3_to_redshift::load::verify;
/// assert!(verify(&cfg, 10, 10).is_ok());
/// assert!(verify(&cfg, 0, 0).is_err());   // nothing loaded
/// assert!(verify(&cfg, 10, 12).is_err()); // replace mode: the table must hold exactly what was loaded
/// ```
pub fn verify(cfg: &Config, loaded: i64, rows_in_table: i64) -> Result<()> {
    let table = cfg.table.name.to_string();
    let fail = |reason: String| {
        Err(Error::Verification {
            table: table.clone(),
            reason,
        })
    };
    if loaded == 0 {
        return fail(format!(
            "COPY loaded no rows from {}; check IGNORE_HEADER and that the files hold data",
            cfg.s3.source
        ));
    }
    if cfg.load.mode == LoadMode::Replace && rows_in_table != loaded {
        return fail(format!(
            "COPY loaded {loaded} rows but the table holds {rows_in_table}; another writer may be \
             using the table"
        ));
    }
    if rows_in_table < loaded {
        return fail(format!(
            "COPY loaded {loaded} rows but the table holds only {rows_in_table}"
        ));
    }
    if let Some(expected) = cfg.load.expected_rows
        && rows_in_table as u64 != expected
    {
        return fail(format!(
            "the table holds {rows_in_table} rows; [LOAD] EXPECTED_ROWS says {expected}"
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
    fn replace_mode_deletes_in_the_copys_transaction_and_append_does_not() {
        let c = cfg("");
        let stmts = statements(&c, "us-east-1", ROLE).unwrap();
        assert!(stmts[0].starts_with("CREATE TABLE IF NOT EXISTS"));
        assert_eq!(stmts[1], "DELETE FROM \"public\".\"sales\"");
        assert!(stmts[2].starts_with("COPY"));
        assert_eq!(stmts[3], "SELECT COUNT(*) FROM \"public\".\"sales\"");
        let c = cfg("MODE = append\n");
        let stmts = statements(&c, "us-east-1", ROLE).unwrap();
        assert!(!stmts.iter().any(|s| s.starts_with("DELETE")));
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
    fn verification_catches_wrong_counts() {
        let c = cfg("EXPECTED_ROWS = 10\n");
        assert!(verify(&c, 10, 10).is_ok());
        let err = verify(&c, 9, 9).unwrap_err().to_string();
        assert!(err.contains("EXPECTED_ROWS says 10"), "{err}");
        let c = cfg("MODE = append\n");
        assert!(verify(&c, 10, 25).is_ok(), "append: older rows stay");
        assert!(verify(&c, 10, 5).is_err());
    }
}
