//! The Data API's newer request fields, through the real SDK client:
//! sessions (`SessionKeepAliveSeconds`, `SessionId`, `ListSessions`),
//! `ExecutionMode` on batches, idempotent requests (`ClientToken`) and long
//! polling (`WaitTimeSeconds`).
//!
//! Needs the local stack (`scripts/test.sh` starts it).

mod common;

use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::types::{ExecutionMode, SessionStatusString, StatusString};
use common::{cluster, ok, run, stack, wait};

#[tokio::test]
async fn a_session_keeps_its_connection_between_statements() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let first = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("CREATE TEMP TABLE scratch AS SELECT 7 AS x")
        .session_keep_alive_seconds(60)
        .send()
        .await
        .unwrap();
    let session = first.session_id().expect("a SessionId").to_string();
    assert_eq!(
        wait(&s, first.id().unwrap()).await.status(),
        Some(&StatusString::Finished)
    );

    // The temporary table is there in the session, and nowhere else.
    let second = s
        .data
        .execute_statement()
        .session_id(&session)
        .sql("SELECT x FROM scratch")
        .send()
        .await
        .unwrap();
    let d = wait(&s, second.id().unwrap()).await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    assert_eq!(d.session_id(), Some(session.as_str()));
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.records()[0][0],
        aws_sdk_redshiftdata::types::Field::LongValue(7)
    );
    let elsewhere = run(&s, &c, "SELECT x FROM scratch").await;
    assert_eq!(elsewhere.status(), Some(&StatusString::Failed));

    // A batch in the session sees it too, and session settings carry over.
    let batch = s
        .data
        .batch_execute_statement()
        .session_id(&session)
        .sqls("SET search_path TO pg_temp, public")
        .sqls("INSERT INTO scratch VALUES (8)")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait(&s, batch.id().unwrap()).await.status(),
        Some(&StatusString::Finished)
    );
    let count = s
        .data
        .execute_statement()
        .session_id(&session)
        .sql("SELECT COUNT(*), current_setting('search_path') FROM scratch")
        .send()
        .await
        .unwrap();
    let d = wait(&s, count.id().unwrap()).await;
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.records()[0][0],
        aws_sdk_redshiftdata::types::Field::LongValue(2)
    );
    assert_eq!(
        r.records()[0][1],
        aws_sdk_redshiftdata::types::Field::StringValue("pg_temp, public".into())
    );
}

#[tokio::test]
async fn a_busy_session_refuses_a_second_statement_and_is_listed() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let slow = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT pg_sleep(2)")
        .session_keep_alive_seconds(2)
        .send()
        .await
        .unwrap();
    let session = slow.session_id().unwrap().to_string();
    // As the service does: a session runs one statement at a time and
    // does not queue another.
    let err = s
        .data
        .execute_statement()
        .session_id(&session)
        .sql("SELECT 1")
        .send()
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("ValidationException") && text.contains("busy"),
        "{text}"
    );

    let listed = s
        .data
        .list_sessions()
        .session_id(&session)
        .send()
        .await
        .unwrap();
    let me = &listed.sessions()[0];
    assert_eq!(me.status(), &SessionStatusString::Busy);
    assert_eq!(me.current_statement_id(), slow.id());
    assert_eq!(me.cluster_identifier(), Some(c.as_str()));
    assert_eq!(me.session_alive_seconds(), Some(2));

    wait(&s, slow.id().unwrap()).await;
    let listed = s
        .data
        .list_sessions()
        .cluster_identifier(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.sessions().len(), 1);
    assert_eq!(
        listed.sessions()[0].status(),
        &SessionStatusString::Available
    );

    // Idle past its keep-alive, it closes: gone from the default list,
    // listed as CLOSED, and no longer usable.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let open = s
        .data
        .list_sessions()
        .cluster_identifier(&c)
        .send()
        .await
        .unwrap();
    assert!(open.sessions().is_empty(), "{open:?}");
    let closed = s
        .data
        .list_sessions()
        .cluster_identifier(&c)
        .status(SessionStatusString::Closed)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.sessions().len(), 1);
    let err = s
        .data
        .execute_statement()
        .session_id(&session)
        .sql("SELECT 1")
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("ResourceNotFoundException"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_batch_commits_as_one_or_statement_by_statement() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    for (mode, table) in [
        (None, "all_or_nothing"),
        (Some(ExecutionMode::AutoCommit), "each_alone"),
    ] {
        let out = s
            .data
            .batch_execute_statement()
            .cluster_identifier(&c)
            .database("dev")
            .db_user("awsuser")
            .sqls(format!("CREATE TABLE {table} (x INTEGER)"))
            .sqls(format!("INSERT INTO {table} VALUES (1)"))
            .sqls("SELECT 1 / 0")
            .sqls(format!("INSERT INTO {table} VALUES (2)"))
            .set_execution_mode(mode.clone())
            .send()
            .await
            .unwrap();
        let d = wait(&s, out.id().unwrap()).await;
        assert_eq!(d.status(), Some(&StatusString::Failed), "{mode:?}");
        let subs: Vec<_> = d
            .sub_statements()
            .iter()
            .map(|x| x.status().cloned())
            .collect();
        use aws_sdk_redshiftdata::types::StatementStatusString::*;
        match mode {
            // TRANSACTION, the default: the failure rolls back the batch
            // and the rest does not run.
            None => {
                assert_eq!(
                    subs,
                    [Some(Finished), Some(Finished), Some(Failed), Some(Aborted)]
                );
                let gone = run(&s, &c, &format!("SELECT * FROM {table}")).await;
                assert_eq!(gone.status(), Some(&StatusString::Failed));
            }
            // AUTO_COMMIT: each statement commits alone, and a failure
            // leaves the others be.
            Some(_) => {
                assert_eq!(
                    subs,
                    [Some(Finished), Some(Finished), Some(Failed), Some(Finished)]
                );
                let d = ok(&s, &c, &format!("SELECT * FROM {table}")).await;
                assert_eq!(d.result_rows(), 2);
            }
        }
    }
}

#[tokio::test]
async fn a_client_token_seen_again_runs_nothing_twice() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    ok(&s, &c, "CREATE TABLE once (x INTEGER)").await;
    let token = format!("token-{c}");
    let send = |sql: &'static str| {
        s.data
            .execute_statement()
            .cluster_identifier(&c)
            .database("dev")
            .db_user("awsuser")
            .sql(sql)
            .client_token(&token)
            .send()
    };
    let first = send("INSERT INTO once VALUES (1)").await.unwrap();
    wait(&s, first.id().unwrap()).await;
    let again = send("INSERT INTO once VALUES (1)").await.unwrap();
    assert_eq!(
        again.id(),
        first.id(),
        "the first statement's id, not a new run"
    );
    let d = ok(&s, &c, "SELECT * FROM once").await;
    assert_eq!(d.result_rows(), 1);
    // The same token for another request is a mistake, said so.
    let err = send("INSERT INTO once VALUES (2)").await.unwrap_err();
    assert!(format!("{err:?}").contains("ClientToken"), "{err:?}");
}

#[tokio::test]
async fn long_polling_answers_when_the_statement_ends_or_the_wait_runs_out() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let quick = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT 1")
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(
        quick.status(),
        Some(&aws_sdk_redshiftdata::types::StatementStatusString::Finished)
    );
    assert_eq!(quick.has_result_set(), Some(true));

    let started = Instant::now();
    let slow = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT pg_sleep(3)")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    use aws_sdk_redshiftdata::types::StatementStatusString as S;
    assert!(
        matches!(slow.status(), Some(S::Submitted | S::Picked | S::Started)),
        "{:?}",
        slow.status()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited the second out"
    );
    // DescribeStatement and GetStatementResult wait the same way.
    let d = s
        .data
        .describe_statement()
        .id(slow.id().unwrap())
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), Some(&StatusString::Finished));

    let third = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT 5 FROM pg_sleep(1)")
        .send()
        .await
        .unwrap();
    let r = s
        .data
        .get_statement_result()
        .id(third.id().unwrap())
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    assert_eq!(r.total_num_rows(), 1);

    for bad in [0, 31] {
        let err = s
            .data
            .describe_statement()
            .id(third.id().unwrap())
            .wait_time_seconds(bad)
            .send()
            .await
            .unwrap_err();
        assert!(
            format!("{err:?}").contains("ValidationException"),
            "{bad}: {err:?}"
        );
    }
}
