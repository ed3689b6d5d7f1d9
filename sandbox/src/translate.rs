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
    /// A `'string literal'`.
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

    /// The value of a string literal, with `''` undone.
    pub fn string_value(&self) -> Option<String> {
        (self.kind == Kind::Str).then(|| self.text[1..self.text.len() - 1].replace("''", "'"))
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

/// Splits SQL into tokens; fails on an unterminated string, name or comment.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, kind, from: usize, to: usize| {
        out.push(Token {
            kind,
            text: chars[from..to].iter().collect(),
        })
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            push(&mut out, Kind::Space, start, i);
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            push(&mut out, Kind::Space, start, i);
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated /* comment".into());
            }
            i += 2;
            push(&mut out, Kind::Space, start, i);
        } else if c == '\'' || c == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(if c == '\'' {
                            "unterminated quoted string".into()
                        } else {
                            "unterminated quoted identifier".into()
                        });
                    }
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => i += 2,
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            push(
                &mut out,
                if c == '\'' {
                    Kind::Str
                } else {
                    Kind::QuotedIdent
                },
                start,
                i,
            );
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            push(&mut out, Kind::Word, start, i);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            push(&mut out, Kind::Number, start, i);
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i += 2;
            push(&mut out, Kind::Punct, start, i);
        } else if c == ':'
            && chars
                .get(i + 1)
                .is_some_and(|d| d.is_alphabetic() || *d == '_')
        {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            push(&mut out, Kind::Param, start, i);
        } else {
            i += 1;
            push(&mut out, Kind::Punct, start, i);
        }
    }
    Ok(out)
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
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i].kind != Kind::Space)
        .collect();
    let is_create_table = sig.first().is_some_and(|&i| tokens[i].is_word("create"))
        && sig.iter().take(4).any(|&i| tokens[i].is_word("table"));
    if !is_create_table {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut depth = 0usize;
    let mut i = 0;
    // The next significant token at or after `j`.
    let next_sig = |toks: &[Token], mut j: usize| -> Option<usize> {
        while j < toks.len() && toks[j].kind == Kind::Space {
            j += 1;
        }
        (j < toks.len()).then_some(j)
    };
    // Skips a parenthesised group starting at the `(` at `j`; returns the index after it.
    let skip_group = |toks: &[Token], j: usize| -> usize {
        let mut d = 0;
        let mut k = j;
        while k < toks.len() {
            if toks[k].text == "(" {
                d += 1;
            } else if toks[k].text == ")" {
                d -= 1;
                if d == 0 {
                    return k + 1;
                }
            }
            k += 1;
        }
        k
    };
    while i < tokens.len() {
        let t = &tokens[i];
        if t.text == "(" {
            depth += 1;
        } else if t.text == ")" {
            depth = depth.saturating_sub(1);
        }
        let word = |w: &str| t.is_word(w);
        // Table-level options after the column list, and the same words as
        // column attributes inside it.
        if word("diststyle") || (depth == 0 && word("backup")) {
            let arg = next_sig(tokens, i + 1).unwrap_or(tokens.len());
            notes.push(format!(
                "dropped {} {}",
                t.text.to_uppercase(),
                tokens.get(arg).map(|a| a.text.as_str()).unwrap_or("")
            ));
            i = arg + 1;
            continue;
        }
        if word("distkey") || word("sortkey") || word("compound") || word("interleaved") {
            let mut j = i;
            if word("compound") || word("interleaved") {
                j = next_sig(tokens, i + 1).unwrap_or(tokens.len());
            }
            let after = next_sig(tokens, j + 1);
            let end = match after {
                Some(a) if tokens[a].text == "(" => skip_group(tokens, a),
                Some(a) if tokens[a].is_word("auto") => a + 1,
                _ => j + 1, // column attribute form: `id INT DISTKEY`
            };
            notes.push(format!(
                "dropped {}",
                render(&tokens[i..end])
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            i = end;
            continue;
        }
        if word("encode") {
            let arg = next_sig(tokens, i + 1).unwrap_or(tokens.len());
            notes.push(format!(
                "dropped ENCODE {}",
                tokens.get(arg).map(|a| a.text.as_str()).unwrap_or("")
            ));
            i = arg + 1;
            continue;
        }
        if word("identity")
            && depth >= 1
            && let Some(open) = next_sig(tokens, i + 1).filter(|&o| tokens[o].text == "(")
        {
            let end = skip_group(tokens, open);
            let args: Vec<String> = significant(&tokens[open + 1..end - 1])
                .iter()
                .filter(|a| a.kind == Kind::Number)
                .map(|a| a.text.clone())
                .collect();
            let (seed, step) = (
                args.first().cloned().unwrap_or("1".into()),
                args.get(1).cloned().unwrap_or("1".into()),
            );
            out.push(Token {
                kind: Kind::Word,
                text: format!(
                    "GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step})"
                ),
            });
            notes.push(format!("IDENTITY({seed},{step}) became an identity column"));
            i = end;
            continue;
        }
        // VARCHAR(MAX) / CHARACTER VARYING(MAX)
        if t.is_word("max") && depth >= 2 {
            out.push(Token {
                kind: Kind::Number,
                text: "65535".into(),
            });
            i += 1;
            continue;
        }
        if t.is_word("super") && depth == 1 {
            out.push(Token {
                kind: Kind::Word,
                text: "JSONB".into(),
            });
            notes.push("SUPER is stored as JSONB".into());
            i += 1;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    *tokens = out;
    notes
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
    fn identity_and_super_translate() {
        let (sql, _) =
            ddl("create table t (id bigint identity(0, 1), doc super) diststyle auto sortkey auto");
        assert_eq!(
            sql,
            "create table t (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 0 INCREMENT BY 1), doc JSONB)"
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
}
