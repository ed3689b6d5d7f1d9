//! The `s3-to-redshift` binary as a user runs it: output, exit codes and the
//! promise that a bad config changes nothing.

mod common;

use s3_to_redshift::Error;

use std::process::{Command, Output, Stdio};

use common::{Names, config_text};

fn run(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("S3_TO_REDSHIFT_DB_PASSWORD", common::PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn write_config(dir: &tempfile::TempDir, body: &str) -> std::path::PathBuf {
    let path = dir.path().join("pipeline.cfg");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn a_bad_config_exits_2_names_the_key_and_changes_nothing() {
    common::require_emulator();
    let names = Names::new("clibad");
    let dir = tempfile::tempdir().unwrap();
    let body = config_text(&names, &[("CLUSTER", "NODE_TYPE = ra3 large")]);
    let cfg = write_config(&dir, &body);
    let out = run(&cfg, &["up"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("pipeline.cfg") && stderr.contains("[CLUSTER] NODE_TYPE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`ra3 large` is not a node type"),
        "{stderr}"
    );

    // Nothing was created: the same file fixed plans a role to *create*.
    let fixed = write_config(&dir, &config_text(&names, &[]));
    let out = run(&fixed, &["status"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout
            .lines()
            .all(|l| l.contains("absent") || l.contains("unknown")),
        "{stdout}"
    );
}

#[test]
fn up_status_and_down_print_one_line_per_step() {
    common::require_emulator();
    let names = Names::new("cliup");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config_text(&names, &[]));

    let out = run(&cfg, &["up"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("iam-role") && lines[0].contains("created"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("iam-policy") && lines[1].contains("created"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("cluster") && lines[2].contains("created — available at"),
        "{stdout}"
    );

    let out = run(&cfg, &["up"]);
    let (stdout, _) = text(&out);
    assert_eq!(stdout.matches("reused").count(), 3, "{stdout}");

    let out = run(&cfg, &["status"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("role in-sync"), "{stdout}");

    // No terminal and no --yes: refused, exit 3, nothing deleted.
    let out = run(&cfg, &["down", "--with-iam"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    let out = run(&cfg, &["status"]);
    assert!(text(&out).0.contains("available"));

    let out = run(&cfg, &["down", "--with-iam", "--yes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("cluster") && stdout.contains("deleted"),
        "{stdout}"
    );
    let out = run(&cfg, &["status"]);
    assert_eq!(text(&out).0.matches("absent").count(), 3);
}

/// One error of every kind, with the words the help and the README use for
/// its exit code. The `match` has no wildcard: a new kind of error does not
/// compile here until its code is documented.
fn every_error_kind() -> Vec<(s3_to_redshift::Error, &'static str)> {
    use s3_to_redshift::error::ConfigError;
    let s = |t: &str| t.to_string();
    let errors = vec![
        Error::Config(ConfigError::Syntax {
            path: "x.cfg".into(),
            message: s("bad"),
        }),
        Error::Refused {
            action: "delete",
            kind: "cluster",
            name: s("c"),
            reason: s("not ours"),
        },
        Error::Aws {
            service: "IAM",
            operation: "GetRole",
            resource: s("r"),
            code: None,
            message: s("m"),
        },
        Error::Timeout {
            what: s("w"),
            waited: std::time::Duration::from_secs(1),
            last_state: s("creating"),
            hint: s("h"),
        },
        Error::ClusterFailed {
            identifier: s("c"),
            status: s("paused"),
            hint: s("h"),
        },
        Error::StatementFailed {
            id: s("i"),
            sql: s("q"),
            message: s("m"),
            query_id: 0,
            load_errors: Default::default(),
        },
        Error::StatementAborted {
            id: s("i"),
            sql: s("q"),
        },
        Error::Source {
            uri: s("s3://b/k"),
            reason: s("none"),
        },
        Error::Verification {
            table: s("t"),
            reason: s("r"),
        },
    ];
    errors
        .into_iter()
        .map(|e| {
            let words = match &e {
                Error::Config(_) => "bad command line or config file",
                Error::Refused { .. } => "refused",
                Error::Aws { .. } | Error::Source { .. } | Error::ClusterFailed { .. } => {
                    "AWS error"
                }
                Error::Timeout { .. } => "timed out",
                Error::StatementFailed { .. }
                | Error::StatementAborted { .. }
                | Error::Verification { .. } => "SQL failed",
            };
            (e, words)
        })
        .collect()
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .arg("--help")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let readme = std::fs::read_to_string("README.md").unwrap();
    assert!(stdout.contains("  0  success"), "{stdout}");
    // Each kind of error's code, from the error itself, is in the help and
    // in the README's table with the same meaning.
    for (error, words) in every_error_kind() {
        let code = error.exit_code();
        assert!(
            stdout.contains(&format!("  {code}  {words}")),
            "--help does not document exit code {code} ({words}) of {error:?}:\n{stdout}"
        );
        assert!(
            readme.contains(&format!("| {code} | {words}")),
            "the README does not document exit code {code} ({words})"
        );
    }
}

#[test]
fn a_missing_config_file_is_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .args(["--config", "/nonexistent/x.cfg", "plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent/x.cfg")
    );
}

/// Secrets never reach the terminal: the database password and the access
/// keys are absent from everything the CLI prints, even with every log line
/// the SDK can write turned on.
#[test]
fn secrets_never_appear_in_output_or_logs() {
    common::require_emulator();
    let names = Names::new("clisecret");
    let dir = tempfile::tempdir().unwrap();
    let password = "Very-Secret-Passw0rd";
    let secret_key = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY";
    let body = config_text(
        &names,
        &[
            ("AWS", "KEY = AKIAIOSFODNN7EXAMPLE"),
            ("AWS", &format!("SECRET = {secret_key}")),
        ],
    );
    let cfg = write_config(&dir, &body);
    let mut all = String::new();
    for args in [
        &["-vv", "plan"][..],
        &["-vv", "up"],
        &["-vv", "status"],
        &["-vv", "down", "--with-iam", "--yes"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("S3_TO_REDSHIFT_DB_PASSWORD", password)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        all.push_str(&stdout);
        all.push_str(&stderr);
    }
    assert!(
        all.len() > 10_000,
        "trace logging was on: {} bytes",
        all.len()
    );
    assert!(
        all.contains("CreateCluster"),
        "the logs cover the call that carries the password"
    );
    assert!(!all.contains(password), "the password leaked");
    assert!(!all.contains(secret_key), "the secret access key leaked");
}
