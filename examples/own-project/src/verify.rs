//! Step 6: checking the load: the rows the table holds.

use crate::config::Settings;
use crate::error::Error;
use crate::sql::count_sql;
use crate::statement::{first_number, run_sql};

/// The rows the table of `s` holds, from `SELECT COUNT(*)`.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let s = own_project::doc_cluster(&c, "doc-verify").await?;
/// # own_project::table::create_table(&c.data, &s).await?;
/// # let role = own_project::iam_role::create_role(&c.iam, &s.role_name).await?;
/// let loaded = own_project::copy::copy_from_s3(&c.data, &s, &role).await?;
/// assert_eq!(own_project::verify::count_rows(&c.data, &s).await?, loaded);
/// # Ok(()) }
/// ```
// ANCHOR: count_rows
pub async fn count_rows(data: &aws_sdk_redshiftdata::Client, s: &Settings) -> Result<i64, Error> {
    let done = run_sql(data, s, &[count_sql(s)?]).await?;
    // The batch's one result is its sub-statement's.
    let first = done
        .sub_statements()
        .first()
        .ok_or("the batch has no statement")?;
    first_number(data, first.id()).await
}
// ANCHOR_END: count_rows
