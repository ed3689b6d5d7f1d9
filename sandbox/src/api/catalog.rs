//! `ListDatabases`, `ListSchemas`, `ListTables` and `DescribeTable`: run as
//! ordinary statements against the catalogue, on the database's own role,
//! so they see exactly what SQL sees.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::results::column_json;
use super::{ApiError, Fields, required_target};
use crate::engine::{Engine, Rejected, Request, ResultData, Status};
use crate::pg::{Cell, Target};

pub(super) async fn list_databases(
    engine: &Arc<Engine>,
    f: &Fields<'_>,
) -> Result<Value, ApiError> {
    let target = required_target(f)?;
    let database = f
        .database("Database")?
        .ok_or_else(|| ApiError::validation("Database is required"))?;
    let generation = match &target {
        Target::Cluster(c) => engine.aws.check_cluster(c).await?.generation,
        Target::Workgroup(_) => String::new(),
    };
    engine
        .pg
        .ensure_database(&target, database, &generation)
        .await
        .map_err(|e| Rejected::Internal(e.to_string()))?;
    let dbs = engine
        .pg
        .list_databases(&target)
        .await
        .map_err(|e| Rejected::Internal(e.to_string()))?;
    Ok(json!({"Databases": dbs}))
}

pub(super) enum Catalog {
    Schemas,
    Tables,
    Describe,
}

/// `ListSchemas`, `ListTables` and `DescribeTable`: run as ordinary
/// statements against the catalogue, so they see exactly what SQL sees.
pub(super) async fn catalog(
    engine: &Arc<Engine>,
    f: &Fields<'_>,
    what: Catalog,
) -> Result<Value, ApiError> {
    let target = required_target(f)?;
    let connected = f.database("ConnectedDatabase")?;
    let database = connected
        .or(f.database("Database")?)
        .ok_or_else(|| ApiError::validation("Database is required"))?;
    // Patterns and names are bound as parameters, never pasted.
    let like = |field: &str| -> Result<String, ApiError> {
        Ok(f.sized(field, 0, 1024)?.unwrap_or("%").to_string())
    };
    let (sql, params) = match what {
        Catalog::Schemas => (
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE :pattern AND left(nspname, 3) <> 'pg_' AND nspname NOT IN ('information_schema', 'sandbox_sys') ORDER BY 1",
            vec![("pattern".to_string(), like("SchemaPattern")?)],
        ),
        Catalog::Tables => (
            "SELECT table_name::text, table_schema::text, CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END::text \
             FROM information_schema.tables WHERE table_schema LIKE :schema AND table_name LIKE :table \
             AND table_schema NOT IN ('pg_catalog', 'information_schema', 'sandbox_sys') ORDER BY 2, 1",
            vec![
                ("schema".to_string(), like("SchemaPattern")?),
                ("table".to_string(), like("TablePattern")?),
            ],
        ),
        Catalog::Describe => (
            "SELECT column_name::text, udt_name::text, COALESCE(character_maximum_length, 0)::int, COALESCE(numeric_precision, 0)::int, \
             COALESCE(numeric_scale, 0)::int, (is_nullable = 'YES')::bool, column_default::text, table_schema::text, table_name::text \
             FROM information_schema.columns WHERE table_schema LIKE :schema AND table_name = :table ORDER BY ordinal_position",
            vec![
                (
                    "schema".to_string(),
                    f.sized("Schema", 1, 1024)?.unwrap_or("public").to_string(),
                ),
                (
                    "table".to_string(),
                    f.sized("Table", 1, 1024)?
                        .ok_or_else(|| ApiError::validation("Table is required"))?
                        .to_string(),
                ),
            ],
        ),
    };
    let mut request = Request::new(target, database.to_string(), vec![sql.to_string()], false);
    request.db_user = f.db_user()?.map(str::to_string);
    request.params = params;
    let st = engine.submit(request).await?;
    let done = wait(engine, &st.id).await?;
    let rows = &done.rows;
    Ok(match what {
        Catalog::Schemas => {
            json!({"Schemas": rows.iter().filter_map(|r| r[0].as_text()).collect::<Vec<_>>()})
        }
        Catalog::Tables => {
            json!({"Tables": rows.iter().map(|r| json!({"name": r[0].as_text(), "schema": r[1].as_text(), "type": r[2].as_text()})).collect::<Vec<_>>()})
        }
        Catalog::Describe => json!({
            "TableName": f.string("Table")?,
            "ColumnList": rows.iter().map(|r| {
                let mut c = column_json(&r[0].as_text().unwrap_or_default(), &r[1].as_text().unwrap_or_default());
                // The query casts these to int, so they come back as longs.
                let long = |c: &Cell| if let Cell::Long(v) = c { *v } else { 0 };
                c["length"] = json!(long(&r[2]));
                c["precision"] = json!(long(&r[3]));
                c["scale"] = json!(long(&r[4]));
                c["nullable"] = json!(if r[5] == Cell::Bool(true) { 1 } else { 0 });
                if let Some(d) = r[6].as_text() { c["columnDefault"] = json!(d); }
                c["schemaName"] = json!(r[7].as_text());
                c["tableName"] = json!(r[8].as_text());
                c
            }).collect::<Vec<_>>(),
        }),
    })
}

/// Waits for an internal catalogue statement (these are quick).
async fn wait(engine: &Engine, id: &str) -> Result<Arc<ResultData>, ApiError> {
    let st = engine.wait_for(id, Duration::from_secs(60)).await?;
    match st.status {
        Status::Finished => Ok(st
            .subs
            .into_iter()
            .next()
            .and_then(|s| s.result)
            .unwrap_or_default()),
        Status::Failed | Status::Aborted => Err(ApiError::from(Rejected::Internal(
            st.error.unwrap_or_default(),
        ))),
        _ => Err(ApiError::from(Rejected::Internal(
            "catalogue query timed out".into(),
        ))),
    }
}
