//! From Redshift SQL to PostgreSQL: a small tokenizer, named parameters, and
//! the Redshift-only clauses of `CREATE TABLE`.
//!
//! Redshift grew out of PostgreSQL 8, so most SQL runs unchanged. What does
//! not is mostly physical design (`DISTSTYLE`, `SORTKEY`, `ENCODE`), which
//! has no meaning on one PostgreSQL server: it is dropped, and the drop is
//! logged so nobody wonders where it went. Working on tokens rather than text
//! keeps string literals and quoted names safe from the rewriting.

/// A lexical token. `text` is exactly what was in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What kind of token.
    pub kind: Kind,
    /// Its source text.
    pub text: String,
}

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Spaces, newlines, comments.
    Space,
    /// A keyword or unquoted name.
    Word,
    /// A `"quoted name"`.
    QuotedIdent,
    /// A `'string literal'`, or a `$$dollar-quoted$$` one.
    Str,
    /// A number.
    Number,
    /// A named parameter, `:name`.
    Param,
    /// Anything else: `(`, `,`, `::`, `;`, …
    Punct,
}

impl Token {
    /// Whether this is the word `w` (case-insensitive).
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(w)
    }

    /// The value of a string literal, with `''` undone (a dollar-quoted
    /// one's, without its tags).
    pub fn string_value(&self) -> Option<String> {
        if self.kind != Kind::Str {
            return None;
        }
        if self.text.starts_with('$') {
            let tag_len = self.text[1..].find('$').map_or(1, |i| i + 2);
            return Some(self.text[tag_len..self.text.len() - tag_len].to_string());
        }
        Some(redshift_string(&self.text[1..self.text.len() - 1]))
    }

    /// The name this token denotes: unquoted words fold to lower case, as in
    /// Redshift; quoted names keep their case.
    pub fn ident(&self) -> Option<String> {
        match self.kind {
            Kind::Word => Some(self.text.to_ascii_lowercase()),
            Kind::QuotedIdent => Some(self.text[1..self.text.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    }
}

/// The value of the inside of a `'…'` literal as Redshift reads it: `''`
/// is a quote, and a backslash escapes the next character, as PostgreSQL 8
/// (which Redshift grew from) read every literal: `\\` a backslash, `\'` a
/// quote, `\n` `\t` `\r` `\b` `\f` their control characters, `\` and one to
/// three octal digits that byte, and any other character itself.
pub fn redshift_string(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // `''`: the tokenizer only lets quotes in doubled.
                chars.next_if_eq(&'\'');
                out.push('\'');
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some(d @ '0'..='7') => {
                    let mut code = d.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.peek().and_then(|c| c.to_digit(8)) {
                            Some(v) => {
                                code = code * 8 + v;
                                chars.next();
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(code & 0xff).unwrap_or('\u{fffd}'));
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// Splits SQL into tokens; fails on an unterminated string, name or comment.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (kind, end) = next_token(&chars, i)?;
        out.push(Token {
            kind,
            text: chars[i..end].iter().collect(),
        });
        i = end;
    }
    Ok(out)
}

/// The kind of the token that starts at `start`, and where it ends.
///
/// The first one or two characters decide the kind, as in PostgreSQL's
/// lexer; the order of the tests matters where two kinds share a first
/// character (`--` before `-`, `/*` before `/`, `.5` before `.`).
fn next_token(chars: &[char], start: usize) -> Result<(Kind, usize), String> {
    let c = chars[start];
    let next = chars.get(start + 1).copied();
    Ok(if c.is_whitespace() {
        (Kind::Space, scan_while(chars, start, char::is_whitespace))
    } else if c == '-' && next == Some('-') {
        (Kind::Space, scan_while(chars, start, |c| c != '\n'))
    } else if c == '/' && next == Some('*') {
        (Kind::Space, block_comment_end(chars, start)?)
    } else if c == '\'' {
        (Kind::Str, quoted_end(chars, start)?)
    } else if c == '"' {
        (Kind::QuotedIdent, quoted_end(chars, start)?)
    } else if let Some(tag) = dollar_tag(chars, start) {
        (Kind::Str, dollar_end(chars, start, tag)?)
    } else if c.is_alphabetic() || c == '_' {
        let end = scan_while(chars, start, |c| {
            c.is_alphanumeric() || c == '_' || c == '$'
        });
        (Kind::Word, end)
    } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
        // Letters too, so that `1e5` and a malformed `12abc` stay one
        // token, for PostgreSQL to accept or reject as a whole.
        let end = scan_while(chars, start, |c| c.is_ascii_alphanumeric() || c == '.');
        (Kind::Number, end)
    } else if c == ':' && next == Some(':') {
        (Kind::Punct, start + 2)
    } else if c == ':' && next.is_some_and(|d| d.is_alphabetic() || d == '_') {
        let end = scan_while(chars, start + 1, |c| c.is_alphanumeric() || c == '_');
        (Kind::Param, end)
    } else {
        (Kind::Punct, start + 1)
    })
}

/// The length of the `$tag$` (or `$$`) opening a dollar-quoted string at
/// `start`, if one does (Redshift's function bodies: `AS $$ … $$`). A `$1`
/// is a positional parameter, not a tag.
fn dollar_tag(chars: &[char], start: usize) -> Option<usize> {
    if chars[start] != '$' {
        return None;
    }
    let mut i = start + 1;
    if chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars.get(i) == Some(&'$')).then_some(i + 1 - start)
}

/// The end of the dollar-quoted string starting at `start` with a tag of
/// `tag` characters: after the same tag again. Everything between is
/// quoted: `;`, quotes and `:names` are text, not SQL.
fn dollar_end(chars: &[char], start: usize, tag: usize) -> Result<usize, String> {
    let tag_chars = &chars[start..start + tag];
    let mut i = start + tag;
    while i + tag <= chars.len() {
        if &chars[i..i + tag] == tag_chars {
            return Ok(i + tag);
        }
        i += 1;
    }
    Err("unterminated dollar-quoted string".into())
}

/// The first index at or after `from` whose character does not satisfy
/// `keep` (or the end of the text).
fn scan_while(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut i = from;
    while i < chars.len() && keep(chars[i]) {
        i += 1;
    }
    i
}

/// The end of the `/* … */` comment starting at `start` (no nesting).
fn block_comment_end(chars: &[char], start: usize) -> Result<usize, String> {
    let mut i = start + 2;
    while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
        i += 1;
    }
    if i >= chars.len() {
        return Err("unterminated /* comment".into());
    }
    Ok(i + 2)
}

/// The end of the string literal or quoted name starting at `start`. Its
/// quote doubled (`'it''s'`, `"a""b"`) is part of it, not its end; an
/// unterminated one is an error, since everything after it would otherwise
/// be read as quoted text.
fn quoted_end(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(if quote == '\'' {
                    "unterminated quoted string".into()
                } else {
                    "unterminated quoted identifier".into()
                });
            }
            Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => i += 2,
            Some(&q) if q == quote => return Ok(i + 1),
            // Redshift reads a backslash in a string literal as an escape:
            // `'it\'s'` is one literal. Not in a quoted name.
            Some('\\') if quote == '\'' => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// The tokens without spaces and comments.
pub fn significant(tokens: &[Token]) -> Vec<&Token> {
    tokens.iter().filter(|t| t.kind != Kind::Space).collect()
}

/// Joins tokens back into SQL.
pub fn render(tokens: &[Token]) -> String {
    tokens.iter().map(|t| t.text.as_str()).collect()
}

/// Replaces `:name` parameters by `$1`, `$2`, … and returns the names in
/// placeholder order. A name used twice gets one placeholder.
pub fn number_params(tokens: &mut [Token]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for t in tokens.iter_mut().filter(|t| t.kind == Kind::Param) {
        let name = t.text[1..].to_string();
        let n = match names.iter().position(|x| *x == name) {
            Some(p) => p + 1,
            None => {
                names.push(name);
                names.len()
            }
        };
        t.text = format!("${n}");
    }
    names
}

/// Rewrites a Redshift `CREATE TABLE` for PostgreSQL; other statements pass
/// unchanged. Returns the notes on what was dropped or changed.
pub fn translate_ddl(tokens: &mut Vec<Token>) -> Vec<String> {
    if !is_create_table(tokens) {
        return Vec::new();
    }
    let mut ddl = DdlRewrite {
        tokens,
        out: Vec::with_capacity(tokens.len()),
        notes: Vec::new(),
        depth: 0,
    };
    let mut i = 0;
    while i < tokens.len() {
        i = ddl.rewrite_at(i);
    }
    let DdlRewrite { out, notes, .. } = ddl;
    *tokens = out;
    notes
}

/// What a Redshift `CREATE TABLE` says of its physical design, which
/// PostgreSQL has no place for: kept by the engine as metadata, so that
/// `pg_table_def` and `svv_table_info` report it as Redshift does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableDesign {
    /// The table's name as written (`t`, `s.t`, `"S"."T"`).
    pub table: String,
    /// `DISTSTYLE` (`EVEN`, `KEY`, `ALL`, `AUTO`), upper case.
    pub diststyle: Option<String>,
    /// The distribution key's column.
    pub distkey: Option<String>,
    /// The sort key's columns, in order.
    pub sortkeys: Vec<String>,
    /// Whether the sort key is `INTERLEAVED`.
    pub interleaved: bool,
    /// `(column, encoding)`, the encodings in lower case.
    pub encodings: Vec<(String, String)>,
}

/// The design a `CREATE TABLE … (columns) …` declares, read from the
/// statement as written; `None` for any other statement (or one with
/// nothing to keep).
pub fn table_design(tokens: &[Token]) -> Option<TableDesign> {
    if !is_create_table(tokens) {
        return None;
    }
    let sig = significant(tokens);
    let at = sig.iter().position(|t| t.is_word("table"))?;
    let mut k = at + 1;
    while sig
        .get(k)
        .is_some_and(|t| ["if", "not", "exists"].iter().any(|w| t.is_word(w)))
    {
        k += 1;
    }
    // The name: names and dots (`s.t`, `"S"."T"`), up to whatever follows
    // it (`(`, `AS`, `DISTKEY(…)` in a CREATE TABLE … AS).
    let mut name_end = k;
    while sig.get(name_end).is_some_and(|t| {
        let name = matches!(t.kind, Kind::Word | Kind::QuotedIdent);
        if (name_end - k) % 2 == 0 {
            name
        } else {
            t.text == "."
        }
    }) {
        name_end += 1;
    }
    if name_end == k {
        return None;
    }
    let mut design = TableDesign {
        table: sig[k..name_end].iter().map(|t| t.text.as_str()).collect(),
        ..TableDesign::default()
    };
    // `(…)`'s names, at the group opening at index `open` of `sig`.
    let names_in = |open: usize| -> Vec<String> {
        let mut names = Vec::new();
        let mut j = open + 1;
        while let Some(t) = sig.get(j) {
            if t.text == ")" {
                break;
            }
            if let Some(n) = t.ident() {
                names.push(n);
            }
            j += 1;
        }
        names
    };
    let mut depth = 0usize;
    let mut column: Option<String> = None;
    let mut expect_column = false;
    let mut j = name_end;
    while j < sig.len() {
        let t = sig[j];
        let next = sig.get(j + 1);
        match t.text.as_str() {
            "(" => {
                depth += 1;
                expect_column = depth == 1;
            }
            ")" => depth = depth.saturating_sub(1),
            "," if depth == 1 => expect_column = true,
            _ if depth == 1 && expect_column => {
                expect_column = false;
                let constraint = [
                    "primary",
                    "unique",
                    "foreign",
                    "constraint",
                    "check",
                    "like",
                ]
                .iter()
                .any(|w| t.is_word(w));
                column = if constraint { None } else { t.ident() };
            }
            _ if depth == 1 && t.is_word("encode") => {
                if let (Some(c), Some(e)) = (&column, next.and_then(|n| n.ident())) {
                    design.encodings.push((c.clone(), e.to_ascii_lowercase()));
                }
            }
            _ if depth == 1 && t.is_word("distkey") => design.distkey = column.clone(),
            _ if depth == 1 && t.is_word("sortkey") => design.sortkeys.extend(column.clone()),
            _ if depth == 0 && t.is_word("diststyle") => {
                design.diststyle = next.map(|n| n.text.to_ascii_uppercase());
            }
            _ if depth == 0 && t.is_word("distkey") && next.is_some_and(|n| n.text == "(") => {
                design.distkey = names_in(j + 1).into_iter().next();
            }
            _ if depth == 0 && t.is_word("interleaved") => design.interleaved = true,
            _ if depth == 0 && t.is_word("sortkey") && next.is_some_and(|n| n.text == "(") => {
                design.sortkeys = names_in(j + 1);
            }
            _ => {}
        }
        j += 1;
    }
    let nothing = design.diststyle.is_none()
        && design.distkey.is_none()
        && design.sortkeys.is_empty()
        && design.encodings.is_empty();
    (!nothing).then_some(design)
}

/// Whether the statement is a `CREATE [TEMP …] TABLE`: only those carry
/// Redshift's physical design clauses, and only they are rewritten.
fn is_create_table(tokens: &[Token]) -> bool {
    let sig = significant(tokens);
    sig.first().is_some_and(|t| t.is_word("create"))
        && sig.iter().take(4).any(|t| t.is_word("table"))
}

/// The next significant token at or after `j`.
pub(crate) fn next_significant(tokens: &[Token], mut j: usize) -> Option<usize> {
    while j < tokens.len() && tokens[j].kind == Kind::Space {
        j += 1;
    }
    (j < tokens.len()).then_some(j)
}

/// The index just after the parenthesised group whose `(` is at `j` (or
/// the end of the statement, if the group is never closed).
pub(crate) fn group_end(tokens: &[Token], j: usize) -> usize {
    let mut d = 0;
    let mut k = j;
    while k < tokens.len() {
        if tokens[k].text == "(" {
            d += 1;
        } else if tokens[k].text == ")" {
            d -= 1;
            if d == 0 {
                return k + 1;
            }
        }
        k += 1;
    }
    k
}

/// A `CREATE TABLE` being rewritten: the tokens read, the tokens written,
/// the notes, and how deep in parentheses the reading is.
///
/// Why the depth: the same word means different things at different
/// depths. At 0 it is a table option (`BACKUP NO`), at 1 a column's type or
/// attribute (`SUPER`, `IDENTITY(…)`), at 2 a type's argument (`MAX` in
/// `VARCHAR(MAX)`).
struct DdlRewrite<'a> {
    tokens: &'a [Token],
    out: Vec<Token>,
    notes: Vec<String>,
    depth: usize,
}

impl DdlRewrite<'_> {
    /// Rewrites the clause starting at `i` (most tokens are their own
    /// clause and are copied as they are); returns where the next begins.
    fn rewrite_at(&mut self, i: usize) -> usize {
        // Through a copy of the slice, so that `t` does not borrow `self`.
        let tokens = self.tokens;
        let t = &tokens[i];
        if t.text == "(" {
            self.depth += 1;
        } else if t.text == ")" {
            self.depth = self.depth.saturating_sub(1);
        }
        let word = |w: &str| t.is_word(w);
        // Table-level options after the column list, and the same words as
        // column attributes inside it.
        if word("diststyle") || (self.depth == 0 && word("backup")) {
            return self.drop_with_argument(i, &t.text.to_uppercase());
        }
        if word("distkey") || word("sortkey") || word("compound") || word("interleaved") {
            return self.drop_key(i);
        }
        if word("encode") {
            return self.drop_with_argument(i, "ENCODE");
        }
        if word("identity")
            && self.depth >= 1
            && let Some(end) = self.identity(i)
        {
            return end;
        }
        // VARCHAR(MAX) / CHARACTER VARYING(MAX)
        if word("max") && self.depth >= 2 {
            self.out.push(Token {
                kind: Kind::Number,
                text: "65535".into(),
            });
            return i + 1;
        }
        if word("super") && self.depth == 1 {
            self.out.push(Token {
                kind: Kind::Word,
                text: "JSONB".into(),
            });
            self.notes.push("SUPER is stored as JSONB".into());
            return i + 1;
        }
        self.out.push(t.clone());
        i + 1
    }

    /// Drops a keyword and its one argument (`DISTSTYLE KEY`, `BACKUP NO`,
    /// `ENCODE az64`): compression and distribution mean nothing on one
    /// PostgreSQL server. `label` is how the note names the keyword.
    fn drop_with_argument(&mut self, i: usize, label: &str) -> usize {
        let arg = next_significant(self.tokens, i + 1).unwrap_or(self.tokens.len());
        self.notes.push(format!(
            "dropped {label} {}",
            self.tokens.get(arg).map(|a| a.text.as_str()).unwrap_or("")
        ));
        arg + 1
    }

    /// Drops a `DISTKEY` or `[COMPOUND | INTERLEAVED] SORTKEY`, in any of
    /// its forms: `(columns)`, `AUTO`, or a bare column attribute.
    fn drop_key(&mut self, i: usize) -> usize {
        let t = &self.tokens[i];
        let mut j = i;
        if t.is_word("compound") || t.is_word("interleaved") {
            j = next_significant(self.tokens, i + 1).unwrap_or(self.tokens.len());
        }
        let after = next_significant(self.tokens, j + 1);
        let end = match after {
            Some(a) if self.tokens[a].text == "(" => group_end(self.tokens, a),
            Some(a) if self.tokens[a].is_word("auto") => a + 1,
            _ => j + 1, // column attribute form: `id INT DISTKEY`
        };
        // A statement cut short (`... id INT COMPOUND`) ends here, not
        // past its last token: PostgreSQL then reports the syntax error.
        let end = end.min(self.tokens.len());
        self.notes.push(format!(
            "dropped {}",
            render(&self.tokens[i..end])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ));
        end
    }

    /// `IDENTITY(seed, step)` becomes PostgreSQL's identity column, which
    /// numbers rows the same way; `None` when no `(` follows, and the word
    /// is then kept as it is.
    fn identity(&mut self, i: usize) -> Option<usize> {
        let open = next_significant(self.tokens, i + 1).filter(|&o| self.tokens[o].text == "(")?;
        let end = group_end(self.tokens, open);
        // Never closed: left as written, for PostgreSQL to report.
        if self
            .tokens
            .get(end.wrapping_sub(1))
            .is_none_or(|t| t.text != ")")
            || end <= open + 1
        {
            return None;
        }
        // The arguments with their signs (`IDENTITY(0, -1)`), as numbers.
        let inner = render(&self.tokens[open + 1..end - 1]);
        let mut args = inner
            .split(',')
            .map(|a| a.split_whitespace().collect::<String>());
        let number = |a: Option<String>| a.and_then(|a| a.parse::<i64>().ok()).unwrap_or(1);
        let (seed, step) = (number(args.next()), number(args.next()));
        // PostgreSQL's sequences start at 1 (or -1 going down) unless told
        // otherwise; Redshift's IDENTITY(0, 1), the usual spelling, starts at 0.
        let bound = match step {
            s if s > 0 && seed < 1 => format!(" MINVALUE {seed}"),
            s if s < 0 && seed > -1 => format!(" MAXVALUE {seed}"),
            _ => String::new(),
        };
        self.out.push(Token {
            kind: Kind::Word,
            text: format!(
                "GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step}{bound})"
            ),
        });
        self.notes
            .push(format!("IDENTITY({seed},{step}) became an identity column"));
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddl(sql: &str) -> (String, Vec<String>) {
        let mut t = tokenize(sql).unwrap();
        let notes = translate_ddl(&mut t);
        (
            render(&t).split_whitespace().collect::<Vec<_>>().join(" "),
            notes,
        )
    }

    #[test]
    fn redshift_clauses_are_dropped() {
        let (sql, notes) = ddl(
            "CREATE TABLE IF NOT EXISTS \"public\".\"sales\" (\n  \"id\" INTEGER NOT NULL ENCODE az64 DISTKEY,\n  \"d\" DATE SORTKEY,\n  note VARCHAR(MAX)\n)\nDISTSTYLE KEY DISTKEY (\"id\")\nCOMPOUND SORTKEY (\"d\", \"id\")",
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS \"public\".\"sales\" ( \"id\" INTEGER NOT NULL , \"d\" DATE , note VARCHAR(65535) )"
        );
        assert_eq!(notes.len(), 6, "{notes:?}");
    }

    #[test]
    fn a_statement_cut_short_after_a_key_word_is_not_a_panic() {
        for cut in ["compound", "interleaved", "sortkey", "distkey", "diststyle"] {
            let (sql, _) = ddl(&format!("create table t (id int {cut}"));
            assert!(sql.starts_with("create table t (id int"), "{cut}: {sql}");
        }
    }

    #[test]
    fn identity_and_super_translate() {
        let (sql, _) =
            ddl("create table t (id bigint identity(0, 1), doc super) diststyle auto sortkey auto");
        assert_eq!(
            sql,
            "create table t (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 0 INCREMENT BY 1 MINVALUE 0), doc JSONB)"
        );
    }

    #[test]
    fn strings_and_other_statements_are_untouched() {
        let (sql, notes) = ddl("SELECT 'DISTKEY (x)' AS diststyle_text FROM t");
        assert_eq!(sql, "SELECT 'DISTKEY (x)' AS diststyle_text FROM t");
        assert!(notes.is_empty());
    }

    #[test]
    fn params_are_numbered_and_casts_kept() {
        let mut t =
            tokenize("SELECT x::int FROM t WHERE a = :a AND b = :b OR a2 = :a AND s = ':not'")
                .unwrap();
        let names = number_params(&mut t);
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            render(&t),
            "SELECT x::int FROM t WHERE a = $1 AND b = $2 OR a2 = $1 AND s = ':not'"
        );
    }

    #[test]
    fn tokens_know_their_values() {
        let t = tokenize("'it''s' \"My\"\"Col\" Word").unwrap();
        let s = significant(&t);
        assert_eq!(s[0].string_value().unwrap(), "it's");
        assert_eq!(s[1].ident().unwrap(), "My\"Col");
        assert_eq!(s[2].ident().unwrap(), "word");
        assert!(tokenize("'open").is_err());
        assert!(tokenize("/* open").is_err());
    }

    #[test]
    fn dollar_quoted_bodies_are_one_string() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT ':x' $$ LANGUAGE sql; SELECT $tag$a$b$tag$, $1";
        let tokens = tokenize(sql).unwrap();
        let strs: Vec<String> = tokens.iter().filter_map(Token::string_value).collect();
        assert_eq!(strs, [" SELECT 1; SELECT ':x' ", "a$b"]);
        assert!(
            !tokens.iter().any(|t| t.kind == Kind::Param),
            "no :x parameter inside $$"
        );
        assert_eq!(
            tokens.iter().filter(|t| t.text == ";").count(),
            1,
            "only the ; between the statements"
        );
        assert!(
            tokens.iter().any(|t| t.text == "$"),
            "$1 stays a parameter's $"
        );
        assert!(tokenize("SELECT $$ open").is_err());
    }

    #[test]
    fn literals_read_backslash_escapes_as_redshift_does() {
        let tokens = tokenize(r"SELECT 'it\'s', 'C:\\temp', 'a\tb', 'x''y', '\101'").unwrap();
        let strs: Vec<String> = tokens.iter().filter_map(Token::string_value).collect();
        assert_eq!(strs, ["it's", r"C:\temp", "a\tb", "x'y", "A"]);
        assert!(
            tokenize(r"SELECT 'open\'").is_err(),
            "the escaped quote does not close it"
        );
        // A quoted name takes no escapes.
        let t = tokenize(r#"SELECT "a\" FROM t"#).unwrap();
        assert!(
            t.iter()
                .any(|t| t.kind == Kind::QuotedIdent && t.text == r#""a\""#)
        );
    }

    #[test]
    fn the_design_is_read_from_the_statement() {
        let t = tokenize(
            "CREATE TABLE IF NOT EXISTS s.sales (region VARCHAR(16) ENCODE ZSTD, \"Day\" DATE SORTKEY, \
             id INT DISTKEY, PRIMARY KEY (id)) DISTSTYLE KEY",
        )
        .unwrap();
        let d = table_design(&t).unwrap();
        assert_eq!(d.table, "s.sales");
        assert_eq!(d.encodings, [("region".to_string(), "zstd".to_string())]);
        assert_eq!(d.sortkeys, ["Day"]);
        assert_eq!(d.distkey.as_deref(), Some("id"));
        assert_eq!(d.diststyle.as_deref(), Some("KEY"));
        let t = tokenize("create table t (a int, b date) distkey(a) interleaved sortkey(b, a)")
            .unwrap();
        let d = table_design(&t).unwrap();
        assert_eq!(
            (d.distkey.as_deref(), d.sortkeys.clone(), d.interleaved),
            (Some("a"), vec!["b".to_string(), "a".to_string()], true)
        );
        assert_eq!(
            table_design(&tokenize("create table t (a int)").unwrap()),
            None
        );
        assert_eq!(table_design(&tokenize("select 1").unwrap()), None);
    }
}
