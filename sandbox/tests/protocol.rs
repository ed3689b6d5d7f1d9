//! The sandbox through the real `aws-sdk-redshiftdata` client: the wire
//! protocol, the statement life cycle, types, pages, batches, parameters,
//! cancellation, the catalogue calls, COPY's options and IAM checks, bad
//! requests, and many statements at once.
//!
//! Needs the local stack (`scripts/test.sh` starts it): moto for the cluster,
//! IAM and S3, and the sandbox at `AWS_ENDPOINT_URL_REDSHIFT_DATA`.

mod common;

use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::types::{Field, SqlParameter, StatusString};
use common::{
    CopyFixture, Stack, admin_password, cluster, copy_fixture, ok, put, raw, run, stack, unique,
    wait,
};

#[tokio::test]
async fn a_statement_goes_through_its_life_cycle() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    ok(&s, &c, "CREATE TABLE gate (n INTEGER)").await;
    // The test holds a lock on `gate` in PostgreSQL itself, so the statement
    // cannot end before the test lets it: its early status is known, not
    // raced against a sleep.
    let pg = std::env::var("S2R_SANDBOX_POSTGRES")
        .expect("S2R_SANDBOX_POSTGRES is not set: run the tests with scripts/test.sh");
    let db = redshift_sandbox::pg::Target::Cluster(c.clone()).pg_database("dev");
    let (mut holder, conn) = tokio_postgres::connect(
        &format!("{pg} dbname={db} password={}", admin_password()),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to the sandbox's PostgreSQL");
    tokio::spawn(conn);
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let out = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT (SELECT COUNT(*) FROM gate), 1")
        .send()
        .await
        .unwrap();
    let id = out.id.unwrap();
    assert_eq!(out.cluster_identifier.as_deref(), Some(c.as_str()));
    let early = s.data.describe_statement().id(&id).send().await.unwrap();
    assert!(
        matches!(
            early.status(),
            Some(StatusString::Submitted | StatusString::Picked | StatusString::Started)
        ),
        "ExecuteStatement returns before the SQL ends: {:?}",
        early.status()
    );
    // Held for at least half a second: the duration below cannot be less.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.commit().await.unwrap();
    let done = wait(&s, &id).await;
    assert_eq!(done.status(), Some(&StatusString::Finished));
    assert_eq!(done.result_rows(), 1);
    assert_eq!(done.has_result_set(), Some(true));
    assert!(done.redshift_query_id() > 0);
    assert!(
        done.duration() >= 500_000_000,
        "duration in ns: {}",
        done.duration()
    );
}

#[tokio::test]
async fn results_are_typed_as_the_service_types_them() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let d = ok(
        &s,
        &c,
        "SELECT 42::int AS i, 7::bigint AS b, 2.5::float8 AS f, 'x'::varchar(10) AS v, true AS t, \
         NULL::int AS n, 12.50::numeric(10,2) AS d, DATE '2024-01-03' AS day, TIMESTAMP '2024-01-03 04:05:06' AS ts",
    )
    .await;
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    let types: Vec<&str> = r
        .column_metadata()
        .iter()
        .map(|c| c.type_name().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "int4",
            "int8",
            "float8",
            "varchar",
            "bool",
            "int4",
            "numeric",
            "date",
            "timestamp"
        ]
    );
    let row = &r.records()[0];
    assert_eq!(row[0], Field::LongValue(42));
    assert_eq!(row[1], Field::LongValue(7));
    assert_eq!(row[2], Field::DoubleValue(2.5));
    assert_eq!(row[3], Field::StringValue("x".into()));
    assert_eq!(row[4], Field::BooleanValue(true));
    assert_eq!(row[5], Field::IsNull(true));
    assert_eq!(row[6], Field::StringValue("12.50".into()));
    assert_eq!(row[7], Field::StringValue("2024-01-03".into()));
    assert_eq!(row[8], Field::StringValue("2024-01-03 04:05:06".into()));
}

#[tokio::test]
async fn results_come_in_pages_of_1000_rows() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let d = ok(
        &s,
        &c,
        "SELECT g FROM generate_series(1, 2500) AS g ORDER BY g",
    )
    .await;
    assert_eq!(d.result_rows(), 2500);
    let mut token = None;
    let mut sizes = Vec::new();
    let mut last = 0;
    loop {
        let page = s
            .data
            .get_statement_result()
            .id(d.id())
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        sizes.push(page.records().len());
        assert_eq!(page.total_num_rows(), 2500);
        last = match page.records().last().map(|r| &r[0]) {
            Some(Field::LongValue(v)) => *v,
            _ => last,
        };
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!(last, 2500);

    let v2 = s
        .data
        .get_statement_result_v2()
        .id(d.id())
        .send()
        .await
        .unwrap();
    let csv = match &v2.records()[0] {
        aws_sdk_redshiftdata::types::QueryRecords::CsvRecords(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    assert!(csv.starts_with("g\n1\n2\n"), "{}", &csv[..20]);
}

#[tokio::test]
async fn a_failed_statement_reports_the_database_error() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let d = run(&s, &c, "SELECT * FROM no_such_table").await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    assert_eq!(
        d.error(),
        Some("ERROR: relation \"no_such_table\" does not exist")
    );
    for sql in ["SELECT 1; SELECT 2", "SELECT 1; SELECT 2;"] {
        let d = run(&s, &c, sql).await;
        assert_eq!(d.status(), Some(&StatusString::Failed), "{sql}");
        assert!(
            d.error().unwrap().contains("use BatchExecuteStatement"),
            "{sql}: {:?}",
            d.error()
        );
    }
    assert_eq!(
        ok(&s, &c, "SELECT 1;").await.result_rows(),
        1,
        "a trailing `;` is fine"
    );
    let err = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("ResourceNotFoundException"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_batch_is_one_transaction() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let run_batch = |sqls: Vec<&str>| {
        let s = &s;
        let c = c.clone();
        let sqls: Vec<String> = sqls.into_iter().map(str::to_string).collect();
        async move {
            let id = s
                .data
                .batch_execute_statement()
                .cluster_identifier(c)
                .database("dev")
                .db_user("awsuser")
                .set_sqls(Some(sqls))
                .send()
                .await
                .unwrap()
                .id
                .unwrap();
            wait(s, &id).await
        }
    };
    let good = run_batch(vec![
        "CREATE TABLE t (x int)",
        "INSERT INTO t VALUES (1), (2)",
        "INSERT INTO t VALUES (3)",
    ])
    .await;
    assert_eq!(good.status(), Some(&StatusString::Finished));
    let rows: Vec<i64> = good
        .sub_statements()
        .iter()
        .map(|s| s.result_rows())
        .collect();
    assert_eq!(rows, [0, 2, 1]);
    assert_eq!(good.sub_statements()[1].id(), format!("{}:2", good.id()));

    let bad = run_batch(vec![
        "INSERT INTO t VALUES (4)",
        "INSERT INTO t VALUES ('four')",
        "INSERT INTO t VALUES (5)",
    ])
    .await;
    assert_eq!(bad.status(), Some(&StatusString::Failed));
    let statuses: Vec<&str> = bad
        .sub_statements()
        .iter()
        .map(|s| s.status().unwrap().as_str())
        .collect();
    assert_eq!(statuses, ["FINISHED", "FAILED", "ABORTED"]);
    assert!(
        bad.sub_statements()[1]
            .error()
            .unwrap()
            .contains("invalid input syntax for type integer")
    );
    // The batch rolled back: 4 is not there.
    let count = ok(&s, &c, "SELECT COUNT(*) FROM t").await;
    let r = s
        .data
        .get_statement_result()
        .id(count.id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records()[0][0], Field::LongValue(3));
}

#[tokio::test]
async fn parameters_are_bound_not_pasted() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    ok(&s, &c, "CREATE TABLE people (name varchar(64), age int)").await;
    let hostile = "O'Brien'); DROP TABLE people; --";
    let id = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("INSERT INTO people VALUES (:name, :age)")
        .parameters(
            SqlParameter::builder()
                .name("name")
                .value(hostile)
                .build()
                .unwrap(),
        )
        .parameters(
            SqlParameter::builder()
                .name("age")
                .value("42")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .id
        .unwrap();
    assert_eq!(wait(&s, &id).await.status(), Some(&StatusString::Finished));
    let d = ok(&s, &c, "SELECT name, age FROM people").await;
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records()[0][0], Field::StringValue(hostile.into()));
    assert_eq!(r.records()[0][1], Field::LongValue(42));
}

#[tokio::test]
async fn a_running_statement_can_be_cancelled() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let id = s
        .data
        .execute_statement()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT pg_sleep(30)")
        .send()
        .await
        .unwrap()
        .id
        .unwrap();
    // Until it has started: the test is about cancelling a running
    // statement, so a statement that never starts fails it, loudly.
    let mut started = false;
    for _ in 0..500 {
        let d = s.data.describe_statement().id(&id).send().await.unwrap();
        if d.status() == Some(&StatusString::Started) {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started, "statement {id} did not start within 10 s");
    let t = std::time::Instant::now();
    assert_eq!(
        s.data
            .cancel_statement()
            .id(&id)
            .send()
            .await
            .unwrap()
            .status(),
        Some(true)
    );
    let d = wait(&s, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Aborted));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "cancelled at once, not after 30 s"
    );
    // Cancelling a finished statement is an error, as on AWS.
    let err = s.data.cancel_statement().id(&id).send().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("ValidationException"),
        "{err:?}"
    );
}

#[tokio::test]
async fn statements_are_listed() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let d = ok(&s, &c, "SELECT 'listed'").await;
    let list = s
        .data
        .list_statements()
        .status(aws_sdk_redshiftdata::types::StatusString::Finished)
        .send()
        .await
        .unwrap();
    assert!(
        list.statements()
            .iter()
            .any(|st| st.id() == d.id() && st.query_string() == Some("SELECT 'listed'"))
    );
}

#[tokio::test]
async fn the_catalogue_calls_see_what_sql_sees() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    ok(&s, &c, "CREATE SCHEMA shop").await;
    ok(&s, &c, "CREATE TABLE shop.orders (id int NOT NULL, total numeric(10,2), note varchar(20)) DISTSTYLE KEY DISTKEY (id) SORTKEY (id)").await;
    let dbs = s
        .data
        .list_databases()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .send()
        .await
        .unwrap();
    assert_eq!(dbs.databases(), ["dev"]);
    let schemas = s
        .data
        .list_schemas()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .send()
        .await
        .unwrap();
    assert!(
        schemas.schemas().contains(&"shop".to_string())
            && schemas.schemas().contains(&"public".to_string()),
        "{:?}",
        schemas.schemas()
    );
    assert!(
        !schemas.schemas().iter().any(|x| x == "sandbox_sys"),
        "the sandbox's own schema stays hidden"
    );
    let tables = s
        .data
        .list_tables()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .schema_pattern("shop")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = tables.tables().iter().map(|t| t.name().unwrap()).collect();
    assert_eq!(names, ["orders"]);
    let desc = s
        .data
        .describe_table()
        .cluster_identifier(&c)
        .database("dev")
        .db_user("awsuser")
        .schema("shop")
        .table("orders")
        .send()
        .await
        .unwrap();
    let cols: Vec<(&str, &str, i32)> = desc
        .column_list()
        .iter()
        .map(|c| (c.name().unwrap(), c.type_name().unwrap(), c.nullable()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "int4", 0),
            ("total", "numeric", 1),
            ("note", "varchar", 1)
        ]
    );
    assert_eq!(desc.column_list()[2].length(), 20);
    assert_eq!(desc.column_list()[1].scale(), 2);
}

#[tokio::test]
async fn an_unknown_or_unavailable_cluster_is_refused() {
    let s = stack().await;
    let err = s
        .data
        .execute_statement()
        .cluster_identifier("no-such-cluster")
        .database("dev")
        .db_user("awsuser")
        .sql("SELECT 1")
        .send()
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("ValidationException") && text.contains("no-such-cluster not found"),
        "{text}"
    );
}

#[tokio::test]
async fn a_serverless_workgroup_is_served() {
    let s = stack().await;
    let wg = unique("wg");
    let id = s
        .data
        .execute_statement()
        .workgroup_name(&wg)
        .database("dev")
        .sql("SELECT current_database() LIKE 'rs_w_%'")
        .send()
        .await
        .unwrap()
        .id
        .unwrap();
    let d = wait(&s, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    assert_eq!(d.workgroup_name(), Some(wg.as_str()));
}

#[tokio::test]
async fn malformed_requests_get_the_services_error_shapes() {
    let s = stack().await;
    let (status, body) = raw(
        &s.endpoint,
        Some("RedshiftData.ExecuteStatement"),
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("\"__type\":\"SerializationException\""),
        "{body}"
    );
    let (status, body) = raw(&s.endpoint, Some("RedshiftData.Frobnicate"), "{}").await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");
    let (status, body) = raw(&s.endpoint, None, "{}").await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");
    let (status, body) = raw(
        &s.endpoint,
        Some("RedshiftData.ExecuteStatement"),
        r#"{"ClusterIdentifier":"x","Database":"dev"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("ValidationException") && body.contains("'Sql'"),
        "{body}"
    );
    let (status, body) = raw(
        &s.endpoint,
        Some("RedshiftData.DescribeStatement"),
        r#"{"Id":"00000000-0000-0000-0000-000000000000"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("ResourceNotFoundException"), "{body}");
}

/// The sandbox's resident memory, in KiB: (now, peak).
fn sandbox_memory_kib() -> Option<(u64, u64)> {
    let pid = std::env::var("S2R_SANDBOX_PID").ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn run_to_end(
    data: &Client,
    id: &str,
) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput {
    // A deadline, so that a statement that never ends fails the test with
    // its last state instead of hanging the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut delay = Duration::from_millis(20);
    loop {
        let d = data.describe_statement().id(id).send().await.unwrap();
        if matches!(
            d.status(),
            Some(StatusString::Finished | StatusString::Failed | StatusString::Aborted)
        ) {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statement {id} still {:?} after 120 s",
            d.status()
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// 200 statements at once from four clients (each its own connection
/// pool, as four programs would be), more than the sandbox's 32
/// connections: none is lost, each gets its own result, the writes all
/// land, and the sandbox's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_statements_from_several_clients_all_finish_with_their_own_results() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let table = unique("load").replace('-', "_");
    let exec = |sql: String| {
        let (data, c) = (s.data.clone(), c.clone());
        async move {
            let id = data
                .execute_statement()
                .cluster_identifier(&c)
                .database("dev")
                .db_user("awsuser")
                .sql(sql)
                .send()
                .await
                .unwrap()
                .id
                .unwrap();
            run_to_end(&data, &id).await
        }
    };
    exec(format!("CREATE TABLE {table} (n INTEGER, client INTEGER)")).await;
    let before = sandbox_memory_kib();

    let mut clients = Vec::new();
    for _ in 0..4 {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        clients.push(Client::new(&sdk));
    }
    let mut tasks = Vec::new();
    for n in 0..200i64 {
        let data = clients[(n % 4) as usize].clone();
        let (c, table) = (c.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            // Half write a row; half read 1000 rows back (the results are
            // what the sandbox must hold in memory).
            let sql = if n % 2 == 0 {
                format!("INSERT INTO {table} VALUES ({n}, {})", n % 4)
            } else {
                format!("SELECT {n} AS n, g FROM generate_series(1, 1000) AS g")
            };
            let id = data
                .execute_statement()
                .cluster_identifier(&c)
                .database("dev")
                .db_user("awsuser")
                .sql(sql)
                .send()
                .await
                .unwrap()
                .id
                .unwrap();
            let d = run_to_end(&data, &id).await;
            assert_eq!(
                d.status(),
                Some(&StatusString::Finished),
                "{n}: {:?}",
                d.error()
            );
            if n % 2 == 0 {
                assert_eq!(d.result_rows(), 1, "{n}");
                return (n, 1, Field::LongValue(n));
            }
            let mut rows = 0;
            let mut first = None;
            let mut token: Option<String> = None;
            loop {
                let r = data
                    .get_statement_result()
                    .id(&id)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .unwrap();
                rows += r.records().len();
                first = first.or_else(|| r.records().first().map(|rec| rec[0].clone()));
                match r.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            (n, rows, first.unwrap())
        }));
    }
    let mut done = 0;
    for t in tasks {
        let (n, rows, first) = t.await.unwrap();
        assert_eq!(
            first,
            Field::LongValue(n),
            "statement {n} got someone else's result"
        );
        assert_eq!(rows, if n % 2 == 0 { 1 } else { 1000 }, "{n}");
        done += 1;
    }
    assert_eq!(done, 200);
    let d = exec(format!(
        "SELECT COUNT(*), COUNT(DISTINCT n), SUM(n) FROM {table}"
    ))
    .await;
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    let expected_sum: i64 = (0..200).filter(|n| n % 2 == 0).sum();
    assert_eq!(
        r.records()[0],
        [
            Field::LongValue(100),
            Field::LongValue(100),
            Field::LongValue(expected_sum)
        ],
        "every write landed once"
    );

    match (before, sandbox_memory_kib()) {
        (Some((rss0, _)), Some((rss1, peak))) => {
            eprintln!("sandbox memory: {rss0} KiB before, {rss1} KiB after, peak {peak} KiB");
            // 100 results of 1000 rows are a few MiB; the bound is generous on
            // purpose (allocator slack), but a leak per row or a copy per poll
            // would pass it quickly.
            assert!(peak < 256 * 1024, "sandbox peak memory {peak} KiB");
            assert!(rss1 < rss0 + 128 * 1024, "grew from {rss0} to {rss1} KiB");
        }
        // Never skipped silently: where /proc exists, not reading it is a
        // broken set-up (scripts/sandbox.sh exports the sandbox's pid).
        _ if cfg!(target_os = "linux") => panic!(
            "cannot read the sandbox's memory: S2R_SANDBOX_PID={:?} must name the running \
             sandbox (run the tests with scripts/test.sh)",
            std::env::var("S2R_SANDBOX_PID").ok()
        ),
        _ => eprintln!("NOTE: the sandbox's memory bound is not checked: /proc is Linux-only"),
    }
}

// ---- COPY ----

async fn count(s: &Stack, cluster: &str) -> i64 {
    let d = ok(s, cluster, "SELECT COUNT(*) FROM items").await;
    match &s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap()
        .records()[0][0]
    {
        Field::LongValue(n) => *n,
        other => panic!("{other:?}"),
    }
}

const ITEMS: &str = "id,name,price,added\n1,apple,0.50,2024-01-01\n2,\"pear, green\",0.75,2024-01-02\n3,,1.00,2024-01-03\n";

#[tokio::test]
async fn copy_loads_csv_and_reports_the_count() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(&s, &f.bucket, "in/items.csv", ITEMS.into()).await;
    let d = ok(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/in/items.csv' IAM_ROLE '{}' CSV IGNOREHEADER 1",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(
        d.result_rows(),
        3,
        "ResultRows of a COPY is the rows loaded"
    );
    assert_eq!(count(&s, &f.cluster).await, 3);
}

#[tokio::test]
async fn the_sessions_last_copy_is_counted() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(&s, &f.bucket, "in/items.csv", ITEMS.into()).await;
    // A batch is one session: the COPY's count and id are seen after it.
    let out = s
        .data
        .batch_execute_statement()
        .cluster_identifier(&f.cluster)
        .database("dev")
        .db_user("awsuser")
        .sqls(format!(
            "COPY items FROM 's3://{}/in/items.csv' IAM_ROLE '{}' CSV IGNOREHEADER 1",
            f.bucket, f.role
        ))
        .sqls("SELECT PG_LAST_COPY_COUNT(), PG_LAST_COPY_ID() > 0")
        .send()
        .await
        .unwrap();
    let d = wait(&s, out.id().unwrap()).await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    let copy_query = d.sub_statements()[0].redshift_query_id();
    let r = s
        .data
        .get_statement_result()
        .id(d.sub_statements()[1].id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records()[0][0], Field::LongValue(3));
    assert_eq!(
        r.records()[0][1],
        Field::BooleanValue(true),
        "copy query {copy_query}"
    );
}

/// The loader re-writes every row for PostgreSQL and quotes a value only
/// when it must: each value that could be misread unquoted (an empty
/// string, a quote, the delimiter, a line break, a lone `\.`, which is
/// PostgreSQL's end-of-data line) must still load as it was written.
#[tokio::test]
async fn copy_keeps_every_text_value_as_written() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    // One column, so that a value of `\.` alone would be a whole line.
    ok(&s, &f.cluster, "CREATE TABLE notes (body varchar(40))").await;
    let csv = "\\.\n\"a,b\"\n\"say \"\"hi\"\"\"\n\"line1\nline2\"\n\"cr\rhere\"\n spaced \n\\N\n\\x\nplain\n";
    put(&s, &f.bucket, "in/notes.csv", csv.into()).await;
    let d = ok(
        &s,
        &f.cluster,
        &format!(
            "COPY notes FROM 's3://{}/in/notes.csv' IAM_ROLE '{}' CSV",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(d.result_rows(), 9, "every line is a row");
    let d = ok(&s, &f.cluster, "SELECT COALESCE(body, '<NULL>') FROM notes").await;
    let out = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    let mut got: Vec<&str> = out
        .records()
        .iter()
        .map(|r| match &r[0] {
            Field::StringValue(v) => v.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort_unstable();
    let mut want = vec![
        "\\.",
        "a,b",
        "say \"hi\"",
        "line1\nline2",
        "cr\rhere",
        " spaced ",
        "<NULL>",
        "\\x",
        "plain",
    ];
    want.sort_unstable();
    assert_eq!(got, want);

    // An empty string stays an empty string, apart from NULL. (Alone on a
    // line it would be a blank line, which COPY skips: hence two columns.)
    ok(
        &s,
        &f.cluster,
        "CREATE TABLE pairs (a varchar(5), b varchar(5))",
    )
    .await;
    put(&s, &f.bucket, "in/pairs.csv", "\"\",\\N\n".into()).await;
    ok(
        &s,
        &f.cluster,
        &format!(
            "COPY pairs FROM 's3://{}/in/pairs.csv' IAM_ROLE '{}' CSV",
            f.bucket, f.role
        ),
    )
    .await;
    let d = ok(
        &s,
        &f.cluster,
        "SELECT COUNT(*) FROM pairs WHERE a = '' AND b IS NULL",
    )
    .await;
    let out = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.records()[0][0],
        Field::LongValue(1),
        "'' and NULL kept apart"
    );
}

#[tokio::test]
async fn copy_reads_every_object_under_a_prefix_and_gzip() {
    use std::io::Write;
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(
        &s,
        &f.bucket,
        "parts/a.csv",
        "1,a,1.00,2024-01-01\n2,b,2.00,2024-01-02\n".into(),
    )
    .await;
    put(&s, &f.bucket, "parts/b.csv", "3,c,3.00,2024-01-03\n".into()).await;
    ok(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/parts/' IAM_ROLE '{}' CSV",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(count(&s, &f.cluster).await, 3);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"4|d|4.00|2024-01-04\n5|e|5.00|2024-01-05\n")
        .unwrap();
    put(&s, &f.bucket, "gz/items.txt.gz", gz.finish().unwrap()).await;
    let d = ok(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/gz/' IAM_ROLE '{}' GZIP DELIMITER '|'",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(d.result_rows(), 2);
}

#[tokio::test]
async fn copy_follows_a_manifest_and_reads_json() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(
        &s,
        &f.bucket,
        "m/one.json",
        br#"{"id": 1, "NAME": "apple", "price": 0.5, "added": "2024-01-01"}
{"id": 2, "name": null, "price": "1.25"}
"#
        .to_vec(),
    )
    .await;
    let manifest = format!(
        r#"{{"entries": [{{"url": "s3://{b}/m/one.json", "mandatory": true}}, {{"url": "s3://{b}/m/missing.json", "mandatory": false}}]}}"#,
        b = f.bucket
    );
    put(&s, &f.bucket, "m/files.manifest", manifest.into()).await;
    let d = ok(&s, &f.cluster, &format!("COPY items FROM 's3://{}/m/files.manifest' IAM_ROLE '{}' FORMAT AS JSON 'auto' MANIFEST", f.bucket, f.role)).await;
    assert_eq!(d.result_rows(), 2);
    let r = ok(&s, &f.cluster, "SELECT name, price FROM items ORDER BY id").await;
    let rows = s
        .data
        .get_statement_result()
        .id(r.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        rows.records()[0][0],
        Field::StringValue("apple".into()),
        "JSON keys match columns case-insensitively"
    );
    assert_eq!(rows.records()[1][0], Field::IsNull(true));
}

#[tokio::test]
async fn copy_refuses_what_redshift_refuses() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(&s, &f.bucket, "in/items.csv", ITEMS.into()).await;
    let copy = |extra: &str| {
        format!(
            "COPY items FROM 's3://{}/in/items.csv' IAM_ROLE '{}' CSV IGNOREHEADER 1 {extra}",
            f.bucket, f.role
        )
    };
    for (extra, needle) in [
        (
            "ACCEPTINVCHARS",
            "COPY option ACCEPTINVCHARS is not supported",
        ),
        (
            "REGION 'eu-west-1'",
            "is in us-east-1, COPY reads from eu-west-1",
        ),
    ] {
        let d = run(&s, &f.cluster, &copy(extra)).await;
        assert_eq!(d.status(), Some(&StatusString::Failed), "{extra}");
        assert!(
            d.error().unwrap().contains(needle),
            "{extra}: {:?}",
            d.error()
        );
    }
    let d = run(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/nothing-here/' IAM_ROLE '{}' CSV",
            f.bucket, f.role
        ),
    )
    .await;
    assert!(
        d.error()
            .unwrap()
            .contains("The specified S3 prefix 'nothing-here/' does not exist"),
        "{:?}",
        d.error()
    );
    assert_eq!(count(&s, &f.cluster).await, 0);
}

#[tokio::test]
async fn copy_needs_the_role_attached_to_the_cluster() {
    let s = stack().await;
    let f = copy_fixture(&s, false).await;
    put(&s, &f.bucket, "in/items.csv", ITEMS.into()).await;
    let d = run(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/in/items.csv' IAM_ROLE '{}' CSV IGNOREHEADER 1",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    let e = d.error().unwrap();
    assert!(
        e.contains(&format!(
            "dbuser:{}/awsuser is not authorized to assume IAM Role {}",
            f.cluster, f.role
        )),
        "{e}"
    );
}

#[tokio::test]
async fn failed_loads_are_queryable_in_stl_load_errors() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(
        &s,
        &f.bucket,
        "in/bad.csv",
        "1,apple,0.50,2024-01-01\nx,pear,0.75,2024-01-02\n".into(),
    )
    .await;
    let d = run(
        &s,
        &f.cluster,
        &format!(
            "COPY items FROM 's3://{}/in/bad.csv' IAM_ROLE '{}' CSV",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    assert!(d.error().unwrap().contains("Check 'stl_load_errors'"));
    let q = ok(&s, &f.cluster, &format!(
        "SELECT line_number, TRIM(colname), TRIM(raw_field_value), err_code FROM stl_load_errors WHERE query = {}", d.redshift_query_id()
    )).await;
    let r = s
        .data
        .get_statement_result()
        .id(q.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.records()[0],
        [
            Field::LongValue(2),
            Field::StringValue("id".into()),
            Field::StringValue("x".into()),
            Field::LongValue(1207)
        ]
    );
    let q = ok(
        &s,
        &f.cluster,
        &format!(
            "SELECT COUNT(*) FROM sys_load_error_detail WHERE query_id = {}",
            d.redshift_query_id()
        ),
    )
    .await;
    let r = s
        .data
        .get_statement_result()
        .id(q.id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records()[0][0], Field::LongValue(1));
    assert_eq!(
        count(&s, &f.cluster).await,
        0,
        "the good row was not kept either"
    );
}

// ---- UNLOAD ----

/// Lets the fixture's role write under `unload/` too, as UNLOAD needs.
async fn grant_write(s: &Stack, f: &CopyFixture) {
    let role_name = f.role.rsplit('/').next().unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::{}/unload/*"]}}]}}"#,
        f.bucket
    );
    s.iam
        .put_role_policy()
        .role_name(role_name)
        .policy_name("write")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn unload_writes_what_copy_loads_back_unchanged() {
    let s = stack().await;
    let f = copy_fixture(&s, true).await;
    put(&s, &f.bucket, "in/items.csv", ITEMS.into()).await;
    let copy = |from: &str, options: &str| {
        format!("COPY items FROM '{from}' IAM_ROLE '{}' {options}", f.role)
    };
    ok(
        &s,
        &f.cluster,
        &copy(
            &format!("s3://{}/in/items.csv", f.bucket),
            "CSV IGNOREHEADER 1",
        ),
    )
    .await;
    let unload = format!(
        "UNLOAD ('SELECT * FROM items ORDER BY id') TO 's3://{}/unload/items_' IAM_ROLE '{}' \
         CSV HEADER GZIP MANIFEST",
        f.bucket, f.role
    );

    // The read policy COPY needs is not enough to write: the error says so.
    let refused = run(&s, &f.cluster, &unload).await;
    let message = refused.error().unwrap_or_default();
    assert!(
        message.contains("Access Denied") && message.contains("s3:PutObject"),
        "{message}"
    );

    grant_write(&s, &f).await;
    let d = ok(&s, &f.cluster, &unload).await;
    assert_eq!(
        d.result_rows(),
        3,
        "ResultRows of an UNLOAD is the rows written"
    );
    let listed =
        s.s3.list_objects_v2()
            .bucket(&f.bucket)
            .prefix("unload/")
            .send()
            .await
            .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        ["unload/items_0000_part_00.gz", "unload/items_manifest"]
    );

    // Again without ALLOWOVERWRITE: refused, as on Redshift.
    let again = run(&s, &f.cluster, &unload).await;
    assert!(
        again.error().unwrap_or_default().contains("ALLOWOVERWRITE"),
        "{:?}",
        again.error()
    );

    // Loaded back through the manifest into an empty copy of the table.
    ok(&s, &f.cluster, "CREATE TABLE items_back (LIKE items)").await;
    let back = format!(
        "COPY items_back FROM 's3://{}/unload/items_manifest' IAM_ROLE '{}' \
         CSV IGNOREHEADER 1 GZIP MANIFEST",
        f.bucket, f.role
    );
    ok(&s, &f.cluster, &back).await;
    let differ = ok(
        &s,
        &f.cluster,
        "SELECT COUNT(*) FROM ((SELECT * FROM items EXCEPT ALL SELECT * FROM items_back) \
         UNION ALL (SELECT * FROM items_back EXCEPT ALL SELECT * FROM items)) d",
    )
    .await;
    let out = s
        .data
        .get_statement_result()
        .id(differ.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.records()[0][0],
        Field::LongValue(0),
        "the rows came back unchanged"
    );
}
