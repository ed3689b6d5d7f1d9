//! Shared set-up for the tests that run against a local AWS emulator.
//!
//! `scripts/test.sh` starts moto (or LocalStack, with `S2R_EMULATOR`) and
//! exports `AWS_ENDPOINT_URL`; the SDK picks it up like any other setting.
//! Each test uses its own resource names, so tests run in parallel and
//! against either emulator without resetting it.
#![allow(dead_code)] // each test file uses a different part of this module

use std::sync::atomic::{AtomicU32, Ordering};

use s3_to_redshift::Pipeline;
use s3_to_redshift::config::{Config, Document};

/// Fails loudly when no emulator is configured: a test that silently skipped
/// would pass without testing anything.
pub fn require_emulator() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:") => {
            url
        }
        Ok(url) => {
            panic!("AWS_ENDPOINT_URL={url} is not a local emulator; tests never reach real AWS")
        }
        Err(_) => panic!(
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts a local emulator"
        ),
    }
}

/// Names unique to one test in one run.
pub struct Names {
    pub role: String,
    pub policy: String,
    pub cluster: String,
    pub bucket: String,
}

impl Names {
    pub fn new(test: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!("{}{n}{:x}", std::process::id() % 10_000, nanos % 0xfffff);
        Self {
            role: format!("t-{test}-{tag}-role"),
            policy: format!("t-{test}-{tag}-read"),
            cluster: format!("t-{test}-{tag}"),
            bucket: format!("t-{test}-{tag}").replace('_', "-"),
        }
    }
}

/// A complete config for `names`; each `extra` entry sets `KEY = value`
/// lines in the section it names (`("IAM", "ON_EXISTING = fail")`),
/// replacing the base config's value, through [`Document::set`]: the same
/// edit the CLI's overrides make.
pub fn config_text(names: &Names, extra: &[(&str, &str)]) -> String {
    let base = format!(
        "[AWS]\nREGION = us-east-1\n\
         [IAM]\nROLE_NAME = {role}\nPOLICY_NAME = {policy}\n\
         [CLUSTER]\nIDENTIFIER = {cluster}\nNODE_TYPE = ra3.large\nDB_NAME = dev\nDB_USER = awsuser\n\
         WAIT_TIMEOUT_SECS = 60\nPOLL_INTERVAL_SECS = 1\n\
         [S3]\nSOURCE = s3://{bucket}/sales/sales.csv\n\
         [TABLE]\nNAME = sales\n\
         [COLUMNS]\nsale_id = INTEGER NOT NULL\nsold_on = DATE\nregion = VARCHAR(32)\n\
         product = VARCHAR(64)\nquantity = INTEGER\nunit_price = DECIMAL(10,2)\n\
         [LOAD]\nIGNORE_HEADER = 1\nSTATEMENT_TIMEOUT_SECS = 5\n",
        role = names.role,
        policy = names.policy,
        cluster = names.cluster,
        bucket = names.bucket,
    );
    let mut doc = Document::parse(&base, "test.cfg").expect("the base config is INI");
    for (section, lines) in extra {
        for line in lines.lines() {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("test bug: `{line}` is not KEY = value"));
            let (key, value) = (key.trim(), value.trim());
            doc.set(section, key, value);
            match (*section, key, value) {
                // JSON has no header line to skip (and the key is refused with it).
                ("LOAD", "FORMAT", "json") => {
                    doc.remove_key("LOAD", "IGNORE_HEADER");
                }
                // Inferred columns replace the listed ones.
                ("TABLE", "INFER_COLUMNS", "true") => {
                    doc.remove_section("COLUMNS");
                }
                _ => {}
            }
        }
    }
    doc.to_string()
}

pub const PASSWORD: &str = "Test-Passw0rd";

pub fn config(names: &Names, extra: &[(&str, &str)]) -> Config {
    Config::parse(
        &config_text(names, extra),
        "test.cfg",
        Some(PASSWORD.into()),
    )
    .unwrap_or_else(|e| panic!("test config is invalid: {e}"))
}

pub async fn pipeline(names: &Names, extra: &[(&str, &str)]) -> Pipeline {
    require_emulator();
    Pipeline::connect(config(names, extra))
        .await
        .expect("clients")
}

/// Creates the bucket and uploads the sample CSV, as a reader would.
pub async fn upload_sample(p: &Pipeline, names: &Names) {
    let s3 = &p.clients.s3;
    s3.create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .expect("create bucket");
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/sales.csv"
    ))
    .unwrap();
    s3.put_object()
        .bucket(&names.bucket)
        .key("sales/sales.csv")
        .body(body.into())
        .send()
        .await
        .expect("upload sample");
}

/// The load tests need the SQL sandbox as well as the emulator.
pub fn require_sandbox() {
    require_emulator();
    match std::env::var("AWS_ENDPOINT_URL_REDSHIFT_DATA") {
        Ok(url) if url.starts_with("http://127.0.0.1:") => {}
        _ => panic!(
            "AWS_ENDPOINT_URL_REDSHIFT_DATA is not set: run the tests with scripts/test.sh, which starts the sandbox"
        ),
    }
}

/// Puts `body` at the config's source key, creating the bucket if needed.
pub async fn upload(p: &Pipeline, names: &Names, body: &[u8]) {
    put(p, names, "sales/sales.csv", body.to_vec()).await;
}

/// Puts `body` at `key` in the test's bucket, creating the bucket if needed.
pub async fn put(p: &Pipeline, names: &Names, key: &str, body: Vec<u8>) {
    // Already there from an earlier upload: fine.
    let _ = p
        .clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await;
    p.clients
        .s3
        .put_object()
        .bucket(&names.bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("upload");
}
