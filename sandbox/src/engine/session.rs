//! The Data API's sessions: `SessionKeepAliveSeconds` on a request keeps its
//! PostgreSQL connection open after the statement ends and answers with a
//! `SessionId`; a later request naming that id runs on the same connection,
//! so temporary tables, `SET`s and an open transaction carry over.
//!
//! As the service does (AWS Big Data Blog, "Accelerate your data workflows
//! with Amazon Redshift Data API persistent sessions"): statements in one
//! session run one at a time and are not queued, so a request for a session
//! that is running a statement is refused; a session closes once it has
//! been idle for its keep-alive, and at the latest 24 hours after it began;
//! `ListSessions` shows sessions of the last 24 hours.

use std::time::Duration;

use tokio_postgres::Client;

use super::{Engine, Rejected, Request, lock, now};
use crate::pg::Target;

/// The longest a session lives, whatever its keep-alive.
const MAX_SESSION_SECS: f64 = 24.0 * 3600.0;

/// The most sessions open at once over the whole sandbox. Each holds a
/// PostgreSQL connection while idle, and the stack's server takes 200; the
/// service allows 500 per cluster, which a laptop's PostgreSQL could not.
pub const MAX_OPEN_SESSIONS: usize = 64;

/// What a request asks of sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SessionUse {
    /// No session: the connection closes with the statement.
    #[default]
    None,
    /// Open a session kept this many seconds after each statement.
    New {
        /// `SessionKeepAliveSeconds`.
        keep_alive: u32,
    },
    /// Run in this open session, optionally with a new keep-alive.
    Existing {
        /// `SessionId`.
        id: String,
        /// `SessionKeepAliveSeconds`, if given again.
        keep_alive: Option<u32>,
    },
}

/// A session's state, as `ListSessions` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// Open and idle.
    Available,
    /// Running a statement.
    Busy,
    /// Ended.
    Closed,
}

impl SessionStatus {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Available => "AVAILABLE",
            SessionStatus::Busy => "BUSY",
            SessionStatus::Closed => "CLOSED",
        }
    }
}

/// One session: what `ListSessions` shows of it, and its connection.
pub struct Session {
    /// What it is and where it stands.
    pub info: SessionInfo,
    /// The connection, while idle.
    conn: Option<Client>,
}

impl SessionInfo {
    /// Its state.
    pub fn status(&self) -> SessionStatus {
        if self.closed {
            SessionStatus::Closed
        } else if self.current.is_some() {
            SessionStatus::Busy
        } else {
            SessionStatus::Available
        }
    }
}

impl Engine {
    /// The target, database and user of open session `id`, checked against
    /// what the request also names.
    pub(super) fn session_target(
        &self,
        id: &str,
        request: &Request,
    ) -> Result<(Target, String, Option<String>), Rejected> {
        let sessions = lock(&self.sessions);
        let s = sessions
            .get(id)
            .map(|s| &s.info)
            .filter(|s| !s.closed)
            .ok_or_else(|| {
                Rejected::NotFound(format!("Session {id} does not exist or is closed"))
            })?;
        // Names the request gives beside the SessionId must be the
        // session's own (the builders fill Database in by habit).
        let given_target = !request.target.name().is_empty();
        if (given_target && request.target != s.target)
            || (!request.database.is_empty() && request.database != s.database)
        {
            return Err(Rejected::Validation(format!(
                "Session {id} belongs to {} database {}; name no other target or database with its SessionId",
                s.target.name(),
                s.database
            )));
        }
        Ok((s.target.clone(), s.database.clone(), s.db_user.clone()))
    }

    /// Records that statement `statement` runs in the session the request
    /// names or opens; returns that session's id. Refused when the session
    /// is running another statement, or when too many are open.
    pub(super) fn claim_session(
        &self,
        statement: &str,
        request: &Request,
        t: f64,
    ) -> Result<Option<String>, Rejected> {
        let mut sessions = lock(&self.sessions);
        // Sessions closed more than a day ago are forgotten.
        sessions.retain(|_, s| !(s.info.closed && s.info.updated_at < t - MAX_SESSION_SECS));
        match &request.session {
            SessionUse::None => Ok(None),
            SessionUse::New { keep_alive } => {
                let open = sessions.values().filter(|s| !s.info.closed).count();
                if open >= MAX_OPEN_SESSIONS {
                    return Err(Rejected::ActiveSessionsExceeded(format!(
                        "{open} sessions are open, the sandbox's most ({MAX_OPEN_SESSIONS}); \
                         let some expire or run without SessionKeepAliveSeconds"
                    )));
                }
                let id = uuid::Uuid::new_v4().to_string();
                sessions.insert(
                    id.clone(),
                    Session {
                        info: SessionInfo {
                            id: id.clone(),
                            target: request.target.clone(),
                            database: request.database.clone(),
                            db_user: request.db_user.clone(),
                            created_at: t,
                            updated_at: t,
                            keep_alive: *keep_alive,
                            expires_at: t + f64::from(*keep_alive),
                            current: Some(statement.to_string()),
                            closed: false,
                        },
                        conn: None,
                    },
                );
                Ok(Some(id))
            }
            SessionUse::Existing { id, keep_alive } => {
                let s = sessions
                    .get_mut(id)
                    .map(|s| &mut s.info)
                    .filter(|s| !s.closed)
                    .ok_or_else(|| {
                        Rejected::NotFound(format!("Session {id} does not exist or is closed"))
                    })?;
                if let Some(running) = &s.current {
                    return Err(Rejected::Validation(format!(
                        "Session {id} is busy running statement {running}: a session runs one \
                         statement at a time and does not queue them; wait for it to end"
                    )));
                }
                if let Some(k) = keep_alive {
                    s.keep_alive = *k;
                }
                s.current = Some(statement.to_string());
                s.updated_at = t;
                Ok(Some(id.clone()))
            }
        }
    }

    /// The idle connection of the session statement `id` runs in, if it
    /// runs in one that has a connection yet (a new session opens its own).
    pub(super) fn session_connection(&self, session: &str) -> Option<Client> {
        lock(&self.sessions)
            .get_mut(session)
            .and_then(|s| s.conn.take())
            .filter(|c| !c.is_closed())
    }

    /// Statement `statement` has ended: its session, if any, takes its
    /// connection back (or closes, when the connection is gone or the
    /// keep-alive is 0) and is free for the next statement.
    pub(super) fn release_session(self: &Engine, statement: &str, conn: Option<Client>) {
        let mut sessions = lock(&self.sessions);
        let Some(s) = sessions
            .values_mut()
            .find(|s| s.info.current.as_deref() == Some(statement))
        else {
            return;
        };
        let t = now();
        let info = &mut s.info;
        info.current = None;
        info.updated_at = t;
        info.expires_at = (t + f64::from(info.keep_alive)).min(info.created_at + MAX_SESSION_SECS);
        match conn.filter(|c| !c.is_closed()) {
            Some(c) if info.keep_alive > 0 && !info.closed => s.conn = Some(c),
            // The statement never took the session's connection (it was
            // cancelled while it waited): the session goes on as it was.
            None if s.conn.as_ref().is_some_and(|c| !c.is_closed()) => {}
            _ => {
                info.closed = true;
                s.conn = None;
            }
        }
    }

    /// Closes the sessions whose keep-alive has run out, dropping their
    /// connections (PostgreSQL ends the backend, and its temporary tables).
    pub(super) fn expire_sessions(&self) {
        let t = now();
        for s in lock(&self.sessions).values_mut() {
            let info = &mut s.info;
            if !info.closed && info.current.is_none() && t >= info.expires_at {
                info.closed = true;
                info.updated_at = t;
                s.conn = None;
                tracing::debug!("session {} closed after its keep-alive", info.id);
            }
        }
    }

    /// The sessions of the last 24 hours, newest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = lock(&self.sessions)
            .values()
            .map(|s| s.info.clone())
            .collect();
        all.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        all
    }

    /// Runs [`Engine::expire_sessions`] every second, for as long as the
    /// engine lives. Started by the server.
    pub fn start_session_reaper(self: &std::sync::Arc<Self>) {
        let engine = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match engine.upgrade() {
                    Some(e) => e.expire_sessions(),
                    None => return,
                }
            }
        });
    }
}

/// A session as `ListSessions` shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Its id (a UUID).
    pub id: String,
    /// Where its statements run.
    pub target: Target,
    /// Its database.
    pub database: String,
    /// The database user it was opened with.
    pub db_user: Option<String>,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// `SessionAliveSeconds`: seconds it is kept after a statement ends.
    pub keep_alive: u32,
    /// `SessionTtl`: when it closes if idle (epoch seconds).
    pub expires_at: f64,
    /// The statement it is running, when busy.
    pub current: Option<String>,
    /// Whether it has ended.
    pub closed: bool,
}
