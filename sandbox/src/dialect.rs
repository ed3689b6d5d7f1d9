//! Redshift's SQL dialect on PostgreSQL: what readers type after a load.
//!
//! Two halves. Functions PostgreSQL lacks (`DATEADD`, `NVL`'s cousins,
//! `LEN`, `JSON_EXTRACT_PATH_TEXT`, …) and the system views (`svv_tables`,
//! `pg_table_def`, …) are SQL, in `dialect.sql`, installed in every database
//! the sandbox creates. What SQL functions cannot express is rewritten here,
//! on tokens, before the statement reaches PostgreSQL:
//!
//! - syntax: `SELECT TOP n`, `APPROXIMATE COUNT`, `SYSDATE` without
//!   parentheses, datepart words written bare (`DATEADD(day, …)`,
//!   `EXTRACT(dw FROM …)`), casts to `SUPER` and `VARCHAR(MAX)`;
//! - functions whose arguments do not fit a PostgreSQL signature: `NVL`,
//!   `NVL2`, `DECODE`, `MEDIAN`, `LISTAGG … WITHIN GROUP`;
//! - commands with no PostgreSQL meaning (`VACUUM`, `ANALYZE COMPRESSION`),
//!   accepted as no-ops with a log line.
//!
//! Why tokens, not text: string literals and quoted names are never touched.
//! And COPY never comes here: the engine hands it to `copy` first, so the
//! layer costs the load path nothing.
//!
//! The support table in `sandbox/dialect.md` lists what is served, accepted
//! as a no-op or refused; `tests/dialect.rs` runs every line of it.

use crate::translate::{Kind, Token, group_end, next_significant, tokenize};

/// The SQL that installs the functions and views (run by `pg` once per
/// database and sandbox run).
pub const INSTALL_SQL: &str = include_str!("dialect.sql");

/// The support table: what the sandbox serves, accepts as a no-op or
/// refuses. The refusals below are read from it, and the tests run each line.
pub const SUPPORT_TABLE: &str = include_str!("../dialect.md");

/// The statement PostgreSQL runs for a Redshift command that has no meaning
/// here: it succeeds and returns nothing, as the command does on Redshift.
const NO_OP: &str = "DO $$ BEGIN END $$";

/// Rewrites `tokens` in place; returns notes for the log (what was accepted
/// as a no-op). An error is a clause the sandbox cannot serve, in words a
/// reader can act on.
pub fn rewrite(tokens: &mut Vec<Token>) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    if let Some(note) = no_op(tokens) {
        notes.push(note);
        *tokens = tokenize(NO_OP).expect("the no-op statement tokenizes");
        return Ok(notes);
    }
    if let Some(sql) = show(tokens) {
        *tokens = tokenize(&sql?).map_err(|e| format!("ERROR: {e}"))?;
        return Ok(notes);
    }
    if let Some(sql) = append_from(tokens) {
        *tokens = tokenize(&sql?).map_err(|e| format!("ERROR: {e}"))?;
        return Ok(notes);
    }
    strip_analyze_columns(tokens);
    escape_strings(tokens);
    let columns = column_list(tokens);
    let mut i = 0;
    while i < tokens.len() {
        i = match columns {
            Some(open) if at_column_name(tokens, i, open) => i + 1,
            _ => rewrite_at(tokens, i)?,
        };
    }
    Ok(notes)
}

/// A PostgreSQL string literal of `s` (the SQL this module writes runs with
/// standard strings: only the quote is doubled).
fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `SHOW DATABASES`, `SHOW SCHEMAS FROM DATABASE d`, `SHOW TABLES FROM
/// SCHEMA d.s` and `SHOW COLUMNS FROM TABLE d.s.t`, each with an optional
/// `LIKE 'pattern'` and `LIMIT n`, as queries of the catalogue with the
/// columns Redshift's SHOW commands return. `None` for any other statement.
fn show(tokens: &[Token]) -> Option<Result<String, String>> {
    let sig: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Space).collect();
    if !sig.first()?.is_word("show") {
        return None;
    }
    let what = sig.get(1)?.text.to_ascii_lowercase();
    if !["databases", "schemas", "tables", "columns"].contains(&what.as_str()) {
        return None;
    }
    Some(show_sql(&what, &sig[2..]))
}

fn show_sql(what: &str, rest: &[&Token]) -> Result<String, String> {
    let syntax = || format!("ERROR: syntax error in SHOW {}", what.to_ascii_uppercase());
    let mut k = 0;
    // `FROM DATABASE|SCHEMA|TABLE name.name…`, as many parts as the object.
    let mut names = Vec::new();
    let (keyword, parts) = match what {
        "schemas" => ("database", 1),
        "tables" => ("schema", 2),
        "columns" => ("table", 3),
        _ => ("", 0),
    };
    if parts > 0 {
        if !(rest.first().is_some_and(|t| t.is_word("from"))
            && rest.get(1).is_some_and(|t| t.is_word(keyword)))
        {
            return Err(syntax());
        }
        k = 2;
        loop {
            names.push(rest.get(k).and_then(|t| t.ident()).ok_or_else(syntax)?);
            k += 1;
            if rest.get(k).is_some_and(|t| t.text == ".") {
                k += 1;
            } else {
                break;
            }
        }
        if names.len() != parts {
            return Err(syntax());
        }
    }
    let mut filter = String::new();
    if rest.get(k).is_some_and(|t| t.is_word("like")) {
        let pattern = rest
            .get(k + 1)
            .and_then(|t| t.string_value())
            .ok_or_else(syntax)?;
        filter = pg_literal(&pattern);
        k += 2;
    }
    let mut limit = String::new();
    if rest.get(k).is_some_and(|t| t.is_word("limit")) {
        let n: u64 = rest
            .get(k + 1)
            .and_then(|t| t.text.parse().ok())
            .ok_or_else(syntax)?;
        limit = format!(" LIMIT {n}");
        k += 2;
    }
    if k < rest.len() && !(k + 1 == rest.len() && rest[k].text == ";") {
        return Err(syntax());
    }
    let like = |column: &str| {
        if filter.is_empty() {
            String::new()
        } else {
            format!(" AND {column} LIKE {filter}")
        }
    };
    // The database named must be the one the request runs in: the sandbox
    // keeps each database apart, as separate PostgreSQL databases.
    let db = names.first().map(|d| pg_literal(d));
    let same_db = db.map_or(String::new(), |d| {
        format!(" AND {d} = sandbox_sys.current_database()::text")
    });
    let part = |n: usize| pg_literal(&names[n]);
    Ok(match what {
        "databases" => format!(
            "SELECT d::varchar AS database_name, 'awsuser'::varchar AS database_owner, \
             'local'::varchar AS database_type, NULL::varchar AS database_acl, \
             NULL::varchar AS parameters, 'Snapshot Isolation'::varchar AS database_isolation_level \
             FROM (SELECT substr(datname, length(pg_catalog.current_database()) \
                     - length(sandbox_sys.current_database()) + 1) AS d \
                   FROM pg_database \
                   WHERE left(datname, length(pg_catalog.current_database()) - length(sandbox_sys.current_database())) \
                       = left(pg_catalog.current_database(), length(pg_catalog.current_database()) - length(sandbox_sys.current_database()))) AS dbs \
             WHERE true{} ORDER BY 1{limit}",
            like("d")
        ),
        "schemas" => format!(
            "SELECT sandbox_sys.current_database()::varchar AS database_name, nspname::varchar AS schema_name, \
             pg_get_userbyid(nspowner)::varchar AS schema_owner, 'local'::varchar AS schema_type, \
             NULL::varchar AS schema_acl, NULL::varchar AS source_database, NULL::varchar AS schema_option \
             FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'sandbox_sys'){same_db}{} \
             ORDER BY 2{limit}",
            like("nspname")
        ),
        "tables" => format!(
            "SELECT sandbox_sys.current_database()::varchar AS database_name, table_schema::varchar AS schema_name, \
             table_name::varchar, CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END::varchar AS table_type, \
             NULL::varchar AS table_acl, NULL::varchar AS remarks \
             FROM information_schema.tables WHERE table_schema = {}{same_db}{} ORDER BY 3{limit}",
            part(1),
            like("table_name")
        ),
        _ => format!(
            "SELECT sandbox_sys.current_database()::varchar AS database_name, table_schema::varchar AS schema_name, \
             table_name::varchar, column_name::varchar, ordinal_position::int, column_default::varchar, \
             is_nullable::varchar, data_type::varchar, character_maximum_length::int, \
             numeric_precision::int, numeric_scale::int, NULL::varchar AS remarks \
             FROM information_schema.columns WHERE table_schema = {} AND table_name = {}{same_db}{} \
             ORDER BY ordinal_position{limit}",
            part(1),
            part(2),
            like("column_name")
        ),
    })
}

/// `ALTER TABLE target APPEND FROM source`: the source's rows move to the
/// target (which has the same columns), and the source is left empty, in
/// one statement.
fn append_from(tokens: &[Token]) -> Option<Result<String, String>> {
    let sig: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Space).collect();
    if !(sig.first()?.is_word("alter") && sig.get(1)?.is_word("table")) {
        return None;
    }
    let at = sig.iter().position(|t| t.is_word("append"))?;
    if !sig.get(at + 1)?.is_word("from") {
        return None;
    }
    // A table name: names and dots only (IGNOREEXTRA and FILLTARGET, which
    // match columns by name, are not served).
    let name = |from: usize, to: usize| -> Option<String> {
        let parts = sig.get(from..to)?;
        let plain = parts.iter().enumerate().all(|(n, t)| match n % 2 {
            0 => matches!(t.kind, Kind::Word | Kind::QuotedIdent),
            _ => t.text == ".",
        });
        (plain && parts.len() % 2 == 1).then(|| parts.iter().map(|t| t.text.as_str()).collect())
    };
    let end = sig.len() - usize::from(sig.last().is_some_and(|t| t.text == ";"));
    let (Some(target), Some(source)) = (name(2, at), name(at + 2, end)) else {
        return Some(Err(
            "ERROR: the sandbox serves ALTER TABLE target APPEND FROM source, without \
             IGNOREEXTRA or FILLTARGET (see the support table, sandbox/dialect.md)"
                .into(),
        ));
    };
    Some(Ok(format!(
        "WITH moved AS (DELETE FROM {source} RETURNING *) INSERT INTO {target} SELECT * FROM moved"
    )))
}

/// Redshift reads backslash escapes in every string literal (as PostgreSQL
/// 8 did); PostgreSQL today reads them only in `E'…'` literals
/// (`standard_conforming_strings`). So a literal holding a backslash gets
/// the `E`, and means on the sandbox what it means on Redshift: `'C:\\tmp'`
/// is `C:\tmp` on both, and a literal the loader's `quote_literal` built
/// reads back as its value. (Literals with no backslash read the same
/// either way, and are left as they are.)
fn escape_strings(tokens: &mut [Token]) {
    for i in 0..tokens.len() {
        let t = &tokens[i];
        if t.kind != Kind::Str || !t.text.starts_with('\'') || !t.text.contains('\\') {
            continue;
        }
        // Already an `E'…'` (or `U&'…'`) literal: PostgreSQL syntax, kept.
        let prefixed = i > 0
            && tokens[i - 1].kind == Kind::Word
            && ["e", "u&"]
                .iter()
                .any(|p| tokens[i - 1].text.eq_ignore_ascii_case(p));
        if !prefixed {
            // With a space: `LIKE'a\_b'` must not become `LIKEE'…'`.
            tokens[i].text.insert_str(0, " E");
        }
    }
}

/// The `(` of `CREATE TABLE name (…)`'s column list: a column may be called
/// `sysdate` or `nvl`, and is then a name. Only a `(` right after the table
/// name counts (in `CREATE TABLE t AS SELECT …` every word is SQL). No
/// rewrite happens before it, so its index stays valid.
fn column_list(tokens: &[Token]) -> Option<usize> {
    let sig = significant_indices(tokens);
    if !sig.first().is_some_and(|&i| tokens[i].is_word("create")) {
        return None;
    }
    let table = sig
        .iter()
        .take(4)
        .position(|&i| tokens[i].is_word("table"))?;
    let mut k = table + 1;
    while sig
        .get(k)
        .is_some_and(|&i| ["if", "not", "exists"].iter().any(|w| tokens[i].is_word(w)))
    {
        k += 1;
    }
    // The name, possibly `schema.table`.
    k += 1;
    while sig.get(k).is_some_and(|&i| tokens[i].text == ".") {
        k += 2;
    }
    sig.get(k).copied().filter(|&i| tokens[i].text == "(")
}

/// Whether token `i` stands where a column name does in the column list
/// opened at `open`: first in it, or after one of its own commas.
fn at_column_name(tokens: &[Token], i: usize, open: usize) -> bool {
    if tokens[i].kind != Kind::Word || i <= open {
        return false;
    }
    let Some(p) = previous_significant(tokens, i) else {
        return false;
    };
    if p != open && tokens[p].text != "," {
        return false;
    }
    enclosing_open(tokens, i) == Some(open)
}

/// The `(` whose group holds token `i`, if any.
fn enclosing_open(tokens: &[Token], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for k in (0..i).rev() {
        match tokens[k].text.as_str() {
            ")" => depth += 1,
            "(" if depth == 0 => return Some(k),
            "(" => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The index after the `)` closing the group opened at `open`; `None` when
/// the statement ends first (PostgreSQL then reports the syntax error, and
/// nothing here slices past the end).
fn closed_group_end(tokens: &[Token], open: usize) -> Option<usize> {
    let end = group_end(tokens, open);
    (end <= tokens.len() && end > open + 1 && tokens[end - 1].text == ")").then_some(end)
}

/// PostgreSQL's "function x(…) does not exist", for a Redshift function the
/// support table lists as refused, in Redshift's terms: the reader learns
/// that the name is right and the sandbox lacks it, not that it is unknown.
pub fn unsupported(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    if *db.code() != tokio_postgres::error::SqlState::UNDEFINED_FUNCTION {
        return None;
    }
    let name = db.message().strip_prefix("function ")?.split('(').next()?;
    let name = name.rsplit('.').next()?.to_ascii_uppercase();
    refused_functions().any(|f| f == name).then(|| {
        format!(
            "ERROR: {name} is a Redshift function the sandbox does not serve; \
             sandbox/dialect.md lists what it serves"
        )
    })
}

/// One line of the support table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupportLine {
    /// What Redshift calls it, as the table writes it (`` `DECODE` (default) ``).
    pub name: String,
    /// `function`, `aggregate`, `clause`, `command`, `system view`, …
    pub kind: String,
    /// `served`, `no-op` or `refused`.
    pub status: String,
    /// The example statement.
    pub example: String,
    /// The first value of its first row, when the table gives one.
    pub result: Option<String>,
}

/// The support table's lines, read by the sandbox (its refusals) and by the
/// tests (every line run); an error names a line that is not five cells
/// with a quoted example.
pub fn support_table() -> Result<Vec<SupportLine>, String> {
    let code = |c: &str| {
        c.strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_string)
    };
    SUPPORT_TABLE
        .lines()
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_start_matches('|')
                .trim_end_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect();
            let [name, kind, status, example, result] = cells[..] else {
                return Err(format!("a line of dialect.md has 5 cells: {line}"));
            };
            Ok(SupportLine {
                name: name.to_string(),
                kind: kind.to_string(),
                status: status.to_string(),
                example: code(example).ok_or_else(|| format!("no example in: {line}"))?,
                result: code(result),
            })
        })
        .collect()
}

/// The function and aggregate names the support table lists as refused.
fn refused_functions() -> impl Iterator<Item = String> {
    support_table()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| matches!(l.kind.as_str(), "function" | "aggregate") && l.status == "refused")
        .map(|l| l.name.trim_matches('`').to_string())
}

/// `VACUUM …` and `ANALYZE COMPRESSION …`: sorting and compression have no
/// meaning on one PostgreSQL server.
fn no_op(tokens: &[Token]) -> Option<String> {
    let sig = significant_indices(tokens);
    let word = |k: usize, w: &str| sig.get(k).is_some_and(|&i| tokens[i].is_word(w));
    if word(0, "vacuum") {
        return Some("VACUUM accepted as a no-op (PostgreSQL needs no sorting here)".into());
    }
    if word(0, "analyze") && word(1, "compression") {
        return Some("ANALYZE COMPRESSION accepted as a no-op (no column encodings here)".into());
    }
    None
}

/// `ANALYZE t PREDICATE COLUMNS` / `ALL COLUMNS`: PostgreSQL analyses all.
fn strip_analyze_columns(tokens: &mut Vec<Token>) {
    let sig = significant_indices(tokens);
    if !sig.first().is_some_and(|&i| tokens[i].is_word("analyze")) {
        return;
    }
    for w in sig.windows(2).rev() {
        let (a, b) = (&tokens[w[0]], &tokens[w[1]]);
        if (a.is_word("predicate") || a.is_word("all")) && b.is_word("columns") {
            tokens.drain(w[0]..=w[1]);
            return;
        }
    }
}

/// Rewrites what starts at token `i`, if anything; returns where to go on.
fn rewrite_at(tokens: &mut Vec<Token>, i: usize) -> Result<usize, String> {
    let t = &tokens[i];
    if t.kind == Kind::Punct && t.text == "::" {
        cast_type(tokens, i);
        return Ok(i + 1);
    }
    // `CAST(x AS type)`: the same types as after `::`.
    if t.is_word("as")
        && enclosing_open(tokens, i)
            .and_then(|o| previous_significant(tokens, o))
            .is_some_and(|c| tokens[c].is_word("cast"))
    {
        cast_type(tokens, i);
        return Ok(i + 1);
    }
    if t.kind != Kind::Word {
        return Ok(i + 1);
    }
    let word = t.text.to_ascii_lowercase();
    let after_dot = previous_significant(tokens, i).is_some_and(|p| tokens[p].text == ".");
    if after_dot {
        return Ok(i + 1);
    }
    let open = next_significant(tokens, i + 1).filter(|&o| tokens[o].text == "(");
    if open.is_some_and(|o| closed_group_end(tokens, o).is_none()) {
        return Ok(i + 1);
    }
    match (word.as_str(), open) {
        ("select", _) => top(tokens, i),
        ("approximate", _) => Ok(approximate(tokens, i)),
        ("sysdate", None) => {
            tokens[i] = word_token("sysdate()");
            Ok(i + 1)
        }
        ("nvl", Some(_)) => {
            tokens[i] = word_token("coalesce");
            Ok(i + 1)
        }
        ("nvl2", Some(o)) => nvl2(tokens, i, o),
        ("decode", Some(o)) => decode(tokens, i, o),
        (
            "dateadd" | "datediff" | "date_part" | "datepart" | "pgdate_part" | "date_trunc",
            Some(o),
        ) => {
            quote_datepart(tokens, o);
            if matches!(word.as_str(), "date_part" | "datepart" | "pgdate_part") {
                tokens[i] = word_token("sandbox_sys.date_part");
            }
            Ok(i + 1)
        }
        ("extract", Some(o)) => extract(tokens, i, o),
        // Who and where: the request's DbUser and Database, not the
        // sandbox's PostgreSQL role and database. Not in the commands that
        // name a role (`ALTER USER CURRENT_USER …`), where it is PostgreSQL's.
        ("current_user" | "session_user" | "user", None) if !names_a_role(tokens) => {
            tokens[i] = word_token("sandbox_sys.db_user()");
            Ok(i + 1)
        }
        ("current_database" | "version", Some(_)) => {
            tokens[i] = word_token(&format!("sandbox_sys.{word}"));
            Ok(i + 1)
        }
        ("median", Some(o)) => median(tokens, i, o),
        ("percentile_cont", Some(o)) => percentile_cont(tokens, i, o),
        ("ratio_to_report", Some(o)) => ratio_to_report(tokens, i, o),
        ("array", Some(o)) => Ok(super_array(tokens, i, o)),
        ("convert", Some(o)) => convert(tokens, i, o),
        ("listagg", Some(o)) => listagg(tokens, i, o),
        _ => Ok(i + 1),
    }
}

/// Whether the statement is one whose `CURRENT_USER` names a PostgreSQL
/// role (`CREATE`, `ALTER`, `DROP`, `GRANT`, `REVOKE`, `SET`, …): only in
/// queries and data changes does it become the request's user.
fn names_a_role(tokens: &[Token]) -> bool {
    let first = tokens.iter().find(|t| t.kind != Kind::Space);
    !first.is_some_and(|t| {
        [
            "select", "with", "insert", "update", "delete", "values", "(",
        ]
        .iter()
        .any(|w| t.text.eq_ignore_ascii_case(w))
    })
}

/// `SELECT [DISTINCT] TOP n …` → `SELECT [DISTINCT] … LIMIT n`, the limit
/// placed where that `SELECT`'s query ends (its closing parenthesis, or the
/// statement's end).
fn top(tokens: &mut Vec<Token>, select: usize) -> Result<usize, String> {
    let mut k = next_significant(tokens, select + 1);
    if let Some(d) = k.filter(|&d| tokens[d].is_word("distinct") || tokens[d].is_word("all")) {
        k = next_significant(tokens, d + 1);
    }
    let Some(top) = k.filter(|&t| tokens[t].is_word("top")) else {
        return Ok(select + 1);
    };
    let n = next_significant(tokens, top + 1)
        .filter(|&n| tokens[n].kind == Kind::Number)
        .ok_or("ERROR: TOP takes a whole number of rows, e.g. SELECT TOP 10 * FROM t")?;
    let limit = tokens[n].text.clone();
    let end = query_end(tokens, n + 1);
    let tail = tokenize(&format!(" LIMIT {limit} ")).expect("LIMIT tokenizes");
    tokens.splice(end..end, tail);
    tokens.drain(top..=n);
    Ok(select + 1)
}

/// Where the query that starts before `from` ends: the `)` that closes its
/// enclosing parenthesis, a top-level `;`, or the end.
fn query_end(tokens: &[Token], from: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(from) {
        match t.text.as_str() {
            "(" => depth += 1,
            ")" if depth == 0 => return k,
            ")" => depth -= 1,
            ";" if depth == 0 => return k,
            _ => {}
        }
    }
    tokens.len()
}

/// `APPROXIMATE COUNT(DISTINCT x)`: the sandbox counts exactly. Returns
/// where to go on (the `COUNT`, now at `i`, or past an ordinary name).
fn approximate(tokens: &mut Vec<Token>, i: usize) -> usize {
    let next = next_significant(tokens, i + 1)
        .filter(|&n| tokens[n].is_word("count") || tokens[n].is_word("percentile_disc"));
    match next {
        Some(n) => {
            tokens.drain(i..n);
            i
        }
        None => i + 1,
    }
}

/// `NVL2(e, a, b)` → `(CASE WHEN (e) IS NOT NULL THEN (a) ELSE (b) END)`.
fn nvl2(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    let [e, a, b] = args.as_slice() else {
        return Err("ERROR: NVL2 takes three arguments: NVL2(expression, not_null, null)".into());
    };
    let sql = format!("(CASE WHEN ({e}) IS NOT NULL THEN ({a}) ELSE ({b}) END)");
    Ok(replace(tokens, i, end, &sql))
}

/// Redshift's `ARRAY(1, 2)` makes a SUPER array: a `jsonb` array here.
/// `ARRAY(SELECT …)` is PostgreSQL's, and stays.
fn super_array(tokens: &mut [Token], i: usize, open: usize) -> usize {
    let first = next_significant(tokens, open + 1);
    let subquery = first.is_some_and(|f| tokens[f].is_word("select") || tokens[f].is_word("with"));
    if !subquery {
        tokens[i] = word_token("jsonb_build_array");
    }
    i + 1
}

/// `CONVERT(type, expression)` → `CAST(expression AS type)`. Other
/// argument counts are PostgreSQL's `convert`, left alone.
fn convert(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    let [ty, e] = args.as_slice() else {
        return Ok(i + 1);
    };
    let sql = format!("CAST(({e}) AS {ty})");
    Ok(replace(tokens, i, end, &sql))
}

/// `DECODE(e, s1, r1, …, [default])` → a `CASE` where NULL matches NULL,
/// as in Redshift. Two arguments is PostgreSQL's own `decode`, left alone.
fn decode(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    if args.len() < 3 {
        return Ok(i + 1);
    }
    let e = &args[0];
    let mut sql = String::from("(CASE");
    let pairs = args[1..].chunks_exact(2);
    let default = pairs.remainder().first();
    for pair in pairs {
        sql.push_str(&format!(
            " WHEN ({e}) IS NOT DISTINCT FROM ({}) THEN ({})",
            pair[0], pair[1]
        ));
    }
    if let Some(d) = default {
        sql.push_str(&format!(" ELSE ({d})"));
    }
    sql.push_str(" END)");
    Ok(replace(tokens, i, end, &sql))
}

/// A datepart written as a bare word (`DATEADD(day, …)`) becomes a string,
/// which the SQL functions read with every Redshift abbreviation.
fn quote_datepart(tokens: &mut [Token], open: usize) {
    let Some(first) = next_significant(tokens, open + 1) else {
        return;
    };
    let comma = next_significant(tokens, first + 1).is_some_and(|c| tokens[c].text == ",");
    if tokens[first].kind == Kind::Word && comma {
        let part = tokens[first].text.to_ascii_lowercase();
        tokens[first] = Token {
            kind: Kind::Str,
            text: format!("'{part}'"),
        };
    }
}

/// `EXTRACT(part FROM x)` with a Redshift-only part (`dw`, `mins`, …) →
/// `sandbox_sys.date_part('part', x)`; PostgreSQL's own parts pass as they
/// are.
fn extract(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let Some(part) = next_significant(tokens, open + 1) else {
        return Ok(i + 1);
    };
    let from = next_significant(tokens, part + 1);
    let standard = [
        "century",
        "day",
        "decade",
        "dow",
        "doy",
        "epoch",
        "hour",
        "isodow",
        "isoyear",
        "microseconds",
        "millennium",
        "milliseconds",
        "minute",
        "month",
        "quarter",
        "second",
        "timezone",
        "timezone_hour",
        "timezone_minute",
        "week",
        "year",
    ];
    let word = tokens[part].text.to_ascii_lowercase();
    if tokens[part].kind != Kind::Word
        || standard.contains(&word.as_str())
        || !from.is_some_and(|f| tokens[f].is_word("from"))
    {
        return Ok(i + 1);
    }
    let end = group_end(tokens, open);
    let inner = flat(&tokens[from.unwrap() + 1..end - 1]);
    let sql = format!("sandbox_sys.date_part('{word}', {inner})");
    Ok(replace(tokens, i, end, &sql))
}

/// `MEDIAN(x)` → `PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x)`.
fn median(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    let [x] = args.as_slice() else {
        return Err("ERROR: MEDIAN takes one argument".into());
    };
    // As a window function, the window's median (see percentile_cont_w).
    if over_clause(tokens, end).is_some() {
        let sql = format!("sandbox_sys.percentile_cont_w(({x})::float8, 0.5)");
        return Ok(replace(tokens, i, end, &sql));
    }
    let sql = format!("percentile_cont(0.5) WITHIN GROUP (ORDER BY {x})");
    Ok(replace(tokens, i, end, &sql))
}

/// `OVER (…)` right after index `end`: the indices of its `(` and of the
/// token after its `)`.
fn over_clause(tokens: &[Token], end: usize) -> Option<(usize, usize)> {
    let over = next_significant(tokens, end).filter(|&o| tokens[o].is_word("over"))?;
    let open = next_significant(tokens, over + 1).filter(|&p| tokens[p].text == "(")?;
    Some((open, closed_group_end(tokens, open)?))
}

/// `WITHIN GROUP (ORDER BY …)` right after index `end`: what it orders by,
/// and the index after its `)`.
fn within_group(tokens: &[Token], end: usize) -> Option<(String, usize)> {
    let w = next_significant(tokens, end).filter(|&w| tokens[w].is_word("within"))?;
    let g = next_significant(tokens, w + 1).filter(|&g| tokens[g].is_word("group"))?;
    let p = next_significant(tokens, g + 1).filter(|&p| tokens[p].text == "(")?;
    let close = closed_group_end(tokens, p)?;
    Some((flat(&tokens[p + 1..close - 1]), close))
}

/// `PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x [ASC|DESC]) OVER (…)` →
/// `sandbox_sys.percentile_cont_w(x, p) OVER (…)`; without `OVER` it is
/// PostgreSQL's own, left alone.
fn percentile_cont(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    let Some((order, after)) = within_group(tokens, end) else {
        return Ok(i + 1);
    };
    if over_clause(tokens, after).is_none() {
        return Ok(i + 1);
    }
    let [p] = args.as_slice() else {
        return Err("ERROR: PERCENTILE_CONT takes one argument".into());
    };
    let by = order
        .get(..8)
        .filter(|o| o.eq_ignore_ascii_case("order by"));
    let Some(x) = by.map(|_| order[8..].trim()) else {
        return Err("ERROR: PERCENTILE_CONT needs WITHIN GROUP (ORDER BY …)".into());
    };
    let (x, p) = match x.rsplit_once(char::is_whitespace) {
        Some((x, dir)) if dir.eq_ignore_ascii_case("desc") => (x.to_string(), format!("1 - ({p})")),
        Some((x, dir)) if dir.eq_ignore_ascii_case("asc") => (x.to_string(), p.clone()),
        _ => (x.to_string(), p.clone()),
    };
    let sql = format!("sandbox_sys.percentile_cont_w(({x})::float8, ({p})::float8)");
    Ok(replace(tokens, i, after, &sql))
}

/// `RATIO_TO_REPORT(x) OVER (…)` → `x / SUM(x) OVER (…)`: the value's share
/// of the window's total, a DOUBLE PRECISION.
fn ratio_to_report(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, end) = arguments(tokens, open);
    let [x] = args.as_slice() else {
        return Err("ERROR: RATIO_TO_REPORT takes one argument".into());
    };
    let Some((w_open, w_end)) = over_clause(tokens, end) else {
        return Err("ERROR: RATIO_TO_REPORT is a window function: it needs OVER (…)".into());
    };
    let window = flat(&tokens[w_open..w_end]);
    let sql = format!("(({x})::float8 / NULLIF(SUM(({x})::float8) OVER {window}, 0))");
    Ok(replace(tokens, i, w_end, &sql))
}

/// `LISTAGG([DISTINCT] x [, delimiter]) [WITHIN GROUP (ORDER BY …)]` →
/// `string_agg([DISTINCT] NULLIF((x)::text, ''), delimiter [ORDER BY …])`.
fn listagg(tokens: &mut Vec<Token>, i: usize, open: usize) -> Result<usize, String> {
    let (args, mut end) = arguments(tokens, open);
    let (x, delimiter) = match args.as_slice() {
        [x] => (x.clone(), "''".to_string()),
        [x, d] => (x.clone(), d.clone()),
        _ => return Err("ERROR: LISTAGG takes one or two arguments".into()),
    };
    let mut order = String::new();
    let within = next_significant(tokens, end).filter(|&w| tokens[w].is_word("within"));
    if let Some(w) = within {
        let group = next_significant(tokens, w + 1).filter(|&g| tokens[g].is_word("group"));
        let paren = group.and_then(|g| next_significant(tokens, g + 1));
        let paren = paren.filter(|&p| tokens[p].text == "(");
        if let Some((p, close)) = paren.and_then(|p| Some((p, closed_group_end(tokens, p)?))) {
            order = format!(" {}", flat(&tokens[p + 1..close - 1]));
            end = close;
        }
    }
    // Redshift's LISTAGG skips empty strings as well as NULLs, and takes
    // DISTINCT.
    let (distinct, x) = match x.get(..9) {
        Some(w) if w.eq_ignore_ascii_case("distinct ") => ("DISTINCT ", x[9..].trim().to_string()),
        _ => ("", x),
    };
    // As a window function (`OVER (PARTITION BY …)`): PostgreSQL takes no
    // ORDER BY inside a window aggregate, but feeds it the window's rows in
    // the window's order, so the order moves there, over the whole
    // partition.
    if let Some((w_open, w_end)) = over_clause(tokens, end) {
        if !distinct.is_empty() {
            return Err("ERROR: LISTAGG(DISTINCT …) OVER (…) is not served by the sandbox".into());
        }
        let partition = flat(&tokens[w_open + 1..w_end - 1]);
        let sql = format!(
            "string_agg(NULLIF(({x})::text, ''), {delimiter}) OVER ({partition}{order} \
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
        );
        return Ok(replace(tokens, i, w_end, &sql));
    }
    let sql = format!("string_agg({distinct}NULLIF(({x})::text, ''), {delimiter}{order})");
    Ok(replace(tokens, i, end, &sql))
}

/// `::SUPER` → `::jsonb`; `::VARCHAR(MAX)` → `::varchar(65535)`; the same
/// after `AS` in `CAST(…)`.
fn cast_type(tokens: &mut [Token], colons: usize) {
    let Some(ty) = next_significant(tokens, colons + 1) else {
        return;
    };
    if tokens[ty].is_word("super") {
        tokens[ty] = word_token("jsonb");
        return;
    }
    let varchar = [
        "varchar",
        "nvarchar",
        "char",
        "nchar",
        "character",
        "bpchar",
    ];
    if !varchar.iter().any(|w| tokens[ty].is_word(w)) {
        return;
    }
    let open = next_significant(tokens, ty + 1).filter(|&o| tokens[o].text == "(");
    let max = open.and_then(|o| next_significant(tokens, o + 1));
    if let Some(m) = max.filter(|&m| tokens[m].is_word("max")) {
        tokens[m] = Token {
            kind: Kind::Number,
            text: "65535".into(),
        };
    }
}

/// The comma-separated arguments of the call whose `(` is at `open`, as
/// SQL text, and the index just after its `)`.
fn arguments(tokens: &[Token], open: usize) -> (Vec<String>, usize) {
    let end = group_end(tokens, open);
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let close = end.saturating_sub(1).max(open + 1);
    for (k, t) in tokens.iter().enumerate().take(close).skip(open + 1) {
        match t.text.as_str() {
            "(" => depth += 1,
            ")" => depth = depth.saturating_sub(1),
            "," if depth == 0 => {
                args.push(flat(&tokens[start..k]));
                start = k + 1;
            }
            _ => {}
        }
    }
    let last = flat(&tokens[start..close]);
    if !last.is_empty() || !args.is_empty() {
        args.push(last);
    }
    (args, end)
}

/// Tokens as one line of SQL: a `-- comment` would swallow whatever the
/// rewrite puts after it on that line, so comments become a space.
fn flat(tokens: &[Token]) -> String {
    let text: String = tokens
        .iter()
        .map(|t| match t.kind {
            Kind::Space if t.text.starts_with("--") || t.text.starts_with("/*") => " ",
            _ => t.text.as_str(),
        })
        .collect();
    text.trim().to_string()
}

/// Replaces tokens `from..to` by `sql`; returns the index after it.
fn replace(tokens: &mut Vec<Token>, from: usize, to: usize, sql: &str) -> usize {
    let new = tokenize(sql).expect("rewritten SQL tokenizes");
    let n = new.len();
    tokens.splice(from..to, new);
    // Go on inside the rewritten call: its arguments may hold more to
    // rewrite (`NVL(DATEADD(day, 1, d), …)`).
    from + 1.min(n)
}

fn word_token(text: &str) -> Token {
    Token {
        kind: Kind::Word,
        text: text.into(),
    }
}

fn previous_significant(tokens: &[Token], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| tokens[j].kind != Kind::Space)
}

fn significant_indices(tokens: &[Token]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| tokens[i].kind != Kind::Space)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::render;

    fn sql(s: &str) -> String {
        let mut t = tokenize(s).unwrap();
        rewrite(&mut t).unwrap();
        render(&t).split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn top_becomes_a_limit_where_its_query_ends() {
        assert_eq!(sql("SELECT TOP 5 * FROM t"), "SELECT * FROM t LIMIT 5");
        assert_eq!(
            sql("select * from (select distinct top 2 a from t order by a) x;"),
            "select * from (select distinct a from t order by a LIMIT 2 ) x;"
        );
    }

    #[test]
    fn functions_are_rewritten_and_literals_are_not() {
        assert_eq!(sql("SELECT NVL(a, 'nvl(')"), "SELECT coalesce(a, 'nvl(')");
        assert_eq!(
            sql("SELECT DECODE(x, 1, 'one', NULL, 'none', 'other')"),
            "SELECT (CASE WHEN (x) IS NOT DISTINCT FROM (1) THEN ('one') \
             WHEN (x) IS NOT DISTINCT FROM (NULL) THEN ('none') ELSE ('other') END)"
        );
        assert_eq!(
            sql("SELECT DATEADD(day, 1, d)"),
            "SELECT DATEADD('day', 1, d)"
        );
        assert_eq!(
            sql("SELECT NVL(DATEADD(mon, 1, d), d)"),
            "SELECT coalesce(DATEADD('mon', 1, d), d)"
        );
        assert_eq!(
            sql("SELECT LISTAGG(a, ',') WITHIN GROUP (ORDER BY a) FROM t"),
            "SELECT string_agg(NULLIF((a)::text, ''), ',' ORDER BY a) FROM t"
        );
        assert_eq!(
            sql("SELECT SYSDATE, t.sysdate"),
            "SELECT sysdate(), t.sysdate"
        );
        assert_eq!(sql("SELECT '{}'::SUPER"), "SELECT '{}'::jsonb");
    }

    #[test]
    fn every_prefix_of_a_statement_rewrites_without_a_panic() {
        let statements = [
            "SELECT EXTRACT(dw FROM d), LISTAGG(a) WITHIN GROUP (ORDER BY a), \
             DECODE(x, 1, 'a', 'b'), NVL2(a, b, c), MEDIAN(x) FROM t",
            "CREATE TABLE t (id BIGINT IDENTITY(0, 1), d DATE SORTKEY) COMPOUND SORTKEY (d)",
            "SELECT TOP 5 DATEADD(day, 1, SYSDATE), CAST(x AS VARCHAR(MAX)) FROM t",
        ];
        for s in statements {
            for end in 0..=s.len() {
                if let Ok(mut t) = tokenize(&s[..end]) {
                    let _ = crate::translate::translate_ddl(&mut t);
                    let _ = rewrite(&mut t);
                }
            }
        }
    }

    #[test]
    fn sql_names_and_create_table_as_are_told_apart() {
        assert_eq!(
            sql("CREATE TABLE w (nvl INT, sysdate INT DEFAULT 0)"),
            "CREATE TABLE w (nvl INT, sysdate INT DEFAULT 0)"
        );
        assert_eq!(
            sql("CREATE TABLE r AS SELECT TRUNC(SYSDATE) AS day"),
            "CREATE TABLE r AS SELECT TRUNC(sysdate()) AS day"
        );
        assert_eq!(
            sql("SELECT DECODE(x, 1, 'a' -- note\n, 'b')"),
            "SELECT (CASE WHEN (x) IS NOT DISTINCT FROM (1) THEN ('a') ELSE ('b') END)"
        );
        assert_eq!(sql("SELECT CAST(x AS SUPER)"), "SELECT CAST(x AS jsonb)");
    }

    #[test]
    fn commands_without_meaning_here_are_no_ops() {
        assert_eq!(sql("VACUUM DELETE ONLY sales TO 75 PERCENT"), NO_OP);
        assert_eq!(sql("ANALYZE sales PREDICATE COLUMNS"), "ANALYZE sales");
    }
}
