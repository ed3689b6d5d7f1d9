//! `COPY`'s text: the source, the target and every option, read from
//! the statement's tokens as Redshift reads them.

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
