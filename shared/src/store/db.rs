//! PostgreSQL connection, migrations and the errors every database call returns.
//!
//! The database is the durable record of the pipeline and the backstop behind Redis: Redis
//! locks and idempotency keys make duplicates unlikely, the constraints declared in
//! `shared/migrations/` make them impossible. Supabase is plain PostgreSQL reached over TLS;
//! the `sslmode` of `DATABASE_URL` is honoured as given (`?sslmode=require` or
//! `verify-full`), certificates are checked against the webpki roots.
//!
//! Supabase's transaction-mode pooler (port 6543) does not keep the prepared statements
//! sqlx relies on between transactions: use the direct connection or the session-mode
//! pooler (port 5432).
//!
//! ## Settings
//!
//! [`DatabaseConfig`] (`DATABASE_URL`, `LEXPIPE_AUTO_MIGRATE`, `DATABASE_MAX_CONNECTIONS`)
//! is read with every other setting by [`crate::config`], whose module docs list the
//! variables; it is re-exported here because [`connect`] and [`open`] take it.
//!
//! ## Schema
//!
//! See the migrations for the full text; in short, every table hangs off `documents`
//! (one row per content hash, id = [`crate::model::document_uuid`]) with
//! `ON DELETE CASCADE`:
//!
//! | table | key | what |
//! |---|---|---|
//! | `documents` | `id`, unique `content_sha256` | status, error, page count, OCR method, highest fencing token seen |
//! | `document_sources` | `(document_id, source)` | every name the same bytes arrived under |
//! | `pages` | `(document_id, page_number)` | page text |
//! | `chunks` | `(document_id, chunk_index)`, unique `(document_id, chunk_id)` | chunk offsets and hashes |
//! | `canonical_entities` | `(document_id, entity_id)` | resolved entities with aliases |
//! | `entity_mentions` | `(document_id, mention_id)` | mentions, with foreign keys to their chunk and canonical entity |
//! | `relationships` | unique `(document_id, kind, from_ref, to_ref)` | the document → chunk → mention → entity graph, and chunk order |
//! | `structured_extractions` | unique `(document_id, scope, model_version)` | structured data per document or chunk |
//! | `processing_queue` | `id`, unique `document_id` | the work queue (see [`super::queue`]) |
//! | `queue_attempts` | unique `(item_id, attempt)` | one row per claim: the history that proves exactly-once |
//! | `textract_jobs` | `job_id` | Textract jobs started for a document |

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use crate::config::DatabaseConfig;

/// How long [`connect`] (and each later checkout from the pool) waits for a connection
/// before reporting the database unavailable. Long enough for a TLS handshake to a
/// distant Supabase region, short enough that a Lambda invocation fails well inside its
/// own timeout and Step Functions can retry.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection pool and checks that the server answers.
///
/// The pool is built once per process (a Lambda cold start, a worker's start) and lent to
/// every call. `sslmode` and the other URL parameters are kept as given.
///
/// # Errors
/// [`DbError::NotConfigured`] without `DATABASE_URL`; [`DbError::Unavailable`]
/// (retryable) when the server cannot be reached or has no connection to spare;
/// [`DbError::Query`] (terminal) when it refuses the login or knows no such database.
pub async fn connect(cfg: &DatabaseConfig) -> Result<PgPool, DbError> {
    let url = cfg.url.as_ref().ok_or(DbError::NotConfigured)?;
    let options = PgConnectOptions::from_str(url.expose())?;
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?)
}

/// [`connect`], then [`migrate`] when `auto_migrate` is on: what a process calls at start.
///
/// # Errors
/// As [`connect`] and [`migrate`].
pub async fn open(cfg: &DatabaseConfig) -> Result<PgPool, DbError> {
    let pool = connect(cfg).await?;
    if cfg.auto_migrate {
        migrate(&pool).await?;
    }
    Ok(pool)
}

/// Applies the migrations embedded from `shared/migrations/` that the database lacks.
///
/// Safe to call from many processes at once: sqlx takes an advisory lock, so one applies
/// and the others find nothing left to do.
///
/// # Errors
/// [`DbError::Migration`] when a migration fails or an applied one was edited since.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .map_err(|e| match e {
            // A connection lost half-way is worth a retry: each migration runs in its
            // own transaction and the applied ones are recorded.
            MigrateError::Execute(inner) if classify(&inner) == Class::Unavailable => {
                DbError::Unavailable(inner)
            }
            other => DbError::Migration(other),
        })
}

/// The stable `error_type` names of [`DbError`], matched by Step Functions `Retry`/`Catch`
/// and shown by `lexpipe status`.
pub mod error_types {
    pub const NOT_CONFIGURED: &str = "DatabaseNotConfigured";
    pub const UNAVAILABLE: &str = "DatabaseUnavailable";
    pub const CONFLICT: &str = "DatabaseConflict";
    pub const CONSTRAINT_VIOLATION: &str = "ConstraintViolation";
    pub const STALE_FENCING_TOKEN: &str = "StaleFencingToken";
    pub const INVALID_DATA: &str = "InvalidDocumentData";
    pub const MIGRATION_FAILED: &str = "MigrationFailed";
    pub const DATABASE_ERROR: &str = "DatabaseError";
    /// Every name above.
    pub const ALL: [&str; 8] = [
        NOT_CONFIGURED,
        UNAVAILABLE,
        CONFLICT,
        CONSTRAINT_VIOLATION,
        STALE_FENCING_TOKEN,
        INVALID_DATA,
        MIGRATION_FAILED,
        DATABASE_ERROR,
    ];
}

/// Why a database call failed. Each variant is retryable (the same call may succeed
/// later) or terminal (it never will), see [`DbError::is_retryable`].
///
/// The driver's error is kept in the variant rather than as a `source`, so that error
/// chains print it once; messages never contain `DATABASE_URL`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` is not set. Terminal: configuration does not fix itself.
    #[error("no database configured: set DATABASE_URL")]
    NotConfigured,
    /// The server is down, unreachable, out of connections, shutting down, or dropped the
    /// connection. Retryable. (A refused login is [`DbError::Query`]: retrying the same
    /// credentials does not help.)
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// A serialization failure, deadlock or lock timeout: another transaction got there
    /// first. Retryable: the retry runs against the new state.
    #[error("database transaction conflict: {0}")]
    Conflict(sqlx::Error),
    /// A unique, foreign-key, not-null or check constraint refused the write. Terminal:
    /// the same write would be refused again.
    #[error("database constraint {} violated: {cause}", constraint.as_deref().unwrap_or("(unnamed)"))]
    ConstraintViolation {
        /// The constraint's name, as in the migrations, when the server reports it.
        constraint: Option<String>,
        cause: sqlx::Error,
    },
    /// A write carried a fencing token older than one the database has already seen: the
    /// writer's lock was lost and someone else now owns the document. Terminal: the
    /// writer must stop, not retry.
    #[error(
        "stale fencing token {presented} for document {document_id}: token {current} was already seen"
    )]
    StaleFencingToken {
        document_id: uuid::Uuid,
        presented: u64,
        current: u64,
    },
    /// The data handed to the store is inconsistent (a mention without a canonical
    /// entity, a document id that is not the content's). Terminal.
    #[error("invalid document data: {0}")]
    InvalidData(String),
    /// A migration failed, or an applied migration was edited. Terminal.
    #[error("database migration failed: {0}")]
    Migration(MigrateError),
    /// Anything else the driver or server reported (a bad query, a type mismatch).
    /// Terminal: a bug to fix, not a condition to wait out.
    #[error("database error: {0}")]
    Query(sqlx::Error),
}

impl DbError {
    /// Stable name, one of [`error_types::ALL`].
    pub fn error_type(&self) -> &'static str {
        match self {
            DbError::NotConfigured => error_types::NOT_CONFIGURED,
            DbError::Unavailable(_) => error_types::UNAVAILABLE,
            DbError::Conflict(_) => error_types::CONFLICT,
            DbError::ConstraintViolation { .. } => error_types::CONSTRAINT_VIOLATION,
            DbError::StaleFencingToken { .. } => error_types::STALE_FENCING_TOKEN,
            DbError::InvalidData(_) => error_types::INVALID_DATA,
            DbError::Migration(_) => error_types::MIGRATION_FAILED,
            DbError::Query(_) => error_types::DATABASE_ERROR,
        }
    }

    /// Would the same call succeed later? True for connection trouble and transaction
    /// conflicts; false for everything the same input would hit again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Unavailable(_) | DbError::Conflict(_))
    }
}

/// A fencing token as stored (`bigint`). Tokens come from a Redis counter and stay far
/// below `i64::MAX`; one above it is refused rather than wrapped.
pub(super) fn token_to_db(token: u64) -> Result<i64, DbError> {
    i64::try_from(token)
        .map_err(|_| DbError::InvalidData(format!("fencing token {token} exceeds i64::MAX")))
}

/// A stored fencing token; the column's CHECK keeps it non-negative.
pub(super) fn token_from_db(token: i64) -> u64 {
    u64::try_from(token).unwrap_or(0)
}

/// The id of a document must be [`crate::model::document_uuid`] of its content, or "same
/// bytes, one document" no longer holds.
pub(super) fn check_document_id(
    document_id: uuid::Uuid,
    content_sha256: &str,
) -> Result<(), DbError> {
    let expected = crate::model::document_uuid(content_sha256);
    if document_id == expected {
        Ok(())
    } else {
        Err(DbError::InvalidData(format!(
            "document id {document_id} is not the id of content {content_sha256} ({expected})"
        )))
    }
}

/// What the caller should do about a driver error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unavailable,
    Conflict,
    Constraint,
    Other,
}

/// Sorts driver errors using the SQLSTATE classes of the PostgreSQL manual (appendix A).
fn classify(e: &sqlx::Error) -> Class {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            Class::Unavailable
        }
        E::Database(db) => match db.code().as_deref().unwrap_or_default() {
            // 08: connection exception; 53: insufficient resources (too many
            // connections, disk full); 57P01-03: shutdown / cannot connect now.
            c if c.starts_with("08") || c.starts_with("53") => Class::Unavailable,
            "57P01" | "57P02" | "57P03" => Class::Unavailable,
            // serialization_failure, deadlock_detected, lock_not_available.
            "40001" | "40P01" | "55P03" => Class::Conflict,
            // 23: integrity constraint violation.
            c if c.starts_with("23") => Class::Constraint,
            _ => Class::Other,
        },
        _ => Class::Other,
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match classify(&e) {
            Class::Unavailable => DbError::Unavailable(e),
            Class::Conflict => DbError::Conflict(e),
            Class::Constraint => DbError::ConstraintViolation {
                constraint: e
                    .as_database_error()
                    .and_then(|db| db.constraint())
                    .map(str::to_owned),
                cause: e,
            },
            Class::Other => DbError::Query(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_type_is_listed_once() {
        let mut names = error_types::ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), error_types::ALL.len());
    }

    #[test]
    fn connection_errors_are_retryable_and_stale_tokens_are_not() {
        let io = DbError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(io.is_retryable());
        assert_eq!(io.error_type(), error_types::UNAVAILABLE);
        assert!(DbError::from(sqlx::Error::PoolTimedOut).is_retryable());
        let stale = DbError::StaleFencingToken {
            document_id: uuid::Uuid::nil(),
            presented: 1,
            current: 2,
        };
        assert!(!stale.is_retryable());
        assert_eq!(stale.error_type(), error_types::STALE_FENCING_TOKEN);
        assert!(!DbError::from(sqlx::Error::RowNotFound).is_retryable());
    }
}
