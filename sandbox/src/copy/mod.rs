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
//!
//! # Layout
//!
//! - `parse`: the statement's text, into a [`CopySpec`];
//! - this file: the checks (IAM, region, manifest, the table's columns) and
//!   [`run`], which ties the rest together;
//! - `stream`: the objects streamed into PostgreSQL;
//! - `convert`: one field checked and converted;
//! - `rejected`: the rows rejected, recorded.

use std::sync::atomic::Ordering;

use async_compression::tokio::bufread::GzipDecoder;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio_postgres::Client;

use std::sync::atomic::AtomicBool;

use crate::aws::ControlPlane;
use crate::pg::{Pg, Target, pg_message};
use crate::translate::Token;

mod access;
mod convert;
mod parse;
mod rejected;
mod stream;

pub(crate) use access::{Access, assume_role};
use convert::*;
pub use parse::*;
use rejected::*;
use stream::*;

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

/// Records this session's last COPY, for `PG_LAST_COPY_ID()` and
/// `PG_LAST_COPY_COUNT()` (session settings: a session's next statements
/// see them, as on Redshift).
async fn set_last_copy(client: &Client, query_id: i64, rows: i64) -> Result<(), String> {
    client
        .execute(
            "SELECT set_config('sandbox.last_copy_id', $1, false), \
             set_config('sandbox.last_copy_count', $2, false)",
            &[&query_id.to_string(), &rows.to_string()],
        )
        .await
        .map(|_| ())
        .map_err(|e| crate::pg::pg_message(&e))
}

/// Runs the COPY; returns the number of rows loaded.
///
/// Every check (the statement, the table, IAM, the bucket's region, the
/// objects) runs before any data is read, so a COPY that cannot succeed
/// fails before it has loaded anything; their order is fixed, so a COPY
/// wrong in several ways always reports the same error.
pub async fn run(
    ctx: &CopyContext<'_>,
    client: &Client,
    tokens: &[Token],
    query_id: i64,
) -> Result<i64, String> {
    let spec = parse(tokens)?;
    let qualified = match &spec.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&spec.table)),
        None => quote_ident(&spec.table),
    };
    let columns = target_columns(client, &qualified, &spec).await?;
    let access = assume_role(ctx, "COPY", spec.iam_role.clone()).await?;
    let objects = objects_to_load(ctx.aws, &access, &spec).await?;
    // The load begins: PG_LAST_COPY_ID is this COPY's, and
    // PG_LAST_COPY_COUNT 0 until it has loaded (as the reference says of a
    // COPY that fails while loading).
    set_last_copy(client, query_id, 0).await?;
    let mut sink = start_copy_in(client, &qualified, &columns).await?;
    let mut loader = Loader {
        spec: &spec,
        columns: &columns,
        out: BytesMut::with_capacity(CHUNK * 2),
        errors: Vec::new(),
        error_count: 0,
        rows_written: 0,
    };
    let mut commits = Vec::with_capacity(objects.len());
    for (b, k) in &objects {
        let reader = open_object(ctx.aws, &spec, b, k).await?;
        let file = format!("s3://{b}/{k}");
        let before = loader.rows_written;
        loader.load_object(reader, &file, ctx, &mut sink).await?;
        commits.push((file, loader.rows_written - before));
        if loader.error_count > spec.max_error {
            break;
        }
    }
    let loaded = finish_load(ctx, sink, loader, query_id, &qualified).await?;
    set_last_copy(client, query_id, loaded).await?;
    if let Err(e) = record_commits(client, query_id, &spec.table, &commits).await {
        tracing::warn!("could not record stl_load_commits: {e}");
    }
    Ok(loaded)
}

/// One row per object loaded in `stl_load_commits`, as Redshift logs them,
/// in the COPY's own transaction.
async fn record_commits(
    client: &Client,
    query_id: i64,
    table: &str,
    commits: &[(String, u64)],
) -> Result<(), tokio_postgres::Error> {
    for (file, lines) in commits {
        client
            .execute(
                "INSERT INTO sandbox_sys.stl_load_commits (userid, query, slice, name, filename, \
                 byte_offset, lines_scanned, errors, curtime, status, file_format, is_partial, \
                 start_offset) VALUES (100, $1, 0, left($2, 256), left($3, 256), 0, $4, -1, \
                 now() AT TIME ZONE 'UTC', 1, 'Text', 0, 0)",
                &[&(query_id as i32), &table, file, &(*lines as i32)],
            )
            .await?;
    }
    Ok(())
}

/// PostgreSQL's side of the load, boxed so that it can be dropped (aborting
/// the COPY) before `run` returns.
type CopySink = std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>;

/// The `(bucket, key)` of every object the COPY reads: the manifest's
/// entries, or every object under the prefix. All are checked for
/// `s3:GetObject` before any is read, so a load that would be refused half
/// way fails before it starts.
async fn objects_to_load(
    aws: &ControlPlane,
    access: &Access,
    spec: &CopySpec,
) -> Result<Vec<(String, String)>, String> {
    let (bucket, key) = split_s3(&spec.source);
    check_region(aws, &bucket, spec.region.as_deref()).await?;
    let objects = if spec.manifest {
        if !access.allows("s3:GetObject", &format!("arn:aws:s3:::{bucket}/{key}"), &[]) {
            return Err(access.denied(&format!("s3:GetObject on the manifest s3://{bucket}/{key}")));
        }
        manifest_entries(aws, &bucket, &key).await?
    } else {
        list_prefix(aws, access, &bucket, &key).await?
    };
    for (b, k) in &objects {
        if !access.allows("s3:GetObject", &format!("arn:aws:s3:::{b}/{k}"), &[]) {
            return Err(access.denied(&format!("s3:GetObject on s3://{b}/{k}")));
        }
    }
    Ok(objects)
}

/// Every object under `s3://bucket/key`, read page by page; an empty prefix
/// is an error, as in Redshift, rather than a load of no rows.
async fn list_prefix(
    aws: &ControlPlane,
    access: &Access,
    bucket: &str,
    key: &str,
) -> Result<Vec<(String, String)>, String> {
    if !access.allows(
        "s3:ListBucket",
        &format!("arn:aws:s3:::{bucket}"),
        &[("s3:prefix", key)],
    ) {
        return Err(access.denied(&format!("s3:ListBucket on {bucket} with prefix '{key}'")));
    }
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
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
                    found.push((bucket.to_string(), k.to_string()));
                }
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "ERROR: The specified S3 prefix '{key}' does not exist"
        ));
    }
    Ok(found)
}

/// Opens PostgreSQL's `COPY … FROM STDIN` into the target columns. Always
/// CSV, whatever the source's format: the loader re-writes every checked
/// row in that one format.
async fn start_copy_in(
    client: &Client,
    qualified: &str,
    columns: &[TargetColumn],
) -> Result<CopySink, String> {
    let col_list: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let copy_in = format!(
        "COPY {qualified} ({}) FROM STDIN WITH (FORMAT csv)",
        col_list.join(", ")
    );
    let sink = client
        .copy_in::<_, Bytes>(&copy_in)
        .await
        .map_err(|e| pg_message(&e))?;
    Ok(Box::pin(sink))
}

/// One object's body as a stream, un-gzipped on the fly when the COPY says
/// `GZIP`: the object never sits whole in memory.
async fn open_object(
    aws: &ControlPlane,
    spec: &CopySpec,
    bucket: &str,
    key: &str,
) -> Result<Box<dyn AsyncRead + Unpin + Send>, String> {
    let obj = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "ERROR: S3ServiceException:{}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    let body = obj.body.into_async_read();
    Ok(if spec.gzip {
        Box::new(GzipDecoder::new(body))
    } else {
        Box::new(body)
    })
}

/// Commits the load, or aborts it (too many bad rows, or cancelled); the
/// rejected rows are recorded in either case, since `stl_load_errors` is
/// where Redshift tells why a load failed.
async fn finish_load(
    ctx: &CopyContext<'_>,
    mut sink: CopySink,
    mut loader: Loader<'_>,
    query_id: i64,
    qualified: &str,
) -> Result<i64, String> {
    let spec = loader.spec;
    if loader.error_count > spec.max_error || ctx.cancelled.load(Ordering::SeqCst) {
        // Dropping the sink without finishing it aborts PostgreSQL's COPY, so
        // nothing of this load is kept.
        drop(sink);
        record_errors(ctx, query_id, qualified, &loader.errors).await;
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
    record_errors(ctx, query_id, qualified, &loader.errors).await;
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

    /// The ISO short cut for dates and timestamps gives what chrono's
    /// formats give, for every day of a leap year and its neighbours, and
    /// leaves whatever is not exactly ISO to them.
    #[test]
    fn iso_values_take_the_short_cut_with_the_same_result() {
        let spec = p("copy t from 's3://b/k' iam_role 'x' csv").unwrap();
        let via_chrono = |t: &str| parse_date(t, None).map(|d| d.format("%Y-%m-%d").to_string());
        for y in [1999, 2000, 2023, 2024] {
            for m in 0..=13 {
                for d in 0..=32 {
                    let t = format!("{y:04}-{m:02}-{d:02}");
                    let got = convert(&col("date", None, None), Some(t.as_str().into()), &spec)
                        .ok()
                        .flatten()
                        .map(|v| v.into_owned());
                    assert_eq!(got, via_chrono(&t), "{t}");
                    let ts = format!("{t} 23:59:59");
                    let got = convert(
                        &col("timestamp", None, None),
                        Some(ts.as_str().into()),
                        &spec,
                    )
                    .ok()
                    .flatten()
                    .map(|v| v.into_owned());
                    assert_eq!(got, parse_timestamp(&ts, None), "{ts}");
                }
            }
        }
        for (t, want) in [
            (" 2024-01-05 ", Some("2024-01-05")),
            ("2024-1-5", Some("2024-01-05")),
            ("2024-01-05x", None),
            ("2024/01/05", None),
        ] {
            let got = convert(&col("date", None, None), Some(t.into()), &spec)
                .ok()
                .flatten()
                .map(|v| v.into_owned());
            assert_eq!(got.as_deref(), want, "{t:?}");
        }
        for (t, ok) in [
            ("2024-01-05 24:00:00", false),
            ("2024-01-05 10:60:00", false),
            ("2024-01-05 10:00:00.25", true),
        ] {
            let got = convert(&col("timestamp", None, None), Some(t.into()), &spec);
            assert_eq!(got.is_ok(), ok, "{t}: {got:?}");
        }
    }
}
