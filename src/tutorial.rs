//! Set-up shared by the book's and the notebook's code blocks.
//!
//! Every Rust block in the book runs in `cargo test` (as a doctest) against
//! the local stack. The blocks run in parallel, so each chapter works on its
//! own copy of the demo resources: [`config`] renames them after the chapter.
//! Readers never need this module; the book hides the lines that call it.
//!
//! One part of it is for readers: [`destination`], the check that the book's
//! code and the notebook run against the local stack unless the reader opted
//! in to a real account with [`ON_AWS`]. Every doctest passes through it
//! ([`config`] calls it) and so does the notebook's first cell, before any
//! request is built.

use std::path::PathBuf;

use crate::Pipeline;
use crate::config::Config;
use crate::error::Result;

/// The password the book's clusters are created with (a local stand-in only).
pub const PASSWORD: &str = "Book-Passw0rd";

/// Set this environment variable to `1` to let the book's code and the
/// notebook create real, billed resources in the AWS account your
/// credentials name. Without it they refuse to run unless every service
/// they use is reached on this machine (the local stack).
pub const ON_AWS: &str = "S3_TO_REDSHIFT_TUTORIAL_ON_AWS";

/// The services the tutorial calls, with the environment variables that
/// point each at an endpoint (the SDK's standard ones).
const SERVICES: [(&str, &str); 6] = [
    ("IAM", "AWS_ENDPOINT_URL_IAM"),
    ("S3", "AWS_ENDPOINT_URL_S3"),
    ("STS", "AWS_ENDPOINT_URL_STS"),
    ("Redshift", "AWS_ENDPOINT_URL_REDSHIFT"),
    (
        "Redshift Serverless",
        "AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS",
    ),
    ("Redshift Data API", "AWS_ENDPOINT_URL_REDSHIFT_DATA"),
];

/// Where the tutorial's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every service on loopback: `(service, endpoint)`.
    Local(Vec<(&'static str, String)>),
    /// A real AWS account, which the reader opted in to with [`ON_AWS`].
    Aws,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Local(endpoints) => {
                write!(f, "the local stack (")?;
                let mut first = true;
                // Services sharing an endpoint are named together.
                let mut seen: Vec<&str> = Vec::new();
                for (_, url) in endpoints {
                    if seen.contains(&url.as_str()) {
                        continue;
                    }
                    seen.push(url);
                    let names: Vec<&str> = endpoints
                        .iter()
                        .filter(|(_, u)| u == url)
                        .map(|(s, _)| *s)
                        .collect();
                    if !first {
                        write!(f, "; ")?;
                    }
                    first = false;
                    write!(f, "{} at {url}", names.join(", "))?;
                }
                write!(f, "): nothing reaches AWS")
            }
            Destination::Aws => write!(
                f,
                "a REAL AWS account ({ON_AWS} is set): resources are created and billed"
            ),
        }
    }
}

/// Whether `url`'s host is this machine: `localhost`, or a loopback IP
/// address (not a name that merely starts with `127.`, and not a real host
/// behind `127.0.0.1@` user information).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the tutorial would send its requests, from the environment as
/// `env` reads it; an error, before anything is sent, if that is a real
/// account the reader did not opt in to.
///
/// ```
/// use s3_to_redshift::tutorial::{destination_from, Destination};
/// let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000".to_string());
/// assert!(matches!(destination_from(env), Ok(Destination::Local(_))));
/// let none = |_: &str| None;
/// assert!(destination_from(none).unwrap_err().to_string().contains("S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1"));
/// ```
pub fn destination_from(env: impl Fn(&str) -> Option<String>) -> Result<Destination> {
    let ignored = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let global = env("AWS_ENDPOINT_URL");
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for (service, var) in SERVICES {
        match env(var).or_else(|| global.clone()) {
            Some(url) if !ignored && is_loopback(&url) => local.push((service, url)),
            _ => remote.push(service),
        }
    }
    if remote.is_empty() {
        return Ok(Destination::Local(local));
    }
    if env(ON_AWS).is_some_and(|v| v == "1") {
        return Ok(Destination::Aws);
    }
    Err(crate::Error::Refused {
        action: "send",
        kind: "the tutorial's requests to",
        name: "AWS".into(),
        reason: format!(
            "{} would reach a real AWS account (no local endpoint in AWS_ENDPOINT_URL{}). \
             Start the local stack first: eval \"$(scripts/sandbox.sh start)\". To create \
             real, billed resources in your account instead, set {ON_AWS}=1 (see the book's \
             \"On AWS\" page)",
            remote.join(", "),
            if ignored {
                ", which AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns off"
            } else {
                ""
            }
        ),
    })
}

/// [`destination_from`] the process's environment.
pub fn destination() -> Result<Destination> {
    destination_from(|k| std::env::var(k).ok())
}

/// [`destination_from`], for the book's examples: the local stack only,
/// opted in or not. Each chapter's example makes resources of its own (ten
/// clusters in all) with a stand-in password written in this repository:
/// fine on an emulator, never in a real account. A reader who opted in runs
/// the notebook or `examples/own-project`, which make one of each.
pub fn book_destination_from(env: impl Fn(&str) -> Option<String>) -> Result<Destination> {
    match destination_from(env)? {
        Destination::Aws => Err(crate::Error::Refused {
            action: "run",
            kind: "the book's examples on",
            name: "AWS".into(),
            reason: format!(
                "they make a cluster per chapter with a stand-in password, so they run on the \
                 local stack only, even with {ON_AWS}=1; on AWS, run the notebook or \
                 examples/own-project, which make one of each"
            ),
        }),
        local => Ok(local),
    }
}

/// A path relative to the repository root, wherever the test runs from.
pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The chapter this process renamed the demo's resources for (a doctest is
/// a process of its own, so there is at most one). [`record`] names them
/// back, so the book shows the names a reader's own run gives.
static CHAPTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The name a chapter's doctest uses in place of `s3-to-redshift-demo`: the
/// chapter's name and a hash of it, exactly as long as the demo's name, so
/// that [`record`] can name it back without moving a column of a printed
/// table. Lowercase letters, digits and single hyphens: valid for a bucket,
/// a role and a cluster identifier alike.
///
/// ```
/// let name = s3_to_redshift::tutorial::resource_name("copy-errors");
/// assert_eq!(name.len(), "s3-to-redshift-demo".len());
/// assert!(name.starts_with("copy-error"));
/// assert_ne!(name, s3_to_redshift::tutorial::resource_name("copy-errors-2"));
/// ```
pub fn resource_name(chapter: &str) -> String {
    const DEMO: &str = "s3-to-redshift-demo";
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let hash = chapter.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let prefix: String = chapter.chars().take(10).collect();
    let prefix = prefix.trim_end_matches('-');
    let mut name = format!("{prefix}-{hash:016x}{hash:016x}");
    name.truncate(DEMO.len());
    name
}

/// `examples/pipeline.cfg` with every `s3-to-redshift-demo` name replaced by
/// [`resource_name`]`(chapter)`, so that chapters do not share resources.
///
/// Refuses (see [`book_destination_from`]) unless the requests the chapter
/// goes on to send would reach the local stack.
pub fn config(chapter: &str) -> Result<Config> {
    config_with(chapter, &[])
}

/// [`config`] with some values changed: `(section, key, value)`.
pub fn config_with(chapter: &str, overrides: &[(&str, &str, &str)]) -> Result<Config> {
    book_destination_from(|k| std::env::var(k).ok())?;
    let _ = CHAPTER.set(chapter.to_string());
    let file = path("examples/pipeline.cfg");
    let text =
        std::fs::read_to_string(&file).map_err(|source| crate::error::ConfigError::Read {
            path: file.clone(),
            source,
        })?;
    // The demo's names are renamed in the file and in the overrides alike.
    let rename = |t: &str| t.replace("s3-to-redshift-demo", &resource_name(chapter));
    let mut doc = crate::config::Document::parse(&rename(&text), file)?;
    for (section, key, value) in overrides {
        doc.set(section, key, &rename(value));
    }
    Ok(doc.config(Some(PASSWORD.into()))?)
}

/// Puts `body` at `key` in the chapter's bucket (created if needed).
pub async fn put(p: &Pipeline, key: &str, body: impl Into<Vec<u8>>) -> Result<()> {
    upload(&p.clients.s3, &p.cfg.s3.source.bucket, key, body.into()).await
}

// ANCHOR: upload
/// Puts `body` at `s3://bucket/key`, creating the bucket first if there is
/// none of that name.
///
/// `HeadBucket` answers 404 for a bucket nobody has, and 403 for someone
/// else's: bucket names are global, so only "not found" means "create it".
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
            let mut create = s3.create_bucket().bucket(bucket);
            // Outside us-east-1 a bucket must name its region.
            let region = s3.config().region().map(|r| r.to_string());
            if let Some(region) = region.filter(|r| r != "us-east-1") {
                use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
                let location = BucketLocationConstraint::from(region.as_str());
                let config = CreateBucketConfiguration::builder().location_constraint(location);
                create = create.create_bucket_configuration(config.build());
            }
            create
                .send()
                .await
                .map_err(|e| crate::Error::aws("S3", "CreateBucket", bucket, e))?;
        }
        Err(e) => return Err(crate::Error::aws("S3", "HeadBucket", bucket, e)),
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .map_err(|e| crate::Error::aws("S3", "PutObject", format!("s3://{bucket}/{key}"), e))?;
    Ok(())
}
// ANCHOR_END: upload

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

/// The chapter's config and the SDK clients: what a step chapter's hidden
/// lines start from, where the notebook carries `cfg` and `clients` over
/// from its first cells.
pub async fn start(chapter: &str) -> Result<(Config, crate::aws::Clients)> {
    let cfg = config(chapter)?;
    let clients = crate::aws::Clients::new(&cfg).await?;
    Ok((cfg, clients))
}

#[cfg(feature = "book-record")]
/// Replaces what changes from run to run by a fixed placeholder: statement
/// ids (UUIDs) become `<statement-id>`, times of loads `<time> UTC`, the
/// 12-character id in a cluster's endpoint (`name.abc123def456.us-east-1.redshift…`)
/// `<id>`, and the free port the local stack picked (`127.0.0.1:38211`) `<port>`.
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
        // A loopback address's port.
        if text[i..].starts_with("127.0.0.1:") && bytes.get(i + 10).is_some_and(u8::is_ascii_digit)
        {
            out.push_str("127.0.0.1:<port>");
            i += 10;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
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

#[cfg(feature = "book-record")]
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
    let mut printed = printed.replace("000000000000", "123456789012");
    if let Some(chapter) = CHAPTER.get() {
        printed = printed.replace(&resource_name(chapter), "s3-to-redshift-demo");
    }
    let text = normalize(&printed);
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
/// this library, and gives back what it produced, so that the next cells
/// can use it (`let role_arn = block_on(async { … })`).
///
/// Why not evcxr's own top-level `.await`? evcxr compiles every cell as a
/// crate of its own, and a runtime started by one cell is not the one that
/// code compiled for a later cell finds: the HTTP client's timers then panic
/// with "there is no reactor running". A runtime created here, by the code
/// the cell itself calls, is always the one its futures use, and the SDK
/// clients made in one cell keep working in the next. An error ends the
/// cell with a panic that says so, which the notebook's runner reports; the
/// variables of earlier cells are kept (`:preserve_vars_on_panic 1`).
pub fn block_on<T, F>(cell: F) -> T
where
    F: std::future::Future<Output = std::result::Result<T, BoxError>>,
{
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    match rt.block_on(cell) {
        Ok(value) => value,
        Err(e) => panic!("Error: {e}"),
    }
}

/// The notebook's first step: says where the requests will go, refuses a
/// real account the reader did not opt in to, and makes the paths in the
/// cells (`examples/pipeline.cfg`) resolve from the repository's root,
/// whichever folder the kernel started in. Safe to run again.
///
/// On the local stack, a stand-in cluster password is set for the session
/// when none is (the emulator stores it and nothing else sees it); on AWS
/// the reader must set `S3_TO_REDSHIFT_DB_PASSWORD` themselves.
pub fn notebook_start() -> Result<Destination> {
    let to = destination()?;
    let root = path("");
    if std::env::current_dir().ok().as_deref() != Some(root.as_path()) {
        std::env::set_current_dir(&root).map_err(|source| crate::error::ConfigError::Read {
            path: root.clone(),
            source,
        })?;
    }
    let password_set = std::env::var_os(crate::config::PASSWORD_ENV).is_some();
    match (&to, password_set) {
        (Destination::Local(_), false) => {
            // SAFETY: the notebook's first cell runs before any thread of
            // ours reads the environment; the runtime is single-threaded.
            unsafe { std::env::set_var(crate::config::PASSWORD_ENV, PASSWORD) };
        }
        (Destination::Aws, false) => {
            return Err(crate::error::Error::Refused {
                action: "create",
                kind: "a cluster",
                name: "on AWS".into(),
                reason: format!(
                    "no admin password is set: export {}='…' (8-64 characters, upper and \
                     lower case and a digit) before starting Jupyter",
                    crate::config::PASSWORD_ENV
                ),
            });
        }
        _ => {}
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::{Destination, book_destination_from, destination_from};

    #[test]
    fn only_loopback_endpoints_count_as_local() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let local = destination_from(env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://localhost:5001/"),
        ]))
        .unwrap();
        assert!(
            local
                .to_string()
                .contains("Redshift Data API at http://localhost:5001/")
        );
        assert!(
            local
                .to_string()
                .starts_with("the local stack (IAM, S3, STS, Redshift, Redshift Serverless at")
        );
        assert!(matches!(
            destination_from(env(&[("AWS_ENDPOINT_URL", "http://[::1]:5000")])),
            Ok(Destination::Local(_))
        ));
        // One service left to the real endpoint is enough to refuse.
        let err = destination_from(env(&[
            ("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("STS, Redshift, Redshift Serverless, Redshift Data API would reach a real AWS account"),
            "{err}"
        );
        assert!(err.contains("S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1"), "{err}");
        // A host that merely starts with "localhost" or "127." is not
        // loopback, nor a real host behind loopback-looking user information.
        assert!(destination_from(env(&[("AWS_ENDPOINT_URL", "http://127.example.com")])).is_err());
        assert!(
            destination_from(env(&[(
                "AWS_ENDPOINT_URL",
                "http://127.0.0.1@example.com/"
            )]))
            .is_err()
        );
        assert!(matches!(
            destination_from(env(&[("AWS_ENDPOINT_URL", "http://127.0.0.2:9000")])),
            Ok(Destination::Local(_))
        ));
        assert!(
            destination_from(env(&[(
                "AWS_ENDPOINT_URL",
                "https://localhost.example.com"
            )]))
            .is_err()
        );
        assert!(
            destination_from(env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
            ]))
            .is_err()
        );
        // The book's examples never run on AWS, opted in or not.
        let err = book_destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("local stack only"), "{err}");
        assert!(matches!(
            book_destination_from(env(&[("AWS_ENDPOINT_URL", "http://localhost:5000")])),
            Ok(Destination::Local(_))
        ));
        assert_eq!(
            destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "1")])).unwrap(),
            Destination::Aws
        );
        // Opting in is explicit: `1`, nothing else.
        assert!(destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "yes")])).is_err());
        assert!(destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "true")])).is_err());
        assert!(destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "0")])).is_err());
        assert!(destination_from(env(&[("S3_TO_REDSHIFT_TUTORIAL_ON_AWS", "")])).is_err());
    }
    #[cfg(feature = "book-record")]
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
