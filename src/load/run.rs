//! The load itself: stage, check, swap, verify.

use std::fmt;

use super::errors::*;
use super::source::*;
use super::sql::*;
use crate::config::{Config, LoadMode};
use crate::error::{Error, Result};
use crate::report::Action;
use crate::sql::TableName;
use crate::warehouse::{Finished, Warehouse};

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
    let (table, rows_before) = prepare_table(cfg, wh).await?;
    let mut report = LoadReport {
        table,
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
        report.skipped = appended_before(cfg, wh, &report.source.fingerprint).await?;
        if report.skipped.is_some() {
            return Ok(report);
        }
    }

    // Phase 1: COPY into the staging table.
    let copied = copy_to_stage(cfg, wh, region, role_arn).await?;
    let copy_result = copied.last().expect("the batch ends with the COPY");
    report.loaded = copy_result.result_rows;
    if cfg.load.max_errors > 0 {
        report.rejected = load_errors(wh, copy_result.query_id).await?;
    }

    // Checks on the staged rows, before the target is touched.
    let stage = staging_table(&cfg.table.name);
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
    report.rows_in_table = row_count(wh, &cfg.table.name).await?;
    verify(cfg, &report)?;
    Ok(report)
}

/// Creates the schema, the table and the load ledger if missing; returns
/// whether the table was there already, and its rows before the load.
async fn prepare_table(cfg: &Config, wh: &Warehouse) -> Result<(Action, i64)> {
    let table = &cfg.table.name;
    // Parameters, not pasted strings, even for names we validated: the habit
    // is the point for a reader who will copy this.
    let exists = wh
        .query_with(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = :schema AND table_name = :table",
            &[
                ("schema", table.schema.as_str()),
                ("table", table.table.as_str()),
            ],
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
    let action = if exists {
        Action::Reuse
    } else {
        Action::Create
    };
    Ok((action, row_count(wh, table).await?))
}

async fn row_count(wh: &Warehouse, table: &TableName) -> Result<i64> {
    Ok(wh
        .query(&count_sql(table))
        .await?
        .scalar_i64()
        .unwrap_or_default())
}

/// When the ledger says these exact objects were appended already: the
/// time of that load (`append` loads each set of objects once).
async fn appended_before(
    cfg: &Config,
    wh: &Warehouse,
    fingerprint: &str,
) -> Result<Option<String>> {
    let table = &cfg.table.name;
    let earlier = wh
        .query_with(
            &format!(
                "SELECT TO_CHAR(loaded_at, 'YYYY-MM-DD HH24:MI:SS') FROM {} \
                 WHERE table_name = :table AND fingerprint = :fingerprint \
                 ORDER BY loaded_at LIMIT 1",
                ledger_table(&table.schema)
            ),
            &[("table", &table.to_string()), ("fingerprint", fingerprint)],
        )
        .await?;
    Ok(earlier
        .rows
        .first()
        .and_then(|r| r.first())
        .map(|when| format!("{when} UTC")))
}

/// Runs the staging batch (staging table, COPY). When the COPY fails, the
/// error carries the rejected rows, so it says which line and why.
async fn copy_to_stage(
    cfg: &Config,
    wh: &Warehouse,
    region: &str,
    role_arn: &str,
) -> Result<Vec<Finished>> {
    let staged = stage_sql(cfg, region, role_arn)
        .map_err(|m| verification(cfg, format!("cannot build COPY: {m}")))?;
    match wh.batch(&staged).await {
        Err(Error::StatementFailed {
            id,
            sql,
            message,
            query_id,
            ..
        }) => {
            let load_errors = match load_errors(wh, query_id).await {
                Ok(errors) => errors,
                Err(e) => {
                    tracing::warn!("could not read the load errors: {e}");
                    LoadErrors::default()
                }
            };
            Err(Error::StatementFailed {
                id,
                sql,
                message,
                query_id,
                load_errors: Box::new(load_errors),
            })
        }
        other => other,
    }
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
