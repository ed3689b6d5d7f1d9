//! Step 4, when the table is not described: the columns inferred from the
//! data (`[TABLE] INFER_COLUMNS = true`).
//!
//! The header gives the names; a sample of rows (the first MiB of the first
//! object) gives the types, the narrowest that fits every value seen:
//! `SMALLINT` → `INTEGER` → `BIGINT` → `DECIMAL(p,s)`, `BOOLEAN`, `DATE`,
//! `TIMESTAMP`, and otherwise `VARCHAR(n)` with room to grow.
//!
//! Why only for review: a sample cannot prove anything about the rows it did
//! not see. A later row with a longer name, or `N/A` in a number column,
//! fails the COPY. So `plan` prints the inferred `[COLUMNS]` section, ready to
//! paste into the file and adjust; columns in the file always win.

use std::fmt;

use crate::config::{Compression, Config, LoadFormat, S3Uri};
use crate::error::{Error, Result};
use crate::sql::{ColumnDef, ColumnType, Ident, MAX_IDENT_LEN};

/// How much of the first object is read for the sample.
pub const SAMPLE_BYTES: u64 = 1024 * 1024;

/// The most rows looked at.
pub const SAMPLE_ROWS: usize = 10_000;

/// Columns inferred from a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inferred {
    /// The columns, in the file's order.
    pub columns: Vec<ColumnDef>,
    /// How many rows were looked at.
    pub sampled_rows: usize,
    /// Where the sample came from.
    pub source: String,
    /// Things a reviewer should know (renamed headers, all-empty columns).
    pub notes: Vec<String>,
}

impl fmt::Display for Inferred {
    /// The `[COLUMNS]` section to paste into the config file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "; inferred from {} ({} rows sampled): review before relying on it",
            self.source, self.sampled_rows
        )?;
        for n in &self.notes {
            writeln!(f, "; note: {n}")?;
        }
        writeln!(f, "[COLUMNS]")?;
        for c in &self.columns {
            let ty = c.ty.to_string();
            writeln!(
                f,
                "{} = {ty}{}",
                c.name.as_str(),
                if c.not_null { " NOT NULL" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// What the values of one column have been consistent with so far.
#[derive(Clone, Debug)]
struct Seen {
    values: usize,
    int: bool,
    max_abs: u128,
    decimal: bool,
    int_digits: u32,
    scale: u32,
    boolean: bool,
    date: bool,
    timestamp: bool,
    max_len: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            values: 0,
            int: true,
            max_abs: 0,
            decimal: true,
            int_digits: 1,
            scale: 0,
            boolean: true,
            date: true,
            timestamp: true,
            max_len: 0,
        }
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(&s[..4])
        && digits(&s[5..7])
        && digits(&s[8..])
        && (1..=12).contains(&s[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[8..].parse::<u8>().unwrap_or(0))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, with a space or a `T`.
fn is_timestamp(s: &str) -> bool {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return false;
    }
    let (date, rest) = s.split_at(10);
    let time = &rest[1..9];
    let frac = &rest[9..];
    is_date(date)
        && matches!(rest.as_bytes()[0], b' ' | b'T')
        && time.as_bytes()[2] == b':'
        && time.as_bytes()[5] == b':'
        && digits(&time[..2])
        && digits(&time[3..5])
        && digits(&time[6..])
        && (frac.is_empty() || (frac.starts_with('.') && digits(&frac[1..]) && frac.len() <= 7))
}

impl Seen {
    fn add(&mut self, v: &str) {
        self.values += 1;
        self.max_len = self.max_len.max(v.len());
        let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
        if digits(unsigned) && unsigned.len() <= 38 {
            let n: u128 = unsigned.parse().unwrap_or(u128::MAX);
            self.max_abs = self.max_abs.max(n);
            self.int_digits = self
                .int_digits
                .max(unsigned.trim_start_matches('0').len().max(1) as u32);
        } else {
            self.int = false;
            match unsigned.split_once('.') {
                Some((i, f)) if (i.is_empty() || digits(i)) && digits(f) => {
                    self.int_digits = self
                        .int_digits
                        .max(i.trim_start_matches('0').len().max(1) as u32);
                    self.scale = self.scale.max(f.len() as u32);
                }
                _ => self.decimal = false,
            }
        }
        if !matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "t" | "f"
        ) {
            self.boolean = false;
        }
        if !is_date(v) {
            self.date = false;
        }
        if !is_timestamp(v) {
            self.timestamp = false;
        }
    }

    fn column_type(&self) -> ColumnType {
        if self.values == 0 {
            return ColumnType::Varchar(Some(256));
        }
        if self.int {
            return match self.max_abs {
                0..=32_767 => ColumnType::SmallInt,
                32_768..=2_147_483_647 => ColumnType::Integer,
                n if n <= i64::MAX as u128 => ColumnType::BigInt,
                _ => ColumnType::Decimal(38, 0),
            };
        }
        if self.decimal && self.int_digits + self.scale <= 38 {
            // Room for values a little larger than the sample's.
            let precision = if self.int_digits + self.scale + 2 <= 18 {
                18
            } else {
                38
            };
            return ColumnType::Decimal(precision, self.scale as u8);
        }
        if self.boolean {
            return ColumnType::Boolean;
        }
        if self.date {
            return ColumnType::Date;
        }
        if self.timestamp {
            return ColumnType::Timestamp;
        }
        // Lengths are bytes in Redshift. Double the longest seen, rounded up
        // to a power of two: later rows are often a little longer.
        let len = (self.max_len.max(8) * 2).next_power_of_two().min(65_535) as u32;
        ColumnType::Varchar(Some(len))
    }
}

/// A header cell made into a valid column name: lower case, other
/// characters as `_`, a leading `_` before a digit.
fn column_name(raw: &str, i: usize) -> String {
    let mut name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '_') {
        name = format!("column_{}", i + 1);
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name.truncate(MAX_IDENT_LEN - 4);
    name
}

/// Infers the columns of a CSV sample. `header` says whether the first
/// record names the columns; a last record cut off by the sample's end is
/// left out.
///
/// ```
/// use s3_to_redshift::schema::infer_csv;
/// let sample = b"id,price,sold on,ok\n1,4.50,2024-01-03,true\n70000,12.25,2024-02-01,false\n";
/// let inferred = infer_csv(sample, ',', '"', true, "sample.csv").unwrap();
/// let cols: Vec<String> = inferred.columns.iter().map(|c| c.to_string()).collect();
/// assert_eq!(cols, [
///     "\"id\" INTEGER", "\"price\" DECIMAL(18,2)", "\"sold_on\" DATE", "\"ok\" BOOLEAN",
/// ]);
/// ```
pub fn infer_csv(
    sample: &[u8],
    delimiter: char,
    quote: char,
    header: bool,
    source: &str,
) -> std::result::Result<Inferred, String> {
    let (Ok(delimiter), Ok(quote)) = (u8::try_from(delimiter), u8::try_from(quote)) else {
        return Err("inference reads single-byte delimiters and quotes only".into());
    };
    // Drop a last line cut off by the sample's end.
    let end = sample
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(sample.len(), |i| i + 1);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(&sample[..end]);
    let mut records = reader.records();
    let mut notes = Vec::new();
    let names: Vec<String> = if header {
        let first = records
            .next()
            .ok_or("the sample is empty: no header line to name the columns")?
            .map_err(|e| format!("the header line is not valid CSV: {e}"))?;
        first.iter().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let mut seen: Vec<Seen> = vec![Seen::default(); names.len()];
    let mut rows = 0;
    for record in records.take(SAMPLE_ROWS) {
        let Ok(record) = record else { break };
        if seen.len() < record.len() {
            seen.resize(record.len(), Seen::default());
        }
        for (i, v) in record.iter().enumerate() {
            if !v.is_empty() {
                seen[i].add(v);
            }
        }
        rows += 1;
    }
    if seen.is_empty() {
        return Err("the sample holds no columns".into());
    }
    let mut columns = Vec::new();
    let mut used = std::collections::HashSet::new();
    for (i, s) in seen.iter().enumerate() {
        let raw = names.get(i).map(String::as_str).unwrap_or("");
        let mut name = column_name(raw, i);
        if header && name != raw {
            notes.push(format!("header `{raw}` became column `{name}`"));
        }
        let base = name.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        if s.values == 0 {
            notes.push(format!(
                "`{name}` was empty in every sampled row; VARCHAR(256) is a guess"
            ));
        }
        columns.push(ColumnDef {
            name: Ident::new(&name).map_err(|e| format!("column name {e}"))?,
            ty: s.column_type(),
            not_null: false,
        });
    }
    Ok(Inferred {
        columns,
        sampled_rows: rows,
        source: source.to_string(),
        notes,
    })
}

/// Reads the start of the first object at the source and infers the
/// columns from it. CSV only; gzip objects are unpacked on the way.
pub async fn infer_from_source(cfg: &Config, s3: &aws_sdk_s3::Client) -> Result<Inferred> {
    let uri: &S3Uri = &cfg.s3.source;
    let source_err = |reason: String| Error::Source {
        uri: uri.to_string(),
        reason,
    };
    if cfg.load.format != LoadFormat::Csv || cfg.s3.manifest {
        return Err(source_err(
            "columns can be inferred from CSV objects only (not JSON or a manifest); list them in [COLUMNS]".into(),
        ));
    }
    // One listing call: only the first object is sampled.
    let listed = match s3
        .list_objects_v2()
        .bucket(&uri.bucket)
        .prefix(&uri.key)
        .max_keys(1)
        .send()
        .await
    {
        Ok(l) => l,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => {
            return Err(source_err(format!(
                "bucket `{}` does not exist; check [S3] SOURCE",
                uri.bucket
            )));
        }
        Err(e) => return Err(Error::aws("S3", "ListObjectsV2", uri.to_string(), e)),
    };
    let key = listed
        .contents()
        .first()
        .and_then(|o| o.key())
        .ok_or_else(|| {
            source_err(
                "no object has this key or starts with it: nothing to infer the columns from"
                    .into(),
            )
        })?
        .to_string();
    let got = s3
        .get_object()
        .bucket(&uri.bucket)
        .key(&key)
        .range(format!("bytes=0-{}", SAMPLE_BYTES - 1))
        .send()
        .await
        .map_err(|e| Error::aws("S3", "GetObject", format!("s3://{}/{key}", uri.bucket), e))?;
    let bytes = got
        .body
        .collect()
        .await
        .map_err(|e| source_err(format!("reading the sample failed: {e}")))?
        .into_bytes();
    let sample = match cfg.load.compression {
        Compression::None => bytes.to_vec(),
        Compression::Gzip => {
            // The sample ends mid-stream: read what decompresses, stop at
            // the cut.
            use std::io::Read;
            let mut out = Vec::new();
            let mut dec = flate2::read::GzDecoder::new(&bytes[..]);
            let mut buf = [0u8; 64 * 1024];
            loop {
                match dec.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            out
        }
        other => {
            return Err(source_err(format!(
                "columns cannot be inferred from {other:?}-compressed objects; list them in [COLUMNS]"
            )));
        }
    };
    infer_csv(
        &sample,
        cfg.load.delimiter,
        cfg.load.quote,
        cfg.load.ignore_header > 0,
        &format!("s3://{}/{key}", uri.bucket),
    )
    .map_err(source_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(sample: &str) -> Vec<String> {
        infer_csv(sample.as_bytes(), ',', '"', true, "t")
            .unwrap()
            .columns
            .iter()
            .map(|c| c.ty.to_string())
            .collect()
    }

    #[test]
    fn the_narrowest_type_that_fits_every_value() {
        assert_eq!(
            types("a,b,c,d\n1,-32768,2147483648,1\n2,5,1,x\n"),
            ["SMALLINT", "INTEGER", "BIGINT", "VARCHAR(16)"]
        );
        assert_eq!(
            types("a,b,c\n1.5,2024-01-03 10:00:00,T\n2,2024-01-03T11:30:00.25,f\n"),
            ["DECIMAL(18,1)", "TIMESTAMP", "BOOLEAN"]
        );
        assert_eq!(
            types("a\n12345678901234567890123\n"),
            ["DECIMAL(38,0)"],
            "past BIGINT"
        );
        assert_eq!(types("a\n2024-13-01\n"), ["VARCHAR(32)"], "not a date");
    }

    #[test]
    fn text_gets_room_to_grow_and_quoted_fields_are_one_value() {
        let t = types("name\n\"stapler, heavy-duty\"\nx\n");
        assert_eq!(t, ["VARCHAR(64)"], "19 bytes, doubled and rounded up");
        let long = format!("name\n{}\n", "é".repeat(40_000));
        assert_eq!(
            types(&long),
            ["VARCHAR(65535)"],
            "capped at Redshift's limit"
        );
    }

    #[test]
    fn headers_become_valid_unique_names_and_the_reviewer_is_told() {
        let i = infer_csv(b"Sale ID,2nd,sale id,\n1,2,3,4\n", ',', '"', true, "t").unwrap();
        let names: Vec<&str> = i.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["sale_id", "_2nd", "sale_id_2", "column_4"]);
        assert!(
            i.notes
                .iter()
                .any(|n| n.contains("`Sale ID` became column `sale_id`"))
        );
    }

    #[test]
    fn a_line_cut_by_the_sample_end_is_ignored_and_empties_are_nulls() {
        let i = infer_csv(b"a,b\n1,\n2,\n3,x\n40000", ',', '"', true, "t").unwrap();
        assert_eq!(i.sampled_rows, 3);
        assert_eq!(i.columns[0].ty.to_string(), "SMALLINT", "40000 was cut off");
        assert_eq!(i.columns[1].ty.to_string(), "VARCHAR(16)");
        assert!(infer_csv(b"", ',', '"', true, "t").is_err());
    }
}
