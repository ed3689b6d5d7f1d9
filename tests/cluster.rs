//! The cluster step's waiting and retrying, driven by the SDK's mocks: the
//! states an emulator never shows (a role still `adding`, a stuck cluster, a
//! new role not yet visible to Redshift). Time is paused, so the waits cost
//! nothing and the deadlines are exact.

use std::time::Duration;

use aws_sdk_redshift::Client;
use aws_sdk_redshift::operation::create_cluster::CreateClusterOutput;
use aws_sdk_redshift::operation::describe_clusters::DescribeClustersOutput;
use aws_sdk_redshift::types::{Cluster, ClusterIamRole, Endpoint, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use s3_to_redshift::Error;
use s3_to_redshift::cluster;
use s3_to_redshift::config::Config;
use s3_to_redshift::report::{Observer, Quiet};

const ROLE: &str = "arn:aws:iam::123456789012:role/demo";

fn settings() -> s3_to_redshift::config::ClusterSettings {
    let text = std::fs::read_to_string("examples/pipeline.cfg").unwrap();
    let cfg = Config::parse(&text, "examples/pipeline.cfg", Some("Passw0rd-1".into())).unwrap();
    let mut cluster = cfg.cluster().unwrap().clone();
    cluster.poll_interval = Duration::from_secs(15);
    cluster.wait_timeout = Duration::from_secs(600);
    cluster
}

fn cluster(status: &str, role_status: &str) -> DescribeClustersOutput {
    DescribeClustersOutput::builder()
        .clusters(
            Cluster::builder()
                .cluster_identifier("s3-to-redshift-demo")
                .cluster_status(status)
                .node_type("ra3.large")
                .number_of_nodes(1)
                .endpoint(
                    Endpoint::builder()
                        .address("demo.example")
                        .port(5439)
                        .build(),
                )
                .iam_roles(
                    ClusterIamRole::builder()
                        .iam_role_arn(ROLE)
                        .apply_status(role_status)
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("managed-by")
                        .value("s3-to-redshift")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_redshift, RuleMode::MatchAny, rules)
}

/// Records what the observer is told, to check that waits are visible.
#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<String>>);
impl Observer for Seen {
    fn waiting(&self, _what: &str, state: &str, _elapsed: Duration) {
        self.0.lock().unwrap().push(state.to_string());
    }
}

#[tokio::test(start_paused = true)]
async fn waits_for_available_and_the_role_in_sync() {
    let describe = mock!(Client::describe_clusters)
        .sequence()
        .output(|| cluster("creating", "adding"))
        .times(2)
        .output(|| cluster("available", "adding"))
        .output(|| cluster("available", "in-sync"))
        .build();
    let seen = Seen::default();
    let state = cluster::wait_available(&client(&[&describe]), &settings(), Some(ROLE), &seen)
        .await
        .expect("available");
    assert_eq!(state.endpoint.as_deref(), Some("demo.example:5439"));
    assert_eq!(
        describe.num_calls(),
        4,
        "available alone is not enough: the role must be in-sync"
    );
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "creating, role adding",
            "creating, role adding",
            "available, role adding"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_never_ends_times_out_with_a_hint() {
    let describe = mock!(Client::describe_clusters).then_output(|| cluster("creating", "adding"));
    let start = tokio::time::Instant::now();
    let err = cluster::wait_available(&client(&[&describe]), &settings(), Some(ROLE), &Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(err.exit_code(), 5);
    let text = err.to_string();
    assert!(
        text.contains("creating, role adding") && text.contains("WAIT_TIMEOUT_SECS"),
        "{text}"
    );
    assert!(
        start.elapsed() <= Duration::from_secs(600),
        "the deadline holds"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_cluster_fails_at_once() {
    let describe =
        mock!(Client::describe_clusters).then_output(|| cluster("incompatible-network", "in-sync"));
    let err = cluster::wait_available(&client(&[&describe]), &settings(), Some(ROLE), &Quiet)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ClusterFailed { ref status, .. } if status == "incompatible-network"),
        "{err}"
    );
    assert_eq!(describe.num_calls(), 1);
}

fn xml_error(code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>r-1</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body))
}

#[tokio::test(start_paused = true)]
async fn a_new_role_not_yet_visible_is_retried() {
    let create = mock!(Client::create_cluster)
        .match_requests(|r| {
            r.iam_roles() == [ROLE]
                && r.number_of_nodes().is_none()
                && r.publicly_accessible() == Some(false)
                && r.tags().iter().any(|t| t.key() == Some("managed-by"))
        })
        .sequence()
        .http_response(|| {
            xml_error(
                "InvalidParameterValue",
                "The IAM role demo is not valid. The IAM role must delegate access to an Amazon Redshift account.",
            )
        })
        .times(2)
        .output(|| CreateClusterOutput::builder().build())
        .build();
    cluster::create_cluster(&client(&[&create]), &settings(), ROLE)
        .await
        .expect("created after retries");
    assert_eq!(create.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn other_create_errors_are_not_retried() {
    let create = mock!(Client::create_cluster)
        .sequence()
        .http_response(|| {
            xml_error(
                "ClusterQuotaExceeded",
                "You have reached the maximum number of clusters.",
            )
        })
        .build();
    let err = cluster::create_cluster(&client(&[&create]), &settings(), ROLE)
        .await
        .unwrap_err();
    assert_eq!(create.num_calls(), 1);
    let text = err.to_string();
    assert!(
        text.contains("Redshift CreateCluster on s3-to-redshift-demo failed: ClusterQuotaExceeded"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn multi_node_clusters_send_their_node_count() {
    let mut s = settings();
    s.cluster_type = s3_to_redshift::config::ClusterType::MultiNode;
    s.num_nodes = 4;
    let create = mock!(Client::create_cluster)
        .match_requests(|r| {
            r.cluster_type() == Some("multi-node") && r.number_of_nodes() == Some(4)
        })
        .then_output(|| CreateClusterOutput::builder().build());
    cluster::create_cluster(&client(&[&create]), &s, ROLE)
        .await
        .expect("created");
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_role_retry_gives_up_after_its_deadline() {
    let create = mock!(Client::create_cluster)
        .sequence()
        .http_response(|| xml_error("InvalidParameterValue", "The IAM role demo is not valid."))
        .repeatedly()
        .build();
    let start = tokio::time::Instant::now();
    let err = cluster::create_cluster(&client(&[&create]), &settings(), ROLE)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("InvalidParameterValue: The IAM role demo is not valid."),
        "{err}"
    );
    // Tries at 0, 2, 6, 14, 30 and 62 s; the next would pass 90 s.
    assert_eq!(create.num_calls(), 6);
    assert!(start.elapsed() < Duration::from_secs(90));
}
