//! Formats and sources, end to end against the sandbox: JSON lines, gzip,
//! every object under a prefix, a manifest; and the CLI's `load --mode`.

mod common;

use std::io::Write;

use common::{Names, PASSWORD, config_text, pipeline, put, require_sandbox};
use s3_to_redshift::Pipeline;
use s3_to_redshift::report::Quiet;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn ids(p: &Pipeline) -> Vec<String> {
    p.warehouse()
        .query("SELECT sale_id, region FROM public.sales ORDER BY sale_id")
        .await
        .unwrap()
        .rows
        .iter()
        .map(|r| format!("{}:{}", r[0], r[1]))
        .collect()
}

const HEADER: &str = "sale_id,sold_on,region,product,quantity,unit_price\n";

#[tokio::test]
async fn json_lines_are_matched_to_columns_by_name() {
    require_sandbox();
    let names = Names::new("json");
    let source = format!("SOURCE = s3://{}/json/sales.jsonl", names.bucket);
    let p = pipeline(&names, &[("LOAD", "FORMAT = json"), ("S3", &source)]).await;
    // Keys in any order, a missing key is NULL.
    let body = "{\"sale_id\": 1, \"region\": \"north\", \"sold_on\": \"2024-01-03\", \"quantity\": 3}\n\
                {\"quantity\": 5, \"sale_id\": 2, \"sold_on\": \"2024-01-04\"}\n";
    put(&p, &names, "json/sales.jsonl", body.into()).await;
    p.up(false, &Quiet).await.unwrap();
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!((r.loaded, r.rows_in_table), (2, 2));
    assert_eq!(ids(&p).await, ["1:north", "2:NULL"]);
}

#[tokio::test]
async fn gzip_objects_under_a_prefix_are_all_loaded() {
    require_sandbox();
    let names = Names::new("gzprefix");
    let source = format!("SOURCE = s3://{}/daily/", names.bucket);
    let p = pipeline(&names, &[("LOAD", "COMPRESSION = gzip"), ("S3", &source)]).await;
    for (day, rows) in [
        (
            "2024-01-01",
            "1,2024-01-01,north,a,1,1.00\n2,2024-01-01,south,b,2,1.00\n",
        ),
        ("2024-01-02", "3,2024-01-02,east,c,3,1.00\n"),
    ] {
        put(
            &p,
            &names,
            &format!("daily/{day}.csv.gz"),
            gzip(format!("{HEADER}{rows}").as_bytes()),
        )
        .await;
    }
    p.up(false, &Quiet).await.unwrap();
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!(r.source.objects, 2);
    assert_eq!((r.loaded, r.rows_in_table), (3, 3));
    assert_eq!(ids(&p).await, ["1:north", "2:south", "3:east"]);
}

#[tokio::test]
async fn a_manifest_loads_exactly_the_objects_it_lists() {
    require_sandbox();
    let names = Names::new("manifest");
    let source = format!("SOURCE = s3://{}/loads/batch-1.manifest", names.bucket);
    let p = pipeline(&names, &[("S3", &source), ("S3", "MANIFEST = true")]).await;
    put(
        &p,
        &names,
        "loads/a.csv",
        format!("{HEADER}1,2024-01-01,north,a,1,1.00\n").into(),
    )
    .await;
    put(
        &p,
        &names,
        "loads/b.csv",
        format!("{HEADER}2,2024-01-01,south,b,2,1.00\n").into(),
    )
    .await;
    // Beside them, but not listed: must not be loaded.
    put(
        &p,
        &names,
        "loads/c.csv",
        format!("{HEADER}3,2024-01-01,east,c,3,1.00\n").into(),
    )
    .await;
    let b = &names.bucket;
    let manifest = format!(
        r#"{{"entries": [{{"url": "s3://{b}/loads/a.csv", "mandatory": true}}, {{"url": "s3://{b}/loads/b.csv", "mandatory": true}}]}}"#
    );
    put(&p, &names, "loads/batch-1.manifest", manifest.into()).await;
    p.up(false, &Quiet).await.unwrap();
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!(r.source.objects, 2);
    assert_eq!(ids(&p).await, ["1:north", "2:south"]);

    // A mandatory entry that is missing is caught before any SQL.
    let manifest =
        format!(r#"{{"entries": [{{"url": "s3://{b}/loads/gone.csv", "mandatory": true}}]}}"#);
    put(&p, &names, "loads/batch-1.manifest", manifest.into()).await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(err.contains("is mandatory and does not exist"), "{err}");
    // So is an entry outside the folder the role may read.
    let manifest =
        format!(r#"{{"entries": [{{"url": "s3://{b}/elsewhere/a.csv", "mandatory": true}}]}}"#);
    put(&p, &names, "loads/batch-1.manifest", manifest.into()).await;
    let err = p.load(&Quiet).await.unwrap_err().to_string();
    assert!(err.contains("outside the manifest's folder"), "{err}");
    assert_eq!(ids(&p).await.len(), 2, "the table kept its rows");
}

#[tokio::test]
async fn the_cli_can_switch_the_load_mode() {
    require_sandbox();
    let names = Names::new("climode");
    let p = pipeline(&names, &[]).await;
    put(
        &p,
        &names,
        "sales/sales.csv",
        format!("{HEADER}1,2024-01-01,north,a,1,1.00\n2,2024-01-01,south,b,2,1.00\n").into(),
    )
    .await;
    p.up(false, &Quiet).await.unwrap();
    p.load(&Quiet).await.unwrap();
    put(
        &p,
        &names,
        "sales/sales.csv",
        format!("{HEADER}2,2024-01-02,west,b,9,1.00\n").into(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.cfg");
    std::fs::write(&cfg, config_text(&names, &[])).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("S3_TO_REDSHIFT_DB_PASSWORD", PASSWORD)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let bad = run(&["load", "--mode", "upsert"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("[LOAD] KEY: is missing"), "{stderr}");

    let out = run(&["load", "--mode", "upsert", "--key", "sale_id"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 rows upserted: 1 updated, 0 inserted; 2 in the table"),
        "{stdout}"
    );
    assert_eq!(ids(&p).await, ["1:north", "2:west"]);
}

#[tokio::test]
async fn columns_inferred_from_the_data_are_shown_by_plan_and_used_by_load() {
    require_sandbox();
    let names = Names::new("infer");
    let infer = [
        ("TABLE", "INFER_COLUMNS = true"),
        ("TABLE", "SORT_KEY = sold_on"),
    ];
    // Before the data is there: plan warns, load refuses, nothing breaks.
    let early = pipeline(&names, &infer).await;
    assert!(matches!(early.inferred, Some(Err(_))));
    early
        .up(false, &s3_to_redshift::report::Quiet)
        .await
        .unwrap();
    let plan = early
        .plan(false)
        .await
        .expect("plan does not fail, nor panic");
    assert!(
        plan.sql.is_empty(),
        "no SQL without columns: {:?}",
        plan.sql
    );
    let table = plan.steps.iter().find(|s| s.step == "table").unwrap();
    let detail = table.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("columns cannot be inferred yet") && detail.contains("`load` infers them"),
        "{table:?}"
    );
    let refused = early
        .load(&s3_to_redshift::report::Quiet)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("could not be inferred"),
        "{refused}"
    );
    let _ = early
        .clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await;
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/sales.csv"
    ))
    .unwrap();
    put(&early, &names, "sales/sales.csv", sample).await;

    let p = pipeline(&names, &infer).await;
    let plan = p.plan(false).await.unwrap();
    let inferred = plan.inferred.clone().expect("inferred");
    let cols: Vec<String> = inferred.columns.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        cols,
        [
            "\"sale_id\" SMALLINT",
            "\"sold_on\" DATE",
            "\"region\" VARCHAR(16)",
            "\"product\" VARCHAR(64)",
            "\"quantity\" SMALLINT",
            "\"unit_price\" DECIMAL(18,2)"
        ]
    );
    assert!(
        plan.create_table()
            .unwrap()
            .contains("\"unit_price\" DECIMAL(18,2)"),
        "{:?}",
        plan.create_table()
    );
    assert!(
        inferred
            .to_string()
            .contains("[COLUMNS]\nsale_id = SMALLINT\n"),
        "{inferred}"
    );
    p.up(false, &Quiet).await.unwrap();
    let r = p.load(&Quiet).await.unwrap();
    assert_eq!(r.rows_in_table, 10);

    // A key that names no inferred column is a config error, as for listed ones.
    let bad = s3_to_redshift::Pipeline::connect(common::config(
        &names,
        &[
            ("TABLE", "INFER_COLUMNS = true"),
            ("TABLE", "SORT_KEY = sold_at"),
        ],
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("[TABLE] SORT_KEY: `sold_at` is not among the columns inferred"),
        "{bad}"
    );
}
