//! Set-up shared by the book's and the notebook's code blocks.
//!
//! Every Rust block in the book runs in `cargo test` (as a doctest) against
//! the local stack. The blocks run in parallel, so each chapter works on its
//! own copy of the demo resources: [`config`] renames them after the chapter.
//! Readers never need this module; the book hides the lines that call it.

use std::path::PathBuf;

use crate::Pipeline;
use crate::config::Config;
use crate::error::Result;

/// The password the book's clusters are created with (a local stand-in only).
pub const PASSWORD: &str = "Book-Passw0rd";

/// A path relative to the repository root, wherever the test runs from.
pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `examples/pipeline.cfg` with every `s3-to-redshift-demo` name replaced by
/// `book-<chapter>`, so that chapters do not share resources.
pub fn config(chapter: &str) -> Result<Config> {
    let file = path("examples/pipeline.cfg");
    let text =
        std::fs::read_to_string(&file).map_err(|source| crate::error::ConfigError::Read {
            path: file.clone(),
            source,
        })?;
    let text = text.replace("s3-to-redshift-demo", &format!("book-{chapter}"));
    Ok(Config::parse(&text, file, Some(PASSWORD.into()))?)
}

/// [`config`] with some values changed: `(section, key, value)`.
pub fn config_with(chapter: &str, overrides: &[(&str, &str, &str)]) -> Result<Config> {
    let file = path("examples/pipeline.cfg");
    let text =
        std::fs::read_to_string(&file).map_err(|source| crate::error::ConfigError::Read {
            path: file.clone(),
            source,
        })?;
    let text = text.replace("s3-to-redshift-demo", &format!("book-{chapter}"));
    let text = crate::config::with_overrides(&text, overrides);
    Ok(Config::parse(&text, file, Some(PASSWORD.into()))?)
}

/// Puts `body` at `key` in the chapter's bucket (created if needed).
pub async fn put(p: &Pipeline, key: &str, body: impl Into<Vec<u8>>) -> Result<()> {
    let bucket = &p.cfg.s3.source.bucket;
    let s3 = &p.clients.s3;
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| crate::Error::aws("S3", "CreateBucket", bucket, e))?;
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into().into())
        .send()
        .await
        .map_err(|e| crate::Error::aws("S3", "PutObject", format!("s3://{bucket}/{key}"), e))?;
    Ok(())
}

/// Creates the chapter's bucket (if needed) and uploads `examples/data/sales.csv`
/// to the configured source key, as a reader would with `aws s3 cp`.
pub async fn upload_sample(p: &Pipeline) -> Result<()> {
    let body =
        std::fs::read(path("examples/data/sales.csv")).expect("the sample CSV ships with the repo");
    put(p, &p.cfg.s3.source.key, body).await
}

/// A pipeline for `chapter` with the sample uploaded and `up` done: where the
/// chapters about the table and COPY start.
pub async fn ready(chapter: &str) -> Result<Pipeline> {
    let p = Pipeline::connect(config(chapter)?).await?;
    upload_sample(&p).await?;
    p.up(false, &crate::report::Quiet).await?;
    Ok(p)
}

/// Replaces what changes from run to run by a fixed placeholder: statement
/// ids (UUIDs) become `<statement-id>`, times of loads `<time> UTC`, and the 12-character id in a
/// cluster's endpoint (`name.abc123def456.us-east-1.redshift…`) `<id>`.
pub fn normalize(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| b.is_ascii_hexdigit() && !b.is_ascii_uppercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        // 8-4-4-4-12 hex digits: a UUID.
        let shape = [8, 4, 4, 4, 12];
        let mut j = i;
        let mut is_uuid = true;
        for (n, len) in shape.iter().enumerate() {
            if j + len > bytes.len() || !bytes[j..j + len].iter().all(|&b| hex(b)) {
                is_uuid = false;
                break;
            }
            j += len;
            if n < 4 {
                if bytes.get(j) != Some(&b'-') {
                    is_uuid = false;
                    break;
                }
                j += 1;
            }
        }
        if is_uuid && (i == 0 || !hex(bytes[i - 1])) {
            out.push_str("<statement-id>");
            i = j;
            continue;
        }
        // `YYYY-MM-DD HH:MM:SS UTC`: when a load ran (the ledger's time).
        if i + 23 <= bytes.len()
            && text.is_char_boundary(i + 23)
            && text[i..i + 23].ends_with(" UTC")
            && bytes[i..i + 19].iter().enumerate().all(|(k, &b)| match k {
                4 | 7 => b == b'-',
                10 => b == b' ',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            })
        {
            out.push_str("<time> UTC");
            i += 23;
            continue;
        }
        // `.` + 12 hex digits + `.` before a region: an endpoint's id.
        if bytes[i] == b'.'
            && i + 14 <= bytes.len()
            && bytes[i + 1..i + 13].iter().all(|&b| hex(b))
            && bytes[i + 13] == b'.'
        {
            out.push_str(".<id>");
            i += 13;
            continue;
        }
        let ch = text[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Records what a book example printed, so the book shows real output.
///
/// The book includes `book/src/generated/<key>.txt` after each example that
/// prints. In a normal test run this checks that the example still prints
/// exactly that; with `BOOK_RECORD=1` (`scripts/book-outputs.sh`) it
/// rewrites the file from the run instead. Output is never typed by hand.
///
/// The emulators differ in one detail a reader should not have to see: their
/// account ids (moto `123456789012`, LocalStack `000000000000`); the
/// recorded text uses moto's.
pub fn record(key: &str, printed: &str) {
    let file = path(&format!("book/src/generated/{key}.txt"));
    let text = normalize(&printed.replace("000000000000", "123456789012"));
    if std::env::var_os("BOOK_RECORD").is_some() {
        std::fs::create_dir_all(file.parent().expect("has a parent"))
            .expect("create book/src/generated");
        std::fs::write(&file, &text).expect("write the recorded output");
        return;
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|_| panic!("{} is missing: run scripts/book-outputs.sh", file.display()));
    assert_eq!(
        want, text,
        "the book shows output that {key} no longer prints: run scripts/book-outputs.sh and review the diff"
    );
}

/// Any error, for the notebook's cells.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one notebook cell's async code to the end, on a runtime owned by
/// this library.
///
/// Why not evcxr's own top-level `.await`? evcxr compiles every cell as a
/// crate of its own, and a runtime started by one cell is not the one that
/// code compiled for a later cell finds: the HTTP client's timers then panic
/// with "there is no reactor running". A runtime created here, by the code
/// the cell itself calls, is always the one its futures use. An error ends
/// the cell with a panic that says so, which the notebook's runner reports.
pub fn block_on<F>(cell: F)
where
    F: std::future::Future<Output = std::result::Result<(), BoxError>>,
{
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    if let Err(e) = rt.block_on(cell) {
        panic!("Error: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_specific_parts_are_normalised() {
        assert_eq!(
            super::normalize(
                "statement 0f8fad5b-d9cb-469f-a165-70867728950e:2 failed at c.9a8b7c6d5e4f.us-east-1.x, é"
            ),
            "statement <statement-id>:2 failed at c.<id>.us-east-1.x, é"
        );
        assert_eq!(
            super::normalize("version 1.2.3 and abc"),
            "version 1.2.3 and abc"
        );
    }
}
