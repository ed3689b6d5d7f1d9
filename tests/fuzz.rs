//! Property tests over hostile input: the config parser, the SQL literal and
//! identifier builders, and the round trip from our `COPY` builder to the
//! sandbox's `COPY` parser.
//!
//! Why proptest rather than `cargo fuzz`: libFuzzer needs a nightly
//! compiler, and these properties are about *meaning* (what goes in comes
//! out), which a property test states directly. CI runs the default 256
//! cases per property; run longer by hand with
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz`.

use proptest::prelude::*;
use redshift_sandbox::copy;
use redshift_sandbox::translate::{Kind, tokenize};
use s3_to_redshift::config::Config;
use s3_to_redshift::sql::{Ident, TableName, quote_literal};

const BASE: &str = "[AWS]\nREGION = us-east-1\n[IAM]\nROLE_NAME = r\n[CLUSTER]\nIDENTIFIER = c\n\
NODE_TYPE = ra3.large\nDB_NAME = dev\nDB_USER = u\n[S3]\nSOURCE = s3://bucket/key.csv\n\
[TABLE]\nNAME = t\n[COLUMNS]\nid = INTEGER\nname = VARCHAR(10)\n[LOAD]\n";

/// Text with the characters that break naive SQL and INI handling.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\''),
            Just('"'),
            Just('\\'),
            Just(';'),
            Just('\n'),
            Just('\t'),
            Just('\0'),
            Just('$'),
            Just('-'),
            Just('/'),
            Just('*'),
            Just('é'),
            Just('\u{202e}'),
            Just(' '),
            prop::char::range('a', 'z'),
            any::<char>(),
        ],
        0..24,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    /// Any text is either a config or a list of problems; never a panic.
    #[test]
    fn the_config_parser_never_panics(extra in nasty(), key in "[A-Z_]{1,12}") {
        let text = format!("{BASE}{key} = {extra}\n");
        let _ = Config::parse(&text, "fuzz.cfg", None);
        let _ = Config::parse(&extra, "fuzz.cfg", None);
    }

    /// A literal is read back by a SQL tokenizer as one string equal to
    /// the input, whatever the input holds, or it is refused.
    #[test]
    fn a_literal_reads_back_as_itself(value in nasty()) {
        match quote_literal(&value) {
            Ok(lit) => {
                let tokens = tokenize(&format!("SELECT {lit}")).unwrap();
                let strings: Vec<_> = tokens.iter().filter(|t| t.kind == Kind::Str).collect();
                prop_assert_eq!(strings.len(), 1, "{}", lit);
                // The tokenizer reads a literal as Redshift does (`\\` is
                // one backslash), so the value comes back as it was.
                prop_assert_eq!(strings[0].string_value().unwrap(), value);
            }
            Err(m) => prop_assert!(m.contains("control character"), "{}", m),
        }
    }

    /// An identifier is accepted only if it is plain, and then it reads back
    /// as one quoted identifier: nothing can close the quotes.
    #[test]
    fn an_accepted_identifier_cannot_escape_its_quotes(raw in nasty()) {
        if let Ok(id) = Ident::new(&raw) {
            let sql = format!("SELECT * FROM {id}");
            let tokens = tokenize(&sql).unwrap();
            let idents: Vec<_> = tokens.iter().filter(|t| t.kind == Kind::QuotedIdent).collect();
            prop_assert_eq!(idents.len(), 1, "{}", sql);
            prop_assert_eq!(idents[0].ident().unwrap(), raw.to_ascii_lowercase());
        }
        let _ = TableName::parse(&raw);
    }

    /// What our COPY builder writes, the sandbox's COPY parser reads back
    /// as the same options, for any values the config accepts.
    #[test]
    fn copy_options_survive_the_round_trip(
        null_as in nasty(),
        date_format in nasty(),
        delimiter in prop_oneof![
            Just(','), Just('|'), Just('\t'), Just(';'), Just('\''), Just('\\')
        ],
        quote in prop_oneof![Just('"'), Just('\''), Just('`'), Just('\\')],
        key in "[a-zA-Z0-9/._=-]{1,30}",
        max_errors in 0u32..1000,
    ) {
        prop_assume!(delimiter != quote);
        let Ok(mut cfg) = Config::parse(BASE, "fuzz.cfg", None) else {
            panic!("the base config is valid")
        };
        cfg.load.null_as = Some(null_as.clone());
        cfg.load.date_format = Some(date_format.clone());
        cfg.load.delimiter = delimiter;
        cfg.load.quote = quote;
        cfg.load.max_errors = max_errors;
        let Ok(source) = s3_to_redshift::config::S3Uri::parse(&format!("s3://bucket/{key}")) else {
            return Ok(());
        };
        cfg.s3.source = source;
        let role = "arn:aws:iam::123456789012:role/r";
        match s3_to_redshift::load::copy_sql(&cfg, &cfg.table.name, "us-east-1", role) {
            Ok(sql) => {
                let fail = |e: String| TestCaseError::fail(format!("{e}: {sql}"));
                let tokens = tokenize(&sql).map_err(|e| fail(e.to_string()))?;
                let spec = copy::parse(&tokens).map_err(|e| fail(e.to_string()))?;
                prop_assert_eq!(spec.null_as.as_deref(), Some(null_as.as_str()), "{}", sql);
                prop_assert_eq!(spec.date_format.as_deref(), Some(date_format.as_str()), "{}", sql);
                prop_assert_eq!(spec.delimiter, Some(delimiter), "{}", sql);
                prop_assert_eq!(spec.quote, quote, "{}", sql);
                prop_assert_eq!(spec.max_error, u64::from(max_errors), "{}", sql);
                prop_assert_eq!(spec.source, cfg.s3.source.to_string(), "{}", sql);
                prop_assert_eq!(spec.iam_role.as_deref(), Some(role), "{}", sql);
                prop_assert_eq!(spec.table, "t");
                prop_assert_eq!(spec.columns, Some(vec!["id".to_string(), "name".to_string()]));
            }
            Err(m) => prop_assert!(m.contains("control character"), "{}", m),
        }
    }
}
