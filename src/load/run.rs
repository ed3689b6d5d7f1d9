//! The load itself: stage, check, swap, verify.

use std::fmt;

use super::errors::*;
use super::source::*;
use super::sql::*;
use crate::config::{Config, LoadMode};
use crate::error::{Error, Result};
use crate::report::Action;
use crate::warehouse::{Finished, ResultSet, Warehouse};

/// What `load` did.
#[derive(Clone, Debug, PartialEq)]
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
    /// The first [`PREVIEW_ROWS`] rows of the table after the load, read in
    /// the swap's own transaction (empty when the load was skipped).
    pub preview: ResultSet,
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
///
/// Why batches: each Data API request is a round trip, and each statement
/// is waited on with more of them, so the load sends its statements in as
/// few `BatchExecuteStatement`s as their meaning allows. The first creates
/// what is missing, counts the rows and COPYs into the staging table (in
/// append mode the ledger is read first, in a batch of its own, so that a
/// repeated load copies nothing); the second swaps the rows in and counts
/// them again. Queries inside a batch keep their results, fetched by the
/// sub-statement's id.
pub async fn run(
    cfg: &Config,
    wh: &Warehouse,
    s3: &aws_sdk_s3::Client,
    region: &str,
    role_arn: &str,
) -> Result<LoadReport> {
    let source = inspect_source(s3, &cfg.s3.source, cfg.s3.manifest).await?;
    let mut report = LoadReport {
        table: Action::Reuse,
        source,
        mode: cfg.load.mode,
        loaded: 0,
        rows_before: 0,
        updated: 0,
        rows_in_table: 0,
        rejected: LoadErrors::default(),
        skipped: None,
        preview: ResultSet::default(),
    };
    // The requests `plan` shows, so that what it shows is what runs; each
    // result is then found by its statement's place in the plan.
    let fingerprint = Some(report.source.fingerprint.as_str());
    let plan = load_plan(cfg, region, role_arn, fingerprint).map_err(|m| verification(cfg, m))?;
    let mut replies: Vec<Vec<Finished>> = Vec::with_capacity(plan.requests.len());
    // The finished statement at `at`; a reply short of it is the service's
    // fault, said so, not a panic.
    let result = |replies: &[Vec<Finished>], at: At| -> Result<Finished> {
        replies
            .get(at.request)
            .and_then(|r| r.get(at.index))
            .cloned()
            .ok_or_else(|| {
                verification(
                    cfg,
                    format!(
                        "the Data API's reply to request {} lacked its statement {}",
                        at.request + 1,
                        at.index + 1
                    ),
                )
            })
    };

    // Append: the table and the ledger first, in a request of their own,
    // so that a repeated load copies nothing.
    if let Some(ledger) = plan.ledger {
        replies.push(wh.batch(&plan.requests[ledger.request]).await?);
        (report.table, report.rows_before) = prepared(wh, &replies, &plan, &result).await?;
        report.rows_in_table = report.rows_before;
        let earlier = wh.fetch(&result(&replies, ledger)?.id).await?;
        if let Some(when) = earlier.rows.first().and_then(|r| r.first()) {
            report.skipped = Some(format!("{when} UTC"));
            return Ok(report);
        }
    }
    // The COPY into the staging table (with the table's creation, but in
    // append mode), and upsert's checks of the staged rows.
    replies.push(copy_to_stage(wh, &plan.requests[plan.copy.request]).await?);
    if plan.ledger.is_none() {
        (report.table, report.rows_before) = prepared(wh, &replies, &plan, &result).await?;
    }
    let copied = result(&replies, plan.copy)?;
    report.loaded = copied.result_rows;
    if cfg.load.max_errors > 0 {
        report.rejected = load_errors(wh, copied.query_id).await?;
    }

    // Checks on the staged rows, before the target is touched.
    let checks = match plan.key_checks {
        Some((nulls, dups)) => Some((result(&replies, nulls)?, result(&replies, dups)?)),
        None => None,
    };
    if let Err(e) = check_staged(cfg, wh, checks, report.loaded).await {
        let stage = staging_table(&cfg.table.name);
        if let Err(drop) = wh.execute(&format!("DROP TABLE IF EXISTS {stage}")).await {
            tracing::warn!("could not drop the staging table {stage}: {drop}");
        }
        return Err(e);
    }

    // The swap: one transaction moves the rows in, counts them, and reads
    // the first rows to show (a query of its own would cost a round trip).
    replies.push(wh.batch(&plan.requests[plan.count_after.request]).await?);
    if let Some(replaced) = plan.replaced {
        report.updated = result(&replies, replaced)?.result_rows;
    }
    report.rows_in_table = scalar(wh, &result(&replies, plan.count_after)?).await?;
    verify(cfg, &report)?;
    // The load is done and verified: failing to fetch the rows to show
    // must not make it look failed (an empty preview; the CLI asks again).
    let preview = result(&replies, plan.preview)?;
    match wh.fetch(&preview.id).await {
        Ok(rows) => report.preview = rows,
        Err(e) => tracing::warn!("could not fetch the first rows of the table: {e}"),
    }
    Ok(report)
}

/// Whether the table was there before the first request, and its rows
/// then, fetched side by side.
async fn prepared(
    wh: &Warehouse,
    replies: &[Vec<Finished>],
    plan: &LoadPlan,
    result: &impl Fn(&[Vec<Finished>], At) -> Result<Finished>,
) -> Result<(Action, i64)> {
    let (exists, count) = (
        result(replies, plan.table_exists)?,
        result(replies, plan.count_before)?,
    );
    // Both awaited, and the first one's error reported if both fail, so
    // that the message does not depend on which reply came back first.
    let (existed, rows) = tokio::join!(scalar(wh, &exists), scalar(wh, &count));
    let (existed, rows) = (existed?, rows?);
    let action = if existed > 0 {
        Action::Reuse
    } else {
        Action::Create
    };
    Ok((action, rows))
}

/// The single number a finished `SELECT COUNT(*)` returned.
async fn scalar(wh: &Warehouse, done: &Finished) -> Result<i64> {
    Ok(wh.fetch(&done.id).await?.scalar_i64().unwrap_or_default())
}

/// Runs the load's first batch, which ends with the COPY (and, for upsert,
/// the checks of the staged rows). When the COPY fails, the error carries
/// the rejected rows, so it says which line and why.
async fn copy_to_stage(wh: &Warehouse, sqls: &[String]) -> Result<Vec<Finished>> {
    match wh.batch(sqls).await {
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

/// The checks on the staging table that must pass before the swap. For
/// upsert, `checks` are the finished [`upsert_checks_sql`] queries.
async fn check_staged(
    cfg: &Config,
    wh: &Warehouse,
    checks: Option<(Finished, Finished)>,
    loaded: i64,
) -> Result<()> {
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
    if let Some((nulls, dups)) = checks {
        let key: Vec<String> = cfg.load.key.iter().map(ToString::to_string).collect();
        let key = key.join(", ");
        let (null_rows, dups) = tokio::join!(scalar(wh, &nulls), wh.fetch(&dups.id));
        let (null_rows, dups) = (null_rows?, dups?);
        if null_rows > 0 {
            return Err(verification(
                cfg,
                format!(
                    "{null_rows} staged row(s) have a NULL in the key ({key}); a NULL key matches no row, so each \
                     re-run would add them again. Fix the data or [LOAD] KEY (the table was not changed)"
                ),
            ));
        }
        if !dups.rows.is_empty() {
            let shown: Vec<String> = dups
                .rows
                .iter()
                .filter_map(|r| {
                    // The query's last column is the count.
                    let (n, k) = r.split_last()?;
                    let k: Vec<String> = k.iter().map(ToString::to_string).collect();
                    Some(format!("({}) ×{n}", k.join(", ")))
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
///     preview: Default::default(),
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
