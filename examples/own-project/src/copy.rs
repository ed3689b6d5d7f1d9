//! Step 5: `COPY` from S3 into the table, as the role.

use crate::config::Settings;
use crate::error::Error;
use crate::sql::{copy_sql, table_name};
use crate::statement::run_sql;

/// Replaces the table's rows with the data under `s3://bucket/key`: a
/// `DELETE` and the `COPY` in one batch, one transaction, so running again
/// replaces the rows instead of doubling them, and a failed `COPY` keeps
/// the old ones. Returns the rows the `COPY` loaded.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let s = own_project::doc_cluster(&c, "doc-copy").await?;
/// # own_project::table::create_table(&c.data, &s).await?;
/// # let role = own_project::iam_role::create_role(&c.iam, &s.role_name).await?;
/// let loaded = own_project::copy::copy_from_s3(&c.data, &s, &role).await?;
/// assert_eq!(loaded, 10);
/// # Ok(()) }
/// ```
// ANCHOR: copy_from_s3
pub async fn copy_from_s3(
    data: &aws_sdk_redshiftdata::Client,
    s: &Settings,
    role_arn: &str,
) -> Result<i64, Error> {
    let load = [
        format!("DELETE FROM {}", table_name(s)?),
        copy_sql(s, role_arn)?,
    ];
    let done = run_sql(data, s, &load).await?;
    // A finished COPY's row count is the rows it loaded.
    let copy = done
        .sub_statements()
        .get(1)
        .ok_or("the batch lost its COPY")?;
    Ok(copy.result_rows())
}
// ANCHOR_END: copy_from_s3
