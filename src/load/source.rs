//! What is at the source: the objects under the prefix or in the
//! manifest, and their fingerprint for the ledger.

use crate::config::S3Uri;
use crate::error::{Error, Result};

/// What is at the source location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSummary {
    /// Objects COPY will read: those whose key starts with the configured
    /// key, or those a manifest lists.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// A digest of every object's key, size and ETag. Two listings with the
    /// same fingerprint name the same data, which is how `append` knows it
    /// has loaded these objects before. (FNV-1a: this detects change, it is
    /// not a security check.)
    pub fingerprint: String,
}

/// FNV-1a, 64 bits: tiny, stable across Rust versions and platforms (unlike
/// `std`'s `DefaultHasher`, whose output may change between releases).
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

/// Builds a [`SourceSummary`] from `(key, size, etag)` of each object.
pub fn summarise(mut objects: Vec<(String, u64, String)>) -> SourceSummary {
    objects.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for (key, size, etag) in &objects {
        fnv1a(&mut hash, key.as_bytes());
        fnv1a(&mut hash, &[0]);
        fnv1a(&mut hash, size.to_string().as_bytes());
        fnv1a(&mut hash, &[0]);
        fnv1a(&mut hash, etag.as_bytes());
        fnv1a(&mut hash, b"\n");
    }
    SourceSummary {
        objects: objects.len() as u64,
        bytes: objects.iter().map(|o| o.1).sum(),
        fingerprint: format!("{hash:016x}"),
    }
}

/// Lists the objects COPY will read (every page), so that a wrong path is a
/// clear error before any SQL runs rather than a COPY failure later.
///
/// With `manifest`, `uri` is a manifest: it is read, and each object it
/// lists is looked up (a `mandatory` one that is missing is an error, as
/// COPY would make it).
pub async fn inspect_source(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    manifest: bool,
) -> Result<SourceSummary> {
    let objects = if manifest {
        manifest_objects(s3, uri).await?
    } else {
        list_objects(s3, uri).await?
    };
    let summary = summarise(objects);
    if summary.objects == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: if manifest {
                "the manifest lists no object that exists; check its `entries`".into()
            } else {
                "no object has this key or starts with it; upload the data first, or fix [S3] SOURCE".into()
            },
        });
    }
    if summary.bytes == 0 {
        return Err(Error::Source {
            uri: uri.to_string(),
            reason: format!(
                "the {} object(s) here are all empty; there is nothing to load",
                summary.objects
            ),
        });
    }
    Ok(summary)
}

async fn list_objects(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Vec<(String, u64, String)>> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(&uri.bucket)
        .prefix(&uri.key)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => {
                return Err(Error::Source {
                    uri: uri.to_string(),
                    reason: format!("bucket `{}` does not exist; check [S3] SOURCE", uri.bucket),
                });
            }
            Err(e) => return Err(Error::aws("S3", "ListObjectsV2", uri.to_string(), e)),
        };
        for o in page.contents() {
            out.push((
                o.key().unwrap_or_default().to_string(),
                o.size().unwrap_or_default().max(0) as u64,
                o.e_tag().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(out)
}

async fn manifest_objects(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
) -> Result<Vec<(String, u64, String)>> {
    let source_err = |reason: String| Error::Source {
        uri: uri.to_string(),
        reason,
    };
    let folder = match uri.key.rfind('/') {
        Some(i) => uri.key[..=i].to_string(),
        None => String::new(),
    };
    let got = s3
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) if se.is_no_such_key() => source_err(
                "the manifest does not exist; write it first, or set [S3] MANIFEST = false".into(),
            ),
            _ => Error::aws("S3", "GetObject", uri.to_string(), e),
        })?;
    let body = got
        .body
        .collect()
        .await
        .map_err(|e| source_err(format!("reading the manifest failed: {e}")))?
        .into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        source_err(format!(
            "is not a manifest: {e}; expected {{\"entries\": [{{\"url\": \"s3://…\", \"mandatory\": true}}]}}"
        ))
    })?;
    let entries = doc
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| source_err("is not a manifest: it has no `entries` list".into()))?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let url = entry
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| source_err(format!("manifest entry {i} has no `url`")))?;
        let mandatory = entry
            .get("mandatory")
            .and_then(|m| m.as_bool())
            .unwrap_or(false);
        let part = S3Uri::parse(url)
            .map_err(|m| source_err(format!("manifest entry {i}: `{url}` {m}")))?;
        // The role's read policy covers the manifest's folder (see
        // `S3Settings::readable`); an entry elsewhere would fail in COPY with
        // a bare Access Denied.
        if part.bucket != uri.bucket || !part.key.starts_with(&folder) {
            return Err(source_err(format!(
                "manifest entry {i}, `{url}`, is outside the manifest's folder s3://{}/{folder}, which is \
                 what the role may read; put the parts beside the manifest",
                uri.bucket
            )));
        }
        match s3
            .head_object()
            .bucket(&part.bucket)
            .key(&part.key)
            .send()
            .await
        {
            Ok(h) => out.push((
                url.to_string(),
                h.content_length().unwrap_or_default().max(0) as u64,
                h.e_tag().unwrap_or_default().to_string(),
            )),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => {
                if mandatory {
                    return Err(source_err(format!(
                        "manifest entry {i}, `{url}`, is mandatory and does not exist"
                    )));
                }
                tracing::warn!("manifest entry {i}, {url}, does not exist; COPY will skip it");
            }
            Err(e) => return Err(Error::aws("S3", "HeadObject", url, e)),
        }
    }
    Ok(out)
}
