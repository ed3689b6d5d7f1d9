//! A local Amazon Redshift Data API backed by a real PostgreSQL server.
//!
//! No emulator runs Redshift SQL: moto's Data API keeps every statement
//! `STARTED` forever, and LocalStack's free edition has none. This server
//! speaks the Data API's wire protocol on 127.0.0.1 so that the unmodified
//! `aws-sdk-redshiftdata` client reaches it through
//! `AWS_ENDPOINT_URL_REDSHIFT_DATA`, while IAM, S3 and the Redshift control
//! plane stay on the emulator. SQL really runs (on PostgreSQL), and
//! `COPY … FROM 's3://…'` really streams the objects from the emulator's S3.
//!
//! # Layout
//!
//! - [`api`]: the wire protocol: operations, JSON shapes, error types.
//! - [`engine`]: statements and their asynchronous life cycle, batches as
//!   transactions, cancellation, bounded concurrency.
//! - [`translate`]: a SQL tokenizer, `:name` parameters, and Redshift-only
//!   DDL (`DISTKEY`, `SORTKEY`, `ENCODE`, …) made fit for PostgreSQL.
//! - [`copy`]: `COPY` parsed, checked against IAM and streamed from S3, with
//!   load errors recorded as Redshift records them.
//! - [`dialect`]: Redshift's functions, syntax and system views on
//!   PostgreSQL, with the support table the tests run.
//! - [`unload`]: `UNLOAD` to the emulator's S3, checked against the role's
//!   policy like `COPY`.
//! - [`aws`]: the cluster, the role's policies and the data, read from the
//!   emulator; a small IAM policy evaluator.
//! - [`pg`]: one PostgreSQL database per cluster and database; values in
//!   and out, and PostgreSQL's errors worded as Redshift words them.
//! - [`error`]: why a request was refused (a leaf: it imports nothing).
//!
//! No module imports one that imports it back: `engine` runs `copy`, which
//! gets a [`copy::CopyContext`] of what it uses rather than the engine.

pub mod api;
pub mod aws;
pub mod copy;
pub mod dialect;
pub mod engine;
pub mod error;
pub mod pg;
pub mod translate;
pub mod unload;
