//! Move data from Amazon S3 into Amazon Redshift with the AWS SDK for Rust.
//!
//! This crate is the code behind the `s3-to-redshift` command, the book and
//! the notebook. It runs a small pipeline, each step safe to re-run:
//!
//! 1. an IAM role that Redshift can assume,
//! 2. a read-only policy on the S3 data, attached to the role,
//! 3. a Redshift cluster with the role, waited on until it can load,
//! 4. the target table,
//! 5. `COPY` from S3 into the table, then the row counts checked,
//! 6. optionally, teardown.
//!
//! # Layout
//!
//! One module per step, named for it, so a reader of a book chapter finds its
//! code by the chapter's name:
//!
//! - [`config`]: the `.cfg` file, parsed and validated before any AWS call
//!   (every problem at once, with file, section and key), into a
//!   [`config::Config`] whose [`config::TargetSettings`] is a cluster or a
//!   Serverless workgroup, never both.
//! - [`iam`]: steps 1 and 2, the role's trust policy and the least-privilege
//!   S3 read policy.
//! - [`cluster`]: step 3, creating, waiting on (with a deadline) and deleting
//!   the cluster.
//! - [`serverless`]: step 3 for Redshift Serverless: an existing workgroup
//!   checked, or a namespace and workgroup provisioned and torn down.
//! - [`warehouse`]: SQL through the Redshift Data API: submit, poll, fetch
//!   typed results page by page.
//! - [`load`]: steps 4 and 5, the DDL and `COPY` built from the config, the
//!   load itself and its verification.
//! - [`schema`]: step 4 when the table is not described: columns inferred
//!   from the CSV header and a sample of rows, for review in `plan`.
//! - [`stage`]: a local file split into gzip parts (a multiple of the
//!   cluster's slices), uploaded in parallel with a manifest, then loaded.
//! - [`pipeline`]: the steps in order, as the CLI's `plan`, `up`, `load`,
//!   `stage`, `status` and `down`.
//!
//! And the support they share:
//!
//! - [`sql`]: validated identifiers, escaped literals and column types; no
//!   user string reaches SQL any other way.
//! - [`aws`]: the SDK clients from the standard configuration chain (which is
//!   also how local emulators are reached: `AWS_ENDPOINT_URL`).
//! - [`wait`]: the one bounded wait (a deadline, a growing interval,
//!   progress for the observer) behind every cluster, workgroup and
//!   statement wait.
//! - [`report`]: what each step did, the shared "create / reuse / replace"
//!   decision, and the [`report::Observer`] that shows progress.
//! - [`error`]: typed errors that say what, where and what to do, with the
//!   CLI's exit codes.
//! - `tutorial` (hidden from these docs): the set-up the book's examples and
//!   the notebook share, and the guard that keeps them on the local stack
//!   unless the reader opts in to a real account.
//!
//! The functions the book shows as each step's SDK code are marked with
//! `// ANCHOR: name` comments, which mdBook's `{{#include file:name}}`
//! pulls into the chapters: the book has no second copy to fall out of date.
//!
//! # Example
//!
//! Reading a config never touches AWS, so it is a safe first step:
//!
//! ```
//! let cfg = s3_to_redshift::config::Config::load("examples/pipeline.cfg").unwrap();
//! assert_eq!(cfg.target.name(), "s3-to-redshift-demo");
//! ```

#![warn(missing_docs)]

pub mod aws;
pub mod cluster;
pub mod config;
pub mod error;
pub mod iam;
pub mod load;
pub mod pipeline;
pub mod report;
pub mod schema;
pub mod serverless;
pub mod sql;
pub mod stage;
#[doc(hidden)]
pub mod tutorial;
pub mod wait;
pub mod warehouse;

/// The book's chapters, compiled as documentation so that `cargo test` runs
/// every Rust block in them against the local stack.
#[cfg(doctest)]
pub mod book;

pub use error::{Error, Result};
pub use pipeline::Pipeline;

// The crates whose types this crate's functions take and return, re-exported
// so that code built on it (the notebook's cells, which redefine the step
// functions) names the very same versions, and compiles nothing twice.
#[doc(no_inline)]
pub use {
    aws_config, aws_sdk_iam, aws_sdk_redshift, aws_sdk_redshiftdata, aws_sdk_s3, aws_sdk_sts,
    serde_json, tokio, tracing,
};
