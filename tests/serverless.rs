//! Redshift Serverless. No emulator serves its control plane, so the
//! provisioning is driven by the SDK's mocks (time paused: waits cost
//! nothing, deadlines are exact); the SQL path runs against the sandbox,
//! which serves `WorkgroupName` like the real Data API.

mod common;

use std::time::Duration;

use aws_sdk_redshiftserverless::Client;
use aws_sdk_redshiftserverless::operation::create_namespace::CreateNamespaceOutput;
use aws_sdk_redshiftserverless::operation::create_workgroup::CreateWorkgroupOutput;
use aws_sdk_redshiftserverless::operation::delete_namespace::DeleteNamespaceOutput;
use aws_sdk_redshiftserverless::operation::delete_workgroup::DeleteWorkgroupOutput;
use aws_sdk_redshiftserverless::operation::get_namespace::{GetNamespaceError, GetNamespaceOutput};
use aws_sdk_redshiftserverless::operation::get_workgroup::{GetWorkgroupError, GetWorkgroupOutput};
use aws_sdk_redshiftserverless::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_redshiftserverless::types::error::ResourceNotFoundException;
use aws_sdk_redshiftserverless::types::{
    Namespace, NamespaceStatus, Tag, Workgroup, WorkgroupStatus,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use s3_to_redshift::Error;
use s3_to_redshift::config::{Document, ServerlessSettings, TargetSettings};
use s3_to_redshift::report::Quiet;
use s3_to_redshift::serverless;

const ROLE: &str = "arn:aws:iam::123456789012:role/loader";

fn settings() -> ServerlessSettings {
    let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
    let mut doc = Document::parse(&text, "sl.cfg").unwrap();
    doc.remove_section("CLUSTER")
        .set("SERVERLESS", "WORKGROUP", "analytics")
        .set("SERVERLESS", "PROVISION", "true");
    let cfg = doc.config(None).unwrap_or_else(|e| panic!("{e}"));
    let TargetSettings::Serverless(mut sl) = cfg.target else {
        panic!("expected [SERVERLESS], got {:?}", cfg.target)
    };
    sl.poll_interval = Duration::from_secs(10);
    sl.wait_timeout = Duration::from_secs(300);
    sl
}

fn namespace(status: NamespaceStatus, roles: &[&str]) -> GetNamespaceOutput {
    let mut ns = Namespace::builder()
        .namespace_name("analytics-ns")
        .namespace_arn("arn:aws:redshift-serverless:us-east-1:123456789012:namespace/ns-1")
        .status(status);
    for r in roles {
        ns = ns.iam_roles(format!("IamRole(applyStatus=in-sync, iamRoleArn={r})"));
    }
    GetNamespaceOutput::builder().namespace(ns.build()).build()
}

fn workgroup(status: WorkgroupStatus) -> GetWorkgroupOutput {
    GetWorkgroupOutput::builder()
        .workgroup(
            Workgroup::builder()
                .workgroup_name("analytics")
                .namespace_name("analytics-ns")
                .workgroup_arn("arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/wg-1")
                .status(status)
                .build(),
        )
        .build()
}

fn tags(ours: bool) -> ListTagsForResourceOutput {
    let b = ListTagsForResourceOutput::builder();
    if ours {
        b.tags(
            Tag::builder()
                .key("managed-by")
                .value("s3-to-redshift")
                .build()
                .unwrap(),
        )
        .build()
    } else {
        b.build()
    }
}

fn ns_absent() -> GetNamespaceError {
    GetNamespaceError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("not found")
            .build()
            .unwrap(),
    )
}

fn wg_absent() -> GetWorkgroupError {
    GetWorkgroupError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("not found")
            .build()
            .unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn provisioning_creates_the_namespace_with_the_role_and_waits_for_the_workgroup() {
    let get_ns = mock!(Client::get_namespace)
        .sequence()
        .error(ns_absent)
        .output(|| namespace(NamespaceStatus::Available, &[ROLE]))
        .repeatedly()
        .build();
    let create_ns = mock!(Client::create_namespace)
        .match_requests(|r| {
            r.namespace_name() == Some("analytics-ns")
                && r.iam_roles() == [ROLE]
                && r.default_iam_role_arn() == Some(ROLE)
                && r.manage_admin_password() == Some(true)
                && r.admin_user_password().is_none()
                && r.tags().iter().any(|t| t.key() == "managed-by")
        })
        .then_output(|| CreateNamespaceOutput::builder().build());
    let get_wg = mock!(Client::get_workgroup)
        .sequence()
        .error(wg_absent)
        .output(|| workgroup(WorkgroupStatus::Creating))
        .output(|| workgroup(WorkgroupStatus::Creating))
        .output(|| workgroup(WorkgroupStatus::Available))
        .repeatedly()
        .build();
    let create_wg = mock!(Client::create_workgroup)
        .match_requests(|r| {
            r.workgroup_name() == Some("analytics")
                && r.namespace_name() == Some("analytics-ns")
                && r.base_capacity() == Some(8)
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| CreateWorkgroupOutput::builder().build());
    let list_tags = mock!(Client::list_tags_for_resource).then_output(|| tags(true));
    let client = mock_client!(
        aws_sdk_redshiftserverless,
        RuleMode::MatchAny,
        &[&get_ns, &create_ns, &get_wg, &create_wg, &list_tags]
    );
    let start = tokio::time::Instant::now();
    let wg = serverless::provision(&client, &settings(), ROLE, false, &Quiet)
        .await
        .expect("provisioned");
    assert_eq!(wg.status, "AVAILABLE");
    assert_eq!((create_ns.num_calls(), create_wg.num_calls()), (1, 1));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(20),
        "two polls of 10 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_workgroup_that_never_becomes_available_times_out() {
    let get_ns =
        mock!(Client::get_namespace).then_output(|| namespace(NamespaceStatus::Available, &[ROLE]));
    let get_wg = mock!(Client::get_workgroup).then_output(|| workgroup(WorkgroupStatus::Creating));
    let list_tags = mock!(Client::list_tags_for_resource).then_output(|| tags(true));
    let client = mock_client!(
        aws_sdk_redshiftserverless,
        RuleMode::MatchAny,
        &[&get_ns, &get_wg, &list_tags]
    );
    let err = serverless::provision(&client, &settings(), ROLE, false, &Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(err.exit_code(), 5);
    assert!(err.to_string().contains("workgroup CREATING"), "{err}");
}

#[tokio::test]
async fn an_existing_workgroup_without_the_role_is_refused_with_what_to_do() {
    let get_ns = mock!(Client::get_namespace)
        .then_output(|| namespace(NamespaceStatus::Available, &["arn:aws:iam::1:role/other"]));
    let get_wg = mock!(Client::get_workgroup).then_output(|| workgroup(WorkgroupStatus::Available));
    let list_tags = mock!(Client::list_tags_for_resource).then_output(|| tags(false));
    let client = mock_client!(
        aws_sdk_redshiftserverless,
        RuleMode::MatchAny,
        &[&get_ns, &get_wg, &list_tags]
    );
    let mut sl = settings();
    sl.provision = false;
    let err = serverless::check_ready(&client, &sl, ROLE)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let text = err.to_string();
    assert!(text.contains("does not have role"), "{text}");
    assert!(text.contains("update-namespace"), "{text}");
}

#[tokio::test]
async fn teardown_deletes_only_what_is_tagged_as_ours() {
    let get_ns =
        mock!(Client::get_namespace).then_output(|| namespace(NamespaceStatus::Available, &[ROLE]));
    let get_wg = mock!(Client::get_workgroup).then_output(|| workgroup(WorkgroupStatus::Available));
    let not_ours = mock!(Client::list_tags_for_resource).then_output(|| tags(false));
    let delete_wg =
        mock!(Client::delete_workgroup).then_output(|| DeleteWorkgroupOutput::builder().build());
    let client = mock_client!(
        aws_sdk_redshiftserverless,
        RuleMode::MatchAny,
        &[&get_ns, &get_wg, &not_ours, &delete_wg]
    );
    let err = serverless::delete(&client, &settings(), false, &Quiet)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(delete_wg.num_calls(), 0, "nothing deleted");

    // Ours: the workgroup goes first (waited on), then the namespace.
    let get_wg = mock!(Client::get_workgroup)
        .sequence()
        .output(|| workgroup(WorkgroupStatus::Available))
        .output(|| workgroup(WorkgroupStatus::Deleting))
        .error(wg_absent)
        .build();
    let ours = mock!(Client::list_tags_for_resource).then_output(|| tags(true));
    let delete_wg =
        mock!(Client::delete_workgroup).then_output(|| DeleteWorkgroupOutput::builder().build());
    let delete_ns =
        mock!(Client::delete_namespace).then_output(|| DeleteNamespaceOutput::builder().build());
    let client = mock_client!(
        aws_sdk_redshiftserverless,
        RuleMode::MatchAny,
        &[&get_ns, &get_wg, &ours, &delete_wg, &delete_ns]
    );
    let mut sl = settings();
    sl.poll_interval = Duration::from_millis(1);
    serverless::delete(&client, &sl, false, &Quiet)
        .await
        .expect("deleted");
    assert_eq!((delete_wg.num_calls(), delete_ns.num_calls()), (1, 1));
}

/// The SQL path: a load into a workgroup through the sandbox, with the
/// Serverless error view (`sys_load_error_detail`) for rejected rows.
#[tokio::test]
async fn a_load_into_a_workgroup_runs_through_the_data_api() {
    common::require_sandbox();
    let names = common::Names::new("wg");
    let p = common::pipeline(&names, &[]).await;
    common::upload_sample(&p, &names).await;
    // The role and policy from `up`'s IAM steps; the workgroup needs no
    // cluster, so create just those.
    p.up(false, &Quiet).await.unwrap();
    let role = s3_to_redshift::iam::inspect_role(&p.clients.iam, &names.role)
        .await
        .unwrap()
        .unwrap();
    let wh = s3_to_redshift::warehouse::Warehouse::new(
        p.clients.data.clone(),
        s3_to_redshift::warehouse::Target::Workgroup {
            name: format!("wg-{}", names.cluster),
            database: "dev".into(),
        },
    );
    let report = s3_to_redshift::load::run(&p.cfg, &wh, &p.clients.s3, "us-east-1", &role.arn)
        .await
        .expect("load into the workgroup");
    assert_eq!((report.loaded, report.rows_in_table), (10, 10));

    common::upload(
        &p,
        &names,
        b"sale_id,sold_on,region,product,quantity,unit_price\n1,2024-01-01,n,a,many,1\n",
    )
    .await;
    let err = s3_to_redshift::load::run(&p.cfg, &wh, &p.clients.s3, "us-east-1", &role.arn)
        .await
        .unwrap_err();
    let Error::StatementFailed { load_errors, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(load_errors.first[0].column, "quantity", "{err}");
    assert!(
        load_errors.first[0].value.is_empty(),
        "Serverless does not record the raw value"
    );
}
