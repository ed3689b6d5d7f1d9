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

/// Parses a `COPY … FROM 's3://…'` command. Every option is either
/// understood or an error: a silently ignored option would make a load in
/// the sandbox differ from the same load on AWS.
pub fn parse(tokens: &[Token]) -> Result<CopySpec, String> {
    let mut cursor = Cursor {
        tokens: significant(tokens),
        pos: 1, // after COPY
    };
    let mut spec = cursor.head()?;
    while let Some(word) = cursor.option_word()? {
        cursor.option(&word, &mut spec)?;
    }
    if spec.format == Format::JsonAuto && spec.delimiter.is_some() {
        return Err("ERROR: DELIMITER cannot be used with JSON".into());
    }
    Ok(spec)
}

/// PostgreSQL's wording for a token the grammar did not expect (or for the
/// end of the statement), so that a typo reads as it would on Redshift.
fn syntax_error_near(token: Option<&Token>) -> String {
    match token {
        Some(t) => format!("ERROR: syntax error at or near \"{}\"", t.text),
        None => "ERROR: syntax error at end of input".to_string(),
    }
}

/// The statement's significant tokens and how far they have been read.
///
/// Why a struct: the statement is read in parts (the target, the source,
/// one option at a time), and each part is a method that moves the same
/// position on, rather than a closure that borrows an index from `parse`.
struct Cursor<'a> {
    tokens: Vec<&'a Token>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The token at the position, if the statement goes on that far.
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos).copied()
    }

    /// Whether the token at the position is exactly `text` (punctuation).
    fn at(&self, text: &str) -> bool {
        self.peek().is_some_and(|x| x.text == text)
    }

    /// Whether the token at the position is the word `w`.
    fn at_word(&self, w: &str) -> bool {
        self.peek().is_some_and(|x| x.is_word(w))
    }

    /// The syntax error for the token at the position.
    fn syntax_error(&self) -> String {
        syntax_error_near(self.peek())
    }

    /// Steps over an optional `AS`: Redshift accepts `NULL AS '\\N'` and
    /// `NULL '\\N'` alike, and so on for every option with an argument.
    fn skip_as(&mut self) {
        if self.at_word("as") {
            self.pos += 1;
        }
    }

    /// A table or column name.
    fn ident(&mut self) -> Result<String, String> {
        let name = self
            .peek()
            .and_then(|x| x.ident())
            .ok_or_else(|| self.syntax_error())?;
        self.pos += 1;
        Ok(name)
    }

    /// A string literal, its backslash escapes read as Redshift reads them
    /// in every literal (`'\\'` is one backslash, `'\t'` a tab: the
    /// tokenizer's `string_value`).
    fn string_literal(&mut self) -> Result<String, String> {
        let v = self
            .peek()
            .and_then(|x| x.string_value())
            .ok_or_else(|| self.syntax_error())?;
        self.pos += 1;
        Ok(v)
    }

    /// An option's string argument: an optional AS, then a string literal.
    fn string_arg(&mut self) -> Result<String, String> {
        self.skip_as();
        self.string_literal()
    }

    /// An option's numeric argument: an optional AS, then a whole number.
    fn number_arg(&mut self) -> Result<u64, String> {
        self.skip_as();
        let v = self
            .peek()
            .filter(|x| x.kind == Kind::Number)
            .and_then(|x| x.text.parse().ok())
            .ok_or_else(|| self.syntax_error())?;
        self.pos += 1;
        Ok(v)
    }

    /// An option's one-character argument (`DELIMITER`, `QUOTE`): the CSV
    /// parser works on single bytes, so a longer string is refused here
    /// rather than cut short.
    fn char_arg(&mut self, what: &str) -> Result<char, String> {
        let s = self.string_arg()?;
        let mut cs = s.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(format!("ERROR: {what} must be a single character")),
        }
    }

    /// `[schema.]table [(columns)] FROM 's3://…'`: everything before the
    /// options, as a spec whose options are still Redshift's defaults.
    fn head(&mut self) -> Result<CopySpec, String> {
        let (schema, table) = self.table_name()?;
        let columns = self.column_list()?;
        if !self.at_word("from") {
            return Err(self.syntax_error());
        }
        self.pos += 1;
        let source = self.string_literal()?;
        if !source.starts_with("s3://") {
            return Err(format!(
                "ERROR: the sandbox loads only from Amazon S3 ('s3://bucket/key'), not from '{source}'"
            ));
        }
        Ok(CopySpec {
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
        })
    }

    /// `table` or `schema.table`.
    fn table_name(&mut self) -> Result<(Option<String>, String), String> {
        let first = self.ident()?;
        if !self.at(".") {
            return Ok((None, first));
        }
        self.pos += 1;
        Ok((Some(first), self.ident()?))
    }

    /// The optional `(column, …)` list.
    fn column_list(&mut self) -> Result<Option<Vec<String>>, String> {
        if !self.at("(") {
            return Ok(None);
        }
        self.pos += 1;
        let mut columns = Vec::new();
        loop {
            columns.push(self.ident()?);
            match self.peek().map(|x| x.text.as_str()) {
                Some(",") => self.pos += 1,
                Some(")") => {
                    self.pos += 1;
                    return Ok(Some(columns));
                }
                _ => return Err(self.syntax_error()),
            }
        }
    }

    /// The next option's keyword, upper-cased; `None` at the end of the
    /// statement (a trailing `;` included).
    fn option_word(&mut self) -> Result<Option<String>, String> {
        let Some(tok) = self.peek() else {
            return Ok(None);
        };
        if tok.text == ";" && self.pos == self.tokens.len() - 1 {
            return Ok(None);
        }
        if tok.kind != Kind::Word {
            return Err(syntax_error_near(Some(tok)));
        }
        self.pos += 1;
        Ok(Some(tok.text.to_ascii_uppercase()))
    }

    /// Reads the arguments of the option `word` (already read) into `spec`.
    /// An option not listed here is an error, never skipped: see [`parse`].
    fn option(&mut self, word: &str, spec: &mut CopySpec) -> Result<(), String> {
        match word {
            "IAM_ROLE" => spec.iam_role = Some(self.iam_role()?),
            "CREDENTIALS" => spec.iam_role = Some(self.credentials()?),
            "REGION" => spec.region = Some(self.string_arg()?),
            "CSV" => spec.format = Format::Csv,
            "FORMAT" | "JSON" => spec.format = self.format(word)?,
            "DELIMITER" => spec.delimiter = Some(self.char_arg("DELIMITER")?),
            "QUOTE" => spec.quote = self.char_arg("QUOTE")?,
            "IGNOREHEADER" => spec.ignore_header = self.number_arg()?,
            "NULL" => spec.null_as = Some(self.string_arg()?),
            "GZIP" => spec.gzip = true,
            "MANIFEST" => spec.manifest = true,
            "EMPTYASNULL" => spec.empty_as_null = true,
            "BLANKSASNULL" => spec.blanks_as_null = true,
            "DATEFORMAT" => spec.date_format = Some(self.string_arg()?),
            "TIMEFORMAT" => spec.time_format = Some(self.string_arg()?),
            "MAXERROR" => spec.max_error = self.number_arg()?,
            "COMPUPDATE" | "STATUPDATE" => self.skip_update_setting(),
            other => {
                return Err(format!(
                    "ERROR: COPY option {other} is not supported by the sandbox"
                ));
            }
        }
        Ok(())
    }

    /// `IAM_ROLE 'arn'`. `IAM_ROLE default` means the cluster's default
    /// role, which the emulator has no notion of: refused, not guessed.
    fn iam_role(&mut self) -> Result<String, String> {
        if self.at_word("default") {
            return Err(
                "ERROR: IAM_ROLE default is not supported by the sandbox; name the role's ARN"
                    .into(),
            );
        }
        self.string_arg()
    }

    /// `CREDENTIALS 'aws_iam_role=arn'`, the older spelling of `IAM_ROLE`.
    /// Access keys are not taken: the sandbox checks what a role may do.
    fn credentials(&mut self) -> Result<String, String> {
        let v = self.string_arg()?;
        let role = v
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("aws_iam_role="))
            .ok_or("ERROR: the sandbox accepts CREDENTIALS only as 'aws_iam_role=<arn>'")?;
        Ok(role.to_string())
    }

    /// `FORMAT [AS] CSV`, `FORMAT [AS] JSON 'auto'` or `JSON 'auto'`
    /// (`word` says which of the two keywords came first).
    fn format(&mut self, word: &str) -> Result<Format, String> {
        if word == "FORMAT" {
            self.skip_as();
            let f = self
                .peek()
                .map(|x| x.text.to_ascii_uppercase())
                .unwrap_or_default();
            self.pos += 1;
            match f.as_str() {
                "CSV" => return Ok(Format::Csv),
                "JSON" => {}
                other => {
                    return Err(format!(
                        "ERROR: FORMAT {other} is not supported by the sandbox (CSV and JSON 'auto' are)"
                    ));
                }
            }
        }
        // A JSONPaths file would map fields to columns by path; only
        // 'auto' (keys matched to column names) is implemented.
        let arg = self
            .peek()
            .and_then(|x| x.string_value())
            .unwrap_or_default();
        if !arg.eq_ignore_ascii_case("auto") {
            return Err(format!(
                "ERROR: the sandbox supports JSON 'auto' only, not JSON '{arg}'"
            ));
        }
        self.pos += 1;
        Ok(Format::JsonAuto)
    }

    /// `COMPUPDATE` and `STATUPDATE`, with their optional setting: they
    /// tune statistics and compression analysis, which have no effect on
    /// the data loaded, so they are accepted and skipped.
    fn skip_update_setting(&mut self) {
        if self.peek().is_some_and(|x| {
            ["on", "off", "true", "false", "preset"]
                .iter()
                .any(|w| x.is_word(w))
        }) {
            self.pos += 1;
        }
    }
}
