//! The book's code and the notebook refuse a real AWS account unless the
//! reader opted in, and refuse before anything is sent.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::process::Command;

use s3_to_redshift::tutorial;

const CHILD: &str = "S2R_TUTORIAL_GUARD_CHILD";

/// Runs in a child process whose environment points some services at a
/// listener and leaves the others to AWS's real endpoints.
fn child() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // What every step chapter's doctest starts with, and the chapters that
    // start from a whole pipeline.
    let started = rt
        .block_on(tutorial::start("guard"))
        .map(|_| ())
        .unwrap_err();
    let ready = rt
        .block_on(tutorial::ready("guard"))
        .map(|_| ())
        .unwrap_err();
    // What the notebook's first cell calls.
    let notebook = tutorial::notebook_start().unwrap_err();
    for err in [started, ready, notebook] {
        let text = err.to_string();
        assert!(
            text.contains("set S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1"),
            "{text}"
        );
        assert!(
            text.contains("Redshift Data API would reach a real AWS account"),
            "{text}"
        );
        assert_eq!(err.exit_code(), 3);
        println!("refused: {text}");
    }
}

#[test]
fn a_real_account_is_refused_before_any_request_unless_opted_in() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "a_real_account_is_refused_before_any_request_unless_opted_in",
        "--nocapture",
    ])
    .env(CHILD, "1")
    .env_remove("AWS_ENDPOINT_URL")
    .env_remove("AWS_ENDPOINT_URL_REDSHIFT")
    .env_remove("AWS_ENDPOINT_URL_REDSHIFT_DATA")
    .env_remove(tutorial::ON_AWS)
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_REGION", "us-east-1");
    for service in ["IAM", "S3", "STS"] {
        cmd.env(format!("AWS_ENDPOINT_URL_{service}"), &url);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("refused: ").count(), 3, "{stdout}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a request was sent before the refusal: {other:?}"),
    }
}
