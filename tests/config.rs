//! Config parsing: every bad input gives a clear error naming the file,
//! section and key; the classic `dwh.cfg` keys are understood; secrets stay
//! out of `Debug` and errors. No AWS involved.

use s3_to_redshift::config::{
    ClusterType, Compression, Config, DistStyle, Document, LoadFormat, LoadMode, OnExisting,
    RetryMode, TargetSettings,
};
use s3_to_redshift::error::ConfigError;

const GOOD: &str = "
[AWS]
REGION = eu-west-1
[IAM]
ROLE_NAME = loader-role
[CLUSTER]
IDENTIFIER = warehouse
NODE_TYPE = ra3.large
DB_NAME = dev
DB_USER = awsuser
[S3]
SOURCE = s3://my-bucket/in/sales.csv
[TABLE]
NAME = sales
[COLUMNS]
id = INTEGER NOT NULL
amount = DECIMAL(10,2)
";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "my.cfg", None)
}

/// Replaces `from` in the good config by `to` and expects an error that
/// mentions each of `needles`.
fn expect_error(from: &str, to: &str, needles: &[&str]) {
    assert!(GOOD.contains(from), "test bug: {from:?} not in GOOD");
    let text = GOOD.replacen(from, to, 1);
    let err = parse(&text)
        .expect_err(&format!("{to:?} should be rejected"))
        .to_string();
    assert!(err.starts_with("my.cfg has 1 problem"), "{to:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{to:?}: expected {n:?} in:\n{err}");
    }
}

#[test]
fn the_good_config_parses_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.aws.max_attempts, 5);
    assert_eq!(c.iam.policy_name, "loader-role-s3-read");
    assert_eq!(c.iam.on_existing, OnExisting::Reuse);
    assert_eq!(c.cluster().unwrap().cluster_type, ClusterType::SingleNode);
    assert_eq!(c.cluster().unwrap().num_nodes, 1);
    assert_eq!(c.cluster().unwrap().port, 5439);
    assert!(
        !c.cluster().unwrap().publicly_accessible,
        "private by default"
    );
    assert_eq!(c.table.dist_style, DistStyle::Auto);
    assert_eq!(c.load.delimiter, ',');
    assert_eq!(c.load.mode, LoadMode::Replace);
    assert_eq!(c.load.max_errors, 0);
    assert!(c.cluster().unwrap().db_password.is_none());
}

#[test]
fn each_bad_value_names_its_section_and_key() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "REGION = eu-west-1",
            "REGION = Europe",
            &["[AWS] REGION", "not an AWS region"],
        ),
        (
            "ROLE_NAME = loader-role",
            "ROLE_NAME = loader role",
            &["[IAM] ROLE_NAME", "a space"],
        ),
        (
            "ROLE_NAME = loader-role",
            "ROLE_NAME = x;drop",
            &["[IAM] ROLE_NAME", "`;`"],
        ),
        (
            "ROLE_NAME = loader-role",
            &format!("ROLE_NAME = {}", "r".repeat(65)),
            &["[IAM] ROLE_NAME", "1 to 64"],
        ),
        (
            "IDENTIFIER = warehouse",
            "IDENTIFIER = 1warehouse",
            &["[CLUSTER] IDENTIFIER", "starting with a letter"],
        ),
        (
            "IDENTIFIER = warehouse",
            "IDENTIFIER = ware--house",
            &["[CLUSTER] IDENTIFIER", "`--`"],
        ),
        (
            "IDENTIFIER = warehouse",
            "IDENTIFIER = warehouse-",
            &["[CLUSTER] IDENTIFIER"],
        ),
        (
            "NODE_TYPE = ra3.large",
            "NODE_TYPE = large",
            &["[CLUSTER] NODE_TYPE", "not a node type"],
        ),
        (
            "DB_NAME = dev",
            "DB_NAME = dev-db",
            &["[CLUSTER] DB_NAME", "not a valid database name"],
        ),
        (
            "DB_USER = awsuser",
            "DB_USER = aws user",
            &["[CLUSTER] DB_USER", "not a valid user name"],
        ),
        (
            "SOURCE = s3://my-bucket/in/sales.csv",
            "SOURCE = https://my-bucket/in",
            &["[S3] SOURCE", "not an S3 URI"],
        ),
        (
            "SOURCE = s3://my-bucket/in/sales.csv",
            "SOURCE = s3://My_Bucket/in",
            &["[S3] SOURCE", "bucket name"],
        ),
        (
            "SOURCE = s3://my-bucket/in/sales.csv",
            "SOURCE = s3://my-bucket/it's.csv",
            &["[S3] SOURCE", "`'`"],
        ),
        (
            "SOURCE = s3://my-bucket/in/sales.csv",
            "SOURCE = s3://my-bucket/in/*.csv",
            &["[S3] SOURCE", "`*`"],
        ),
        (
            "SOURCE = s3://my-bucket/in/sales.csv",
            "SOURCE = s3://my-bucket/${aws:username}/",
            &["[S3] SOURCE", "policy variable"],
        ),
        (
            "NAME = sales",
            "NAME = sales; DROP TABLE users",
            &["[TABLE] NAME", "`;`"],
        ),
        ("NAME = sales", "NAME = a.b.c", &["[TABLE] NAME", "2 dots"]),
        (
            "NAME = sales",
            "NAME = \"sales",
            &["[TABLE] NAME", "must start with a letter"],
        ),
        (
            "NAME = sales",
            "NAME = ventes_été",
            &["[TABLE] NAME", "non-ASCII"],
        ),
        (
            "id = INTEGER NOT NULL",
            "id = INTEGER); DROP TABLE x; --",
            &["[COLUMNS] id", "not a Redshift column type"],
        ),
        (
            "id = INTEGER NOT NULL",
            "\"id\" = INTEGER",
            &["[COLUMNS] \"id\"", "column name"],
        ),
        (
            "amount = DECIMAL(10,2)",
            "amount = DECIMAL(10,20)",
            &["[COLUMNS] amount", "scale"],
        ),
        (
            "amount = DECIMAL(10,2)",
            "amount = VARCHAR(0)",
            &["[COLUMNS] amount", "from 1 to 65535"],
        ),
        (
            "amount = DECIMAL(10,2)",
            "amount = DECIMAL(10,2)\nID = BIGINT",
            &["[COLUMNS] ID", "listed twice"],
        ),
        (
            "[AWS]",
            "[AWS]\nMAX_ATTEMPTS = 0",
            &["[AWS] MAX_ATTEMPTS", "from 1 to 20"],
        ),
        (
            "[AWS]",
            "[AWS]\nKEY = AKIAEXAMPLE",
            &["[AWS] KEY", "both KEY and SECRET"],
        ),
        (
            "[IAM]",
            "[IAM]\nON_EXISTING = overwrite",
            &["[IAM] ON_EXISTING", "reuse, replace or fail"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nCLUSTER_TYPE = multi-node",
            &["[CLUSTER] NUM_NODES", "is missing", "2 or more"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nCLUSTER_TYPE = multi-node\nNUM_NODES = 1",
            &["[CLUSTER] NUM_NODES", "at least 2"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nNUM_NODES = 4",
            &["[CLUSTER] NUM_NODES", "single-node"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nCLUSTER_TYPE = dual",
            &["[CLUSTER] CLUSTER_TYPE", "single-node` or `multi-node"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nPORT = 80",
            &["[CLUSTER] PORT", "1150-65535"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nPORT = five",
            &["[CLUSTER] PORT", "not a whole number"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nPUBLICLY_ACCESSIBLE = maybe",
            &["[CLUSTER] PUBLICLY_ACCESSIBLE", "true or false"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nWAIT_TIMEOUT_SECS = -5",
            &["[CLUSTER] WAIT_TIMEOUT_SECS"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nDB_PASSWORD = short",
            &["[CLUSTER] DB_PASSWORD", "8 to 64"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nDB_PASSWORD = alllowercase1",
            &["[CLUSTER] DB_PASSWORD", "upper-case"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nDB_PASSWORD = Has@Sign123",
            &["[CLUSTER] DB_PASSWORD", "does not allow"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nDB_PASSWORD = Has Space123",
            &["[CLUSTER] DB_PASSWORD", "does not allow"],
        ),
        (
            "[CLUSTER]",
            "[CLUSTER]\nIDENTIFER = x",
            &["[CLUSTER] IDENTIFER", "did you mean `IDENTIFIER`"],
        ),
        (
            "[TABLE]",
            "[TABLE]\nDIST_KEY = ids",
            &["[TABLE] DIST_KEY", "not a column", "did you mean `id`"],
        ),
        (
            "[TABLE]",
            "[TABLE]\nDIST_STYLE = KEY",
            &["[TABLE] DIST_STYLE", "DIST_KEY is not set"],
        ),
        (
            "[TABLE]",
            "[TABLE]\nDIST_STYLE = RANDOM",
            &["[TABLE] DIST_STYLE", "AUTO, EVEN, KEY or ALL"],
        ),
        (
            "[TABLE]",
            "[TABLE]\nDIST_STYLE = EVEN\nDIST_KEY = id",
            &["[TABLE] DIST_STYLE", "must be KEY"],
        ),
        (
            "[TABLE]",
            "[TABLE]\nSORT_KEY = id, amout",
            &[
                "[TABLE] SORT_KEY",
                "`amout` is not a column",
                "did you mean `amount`",
            ],
        ),
        (
            "[TABLE]",
            "[TABLE]\nNAME = other",
            &["[TABLE] NAME", "given twice"],
        ),
        (
            "[AWS]",
            "[LOAD]\nDELIMITER = ,,\n[AWS]",
            &["[LOAD] DELIMITER", "one character"],
        ),
        (
            "[AWS]",
            "[LOAD]\nQUOTE = ,\n[AWS]",
            &["[LOAD] QUOTE", "same character as DELIMITER"],
        ),
        (
            "[AWS]",
            "[LOAD]\nFORMAT = PARQUET\n[AWS]",
            &[
                "[LOAD] FORMAT",
                "not a supported format; expected CSV or JSON",
            ],
        ),
        (
            "[AWS]",
            "[LOAD]\nMODE = merge\n[AWS]",
            &["[LOAD] MODE", "replace, append or upsert"],
        ),
        (
            "[AWS]",
            "[LOAD]\nMODE = upsert\n[AWS]",
            &["[LOAD] KEY", "is missing", "KEY = sale_id"],
        ),
        (
            "[AWS]",
            "[LOAD]\nMODE = upsert\nKEY = idd\n[AWS]",
            &["[LOAD] KEY", "`idd` is not a column", "did you mean `id`"],
        ),
        (
            "[AWS]",
            "[LOAD]\nKEY = id\n[AWS]",
            &["[LOAD] KEY", "only used with MODE = upsert"],
        ),
        (
            "[AWS]",
            "[LOAD]\nMODE = upsert\nKEY = id; DELETE\n[AWS]",
            &["[LOAD] KEY", "`;`"],
        ),
        (
            "[AWS]",
            "[LOAD]\nFORMAT = json\nDELIMITER = |\n[AWS]",
            &["[LOAD] DELIMITER", "applies to CSV only"],
        ),
        (
            "[AWS]",
            "[AWS]\nRETRY_MODE = aggressive",
            &["[AWS] RETRY_MODE", "standard or adaptive"],
        ),
        (
            "[AWS]",
            "[AWS]\nATTEMPT_TIMEOUT_SECS = 0",
            &["[AWS] ATTEMPT_TIMEOUT_SECS", "from 1 to 3600"],
        ),
        (
            "[AWS]",
            "[AWS]\nINITIAL_BACKOFF_MS = soon",
            &["[AWS] INITIAL_BACKOFF_MS", "not a whole number"],
        ),
        (
            "[AWS]",
            "[S3]\nMANIFEST = perhaps\n[AWS]",
            &["[S3] MANIFEST", "true or false"],
        ),
        (
            "ROLE_NAME = loader-role",
            "ROLE_NAME = arn:aws:iam::123456789012:role/loader-role",
            &[
                "[IAM] ROLE_NAME",
                "is an ARN; give the name only, e.g. `loader-role`",
            ],
        ),
        (
            "[AWS]",
            "[LOAD]\nCOMPRESSION = rar\n[AWS]",
            &["[LOAD] COMPRESSION", "gzip"],
        ),
        (
            "[AWS]",
            "[LOAD]\nIGNORE_HEADER = yes\n[AWS]",
            &["[LOAD] IGNORE_HEADER", "not a whole number"],
        ),
        (
            "[AWS]",
            "[LOAD]\nEXPECTED_ROWS = many\n[AWS]",
            &["[LOAD] EXPECTED_ROWS", "not a whole number"],
        ),
        (
            "[AWS]",
            "[WAREHOUSE]\nX = 1\n[AWS]",
            &["[WAREHOUSE]", "unknown section", "[Redshift]"],
        ),
        // The Python tutorial's [Redshift] is read as [CLUSTER], so its
        // unknown keys are named with the section as written.
        (
            "[AWS]",
            "[Redshift]\nX = 1\n[AWS]",
            &["[Redshift] X", "unknown key", "CLUSTER_IDENTIFIER"],
        ),
        (
            "[AWS]",
            "[CLUSTR]\nX = 1\n[AWS]",
            &["[CLUSTR]", "did you mean `CLUSTER`"],
        ),
        (
            "[AWS]",
            "STRAY = 1\n[AWS]",
            &["STRAY", "outside any section"],
        ),
    ];
    for (from, to, needles) in cases {
        expect_error(from, to, needles);
    }
}

#[test]
fn missing_keys_are_named_with_their_classic_alias() {
    let err = parse(&GOOD.replace("IDENTIFIER = warehouse\n", ""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[CLUSTER] IDENTIFIER: is missing (or [DWH] DWH_CLUSTER_IDENTIFIER)"),
        "{err}"
    );
    let err = parse(&GOOD.replace(
        "[COLUMNS]\nid = INTEGER NOT NULL\namount = DECIMAL(10,2)\n",
        "",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("[COLUMNS]: is missing or empty"), "{err}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = GOOD
        .replace("REGION = eu-west-1", "REGION = nowhere")
        .replace("NODE_TYPE = ra3.large", "NODE_TYPE = big")
        .replace("NAME = sales", "NAME = 'x y'");
    let err = parse(&text).unwrap_err();
    let ConfigError::Invalid { problems, path } = &err else {
        panic!("{err}")
    };
    assert_eq!(path.to_str(), Some("my.cfg"));
    let keys: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.section.as_str(), p.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("AWS", "REGION"),
            ("CLUSTER", "NODE_TYPE"),
            ("TABLE", "NAME")
        ]
    );
}

#[test]
fn malformed_ini_is_a_syntax_error_with_a_line() {
    let err = parse("[AWS\nREGION = us-east-1\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("my.cfg is not a valid INI file: line "),
        "{err}"
    );
}

#[test]
fn the_classic_dwh_cfg_keys_are_understood() {
    let classic = "
[AWS]
REGION = us-west-2
[DWH]
DWH_CLUSTER_TYPE = multi-node
DWH_NUM_NODES = 4
DWH_NODE_TYPE = dc2.large
DWH_IAM_ROLE_NAME = dwhRole
DWH_CLUSTER_IDENTIFIER = dwhCluster
DWH_DB = dwh
DWH_DB_USER = dwhuser
DWH_DB_PASSWORD = Passw0rd
DWH_PORT = 5439
[CLUSTER]
HOST = ''
[IAM_ROLE]
ARN = ''
[S3]
LOG_DATA = 's3://udacity-dend/log_data'
LOG_JSONPATH = 's3://udacity-dend/log_json_path.json'
SONG_DATA = 's3://udacity-dend/song_data'
SOURCE = LOG_DATA
[TABLE]
NAME = staging_events
[COLUMNS]
artist = VARCHAR(256)
";
    let c = Config::parse(classic, "dwh.cfg", None).unwrap();
    assert_eq!(c.cluster().unwrap().cluster_type, ClusterType::MultiNode);
    assert_eq!(c.cluster().unwrap().num_nodes, 4);
    assert_eq!(c.cluster().unwrap().node_type, "dc2.large");
    assert_eq!(
        c.cluster().unwrap().identifier,
        "dwhcluster",
        "stored lower-case, as Redshift does"
    );
    assert_eq!(c.cluster().unwrap().db_name, "dwh");
    assert_eq!(c.cluster().unwrap().db_user, "dwhuser");
    assert_eq!(c.cluster().unwrap().port, 5439);
    assert_eq!(c.iam.role_name, "dwhRole");
    assert_eq!(c.s3.source.bucket, "udacity-dend");
    assert_eq!(
        c.s3.source.key, "log_data",
        "SOURCE names a classic path key; quotes stripped"
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("[CLUSTER] HOST is ignored")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("[IAM_ROLE] ARN is ignored")),
        "{:?}",
        c.notes
    );

    // Several paths and no SOURCE: say which to choose from.
    let err = Config::parse(&classic.replace("SOURCE = LOG_DATA\n", ""), "dwh.cfg", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[S3] SOURCE: is missing and [S3] lists several paths (LOG_DATA, LOG_JSONPATH, SONG_DATA)"), "{err}");

    // Both spellings of one key: refuse rather than guess.
    let twice = classic.replace("[TABLE]", "[CLUSTER]\nNODE_TYPE = ra3.large\n[TABLE]");
    let err = Config::parse(&twice, "dwh.cfg", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[CLUSTER] NODE_TYPE: is given twice: also as [DWH] DWH_NODE_TYPE"),
        "{err}"
    );
}

#[test]
fn a_single_classic_path_is_the_source() {
    let text = GOOD.replace(
        "SOURCE = s3://my-bucket/in/sales.csv",
        "SALES_DATA = 's3://my-bucket/in/'",
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.s3.source.to_string(), "s3://my-bucket/in/");
    let bad = GOOD.replace(
        "SOURCE = s3://my-bucket/in/sales.csv",
        "SOURCE = s3://my-bucket/in/\nSOURC = s3://x",
    );
    let err = parse(&bad).unwrap_err().to_string();
    assert!(
        err.contains("[S3] SOURC") && err.contains("did you mean `SOURCE`"),
        "{err}"
    );
}

#[test]
fn the_password_never_shows_in_debug_or_errors() {
    let secret = "Very-Secret-Passw0rd";
    let text = GOOD.replace("[CLUSTER]", &format!("[CLUSTER]\nDB_PASSWORD = {secret}"));
    let c = parse(&text).unwrap();
    assert_eq!(
        c.cluster().unwrap().db_password.as_ref().unwrap().expose(),
        secret
    );
    assert!(
        !format!("{c:?}").contains(secret),
        "Debug leaks the password"
    );

    // An invalid password is reported without being repeated.
    let bad = "Bad'Passw0rd'Here";
    let err =
        parse(&GOOD.replace("[CLUSTER]", &format!("[CLUSTER]\nDB_PASSWORD = {bad}"))).unwrap_err();
    assert!(!err.to_string().contains("Bad'"), "{err}");
    assert!(!format!("{err:?}").contains("Bad'"), "{err:?}");

    // Access keys in the file are accepted, with a note, and hidden too.
    let keys = GOOD.replace(
        "[AWS]",
        "[AWS]\nKEY = AKIAIOSFODNN7EXAMPLE\nSECRET = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let c = parse(&keys).unwrap();
    assert!(!format!("{c:?}").contains("wJalrXUtnFEMI"));
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("access keys in the file"))
    );
}

#[test]
fn the_environment_password_wins_over_the_file() {
    let text = GOOD.replace("[CLUSTER]", "[CLUSTER]\nDB_PASSWORD = File-Passw0rd");
    let c = Config::parse(&text, "my.cfg", Some("Env-Passw0rd".into())).unwrap();
    assert_eq!(
        c.cluster().unwrap().db_password.as_ref().unwrap().expose(),
        "Env-Passw0rd"
    );
    let err = Config::parse(GOOD, "my.cfg", Some("weak".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("S3_TO_REDSHIFT_DB_PASSWORD") && !err.contains("weak"),
        "{err}"
    );
}

#[test]
fn keys_and_sections_are_case_insensitive_and_values_trimmed() {
    let text = GOOD.replace("[AWS]\nREGION = eu-west-1", "[aws]\nregion =   eu-west-1  ");
    assert_eq!(
        parse(&text).unwrap().aws.region.as_deref(),
        Some("eu-west-1")
    );
}

#[test]
fn load_options_parse() {
    let text = format!(
        "{GOOD}[LOAD]\nDELIMITER = \\t\nQUOTE = '\nIGNORE_HEADER = 2\nNULL_AS = \\N\nBLANKS_AS_NULL = yes\n\
         COMPRESSION = GZIP\nMAX_ERRORS = 10\nMODE = append\nEXPECTED_ROWS = 42\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.load.delimiter, '\t');
    assert_eq!(c.load.quote, '\'');
    assert_eq!(c.load.ignore_header, 2);
    assert_eq!(c.load.null_as.as_deref(), Some("\\N"));
    assert!(c.load.blanks_as_null);
    assert_eq!(c.load.max_errors, 10);
    assert_eq!(c.load.mode, LoadMode::Append);
    assert_eq!(c.load.expected_rows, Some(42));
}

#[test]
fn the_shipped_examples_parse_and_hold_no_secrets() {
    for file in ["examples/pipeline.cfg", "examples/dwh.cfg"] {
        let text = std::fs::read_to_string(file).unwrap();
        let c = Config::parse(&text, file, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.cluster().unwrap().db_password.is_none(),
            "{file} must not hold a password"
        );
        assert!(
            c.aws.static_credentials.is_none(),
            "{file} must not hold access keys"
        );
    }
}

/// GOOD with its `[CLUSTER]` section swapped for `[SERVERLESS]` holding
/// `lines` (each `KEY = value`).
fn serverless(lines: &[(&str, &str)]) -> Document {
    let mut doc = Document::parse(GOOD, "my.cfg").unwrap();
    doc.remove_section("CLUSTER");
    for (key, value) in lines {
        doc.set("SERVERLESS", key, value);
    }
    doc
}

#[test]
fn a_serverless_workgroup_replaces_the_cluster_section() {
    let good = [
        ("WORKGROUP", "analytics"),
        ("PROVISION", "true"),
        ("BASE_CAPACITY", "32"),
    ];
    let c = serverless(&good)
        .config(None)
        .unwrap_or_else(|e| panic!("{e}"));
    // The type says which target it is: no cluster settings at all.
    let TargetSettings::Serverless(sl) = &c.target else {
        panic!("expected a Serverless target, got {:?}", c.target)
    };
    assert_eq!(
        (
            sl.workgroup.as_str(),
            sl.namespace.as_str(),
            sl.provision,
            sl.base_capacity,
            sl.db_name.as_str()
        ),
        ("analytics", "analytics-ns", true, 32, "dev")
    );
    let err = c.cluster().unwrap_err().to_string();
    assert!(err.contains("Serverless workgroup `analytics`"), "{err}");

    for ((key, bad), needles) in [
        (
            ("BASE_CAPACITY", "12"),
            &["[SERVERLESS] BASE_CAPACITY", "multiple of 8"][..],
        ),
        (
            ("NAMESPACE", "Analytics_NS"),
            &["[SERVERLESS] NAMESPACE", "lower-case letters"],
        ),
        (
            ("DB_NAME", "my-db"),
            &["[SERVERLESS] DB_NAME", "not a valid database name"],
        ),
    ] {
        let mut doc = serverless(&good);
        let err = doc
            .set("SERVERLESS", key, bad)
            .config(None)
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(err.contains(n), "{key} = {bad}: {err}");
        }
    }
    // Both sections: one would be silently ignored, so it is an error.
    let mut both = Document::parse(GOOD, "my.cfg").unwrap();
    both.set("SERVERLESS", "WORKGROUP", "analytics");
    let err = both.config(None).unwrap_err().to_string();
    assert!(
        err.contains("[CLUSTER]: is not used when [SERVERLESS] is set"),
        "{err}"
    );
    let err = serverless(&[("PROVISION", "true")])
        .config(None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[SERVERLESS] WORKGROUP: is missing"), "{err}");
}

#[test]
fn a_value_set_on_the_document_replaces_the_file_value_under_any_spelling() {
    // The classic spelling: `[DWH] DWH_DB` is `[CLUSTER] DB_NAME`.
    let classic = std::fs::read_to_string("examples/dwh.cfg").unwrap();
    let mut doc = Document::parse(&classic, "dwh.cfg").unwrap();
    doc.set("CLUSTER", "DB_NAME", "analytics");
    let c = doc
        .config(Some("Env-Passw0rd".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cluster().unwrap().db_name, "analytics");

    // Another case than the file's, and a value checked as if written there.
    let lower = GOOD.replace("[AWS]\nREGION", "[aws]\nregion");
    let mut doc = Document::parse(&lower, "my.cfg").unwrap();
    doc.set("AWS", "REGION", "us-west-2");
    assert_eq!(
        doc.config(None).unwrap().aws.region.as_deref(),
        Some("us-west-2")
    );
    let err = doc
        .set("Aws", "Region", "Mars")
        .config(None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("my.cfg has 1 problem"), "{err}");
    assert!(
        err.contains("[Aws] Region: `Mars` is not an AWS region"),
        "{err}"
    );

    // A column (a key no section lists) is replaced by name.
    let mut doc = Document::parse(GOOD, "my.cfg").unwrap();
    doc.set("COLUMNS", "AMOUNT", "BIGINT");
    let c = doc.config(None).unwrap();
    assert_eq!(c.table.columns.len(), 2, "{:?}", c.table.columns);

    // What is written back reads the same, escapes and all.
    let mut doc = Document::parse(GOOD, "my.cfg").unwrap();
    doc.set("LOAD", "DELIMITER", "\\t");
    let again = Document::parse(&doc.to_string(), "my.cfg").unwrap();
    assert_eq!(again.config(None).unwrap().load.delimiter, '\t');
}

#[test]
fn the_word_settings_parse_case_insensitively_and_print_back() {
    for mode in [LoadMode::Replace, LoadMode::Append, LoadMode::Upsert] {
        assert_eq!(mode.as_str().to_uppercase().parse::<LoadMode>(), Ok(mode));
    }
    for on in [OnExisting::Reuse, OnExisting::Replace, OnExisting::Fail] {
        assert_eq!(on.to_string().parse::<OnExisting>(), Ok(on));
    }
    for t in [ClusterType::SingleNode, ClusterType::MultiNode] {
        assert_eq!(t.as_str().parse::<ClusterType>(), Ok(t));
    }
    assert_eq!(" Adaptive ".parse::<RetryMode>(), Ok(RetryMode::Adaptive));
    assert_eq!("JSON".parse::<LoadFormat>(), Ok(LoadFormat::Json));
    assert_eq!("zstd".parse::<Compression>(), Ok(Compression::Zstd));
    let err = "rar".parse::<Compression>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`rar` is not a compression; expected none, gzip, bzip2 or zstd"
    );
}
