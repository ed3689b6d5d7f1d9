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
async fn append_mode_adds_the_rows_again() {
    require_sandbox();
    let names = Names::new("append");
    let p = pipeline(&names, &[("LOAD", "MODE = append")]).await;
    upload_sample(&p, &names).await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();
    let again = p.load(&Quiet).await.unwrap();
    assert_eq!((again.loaded, again.rows_in_table), (10, 20));
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
        message.contains("Load into table 'sales' failed"),
        "{message}"
    );
    assert!(!load_errors.is_empty(), "{err}");
    let first = &load_errors[0];
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

    // The failed COPY rolled back with the DELETE: the old rows are intact.
    let rows = p.preview(100).await.unwrap();
    assert_eq!(rows.rows.len(), 10);
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
    let rejected: Vec<(i64, &str)> = report
        .rejected
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(rejected, [(3, "quantity"), (4, "region"), (5, "")]);
    assert!(
        report.rejected[1]
            .reason
            .contains("String length exceeds DDL length")
    );
    assert!(report.rejected[2].reason.contains("Delimiter not found"));
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
    let text = common::config_text(&names, &[]).replace("/sales/sales.csv", "/private/sales.csv");
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
