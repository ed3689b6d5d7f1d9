//! Step 4: the table the rows go into.

use crate::config::Settings;
use crate::error::Error;
use crate::sql::create_table_sql;
use crate::statement::run_sql;

/// Creates the table of `s` unless it exists.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let s = own_project::doc_cluster(&c, "doc-table").await?;
/// own_project::table::create_table(&c.data, &s).await?;
/// // Safe to run again: CREATE TABLE IF NOT EXISTS.
/// own_project::table::create_table(&c.data, &s).await?;
/// # Ok(()) }
/// ```
// ANCHOR: create_table
pub async fn create_table(data: &aws_sdk_redshiftdata::Client, s: &Settings) -> Result<(), Error> {
    run_sql(data, s, &[create_table_sql(s)?]).await?;
    Ok(())
}
// ANCHOR_END: create_table
