//! The PostgreSQL side: one database per Redshift cluster (or workgroup) and
//! database, connections to it, and values in and out.
//!
//! Each cluster's databases live in their own PostgreSQL database so that two
//! clusters in one tutorial cannot see each other's tables, as on AWS. Every
//! such database gets a `sandbox_sys` schema holding `stl_load_errors` and
//! `sys_load_error_detail`, on its search path, so the queries readers copy
//! from the Redshift documentation work unchanged.

use std::collections::HashSet;
use std::error::Error as StdError;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::Mutex;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

/// Where a statement runs, as the Data API names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A provisioned cluster.
    Cluster(String),
    /// A Serverless workgroup.
    Workgroup(String),
}

impl Target {
    /// The identifier or workgroup name.
    pub fn name(&self) -> &str {
        match self {
            Target::Cluster(n) | Target::Workgroup(n) => n,
        }
    }

    fn prefix(&self) -> String {
        let (kind, name) = match self {
            Target::Cluster(n) => ("c", n),
            Target::Workgroup(n) => ("w", n),
        };
        // `-` becomes `_`, and `__` ends the prefix. A cluster identifier
        // has no `--`, so that is one to one; a workgroup name may (`ab--c`
        // would meet `ab` with a database `c__…`), and such a name is
        // written as a hash behind a `$`, which no other prefix holds.
        if name.contains("--") {
            let hash = fnv1a(name.bytes());
            return format!("rs_{kind}_${hash:016x}__");
        }
        format!(
            "rs_{kind}_{}__",
            name.to_ascii_lowercase().replace('-', "_")
        )
    }

    /// The PostgreSQL database holding `database` of this target. The
    /// names reaching here were validated by the API (ASCII letters,
    /// digits, `_`, `$`, `-`), so the result is ASCII; the cut below is
    /// still made on a character boundary, so no name can panic it.
    pub fn pg_database(&self, database: &str) -> String {
        let name = format!("{}{}", self.prefix(), database.to_ascii_lowercase());
        if name.len() <= 63 {
            return name;
        }
        // PostgreSQL names stop at 63 bytes; keep them unique with a hash.
        let hash = fnv1a(name.bytes());
        let mut cut = 46;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}_{hash:016x}", &name[..cut])
    }

    /// The Redshift database name for a PostgreSQL database of this target.
    pub fn database_of(&self, pg_name: &str) -> Option<String> {
        pg_name.strip_prefix(&self.prefix()).map(str::to_string)
    }
}

/// 64-bit FNV-1a of `bytes`: stable across Rust releases, unlike std's
/// hasher, so that sandboxes built by different toolchains agree on the
/// names made with it.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// `name` as a PostgreSQL identifier, quoted: the one way a name reaches
/// SQL text (CREATE/DROP/ALTER DATABASE and ROLE take no parameters).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a PostgreSQL string literal (standard_conforming_strings is
/// on: only the quote needs doubling).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The set-up every target database gets.
const INIT_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS sandbox_sys;
CREATE TABLE IF NOT EXISTS sandbox_sys.generation (generation text);
CREATE TABLE IF NOT EXISTS sandbox_sys.stl_load_errors (
  userid integer, slice integer, tbl integer, starttime timestamp, session integer,
  query integer, filename character(256), line_number bigint, colname character(127),
  type character(10), col_length character(10), position integer,
  raw_line character(1024), raw_field_value character(1024), err_code integer,
  err_reason character(100), is_partial integer, start_offset bigint);
CREATE TABLE IF NOT EXISTS sandbox_sys.sys_load_error_detail (
  user_id integer, query_id bigint, transaction_id bigint, session_id integer,
  database_name character(64), table_id integer, start_time timestamp,
  file_name character(256), line_number bigint, column_name character(127),
  column_type character(10), column_length character(10), position integer,
  error_code integer, error_message character(512));
-- Redshift's GETDATE(): the transaction's start, in UTC, to the second.
CREATE OR REPLACE FUNCTION sandbox_sys.getdate() RETURNS timestamp
  LANGUAGE sql STABLE AS $$ SELECT date_trunc('second', now() AT TIME ZONE 'UTC') $$;
";

/// What a cluster's database user may do with the sandbox's own schema:
/// read every system table, and add rows to the three that the statements it
/// runs write (the COPY's commits, the query history, a table's design). It cannot change
/// or delete them, nor create anything there. (`load errors` are written
/// by the sandbox on an administrative connection of its own.)
const GRANTS_SQL: &str = "
GRANT USAGE ON SCHEMA sandbox_sys TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA sandbox_sys TO {role};
GRANT INSERT ON sandbox_sys.stl_load_commits, sandbox_sys.sys_query_history,
  sandbox_sys.table_design TO {role};
";

/// Connections to the PostgreSQL server.
///
/// Two kinds, and only two:
/// - **administrative** ([`Pg::admin`]), as the user the sandbox was given
///   (the stack's superuser): creating, dropping and granting databases
///   and roles, and writing load errors. No request's SQL ever runs on one.
/// - **user** ([`Pg::connect`]), as the database's own role: an ordinary
///   login role that owns its database and nothing else. Not a superuser,
///   not a member of `pg_read_server_files`, `pg_write_server_files` or
///   `pg_execute_server_program`, so no SQL can reach the host's files or
///   programs, change the server's settings or load untrusted extensions.
///
/// Each role's password is derived from the administrative password and the
/// role's name (SHA-256), so every sandbox on one server agrees on it and no
/// caller can know it.
pub struct Pg {
    /// Host, port, the administrative user and its password.
    base: tokio_postgres::Config,
    /// What the roles' passwords are derived from.
    secret: String,
    /// Databases known to exist, so each is checked once.
    ready: Mutex<HashSet<String>>,
}

/// A boxed error from the driver or our own checks.
pub type BoxError = Box<dyn StdError + Send + Sync>;

impl Pg {
    /// `base` is a libpq-style connection string without `dbname`
    /// (`host=127.0.0.1 port=5432 user=postgres`), `password` the
    /// administrative user's password, if the server asks for one.
    pub fn new(base: &str, password: Option<String>) -> Result<Self, BoxError> {
        let mut config: tokio_postgres::Config = base.parse()?;
        if let Some(p) = &password {
            config.password(p.as_bytes());
        }
        // Without a password, the derivation still needs a secret no caller
        // knows: one of this process's.
        let secret = password.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        Ok(Self {
            base: config,
            secret,
            ready: Mutex::new(HashSet::new()),
        })
    }

    /// An administrative connection to `dbname`. Never for a request's SQL.
    ///
    /// Its search path is `pg_catalog, pg_temp`, set in the startup packet,
    /// which outranks the database's own setting: a cluster's role owns its
    /// database and `public` there, and could otherwise define a `now()` or
    /// a `to_regclass()` that this superuser connection would call.
    pub async fn admin(&self, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.base.clone();
        config
            .dbname(dbname)
            .options("-c search_path=pg_catalog,pg_temp");
        open(&config).await
    }

    /// A connection to the target database `dbname` (one [`Pg::ensure_database`]
    /// returned) as its own unprivileged role: where requests' SQL runs.
    pub async fn connect(&self, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.base.clone();
        config
            .dbname(dbname)
            .user(dbname)
            .password(self.role_password(dbname).as_bytes());
        match open(&config).await {
            // A user may have changed its own role's password (a role may):
            // set it back, once, and connect again.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD) => {
                let admin = self.admin("postgres").await?;
                admin
                    .batch_execute(&format!(
                        "ALTER ROLE {} PASSWORD {}",
                        quote_ident(dbname),
                        quote_literal(&self.role_password(dbname))
                    ))
                    .await?;
                open(&config).await
            }
            other => other,
        }
    }

    /// The password of the role named `role`.
    fn role_password(&self, role: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(self.secret.as_bytes())
            .chain_update([0u8])
            .chain_update(role.as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Closes the server's own databases to every role but the
    /// administrative one (PostgreSQL lets any role connect to them by
    /// default). Run once at start-up.
    pub async fn harden(&self) -> Result<(), tokio_postgres::Error> {
        let admin = self.admin("postgres").await?;
        admin
            .batch_execute(
                "REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC; \
                 REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC",
            )
            .await
    }

    /// Makes sure the PostgreSQL database for `target`/`database` exists and
    /// is set up, with its own role as owner; returns its name (the role's
    /// too). `generation` tells one life of a cluster from the next: when it
    /// changes (the cluster was deleted and created again), the old database
    /// is dropped, since a new cluster starts empty.
    pub async fn ensure_database(
        &self,
        target: &Target,
        database: &str,
        generation: &str,
    ) -> Result<String, BoxError> {
        let name = target.pg_database(database);
        let key = format!("{name}@{generation}");
        let mut ready = self.ready.lock().await;
        if ready.contains(&key) {
            return Ok(name);
        }
        let admin = self.admin("postgres").await?;
        let exists = database_exists(&admin, &name).await?;
        if exists {
            let db = self.admin(&name).await?;
            let stored: Option<String> = db
                .query_opt("SELECT generation FROM sandbox_sys.generation", &[])
                .await
                .ok()
                .flatten()
                .map(|r| r.get(0));
            drop(db);
            if stored.as_deref() != Some(generation) {
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE {} WITH (FORCE)",
                        quote_ident(&name)
                    ))
                    .await?;
                tracing::info!(
                    "{} was created anew: dropped its old database {database}",
                    target.name()
                );
            }
        }
        let exists = database_exists(&admin, &name).await?;
        if !exists {
            let template = self.template(&admin, &mut ready).await?;
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {} TEMPLATE {}",
                    quote_ident(&name),
                    quote_ident(&template)
                ))
                .await?;
            tracing::info!(
                "created PostgreSQL database {name} for {} database {database}",
                target.name()
            );
        }
        self.ensure_role(&admin, &name).await?;
        let db = self.admin(&name).await?;
        // Already in a copy of the template; run again for a database made
        // by an older sandbox (every statement is idempotent).
        if exists {
            db.batch_execute(INIT_SQL).await?;
            db.batch_execute(crate::dialect::INSTALL_SQL).await?;
        }
        db.batch_execute(&GRANTS_SQL.replace("{role}", &quote_ident(&name)))
            .await?;
        db.execute("DELETE FROM sandbox_sys.generation", &[])
            .await?;
        db.execute(
            "INSERT INTO sandbox_sys.generation VALUES ($1)",
            &[&generation],
        )
        .await?;
        let q = quote_ident(&name);
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {q} OWNER TO {q}; \
                 REVOKE ALL ON DATABASE {q} FROM PUBLIC; \
                 ALTER DATABASE {q} SET search_path = \"$user\", public, sandbox_sys, pg_catalog; \
                 ALTER DATABASE {q} SET timezone = 'UTC'"
            ))
            .await?;
        ready.retain(|k| !k.starts_with(&format!("{name}@")));
        ready.insert(key);
        Ok(name)
    }

    /// The login role named `role`, created if missing: an ordinary role,
    /// with its derived password (set again each time, so a role left by
    /// another sandbox with another secret still lets this one in).
    async fn ensure_role(&self, admin: &Client, role: &str) -> Result<(), BoxError> {
        let password = quote_literal(&self.role_password(role));
        let q = quote_ident(role);
        let exists = admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await?
            .is_some();
        if !exists {
            let created = admin
                .batch_execute(&format!(
                    "CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE \
                     NOREPLICATION NOBYPASSRLS PASSWORD {password}"
                ))
                .await;
            // Another sandbox on this server created it first: fine.
            if let Err(e) = created
                && e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT)
            {
                return Err(e.into());
            }
        }
        admin
            .batch_execute(&format!(
                "ALTER ROLE {q} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                 NOBYPASSRLS PASSWORD {password}"
            ))
            .await?;
        Ok(())
    }

    /// The template every new database is copied from, built if missing:
    /// the set-up and the dialect installed once, rather than once per
    /// cluster (a third of the time a new cluster's first statement took).
    ///
    /// Named by a hash of that SQL, so that a sandbox of another version
    /// builds its own and two sandboxes on one server share one. It is
    /// built under a name of this process's and renamed when complete, so
    /// no sandbox ever copies a half-built template.
    async fn template(
        &self,
        admin: &Client,
        ready: &mut HashSet<String>,
    ) -> Result<String, BoxError> {
        let hash = fnv1a(
            [INIT_SQL, crate::dialect::INSTALL_SQL]
                .iter()
                .flat_map(|s| s.bytes()),
        );
        let name = format!("sandbox_template_{hash:016x}");
        if ready.contains(&name) {
            return Ok(name);
        }
        if !database_exists(admin, &name).await? {
            // A name of its own (two engines in one process have one pid).
            let building = format!(
                "{name}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            // Two calls: neither command runs inside a transaction block,
            // which one multi-statement query would be.
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {}",
                    quote_ident(&building)
                ))
                .await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&building)))
                .await?;
            let db = self.admin(&building).await?;
            db.batch_execute(INIT_SQL).await?;
            db.batch_execute(crate::dialect::INSTALL_SQL).await?;
            // PostgreSQL waits (up to 5 s) for this session to end before
            // the rename, which needs the database to itself.
            drop(db);
            let renamed = admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote_ident(&building),
                    quote_ident(&name)
                ))
                .await;
            if let Err(e) = renamed {
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&building)
                    ))
                    .await?;
                // Another sandbox finished first, and its template is there
                // to use; or the rename failed, and that is the error.
                if !database_exists(admin, &name).await? {
                    return Err(e.into());
                }
            } else {
                tracing::info!("built the template database {name}");
            }
        }
        ready.insert(name.clone());
        Ok(name)
    }

    /// The Redshift databases of `target` that exist.
    pub async fn list_databases(&self, target: &Target) -> Result<Vec<String>, BoxError> {
        let admin = self.admin("postgres").await?;
        let rows = admin
            .query("SELECT datname FROM pg_database ORDER BY datname", &[])
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| target.database_of(r.get::<_, &str>(0)))
            .collect())
    }
}

/// Whether the server has a database named `name`.
async fn database_exists(admin: &Client, name: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some())
}

/// Opens a connection; its driver task runs in the background until the
/// client is dropped.
async fn open(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

/// A parameter value sent as text: PostgreSQL parses it as whatever type the
/// statement needs, as Redshift does with the Data API's string parameters.
#[derive(Debug)]
pub struct TextParam(pub String);

impl ToSql for TextParam {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }
    to_sql_checked!();
}

/// One result value, typed as the Data API reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// Integers.
    Long(i64),
    /// Floats.
    Double(f64),
    /// Booleans.
    Bool(bool),
    /// Everything else, as text: DECIMAL, dates, times, strings, JSON.
    Text(String),
}

impl Cell {
    /// The value as CSV would show it (for `GetStatementResultV2`).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Long(v) => Some(v.to_string()),
            Cell::Double(v) => Some(v.to_string()),
            Cell::Bool(v) => Some(if *v { "t" } else { "f" }.to_string()),
            Cell::Text(s) => Some(s.clone()),
        }
    }

    /// Rough size in bytes, for the result-size cap.
    pub fn size(&self) -> usize {
        match self {
            Cell::Text(s) => s.len() + 8,
            _ => 8,
        }
    }
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            // `SELECT pg_sleep(1)` returns void: nothing to show.
            Type::VOID => Cell::Null,
            Type::INT2 => Cell::Long(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Cell::Long(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Cell::Long(i64::from_sql(ty, raw)?),
            Type::OID => Cell::Long(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Cell::Double(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Cell::Double(f64::from_sql(ty, raw)?),
            Type::BOOL => Cell::Bool(bool::from_sql(ty, raw)?),
            Type::NUMERIC => Cell::Text(Decimal::from_sql(ty, raw)?.to_string()),
            Type::DATE => Cell::Text(NaiveDate::from_sql(ty, raw)?.format("%Y-%m-%d").to_string()),
            Type::TIMESTAMP => Cell::Text(
                NaiveDateTime::from_sql(ty, raw)?
                    .format("%Y-%m-%d %H:%M:%S%.f")
                    .to_string(),
            ),
            Type::TIMESTAMPTZ => Cell::Text(
                DateTime::<Utc>::from_sql(ty, raw)?
                    .format("%Y-%m-%d %H:%M:%S%.f+00")
                    .to_string(),
            ),
            Type::TIME => Cell::Text(
                NaiveTime::from_sql(ty, raw)?
                    .format("%H:%M:%S%.f")
                    .to_string(),
            ),
            Type::JSON | Type::JSONB => {
                Cell::Text(serde_json::Value::from_sql(ty, raw)?.to_string())
            }
            ref t if <String as FromSql>::accepts(t) => Cell::Text(String::from_sql(ty, raw)?),
            ref t => {
                return Err(
                    format!("the sandbox cannot return values of type {}", t.name()).into(),
                );
            }
        })
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// The Data API's name for a PostgreSQL type (Redshift reports the same
/// internal names: `int4`, `varchar`, `numeric`, …).
pub fn type_name(ty: &Type) -> String {
    ty.name().to_string()
}

/// `ERROR: <message>` as Redshift reports a failed statement.
///
/// A refusal for want of privilege (reading the server's files, running a
/// program, `ALTER SYSTEM`, an untrusted extension, another cluster's
/// database) keeps PostgreSQL's words, which are Redshift's ("permission
/// denied …", "must be superuser …"), and says why: on Redshift too a
/// database user may not do it.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if *db.code() == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
            format!(
                "ERROR: {}. Amazon Redshift does not allow a database user this either; \
                 the sandbox runs SQL as an ordinary user of the cluster's database, \
                 with no access to the host's files, programs or settings",
                db.message().trim_end_matches('.')
            )
        }
        Some(db) => format!("ERROR: {}", db.message()),
        None => format!("ERROR: {e}"),
    }
}
