//! The rows a `COPY` rejected, recorded in `stl_load_errors` and
//! `sys_load_error_detail` as Redshift records them.

use super::*;

/// A column of the target table, as PostgreSQL describes it.
#[derive(Clone, Debug)]
pub(super) struct TargetColumn {
    pub(super) name: String,
    pub(super) pg_type: String,
    /// Declared length for char types, (precision, scale) for numeric.
    pub(super) length: Option<i32>,
    pub(super) scale: Option<i32>,
    pub(super) not_null: bool,
}

/// One rejected row.
#[derive(Clone, Debug)]
pub(super) struct LoadError {
    pub(super) file: String,
    pub(super) line: i64,
    pub(super) column: String,
    pub(super) pg_type: String,
    pub(super) length: String,
    pub(super) position: i32,
    pub(super) raw_line: String,
    pub(super) raw_value: String,
    pub(super) code: i32,
    pub(super) reason: String,
}

/// Writes the rejected rows to `stl_load_errors` and `sys_load_error_detail`
/// on a connection of their own: they must outlive the COPY's rollback, as
/// they do in Redshift. An administrative one: the database's own role can
/// only read these tables.
pub(super) async fn record_errors(
    ctx: &CopyContext<'_>,
    query_id: i64,
    qualified: &str,
    errors: &[LoadError],
) {
    if errors.is_empty() {
        return;
    }
    let db = ctx.target.pg_database(ctx.database);
    let client = match ctx.pg.admin(&db).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot record load errors: {e}");
            return;
        }
    };
    let table_id: i64 = client
        .query_one(
            // The admin connection's path is pg_catalog alone (see
            // `Pg::admin`): an unqualified name is the user's public one.
            "SELECT COALESCE(pg_catalog.to_regclass($1), \
             pg_catalog.to_regclass('public.' || $1))::oid::bigint",
            &[&qualified],
        )
        .await
        .ok()
        .and_then(|r| r.try_get::<_, Option<i64>>(0).ok().flatten())
        .unwrap_or(0);
    for e in errors {
        let r1 = client
            .execute(
                "INSERT INTO sandbox_sys.stl_load_errors (userid, slice, tbl, starttime, session, query, filename, line_number, colname, type, col_length, position, raw_line, raw_field_value, err_code, err_reason, is_partial, start_offset) \
                 VALUES (100, 0, $1::bigint::int, pg_catalog.now(), pg_catalog.pg_backend_pid(), $2::bigint::int, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0)",
                &[&table_id, &query_id, &e.file, &e.line, &e.column, &e.pg_type, &e.length, &e.position, &e.raw_line, &e.raw_value, &e.code, &e.reason],
            )
            .await;
        let r2 = client
            .execute(
                "INSERT INTO sandbox_sys.sys_load_error_detail (user_id, query_id, transaction_id, session_id, database_name, table_id, start_time, file_name, line_number, column_name, column_type, column_length, position, error_code, error_message) \
                 VALUES (100, $1, 0, pg_catalog.pg_backend_pid(), $2, $3::bigint::int, pg_catalog.now(), $4, $5, $6, $7, $8, $9, $10, $11)",
                &[&query_id, &ctx.database, &table_id, &e.file, &e.line, &e.column, &e.pg_type, &e.length, &e.position, &e.code, &e.reason],
            )
            .await;
        if let Err(err) = r1.and(r2) {
            tracing::warn!("cannot record a load error: {err}");
        }
    }
}
