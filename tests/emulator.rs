//! The pipeline's `plan`, `up`, `status` and `down` against a local emulator
//! (moto or LocalStack), and the rules that make re-runs converge and keep
//! the tool from touching what it did not create.

mod common;

use common::{Names, pipeline, upload_sample};
use s3_to_redshift::Error;
use s3_to_redshift::cluster;
use s3_to_redshift::iam;
use s3_to_redshift::load;
use s3_to_redshift::pipeline::DownOptions;
use s3_to_redshift::report::{Action, Quiet};

fn actions(reports: &[s3_to_redshift::report::StepReport]) -> Vec<(&'static str, Action)> {
    reports.iter().map(|r| (r.step, r.action.clone())).collect()
}

#[tokio::test]
async fn plan_reports_creates_and_changes_nothing() {
    let names = Names::new("plan");
    let p = pipeline(&names, &[]).await;
    upload_sample(&p, &names).await;

    let plan = p.plan(false).await.expect("plan");
    assert_eq!(
        actions(&plan.steps),
        vec![
            ("iam-role", Action::Create),
            ("iam-policy", Action::Create),
            ("cluster", Action::Create),
            ("table", Action::Create),
            ("copy", Action::Create),
        ]
    );
    assert!(
        plan.steps[4]
            .detail
            .as_deref()
            .unwrap()
            .contains("1 object(s), 409 bytes")
    );
    // The SQL shown is the SQL `load` runs, with the role's future ARN.
    assert!(
        plan.sql
            .iter()
            .flatten()
            .any(|s| s.starts_with("COPY \"public\".\"s2r_staging__sales\"")
                && s.contains(&format!(":role/{}'", names.role)))
    );

    // Nothing was created.
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn up_creates_then_reuses_then_down_removes_everything() {
    let names = Names::new("up");
    let p = pipeline(&names, &[]).await;

    let first = p.up(false, &Quiet).await.expect("first up");
    assert_eq!(
        actions(&first),
        vec![
            ("iam-role", Action::Create),
            ("iam-policy", Action::Create),
            ("cluster", Action::Create)
        ]
    );
    let state = cluster::describe_cluster(&p.clients.redshift, &names.cluster)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "available");
    assert!(state.managed, "the cluster carries the managed-by tag");
    let role = iam::inspect_role(&p.clients.iam, &names.role)
        .await
        .unwrap()
        .unwrap();
    assert!(role.managed && role.trusts_redshift);
    assert_eq!(
        state.role_status(&role.arn),
        Some("in-sync"),
        "the role is attached to the cluster"
    );

    // Re-running converges: everything is reused, nothing duplicated.
    let second = p.up(false, &Quiet).await.expect("second up");
    assert_eq!(
        actions(&second),
        vec![
            ("iam-role", Action::Reuse),
            ("iam-policy", Action::Reuse),
            ("cluster", Action::Reuse)
        ]
    );
    assert_eq!(state.roles.len(), 1);

    let status = p.status().await.expect("status");
    let text: Vec<String> = status.iter().map(ToString::to_string).collect();
    assert!(
        text[0].contains("exists") && text[0].contains("created by s3-to-redshift"),
        "{text:?}"
    );
    assert!(text[1].contains("attached to the role"), "{text:?}");
    assert!(
        text[2].contains("available") && text[2].contains("role in-sync"),
        "{text:?}"
    );

    let opts = DownOptions {
        with_iam: true,
        ..Default::default()
    };
    let down = p.down(&opts, &Quiet).await.expect("down");
    assert_eq!(
        actions(&down),
        vec![
            ("cluster", Action::Delete),
            ("iam-policy", Action::Delete),
            ("iam-role", Action::Delete)
        ]
    );
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );

    // And `down` again is a no-op, not an error.
    let again = p.down(&opts, &Quiet).await.expect("second down");
    assert!(
        again.iter().all(|r| r.action == Action::Absent),
        "{again:?}"
    );
}

#[tokio::test]
async fn down_without_with_iam_keeps_the_role() {
    let names = Names::new("keep");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    p.down(&DownOptions::default(), &Quiet).await.expect("down");
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn down_can_keep_a_final_snapshot() {
    let names = Names::new("snap");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    let snapshot = format!("{}-final", names.cluster);
    let opts = DownOptions {
        final_snapshot: Some(snapshot.clone()),
        ..DownOptions::default()
    };
    let planned = p.plan_down(&opts).await.unwrap();
    assert!(
        planned[0]
            .detail
            .as_deref()
            .unwrap()
            .contains(&format!("final snapshot `{snapshot}`")),
        "{:?}",
        planned[0]
    );
    let done = p.down(&opts, &Quiet).await.expect("down");
    assert!(
        done[0].detail.as_deref().unwrap().contains("taken"),
        "{:?}",
        done[0]
    );
    let snaps = p
        .clients
        .redshift
        .describe_cluster_snapshots()
        .snapshot_identifier(&snapshot)
        .send()
        .await
        .expect("the snapshot exists");
    assert_eq!(snaps.snapshots().len(), 1);
    assert_eq!(
        snaps.snapshots()[0].cluster_identifier(),
        Some(names.cluster.as_str())
    );
    p.clients
        .redshift
        .delete_cluster_snapshot()
        .snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_policy_grants_only_reads_on_the_configured_prefix() {
    let names = Names::new("policy");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    let account = p.clients.account_id().await.unwrap();
    let arn = iam::policy_arn("aws", &account, &names.policy);
    let policy = p
        .clients
        .iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let version = p
        .clients
        .iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(policy.default_version_id().unwrap())
        .send()
        .await
        .unwrap();
    let raw = version.policy_version().unwrap().document().unwrap();
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    let granted: Vec<&str> = statements
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(granted, ["s3:GetObject", "s3:ListBucket"]);
    assert_eq!(
        statements[0]["Resource"],
        format!("arn:aws:s3:::{}/sales/sales.csv*", names.bucket)
    );
    assert_eq!(
        statements[1]["Resource"],
        format!("arn:aws:s3:::{}", names.bucket)
    );
    assert_eq!(
        statements[1]["Condition"]["StringLike"]["s3:prefix"][0],
        "sales/sales.csv*"
    );
    assert!(!text.contains("s3:*") && !text.contains("Put") && !text.contains("Delete"));
}

#[tokio::test]
async fn replace_recreates_what_this_tool_created() {
    let names = Names::new("repl");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    // IAM gives every role a unique id (`AROA…`), kept for its life and new
    // when a role of the same name is created again: the proof of a replace
    // that does not rest on the tool's own report.
    let role_id = |p: &s3_to_redshift::Pipeline| {
        let iam = p.clients.iam.clone();
        let name = names.role.clone();
        async move {
            let out = iam.get_role().role_name(name).send().await.unwrap();
            out.role.unwrap().role_id
        }
    };
    let before = role_id(&p).await;

    let p2 = pipeline(
        &names,
        &[
            ("IAM", "ON_EXISTING = replace"),
            ("CLUSTER", "ON_EXISTING = replace"),
        ],
    )
    .await;
    let plan = p2.plan(false).await.expect("plan");
    assert_eq!(plan.steps[0].action, Action::Replace);
    assert_eq!(plan.steps[2].action, Action::Replace);
    let reports = p2.up(false, &Quiet).await.expect("replace");
    assert_eq!(
        actions(&reports),
        vec![
            ("iam-role", Action::Replace),
            ("iam-policy", Action::Replace),
            ("cluster", Action::Replace)
        ]
    );
    let after = iam::inspect_role(&p.clients.iam, &names.role)
        .await
        .unwrap()
        .unwrap();
    assert!(after.managed);
    let state = cluster::describe_cluster(&p.clients.redshift, &names.cluster)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.role_status(&after.arn), Some("in-sync"));
    assert_eq!(
        state.roles.len(),
        1,
        "the replaced cluster holds the new role once: {:?}",
        state.roles
    );
    assert_ne!(
        role_id(&p).await,
        before,
        "the role was deleted and created again"
    );
}

#[tokio::test]
async fn fail_mode_refuses_before_changing_anything() {
    let names = Names::new("fail");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    // Delete the cluster so that, without the refusal, `up` would create one.
    p.down(&DownOptions::default(), &Quiet).await.expect("down");

    let strict = pipeline(&names, &[("IAM", "ON_EXISTING = fail")]).await;
    let err = strict.up(false, &Quiet).await.expect_err("role exists");
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: "IAM role",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("ON_EXISTING = fail"), "{err}");
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_none(),
        "the refusal came before any change"
    );
}

/// A role someone else made: this tool reuses it if asked, but never
/// replaces or deletes it unless forced.
#[tokio::test]
async fn resources_without_our_tag_are_refused() {
    let names = Names::new("foreign");
    let p = pipeline(&names, &[]).await;
    p.clients
        .iam
        .create_role()
        .role_name(&names.role)
        .assume_role_policy_document(iam::trust_policy().to_string())
        .send()
        .await
        .expect("create untagged role");

    let replacing = pipeline(&names, &[("IAM", "ON_EXISTING = replace")]).await;
    let err = replacing
        .up(false, &Quiet)
        .await
        .expect_err("untagged role");
    assert!(
        matches!(
            err,
            Error::Refused {
                action: "replace",
                kind: "IAM role",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_none(),
        "nothing was created after the refusal"
    );

    // Reuse is fine: the role trusts Redshift.
    let reports = p.up(false, &Quiet).await.expect("reuse a foreign role");
    assert_eq!(reports[0].action, Action::Reuse);

    // Deleting it is refused, and the refusal comes before the cluster goes.
    let opts = DownOptions {
        with_iam: true,
        ..Default::default()
    };
    let err = p.down(&opts, &Quiet).await.expect_err("untagged role");
    assert!(
        matches!(
            err,
            Error::Refused {
                action: "delete",
                kind: "IAM role",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_some()
    );

    // --force does it.
    let forced = DownOptions {
        with_iam: true,
        force: true,
        ..Default::default()
    };
    p.down(&forced, &Quiet).await.expect("forced down");
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_cluster_this_tool_did_not_create_is_not_deleted() {
    let names = Names::new("foreigncl");
    let p = pipeline(&names, &[]).await;
    p.clients
        .redshift
        .create_cluster()
        .cluster_identifier(&names.cluster)
        .node_type("ra3.large")
        .cluster_type("single-node")
        .master_username("awsuser")
        .master_user_password(common::PASSWORD)
        .send()
        .await
        .expect("create untagged cluster");
    let err = p
        .plan_down(&DownOptions::default())
        .await
        .expect_err("untagged");
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: "cluster",
                ..
            }
        ),
        "{err}"
    );
    let err = p
        .down(&DownOptions::default(), &Quiet)
        .await
        .expect_err("untagged");
    assert_eq!(err.exit_code(), 3);
    assert!(
        cluster::describe_cluster(&p.clients.redshift, &names.cluster)
            .await
            .unwrap()
            .is_some()
    );
    let replacing = pipeline(&names, &[("CLUSTER", "ON_EXISTING = replace")]).await;
    let err = replacing
        .up(false, &Quiet)
        .await
        .expect_err("untagged cluster");
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: "cluster",
                action: "replace",
                ..
            }
        ),
        "{err}"
    );
    // The refusal came before the role was created.
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_role_that_redshift_cannot_assume_is_not_reused() {
    let names = Names::new("trust");
    let p = pipeline(&names, &[]).await;
    let ec2_trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    });
    p.clients
        .iam
        .create_role()
        .role_name(&names.role)
        .assume_role_policy_document(ec2_trust.to_string())
        .send()
        .await
        .unwrap();
    let err = p.up(false, &Quiet).await.expect_err("wrong trust");
    assert!(err.to_string().contains("redshift.amazonaws.com"), "{err}");
}

#[tokio::test]
async fn a_moved_source_updates_our_policy() {
    let names = Names::new("moved");
    let p = pipeline(&names, &[]).await;
    p.up(false, &Quiet).await.expect("up");
    let source = format!("SOURCE = s3://{}/archive/", names.bucket);
    let moved_text = common::config_text(&names, &[("S3", &source)]);
    let moved = s3_to_redshift::config::Config::parse(
        &moved_text,
        "moved.cfg",
        Some(common::PASSWORD.into()),
    )
    .unwrap();
    let moved = s3_to_redshift::Pipeline::connect(moved).await.unwrap();
    let reports = moved.up(false, &Quiet).await.expect("up with a new source");
    assert_eq!(reports[1].action, Action::Update, "{reports:?}");
    // A third run finds the policy in line and reuses it.
    let reports = moved.up(false, &Quiet).await.expect("converged");
    assert_eq!(reports[1].action, Action::Reuse, "{reports:?}");
}

#[tokio::test]
async fn creating_a_cluster_needs_a_password_and_says_where_to_put_it() {
    let names = Names::new("nopw");
    common::require_emulator();
    let cfg =
        s3_to_redshift::config::Config::parse(&common::config_text(&names, &[]), "nopw.cfg", None)
            .unwrap();
    let p = s3_to_redshift::Pipeline::connect(cfg).await.unwrap();
    let err = p.up(false, &Quiet).await.expect_err("no password");
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.contains("nopw.cfg")
            && text.contains("[CLUSTER] DB_PASSWORD")
            && text.contains("S3_TO_REDSHIFT_DB_PASSWORD"),
        "{text}"
    );
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_missing_source_is_a_clear_error() {
    let names = Names::new("nosrc");
    let p = pipeline(&names, &[]).await;
    // No bucket at all.
    let err = load::inspect_source(&p.clients.s3, &p.cfg.s3.source, false)
        .await
        .expect_err("no bucket");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // A bucket, but nothing under the key.
    p.clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .unwrap();
    let err = load::inspect_source(&p.clients.s3, &p.cfg.s3.source, false)
        .await
        .expect_err("no object");
    assert!(err.to_string().contains("upload the data first"), "{err}");
    // An empty object.
    p.clients
        .s3
        .put_object()
        .bucket(&names.bucket)
        .key("sales/sales.csv")
        .body(Vec::new().into())
        .send()
        .await
        .unwrap();
    let err = load::inspect_source(&p.clients.s3, &p.cfg.s3.source, false)
        .await
        .expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
    // `plan` shows it as a warning rather than failing.
    let plan = p.plan(false).await.expect("plan");
    assert!(
        plan.steps[4].detail.as_deref().unwrap().contains("warning"),
        "{:?}",
        plan.steps[4]
    );
}

#[tokio::test]
async fn load_refuses_before_up() {
    let names = Names::new("early");
    let p = pipeline(&names, &[]).await;
    let err = p.load(&Quiet).await.expect_err("nothing exists");
    assert!(err.to_string().contains("run `up` first"), "{err}");
    assert_eq!(err.exit_code(), 3);
}

#[tokio::test]
async fn multi_node_clusters_get_their_node_count() {
    let names = Names::new("multi");
    let p = pipeline(
        &names,
        &[
            ("CLUSTER", "CLUSTER_TYPE = multi-node"),
            ("CLUSTER", "NUM_NODES = 3"),
        ],
    )
    .await;
    p.up(false, &Quiet).await.expect("up");
    let state = cluster::describe_cluster(&p.clients.redshift, &names.cluster)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.num_nodes, 3);
}
