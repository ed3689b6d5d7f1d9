//! Safe building blocks for SQL text: validated identifiers, escaped literals
//! and column types.
//!
//! Every piece of SQL this crate sends is assembled from these types. A user's
//! string never reaches SQL text directly: names become [`Ident`]s (checked,
//! lower-cased, always double-quoted), values become literals through
//! [`quote_literal`], and column types are parsed into a [`ColumnType`] from a
//! closed list. Why so strict when the config file is "trusted"? Because config
//! files are copied, shared and generated, and a stray quote in a table name
//! should produce a clear error, not a half-run statement.

use std::fmt;

/// The longest identifier Redshift accepts, in bytes.
pub const MAX_IDENT_LEN: usize = 127;

/// A validated SQL identifier (table, schema or column name).
///
/// Redshift folds unquoted identifiers to lower case, so we lower-case here and
/// always emit the name double-quoted: the quoted form then means exactly what
/// the unquoted form would, and reserved words such as `user` or `order` work
/// as column names.
///
/// ```
/// use s3_to_redshift::sql::Ident;
/// let id = Ident::new("Sales_2024").unwrap();
/// assert_eq!(id.to_string(), "\"sales_2024\"");
/// assert!(Ident::new("x\"; DROP TABLE y; --").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ident(String);

impl Ident {
    /// Validates `raw` as a standard Redshift identifier: an ASCII letter or
    /// underscore, then letters, digits, underscores or dollar signs, at most
    /// 127 bytes. Returns a message saying what is wrong otherwise.
    pub fn new(raw: &str) -> Result<Self, String> {
        let mut chars = raw.chars();
        let Some(first) = chars.next() else {
            return Err("is empty; expected a name such as `sales`".into());
        };
        if raw.len() > MAX_IDENT_LEN {
            return Err(format!(
                "is {} bytes long; Redshift names are at most {MAX_IDENT_LEN}",
                raw.len()
            ));
        }
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(format!(
                "`{}` must start with a letter or `_`",
                printable(raw)
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
        {
            return Err(format!(
                "`{}` contains {}; names may use only ASCII letters, digits, `_` and `$`",
                printable(raw),
                describe_char(bad)
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The name without quotes, lower-cased (as Redshift stores it).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Validation admits no `"`, so no escaping is needed inside the quotes.
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ident({})", self.0)
    }
}

/// A `schema.table` name. The schema defaults to `public`.
///
/// ```
/// use s3_to_redshift::sql::TableName;
/// let t = TableName::parse("analytics.Events").unwrap();
/// assert_eq!(t.to_string(), "\"analytics\".\"events\"");
/// assert_eq!(TableName::parse("events").unwrap().schema.as_str(), "public");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName {
    /// The schema the table lives in.
    pub schema: Ident,
    /// The table's own name.
    pub table: Ident,
}

impl TableName {
    /// Parses `table` or `schema.table`; each part must be a valid [`Ident`].
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw.split('.').collect();
        match parts.as_slice() {
            [table] => Ok(Self {
                schema: Ident("public".into()),
                table: Ident::new(table).map_err(|e| format!("table name {e}"))?,
            }),
            [schema, table] => Ok(Self {
                schema: Ident::new(schema).map_err(|e| format!("schema name {e}"))?,
                table: Ident::new(table).map_err(|e| format!("table name {e}"))?,
            }),
            _ => Err(format!(
                "`{}` has {} dots; expected `table` or `schema.table`",
                printable(raw),
                parts.len() - 1
            )),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Renders `value` as a single-quoted SQL string literal.
///
/// Single quotes are doubled and backslashes escaped, because Redshift reads
/// backslash escapes inside the string options of `COPY` (`DELIMITER '\t'`).
/// Control characters are refused: they have no business in a name, a path or
/// an ARN, and a newline in a literal makes logs misleading.
///
/// ```
/// use s3_to_redshift::sql::quote_literal;
/// assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
/// assert_eq!(quote_literal(r"a\b").unwrap(), r"'a\\b'");
/// assert!(quote_literal("a\nb").is_err());
/// ```
pub fn quote_literal(value: &str) -> Result<String, String> {
    if let Some(bad) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains {}, which cannot appear in a SQL literal",
            describe_char(bad)
        ));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// Renders a single character option of `COPY` (`DELIMITER`, `QUOTE`).
/// A tab is written as Redshift's `'\t'` escape; everything else goes through
/// [`quote_literal`].
pub fn copy_char_literal(c: char) -> Result<String, String> {
    if c == '\t' {
        Ok("'\\t'".to_string())
    } else {
        quote_literal(&c.to_string())
    }
}

/// A column type from the closed list of Redshift types this tool writes.
///
/// Parsing is case-insensitive and accepts the usual aliases; the canonical
/// spelling is what [`fmt::Display`] prints.
///
/// ```
/// use s3_to_redshift::sql::ColumnType;
/// assert_eq!(ColumnType::parse("varchar( 64 )").unwrap().to_string(), "VARCHAR(64)");
/// assert_eq!(ColumnType::parse("numeric(10,2)").unwrap().to_string(), "DECIMAL(10,2)");
/// assert!(ColumnType::parse("INT; DROP TABLE x").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `SMALLINT` (2 bytes).
    SmallInt,
    /// `INTEGER` (4 bytes).
    Integer,
    /// `BIGINT` (8 bytes).
    BigInt,
    /// `DECIMAL(precision, scale)`.
    Decimal(u8, u8),
    /// `REAL` (4-byte float).
    Real,
    /// `DOUBLE PRECISION` (8-byte float).
    Double,
    /// `BOOLEAN`.
    Boolean,
    /// `CHAR(n)`, fixed length in bytes.
    Char(u32),
    /// `VARCHAR(n)` in bytes; `None` is `VARCHAR(MAX)`.
    Varchar(Option<u32>),
    /// `DATE`.
    Date,
    /// `TIMESTAMP` (without time zone).
    Timestamp,
    /// `TIMESTAMPTZ`.
    TimestampTz,
    /// `TIME`.
    Time,
    /// `TIMETZ`.
    TimeTz,
    /// `SUPER`, Redshift's semi-structured type.
    Super,
}

/// Redshift's limit for `CHAR` and `VARCHAR` lengths, in bytes.
const MAX_CHAR_LEN: u32 = 65535;

impl ColumnType {
    /// Parses a type such as `INTEGER`, `VARCHAR(256)` or `DECIMAL(12,2)`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let upper = raw.trim().to_ascii_uppercase();
        let (base, args) = match upper.find('(') {
            Some(open) => {
                let close = upper
                    .rfind(')')
                    .filter(|&c| c == upper.len() - 1)
                    .ok_or_else(|| format!("`{}` has an unclosed `(`", printable(raw)))?;
                let args: Vec<String> = upper[open + 1..close]
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .collect();
                (upper[..open].trim().to_string(), Some(args))
            }
            None => (upper.clone(), None),
        };
        let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
        let no_args = |t: ColumnType| match &args {
            None => Ok(t),
            Some(_) => Err(format!("`{base}` takes no length or precision")),
        };
        let int_arg = |a: &str, what: &str, max: u32| -> Result<u32, String> {
            a.parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| format!("{what} `{a}` must be a whole number from 1 to {max}"))
        };
        match base.as_str() {
            "SMALLINT" | "INT2" => no_args(Self::SmallInt),
            "INTEGER" | "INT" | "INT4" => no_args(Self::Integer),
            "BIGINT" | "INT8" => no_args(Self::BigInt),
            "REAL" | "FLOAT4" => no_args(Self::Real),
            "DOUBLE PRECISION" | "FLOAT8" | "FLOAT" => no_args(Self::Double),
            "BOOLEAN" | "BOOL" => no_args(Self::Boolean),
            "DATE" => no_args(Self::Date),
            "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => no_args(Self::Timestamp),
            "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => no_args(Self::TimestampTz),
            "TIME" | "TIME WITHOUT TIME ZONE" => no_args(Self::Time),
            "TIMETZ" | "TIME WITH TIME ZONE" => no_args(Self::TimeTz),
            "SUPER" => no_args(Self::Super),
            "DECIMAL" | "NUMERIC" => match args.as_deref() {
                None => Ok(Self::Decimal(18, 0)),
                Some([p]) => Ok(Self::Decimal(int_arg(p, "precision", 38)? as u8, 0)),
                Some([p, s]) => {
                    let p = int_arg(p, "precision", 38)?;
                    let s = s.parse::<u32>().ok().filter(|s| *s <= p).ok_or_else(|| {
                        format!("scale `{s}` must be from 0 to the precision {p}")
                    })?;
                    Ok(Self::Decimal(p as u8, s as u8))
                }
                Some(_) => Err("DECIMAL takes (precision) or (precision,scale)".into()),
            },
            "CHAR" | "CHARACTER" | "NCHAR" | "BPCHAR" => match args.as_deref() {
                None => Ok(Self::Char(1)),
                Some([n]) => Ok(Self::Char(int_arg(n, "length", 4096)?)),
                Some(_) => Err("CHAR takes one length".into()),
            },
            // Redshift stores TEXT, and VARCHAR without a length, as VARCHAR(256).
            "VARCHAR" | "CHARACTER VARYING" | "NVARCHAR" | "TEXT" => match args.as_deref() {
                None => Ok(Self::Varchar(Some(256))),
                Some([n]) if n == "MAX" => Ok(Self::Varchar(None)),
                Some([n]) => Ok(Self::Varchar(Some(int_arg(n, "length", MAX_CHAR_LEN)?))),
                Some(_) => Err("VARCHAR takes one length or MAX".into()),
            },
            _ => Err(format!(
                "`{}` is not a Redshift column type this tool knows; use one of SMALLINT, \
                 INTEGER, BIGINT, DECIMAL(p,s), REAL, DOUBLE PRECISION, BOOLEAN, CHAR(n), \
                 VARCHAR(n), DATE, TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ, SUPER",
                printable(raw.trim())
            )),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SmallInt => f.write_str("SMALLINT"),
            Self::Integer => f.write_str("INTEGER"),
            Self::BigInt => f.write_str("BIGINT"),
            Self::Decimal(p, s) => write!(f, "DECIMAL({p},{s})"),
            Self::Real => f.write_str("REAL"),
            Self::Double => f.write_str("DOUBLE PRECISION"),
            Self::Boolean => f.write_str("BOOLEAN"),
            Self::Char(n) => write!(f, "CHAR({n})"),
            Self::Varchar(Some(n)) => write!(f, "VARCHAR({n})"),
            Self::Varchar(None) => f.write_str("VARCHAR(MAX)"),
            Self::Date => f.write_str("DATE"),
            Self::Timestamp => f.write_str("TIMESTAMP"),
            Self::TimestampTz => f.write_str("TIMESTAMPTZ"),
            Self::Time => f.write_str("TIME"),
            Self::TimeTz => f.write_str("TIMETZ"),
            Self::Super => f.write_str("SUPER"),
        }
    }
}

/// One column of the target table: a name, a type and whether it may be NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: Ident,
    /// The column's type.
    pub ty: ColumnType,
    /// `true` when declared `NOT NULL`.
    pub not_null: bool,
}

impl ColumnDef {
    /// Parses the right-hand side of a `[COLUMNS]` entry, e.g.
    /// `VARCHAR(64) NOT NULL`, for the column `name`.
    ///
    /// ```
    /// use s3_to_redshift::sql::ColumnDef;
    /// let c = ColumnDef::parse("id", "integer not null").unwrap();
    /// assert_eq!(c.to_string(), "\"id\" INTEGER NOT NULL");
    /// ```
    pub fn parse(name: &str, spec: &str) -> Result<Self, String> {
        let name = Ident::new(name).map_err(|e| format!("column name {e}"))?;
        let upper = spec.trim().to_ascii_uppercase();
        let (ty, not_null) = match upper.strip_suffix("NOT NULL") {
            Some(rest) => (&spec.trim()[..rest.len()], true),
            None => (spec.trim(), false),
        };
        let ty = ColumnType::parse(ty)?;
        Ok(Self { name, ty, not_null })
    }
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.ty)?;
        if self.not_null {
            f.write_str(" NOT NULL")?;
        }
        Ok(())
    }
}

/// Shows a user's string in an error message without letting control
/// characters (or a very long value) garble the terminal.
pub(crate) fn printable(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect();
    if raw.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// Names a character for an error message: `'"'`, `a space`, `U+00E9 'é'`.
pub(crate) fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c if c.is_ascii() => format!("`{c}`"),
        c => format!("the non-ASCII character U+{:04X} `{c}`", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_lowercased_and_quoted() {
        assert_eq!(Ident::new("MyTable").unwrap().to_string(), "\"mytable\"");
        assert_eq!(Ident::new("_x$1").unwrap().as_str(), "_x$1");
        // Reserved words are fine because we always quote.
        assert_eq!(Ident::new("order").unwrap().to_string(), "\"order\"");
    }

    #[test]
    fn hostile_identifiers_are_rejected_with_the_reason() {
        for (raw, needle) in [
            ("", "empty"),
            ("1abc", "start with a letter"),
            ("a\"b", "`\"`"),
            ("a;b", "`;`"),
            ("a b", "a space"),
            ("a'b", "`'`"),
            ("tablé", "U+00E9"),
            ("a\u{0}b", "control character U+0000"),
            ("a-b", "`-`"),
        ] {
            let err = Ident::new(raw).unwrap_err();
            assert!(err.contains(needle), "{raw:?}: {err}");
        }
        let long = "a".repeat(128);
        assert!(Ident::new(&long).unwrap_err().contains("at most 127"));
        assert!(Ident::new(&"a".repeat(127)).is_ok());
    }

    #[test]
    fn table_names_take_an_optional_schema() {
        let t = TableName::parse("Sales").unwrap();
        assert_eq!(t.to_string(), "\"public\".\"sales\"");
        assert!(TableName::parse("a.b.c").unwrap_err().contains("2 dots"));
        assert!(TableName::parse("a.").unwrap_err().contains("table name"));
        assert!(
            TableName::parse("x;y.z")
                .unwrap_err()
                .contains("schema name")
        );
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(quote_literal("").unwrap(), "''");
        assert_eq!(quote_literal("''").unwrap(), "''''''");
        assert_eq!(
            quote_literal("s3://b/k'; DROP TABLE t; --").unwrap(),
            "'s3://b/k''; DROP TABLE t; --'"
        );
        assert_eq!(quote_literal("\\'").unwrap(), "'\\\\'''");
        assert!(quote_literal("a\rb").is_err());
        assert_eq!(copy_char_literal('\t').unwrap(), "'\\t'");
        assert_eq!(copy_char_literal('|').unwrap(), "'|'");
        assert_eq!(copy_char_literal('\'').unwrap(), "''''");
    }

    #[test]
    fn column_types_parse_to_canonical_form() {
        for (raw, want) in [
            ("int", "INTEGER"),
            ("INT8", "BIGINT"),
            ("float", "DOUBLE PRECISION"),
            ("double   precision", "DOUBLE PRECISION"),
            ("numeric", "DECIMAL(18,0)"),
            ("decimal(38, 10)", "DECIMAL(38,10)"),
            ("varchar(max)", "VARCHAR(MAX)"),
            ("character varying(12)", "VARCHAR(12)"),
            ("char", "CHAR(1)"),
            ("timestamp with time zone", "TIMESTAMPTZ"),
            ("bool", "BOOLEAN"),
        ] {
            assert_eq!(ColumnType::parse(raw).unwrap().to_string(), want, "{raw}");
        }
        for (raw, needle) in [
            ("VARCHAR(0)", "from 1 to 65535"),
            ("VARCHAR(70000)", "from 1 to 65535"),
            ("DECIMAL(10,11)", "scale"),
            ("DECIMAL(39)", "from 1 to 38"),
            ("INTEGER(4)", "takes no length"),
            ("VARCHAR(10", "unclosed"),
            ("INT) ; DROP TABLE t; --(", "unclosed"),
            ("BLOB", "not a Redshift column type"),
        ] {
            let err = ColumnType::parse(raw).unwrap_err();
            assert!(err.contains(needle), "{raw}: {err}");
        }
    }

    #[test]
    fn column_defs_parse_not_null() {
        let c = ColumnDef::parse("Amount", "decimal(10,2) not null").unwrap();
        assert_eq!(c.to_string(), "\"amount\" DECIMAL(10,2) NOT NULL");
        let c = ColumnDef::parse("note", "VARCHAR(100)").unwrap();
        assert!(!c.not_null);
        assert!(ColumnDef::parse("bad name", "INT").is_err());
    }
}
