//! The config file as parsed INI, before it is read into a [`Config`]: the
//! one place where values are set or sections removed.

use std::fmt;
use std::path::{Path, PathBuf};

use ini::{EscapePolicy, Ini, ParseOption};

use super::Config;
use super::keys::{canonical, section_name};
use super::reader::Reader;
use crate::error::ConfigError;

/// A config file, parsed but not yet checked. Values set here replace the
/// file's own, whichever spelling the file used for them (`[DWH] DWH_DB`
/// is replaced by setting `[CLUSTER] DB_NAME`), and are then checked
/// exactly as if they had been written in the file.
///
/// Why edit the parsed document and not the text: a line-based edit has to
/// guess at sections, case and aliases, and a value set that way can end up
/// "given twice". The command line's overrides, the book's variations of
/// the demo config and the tests all go through here.
///
/// ```
/// use s3_to_redshift::config::{Document, LoadMode, TargetSettings};
///
/// let text = std::fs::read_to_string("examples/pipeline.cfg")?;
/// let mut doc = Document::parse(&text, "pipeline.cfg")?;
/// doc.set("load", "mode", "append");
/// assert_eq!(doc.config(None)?.load.mode, LoadMode::Append);
///
/// // The same file, pointed at a Serverless workgroup instead.
/// doc.remove_section("CLUSTER").set("SERVERLESS", "WORKGROUP", "analytics");
/// let cfg = doc.config(None)?;
/// assert!(matches!(&cfg.target, TargetSettings::Serverless(sl) if sl.namespace == "analytics-ns"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Document {
    path: PathBuf,
    ini: Ini,
}

impl Document {
    /// Parses `text` as INI; `path` names the file in messages. Only the
    /// INI syntax is checked here; the values are checked by
    /// [`Document::config`].
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        // Quotes and escapes are handled by the reader, not by the INI
        // parser: classic files quote their values ('s3://…'), and `\t` must
        // stay two characters until it is read as a delimiter.
        let opts = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini = Ini::load_from_str_opt(text, opts).map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            message: format!("line {}, column {}: {}", e.line, e.col, e.msg),
        })?;
        Ok(Self { path, ini })
    }

    /// Sets `key` in `section` to `value` (names case-insensitive), in
    /// place of every line the file had for the same setting, under any
    /// alias.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> &mut Self {
        self.remove_key(section, key);
        self.ini.with_section(Some(section)).set(key, value);
        self
    }

    /// Removes the setting `key` of `section`, under any spelling the file
    /// used for it (case, classic alias), so that its default applies.
    pub fn remove_key(&mut self, section: &str, key: &str) -> &mut Self {
        let (sec, k) = (section_name(section), key.trim().to_ascii_uppercase());
        let place = canonical(&sec, &k);
        for (written, props) in self.ini.iter_mut() {
            let written = section_name(written.unwrap_or_default());
            let same: Vec<String> = props
                .iter()
                .map(|(name, _)| name.to_string())
                .filter(|name| {
                    let n = name.trim().to_ascii_uppercase();
                    match place {
                        Some(place) => canonical(&written, &n) == Some(place),
                        // A key no section lists (a column, a classic S3
                        // path): the same name in the same section.
                        None => written == sec && n == k,
                    }
                })
                .collect();
            for name in same {
                props.remove_all(&name).for_each(drop);
            }
        }
        self
    }

    /// Removes every section read as `section` (case-insensitive;
    /// `[Redshift]` counts as `[CLUSTER]`), with all its keys.
    pub fn remove_section(&mut self, section: &str) -> &mut Self {
        let sec = section_name(section);
        let doomed: Vec<String> = self
            .ini
            .sections()
            .flatten()
            .filter(|written| section_name(written) == sec)
            .map(str::to_string)
            .collect();
        for name in doomed {
            while self.ini.delete(Some(name.as_str())).is_some() {}
        }
        self
    }

    /// Reads and checks every value (see [`Config::parse`]);
    /// `env_password`, when given, wins over the file's password.
    pub fn config(&self, env_password: Option<String>) -> Result<Config, ConfigError> {
        let mut r = Reader::new(&self.ini);
        let cfg = r.build(self.path.clone(), env_password);
        match cfg {
            Some(cfg) if r.problems.is_empty() => Ok(cfg),
            _ => Err(ConfigError::Invalid {
                path: self.path.clone(),
                problems: r.problems,
            }),
        }
    }
}

/// The document as INI text, for writing a changed config to a file (the
/// CLI's tests do). Values are written as they were read: no escaping.
impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.ini
            .write_to_policy(&mut out, EscapePolicy::Nothing)
            .map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Why `Debug` is written by hand: a document may hold a password, and the
/// parsed [`Config`] hides it, so the document must too.
impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
