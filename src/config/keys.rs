//! Which keys each section takes, and the classic tutorial's aliases for
//! them. One table, read by the reader (to file each value under its
//! canonical place) and by [`Document::set`](super::Document::set) (to
//! replace a value whichever spelling the file used).

/// The canonical sections and their keys.
pub(super) const SCHEMA: &[(&str, &[&str])] = &[
    (
        "AWS",
        &[
            "REGION",
            "PROFILE",
            "MAX_ATTEMPTS",
            "RETRY_MODE",
            "INITIAL_BACKOFF_MS",
            "CONNECT_TIMEOUT_SECS",
            "ATTEMPT_TIMEOUT_SECS",
            "KEY",
            "SECRET",
        ],
    ),
    ("IAM", &["ROLE_NAME", "POLICY_NAME", "ON_EXISTING"]),
    (
        "CLUSTER",
        &[
            "IDENTIFIER",
            "CLUSTER_TYPE",
            "NODE_TYPE",
            "NUM_NODES",
            "DB_NAME",
            "DB_USER",
            "DB_PASSWORD",
            "PORT",
            "PUBLICLY_ACCESSIBLE",
            "ON_EXISTING",
            "WAIT_TIMEOUT_SECS",
            "POLL_INTERVAL_SECS",
        ],
    ),
    ("S3", &["SOURCE", "REGION", "MANIFEST", "STAGE_PREFIX"]),
    (
        "SERVERLESS",
        &[
            "WORKGROUP",
            "NAMESPACE",
            "PROVISION",
            "BASE_CAPACITY",
            "DB_NAME",
            "WAIT_TIMEOUT_SECS",
            "POLL_INTERVAL_SECS",
        ],
    ),
    (
        "TABLE",
        &[
            "NAME",
            "DIST_STYLE",
            "DIST_KEY",
            "SORT_KEY",
            "INFER_COLUMNS",
        ],
    ),
    (
        "LOAD",
        &[
            "FORMAT",
            "DELIMITER",
            "QUOTE",
            "IGNORE_HEADER",
            "NULL_AS",
            "EMPTY_AS_NULL",
            "BLANKS_AS_NULL",
            "DATE_FORMAT",
            "TIME_FORMAT",
            "COMPRESSION",
            "MAX_ERRORS",
            "MODE",
            "KEY",
            "STATEMENT_TIMEOUT_SECS",
            "EXPECTED_ROWS",
        ],
    ),
];

/// A `(section, key)` pair.
pub(super) type Place = (&'static str, &'static str);

/// The classic tutorial's keys: (section, key) → canonical (section, key).
pub(super) const CLASSIC: &[(Place, Place)] = &[
    (("DWH", "DWH_CLUSTER_TYPE"), ("CLUSTER", "CLUSTER_TYPE")),
    (("DWH", "DWH_NUM_NODES"), ("CLUSTER", "NUM_NODES")),
    (("DWH", "DWH_NODE_TYPE"), ("CLUSTER", "NODE_TYPE")),
    (("DWH", "DWH_CLUSTER_IDENTIFIER"), ("CLUSTER", "IDENTIFIER")),
    (("DWH", "DWH_DB"), ("CLUSTER", "DB_NAME")),
    (("DWH", "DWH_DB_USER"), ("CLUSTER", "DB_USER")),
    (("DWH", "DWH_DB_PASSWORD"), ("CLUSTER", "DB_PASSWORD")),
    (("DWH", "DWH_PORT"), ("CLUSTER", "PORT")),
    (("DWH", "DWH_IAM_ROLE_NAME"), ("IAM", "ROLE_NAME")),
    (("DWH", "DWH_REGION"), ("AWS", "REGION")),
    (("CLUSTER", "DB_PORT"), ("CLUSTER", "PORT")),
    // The Python tutorial this project grew from names its cluster section
    // `[Redshift]` (read as `[CLUSTER]`), with the API's own parameter names.
    (("CLUSTER", "CLUSTER_IDENTIFIER"), ("CLUSTER", "IDENTIFIER")),
    (("CLUSTER", "NUMBER_OF_NODES"), ("CLUSTER", "NUM_NODES")),
    (("CLUSTER", "MASTER_USERNAME"), ("CLUSTER", "DB_USER")),
    (
        ("CLUSTER", "MASTER_USER_PASSWORD"),
        ("CLUSTER", "DB_PASSWORD"),
    ),
];

/// Classic keys we read but do not use, with the reason shown to the user.
pub(super) const IGNORED: &[(Place, &str)] = &[
    (
        ("CLUSTER", "HOST"),
        "SQL goes through the Redshift Data API, which needs no host name",
    ),
    (
        ("IAM_ROLE", "ARN"),
        "the role is looked up by [IAM] ROLE_NAME (DWH_IAM_ROLE_NAME)",
    ),
];

/// Strips one pair of matching surrounding quotes, as classic files use them.
pub(super) fn unquote(raw: &str) -> &str {
    let v = raw.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

pub(super) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min();
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// The section a file's section name is read as: upper case, and the
/// Python tutorial's `[Redshift]` as `[CLUSTER]`.
pub(super) fn section_name(written: &str) -> String {
    match written.trim().to_ascii_uppercase().as_str() {
        "REDSHIFT" => "CLUSTER".to_string(),
        other => other.to_string(),
    }
}

/// The canonical place of `key` in `section` (both upper case, `section`
/// already through [`section_name`]): a classic alias's target, or the key
/// itself if its section takes it; `None` for a key no section takes.
pub(super) fn canonical(section: &str, key: &str) -> Option<Place> {
    CLASSIC
        .iter()
        .find(|((s, k), _)| *s == section && *k == key)
        .map(|(_, place)| *place)
        .or_else(|| {
            SCHEMA.iter().find_map(|(s, keys)| {
                let k = keys.iter().find(|k| **k == key)?;
                (*s == section).then_some((*s, *k))
            })
        })
}
