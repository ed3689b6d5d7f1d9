//! `stage`: a local file split into gzip parts, uploaded with a manifest and
//! loaded, against the emulator and the sandbox (whose COPY checks that the
//! role may read the staging prefix, as Redshift would).

mod common;

use common::{Names, PASSWORD, config_text, pipeline, require_sandbox};
use s3_to_redshift::report::Quiet;

/// A CSV with quoted commas and quoted line breaks, `rows` rows.
fn csv(rows: usize) -> String {
    let mut s = String::from("sale_id,sold_on,region,product,quantity,unit_price\n");
    for i in 1..=rows {
        let product = match i % 3 {
            0 => "\"stapler, heavy-duty\"".to_string(),
            1 => "\"note\nbook\"".to_string(),
            _ => "pencil".to_string(),
        };
        s.push_str(&format!(
            "{i},2024-01-{:02},north,{product},{},1.50\n",
            i % 28 + 1,
            i % 100
        ));
    }
    s
}

#[tokio::test]
async fn a_local_file_is_staged_in_parts_and_loaded_once() {
    require_sandbox();
    let names = Names::new("stage");
    let stage_prefix = format!("STAGE_PREFIX = s3://{}/staging/", names.bucket);
    let extra = [("S3", stage_prefix.as_str()), ("LOAD", "MODE = append")];
    let p = pipeline(&names, &extra).await;
    p.clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .unwrap();
    p.up(false, &Quiet).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big sales.csv");
    std::fs::write(&file, csv(3000)).unwrap();
    let (staged, loaded) = p.stage(&file, &Quiet).await.expect("stage");
    assert_eq!(staged.slices, 2, "ra3.large: 2 slices");
    assert_eq!(staged.parts.len(), 2, "a multiple of the slices");
    assert!(
        staged.uploaded_bytes < staged.raw_bytes / 2,
        "gzip: {staged:?}"
    );
    assert!(
        staged
            .manifest
            .key
            .starts_with("staging/public.sales/big_sales.csv-"),
        "{}",
        staged.manifest
    );
    assert_eq!((loaded.loaded, loaded.rows_in_table), (3000, 3000));
    let rs = p
        .warehouse()
        .query("SELECT product FROM public.sales WHERE sale_id IN (1, 3) ORDER BY sale_id")
        .await
        .unwrap();
    assert_eq!(
        rs.rows[0][0].to_string(),
        "note\nbook",
        "a quoted line break stayed in its field"
    );
    assert_eq!(rs.rows[1][0].to_string(), "stapler, heavy-duty");

    // Staging the same file again writes the same parts (same ETags): the
    // append ledger knows them, so nothing is added twice.
    let (again, second) = p.stage(&file, &Quiet).await.unwrap();
    assert_eq!(again.parts, staged.parts);
    assert!(second.skipped.is_some(), "{second:?}");
    assert_eq!(second.rows_in_table, 3000);
}

#[tokio::test]
async fn stage_without_a_stage_prefix_says_what_to_set() {
    require_sandbox();
    let names = Names::new("stagecfg");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.cfg");
    std::fs::write(&cfg, config_text(&names, &[])).unwrap();
    let file = dir.path().join("d.csv");
    std::fs::write(&file, csv(3)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .arg("--config")
        .arg(&cfg)
        .arg("stage")
        .arg(&file)
        .env("S3_TO_REDSHIFT_DB_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[S3] STAGE_PREFIX: is needed by `stage`"),
        "{stderr}"
    );
}
