//! A request the local stack refuses is reported with its operation, AWS's
//! error code and the message, not the SDK's bare "service error".
//!
//! Needs the local stack (`scripts/test.sh` starts it).

use std::process::Command;

#[test]
fn a_refused_request_prints_its_operation_code_and_message() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        panic!("AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh");
    };
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    // The book's config, with names of this test's own, and a database name
    // the Data API refuses (a hyphen is not allowed in one).
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let cfg = std::fs::read_to_string(format!("{root}/examples/pipeline.cfg")).unwrap();
    let tag = format!("err{}", std::process::id());
    let cfg = cfg
        .replace(
            "IDENTIFIER = s3-to-redshift-demo",
            &format!("IDENTIFIER = {tag}"),
        )
        .replace(
            "ROLE_NAME = s3-to-redshift-demo-role",
            &format!("ROLE_NAME = {tag}-role"),
        )
        .replace(
            "POLICY_NAME = s3-to-redshift-demo-s3-read",
            &format!("POLICY_NAME = {tag}-read"),
        )
        .replace("DB_NAME = dev", "DB_NAME = bad-name");
    let path = std::env::temp_dir().join(format!("{tag}.cfg"));
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_own-project"))
        .current_dir(root)
        .arg(&path)
        .env("S3_TO_REDSHIFT_DB_PASSWORD", "Local-Passw0rd")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: BatchExecuteStatement: ValidationException: ")
            && stderr.contains("'bad-name' at 'Database'"),
        "{stderr}"
    );
    assert!(!stderr.contains("service error"), "{stderr}");
}
