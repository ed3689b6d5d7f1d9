//! The pipeline's `load` end to end: moto for IAM, S3 and the cluster, the
//! sandbox for the SQL. The row counts are real, bad rows come back with
//! their line, column and value, and a wrong IAM set-up fails the COPY as it
//! would on AWS.

mod common;

use common::{Names, pipeline, require_sandbox, upload, upload_sample};
use s3_to_redshift::Error;
use s3_to_redshift::report::{Action, Quiet};
use s3_to_redshift::warehouse::Value;

#[tokio::test]
async fn load_copies_the_rows_and_a_rerun_converges() {
    require_sandbox();
    let names = Names::new("load");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.expect("up");

    let first = p.load(&Quiet).await.expect("load");
    assert_eq!(first.table, Action::Create);
    assert_eq!((first.loaded, first.rows_in_table), (10, 10));
    assert_eq!(first.source.objects, 1);

    let rows = p.preview(3).await.expect("preview");
    let names_of: Vec<&str> = rows.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names_of,
        [
            "sale_id",
            "sold_on",
            "region",
            "product",
            "quantity",
            "unit_price"
        ]
    );
    assert_eq!(rows.rows[0][0], Value::Long(1));
    assert_eq!(rows.rows[0][1], Value::Text("2024-01-03".into()));
    assert_eq!(
        rows.rows[2][3],
        Value::Text("stapler, heavy-duty".into()),
        "a quoted comma stays in its field"
    );
    assert_eq!(
        rows.rows[0][5],
        Value::Text("4.50".into()),
        "DECIMAL comes back as text, as from Redshift"
    );

    // Replace mode: the second load gives the same rows, not twice as many.
    let second = p.load(&Quiet).await.expect("second load");
    assert_eq!(second.table, Action::Reuse);
    assert_eq!((second.loaded, second.rows_in_table), (10, 10));

    let status = p.status().await.unwrap();
    assert!(status[3].state.contains("10 rows"), "{:?}", status[3]);
}

#[tokio::test]
async fn append_mode_adds_new_objects_once() {
    require_sandbox();
    let names = Names::new("append");
    let p = pipeline(&names, &[("LOAD", "MODE = append")]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    let first = p.load(&Quiet).await.unwrap();
    assert_eq!((first.loaded, first.rows_in_table), (10, 10));
    // The same objects again (a re-run, or a retry after an interruption):
    // the ledger knows them, nothing is duplicated.
    let again = p.load(&Quiet).await.unwrap();
    assert!(again.skipped.is_some(), "{again:?}");
    assert_eq!((again.loaded, again.rows_in_table), (0, 10));
    // New data under the same key is new objects (a new ETag): appended.
    upload(
        &p,
        &names,
        b"sale_id,sold_on,region,product,quantity,unit_price\n\
        11,2024-02-01,north,notebook,1,4.50\n12,2024-02-01,south,pencil,2,0.80\n",
    )
    .await;
    let third = p.load(&Quiet).await.unwrap();
    assert_eq!(
        (third.loaded, third.rows_before, third.rows_in_table),
        (2, 10, 12)
    );
    assert_eq!(ledger_rows(&p).await, 2);
}

async fn ledger_rows(p: &s3_to_redshift::Pipeline) -> i64 {
    p.warehouse()
        .query("SELECT COUNT(*) FROM public.s3_to_redshift_loads")
        .await
        .unwrap()
        .scalar_i64()
        .unwrap()
}

async fn table_rows(p: &s3_to_redshift::Pipeline) -> Vec<Vec<String>> {
    let rows = p
        .warehouse()
        .query("SELECT sale_id, region, quantity FROM public.sales ORDER BY sale_id")
        .await
        .unwrap();
    rows.rows
        .iter()
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect()
}

async fn staging_tables(p: &s3_to_redshift::Pipeline) -> i64 {
    p.warehouse()
        .query(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 's2r_staging%'",
        )
        .await
        .unwrap()
        .scalar_i64()
        .unwrap()
}

const HEADER: &str = "sale_id,sold_on,region,product,quantity,unit_price\n";

#[tokio::test]
async fn upsert_updates_matching_keys_inserts_new_ones_and_keeps_the_rest() {
    require_sandbox();
    let names = Names::new("upsert");
    let p = pipeline(&names, &[("LOAD", "MODE = upsert\nKEY = sale_id")]).await;
    let rows =
        "1,2024-01-01,north,a,1,1.00\n2,2024-01-01,south,b,2,1.00\n3,2024-01-01,east,c,3,1.00\n";
    upload(&p, &names, format!("{HEADER}{rows}").as_bytes()).await;
    p.up(false, &Quiet).await.unwrap();
    let first = p.load(&Quiet).await.unwrap();
    assert_eq!(
        (first.loaded, first.updated, first.rows_in_table),
        (3, 0, 3)
    );

    // Row 2 changes, row 4 is new, rows 1 and 3 are absent from the new file.
    upload(
        &p,
        &names,
        format!("{HEADER}2,2024-01-02,south,b,20,1.00\n4,2024-01-02,west,d,4,1.00\n").as_bytes(),
    )
    .await;
    let second = p.load(&Quiet).await.unwrap();
    assert_eq!(
        (second.loaded, second.updated, second.rows_in_table),
        (2, 1, 4)
    );
    assert_eq!(
        table_rows(&p).await,
        [
            ["1", "north", "1"],
            ["2", "south", "20"],
            ["3", "east", "3"],
            ["4", "west", "4"]
        ]
    );
    // Re-running the same upsert converges: nothing changes.
    let third = p.load(&Quiet).await.unwrap();
    assert_eq!((third.updated, third.rows_in_table), (2, 4));
    assert_eq!(staging_tables(&p).await, 0);

    // Two rows with one key: which wins would depend on row order, so the
    // load is refused and the table is left alone.
    let rows =
        "2,2024-01-03,south,b,21,1.00\n2,2024-01-03,south,b,22,1.00\n5,2024-01-03,x,e,5,1.00\n";
    upload(&p, &names, format!("{HEADER}{rows}").as_bytes()).await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(
        err.contains("same key (\"sale_id\") on several rows: (2) ×2"),
        "{err}"
    );
    assert!(err.contains("the table was not changed"), "{err}");
    // A NULL key would match nothing and pile up on every re-run.
    // (sale_id is NOT NULL, so COPY itself refuses that; key on a nullable
    // column to see the check.)
    let by_region = pipeline(
        &names,
        &[("LOAD", "MODE = upsert\nKEY = region\nEMPTY_AS_NULL = true")],
    )
    .await;
    upload(
        &p,
        &names,
        format!("{HEADER}8,2024-01-03,,e,5,1.00\n").as_bytes(),
    )
    .await;
    let err = by_region.load(&Quiet).await.unwrap_err().to_string();
    assert!(err.contains("have a NULL in the key"), "{err}");
    assert_eq!(table_rows(&p).await.len(), 4);
    assert_eq!(
        staging_tables(&p).await,
        0,
        "a refused load drops its staging table"
    );
}

#[tokio::test]
async fn replace_mode_drops_absent_rows_and_keeps_duplicates_in_the_file() {
    require_sandbox();
    let names = Names::new("replace");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();
    upload(
        &p,
        &names,
        format!("{HEADER}7,2024-01-01,north,a,1,1.00\n7,2024-01-01,north,a,1,1.00\n").as_bytes(),
    )
    .await;
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!((r.rows_before, r.loaded, r.rows_in_table), (10, 2, 2));
    assert_eq!(
        table_rows(&p).await,
        [["7", "north", "1"], ["7", "north", "1"]]
    );
}

#[tokio::test]
async fn a_staging_table_left_by_an_interrupted_run_is_replaced_and_the_target_kept() {
    require_sandbox();
    let names = Names::new("leftover");
    let p = pipeline(&names, &[("LOAD", "EXPECTED_ROWS = 10")]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();
    // What a run killed between the COPY and the swap leaves behind.
    let wh = p.warehouse();
    wh.execute("CREATE TABLE public.s2r_staging__sales (LIKE public.sales)")
        .await
        .unwrap();
    wh.execute(
        "INSERT INTO public.s2r_staging__sales (sale_id, sold_on) VALUES (99, '2024-01-01')",
    )
    .await
    .unwrap();
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!(
        (r.loaded, r.rows_in_table),
        (10, 10),
        "the leftover rows are not loaded"
    );
    assert_eq!(staging_tables(&p).await, 0);

    // EXPECTED_ROWS is checked on the staged rows: a short file never
    // replaces a good table.
    upload(
        &p,
        &names,
        format!("{HEADER}7,2024-01-01,north,a,1,1.00\n").as_bytes(),
    )
    .await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(
        err.contains("staged 1 rows; [LOAD] EXPECTED_ROWS says 10 (the table was not changed)"),
        "{err}"
    );
    assert_eq!(table_rows(&p).await.len(), 10);
}

const BAD_CSV: &str = "sale_id,sold_on,region,product,quantity,unit_price\n\
1,2024-01-03,north,notebook,3,4.50\n\
2,2024-01-03,south,pencil,twelve,0.80\n\
3,2024-01-04,a-region-name-much-longer-than-32-bytes,stapler,1,15.00\n\
4,2024-01-05,west,notebook,5\n\
5,2024-01-06,north,eraser,7,0.60\n";

#[tokio::test]
async fn bad_rows_fail_the_load_name_their_line_and_leave_the_table_as_it_was() {
    require_sandbox();
    let names = Names::new("badrows");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();

    upload(&p, &names, BAD_CSV.as_bytes()).await;
    let err = p.load(&Quiet).await.expect_err("bad rows");
    assert_eq!(err.exit_code(), 6);
    let Error::StatementFailed {
        message,
        load_errors,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        message.contains("Load into table 's2r_staging__sales' failed"),
        "{message}"
    );
    assert!(!load_errors.is_empty(), "{err}");
    let first = &load_errors.first[0];
    assert_eq!(first.line, 3, "{first}");
    assert_eq!(first.column, "quantity", "{first}");
    assert_eq!(first.value, "twelve", "{first}");
    assert!(first.reason.contains("Invalid digit"), "{first}");
    assert!(first.file.ends_with("sales/sales.csv"), "{first}");
    let text = err.to_string();
    assert!(
        text.contains("line 3, column `quantity`, value `twelve`"),
        "{text}"
    );

    // The COPY failed into the staging table: the old rows are intact, and
    // the staging table went with the rolled-back transaction.
    let rows = p.preview(100).await.unwrap();
    assert_eq!(rows.rows.len(), 10);
    assert_eq!(staging_tables(&p).await, 0);
}

#[tokio::test]
async fn max_errors_skips_bad_rows_and_reports_them() {
    require_sandbox();
    let names = Names::new("maxerr");
    let p = pipeline(&names, &[("LOAD", "MAX_ERRORS = 5")]).await;
    upload_sample(&p, &names).await;
    upload(&p, &names, BAD_CSV.as_bytes()).await;
    p.up(false, &Quiet).await.unwrap();
    let report = p.load(&Quiet).await.expect("load within MAXERROR");
    assert_eq!((report.loaded, report.rows_in_table), (2, 2));
    assert_eq!(report.rejected.total, 3);
    let rejected: Vec<(i64, &str)> = report
        .rejected
        .first
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(rejected, [(3, "quantity"), (4, "region"), (5, "")]);
    assert!(
        report.rejected.first[1]
            .reason
            .contains("String length exceeds DDL length")
    );
    assert!(
        report.rejected.first[2]
            .reason
            .contains("Delimiter not found")
    );
}

#[tokio::test]
async fn a_role_without_the_read_policy_cannot_copy() {
    require_sandbox();
    let names = Names::new("nopolicy");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    let account = p.clients.account_id().await.unwrap();
    p.clients
        .iam
        .detach_role_policy()
        .role_name(&names.role)
        .policy_arn(s3_to_redshift::iam::policy_arn(
            "aws",
            &account,
            &names.policy,
        ))
        .send()
        .await
        .unwrap();
    let err = p.load(&Quiet).await.expect_err("no read permission");
    let text = err.to_string();
    assert!(
        text.contains("Access Denied") && text.contains("s3:ListBucket"),
        "{text}"
    );

    // `up` again re-attaches the policy, and the load works.
    p.up(false, &Quiet).await.unwrap();
    assert_eq!(p.load(&Quiet).await.unwrap().loaded, 10);
}

#[tokio::test]
async fn the_policy_covers_only_the_configured_source() {
    require_sandbox();
    let names = Names::new("scope");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    // Same role and policy, but the data is read from another prefix.
    p.clients
        .s3
        .put_object()
        .bucket(&names.bucket)
        .key("private/sales.csv")
        .body(std::fs::read("examples/data/sales.csv").unwrap().into())
        .send()
        .await
        .unwrap();
    let source = format!("SOURCE = s3://{}/private/sales.csv", names.bucket);
    let text = common::config_text(&names, &[("S3", &source)]);
    let mut cfg =
        s3_to_redshift::config::Config::parse(&text, "t.cfg", Some(common::PASSWORD.into()))
            .unwrap();
    cfg.iam.on_existing = s3_to_redshift::config::OnExisting::Reuse;
    let other = s3_to_redshift::Pipeline::connect(cfg).await.unwrap();
    let err = other.load(&Quiet).await.expect_err("outside the policy");
    assert!(err.to_string().contains("Access Denied"), "{err}");
}

#[tokio::test]
async fn a_cluster_created_anew_starts_empty() {
    require_sandbox();
    let names = Names::new("anew");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();
    p.down(&Default::default(), &Quiet).await.unwrap();
    p.up(false, &Quiet).await.unwrap();
    let err = p
        .preview(1)
        .await
        .expect_err("the table went with the cluster");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn a_large_failure_is_capped_and_summarised() {
    require_sandbox();
    let names = Names::new("manyerr");
    let p = pipeline(&names, &[]).await;
    let mut csv = String::from(HEADER);
    for i in 0..250 {
        match i % 5 {
            0 => csv.push_str(&format!("{i},2024-01-01,north,a,many,1.00\n")),
            1 => csv.push_str(&format!("{i},not-a-date,north,a,1,1.00\n")),
            _ => csv.push_str(&format!("{i},2024-01-01,north,a,1,1.00\n")),
        }
    }
    upload(&p, &names, csv.as_bytes()).await;
    p.up(false, &Quiet).await.unwrap();
    let err = p.load(&Quiet).await.unwrap_err();
    let Error::StatementFailed { load_errors, .. } = &err else {
        panic!("{err}")
    };
    // Redshift stops at the first bad row unless MAXERROR says otherwise; with
    // a generous MAXERROR the failure below is the one users meet.
    assert!(load_errors.total >= 1, "{err}");

    let p = pipeline(&names, &[("LOAD", "MAX_ERRORS = 1000")]).await;
    let report = p.load(&Quiet).await.unwrap();
    assert_eq!((report.loaded, report.rejected.total), (150, 100));
    assert_eq!(report.rejected.first.len(), 10);
    assert_eq!(report.rejected.first[0].line, 2);
    let groups: Vec<(&str, i64)> = report
        .rejected
        .by_reason
        .iter()
        .map(|(c, _, n)| (c.as_str(), *n))
        .collect();
    assert_eq!(groups, [("quantity", 50), ("sold_on", 50)]);
    let text = report.rejected.to_string();
    assert!(
        text.contains("100 rejected rows in all, 10 shown"),
        "{text}"
    );
}

#[tokio::test]
async fn replacing_a_cluster_that_holds_tables_is_refused_unless_forced() {
    require_sandbox();
    let names = Names::new("replfull");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();

    let replace = pipeline(&names, &[("CLUSTER", "ON_EXISTING = replace")]).await;
    for err in [
        replace.plan(false).await.unwrap_err(),
        replace.up(false, &Quiet).await.unwrap_err(),
    ] {
        assert_eq!(err.exit_code(), 3, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("holds 2 table(s) (public.s3_to_redshift_loads, public.sales)"),
            "{text}"
        );
        assert!(text.contains("pass --force"), "{text}");
    }
    assert_eq!(
        p.preview(100).await.unwrap().rows.len(),
        10,
        "nothing was touched"
    );

    let reports = replace.up(true, &Quiet).await.expect("forced");
    assert_eq!(reports[2].action, Action::Replace);
    assert!(
        replace.warehouse().list_tables().await.unwrap().is_empty(),
        "a new, empty cluster"
    );
}

#[tokio::test]
async fn a_file_with_other_columns_or_no_rows_is_refused_and_the_table_kept() {
    require_sandbox();
    let names = Names::new("shape");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();

    // One column too many: Redshift refuses the row rather than guess.
    upload(
        &p,
        &names,
        format!("{HEADER}1,2024-01-01,north,a,1,1.00,surprise\n").as_bytes(),
    )
    .await;
    let err = p.load(&Quiet).await.unwrap_err();
    let Error::StatementFailed { load_errors, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        load_errors.first[0]
            .reason
            .contains("Extra column(s) found"),
        "{err}"
    );
    assert_eq!(load_errors.first[0].line, 2, "{err}");

    // A header and nothing else: nothing to load is an error, not an empty table.
    upload(&p, &names, HEADER.as_bytes()).await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(err.contains("COPY loaded no rows"), "{err}");
    assert!(err.contains("the table was not changed"), "{err}");

    // An empty object is caught before any SQL runs.
    upload(&p, &names, b"").await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(err.contains("all empty"), "{err}");
    assert_eq!(
        table_rows(&p).await.len(),
        10,
        "the table kept its rows throughout"
    );
}

#[tokio::test]
async fn a_literal_from_quote_literal_means_on_the_sandbox_what_it_means_on_redshift() {
    // Redshift reads backslash escapes in every string literal, so the
    // library's quote_literal doubles backslashes; the sandbox must read
    // the literal back as the value, not with its backslashes doubled.
    require_sandbox();
    let names = Names::new("literal");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    for value in [
        r"C:\temp\new",
        r"it's a \ test",
        r"\\server\share",
        r"a\nb (not a line break)",
        r"ends with \",
        "plain",
    ] {
        let lit = s3_to_redshift::sql::quote_literal(value).unwrap();
        let got = p
            .warehouse()
            .query(&format!("SELECT {lit} AS v, LENGTH({lit}) AS n"))
            .await
            .unwrap();
        assert_eq!(got.rows[0][0], Value::Text(value.into()), "{lit}");
        assert_eq!(
            got.rows[0][1],
            Value::Long(value.chars().count() as i64),
            "{lit}"
        );
    }
}
