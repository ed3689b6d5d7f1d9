//! `COPY table FROM 's3://…'`: parsed, checked against IAM as Redshift
//! would, and streamed from the S3 emulator into PostgreSQL.
//!
//! The data never sits whole in memory: each object is read as a stream
//! (un-gzipped on the fly), cut into records by `csv-core`'s push parser,
//! checked field by field against the column types, and sent on to
//! PostgreSQL's `COPY … FROM STDIN` in 64 KiB chunks, with back-pressure.
//!
//! Why check the fields here rather than let PostgreSQL reject them?
//! Because Redshift reports *which* line, column and value failed, records
//! them in `stl_load_errors`, and can skip up to `MAXERROR` bad rows;
//! PostgreSQL would stop at the first error with none of that.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use async_compression::tokio::bufread::GzipDecoder;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use futures::SinkExt;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, BufReader};
use tokio_postgres::Client;

use std::sync::atomic::AtomicBool;

use crate::aws::{ControlPlane, allowed};
use crate::pg::{Pg, Target, pg_message};
use crate::translate::{Kind, Token, significant};

/// How the data is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `CSV`: quoted fields.
    Csv,
    /// Redshift's default: delimited text, no quoting.
    Text,
    /// `FORMAT AS JSON 'auto'`: one JSON object per line, keys matched to columns.
    JsonAuto,
}

/// A parsed `COPY` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySpec {
    /// Schema, if given.
    pub schema: Option<String>,
    /// Table.
    pub table: String,
    /// The column list, if given.
    pub columns: Option<Vec<String>>,
    /// `s3://bucket/key-or-prefix` (or the manifest's location).
    pub source: String,
    /// The role COPY reads as.
    pub iam_role: Option<String>,
    /// `REGION`.
    pub region: Option<String>,
    /// The format.
    pub format: Format,
    /// `DELIMITER`.
    pub delimiter: Option<char>,
    /// `QUOTE`.
    pub quote: char,
    /// `IGNOREHEADER`.
    pub ignore_header: u64,
    /// `NULL AS`.
    pub null_as: Option<String>,
    /// `GZIP`.
    pub gzip: bool,
    /// `MANIFEST`.
    pub manifest: bool,
    /// `EMPTYASNULL`.
    pub empty_as_null: bool,
    /// `BLANKSASNULL`.
    pub blanks_as_null: bool,
    /// `DATEFORMAT`.
    pub date_format: Option<String>,
    /// `TIMEFORMAT`.
    pub time_format: Option<String>,
    /// `MAXERROR`.
    pub max_error: u64,
}

/// Redshift's backslash escapes in COPY option strings (`'\t'`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a `COPY … FROM 's3://…'` command. Every option is either
/// understood or an error: a silently ignored option would make a load in
/// the sandbox differ from the same load on AWS.
pub fn parse(tokens: &[Token]) -> Result<CopySpec, String> {
    let t = significant(tokens);
    let mut i = 1; // after COPY
    let err_near = |t: Option<&&Token>| match t {
        Some(t) => format!("ERROR: syntax error at or near \"{}\"", t.text),
        None => "ERROR: syntax error at end of input".to_string(),
    };
    let name1 = t
        .get(i)
        .and_then(|x| x.ident())
        .ok_or_else(|| err_near(t.get(i)))?;
    i += 1;
    let (schema, table) = if t.get(i).is_some_and(|x| x.text == ".") {
        let name2 = t
            .get(i + 1)
            .and_then(|x| x.ident())
            .ok_or_else(|| err_near(t.get(i + 1)))?;
        i += 2;
        (Some(name1), name2)
    } else {
        (None, name1)
    };
    let mut columns = None;
    if t.get(i).is_some_and(|x| x.text == "(") {
        let mut cols = Vec::new();
        i += 1;
        loop {
            let c = t
                .get(i)
                .and_then(|x| x.ident())
                .ok_or_else(|| err_near(t.get(i)))?;
            cols.push(c);
            i += 1;
            match t.get(i).map(|x| x.text.as_str()) {
                Some(",") => i += 1,
                Some(")") => {
                    i += 1;
                    break;
                }
                _ => return Err(err_near(t.get(i))),
            }
        }
        columns = Some(cols);
    }
    if !t.get(i).is_some_and(|x| x.is_word("from")) {
        return Err(err_near(t.get(i)));
    }
    i += 1;
    let source = t
        .get(i)
        .and_then(|x| x.string_value())
        .map(|v| unescape(&v))
        .ok_or_else(|| err_near(t.get(i)))?;
    if !source.starts_with("s3://") {
        return Err(format!(
            "ERROR: the sandbox loads only from Amazon S3 ('s3://bucket/key'), not from '{source}'"
        ));
    }
    i += 1;
    let mut spec = CopySpec {
        schema,
        table,
        columns,
        source,
        iam_role: None,
        region: None,
        format: Format::Text,
        delimiter: None,
        quote: '"',
        ignore_header: 0,
        null_as: None,
        gzip: false,
        manifest: false,
        empty_as_null: false,
        blanks_as_null: false,
        date_format: None,
        time_format: None,
        max_error: 0,
    };
    // Reads an optional AS, then a string literal, its backslash escapes
    // read as Redshift reads them in every COPY option (`'\\'` is one
    // backslash, `'\t'` a tab).
    let string_arg = |i: &mut usize| -> Result<String, String> {
        if t.get(*i).is_some_and(|x| x.is_word("as")) {
            *i += 1;
        }
        let v = t
            .get(*i)
            .and_then(|x| x.string_value())
            .map(|v| unescape(&v))
            .ok_or_else(|| err_near(t.get(*i)))?;
        *i += 1;
        Ok(v)
    };
    let number_arg = |i: &mut usize| -> Result<u64, String> {
        if t.get(*i).is_some_and(|x| x.is_word("as")) {
            *i += 1;
        }
        let v = t
            .get(*i)
            .filter(|x| x.kind == Kind::Number)
            .and_then(|x| x.text.parse().ok())
            .ok_or_else(|| err_near(t.get(*i)))?;
        *i += 1;
        Ok(v)
    };
    let char_arg = |i: &mut usize, what: &str| -> Result<char, String> {
        let s = string_arg(i)?;
        let mut cs = s.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(format!("ERROR: {what} must be a single character")),
        }
    };
    while i < t.len() {
        let tok = t[i];
        if tok.text == ";" && i == t.len() - 1 {
            break;
        }
        if tok.kind != Kind::Word {
            return Err(err_near(Some(&tok)));
        }
        let word = tok.text.to_ascii_uppercase();
        i += 1;
        match word.as_str() {
            "IAM_ROLE" => {
                if t.get(i).is_some_and(|x| x.is_word("default")) {
                    return Err("ERROR: IAM_ROLE default is not supported by the sandbox; name the role's ARN".into());
                }
                spec.iam_role = Some(string_arg(&mut i)?);
            }
            "CREDENTIALS" => {
                let v = string_arg(&mut i)?;
                let role = v
                    .split(';')
                    .find_map(|kv| kv.trim().strip_prefix("aws_iam_role="))
                    .ok_or("ERROR: the sandbox accepts CREDENTIALS only as 'aws_iam_role=<arn>'")?;
                spec.iam_role = Some(role.to_string());
            }
            "REGION" => spec.region = Some(string_arg(&mut i)?),
            "CSV" => spec.format = Format::Csv,
            "FORMAT" | "JSON" => {
                if word == "FORMAT" {
                    if t.get(i).is_some_and(|x| x.is_word("as")) {
                        i += 1;
                    }
                    let f = t
                        .get(i)
                        .map(|x| x.text.to_ascii_uppercase())
                        .unwrap_or_default();
                    i += 1;
                    match f.as_str() {
                        "CSV" => {
                            spec.format = Format::Csv;
                            continue;
                        }
                        "JSON" => {}
                        other => {
                            return Err(format!(
                                "ERROR: FORMAT {other} is not supported by the sandbox (CSV and JSON 'auto' are)"
                            ));
                        }
                    }
                }
                let arg = t.get(i).and_then(|x| x.string_value()).unwrap_or_default();
                if !arg.eq_ignore_ascii_case("auto") {
                    return Err(format!(
                        "ERROR: the sandbox supports JSON 'auto' only, not JSON '{arg}'"
                    ));
                }
                i += 1;
                spec.format = Format::JsonAuto;
            }
            "DELIMITER" => spec.delimiter = Some(char_arg(&mut i, "DELIMITER")?),
            "QUOTE" => spec.quote = char_arg(&mut i, "QUOTE")?,
            "IGNOREHEADER" => spec.ignore_header = number_arg(&mut i)?,
            "NULL" => spec.null_as = Some(string_arg(&mut i)?),
            "GZIP" => spec.gzip = true,
            "MANIFEST" => spec.manifest = true,
            "EMPTYASNULL" => spec.empty_as_null = true,
            "BLANKSASNULL" => spec.blanks_as_null = true,
            "DATEFORMAT" => spec.date_format = Some(string_arg(&mut i)?),
            "TIMEFORMAT" => spec.time_format = Some(string_arg(&mut i)?),
            "MAXERROR" => spec.max_error = number_arg(&mut i)?,
            "COMPUPDATE" | "STATUPDATE" => {
                // Statistics and compression analysis: no effect on the data.
                if t.get(i).is_some_and(|x| {
                    ["on", "off", "true", "false", "preset"]
                        .iter()
                        .any(|w| x.is_word(w))
                }) {
                    i += 1;
                }
            }
            other => {
                return Err(format!(
                    "ERROR: COPY option {other} is not supported by the sandbox"
                ));
            }
        }
    }
    if spec.format == Format::JsonAuto && spec.delimiter.is_some() {
        return Err("ERROR: DELIMITER cannot be used with JSON".into());
    }
    Ok(spec)
}

/// A column of the target table, as PostgreSQL describes it.
#[derive(Clone, Debug)]
struct TargetColumn {
    name: String,
    pg_type: String,
    /// Declared length for char types, (precision, scale) for numeric.
    length: Option<i32>,
    scale: Option<i32>,
    not_null: bool,
}

/// One rejected row.
#[derive(Clone, Debug)]
struct LoadError {
    file: String,
    line: i64,
    column: String,
    pg_type: String,
    length: String,
    position: i32,
    raw_line: String,
    raw_value: String,
    code: i32,
    reason: String,
}

fn split_s3(uri: &str) -> (String, String) {
    let rest = uri.trim_start_matches("s3://");
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    (b.to_string(), k.to_string())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// What a `COPY` needs from the statement that runs it, and nothing more:
/// the control plane (IAM, S3), PostgreSQL, where it runs, and whether it
/// was cancelled.
pub struct CopyContext<'a> {
    /// The emulator's control plane, IAM and S3.
    pub aws: &'a ControlPlane,
    /// PostgreSQL.
    pub pg: &'a Pg,
    /// The cluster or workgroup the statement runs on.
    pub target: &'a Target,
    /// The database.
    pub database: &'a str,
    /// The database user the statement runs as, if the request named one.
    pub db_user: Option<&'a str>,
    /// Set when the statement is cancelled.
    pub cancelled: &'a AtomicBool,
}

/// Runs the COPY; returns the number of rows loaded.
pub async fn run(
    ctx: &CopyContext<'_>,
    client: &Client,
    tokens: &[Token],
    query_id: i64,
) -> Result<i64, String> {
    let spec = parse(tokens)?;
    let aws = &ctx.aws;
    let qualified = match &spec.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&spec.table)),
        None => quote_ident(&spec.table),
    };
    let columns = target_columns(client, &qualified, &spec).await?;

    // IAM, as Redshift checks it: the role must be attached to the cluster,
    // and its policies must let it read what COPY reads.
    let role = spec
        .iam_role
        .clone()
        .ok_or("ERROR: COPY needs IAM_ROLE (or CREDENTIALS 'aws_iam_role=…')")?;
    let role_name = role
        .rsplit_once(":role/")
        .map(|(_, name)| name.rsplit('/').next().unwrap_or(name).to_string())
        .ok_or_else(|| format!("ERROR: '{role}' is not an IAM role ARN"))?;
    let account = role.split(':').nth(4).unwrap_or("000000000000");
    let db_user = ctx.db_user.unwrap_or("awsuser");
    let not_authorized = || match &ctx.target {
        Target::Cluster(id) => format!(
            "ERROR: User arn:aws:redshift:{}:{account}:dbuser:{id}/{db_user} is not authorized to assume IAM Role {role}",
            aws.region
        ),
        Target::Workgroup(wg) => {
            format!("ERROR: Workgroup {wg} is not authorized to assume IAM Role {role}")
        }
    };
    if !aws
        .role_exists(&role_name)
        .await
        .map_err(|e| format!("ERROR: sandbox: {e}"))?
    {
        return Err(not_authorized());
    }
    if let Target::Cluster(id) = &ctx.target {
        let info = aws
            .check_cluster(id)
            .await
            .map_err(|e| format!("ERROR: {e}"))?;
        if !info.roles.contains(&role) {
            return Err(not_authorized());
        }
    }
    let policies = aws
        .role_policies(&role_name)
        .await
        .map_err(|e| format!("ERROR: sandbox: {e}"))?;
    let denied = |what: &str| {
        format!(
            "ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid sandbox,CanRetry 1\n  \
             Details: role {role} may not {what}"
        )
    };

    let (bucket, key) = split_s3(&spec.source);
    check_region(aws, &bucket, spec.region.as_deref()).await?;
    let objects = if spec.manifest {
        if !allowed(
            &policies,
            "s3:GetObject",
            &format!("arn:aws:s3:::{bucket}/{key}"),
            &[],
        ) {
            return Err(denied(&format!(
                "s3:GetObject on the manifest s3://{bucket}/{key}"
            )));
        }
        manifest_entries(aws, &bucket, &key).await?
    } else {
        if !allowed(
            &policies,
            "s3:ListBucket",
            &format!("arn:aws:s3:::{bucket}"),
            &[("s3:prefix", &key)],
        ) {
            return Err(denied(&format!(
                "s3:ListBucket on {bucket} with prefix '{key}'"
            )));
        }
        let mut pages = aws
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&key)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "ERROR: S3ServiceException:{}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    // Keys ending in `/` are folder markers, not data.
                    if !k.ends_with('/') {
                        found.push((bucket.clone(), k.to_string()));
                    }
                }
            }
        }
        if found.is_empty() {
            return Err(format!(
                "ERROR: The specified S3 prefix '{key}' does not exist"
            ));
        }
        found
    };
    for (b, k) in &objects {
        if !allowed(
            &policies,
            "s3:GetObject",
            &format!("arn:aws:s3:::{b}/{k}"),
            &[],
        ) {
            return Err(denied(&format!("s3:GetObject on s3://{b}/{k}")));
        }
    }

    let col_list: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let copy_in = format!(
        "COPY {qualified} ({}) FROM STDIN WITH (FORMAT csv)",
        col_list.join(", ")
    );
    let sink = client
        .copy_in::<_, Bytes>(&copy_in)
        .await
        .map_err(|e| pg_message(&e))?;
    // Boxed so that it can be dropped (aborting the COPY) before we return.
    let mut sink = Box::pin(sink);
    let mut loader = Loader {
        spec: &spec,
        columns: &columns,
        out: BytesMut::with_capacity(CHUNK * 2),
        errors: Vec::new(),
        error_count: 0,
    };
    for (b, k) in &objects {
        let obj = aws
            .s3
            .get_object()
            .bucket(b)
            .key(k)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ERROR: S3ServiceException:{}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        let body = obj.body.into_async_read();
        let file = format!("s3://{b}/{k}");
        let reader: Box<dyn AsyncRead + Unpin + Send> = if spec.gzip {
            Box::new(GzipDecoder::new(body))
        } else {
            Box::new(body)
        };
        loader.load_object(reader, &file, ctx, &mut sink).await?;
        if loader.error_count > spec.max_error {
            break;
        }
    }
    if loader.error_count > spec.max_error || ctx.cancelled.load(Ordering::SeqCst) {
        // Dropping the sink without finishing it aborts PostgreSQL's COPY, so
        // nothing of this load is kept.
        drop(sink);
        record_errors(ctx, query_id, &qualified, &loader.errors).await;
        if ctx.cancelled.load(Ordering::SeqCst) {
            return Err("ERROR: Query cancelled on user's request".into());
        }
        return Err(format!(
            "ERROR: Load into table '{}' failed. Check 'stl_load_errors' system table for details.",
            spec.table
        ));
    }
    if !loader.out.is_empty() {
        sink.send(loader.out.split().freeze())
            .await
            .map_err(|e| pg_message(&e))?;
    }
    let n = sink.as_mut().finish().await.map_err(|e| pg_message(&e))?;
    record_errors(ctx, query_id, &qualified, &loader.errors).await;
    Ok(n as i64)
}

async fn check_region(
    aws: &crate::aws::ControlPlane,
    bucket: &str,
    wanted: Option<&str>,
) -> Result<(), String> {
    let out = match aws.s3.get_bucket_location().bucket(bucket).send().await {
        Ok(o) => o,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            return Err(format!(
                "ERROR: S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket,Rid sandbox,CanRetry 1\n  Details: bucket {bucket}"
            ));
        }
        Err(e) => {
            return Err(format!(
                "ERROR: S3ServiceException:{}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ));
        }
    };
    let actual = out
        .location_constraint()
        .map(|c| c.as_str().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "us-east-1".into());
    let expected = wanted.unwrap_or(&aws.region);
    if actual != expected {
        return Err(format!(
            "ERROR: S3ServiceException:The bucket you are attempting to access must be addressed using the specified endpoint. \
             Please send all future requests to this endpoint.,Status 301,Error PermanentRedirect,Rid sandbox,CanRetry 1\n  \
             Details: bucket {bucket} is in {actual}, COPY reads from {expected}; add REGION '{actual}' to the COPY command"
        ));
    }
    Ok(())
}

async fn manifest_entries(
    aws: &crate::aws::ControlPlane,
    bucket: &str,
    key: &str,
) -> Result<Vec<(String, String)>, String> {
    let obj = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "ERROR: S3ServiceException:cannot read manifest s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    let bytes = obj
        .body
        .collect()
        .await
        .map_err(|e| format!("ERROR: reading the manifest: {e}"))?
        .into_bytes();
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("ERROR: Manifest file is not in correct json format: {e}"))?;
    let entries = doc["entries"]
        .as_array()
        .ok_or("ERROR: Manifest file is not in correct json format: no \"entries\" list")?;
    let mut out = Vec::new();
    for e in entries {
        let url = e["url"]
            .as_str()
            .ok_or("ERROR: Manifest entry without \"url\"")?;
        let (b, k) = split_s3(url);
        let exists = aws.s3.head_object().bucket(&b).key(&k).send().await.is_ok();
        if !exists {
            if e["mandatory"].as_bool().unwrap_or(false) {
                return Err(format!(
                    "ERROR: Manifest file entry {url} is mandatory but was not found"
                ));
            }
            continue;
        }
        out.push((b, k));
    }
    Ok(out)
}

async fn target_columns(
    client: &Client,
    qualified: &str,
    spec: &CopySpec,
) -> Result<Vec<TargetColumn>, String> {
    let rows = client
        .query(
            "SELECT a.attname::text, t.typname::text, a.atttypmod, a.attnotnull \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&qualified],
        )
        .await
        .map_err(|e| pg_message(&e))?;
    if rows.is_empty() {
        return Err(format!("ERROR: relation \"{}\" does not exist", spec.table));
    }
    let all: Vec<TargetColumn> = rows
        .iter()
        .map(|r| {
            let pg_type: String = r.get(1);
            let typmod: i32 = r.get(2);
            let (length, scale) = match pg_type.as_str() {
                "varchar" | "bpchar" if typmod > 4 => (Some(typmod - 4), None),
                "numeric" if typmod > 4 => (
                    Some(((typmod - 4) >> 16) & 0xffff),
                    Some((typmod - 4) & 0xffff),
                ),
                _ => (None, None),
            };
            TargetColumn {
                name: r.get(0),
                pg_type,
                length,
                scale,
                not_null: r.get(3),
            }
        })
        .collect();
    match &spec.columns {
        None => Ok(all),
        Some(names) => names
            .iter()
            .map(|n| {
                all.iter().find(|c| c.name == *n).cloned().ok_or_else(|| {
                    format!(
                        "ERROR: column \"{n}\" of relation \"{}\" does not exist",
                        spec.table
                    )
                })
            })
            .collect(),
    }
}

/// How much is buffered before it is sent to PostgreSQL.
const CHUNK: usize = 64 * 1024;
/// Load errors kept per COPY (Redshift keeps a bounded number too).
const MAX_RECORDED_ERRORS: usize = 100;

struct Loader<'a> {
    spec: &'a CopySpec,
    columns: &'a [TargetColumn],
    out: BytesMut,
    errors: Vec<LoadError>,
    error_count: u64,
}

impl Loader<'_> {
    async fn load_object<S>(
        &mut self,
        reader: Box<dyn AsyncRead + Unpin + Send>,
        file: &str,
        ctx: &CopyContext<'_>,
        sink: &mut std::pin::Pin<Box<S>>,
    ) -> Result<(), String>
    where
        S: futures::Sink<Bytes, Error = tokio_postgres::Error>,
    {
        let mut reader = BufReader::with_capacity(CHUNK, reader);
        match self.spec.format {
            Format::JsonAuto => self.load_json(&mut reader, file, ctx, sink).await,
            _ => self.load_delimited(&mut reader, file, ctx, sink).await,
        }
    }

    async fn flush<S>(&mut self, sink: &mut std::pin::Pin<Box<S>>) -> Result<(), String>
    where
        S: futures::Sink<Bytes, Error = tokio_postgres::Error>,
    {
        if self.out.len() >= CHUNK {
            sink.send(self.out.split().freeze())
                .await
                .map_err(|e| pg_message(&e))?;
        }
        Ok(())
    }

    async fn load_delimited<R, S>(
        &mut self,
        reader: &mut R,
        file: &str,
        ctx: &CopyContext<'_>,
        sink: &mut std::pin::Pin<Box<S>>,
    ) -> Result<(), String>
    where
        R: AsyncBufRead + Unpin,
        S: futures::Sink<Bytes, Error = tokio_postgres::Error>,
    {
        let csv = self.spec.format == Format::Csv;
        let delimiter = self.spec.delimiter.unwrap_or(if csv { ',' } else { '|' });
        let mut parser = csv_core::ReaderBuilder::new()
            .delimiter(delimiter as u8)
            .quote(self.spec.quote as u8)
            .quoting(csv)
            .build();
        let mut input = vec![0u8; CHUNK];
        let mut fields_buf = vec![0u8; 4096];
        let mut ends = vec![0usize; 64];
        let (mut out_len, mut ends_len) = (0usize, 0usize);
        let mut line: i64 = 1;
        let mut record_line: i64 = 1;
        let mut eof = false;
        let mut filled = 0usize;
        let mut pos = 0usize;
        loop {
            if pos == filled && !eof {
                if ctx.cancelled.load(Ordering::SeqCst) {
                    return Ok(());
                }
                filled = reader
                    .read(&mut input)
                    .await
                    .map_err(|e| format!("ERROR: reading {file}: {e}"))?;
                pos = 0;
                if filled == 0 {
                    eof = true;
                }
            }
            let (res, nin, nout, nend) = parser.read_record(
                &input[pos..filled],
                &mut fields_buf[out_len..],
                &mut ends[ends_len..],
            );
            line += input[pos..pos + nin]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as i64;
            pos += nin;
            out_len += nout;
            ends_len += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {
                    if eof {
                        continue;
                    }
                }
                csv_core::ReadRecordResult::OutputFull => {
                    fields_buf.resize(fields_buf.len() * 2, 0)
                }
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::Record => {
                    // Borrowed from the parser's buffer: no copy per field
                    // unless a value must change.
                    let mut fields: Vec<Cow<str>> = Vec::with_capacity(ends_len);
                    let mut start = 0;
                    for &end in &ends[..ends_len] {
                        fields.push(String::from_utf8_lossy(&fields_buf[start..end]));
                        start = end;
                    }
                    let this_line = record_line;
                    record_line = line;
                    out_len = 0;
                    ends_len = 0;
                    if (this_line as u64) <= self.spec.ignore_header {
                        continue;
                    }
                    // A blank line is one empty field: skip it, as COPY does.
                    if fields.len() == 1 && fields[0].is_empty() {
                        continue;
                    }
                    let raw = || fields.join(&delimiter.to_string());
                    let values: Vec<Option<Cow<str>>> =
                        fields.iter().map(|f| Some(f.clone())).collect();
                    self.row(values, file, this_line, &raw, true);
                    if self.error_count > self.spec.max_error {
                        return Ok(());
                    }
                    self.flush(sink).await?;
                }
                csv_core::ReadRecordResult::End => return Ok(()),
            }
        }
    }

    async fn load_json<R, S>(
        &mut self,
        reader: &mut R,
        file: &str,
        ctx: &CopyContext<'_>,
        sink: &mut std::pin::Pin<Box<S>>,
    ) -> Result<(), String>
    where
        R: AsyncBufRead + Unpin,
        S: futures::Sink<Bytes, Error = tokio_postgres::Error>,
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = reader.lines();
        let mut line_no = 0i64;
        while let Some(text) = lines
            .next_line()
            .await
            .map_err(|e| format!("ERROR: reading {file}: {e}"))?
        {
            line_no += 1;
            if ctx.cancelled.load(Ordering::SeqCst) {
                return Ok(());
            }
            if text.trim().is_empty() || (line_no as u64) <= self.spec.ignore_header {
                continue;
            }
            let obj = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                _ => {
                    self.reject(
                        file,
                        line_no,
                        "",
                        "",
                        "",
                        &text,
                        &text,
                        1224,
                        "Invalid JSON object or array",
                    );
                    if self.error_count > self.spec.max_error {
                        return Ok(());
                    }
                    continue;
                }
            };
            // JSON 'auto': keys match column names, case-insensitively.
            let values: Vec<Option<Cow<str>>> = self
                .columns
                .iter()
                .map(|c| {
                    obj.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                        .and_then(|(_, v)| match v {
                            Value::Null => None,
                            Value::String(s) => Some(Cow::Owned(s.clone())),
                            other => Some(Cow::Owned(other.to_string())),
                        })
                })
                .collect();
            self.row(values, file, line_no, &|| text.clone(), false);
            if self.error_count > self.spec.max_error {
                return Ok(());
            }
            self.flush(sink).await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        file: &str,
        line: i64,
        column: &str,
        pg_type: &str,
        length: &str,
        raw_line: &str,
        raw_value: &str,
        code: i32,
        reason: &str,
    ) {
        self.error_count += 1;
        if self.errors.len() < MAX_RECORDED_ERRORS {
            self.errors.push(LoadError {
                file: file.to_string(),
                line,
                column: column.to_string(),
                pg_type: pg_type.to_string(),
                length: length.to_string(),
                position: 0,
                raw_line: raw_line.chars().take(1024).collect(),
                raw_value: raw_value.chars().take(1024).collect(),
                code,
                reason: reason.chars().take(100).collect(),
            });
        }
    }

    /// Checks one row and, if good, appends it to the output as PostgreSQL CSV.
    /// `positional`: values are in file order (CSV/text) rather than matched
    /// by name (JSON), so their count must match the columns.
    fn row(
        &mut self,
        values: Vec<Option<Cow<'_, str>>>,
        file: &str,
        line: i64,
        raw: &dyn Fn() -> String,
        positional: bool,
    ) {
        if positional && values.len() < self.columns.len() {
            self.reject(
                file,
                line,
                "",
                "",
                "",
                &raw(),
                "",
                1214,
                "Delimiter not found",
            );
            return;
        }
        if positional && values.len() > self.columns.len() {
            self.reject(
                file,
                line,
                "",
                "",
                "",
                &raw(),
                "",
                1216,
                "Extra column(s) found",
            );
            return;
        }
        let mut converted: Vec<Option<Cow<str>>> = Vec::with_capacity(values.len());
        for (col, value) in self.columns.iter().zip(values) {
            match convert(col, value, self.spec) {
                Ok(v) => {
                    if v.is_none() && col.not_null {
                        self.reject(
                            file,
                            line,
                            &col.name,
                            &col.pg_type,
                            "",
                            &raw(),
                            "",
                            1213,
                            "Missing data for not-null field",
                        );
                        return;
                    }
                    converted.push(v);
                }
                Err((code, reason, raw_value)) => {
                    let length = col.length.map(|l| l.to_string()).unwrap_or_default();
                    self.reject(
                        file,
                        line,
                        &col.name,
                        &col.pg_type,
                        &length,
                        &raw(),
                        &raw_value,
                        code,
                        &reason,
                    );
                    return;
                }
            }
        }
        for (i, v) in converted.iter().enumerate() {
            if i > 0 {
                self.out.extend_from_slice(b",");
            }
            if let Some(v) = v {
                // Always quoted, so an empty string stays distinct from NULL
                // (an unquoted empty field) in PostgreSQL's CSV.
                self.out.extend_from_slice(b"\"");
                for part in v.split('"').enumerate() {
                    if part.0 > 0 {
                        self.out.extend_from_slice(b"\"\"");
                    }
                    self.out.extend_from_slice(part.1.as_bytes());
                }
                self.out.extend_from_slice(b"\"");
            }
        }
        self.out.extend_from_slice(b"\n");
    }
}

type Rejection = (i32, String, String);

/// Checks and normalises one value for its column, as Redshift's COPY does.
fn convert<'a>(
    col: &TargetColumn,
    value: Option<Cow<'a, str>>,
    spec: &CopySpec,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(v) = value else { return Ok(None) };
    let null_as = spec.null_as.as_deref().unwrap_or("\\N");
    if v == null_as {
        return Ok(None);
    }
    let is_char = matches!(col.pg_type.as_str(), "varchar" | "bpchar" | "text");
    if is_char {
        if (v.is_empty() && spec.empty_as_null)
            || (spec.blanks_as_null && !v.is_empty() && v.trim().is_empty())
        {
            return Ok(None);
        }
        if let Some(max) = col.length
            && v.len() > max as usize
        {
            return Err((
                1204,
                "String length exceeds DDL length".into(),
                v.into_owned(),
            ));
        }
        return Ok(Some(v));
    }
    // Empty fields of non-character columns always load as NULL.
    if v.trim().is_empty() {
        return Ok(None);
    }
    let t = v.trim();
    let bad_digit = |ty: &str| {
        (
            1207,
            format!(
                "Invalid digit, Value '{}', Pos 0, Type: {ty}",
                t.chars().next().unwrap_or(' ')
            ),
            v.to_string(),
        )
    };
    match col.pg_type.as_str() {
        "int2" | "int4" | "int8" => {
            let n: i64 = t.parse().map_err(|_| {
                bad_digit(match col.pg_type.as_str() {
                    "int2" => "Short",
                    "int4" => "Integer",
                    _ => "Long",
                })
            })?;
            let fits = match col.pg_type.as_str() {
                "int2" => i16::try_from(n).is_ok(),
                "int4" => i32::try_from(n).is_ok(),
                _ => true,
            };
            if !fits {
                return Err((
                    1207,
                    format!("Overflow, Value '{t}' is out of range for {}", col.pg_type),
                    v.to_string(),
                ));
            }
            Ok(Some(trimmed(v)))
        }
        "float4" | "float8" => {
            t.parse::<f64>().map_err(|_| bad_digit("Double"))?;
            Ok(Some(trimmed(v)))
        }
        "numeric" => {
            let unsigned = t.trim_start_matches(['-', '+']);
            let (int_part, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
            if int_part.is_empty() && frac.is_empty()
                || !int_part
                    .chars()
                    .chain(frac.chars())
                    .all(|c| c.is_ascii_digit())
            {
                return Err(bad_digit("Decimal"));
            }
            if let (Some(p), Some(s)) = (col.length, col.scale) {
                let digits = int_part.trim_start_matches('0').len() as i32;
                if digits > p - s {
                    return Err((
                        1208,
                        format!("Numeric data overflow (result precision), Value '{t}'"),
                        v.to_string(),
                    ));
                }
            }
            Ok(Some(trimmed(v)))
        }
        "bool" => match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "y" | "yes" => Ok(Some(Cow::Borrowed("t"))),
            "f" | "false" | "0" | "n" | "no" => Ok(Some(Cow::Borrowed("f"))),
            _ => Err((
                1207,
                format!("Invalid input syntax for type boolean: '{t}'"),
                v.to_string(),
            )),
        },
        "date" => parse_date(t, spec.date_format.as_deref())
            .map(|d| Some(Cow::Owned(d.format("%Y-%m-%d").to_string())))
            .ok_or_else(|| {
                (
                    1205,
                    format!(
                        "Invalid Date Format - value '{t}' does not match {}",
                        spec.date_format.as_deref().unwrap_or("YYYY-MM-DD")
                    ),
                    v.to_string(),
                )
            }),
        "timestamp" | "timestamptz" => parse_timestamp(t, spec.time_format.as_deref())
            .map(|s| Some(Cow::Owned(s)))
            .ok_or_else(|| {
                (
                    1206,
                    format!(
                        "Invalid timestamp format - value '{t}' does not match {}",
                        spec.time_format.as_deref().unwrap_or("YYYY-MM-DD HH:MI:SS")
                    ),
                    v.to_string(),
                )
            }),
        _ => Ok(Some(v)),
    }
}

/// The value without surrounding white space, copied only if it had some.
fn trimmed(v: Cow<'_, str>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// Turns a Redshift datetime format (`YYYY-MM-DD HH24:MI:SS`) into chrono's.
fn chrono_format(redshift: &str) -> String {
    let mut out = redshift.to_string();
    for (from, to) in [
        ("YYYY", "%Y"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("MON", "%b"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%H"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("AM", "%p"),
        ("PM", "%p"),
    ] {
        out = out.replace(from, to);
    }
    out
}

const AUTO_DATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%b %d %Y",
    "%B %d, %Y",
];

fn parse_date(t: &str, format: Option<&str>) -> Option<NaiveDate> {
    match format {
        None => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok(),
        Some(f) if f.eq_ignore_ascii_case("auto") => AUTO_DATES
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
            .or_else(|| {
                parse_timestamp(t, Some("auto"))
                    .and_then(|s| NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok())
            }),
        Some(f) => NaiveDate::parse_from_str(t, &chrono_format(f)).ok(),
    }
}

fn parse_timestamp(t: &str, format: Option<&str>) -> Option<String> {
    let fmt = |d: NaiveDateTime| d.format("%Y-%m-%d %H:%M:%S%.f").to_string();
    match format {
        None => NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(fmt),
        Some(f) if f.eq_ignore_ascii_case("epochsecs") => t
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .map(|d| fmt(d.naive_utc())),
        Some(f) if f.eq_ignore_ascii_case("epochmillisecs") => t
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .map(|d| fmt(d.naive_utc())),
        Some(f) if f.eq_ignore_ascii_case("auto") => DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.to_rfc3339())
            .or_else(|| {
                [
                    "%Y-%m-%d %H:%M:%S%.f",
                    "%Y-%m-%dT%H:%M:%S%.f",
                    "%Y/%m/%d %H:%M:%S%.f",
                    "%m/%d/%Y %H:%M:%S%.f",
                    "%Y-%m-%d %H:%M",
                ]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
                .map(fmt)
            })
            .or_else(|| {
                AUTO_DATES
                    .iter()
                    .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
                    .map(|d| fmt(d.and_time(NaiveTime::MIN)))
            }),
        Some(f) => NaiveDateTime::parse_from_str(t, &chrono_format(f))
            .ok()
            .map(fmt),
    }
}

/// Writes the rejected rows to `stl_load_errors` and `sys_load_error_detail`
/// on a connection of their own: they must outlive the COPY's rollback, as
/// they do in Redshift.
async fn record_errors(
    ctx: &CopyContext<'_>,
    query_id: i64,
    qualified: &str,
    errors: &[LoadError],
) {
    if errors.is_empty() {
        return;
    }
    let db = ctx.target.pg_database(ctx.database);
    let client = match ctx.pg.connect(&db).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot record load errors: {e}");
            return;
        }
    };
    let table_id: i64 = client
        .query_one(
            "SELECT COALESCE(to_regclass($1)::oid::bigint, 0)",
            &[&qualified],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    for e in errors {
        let r1 = client
            .execute(
                "INSERT INTO sandbox_sys.stl_load_errors (userid, slice, tbl, starttime, session, query, filename, line_number, colname, type, col_length, position, raw_line, raw_field_value, err_code, err_reason, is_partial, start_offset) \
                 VALUES (100, 0, $1::bigint::int, now(), pg_backend_pid(), $2::bigint::int, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0)",
                &[&table_id, &query_id, &e.file, &e.line, &e.column, &e.pg_type, &e.length, &e.position, &e.raw_line, &e.raw_value, &e.code, &e.reason],
            )
            .await;
        let r2 = client
            .execute(
                "INSERT INTO sandbox_sys.sys_load_error_detail (user_id, query_id, transaction_id, session_id, database_name, table_id, start_time, file_name, line_number, column_name, column_type, column_length, position, error_code, error_message) \
                 VALUES (100, $1, 0, pg_backend_pid(), $2, $3::bigint::int, now(), $4, $5, $6, $7, $8, $9, $10, $11)",
                &[&query_id, &ctx.database, &table_id, &e.file, &e.line, &e.column, &e.pg_type, &e.length, &e.position, &e.code, &e.reason],
            )
            .await;
        if let Err(err) = r1.and(r2) {
            tracing::warn!("cannot record a load error: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::tokenize;

    fn p(sql: &str) -> Result<CopySpec, String> {
        parse(&tokenize(sql).unwrap())
    }

    #[test]
    fn the_tools_copy_parses() {
        let s = p("COPY \"public\".\"sales\" (\"sale_id\", \"sold_on\")\nFROM 's3://b/sales/x.csv'\nIAM_ROLE 'arn:aws:iam::1:role/r'\nREGION 'us-east-1'\nCSV DELIMITER ',' QUOTE AS '\"' IGNOREHEADER 1 NULL AS '\\\\N' EMPTYASNULL DATEFORMAT 'auto' MAXERROR 5").unwrap();
        assert_eq!(s.schema.as_deref(), Some("public"));
        assert_eq!(s.table, "sales");
        assert_eq!(s.columns.unwrap(), ["sale_id", "sold_on"]);
        assert_eq!(s.source, "s3://b/sales/x.csv");
        assert_eq!(s.iam_role.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert_eq!(s.format, Format::Csv);
        assert_eq!(s.delimiter, Some(','));
        assert_eq!(s.ignore_header, 1);
        assert_eq!(s.null_as.as_deref(), Some("\\N"));
        assert!(s.empty_as_null);
        assert_eq!(s.max_error, 5);
    }

    #[test]
    fn options_in_other_spellings() {
        let s = p("copy t from 's3://b/k' credentials 'aws_iam_role=arn:aws:iam::1:role/r' format as json 'auto' gzip manifest;").unwrap();
        assert_eq!(s.format, Format::JsonAuto);
        assert!(s.gzip && s.manifest);
        assert_eq!(s.iam_role.as_deref(), Some("arn:aws:iam::1:role/r"));
        let s = p("copy t from 's3://b/k' iam_role 'x' delimiter '\\t' timeformat 'epochsecs'")
            .unwrap();
        assert_eq!(s.delimiter, Some('\t'));
        assert_eq!(s.format, Format::Text);
    }

    #[test]
    fn unsupported_options_fail_clearly() {
        for (sql, needle) in [
            (
                "copy t from 's3://b/k' iam_role 'x' parquet",
                "PARQUET is not supported",
            ),
            (
                "copy t from 's3://b/k' iam_role 'x' format as parquet",
                "FORMAT PARQUET",
            ),
            (
                "copy t from 's3://b/k' iam_role 'x' json 's3://b/paths.json'",
                "JSON 'auto' only",
            ),
            (
                "copy t from 's3://b/k' iam_role default",
                "IAM_ROLE default",
            ),
            ("copy t from '/etc/passwd'", "only from Amazon S3"),
            ("copy t from stdin", "syntax error"),
            (
                "copy t from 's3://b/k' iam_role 'x' delimiter ',,'",
                "single character",
            ),
        ] {
            let err = p(sql).unwrap_err();
            assert!(err.contains(needle), "{sql}: {err}");
        }
    }

    fn col(pg_type: &str, length: Option<i32>, scale: Option<i32>) -> TargetColumn {
        TargetColumn {
            name: "c".into(),
            pg_type: pg_type.into(),
            length,
            scale,
            not_null: false,
        }
    }

    #[test]
    fn values_are_checked_like_redshift() {
        let spec =
            p("copy t from 's3://b/k' iam_role 'x' csv dateformat 'auto' emptyasnull").unwrap();
        let ok = |c: &TargetColumn, v: &str| {
            convert(c, Some(v.into()), &spec)
                .unwrap()
                .map(|v| v.into_owned())
        };
        let bad = |c: &TargetColumn, v: &str| convert(c, Some(v.into()), &spec).unwrap_err();
        assert_eq!(ok(&col("int4", None, None), " 42 "), Some("42".into()));
        assert_eq!(bad(&col("int4", None, None), "4x").0, 1207);
        assert_eq!(bad(&col("int2", None, None), "70000").0, 1207);
        assert_eq!(
            ok(&col("int4", None, None), ""),
            None,
            "empty non-char fields load as NULL"
        );
        assert_eq!(ok(&col("varchar", Some(3), None), ""), None, "EMPTYASNULL");
        assert_eq!(bad(&col("varchar", Some(3), None), "abcd").0, 1204);
        assert_eq!(
            ok(&col("varchar", Some(5), None), "é€"),
            Some("é€".into()),
            "2 + 3 bytes fit in 5"
        );
        assert_eq!(
            bad(&col("varchar", Some(5), None), "éé€").0,
            1204,
            "lengths are in bytes, not characters"
        );
        assert_eq!(
            ok(&col("numeric", Some(10), Some(2)), "4.50"),
            Some("4.50".into())
        );
        assert_eq!(bad(&col("numeric", Some(4), Some(2)), "123.4").0, 1208);
        assert_eq!(
            ok(&col("date", None, None), "01/03/2024"),
            Some("2024-01-03".into())
        );
        assert_eq!(bad(&col("date", None, None), "soon").0, 1205);
        assert_eq!(ok(&col("bool", None, None), "Yes"), Some("t".into()));
        assert_eq!(
            convert(&col("int4", None, None), Some("\\N".into()), &spec).unwrap(),
            None
        );
    }

    #[test]
    fn timestamps_in_several_formats() {
        assert_eq!(
            parse_timestamp("2024-01-03 04:05:06", None).unwrap(),
            "2024-01-03 04:05:06"
        );
        assert_eq!(
            parse_timestamp("2024-01-03T04:05:06.5", Some("auto")).unwrap(),
            "2024-01-03 04:05:06.500"
        );
        assert_eq!(
            parse_timestamp("0", Some("epochsecs")).unwrap(),
            "1970-01-01 00:00:00"
        );
        assert_eq!(
            parse_timestamp("03.01.2024 04:05", Some("DD.MM.YYYY HH24:MI")).unwrap(),
            "2024-01-03 04:05:00"
        );
        assert!(parse_timestamp("2024-01-03", None).is_none());
    }
}
