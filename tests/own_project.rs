//! The book's standalone program (`examples/own-project`), run end to end
//! against the local stack, twice (the second run reuses everything), then
//! torn down. (Its refusal to touch a real account unless asked is tested in
//! `examples/own-project/tests/`.)

mod common;

use s3_to_redshift::iam;

#[tokio::test]
async fn the_standalone_program_runs_the_six_steps_and_cleans_up() {
    common::require_sandbox();
    let names = common::Names::new("own");
    let p = common::pipeline(&names, &[]).await;
    common::upload_sample(&p, &names).await;

    // The password comes from the environment, as the program reads it;
    // the rest from the book's config, with this test's names.
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe {
        std::env::set_var(
            "S3_TO_REDSHIFT_DB_PASSWORD",
            s3_to_redshift::tutorial::PASSWORD,
        )
    };
    let mut settings = own_project::Settings::read("examples/pipeline.cfg").unwrap();
    settings.role_name = names.role.clone();
    settings.policy_name = names.policy.clone();
    settings.cluster_id = names.cluster.clone();
    settings.bucket = names.bucket.clone();

    assert_eq!(own_project::run(&settings, false).await.unwrap(), 10);
    // Again: role, policy and cluster reused, the rows replaced, not doubled.
    assert_eq!(own_project::run(&settings, true).await.unwrap(), 10);

    // Torn down: nothing of it is left.
    assert!(
        iam::inspect_role(&p.clients.iam, &names.role)
            .await
            .unwrap()
            .is_none()
    );
    let cluster = s3_to_redshift::cluster::describe_cluster(&p.clients.redshift, &names.cluster);
    assert!(cluster.await.unwrap().is_none());
    let account = p.clients.account_id().await.unwrap();
    let policy = iam::policy_arn("aws", &account, &names.policy);
    let found = iam::inspect_policy(
        &p.clients.iam,
        &policy,
        &names.role,
        &serde_json::Value::Null,
    );
    assert!(found.await.unwrap().is_none());
}
