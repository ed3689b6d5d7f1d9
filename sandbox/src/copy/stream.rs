//! The objects streamed from S3 into PostgreSQL's `COPY … FROM STDIN`:
//! cut into records, checked, and sent on in 64 KiB chunks.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Rows written to PostgreSQL so far (per object: `stl_load_commits`).
    pub(super) rows_written: u64,
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

    /// Loads a CSV or delimited-text object, record by record.
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
        let mut records = Records::new(self.spec, csv, delimiter);
        while let Some(line) = records.next(reader, file, ctx.cancelled).await? {
            if (line as u64) <= self.spec.ignore_header || records.is_blank() {
                continue;
            }
            let record = records.record();
            let raw = || record.raw(delimiter);
            self.row(record.fields(), file, line, &raw, true);
            if self.error_count > self.spec.max_error {
                return Ok(());
            }
            self.flush(sink).await?;
        }
        Ok(())
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
            let values = self.columns.iter().map(|c| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                    .and_then(|(_, v)| match v {
                        Value::Null => None,
                        Value::String(s) => Some(Cow::Owned(s.clone())),
                        other => Some(Cow::Owned(other.to_string())),
                    })
            });
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
    ///
    /// Each value is written as soon as it is converted, and the row's
    /// bytes are taken back if a later value fails: this is the hot loop
    /// of every load, and it allocates nothing for a value that needs no
    /// change.
    fn row<'v>(
        &mut self,
        values: impl ExactSizeIterator<Item = Option<Cow<'v, str>>>,
        file: &str,
        line: i64,
        raw: &dyn Fn() -> String,
        positional: bool,
    ) {
        if positional && let Some((code, reason)) = self.count_mismatch(values.len()) {
            self.reject(file, line, "", "", "", &raw(), "", code, reason);
            return;
        }
        let start = self.out.len();
        let columns = self.columns;
        // Like Redshift, one error per row is recorded, for the first
        // column that fails.
        for (i, (col, value)) in columns.iter().zip(values).enumerate() {
            let rejection = match convert(col, value, self.spec) {
                Ok(None) if col.not_null => (1213, "Missing data for not-null field".into(), None),
                Ok(v) => {
                    if i > 0 {
                        self.out.extend_from_slice(b",");
                    }
                    if let Some(v) = v {
                        write_csv_value(&mut self.out, &v);
                    }
                    continue;
                }
                Err((code, reason, raw_value)) => (code, reason, Some(raw_value)),
            };
            self.out.truncate(start);
            let (code, reason, raw_value) = rejection;
            // The declared length is reported only with a bad value, as
            // Redshift does; a missing not-null value has none.
            let length = match (&raw_value, col.length) {
                (Some(_), Some(l)) => l.to_string(),
                _ => String::new(),
            };
            self.reject(
                file,
                line,
                &col.name,
                &col.pg_type,
                &length,
                &raw(),
                raw_value.as_deref().unwrap_or(""),
                code,
                &reason,
            );
            return;
        }
        self.out.extend_from_slice(b"\n");
        self.rows_written += 1;
    }

    /// The load error for a positional row of `n` fields, if `n` is not
    /// the number of columns: Redshift's code and wording for each case.
    fn count_mismatch(&self, n: usize) -> Option<(i32, &'static str)> {
        if n < self.columns.len() {
            Some((1214, "Delimiter not found"))
        } else if n > self.columns.len() {
            Some((1216, "Extra column(s) found"))
        } else {
            None
        }
    }
}

/// Appends one value in the CSV that PostgreSQL's `COPY … FROM STDIN WITH
/// (FORMAT csv)` reads.
///
/// Quoted only when it must be, since quotes cost PostgreSQL's parser time
/// on every field: an empty string (unquoted it would be NULL), a value
/// holding the delimiter, a quote or a line break, and one starting with a
/// backslash (so that no line can read as the `\.` end-of-data marker).
fn write_csv_value(out: &mut BytesMut, v: &str) {
    let plain = !v.is_empty()
        && !v.starts_with('\\')
        && !v.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if plain {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.extend_from_slice(b"\"");
    for (i, part) in v.split('"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(b"\"");
}

/// One object read as records by `csv-core`'s push parser: the parser, its
/// buffers, and where it is in the input.
///
/// Why a push parser: it never asks for the whole object, only for the next
/// chunk, so memory stays bounded by the chunk and the longest record.
struct Records {
    parser: csv_core::Reader,
    /// The chunk read from the object, and how much of it is filled and
    /// already parsed.
    input: Vec<u8>,
    filled: usize,
    pos: usize,
    eof: bool,
    /// The current record's field bytes and field ends; both grow (doubled)
    /// when a record does not fit.
    fields_buf: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// The line the parser has reached, and the one the current record
    /// started on (a quoted field may span lines).
    line: i64,
    record_line: i64,
}

impl Records {
    fn new(spec: &CopySpec, csv: bool, delimiter: char) -> Self {
        Records {
            parser: csv_core::ReaderBuilder::new()
                .delimiter(delimiter as u8)
                .quote(spec.quote as u8)
                .quoting(csv)
                .build(),
            input: vec![0u8; CHUNK],
            filled: 0,
            pos: 0,
            eof: false,
            fields_buf: vec![0u8; 4096],
            out_len: 0,
            ends: vec![0usize; 64],
            ends_len: 0,
            line: 1,
            record_line: 1,
        }
    }

    /// Parses the next record and returns the line it started on (its
    /// fields are then in [`Records::record`]); `None` at the end of the
    /// object, or when the statement was cancelled (checked before each
    /// read, so a cancel stops a long object soon).
    async fn next<R>(
        &mut self,
        reader: &mut R,
        file: &str,
        cancelled: &AtomicBool,
    ) -> Result<Option<i64>, String>
    where
        R: AsyncBufRead + Unpin,
    {
        // The previous record's fields are done with: reuse the buffers.
        self.out_len = 0;
        self.ends_len = 0;
        loop {
            if self.pos == self.filled && !self.eof {
                if cancelled.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                self.filled = reader
                    .read(&mut self.input)
                    .await
                    .map_err(|e| format!("ERROR: reading {file}: {e}"))?;
                self.pos = 0;
                if self.filled == 0 {
                    self.eof = true;
                }
            }
            let (res, nin, nout, nend) = self.parser.read_record(
                &self.input[self.pos..self.filled],
                &mut self.fields_buf[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.line += self.input[self.pos..self.pos + nin]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as i64;
            self.pos += nin;
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                // More input is read at the top of the loop (at the end of
                // the object, an empty input makes the parser finish).
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    self.fields_buf.resize(self.fields_buf.len() * 2, 0)
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    self.ends.resize(self.ends.len() * 2, 0)
                }
                csv_core::ReadRecordResult::Record => {
                    let this_line = self.record_line;
                    self.record_line = self.line;
                    return Ok(Some(this_line));
                }
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Whether the record just parsed is a blank line (one empty field),
    /// which COPY skips.
    fn is_blank(&self) -> bool {
        self.ends_len == 1 && self.ends[0] == 0
    }

    /// The fields of the record just parsed, borrowed from the parser's
    /// buffer: no copy per field unless a value must change.
    fn record(&self) -> Record<'_> {
        let bytes = &self.fields_buf[..self.out_len];
        Record {
            // One UTF-8 check for the whole record. It does not make every
            // field valid text: the parser took out the delimiters and
            // quotes, so `\xC3,\xA9` is checked as the valid `é`. Hence
            // `fields` checks each field's ends.
            text: std::str::from_utf8(bytes).ok(),
            bytes,
            ends: &self.ends[..self.ends_len],
        }
    }
}

/// One parsed record: its fields' bytes end to end, and where each ends.
struct Record<'r> {
    bytes: &'r [u8],
    /// The same bytes as text, when they are valid UTF-8.
    text: Option<&'r str>,
    ends: &'r [usize],
}

impl<'r> Record<'r> {
    /// Each field as text; invalid UTF-8 is replaced (U+FFFD), field by field.
    fn fields(&self) -> impl ExactSizeIterator<Item = Option<Cow<'r, str>>> + use<'r> {
        let (bytes, text, ends) = (self.bytes, self.text, self.ends);
        (0..ends.len()).map(move |i| {
            let range = if i == 0 { 0 } else { ends[i - 1] }..ends[i];
            // Borrowed when the field's ends fall between characters of
            // the valid record; checked on its own otherwise.
            Some(match text.and_then(|t| t.get(range.clone())) {
                Some(field) => Cow::Borrowed(field),
                None => String::from_utf8_lossy(&bytes[range]),
            })
        })
    }

    /// The record as read, for a load error's `raw_line`.
    fn raw(&self, delimiter: char) -> String {
        let fields: Vec<Cow<str>> = self.fields().flatten().collect();
        fields.join(&delimiter.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A character split by a delimiter is two invalid fields, not a panic,
    /// though the record without its delimiter is valid UTF-8.
    #[test]
    fn a_character_cut_by_the_delimiter_is_two_replaced_fields() {
        let bytes = [0xC3, 0xA9];
        let record = Record {
            bytes: &bytes,
            text: std::str::from_utf8(&bytes).ok(),
            ends: &[1, 2],
        };
        assert!(record.text.is_some(), "the record alone is `é`");
        let fields: Vec<_> = record.fields().flatten().collect();
        assert_eq!(fields, ["\u{FFFD}", "\u{FFFD}"]);
        let whole = Record {
            bytes: &bytes,
            text: std::str::from_utf8(&bytes).ok(),
            ends: &[2],
        };
        assert_eq!(whole.fields().flatten().collect::<Vec<_>>(), ["é"]);
    }
}
