//! SQL through the Redshift Data API: submitted, then waited on with the
//! Data API's long polling. No database driver, no open port, no password
//! on the client: the Data API fetches temporary credentials for `DbUser`.

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{Field, StatusString};

use crate::config::Settings;
use crate::error::{Error, aws};

/// Runs `sqls` as one batch ([`submit`]), in one transaction, and waits for
/// it to end.
///
/// `DescribeStatement` with `wait_time_seconds` answers as soon as the
/// statement ends, or after that many seconds (1 to 30) with the status it
/// has then: the loop turns more than once only for long statements.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let s = own_project::doc_cluster(&c, "doc-sql").await?;
/// use own_project::statement::{first_number, run_sql};
/// let done = run_sql(&c.data, &s, &["SELECT 6 * 7".to_string()]).await?;
/// assert_eq!(first_number(&c.data, done.sub_statements()[0].id()).await?, 42);
/// // A failed statement is an error carrying Redshift's message.
/// let failed = run_sql(&c.data, &s, &["SELECT 1 / 0".to_string()]).await;
/// assert!(failed.unwrap_err().to_string().contains("division by zero"));
/// # Ok(()) }
/// ```
// ANCHOR: run_sql
pub async fn run_sql(
    data: &aws_sdk_redshiftdata::Client,
    s: &Settings,
    sqls: &[String],
) -> Result<DescribeStatementOutput, Error> {
    let id = submit(data, s, sqls).await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let described = data
            .describe_statement()
            .id(&id)
            .wait_time_seconds(20)
            .send()
            .await;
        let d = described.map_err(aws("DescribeStatement"))?;
        match d.status() {
            Some(StatusString::Finished) => return Ok(d),
            Some(StatusString::Failed | StatusString::Aborted) => {
                let message = d.error().unwrap_or("no message").to_string();
                return Err(Error::Sql {
                    sql: sqls.join("; "),
                    message,
                });
            }
            // Past the deadline, cancel: never leave it running unseen.
            _ if Instant::now() > deadline => {
                let cancelled = data.cancel_statement().id(&id).send().await;
                cancelled.map_err(aws("CancelStatement"))?;
                return Err(Error::Timeout(format!("{id} ran 15 minutes; cancelled")));
            }
            _ => {}
        }
    }
}
// ANCHOR_END: run_sql

// ANCHOR: submit
/// Submits `sqls` as one batch and returns its statement id, at once: the
/// SQL has not run yet. Redshift runs a batch in one transaction.
pub async fn submit(
    data: &aws_sdk_redshiftdata::Client,
    s: &Settings,
    sqls: &[String],
) -> Result<String, Error> {
    let submitted = data
        .batch_execute_statement()
        .cluster_identifier(&s.cluster_id)
        .database(&s.db_name)
        .db_user(&s.db_user)
        .set_sqls(Some(sqls.to_vec()))
        .send()
        .await;
    let id = submitted.map_err(aws("BatchExecuteStatement"))?.id;
    Ok(id.ok_or("BatchExecuteStatement returned no id")?)
}
// ANCHOR_END: submit

/// The first column of the first row of statement `id`'s result, as a
/// number (`SELECT COUNT(*)`). A batch's results belong to its
/// sub-statements: `id` is then `batch-id:1`, `batch-id:2`, … (see
/// [`run_sql`]'s example).
// ANCHOR: first_number
pub async fn first_number(data: &aws_sdk_redshiftdata::Client, id: &str) -> Result<i64, Error> {
    let result = data.get_statement_result().id(id).send().await;
    let result = result.map_err(aws("GetStatementResult"))?;
    match result.records().first().and_then(|row| row.first()) {
        Some(Field::LongValue(n)) => Ok(*n),
        other => Err(Error::Missing(format!(
            "{id} returned {other:?}, not a number"
        ))),
    }
}
// ANCHOR_END: first_number
