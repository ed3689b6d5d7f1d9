//! The load's SQL, built from the validated config: the table and the
//! ledger, the `COPY`, the staging table and the swap. Pure functions, so
//! that `plan` can show them and tests can check them without a database.

use crate::config::{Compression, Config, DistStyle, LoadFormat, LoadMode, TableSettings};
use crate::error::Result;
use crate::sql::{Ident, MAX_IDENT_LEN, TableName, copy_char_literal, quote_literal};

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

/// How many rows `load` shows of the table once it is loaded.
pub const PREVIEW_ROWS: u32 = 10;

/// The first `limit` rows of the table, ordered by its first column: what a
/// reader wants to see after a load.
pub fn preview_sql(cfg: &Config, limit: u32) -> String {
    // With no columns known (inference not run yet) there is nothing to
    // order by: the rows come as the table gives them.
    match cfg.table.columns.first() {
        Some(first) => format!(
            "SELECT * FROM {} ORDER BY {} LIMIT {limit}",
            cfg.table.name, first.name
        ),
        None => format!("SELECT * FROM {} LIMIT {limit}", cfg.table.name),
    }
}

/// `1` when the table exists, `0` when not, as a query.
///
/// The names go in as literals because a batch takes no parameters; they
/// are validated identifiers, and [`quote_literal`] escapes them all the
/// same (the habit is the point for a reader who will copy this).
pub fn table_exists_sql(table: &TableName) -> Result<String, String> {
    Ok(format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} AND table_name = {}",
        quote_literal(table.schema.as_str())?,
        quote_literal(table.table.as_str())?,
    ))
}

/// The statements that open every load, in the load's first batch: whether
/// the table exists (so the report can say if it was created), the schema,
/// the table and the ledger if missing, and the rows in the table before
/// the load.
pub fn prepare_sql(cfg: &Config) -> Result<Vec<String>, String> {
    let table = &cfg.table;
    let mut out = vec![table_exists_sql(&table.name)?];
    out.extend(create_schema_sql(table));
    out.push(create_table_sql(table));
    out.push(create_ledger_sql(&table.name.schema));
    out.push(count_sql(&table.name));
    Ok(out)
}

/// Append: when the ledger says these exact objects were appended already,
/// the time of that load (`append` loads each set of objects once).
pub fn appended_sql(cfg: &Config, fingerprint: &str) -> Result<String, String> {
    let table = &cfg.table.name;
    Ok(format!(
        "SELECT TO_CHAR(loaded_at, 'YYYY-MM-DD HH24:MI:SS') FROM {} \
         WHERE table_name = {} AND fingerprint = {} ORDER BY loaded_at LIMIT 1",
        ledger_table(&table.schema),
        quote_literal(&table.to_string())?,
        quote_literal(fingerprint)?,
    ))
}

/// Upsert's checks of the staged rows, run after the COPY in the same
/// batch: how many rows have a NULL in the key, and up to five keys held by
/// more than one row (with their counts).
pub fn upsert_checks_sql(cfg: &Config) -> Vec<String> {
    let stage = staging_table(&cfg.table.name);
    let key: Vec<String> = cfg.load.key.iter().map(ToString::to_string).collect();
    let key = key.join(", ");
    let nulls: Vec<String> = cfg
        .load
        .key
        .iter()
        .map(|k| format!("{k} IS NULL"))
        .collect();
    vec![
        format!("SELECT COUNT(*) FROM {stage} WHERE {}", nulls.join(" OR ")),
        format!(
            "SELECT {key}, COUNT(*) FROM {stage} GROUP BY {key} HAVING COUNT(*) > 1 ORDER BY {} DESC LIMIT 5",
            cfg.load.key.len() + 1
        ),
    ]
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

/// Where a statement's result is in a load's replies: its request (one
/// `BatchExecuteStatement`) and its place in that request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// The request, from 0.
    pub request: usize,
    /// The statement in it, from 0.
    pub index: usize,
}

/// The statements `load` runs, grouped as it sends them (each request is
/// one `BatchExecuteStatement`, one round trip and one transaction), with
/// the place of every statement whose result the load reads. `load` runs
/// exactly these and finds each result by its place here, not by its
/// text; `plan` shows the same requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The requests, in order.
    pub requests: Vec<Vec<String>>,
    /// `1` when the table existed before the load.
    pub table_exists: At,
    /// The table's rows before the load.
    pub count_before: At,
    /// Append: the time these objects were appended before, if they were
    /// (the last statement of the first request, which then stands alone).
    pub ledger: Option<At>,
    /// The `COPY` into the staging table.
    pub copy: At,
    /// Upsert: the staged rows with a NULL key, and the keys held twice.
    pub key_checks: Option<(At, At)>,
    /// Upsert: the `DELETE` of the rows the new ones replace.
    pub replaced: Option<At>,
    /// The table's rows after the swap.
    pub count_after: At,
    /// The first rows of the table, to show.
    pub preview: At,
}

impl LoadPlan {
    /// Appends `sql` to the last request; returns its place.
    fn push(&mut self, sql: String) -> At {
        let request = self.requests.len() - 1;
        let last = &mut self.requests[request];
        last.push(sql);
        At {
            request,
            index: last.len() - 1,
        }
    }

    /// Appends every statement of `sqls` to the last request; returns the
    /// place of the one at `wanted` in `sqls` (an error if there is none:
    /// a builder that changed shape must not shift what the load reads).
    fn extend(&mut self, sqls: Vec<String>, wanted: usize) -> Result<At, String> {
        let mut at = None;
        for (i, sql) in sqls.into_iter().enumerate() {
            let here = self.push(sql);
            if i == wanted {
                at = Some(here);
            }
        }
        at.ok_or_else(|| format!("the load plan has no statement {wanted} where it expects one"))
    }
}

/// The load's plan (see [`LoadPlan`]). `fingerprint` is the source's, when
/// it could be listed.
pub fn load_plan(
    cfg: &Config,
    region: &str,
    role_arn: &str,
    fingerprint: Option<&str>,
) -> Result<LoadPlan, String> {
    let fingerprint = fingerprint.unwrap_or("(fingerprint of the objects)");
    let unplaced = At {
        request: 0,
        index: 0,
    };
    let mut plan = LoadPlan {
        requests: vec![Vec::new()],
        table_exists: unplaced,
        count_before: unplaced,
        ledger: None,
        copy: unplaced,
        key_checks: None,
        replaced: None,
        count_after: unplaced,
        preview: unplaced,
    };
    let table = &cfg.table;
    plan.table_exists = plan.push(table_exists_sql(&table.name)?);
    if let Some(schema) = create_schema_sql(table) {
        plan.push(schema);
    }
    plan.push(create_table_sql(table));
    plan.push(create_ledger_sql(&table.name.schema));
    plan.count_before = plan.push(count_sql(&table.name));
    if cfg.load.mode == LoadMode::Append {
        plan.ledger = Some(plan.push(appended_sql(cfg, fingerprint)?));
        plan.requests.push(Vec::new());
    }
    // stage_sql: drop, create, COPY.
    plan.copy = plan.extend(stage_sql(cfg, region, role_arn)?, 2)?;
    if cfg.load.mode == LoadMode::Upsert
        && let [nulls, dups] =
            <[String; 2]>::try_from(upsert_checks_sql(cfg)).map_err(|_| "two key checks")?
    {
        plan.key_checks = Some((plan.push(nulls), plan.push(dups)));
    }
    plan.requests.push(Vec::new());
    let entry = LedgerEntry {
        source: cfg.s3.source.to_string(),
        fingerprint: fingerprint.into(),
    };
    let swap = swap_sql(cfg, &entry)?;
    let upsert = cfg.load.mode == LoadMode::Upsert;
    let first = plan.extend(swap, 0)?;
    plan.replaced = upsert.then_some(first);
    plan.count_after = plan.push(count_sql(&cfg.table.name));
    plan.preview = plan.push(preview_sql(cfg, PREVIEW_ROWS));
    Ok(plan)
}

/// The statements `load` runs, in order, grouped as it sends them: each
/// inner list is one `BatchExecuteStatement`, one request and one
/// transaction. `load` runs exactly these, and `plan` shows them.
/// `fingerprint` is the source's, when it could be listed.
pub fn statements(
    cfg: &Config,
    region: &str,
    role_arn: &str,
    fingerprint: Option<&str>,
) -> Result<Vec<Vec<String>>, String> {
    Ok(load_plan(cfg, region, role_arn, fingerprint)?.requests)
}
