//! One field checked against its column's type, and turned into what
//! PostgreSQL accepts: Redshift's date and time formats, NULL rules and
//! lengths.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

use super::*;

pub(super) type Rejection = (i32, String, String);

/// What [`convert`] and its helpers return: the value for PostgreSQL
/// (`None` for NULL), borrowed from the input when it needs no change.
type Converted<'a> = Result<Option<Cow<'a, str>>, Rejection>;

/// Checks and normalises one value for its column, as Redshift's COPY does.
///
/// The NULL rules come first, since they apply before any type is checked;
/// then one helper per kind of column type.
pub(super) fn convert<'a>(
    col: &TargetColumn,
    value: Option<Cow<'a, str>>,
    spec: &CopySpec,
) -> Converted<'a> {
    let Some(v) = value else { return Ok(None) };
    let null_as = spec.null_as.as_deref().unwrap_or("\\N");
    if v == null_as {
        return Ok(None);
    }
    let is_char = matches!(col.pg_type.as_str(), "varchar" | "bpchar" | "text");
    if is_char {
        return convert_char(col, v, spec);
    }
    // Empty fields of non-character columns always load as NULL.
    if v.trim().is_empty() {
        return Ok(None);
    }
    match col.pg_type.as_str() {
        "int2" | "int4" | "int8" => convert_integer(col, v),
        "float4" | "float8" => {
            let t = v.trim();
            t.parse::<f64>().map_err(|_| bad_digit(t, &v, "Double"))?;
            Ok(Some(trimmed(v)))
        }
        "numeric" => convert_numeric(col, v),
        "bool" => convert_bool(&v),
        "date" => convert_date(v, spec),
        "timestamp" | "timestamptz" => convert_timestamp(v, spec),
        _ => Ok(Some(v)),
    }
}

/// A character value: kept as it is (spaces included), NULL when
/// `EMPTYASNULL` or `BLANKSASNULL` say so, rejected when longer than the
/// column. Redshift's lengths count bytes, not characters.
fn convert_char<'a>(col: &TargetColumn, v: Cow<'a, str>, spec: &CopySpec) -> Converted<'a> {
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
    Ok(Some(v))
}

/// Redshift's error for a value that is not a number of type `ty`; it
/// names the value's first character. `t` is the trimmed value, `v` the
/// value as read.
fn bad_digit(t: &str, v: &str, ty: &str) -> Rejection {
    (
        1207,
        format!(
            "Invalid digit, Value '{}', Pos 0, Type: {ty}",
            t.chars().next().unwrap_or(' ')
        ),
        v.to_string(),
    )
}

/// An integer, checked against its column's range here, so that an
/// overflow is a load error of the row rather than a failed COPY.
fn convert_integer<'a>(col: &TargetColumn, v: Cow<'a, str>) -> Converted<'a> {
    let t = v.trim();
    let n: i64 = t.parse().map_err(|_| {
        bad_digit(
            t,
            &v,
            match col.pg_type.as_str() {
                "int2" => "Short",
                "int4" => "Integer",
                _ => "Long",
            },
        )
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

/// A decimal number: digits only (no exponent), and no more integer
/// digits than the column's precision minus its scale leaves room for.
fn convert_numeric<'a>(col: &TargetColumn, v: Cow<'a, str>) -> Converted<'a> {
    let t = v.trim();
    let unsigned = t.trim_start_matches(['-', '+']);
    let (int_part, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int_part.is_empty() && frac.is_empty()
        || !int_part
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad_digit(t, &v, "Decimal"));
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

/// A boolean in any of the spellings Redshift's COPY accepts.
fn convert_bool(v: &str) -> Converted<'static> {
    let t = v.trim();
    match t.to_ascii_lowercase().as_str() {
        "t" | "true" | "1" | "y" | "yes" => Ok(Some(Cow::Borrowed("t"))),
        "f" | "false" | "0" | "n" | "no" => Ok(Some(Cow::Borrowed("f"))),
        _ => Err((
            1207,
            format!("Invalid input syntax for type boolean: '{t}'"),
            v.to_string(),
        )),
    }
}

/// A date read with `DATEFORMAT`, written as ISO `YYYY-MM-DD`, which
/// PostgreSQL reads whatever its `DateStyle`.
fn convert_date<'a>(v: Cow<'a, str>, spec: &CopySpec) -> Converted<'a> {
    let t = v.trim();
    // The common case, a valid ISO date read with the default format (or
    // `auto`, whose first form it is), passes as it is: chrono's format
    // parser and printer cost more than the rest of a row together.
    let iso_format = spec
        .date_format
        .as_deref()
        .is_none_or(|f| f.eq_ignore_ascii_case("auto") || f.eq_ignore_ascii_case("YYYY-MM-DD"));
    if iso_format && iso_date(t).is_some() {
        return Ok(Some(trimmed(v)));
    }
    parse_date(t, spec.date_format.as_deref())
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
        })
}

/// A timestamp read with `TIMEFORMAT`, written in ISO form.
fn convert_timestamp<'a>(v: Cow<'a, str>, spec: &CopySpec) -> Converted<'a> {
    let t = v.trim();
    // As for dates: `YYYY-MM-DD HH:MI:SS` with the default format is
    // already what PostgreSQL reads, once checked.
    if spec.time_format.is_none() && iso_timestamp(t) {
        return Ok(Some(trimmed(v)));
    }
    parse_timestamp(t, spec.time_format.as_deref())
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
        })
}

/// `t` as a date, if it is exactly `YYYY-MM-DD` and a real day.
fn iso_date(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..])?)
}

/// Whether `t` is exactly `YYYY-MM-DD HH:MI:SS`, a real day and time.
fn iso_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 19
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && iso_date(&t[..10]).is_some()
        && (|| NaiveTime::from_hms_opt(digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..])?))()
            .is_some()
}

/// The number written in ASCII digits `b`, if they are all digits.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// The value without surrounding white space, copied only if it had some.
pub(super) fn trimmed(v: Cow<'_, str>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// Turns a Redshift datetime format (`YYYY-MM-DD HH24:MI:SS`) into chrono's.
pub(super) fn chrono_format(redshift: &str) -> String {
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

pub(super) const AUTO_DATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%b %d %Y",
    "%B %d, %Y",
];

pub(super) fn parse_date(t: &str, format: Option<&str>) -> Option<NaiveDate> {
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

pub(super) fn parse_timestamp(t: &str, format: Option<&str>) -> Option<String> {
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
