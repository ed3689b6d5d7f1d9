//! Every SQL text the steps send, built from checked names and escaped
//! literals, never from pasted strings: the counterpart of the Python
//! tutorial's `sql_queries.py`.

use crate::config::Settings;
use crate::error::Error;

/// A name Redshift takes as it is: letters, digits and `_`, not starting
/// with a digit; quoted and folded to lower case. Anything else is refused
/// rather than quoted into SQL.
///
/// ```
/// use own_project::sql::ident;
/// assert_eq!(ident("Sold_On")?, "\"sold_on\"");
/// assert!(ident("sales; DROP TABLE x").is_err());
/// # Ok::<(), own_project::Error>(())
/// ```
pub fn ident(name: &str) -> Result<String, Error> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("\"{}\"", name.to_ascii_lowercase()))
    } else {
        Err(Error::Config(format!(
            "`{name}` is not a plain SQL name (letters, digits, _)"
        )))
    }
}

/// `[TABLE] NAME` as SQL: `"schema"."table"` or `"table"`, each part checked.
///
/// ```
/// # let s = own_project::config::Settings::read_with_password("../../examples/pipeline.cfg", String::new())?;
/// assert_eq!(own_project::sql::table_name(&s)?, "\"public\".\"sales\"");
/// # Ok::<(), own_project::Error>(())
/// ```
pub fn table_name(s: &Settings) -> Result<String, Error> {
    match s.table.split_once('.') {
        Some((schema, table)) => Ok(format!("{}.{}", ident(schema)?, ident(table)?)),
        None => ident(&s.table),
    }
}

/// A column type from a short list, so that no SQL rides in on a type.
///
/// ```
/// use own_project::sql::column_type;
/// assert_eq!(column_type("decimal(10,2)")?, "DECIMAL(10,2)");
/// assert!(column_type("INTEGER); DROP TABLE x; --").is_err());
/// # Ok::<(), own_project::Error>(())
/// ```
pub fn column_type(ty: &str) -> Result<String, Error> {
    let upper = ty.to_ascii_uppercase();
    let base = upper.split(['(', ' ']).next().unwrap_or_default();
    let known = [
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "DECIMAL",
        "REAL",
        "DOUBLE",
        "BOOLEAN",
        "CHAR",
        "VARCHAR",
        "DATE",
        "TIMESTAMP",
        "TIMESTAMPTZ",
    ];
    let allowed = |c: char| c.is_ascii_alphanumeric() || " (),".contains(c);
    if known.contains(&base) && upper.chars().all(allowed) {
        Ok(upper)
    } else {
        Err(Error::Config(format!(
            "`{ty}` is not a column type these steps know"
        )))
    }
}

/// A string literal: quotes doubled, and backslashes too, since Redshift
/// reads `\` as an escape inside literals.
///
/// ```
/// assert_eq!(own_project::sql::literal(r"it's a \ test"), r"'it''s a \\ test'");
/// ```
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Step 4's SQL: the table, unless it exists.
///
/// ```
/// # let s = own_project::config::Settings::read_with_password("../../examples/pipeline.cfg", String::new())?;
/// let ddl = own_project::sql::create_table_sql(&s)?;
/// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"sales\" (\n  \"sale_id\" INTEGER NOT NULL,"));
/// # Ok::<(), own_project::Error>(())
/// ```
// ANCHOR: create_table_sql
pub fn create_table_sql(s: &Settings) -> Result<String, Error> {
    let mut cols = Vec::new();
    for (name, ty) in &s.columns {
        cols.push(format!("  {} {}", ident(name)?, column_type(ty)?));
    }
    let table = table_name(s)?;
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n{}\n)",
        cols.join(",\n")
    ))
}
// ANCHOR_END: create_table_sql

/// Step 5's SQL: `COPY` from S3 as the role, CSV with a header.
///
/// ```
/// # let s = own_project::config::Settings::read_with_password("../../examples/pipeline.cfg", String::new())?;
/// let copy = own_project::sql::copy_sql(&s, "arn:aws:iam::123456789012:role/r")?;
/// assert!(copy.starts_with("COPY \"public\".\"sales\" FROM 's3://s3-to-redshift-demo-data/sales/sales.csv'"));
/// # Ok::<(), own_project::Error>(())
/// ```
// ANCHOR: copy_sql
pub fn copy_sql(s: &Settings, role_arn: &str) -> Result<String, Error> {
    let source = format!("s3://{}/{}", s.bucket, s.key);
    Ok(format!(
        "COPY {} FROM {} IAM_ROLE {} REGION {} CSV IGNOREHEADER {} EMPTYASNULL DATEFORMAT 'auto'",
        table_name(s)?,
        literal(&source),
        literal(role_arn),
        literal(&s.region),
        s.ignore_header
    ))
}
// ANCHOR_END: copy_sql

/// Step 6's SQL: the rows the table holds.
///
/// ```
/// # let s = own_project::config::Settings::read_with_password("../../examples/pipeline.cfg", String::new())?;
/// assert_eq!(own_project::sql::count_sql(&s)?, "SELECT COUNT(*) FROM \"public\".\"sales\"");
/// # Ok::<(), own_project::Error>(())
/// ```
pub fn count_sql(s: &Settings) -> Result<String, Error> {
    Ok(format!("SELECT COUNT(*) FROM {}", table_name(s)?))
}
