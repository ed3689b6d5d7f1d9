//! The objects streamed from S3 into PostgreSQL's `COPY … FROM STDIN`:
//! cut into records, checked, and sent on in 64 KiB chunks.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, BufReader};

use super::*;
use crate::pg::pg_message;

/// How much is buffered before it is sent to PostgreSQL.
pub(super) const CHUNK: usize = 64 * 1024;
/// Load errors kept per COPY (Redshift keeps a bounded number too).
pub(super) const MAX_RECORDED_ERRORS: usize = 100;

pub(super) struct Loader<'a> {
    pub(super) spec: &'a CopySpec,
    pub(super) columns: &'a [TargetColumn],
    pub(super) out: BytesMut,
    pub(super) errors: Vec<LoadError>,
    pub(super) error_count: u64,
}

impl Loader<'_> {
    pub(super) async fn load_object<S>(
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
