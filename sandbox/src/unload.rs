//! `UNLOAD ('query') TO 's3://bucket/prefix' IAM_ROLE '…' [options]`: the
//! query's rows written to the emulator's S3 as Redshift writes them, so
//! that a following `COPY` loads them back.
//!
//! Redshift writes as the role, so the role needs `s3:PutObject` on the
//! prefix: the read policy a COPY tutorial grants is not enough, and the
//! error says so. Without `ALLOWOVERWRITE` a prefix that already holds
//! objects is refused, as on Redshift. Files are named as Redshift names
//! them: `<prefix>0000_part_00` (or `<prefix>000` with `PARALLEL OFF`), a
//! new file every [`PART_BYTES`], `.gz` with `GZIP`, and
//! `<prefix>manifest` with `MANIFEST`.

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_postgres::Client;

use crate::copy::{CopyContext, assume_role};
use crate::translate::{Kind, Token, render, significant, tokenize};

/// Where a new file starts (Redshift's default is 6.2 GB; a sandbox keeps
/// each file in memory while writing it, so it starts them smaller).
pub const PART_BYTES: usize = 64 * 1024 * 1024;

/// An `UNLOAD`, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct UnloadSpec {
    /// The query, as written inside the quotes.
    pub query: String,
    /// The bucket.
    pub bucket: String,
    /// The key prefix every file name starts with.
    pub prefix: String,
    /// The role's ARN.
    pub iam_role: Option<String>,
    /// `CSV` (else pipe-delimited text).
    pub csv: bool,
    /// `HEADER`: each file starts with the column names.
    pub header: bool,
    /// `DELIMITER`.
    pub delimiter: Option<char>,
    /// `NULL AS`.
    pub null_as: Option<String>,
    /// `GZIP`.
    pub gzip: bool,
    /// `PARALLEL` (on unless turned off).
    pub parallel: bool,
    /// `MANIFEST`.
    pub manifest: bool,
    /// `ALLOWOVERWRITE`: write over what the prefix holds.
    pub allow_overwrite: bool,
    /// `CLEANPATH`: delete what the prefix holds first (as the role, which
    /// then needs `s3:DeleteObject`).
    pub clean_path: bool,
    /// `EXTENSION 'csv'`.
    pub extension: Option<String>,
}

/// Parses the statement; refuses the options the sandbox cannot honour.
pub fn parse(tokens: &[Token]) -> Result<UnloadSpec, String> {
    let sig = significant(tokens);
    let text = |k: usize| sig.get(k).map(|t| t.text.as_str()).unwrap_or("");
    let string = |k: usize| sig.get(k).and_then(|t| t.string_value());
    if text(1) != "(" || text(3) != ")" {
        return Err("ERROR: syntax error: UNLOAD takes ('query') TO 's3://…'".into());
    }
    let query = string(2).ok_or("ERROR: UNLOAD's query must be a string literal")?;
    if !sig.get(4).is_some_and(|t| t.is_word("to")) {
        return Err("ERROR: syntax error: UNLOAD ('query') TO 's3://bucket/prefix'".into());
    }
    let to = string(5).ok_or("ERROR: UNLOAD's destination must be a string literal")?;
    let (bucket, prefix) = to
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(|| format!("ERROR: '{to}' is not an s3://bucket/prefix destination"))?;
    let mut spec = UnloadSpec {
        query,
        bucket: bucket.into(),
        prefix: prefix.into(),
        parallel: true,
        ..UnloadSpec::default()
    };
    let mut k = 6;
    while k < sig.len() {
        k = option(&sig, k, &mut spec)?;
    }
    Ok(spec)
}

/// Reads the option at `k`; returns where the next one starts.
///
/// One arm per option, in the order Redshift's UNLOAD reference lists
/// them: longer than most functions here, but split up the grammar would
/// no longer read as that list.
fn option(sig: &[&Token], k: usize, spec: &mut UnloadSpec) -> Result<usize, String> {
    let word = sig[k].text.to_ascii_lowercase();
    let string_at = |j: usize| sig.get(j).and_then(|t| t.string_value());
    // `KEY [AS] 'value'`: the index of the value.
    let value_at = |j: usize| {
        if sig.get(j).is_some_and(|t| t.is_word("as")) {
            j + 1
        } else {
            j
        }
    };
    match word.as_str() {
        ";" => Ok(k + 1),
        "iam_role" => {
            spec.iam_role = string_at(k + 1);
            Ok(k + 2)
        }
        "credentials" => {
            let creds = string_at(k + 1).unwrap_or_default();
            spec.iam_role = creds.strip_prefix("aws_iam_role=").map(str::to_string);
            Ok(k + 2)
        }
        "csv" => {
            spec.csv = true;
            Ok(k + 1)
        }
        "format" => {
            let v = value_at(k + 1);
            match sig.get(v).map(|t| t.text.to_ascii_lowercase()).as_deref() {
                Some("csv") => {
                    spec.csv = true;
                    Ok(v + 1)
                }
                Some(other) => Err(format!(
                    "ERROR: UNLOAD FORMAT {} is not served by the sandbox; CSV and \
                     delimited text are",
                    other.to_uppercase()
                )),
                None => Err("ERROR: FORMAT needs a format".into()),
            }
        }
        "header" => {
            spec.header = true;
            Ok(k + 1)
        }
        "delimiter" => {
            let v = value_at(k + 1);
            let d = string_at(v).ok_or("ERROR: DELIMITER needs a quoted character")?;
            spec.delimiter = d.chars().next();
            Ok(v + 1)
        }
        "null" => {
            let v = value_at(k + 1);
            spec.null_as = Some(string_at(v).ok_or("ERROR: NULL AS needs a quoted string")?);
            Ok(v + 1)
        }
        "gzip" => {
            spec.gzip = true;
            Ok(k + 1)
        }
        "manifest" => {
            let verbose = sig.get(k + 1).is_some_and(|t| t.is_word("verbose"));
            spec.manifest = true;
            Ok(k + 1 + usize::from(verbose))
        }
        "allowoverwrite" => {
            spec.allow_overwrite = true;
            Ok(k + 1)
        }
        "cleanpath" => {
            spec.clean_path = true;
            Ok(k + 1)
        }
        "parallel" => {
            let v = sig.get(k + 1).map(|t| t.text.to_ascii_lowercase());
            match v.as_deref() {
                Some("off" | "false") => {
                    spec.parallel = false;
                    Ok(k + 2)
                }
                Some("on" | "true") => Ok(k + 2),
                _ => Ok(k + 1),
            }
        }
        "extension" => {
            spec.extension = string_at(k + 1);
            Ok(k + 2)
        }
        // Accepted, with nothing to do on one local server.
        "region" => Ok(value_at(k + 1) + 1),
        "maxfilesize" => {
            let v = value_at(k + 1) + 1;
            let unit = sig
                .get(v)
                .is_some_and(|t| t.is_word("mb") || t.is_word("gb"));
            Ok(v + usize::from(unit))
        }
        other => Err(format!(
            "ERROR: UNLOAD option {} is not served by the sandbox",
            other.to_uppercase()
        )),
    }
}

/// Runs the UNLOAD; returns the number of rows written.
pub async fn run(ctx: &CopyContext<'_>, client: &Client, tokens: &[Token]) -> Result<i64, String> {
    let spec = parse(tokens)?;
    let access = assume_role(ctx, "UNLOAD", spec.iam_role.clone()).await?;
    let (bucket, prefix) = (&spec.bucket, &spec.prefix);
    if !access.allows(
        "s3:PutObject",
        &format!("arn:aws:s3:::{bucket}/{prefix}"),
        &[],
    ) {
        return Err(access.denied(&format!(
            "s3:PutObject on s3://{bucket}/{prefix}…: UNLOAD writes as the role, so it \
             needs a write grant on the prefix (a COPY's read policy has none)"
        )));
    }
    if spec.clean_path {
        clean(ctx, &access, bucket, prefix).await?;
    } else if !spec.allow_overwrite && prefix_holds_objects(ctx, bucket, prefix).await? {
        return Err(format!(
            "ERROR: Specified unload destination on S3 is not empty. Consider using a \
             different bucket / prefix, manually removing the target files in S3, or \
             using the ALLOWOVERWRITE option. (s3://{bucket}/{prefix})"
        ));
    }
    let query = dialect_query(&spec.query)?;
    let header = if spec.header {
        let stmt = client
            .prepare(&query)
            .await
            .map_err(|e| crate::pg::pg_message(&e))?;
        let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
        Some(format!("{}\n", names.join(&delimiter(&spec).to_string())))
    } else {
        None
    };
    let copy = format!("COPY ({query}) TO STDOUT WITH ({})", copy_options(&spec));
    let stream = client
        .copy_out(copy.as_str())
        .await
        .map_err(|e| crate::pg::pg_message(&e))?;
    let mut stream = std::pin::pin!(stream);
    let mut files = Files::new(&spec, header);
    let mut rows = 0i64;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| crate::pg::pg_message(&e))?;
        rows += 1;
        if spec.csv {
            files.push(ctx, &row).await?;
        } else {
            files.push(ctx, &raw_text(&row)).await?;
        }
    }
    files.finish(ctx).await?;
    Ok(rows)
}

fn delimiter(spec: &UnloadSpec) -> char {
    spec.delimiter.unwrap_or(if spec.csv { ',' } else { '|' })
}

/// PostgreSQL's COPY options for the format Redshift writes: CSV, or text
/// with `|` between fields and NULL as an empty field.
fn copy_options(spec: &UnloadSpec) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let d = delimiter(spec).to_string();
    let format = if spec.csv { "csv" } else { "text" };
    let null = spec.null_as.clone().unwrap_or_default();
    format!(
        "FORMAT {format}, DELIMITER {}, NULL {}",
        quote(&d),
        quote(&null)
    )
}

/// The query inside the quotes, through the same dialect layer as any
/// statement (`SELECT TOP 10 …` unloads too), checked to be one query with
/// balanced parentheses: it is placed inside `COPY (…) TO STDOUT`, and must
/// not be able to close that parenthesis itself.
fn dialect_query(query: &str) -> Result<String, String> {
    let mut tokens =
        tokenize(query).map_err(|e| format!("ERROR: syntax error in the query: {e}"))?;
    crate::dialect::rewrite(&mut tokens)?;
    let sig = significant(&tokens);
    if sig
        .last()
        .is_some_and(|t| t.kind == Kind::Punct && t.text == ";")
    {
        let last = tokens
            .iter()
            .rposition(|t| t.text == ";")
            .expect("found above");
        tokens.truncate(last);
    }
    let sig = significant(&tokens);
    let query_word = sig.iter().find(|t| t.text != "(");
    if !query_word.is_some_and(|t| t.is_word("select") || t.is_word("with")) {
        return Err("ERROR: UNLOAD's query must be a SELECT (or WITH … SELECT)".into());
    }
    let mut depth = 0i64;
    for t in &sig {
        match t.text.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            ";" => return Err("ERROR: UNLOAD's query must be one statement".into()),
            _ => {}
        }
        if depth < 0 {
            return Err("ERROR: syntax error: unbalanced parentheses in UNLOAD's query".into());
        }
    }
    if depth != 0 {
        return Err("ERROR: syntax error: unbalanced parentheses in UNLOAD's query".into());
    }
    // On lines of its own, so that a trailing `-- comment` ends where the
    // query does.
    Ok(format!("\n{}\n", render(&tokens)))
}

/// A row as PostgreSQL's text format writes it, with its backslash escapes
/// undone: Redshift writes values as they are (unless `ESCAPE` is given),
/// so a `COPY` of the file reads `C:\temp` back as `C:\temp`.
fn raw_text(row: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.len());
    let mut bytes = row.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

/// `CLEANPATH`: deletes what the prefix holds, each object as the role.
async fn clean(
    ctx: &CopyContext<'_>,
    access: &crate::copy::Access,
    bucket: &str,
    prefix: &str,
) -> Result<(), String> {
    let listed = ctx
        .aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    for page in listed {
        let page = page.map_err(|e| {
            format!("ERROR: S3ServiceException: cannot list s3://{bucket}/{prefix}: {e}")
        })?;
        for key in page.contents().iter().filter_map(|o| o.key()) {
            if !access.allows(
                "s3:DeleteObject",
                &format!("arn:aws:s3:::{bucket}/{key}"),
                &[],
            ) {
                return Err(access.denied(&format!(
                    "s3:DeleteObject on s3://{bucket}/{key} (CLEANPATH)"
                )));
            }
            ctx.aws
                .s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    format!("ERROR: S3ServiceException: cannot delete s3://{bucket}/{key}: {e}")
                })?;
        }
    }
    Ok(())
}
async fn prefix_holds_objects(
    ctx: &CopyContext<'_>,
    bucket: &str,
    prefix: &str,
) -> Result<bool, String> {
    let out = ctx
        .aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(1)
        .send()
        .await
        .map_err(|e| {
            format!("ERROR: S3ServiceException: cannot list s3://{bucket}/{prefix}: {e}")
        })?;
    Ok(out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty())
}

/// The files being written: the current one in memory, the names of those
/// written.
struct Files<'s> {
    spec: &'s UnloadSpec,
    header: Option<String>,
    current: Vec<u8>,
    written: Vec<String>,
}

impl<'s> Files<'s> {
    fn new(spec: &'s UnloadSpec, header: Option<String>) -> Self {
        Self {
            spec,
            header,
            current: Vec::new(),
            written: Vec::new(),
        }
    }

    async fn push(&mut self, ctx: &CopyContext<'_>, row: &[u8]) -> Result<(), String> {
        self.current.extend_from_slice(row);
        if self.current.len() >= PART_BYTES {
            self.flush(ctx).await?;
        }
        Ok(())
    }

    /// Writes the last file (Redshift writes one even for no rows, so a
    /// COPY of the prefix finds it), then the manifest.
    async fn finish(mut self, ctx: &CopyContext<'_>) -> Result<(), String> {
        if !self.current.is_empty() || self.written.is_empty() {
            self.flush(ctx).await?;
        }
        if self.spec.manifest {
            let entries: Vec<serde_json::Value> = self
                .written
                .iter()
                .map(|url| serde_json::json!({ "url": url }))
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({ "entries": entries }))
                .expect("JSON serialises");
            let key = format!("{}manifest", self.spec.prefix);
            put(ctx, &self.spec.bucket, &key, body).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, ctx: &CopyContext<'_>) -> Result<(), String> {
        let n = self.written.len();
        let mut name = match self.spec.parallel {
            true => format!("{}{n:04}_part_00", self.spec.prefix),
            false => format!("{}{n:03}", self.spec.prefix),
        };
        if let Some(ext) = &self.spec.extension {
            name.push('.');
            name.push_str(ext.trim_start_matches('.'));
        }
        let mut body = self.header.clone().unwrap_or_default().into_bytes();
        body.append(&mut self.current);
        if self.spec.gzip {
            name.push_str(".gz");
            let mut gz = async_compression::tokio::write::GzipEncoder::new(Vec::new());
            let gzip_err = |e: std::io::Error| format!("ERROR: gzip: {e}");
            gz.write_all(&body).await.map_err(gzip_err)?;
            gz.shutdown().await.map_err(gzip_err)?;
            body = gz.into_inner();
        }
        put(ctx, &self.spec.bucket, &name, body).await?;
        self.written
            .push(format!("s3://{}/{name}", self.spec.bucket));
        Ok(())
    }
}

async fn put(ctx: &CopyContext<'_>, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
    ctx.aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("ERROR: S3ServiceException: cannot write s3://{bucket}/{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_and_its_options_parse() {
        let tokens = tokenize(
            "UNLOAD ('SELECT * FROM t WHERE s = ''x''') TO 's3://b/out/t_' \
             IAM_ROLE 'arn:aws:iam::123456789012:role/r' CSV HEADER DELIMITER AS ';' \
             GZIP PARALLEL OFF MANIFEST VERBOSE ALLOWOVERWRITE MAXFILESIZE 100 MB",
        )
        .unwrap();
        let spec = parse(&tokens).unwrap();
        assert_eq!(spec.query, "SELECT * FROM t WHERE s = 'x'");
        assert_eq!(
            (spec.bucket.as_str(), spec.prefix.as_str()),
            ("b", "out/t_")
        );
        assert!(spec.csv && spec.header && spec.gzip && spec.manifest && spec.allow_overwrite);
        assert!(!spec.clean_path);
        assert!(!spec.parallel);
        assert_eq!(spec.delimiter, Some(';'));
        let err = parse(&tokenize("UNLOAD ('SELECT 1') TO 's3://b/p' FORMAT PARQUET").unwrap());
        assert!(
            err.unwrap_err()
                .contains("PARQUET is not served by the sandbox")
        );
    }

    #[test]
    fn the_query_cannot_leave_its_parentheses() {
        assert!(
            dialect_query("SELECT * FROM t -- all rows")
                .unwrap()
                .ends_with("rows\n")
        );
        let escape = dialect_query("SELECT 1) TO PROGRAM 'touch /tmp/x' --");
        assert!(escape.unwrap_err().contains("unbalanced"));
        assert!(
            dialect_query("DELETE FROM t")
                .unwrap_err()
                .contains("must be a SELECT")
        );
    }

    #[test]
    fn text_rows_are_written_as_the_values_are() {
        assert_eq!(raw_text(b"C:\\\\temp|a\\tb\n"), b"C:\\temp|a\tb\n");
    }
}
