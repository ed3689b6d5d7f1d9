//! The Data API code, driven by the SDK's own mocks (`aws-smithy-mocks`):
//! statement life cycles, failures with Redshift's message, pagination,
//! throttling, deadlines. moto's Data API never finishes a statement, so
//! these paths cannot be exercised against it.

use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::types::{
    ColumnMetadata, Field, StatementStatusString, StatusString, SubStatementData,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use s3_to_redshift::Error;
use s3_to_redshift::warehouse::{Polling, Target, Value, Warehouse};

fn target() -> Target {
    Target::Cluster {
        identifier: "demo".into(),
        database: "dev".into(),
        db_user: "awsuser".into(),
    }
}

fn fast() -> Polling {
    Polling {
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        growth: 125,
    }
}

/// `[AWS]` as a user writes it: 4 attempts, 1 ms between the first two.
fn aws_settings() -> s3_to_redshift::config::AwsSettings {
    let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
    let mut doc = s3_to_redshift::config::Document::parse(&text, "p.cfg").unwrap();
    doc.set("AWS", "MAX_ATTEMPTS", "4")
        .set("AWS", "INITIAL_BACKOFF_MS", "1");
    doc.config(None).unwrap().aws
}

/// A warehouse on the mocks, retrying with the crate's own retry
/// configuration (`aws::retry_config`) built from `[AWS]`, as the CLI's is.
fn warehouse(rules: &[&Rule]) -> Warehouse {
    let retry = s3_to_redshift::aws::retry_config(&aws_settings());
    let client: Client = mock_client!(aws_sdk_redshiftdata, RuleMode::MatchAny, rules, |c| c
        .retry_config(retry.clone()));
    Warehouse::new(client, target()).with_polling(fast())
}

fn submitted(id: &'static str) -> Rule {
    mock!(Client::execute_statement)
        .match_requests(|r| {
            r.cluster_identifier() == Some("demo")
                && r.database() == Some("dev")
                && r.db_user() == Some("awsuser")
        })
        .then_output(move || ExecuteStatementOutput::builder().id(id).build())
}

fn described(status: StatusString) -> DescribeStatementOutput {
    DescribeStatementOutput::builder()
        .id("s-1")
        .status(status)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_statement_is_polled_through_its_life_cycle() {
    let exec = submitted("s-1");
    let describe = mock!(Client::describe_statement)
        .match_requests(|r| r.id() == Some("s-1"))
        .sequence()
        .output(|| described(StatusString::Submitted))
        .output(|| described(StatusString::Picked))
        .output(|| described(StatusString::Started))
        .times(3)
        .output(|| {
            DescribeStatementOutput::builder()
                .id("s-1")
                .status(StatusString::Finished)
                .result_rows(42)
                .redshift_query_id(777)
                .has_result_set(false)
                .build()
                .unwrap()
        })
        .build();
    let wh = warehouse(&[&exec, &describe]);
    let done = wh
        .execute("COPY t FROM 's3://b/k'")
        .await
        .expect("finished");
    assert_eq!(
        done.result_rows, 42,
        "a COPY's ResultRows is the count loaded"
    );
    assert_eq!(done.query_id, 777);
    assert_eq!(
        describe.num_calls(),
        6,
        "polled until FINISHED, then stopped"
    );
}

#[tokio::test]
async fn a_failed_statement_carries_redshifts_message() {
    let exec = submitted("s-1");
    let describe = mock!(Client::describe_statement).then_output(|| {
        DescribeStatementOutput::builder()
            .id("s-1")
            .status(StatusString::Failed)
            .error("ERROR: relation \"public.nope\" does not exist")
            .redshift_query_id(99)
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&exec, &describe]);
    let err = wh.execute("SELECT * FROM public.nope").await.unwrap_err();
    match &err {
        Error::StatementFailed {
            id,
            message,
            sql,
            query_id,
            ..
        } => {
            assert_eq!(id, "s-1");
            assert!(message.contains("relation \"public.nope\" does not exist"));
            assert_eq!(sql, "SELECT * FROM public.nope");
            assert_eq!(*query_id, 99);
        }
        other => panic!("wrong error: {other}"),
    }
    assert_eq!(err.exit_code(), 6);
}

#[tokio::test]
async fn an_aborted_statement_is_an_error() {
    let exec = submitted("s-1");
    let describe =
        mock!(Client::describe_statement).then_output(|| described(StatusString::Aborted));
    let wh = warehouse(&[&exec, &describe]);
    let err = wh.execute("SELECT 1").await.unwrap_err();
    assert!(matches!(err, Error::StatementAborted { .. }), "{err}");
}

#[tokio::test]
async fn results_are_fetched_across_pages_with_their_types() {
    let exec = submitted("s-1");
    let describe = mock!(Client::describe_statement).then_output(|| {
        DescribeStatementOutput::builder()
            .id("s-1")
            .status(StatusString::Finished)
            .has_result_set(true)
            .build()
            .unwrap()
    });
    let columns = || {
        vec![
            ColumnMetadata::builder()
                .name("id")
                .type_name("int4")
                .build(),
            ColumnMetadata::builder()
                .name("name")
                .type_name("varchar")
                .build(),
            ColumnMetadata::builder()
                .name("price")
                .type_name("numeric")
                .build(),
            ColumnMetadata::builder()
                .name("ok")
                .type_name("bool")
                .build(),
        ]
    };
    let page1 = mock!(Client::get_statement_result)
        .match_requests(|r| r.id() == Some("s-1") && r.next_token().is_none())
        .then_output(move || {
            GetStatementResultOutput::builder()
                .set_column_metadata(Some(columns()))
                .records(vec![
                    Field::LongValue(1),
                    Field::StringValue("notebook".into()),
                    Field::StringValue("4.50".into()),
                    Field::BooleanValue(true),
                ])
                .next_token("page-2")
                .build()
                .unwrap()
        });
    let page2 = mock!(Client::get_statement_result)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetStatementResultOutput::builder()
                .records(vec![
                    Field::LongValue(2),
                    Field::IsNull(true),
                    Field::DoubleValue(0.5),
                    Field::BooleanValue(false),
                ])
                .build()
                .unwrap()
        });
    let wh = warehouse(&[&exec, &describe, &page1, &page2]);
    let rs = wh.query("SELECT id, name, price, ok FROM t").await.unwrap();
    assert_eq!(rs.columns[0], ("id".to_string(), "int4".to_string()));
    assert_eq!(rs.rows.len(), 2, "both pages");
    assert_eq!(
        rs.rows[1],
        vec![
            Value::Long(2),
            Value::Null,
            Value::Double(0.5),
            Value::Bool(false)
        ]
    );
    assert_eq!(rs.scalar_i64(), Some(1));
    let table = rs.to_string();
    assert!(
        table.contains("notebook") && table.contains("NULL") && table.ends_with("(2 rows)"),
        "{table}"
    );
}

#[tokio::test]
async fn parameters_are_sent_not_pasted() {
    let exec = mock!(Client::execute_statement)
        .match_requests(|r| {
            let p = r.parameters();
            r.sql() == Some("SELECT COUNT(*) FROM t WHERE name = :name")
                && p.len() == 1
                && p[0].name() == "name"
                && p[0].value() == "O'Brien; DROP TABLE t"
        })
        .then_output(|| ExecuteStatementOutput::builder().id("s-1").build());
    let describe =
        mock!(Client::describe_statement).then_output(|| described(StatusString::Finished));
    let wh = warehouse(&[&exec, &describe]);
    wh.execute_with(
        "SELECT COUNT(*) FROM t WHERE name = :name",
        &[("name", "O'Brien; DROP TABLE t")],
    )
    .await
    .expect("the parameter went as a value");
    assert_eq!(exec.num_calls(), 1);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let exec = submitted("s-1");
    let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let describe = mock!(Client::describe_statement)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .times(2)
        .output(|| described(StatusString::Finished))
        .build();
    let wh = warehouse(&[&exec, &describe]);
    wh.execute("SELECT 1")
        .await
        .expect("retried through throttling");
    assert_eq!(describe.num_calls(), 3);
}

#[tokio::test]
async fn persistent_throttling_names_the_operation() {
    let exec = submitted("s-1");
    let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let describe = mock!(Client::describe_statement)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .repeatedly()
        .build();
    let wh = warehouse(&[&exec, &describe]);
    let err = wh.execute("SELECT 1").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("DescribeStatement") && text.contains("ThrottlingException"),
        "{text}"
    );
    let attempts = aws_settings().max_attempts as usize;
    assert_eq!(attempts, 4);
    assert_eq!(
        describe.num_calls(),
        attempts,
        "[AWS] MAX_ATTEMPTS, then give up"
    );
}

#[tokio::test]
async fn an_overdue_statement_is_cancelled_and_times_out() {
    let exec = submitted("s-1");
    let describe =
        mock!(Client::describe_statement).then_output(|| described(StatusString::Started));
    let cancel = mock!(Client::cancel_statement)
        .match_requests(|r| r.id() == Some("s-1"))
        .then_output(|| CancelStatementOutput::builder().status(true).build());
    let client: Client = mock_client!(
        aws_sdk_redshiftdata,
        RuleMode::MatchAny,
        [&exec, &describe, &cancel]
    );
    let wh = Warehouse::new(client, target()).with_polling(Polling {
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
        timeout: Duration::from_millis(200),
        growth: 125,
    });
    let err = wh.execute("SELECT pg_sleep(3600)").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("STATEMENT_TIMEOUT_SECS"), "{err}");
    assert_eq!(cancel.num_calls(), 1, "the statement was cancelled");
    assert_eq!(err.exit_code(), 5);
}

#[tokio::test]
async fn a_batch_names_the_sub_statement_that_failed() {
    let batch = mock!(Client::batch_execute_statement)
        .match_requests(|r| r.sqls().len() == 2)
        .then_output(|| BatchExecuteStatementOutput::builder().id("b-1").build());
    let describe = mock!(Client::describe_statement).then_output(|| {
        DescribeStatementOutput::builder()
            .id("b-1")
            .status(StatusString::Failed)
            .error("batch failed")
            .sub_statements(
                SubStatementData::builder()
                    .id("b-1:1")
                    .status(StatementStatusString::Finished)
                    .query_string("DELETE FROM t")
                    .build()
                    .unwrap(),
            )
            .sub_statements(
                SubStatementData::builder()
                    .id("b-1:2")
                    .status(StatementStatusString::Failed)
                    .query_string("COPY t FROM 's3://b/k'")
                    .error("Load into table 't' failed. Check 'stl_load_errors' system table for details.")
                    .redshift_query_id(1234)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&batch, &describe]);
    let err = wh
        .batch(&["DELETE FROM t".into(), "COPY t FROM 's3://b/k'".into()])
        .await
        .unwrap_err();
    match err {
        Error::StatementFailed {
            id,
            sql,
            message,
            query_id,
            ..
        } => {
            assert_eq!(id, "b-1:2");
            assert!(sql.starts_with("COPY"));
            assert!(message.contains("stl_load_errors"));
            assert_eq!(query_id, 1234, "so the load errors can be looked up");
        }
        other => panic!("wrong error: {other}"),
    }
}

#[tokio::test]
async fn a_finished_batch_reports_each_sub_statement() {
    let batch = mock!(Client::batch_execute_statement)
        .then_output(|| BatchExecuteStatementOutput::builder().id("b-1").build());
    let describe = mock!(Client::describe_statement).then_output(|| {
        let sub = |id: &str, rows: i64| {
            SubStatementData::builder()
                .id(id)
                .status(StatementStatusString::Finished)
                .result_rows(rows)
                .build()
                .unwrap()
        };
        DescribeStatementOutput::builder()
            .id("b-1")
            .status(StatusString::Finished)
            .sub_statements(sub("b-1:1", 7))
            .sub_statements(sub("b-1:2", 10))
            .build()
            .unwrap()
    });
    let wh = warehouse(&[&batch, &describe]);
    let done = wh
        .batch(&["DELETE FROM t".into(), "COPY t".into()])
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(|d| d.result_rows).collect::<Vec<_>>(),
        [7, 10]
    );
}
