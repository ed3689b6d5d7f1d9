//! Staging at scale: a local file split into gzip parts, uploaded in
//! parallel with a manifest, then loaded (`s3-to-redshift stage FILE`).
//!
//! Why split at all? Redshift's `COPY` reads one file per slice at a time.
//! A single large file keeps one slice busy while the others wait; the same
//! data in as many equal parts as the cluster has slices (or a multiple) is
//! read by all of them at once. gzip makes the parts several times smaller
//! to upload, and COPY unpacks them on the slices. The manifest names the
//! exact parts, so a load never picks up a stray object under the prefix.
//!
//! How the parts are cut: a first pass over the file finds record
//! boundaries (a newline outside quotes, so a quoted field with a line
//! break stays whole) near every `size / parts` bytes. Then the parts are
//! compressed in parallel, one per core, and each is uploaded as soon as it
//! is ready (multipart upload in 8 MiB chunks for large ones). The header
//! line(s) go at the top of every part, since `IGNOREHEADER` applies per
//! file.
//!
//! Where they go: `[S3] STAGE_PREFIX` + `<schema>.<table>/<file>-<digest>/`.
//! The digest is of the file's size and modification time, and gzip output
//! here is deterministic, so staging the same file again writes the same
//! objects (same ETags): in `append` mode the ledger then knows them and
//! the rows are not appended twice.

use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::sync::Semaphore;

use crate::config::{Config, S3Uri, TargetSettings};
use crate::error::{Error, Result};
use crate::report::{Activity, Observer, OpenUpload};

/// The uncompressed size a part aims at, before rounding the part count up
/// to a multiple of the slices.
pub const TARGET_PART_BYTES: u64 = 128 * 1024 * 1024;

/// Multipart chunk size (S3's minimum is 5 MiB; 8 MiB is the SDKs' usual).
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Slices per node for a node type, as AWS documents them; 2 for types
/// not listed (the smallest there is), which only means fewer parts.
///
/// ```
/// use s3_to_redshift::stage::slices_per_node;
/// assert_eq!(slices_per_node("ra3.large"), 2);
/// assert_eq!(slices_per_node("ra3.4xlarge"), 4);
/// assert_eq!(slices_per_node("dc2.8xlarge"), 16);
/// ```
pub fn slices_per_node(node_type: &str) -> u32 {
    match node_type {
        "ra3.16xlarge" | "dc2.8xlarge" | "ds2.8xlarge" => 16,
        "ra3.4xlarge" => 4,
        _ => 2,
    }
}

/// The target's slices: per node times nodes for a cluster. A Serverless
/// workgroup publishes no slice count; it is counted as the smallest
/// cluster's two, so small files still load as a few parts and large ones
/// are split by size ([`TARGET_PART_BYTES`]) anyway.
pub fn slices(target: &TargetSettings) -> u32 {
    match target {
        TargetSettings::Cluster(c) => slices_per_node(&c.node_type) * c.num_nodes.max(1),
        TargetSettings::Serverless(_) => 2,
    }
}

/// How many parts for `bytes` of data on `slices` slices: a multiple of the
/// slices, each near [`TARGET_PART_BYTES`].
///
/// ```
/// use s3_to_redshift::stage::part_count;
/// assert_eq!(part_count(10_000, 2), 2);            // small: one per slice
/// assert_eq!(part_count(1 << 30, 2), 8);           // 1 GiB: 8 × 128 MiB
/// assert_eq!(part_count(1 << 30, 16), 16);
/// ```
pub fn part_count(bytes: u64, slices: u32) -> u32 {
    let slices = slices.max(1);
    let per_round = u64::from(slices) * TARGET_PART_BYTES;
    let rounds = bytes.div_ceil(per_round).max(1);
    slices * rounds as u32
}

/// Where a staged file's parts go.
pub fn stage_folder(cfg: &Config, file: &Path, digest: &str) -> Result<S3Uri> {
    let Some(prefix) = &cfg.s3.stage_prefix else {
        return Err(crate::error::ConfigError::Invalid {
            path: cfg.path.clone(),
            problems: vec![crate::error::Problem {
                section: "S3".into(),
                key: "STAGE_PREFIX".into(),
                message: "is needed by `stage`: a folder such as `s3://my-bucket/staging/` for the parts; \
                          set it, then run `up` so the role may read it"
                    .into(),
            }],
        }
        .into());
    };
    let stem: String = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(S3Uri {
        bucket: prefix.bucket.clone(),
        key: format!(
            "{}{}.{}/{stem}-{digest}/",
            prefix.key,
            cfg.table.name.schema.as_str(),
            cfg.table.name.table.as_str()
        ),
    })
}

/// Byte ranges `[start, end)` of each part's records (after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The header lines, copied to the top of every part.
    pub header: Vec<u8>,
    /// The parts' ranges in the file.
    pub ranges: Vec<(u64, u64)>,
}

/// Finds record boundaries near every `len / parts` bytes of `reader`,
/// skipping `header_lines` records first. A newline inside `quote`s does not
/// end a record.
pub fn split_points(
    mut reader: impl Read,
    len: u64,
    parts: u32,
    header_lines: u32,
    quote: u8,
) -> std::io::Result<Split> {
    let mut header = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: u64 = 0;
    let mut in_quotes = false;
    let mut records_left_in_header = header_lines;
    let mut data_start = 0u64;
    let mut cuts = Vec::new();
    let body_len = |start: u64| len.saturating_sub(start);
    // Without a header the first cut is known at once; with one, once the
    // header has been read.
    let mut next_cut = if header_lines == 0 {
        (len / u64::from(parts.max(1))).max(1)
    } else {
        u64::MAX
    };
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = pos + i as u64;
            if records_left_in_header > 0 {
                header.push(b);
            }
            if b == quote {
                in_quotes = !in_quotes;
            } else if b == b'\n' && !in_quotes {
                if records_left_in_header > 0 {
                    records_left_in_header -= 1;
                    if records_left_in_header == 0 {
                        data_start = at + 1;
                        let step = body_len(data_start) / u64::from(parts.max(1));
                        next_cut = data_start + step.max(1);
                    }
                } else if at + 1 >= next_cut && cuts.len() + 1 < parts as usize {
                    cuts.push(at + 1);
                    let step = body_len(data_start) / u64::from(parts.max(1));
                    next_cut = data_start + step.max(1) * (cuts.len() as u64 + 1);
                }
            }
        }
        pos += n as u64;
    }
    let mut bounds = vec![data_start];
    bounds.extend(cuts);
    bounds.push(pos);
    let ranges = bounds
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(a, b)| b > a)
        .collect();
    Ok(Split { header, ranges })
}

/// gzip of `header` then `file[start..end)`, handed to `send` in pieces of
/// exactly [`CHUNK_BYTES`] as they fill (the last one shorter, never
/// empty), so that one piece is uploaded while the next is compressed.
/// Deterministic: no file name and a zero timestamp in the gzip header, so
/// the same input gives the same bytes, the same pieces (and so the same
/// multipart ETag) every time.
fn compress_part(
    path: &Path,
    header: &[u8],
    start: u64,
    end: u64,
    send: impl FnMut(Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    /// Collects the gzip stream and passes it on a chunk at a time.
    struct Chunks<F> {
        buf: Vec<u8>,
        send: F,
    }
    impl<F: FnMut(Vec<u8>) -> std::io::Result<()>> Write for Chunks<F> {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.buf.extend_from_slice(data);
            while self.buf.len() >= CHUNK_BYTES {
                let rest = self.buf.split_off(CHUNK_BYTES);
                (self.send)(std::mem::replace(&mut self.buf, rest))?;
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(1 << 20, file.take(end - start));
    let chunks = Chunks {
        buf: Vec::with_capacity(CHUNK_BYTES),
        send,
    };
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        // Level 2 of zlib-rs: measured on the benchmarks' CSV, a fifth of
        // the size at 370 MB/s a core, where level 1 (its quick strategy)
        // leaves a third and level 6 is three times slower for the same size.
        .write(chunks, flate2::Compression::new(2));
    enc.write_all(header)?;
    std::io::copy(&mut reader, &mut enc)?;
    let mut chunks = enc.finish()?;
    if !chunks.buf.is_empty() {
        (chunks.send)(std::mem::take(&mut chunks.buf))?;
    }
    Ok(())
}

/// What `stage` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageReport {
    /// The cluster's slices the part count is based on.
    pub slices: u32,
    /// The parts, as `s3://` URIs, in order.
    pub parts: Vec<String>,
    /// The manifest's location.
    pub manifest: S3Uri,
    /// The file's size.
    pub raw_bytes: u64,
    /// The parts' total (compressed) size.
    pub uploaded_bytes: u64,
}

/// The digest in the folder name: the file's size and modification time.
fn file_digest(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let summary = crate::load::summarise(vec![(String::new(), meta.len(), mtime.to_string())]);
    summary.fingerprint[..12].to_string()
}

/// Splits, compresses and uploads `file`, then writes the manifest. Does not
/// load: see [`crate::Pipeline::stage`].
pub async fn upload(
    cfg: &Config,
    s3: &aws_sdk_s3::Client,
    file: &Path,
    observer: &dyn Observer,
    activity: &Activity,
) -> Result<StageReport> {
    let io_err = |what: &str, e: std::io::Error| Error::Source {
        uri: file.display().to_string(),
        reason: format!("{what}: {e}"),
    };
    let meta = std::fs::metadata(file).map_err(|e| io_err("cannot read the file", e))?;
    if meta.len() == 0 {
        return Err(io_err(
            "nothing to stage",
            std::io::Error::other("the file is empty"),
        ));
    }
    let folder = stage_folder(cfg, file, &file_digest(&meta))?;
    activity.staging(Some((&folder.bucket, &folder.key)));
    let slices = slices(&cfg.target);
    let parts = part_count(meta.len(), slices);
    observer.progress("finding record boundaries", 0, 1);
    let split = find_splits(cfg, file, meta.len(), parts)
        .await
        .map_err(|e| io_err("reading the file failed", e))?;
    observer.progress("finding record boundaries", 1, 1);

    // Compress on every core, and upload each part as it is compressed, a
    // chunk at a time: on a slow link the upload, not the compression, sets
    // the pace, and the two overlap. Each part holds at most four chunks
    // in memory (one filling, one in the channel, two in the uploader).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let compressing = Arc::new(Semaphore::new(cores));
    let header = Arc::new(split.header.clone());
    let total_raw: u64 = split.ranges.iter().map(|(a, b)| b - a).sum();
    let done_raw = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // A JoinSet, so that the first failure can stop the other parts: a
    // dropped JoinHandle would leave its task uploading.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (start, end)) in split.ranges.iter().copied().enumerate() {
        let key = format!("{}part-{i:04}.csv.gz", folder.key);
        let (s3, bucket) = (s3.clone(), folder.bucket.clone());
        let (compressing, header) = (compressing.clone(), header.clone());
        let path = file.to_path_buf();
        let done_raw = done_raw.clone();
        let activity = activity.clone();
        tasks.spawn(async move {
            let stopped = || std::io::Error::other("the upload stopped");
            let _cpu = compressing.acquire_owned().await.map_err(|_| stopped())?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(1);
            let compressor = tokio::task::spawn_blocking(move || {
                let stopped = || std::io::Error::other("the upload stopped");
                let done = compress_part(&path, &header, start, end, |chunk| {
                    tx.blocking_send(Piece::Chunk(chunk)).map_err(|_| stopped())
                });
                // The upload completes only on `End`: a failure (or a panic,
                // which sends nothing) aborts it rather than leaving what
                // came before as the whole part.
                let _ = tx.blocking_send(match done {
                    Ok(()) => Piece::End,
                    Err(e) => Piece::Failed(e),
                });
            });
            let sent = put(&s3, &bucket, &key, rx, &activity).await;
            compressor
                .await
                .map_err(|e| std::io::Error::other(format!("compression failed: {e}")))?;
            let size = sent.map_err(std::io::Error::other)?;
            done_raw.fetch_add(end - start, std::sync::atomic::Ordering::Relaxed);
            Ok::<(usize, String, u64), std::io::Error>((i, format!("s3://{bucket}/{key}"), size))
        });
    }
    let progress = |done: u64| {
        observer.progress(
            "compressing and uploading parts",
            done.min(total_raw),
            total_raw,
        )
    };
    let gathered = gather(tasks, &folder, &done_raw, progress, observer).await;
    let (uploaded, uploaded_bytes) = match gathered {
        Ok(done) => done,
        Err(e) => {
            // The other parts are stopped (gather aborted them); what they
            // had opened is aborted too, so nothing is left to be billed.
            abort_open_uploads(s3, activity).await;
            activity.staging(None);
            return Err(e);
        }
    };
    let manifest = write_manifest(s3, &folder, &uploaded).await?;
    activity.staging(None);
    observer.wait_over();
    Ok(StageReport {
        slices,
        parts: uploaded,
        manifest,
        raw_bytes: meta.len(),
        uploaded_bytes,
    })
}

/// A part's upload task: its index, `s3://` URI and compressed size.
type PartTasks = tokio::task::JoinSet<std::io::Result<(usize, String, u64)>>;

/// Waits for the part uploads, reporting progress as they finish; returns
/// their URIs in part order and the bytes sent. On the first failure the
/// other parts are aborted, and waited for until they have stopped.
async fn gather(
    mut tasks: PartTasks,
    folder: &S3Uri,
    done_raw: &std::sync::atomic::AtomicU64,
    progress: impl Fn(u64),
    observer: &dyn Observer,
) -> Result<(Vec<String>, u64)> {
    let count = tasks.len();
    let mut uploaded = vec![String::new(); count];
    let mut uploaded_bytes = 0;
    let mut finished = 0u64;
    while let Some(joined) = tasks.join_next().await {
        let part = joined
            .map_err(|e| std::io::Error::other(format!("the part's task failed: {e}")))
            .and_then(|r| r);
        match part {
            Ok((i, uri, size)) => {
                uploaded_bytes += size;
                uploaded[i] = uri;
                finished += 1;
                progress(done_raw.load(std::sync::atomic::Ordering::Relaxed));
                observer.progress("parts uploaded", finished, count as u64);
            }
            Err(e) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Err(Error::Source {
                    uri: folder.to_string(),
                    reason: format!("staging a part failed: {e}"),
                });
            }
        }
    }
    Ok((uploaded, uploaded_bytes))
}

/// Aborts every multipart upload `activity` holds as open, and any other
/// under the stage's prefix: what a failed or interrupted stage started
/// (an upload whose creation was under way when its task was stopped is
/// recorded nowhere, but S3 lists it). Best effort, each within 10 seconds.
///
/// Returns how many it aborted.
pub async fn abort_open_uploads(s3: &aws_sdk_s3::Client, activity: &Activity) -> usize {
    let doing = activity.now();
    let mut open = doing.uploads;
    if let Some((bucket, prefix)) = &doing.staging {
        let listed = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send();
        if let Ok(Ok(out)) = tokio::time::timeout(std::time::Duration::from_secs(10), listed).await
        {
            for u in out.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                if !open.iter().any(|o| o.upload_id == id) {
                    open.push(OpenUpload {
                        bucket: bucket.clone(),
                        key: key.to_string(),
                        upload_id: id.to_string(),
                    });
                }
            }
        }
    }
    let mut aborted = 0;
    for u in open {
        let abort = s3
            .abort_multipart_upload()
            .bucket(&u.bucket)
            .key(&u.key)
            .upload_id(&u.upload_id)
            .send();
        match tokio::time::timeout(std::time::Duration::from_secs(10), abort).await {
            Ok(Ok(_)) => {
                activity.upload_closed(&u.upload_id);
                aborted += 1;
            }
            Ok(Err(e)) => tracing::warn!(
                "could not abort the upload of s3://{}/{}: {}",
                u.bucket,
                u.key,
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ),
            Err(_) => tracing::warn!(
                "no answer within 10 s to aborting s3://{}/{}",
                u.bucket,
                u.key
            ),
        }
    }
    aborted
}

/// The record boundaries of `file` for `parts` parts, found off the async
/// threads: reading a large file would otherwise stall every other task.
async fn find_splits(cfg: &Config, file: &Path, len: u64, parts: u32) -> std::io::Result<Split> {
    let quote = u8::try_from(cfg.load.quote).unwrap_or(b'"');
    let header_lines = cfg.load.ignore_header;
    let path: PathBuf = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path)?;
        split_points(BufReader::new(f), len, parts, header_lines, quote)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("finding the record boundaries failed: {e}")))?
}

/// Writes the manifest listing `parts` (each mandatory, so a missing part
/// fails the COPY instead of loading less) into `folder`.
async fn write_manifest(
    s3: &aws_sdk_s3::Client,
    folder: &S3Uri,
    parts: &[String],
) -> Result<S3Uri> {
    let entries: Vec<serde_json::Value> = parts
        .iter()
        .map(|u| serde_json::json!({"url": u, "mandatory": true}))
        .collect();
    let manifest = S3Uri {
        bucket: folder.bucket.clone(),
        key: format!("{}manifest.json", folder.key),
    };
    let doc = serde_json::to_vec_pretty(&serde_json::json!({ "entries": entries }))
        .expect("JSON serialises");
    s3.put_object()
        .bucket(&manifest.bucket)
        .key(&manifest.key)
        .content_type("application/json")
        .body(ByteStream::from(doc))
        .send()
        .await
        .map_err(|e| Error::aws("S3", "PutObject", manifest.to_string(), e))?;
    Ok(manifest)
}

/// What the compressor hands the uploader of its part.
enum Piece {
    /// The next chunk of the gzip stream.
    Chunk(Vec<u8>),
    /// The stream is whole: the upload may be completed.
    End,
    /// Compression failed: the upload is aborted.
    Failed(std::io::Error),
}

/// Uploads one part from the chunks `compress_part` sends, returning its
/// size: a single `PutObject` when it is one chunk, else a multipart upload
/// of a chunk per part, each sent as soon as it arrives, aborted if one
/// fails (so no half-uploaded part is left to be billed).
async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    mut chunks: tokio::sync::mpsc::Receiver<Piece>,
    activity: &Activity,
) -> std::result::Result<u64, String> {
    let uri = format!("s3://{bucket}/{key}");
    let show = |op: &str, e: &dyn std::fmt::Display| format!("S3 {op} on {uri} failed: {e}");
    // The next chunk, `None` at the end of the stream, or why there is none.
    let mut next_chunk = async || match chunks.recv().await {
        Some(Piece::Chunk(chunk)) => Ok(Some(chunk)),
        Some(Piece::End) => Ok(None),
        Some(Piece::Failed(e)) => Err(format!("the part for {uri} could not be compressed: {e}")),
        None => Err(format!("the compression of the part for {uri} stopped")),
    };
    let first = next_chunk()
        .await?
        .ok_or_else(|| format!("nothing to upload to {uri}"))?;
    let Some(second) = next_chunk().await? else {
        let size = first.len() as u64;
        return s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(first))
            .send()
            .await
            .map(|_| size)
            .map_err(|e| show("PutObject", &aws_sdk_s3::error::DisplayErrorContext(e)));
    };
    let created = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            show(
                "CreateMultipartUpload",
                &aws_sdk_s3::error::DisplayErrorContext(e),
            )
        })?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    // Recorded until completed or aborted: if this task is aborted, or the
    // run stopped, whoever stops it aborts the upload.
    activity.upload_opened(OpenUpload {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: upload_id.clone(),
    });
    let mut completed = Vec::new();
    let mut size = 0u64;
    let abort = async || {
        let aborted = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
        if aborted.is_ok() {
            activity.upload_closed(&upload_id);
        }
    };
    let mut next = Some(first);
    let mut waiting = Some(second);
    while let Some(chunk) = next.take() {
        let number = completed.len() as i32 + 1;
        size += chunk.len() as u64;
        match s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(chunk))
            .send()
            .await
        {
            Ok(out) => completed.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            ),
            Err(e) => {
                abort().await;
                return Err(show(
                    "UploadPart",
                    &aws_sdk_s3::error::DisplayErrorContext(e),
                ));
            }
        }
        next = match waiting.take() {
            Some(chunk) => Some(chunk),
            None => match next_chunk().await {
                Ok(chunk) => chunk,
                Err(e) => {
                    abort().await;
                    return Err(e);
                }
            },
        };
    }
    let done = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await;
    if done.is_ok() {
        activity.upload_closed(&upload_id);
    }
    done.map(|_| size).map_err(|e| {
        show(
            "CompleteMultipartUpload",
            &aws_sdk_s3::error::DisplayErrorContext(e),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_of(data: &str, parts: u32, header: u32) -> (String, Vec<String>) {
        let split = split_points(data.as_bytes(), data.len() as u64, parts, header, b'"').unwrap();
        let pieces = split
            .ranges
            .iter()
            .map(|(a, b)| data[*a as usize..*b as usize].to_string())
            .collect();
        (String::from_utf8(split.header).unwrap(), pieces)
    }

    #[test]
    fn parts_are_cut_at_record_ends_and_cover_everything_once() {
        let data = "h1,h2\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n";
        let (header, pieces) = parts_of(data, 3, 1);
        assert_eq!(header, "h1,h2\n");
        assert_eq!(pieces.concat(), &data[6..], "every record once, in order");
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.ends_with('\n')));
    }

    #[test]
    fn a_newline_inside_quotes_does_not_end_a_record() {
        let data = "id,note\n1,\"line one\nline two\"\n2,x\n";
        let (_, pieces) = parts_of(data, 8, 1);
        assert_eq!(pieces.concat(), &data[8..]);
        assert!(
            pieces.iter().all(|p| p.matches('"').count() % 2 == 0),
            "{pieces:?}"
        );
    }

    #[test]
    fn no_header_and_no_final_newline_are_fine() {
        let data = "1,a\n2,b\n3,c";
        let (header, pieces) = parts_of(data, 2, 0);
        assert!(header.is_empty());
        assert_eq!(pieces.concat(), data);
        assert_eq!(pieces, ["1,a\n2,b\n", "3,c"], "cut near the middle");
    }

    #[test]
    fn compression_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, "a\n1\n2\n").unwrap();
        let compress = || {
            let mut chunks = Vec::new();
            compress_part(&path, b"a\n", 2, 6, |c| {
                chunks.push(c);
                Ok(())
            })
            .unwrap();
            assert_eq!(chunks.len(), 1, "a small part is one chunk");
            chunks.remove(0)
        };
        let (one, two) = (compress(), compress());
        assert_eq!(one, two);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "a\n1\n2\n");
    }

    /// A part larger than a chunk comes out in pieces of exactly
    /// CHUNK_BYTES and a shorter, non-empty last one (what makes a
    /// multipart upload's ETag the same each time), which together are the
    /// whole gzip stream.
    #[test]
    fn a_large_part_comes_out_in_whole_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        // Incompressible, so that 20 MiB of input is over two chunks out.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..20 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut chunks = Vec::new();
        compress_part(&path, b"", 0, data.len() as u64, |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
        let (last, whole) = chunks.split_last().unwrap();
        assert!(whole.len() >= 2, "{} chunks", chunks.len());
        assert!(whole.iter().all(|c| c.len() == CHUNK_BYTES));
        assert!(!last.is_empty() && last.len() <= CHUNK_BYTES);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&chunks.concat()[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data, "the chunks are the whole stream");
    }
}
