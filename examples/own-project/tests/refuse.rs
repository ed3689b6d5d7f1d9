//! The program refuses to create billed resources in a real account unless
//! asked, and says how to ask, before it sends anything.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::process::Command;

#[test]
fn a_real_account_is_refused_unless_asked_and_nothing_is_sent() {
    // A listener stands in for three of the services the program calls,
    // through the service-specific endpoint variables the SDK reads; the
    // Data API and the global AWS_ENDPOINT_URL are left to AWS's endpoints.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_own-project"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("S3_TO_REDSHIFT_TUTORIAL_ON_AWS")
        .env("S3_TO_REDSHIFT_DB_PASSWORD", "Local-Passw0rd")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    cmd.env_remove("AWS_ENDPOINT_URL_REDSHIFT_DATA");
    for service in ["IAM", "STS", "REDSHIFT"] {
        cmd.env(format!("AWS_ENDPOINT_URL_{service}"), &url);
    }
    let out = cmd.output().unwrap();
    // And a name that only looks local does not count.
    let fake = Command::new(env!("CARGO_BIN_EXE_own-project"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("AWS_ENDPOINT_URL", "http://localhost.example.com")
        .env_remove("S3_TO_REDSHIFT_TUTORIAL_ON_AWS")
        .output()
        .unwrap();
    assert_eq!(fake.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("set S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no step ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the program connected before refusing: {other:?}"),
    }
}
