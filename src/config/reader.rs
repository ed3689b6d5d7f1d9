//! From parsed INI to a [`Config`]: every value filed under its canonical
//! place, then each section read by `sections.rs`, with every problem
//! collected (section, key, what is wrong) rather than the first returned.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ini::Ini;

use super::keys::{CLASSIC, IGNORED, SCHEMA, canonical, did_you_mean, section_name, unquote};
use super::{Config, TargetSettings};
use crate::error::Problem;

/// Where a value came from, as written in the file.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) section: String,
    pub(super) key: String,
    pub(super) value: String,
}

/// The values of one document, on their way to a [`Config`].
pub(super) struct Reader {
    /// Canonical (section, key) → entry as written.
    pub(super) values: BTreeMap<(String, String), Entry>,
    /// `[COLUMNS]`, in order.
    pub(super) columns: Vec<Entry>,
    /// Other `[S3]` keys: classic `LOG_DATA = s3://…` paths.
    pub(super) s3_paths: Vec<Entry>,
    pub(super) problems: Vec<Problem>,
    pub(super) notes: Vec<String>,
}

impl Reader {
    pub(super) fn new(ini: &Ini) -> Self {
        let mut r = Reader {
            values: BTreeMap::new(),
            columns: Vec::new(),
            s3_paths: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        for (section, props) in ini.iter() {
            let Some(section) = section else {
                for (key, _) in props.iter() {
                    r.problem(
                        "(none)",
                        key,
                        "is outside any section; put it under a `[SECTION]` header".into(),
                    );
                }
                continue;
            };
            let sec = section_name(section);
            let known_section = SCHEMA.iter().any(|(s, _)| *s == sec)
                || matches!(sec.as_str(), "COLUMNS" | "DWH" | "IAM_ROLE" | "REDSHIFT");
            if !known_section {
                let names = SCHEMA
                    .iter()
                    .map(|(s, _)| *s)
                    .chain(["COLUMNS", "DWH", "IAM_ROLE", "REDSHIFT"]);
                let hint = did_you_mean(&sec, names);
                r.problem(
                    section,
                    "",
                    format!(
                        "unknown section{hint}; sections are [AWS], [IAM], [CLUSTER] or [SERVERLESS], \
                         [S3], [TABLE], [COLUMNS], [LOAD] (and the classic [Redshift], [DWH], [IAM_ROLE])"
                    ),
                );
                continue;
            }
            for (key, value) in props.iter() {
                let entry = Entry {
                    section: section.to_string(),
                    key: key.to_string(),
                    value: unquote(value).to_string(),
                };
                r.take(&sec, entry);
            }
        }
        r
    }

    pub(super) fn problem(&mut self, section: &str, key: &str, message: String) {
        self.problems.push(Problem {
            section: section.to_string(),
            key: key.to_string(),
            message,
        });
    }

    /// Files one key under its canonical place, or reports why it has none.
    fn take(&mut self, sec: &str, entry: Entry) {
        let key = entry.key.trim().to_ascii_uppercase();
        if sec == "COLUMNS" {
            if let Some(prev) = self
                .columns
                .iter()
                .find(|c| c.key.eq_ignore_ascii_case(&entry.key))
            {
                let msg = format!("column `{}` is listed twice", prev.key);
                self.problem(&entry.section, &entry.key, msg);
            } else {
                self.columns.push(entry);
            }
            return;
        }
        if let Some((_, why)) = IGNORED.iter().find(|((s, k), _)| *s == sec && *k == key) {
            self.notes.push(format!(
                "[{}] {} is ignored: {why}",
                entry.section, entry.key
            ));
            return;
        }
        let canonical = canonical(sec, &key).map(|(s, k)| (s.to_string(), k.to_string()));
        let Some(canonical) = canonical else {
            if sec == "S3" {
                // Classic files name their paths freely: LOG_DATA, SONG_DATA, …
                self.s3_paths.push(entry);
                return;
            }
            let candidates: Vec<&str> = SCHEMA
                .iter()
                .filter(|(s, _)| *s == sec)
                .flat_map(|(_, keys)| keys.iter().copied())
                .chain(
                    CLASSIC
                        .iter()
                        .filter(|((s, _), _)| *s == sec)
                        .map(|((_, k), _)| *k),
                )
                .collect();
            let hint = did_you_mean(&key, candidates.iter().copied());
            let msg = format!("unknown key{hint}; [{sec}] takes {}", candidates.join(", "));
            self.problem(&entry.section, &entry.key, msg);
            return;
        };
        if let Some(prev) = self.values.get(&canonical) {
            let msg = format!(
                "is given twice: also as [{}] {}; keep one",
                prev.section, prev.key
            );
            self.problem(&entry.section, &entry.key, msg);
            return;
        }
        self.values.insert(canonical, entry);
    }

    /// The entry for a canonical key, if present and not empty. Empty values
    /// count as absent: classic files ship `DWH_DB_PASSWORD=` to be filled in.
    pub(super) fn entry(&self, sec: &str, key: &str) -> Option<Entry> {
        self.values
            .get(&(sec.to_string(), key.to_string()))
            .filter(|e| !e.value.is_empty())
            .cloned()
    }

    pub(super) fn required(&mut self, sec: &str, key: &str, expected: &str) -> Option<Entry> {
        let e = self.entry(sec, key);
        if e.is_none() {
            let classic = CLASSIC
                .iter()
                .find(|(_, (s, k))| *s == sec && *k == key)
                .map(|((cs, ck), _)| format!(" (or [{cs}] {ck})"))
                .unwrap_or_default();
            self.problem(
                sec,
                key,
                format!("is missing{classic}; expected {expected}"),
            );
        }
        e
    }

    /// Parses a present value with `parse`; reports failures against the
    /// entry's own section and key.
    pub(super) fn parse_entry<T, E: fmt::Display>(
        &mut self,
        e: &Entry,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(&e.value) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.problem(&e.section, &e.key, msg.to_string());
                None
            }
        }
    }

    pub(super) fn optional<T, E: fmt::Display>(
        &mut self,
        sec: &str,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match self.entry(sec, key) {
            None => Some(default),
            Some(e) => self.parse_entry(&e, parse),
        }
    }

    pub(super) fn build(&mut self, path: PathBuf, env_password: Option<String>) -> Option<Config> {
        let aws = self.aws();
        let iam = self.iam();
        let target = self.target(env_password);
        let s3 = self.s3();
        let table = self.table();
        let load = self.load();
        if let (Some(t), Some(l)) = (&table, &load)
            && !t.infer_columns
        {
            for k in &l.key {
                if !t.columns.iter().any(|c| &c.name == k) {
                    let hint = did_you_mean(k.as_str(), t.columns.iter().map(|c| c.name.as_str()));
                    self.problem(
                        "LOAD",
                        "KEY",
                        format!("`{}` is not a column in [COLUMNS]{hint}", k.as_str()),
                    );
                }
            }
            if !self.problems.is_empty() {
                return None;
            }
        }
        Some(Config {
            path,
            aws: aws?,
            iam: iam?,
            target: target?,
            s3: s3?,
            table: table?,
            load: load?,
            notes: std::mem::take(&mut self.notes),
        })
    }

    /// `[CLUSTER]` or `[SERVERLESS]`, whichever the file has; both is a
    /// problem (one would be silently ignored), neither asks for a cluster.
    fn target(&mut self, env_password: Option<String>) -> Option<TargetSettings> {
        let has = |r: &Self, sec: &str| r.values.keys().any(|(s, _)| s == sec);
        match (has(self, "CLUSTER"), has(self, "SERVERLESS")) {
            (true, true) => {
                // Still read the workgroup, so its own problems are listed too.
                self.serverless();
                self.problem(
                    "CLUSTER",
                    "",
                    "is not used when [SERVERLESS] is set; remove one of the two sections".into(),
                );
                None
            }
            (false, true) => self.serverless().map(TargetSettings::Serverless),
            _ => self.cluster(env_password).map(TargetSettings::Cluster),
        }
    }
}
