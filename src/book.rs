//! The book's chapters as documentation items, so that rustdoc compiles and
//! runs every Rust block in them with the crate's real dependencies. Hidden
//! `# ` lines hold each block's set-up, as rustdoc and mdBook both allow.
//! Compiled only for `cargo test --doc` (`#[cfg(doctest)]`).

#[doc = include_str!("../book/src/introduction.md")]
pub struct Introduction;

#[doc = include_str!("../book/src/setup.md")]
pub struct Setup;

#[doc = include_str!("../book/src/iam-role.md")]
pub struct IamRole;

#[doc = include_str!("../book/src/s3-policy.md")]
pub struct S3Policy;

#[doc = include_str!("../book/src/cluster.md")]
pub struct Cluster;

#[doc = include_str!("../book/src/table.md")]
pub struct Table;

#[doc = include_str!("../book/src/copy.md")]
pub struct Copy;

#[doc = include_str!("../book/src/verify.md")]
pub struct Verify;

#[doc = include_str!("../book/src/teardown.md")]
pub struct Teardown;

#[doc = include_str!("../book/src/own-project.md")]
pub struct OwnProject;

#[doc = include_str!("../book/src/cli.md")]
pub struct Cli;

#[doc = include_str!("../book/src/next-steps.md")]
pub struct NextSteps;

#[doc = include_str!("../book/src/on-aws.md")]
pub struct OnAws;
#[doc = include_str!("../book/src/sandbox.md")]
pub struct Sandbox;

#[doc = include_str!("../book/src/load-modes.md")]
pub struct LoadModes;

#[doc = include_str!("../book/src/formats.md")]
pub struct Formats;

#[doc = include_str!("../book/src/stage.md")]
pub struct Stage;

#[doc = include_str!("../book/src/schema.md")]
pub struct Schema;

#[doc = include_str!("../book/src/serverless.md")]
pub struct Serverless;

#[doc = include_str!("../book/src/reliability.md")]
pub struct Reliability;

#[doc = include_str!("../book/src/troubleshooting.md")]
pub struct Troubleshooting;

#[doc = include_str!("../book/src/from-python.md")]
pub struct FromPython;
