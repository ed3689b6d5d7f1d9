//! Steps 4 and 5: the table, the `COPY` from S3, and the checks after it.
//!
//! All SQL here is built from the validated config: identifiers are
//! [`Ident`](crate::sql::Ident)s, strings go through
//! [`quote_literal`](crate::sql::quote_literal). The statements are pure
//! functions of the config so that `plan` can show them and tests can check
//! them without a database.
//!
//! How a load stays safe, whatever the mode:
//! 1. `COPY` goes into a **staging table** (`CREATE TABLE … (LIKE target)`,
//!    so it has the target's columns, encodings and keys), never into the
//!    target. A COPY that fails, or is cancelled, or a process killed half-way,
//!    leaves the target exactly as it was.
//! 2. The staged rows are checked *before* the target is touched: some rows
//!    loaded, `EXPECTED_ROWS` (in replace mode), and for upsert no NULL or
//!    duplicate keys (a duplicate would make the result depend on row order).
//! 3. One `BatchExecuteStatement`, which Redshift runs as a single
//!    transaction, then moves the rows in (replace: `DELETE` + `INSERT`;
//!    append: `INSERT`; upsert: `DELETE … USING` the staged keys + `INSERT`),
//!    records the load in a small ledger table and drops the staging table.
//!    Readers see the old rows or the new ones, never a mix.
//!
//! Why `DELETE` + `INSERT` and not swapping the tables by renaming them?
//! A renamed-in table loses the grants, comments and views that pointed at
//! the old one; `DELETE` keeps them. (`TRUNCATE` would be faster, but it
//! commits at once in Redshift and would break the single transaction.)
//!
//! The ledger (`<schema>.s3_to_redshift_loads`) is what makes `append` safe to
//! re-run: it remembers which objects (keys and ETags) were appended, so a
//! second run over the same objects, say after an interruption, adds nothing.
//!
//! # Layout
//!
//! - `sql`: the statements, pure functions of the config;
//! - `source`: the objects to load and their fingerprint;
//! - `run`: the load (stage, check, swap) and its verification;
//! - `errors`: the rows a failed `COPY` rejected.

mod errors;
mod run;
mod source;
mod sql;

pub use errors::*;
pub use run::*;
pub use source::*;
pub use sql::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, LoadMode};
    use crate::report::Action;
    use crate::sql::TableName;

    fn cfg(extra_load: &str) -> Config {
        let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
        let text = text.replace("[LOAD]\n", &format!("[LOAD]\n{extra_load}"));
        // Drop the example's own values for keys the test sets.
        let mut seen = std::collections::HashSet::new();
        let text: String = text
            .lines()
            .filter(|l| {
                let key = l.split('=').next().unwrap_or("").trim().to_string();
                !l.contains('=') || seen.insert(key)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        Config::parse(&text, "t.cfg", None).unwrap_or_else(|e| panic!("{e}"))
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/r";

    #[test]
    fn copy_lists_columns_and_escapes_every_literal() {
        let c = cfg(
            "DELIMITER = \\t\nQUOTE = '\nNULL_AS = \\N\nTIME_FORMAT = YYYY-MM-DD HH:MI:SS\nMAX_ERRORS = 5\nCOMPRESSION = gzip\n",
        );
        let sql = copy_sql(&c, &c.table.name, "eu-west-1", ROLE).unwrap();
        assert_eq!(
            sql,
            "COPY \"public\".\"sales\" (\"sale_id\", \"sold_on\", \"region\", \"product\", \"quantity\", \"unit_price\")\n\
             FROM 's3://s3-to-redshift-demo-data/sales/sales.csv'\n\
             IAM_ROLE 'arn:aws:iam::123456789012:role/r'\n\
             REGION 'eu-west-1'\n\
             CSV DELIMITER '\\t' QUOTE AS '''' IGNOREHEADER 1 NULL AS '\\\\N' EMPTYASNULL \
             DATEFORMAT 'auto' TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' GZIP MAXERROR 5"
        );
    }

    #[test]
    fn the_bucket_region_wins_over_the_cluster_region() {
        let mut c = cfg("");
        c.s3.region = Some("ap-south-1".into());
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(sql.contains("REGION 'ap-south-1'"), "{sql}");
    }

    #[test]
    fn a_hostile_value_stays_inside_its_literal() {
        let mut c = cfg("");
        c.load.null_as = Some("x'; DROP TABLE sales; --".into());
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(sql.contains("NULL AS 'x''; DROP TABLE sales; --'"), "{sql}");
        c.load.null_as = Some("a\nb".into());
        assert!(
            copy_sql(&c, &c.table.name, "us-east-1", ROLE)
                .unwrap_err()
                .contains("control character")
        );
    }

    #[test]
    fn the_plan_places_each_result_the_load_reads() {
        for (settings, requests) in [
            ("", 2),
            ("MODE = append\n", 3),
            ("MODE = upsert\nKEY = sale_id\n", 2),
        ] {
            let c = cfg(settings);
            let plan = load_plan(&c, "us-east-1", ROLE, Some("abc")).unwrap();
            assert_eq!(plan.requests.len(), requests, "{settings}");
            let sql = |at: At| plan.requests[at.request][at.index].as_str();
            let count = "SELECT COUNT(*) FROM \"public\".\"sales\"";
            assert!(sql(plan.table_exists).contains("information_schema.tables"));
            assert_eq!(sql(plan.count_before), count);
            assert!(sql(plan.copy).starts_with("COPY "), "{settings}");
            assert_eq!(sql(plan.count_after), count);
            assert!(sql(plan.preview).starts_with("SELECT * FROM"));
            assert_eq!(plan.count_after.request, requests - 1, "the swap is last");
            assert_eq!(
                plan.ledger
                    .map(|at| sql(at).starts_with("SELECT TO_CHAR(loaded_at")),
                (c.load.mode == LoadMode::Append).then_some(true)
            );
            assert_eq!(
                plan.replaced
                    .map(|at| sql(at).starts_with("DELETE FROM \"public\".\"sales\" USING")),
                (c.load.mode == LoadMode::Upsert).then_some(true)
            );
            if let Some((nulls, dups)) = plan.key_checks {
                assert!(
                    sql(nulls).contains("IS NULL") && sql(dups).contains("HAVING COUNT(*) > 1")
                );
            }
            assert_eq!(plan.key_checks.is_some(), c.load.mode == LoadMode::Upsert);
            assert_eq!(
                statements(&c, "us-east-1", ROLE, Some("abc")).unwrap(),
                plan.requests,
                "plan shows what load runs"
            );
        }
    }

    #[test]
    fn every_mode_copies_into_a_staging_table_and_swaps_in_one_batch() {
        let c = cfg("");
        let batches = statements(&c, "us-east-1", ROLE, Some("abc")).unwrap();
        assert_eq!(batches.len(), 2, "replace: two requests");
        let (first, swap) = (&batches[0], &batches[1]);
        let stage = "\"public\".\"s2r_staging__sales\"";
        assert_eq!(
            first[0],
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'sales'"
        );
        assert!(first[1].starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"sales\""));
        assert!(
            first[2].starts_with("CREATE TABLE IF NOT EXISTS \"public\".\"s3_to_redshift_loads\"")
        );
        assert_eq!(first[3], "SELECT COUNT(*) FROM \"public\".\"sales\"");
        assert_eq!(first[4], format!("DROP TABLE IF EXISTS {stage}"));
        assert_eq!(
            first[5],
            format!("CREATE TABLE {stage} (LIKE \"public\".\"sales\")")
        );
        assert!(
            first[6].starts_with(&format!("COPY {stage} (")),
            "{}",
            first[6]
        );
        assert_eq!(first.len(), 7, "the COPY ends the first request");
        assert_eq!(swap[0], "DELETE FROM \"public\".\"sales\"");
        assert!(swap[1].starts_with("INSERT INTO \"public\".\"sales\" (\"sale_id\""));
        assert!(
            swap[2].contains("'abc', 'replace', COUNT(*)"),
            "{}",
            swap[2]
        );
        assert_eq!(swap[3], format!("DROP TABLE {stage}"));
        assert_eq!(swap[4], "SELECT COUNT(*) FROM \"public\".\"sales\"");
        assert_eq!(
            swap[5], "SELECT * FROM \"public\".\"sales\" ORDER BY \"sale_id\" LIMIT 10",
            "the rows `load` shows come with the swap"
        );

        // Append reads the ledger in a request of its own, before any COPY.
        let c = cfg("MODE = append\n");
        let batches = statements(&c, "us-east-1", ROLE, None).unwrap();
        assert_eq!(batches.len(), 3, "append: three requests");
        assert!(batches[0].last().unwrap().contains("s3_to_redshift_loads"));
        assert!(batches[1].last().unwrap().starts_with("COPY "));
        assert!(!batches.iter().flatten().any(|s| s.starts_with("DELETE")));

        // Upsert checks the staged keys in the COPY's request.
        let c = cfg("MODE = upsert\nKEY = sale_id, region\n");
        let batches = statements(&c, "us-east-1", ROLE, None).unwrap();
        let first = &batches[0];
        assert_eq!(
            first[first.len() - 2],
            format!("SELECT COUNT(*) FROM {stage} WHERE \"sale_id\" IS NULL OR \"region\" IS NULL")
        );
        assert_eq!(
            first[first.len() - 1],
            format!(
                "SELECT \"sale_id\", \"region\", COUNT(*) FROM {stage} GROUP BY \"sale_id\", \"region\" \
                 HAVING COUNT(*) > 1 ORDER BY 3 DESC LIMIT 5"
            ),
            "ordered by the count, not by a key column"
        );
        let swap = &batches[1];
        assert_eq!(
            swap[0],
            format!(
                "DELETE FROM \"public\".\"sales\" USING {stage} WHERE \"public\".\"sales\".\"sale_id\" = {stage}.\"sale_id\" \
                 AND \"public\".\"sales\".\"region\" = {stage}.\"region\""
            )
        );
        assert_eq!(swap.len(), 6);
    }

    #[test]
    fn a_long_table_name_still_has_a_valid_staging_name() {
        let t = TableName::parse(&"t".repeat(127)).unwrap();
        let s = staging_table(&t);
        assert_eq!(s.table.as_str().len(), 127);
        assert!(s.table.as_str().starts_with("s2r_staging__t"));
    }

    #[test]
    fn the_fingerprint_changes_with_any_object_and_not_with_listing_order() {
        let a = summarise(vec![
            ("k1".into(), 10, "\"e1\"".into()),
            ("k2".into(), 20, "\"e2\"".into()),
        ]);
        let b = summarise(vec![
            ("k2".into(), 20, "\"e2\"".into()),
            ("k1".into(), 10, "\"e1\"".into()),
        ]);
        assert_eq!(a, b);
        assert_eq!((a.objects, a.bytes), (2, 30));
        let c = summarise(vec![
            ("k1".into(), 10, "\"e1\"".into()),
            ("k2".into(), 20, "\"e3\"".into()),
        ]);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn json_lines_copy_has_no_csv_options() {
        let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
        let text = text
            .replace("FORMAT = CSV", "FORMAT = json")
            .replace("DELIMITER = ,\n", "")
            .replace("IGNORE_HEADER = 1\n", "");
        let mut c = Config::parse(&text, "t.cfg", None).unwrap_or_else(|e| panic!("{e}"));
        c.s3.manifest = true;
        let sql = copy_sql(&c, &c.table.name, "us-east-1", ROLE).unwrap();
        assert!(
            sql.ends_with("MANIFEST FORMAT AS JSON 'auto' EMPTYASNULL DATEFORMAT 'auto'"),
            "{sql}"
        );
    }

    #[test]
    fn many_load_errors_are_capped_and_summarised() {
        let e = |line| LoadError {
            file: "s3://b/k".into(),
            line,
            column: "quantity".into(),
            value: "x".into(),
            reason: "Invalid digit".into(),
        };
        let errors = LoadErrors {
            first: (2..12).map(e).collect(),
            total: 5000,
            by_reason: vec![("quantity".into(), "Invalid digit".into(), 5000)],
        };
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 12, "{text}");
        assert!(
            text.contains("5000 rejected rows in all, 10 shown"),
            "{text}"
        );
    }

    #[test]
    fn a_schema_other_than_public_is_created() {
        let mut c = cfg("");
        c.table.name = TableName::parse("staging.sales").unwrap();
        assert_eq!(
            create_schema_sql(&c.table).as_deref(),
            Some("CREATE SCHEMA IF NOT EXISTS \"staging\"")
        );
        assert!(create_schema_sql(&cfg("").table).is_none());
    }

    #[test]
    fn verification_checks_the_counts_each_mode_implies() {
        let report = |mode, loaded, before, updated, after| LoadReport {
            table: Action::Reuse,
            source: summarise(vec![("k".into(), 1, "e".into())]),
            mode,
            loaded,
            rows_before: before,
            updated,
            rows_in_table: after,
            rejected: LoadErrors::default(),
            skipped: None,
            preview: Default::default(),
        };
        let c = cfg("EXPECTED_ROWS = 10\n");
        assert!(verify(&c, &report(LoadMode::Replace, 10, 3, 0, 10)).is_ok());
        let err = verify(&c, &report(LoadMode::Replace, 9, 3, 0, 9))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EXPECTED_ROWS says 10"), "{err}");
        let c = cfg("");
        assert!(verify(&c, &report(LoadMode::Append, 10, 15, 0, 25)).is_ok());
        assert!(verify(&c, &report(LoadMode::Append, 10, 15, 0, 24)).is_err());
        assert!(verify(&c, &report(LoadMode::Upsert, 10, 15, 4, 21)).is_ok());
        assert!(verify(&c, &report(LoadMode::Upsert, 10, 15, 4, 25)).is_err());
    }
}
