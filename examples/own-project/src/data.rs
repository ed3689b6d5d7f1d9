//! Before the steps: the data in S3. On AWS it is usually there already;
//! on the local stack, this puts the book's sample CSV where `COPY` reads.

use aws_sdk_s3::primitives::ByteStream;

use crate::error::{Error, aws};

/// Uploads local file `path` to `s3://bucket/key`, creating the bucket if
/// this account has no bucket of that name.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// let csv = "../../examples/data/sales.csv";
/// own_project::data::upload_file(&c.s3, "doc-data", "sales/sales.csv", csv).await?;
/// # Ok(()) }
/// ```
// ANCHOR: upload_file
pub async fn upload_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &str,
) -> Result<(), Error> {
    if let Err(e) = s3.head_bucket().bucket(bucket).send().await {
        // 404: no such bucket; make it. Anything else is an error.
        if !e.as_service_error().is_some_and(|e| e.is_not_found()) {
            return Err(aws("HeadBucket")(e));
        }
        let created = s3.create_bucket().bucket(bucket).send().await;
        created.map_err(aws("CreateBucket"))?;
    }
    let body = ByteStream::from_path(path)
        .await
        .map_err(|e| Error::Config(format!("{path}: {e}")))?;
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await;
    put.map_err(aws("PutObject"))?;
    Ok(())
}
// ANCHOR_END: upload_file
