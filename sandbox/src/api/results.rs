//! `GetStatementResult` and `GetStatementResultV2`: one page of a finished
//! statement's stored result. The result is shared with the statement's
//! record (an `Arc`), so a page costs its own rows and no more, whatever
//! the page number or the result's size.

use serde_json::{Value, json};

use super::{ApiError, Fields, PAGE_ROWS, statement};
use crate::engine::{Engine, Rejected, Status};
use crate::pg::Cell;

pub(super) fn column_json(name: &str, type_name: &str) -> Value {
    json!({
        "name": name, "label": name, "typeName": type_name,
        "isCaseSensitive": matches!(type_name, "varchar" | "bpchar" | "text"),
        "isCurrency": false,
        "isSigned": matches!(type_name, "int2" | "int4" | "int8" | "float4" | "float8" | "numeric"),
        "nullable": 1, "length": 0, "precision": 0, "scale": 0,
        "schemaName": "", "tableName": ""
    })
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Null => json!({"isNull": true}),
        Cell::Long(v) => json!({"longValue": v}),
        Cell::Double(v) => json!({"doubleValue": v}),
        Cell::Bool(v) => json!({"booleanValue": v}),
        Cell::Text(s) => json!({"stringValue": s}),
    }
}

fn csv_field(c: &Cell) -> String {
    match c.as_text() {
        None => String::new(),
        Some(s) if s.contains([',', '"', '\n', '\r']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Some(s) => s,
    }
}

pub(super) async fn get_result(
    engine: &Engine,
    f: &Fields<'_>,
    v2: bool,
) -> Result<Value, ApiError> {
    // With WaitTimeSeconds, the page comes once the statement has ended.
    let (id, st) = statement(engine, f).await?;
    let sub = if st.request.is_batch {
        st.subs.iter().find(|s| s.id == id)
    } else {
        st.subs.first()
    }
    .ok_or_else(|| {
        ApiError::validation(format!(
            "Query {id} is a batch: fetch the results of its sub-statements ({id}:1, …)"
        ))
    })?;
    if sub.status != Status::Finished {
        return Err(ApiError::from(Rejected::NotFound(format!(
            "Query does not have result. Please check query status with DescribeStatement. Query id: {id}"
        ))));
    }
    let Some(result) = &sub.result else {
        return Err(ApiError::from(Rejected::NotFound(format!(
            "Query does not have result. Please check query status with DescribeStatement. Query id: {id}"
        ))));
    };
    let start = f.offset(result.rows.len())?;
    let end = start.saturating_add(PAGE_ROWS).min(result.rows.len());
    let page = &result.rows[start..end];
    let mut out = json!({
        "ColumnMetadata": result.columns.iter().map(|c| column_json(&c.name, &c.type_name)).collect::<Vec<_>>(),
        "TotalNumRows": result.rows.len(),
    });
    if v2 {
        let mut csv = String::new();
        if start == 0 {
            csv.push_str(
                &result
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            csv.push('\n');
        }
        for row in page {
            csv.push_str(&row.iter().map(csv_field).collect::<Vec<_>>().join(","));
            csv.push('\n');
        }
        out["Records"] = json!([{"CSVRecords": csv}]);
        out["ResultFormat"] = json!("CSV");
    } else {
        out["Records"] = page
            .iter()
            .map(|r| r.iter().map(cell_json).collect::<Vec<_>>())
            .collect();
    }
    if end < result.rows.len() {
        out["NextToken"] = json!(end.to_string());
    }
    Ok(out)
}
