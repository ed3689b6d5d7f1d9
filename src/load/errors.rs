//! The rows a failed `COPY` rejected, read from `STL_LOAD_ERRORS` (or
//! `SYS_LOAD_ERROR_DETAIL` on Serverless).

use crate::error::Result;
use crate::warehouse::{Target, Warehouse};

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
