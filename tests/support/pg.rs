//! PostgreSQL for the integration tests: a fresh database per test, created through the
//! admin URL and dropped at the end, so tests never see each other's rows and can run in
//! parallel.
//!
//! PostgreSQL is required, never skipped: an unreachable server fails the test with the
//! command that starts it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

/// The server's admin URL: `LEXPIPE_TEST_DATABASE_URL`, else the local trust-auth default.
pub fn admin_url() -> String {
    std::env::var("LEXPIPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Connections in a test database's pool: enough for the 16-task concurrency tests, few
/// enough that two test threads stay well under the server's `max_connections`.
const POOL_SIZE: u32 = 20;

/// A database that exists for one test.
pub struct TestDb {
    pub pool: PgPool,
    /// Its URL, for code under test that connects by itself.
    pub url: String,
    name: String,
}

impl TestDb {
    /// The database's name (`lexpipe_t_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the pool and drops the database. Call it at the end of each test; a test that
    /// panics leaves its database behind for inspection.
    pub async fn drop_database(self) {
        self.pool.close().await;
        let mut admin = admin_connection().await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("dropping test database {}: {e}", self.name));
    }
}

/// A fresh database with every migration applied.
pub async fn test_database() -> TestDb {
    let db = empty_database().await;
    lexpipe::store::db::migrate(&db.pool)
        .await
        .expect("migrations apply to a fresh database");
    db
}

/// A fresh database with no tables, for tests of migrating itself.
pub async fn empty_database() -> TestDb {
    let name = format!("lexpipe_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection().await;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    let url = with_database(&admin_url(), &name);
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to test database {name}: {e}"));
    TestDb { pool, url, name }
}

/// One connection to the admin database; panics with the start command when PostgreSQL
/// is not there.
async fn admin_connection() -> PgConnection {
    let url = admin_url();
    let options = PgConnectOptions::from_str(&url).expect("LEXPIPE_TEST_DATABASE_URL parses");
    match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
        Ok(Ok(conn)) => conn,
        other => panic!(
            "integration tests need PostgreSQL at {url} ({}). Start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
             (Debian: apt-get install postgresql), or run ./scripts/test.sh, which does.",
            match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out after 5 s".to_string(),
            }
        ),
    }
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Makes every running lease expire now, as if the workers holding them had stopped
/// heartbeating: deterministic, where sleeping past a short lease would race the clock.
pub async fn expire_leases(pool: &PgPool) {
    sqlx::query(
        "UPDATE processing_queue SET lease_until = now() - interval '1 second' \
         WHERE status = 'running'",
    )
    .execute(pool)
    .await
    .expect("expire leases");
}

/// `SELECT count(*)` of a query's rows, e.g. `count(pool, "SELECT 1 FROM documents")`.
pub async fn count(pool: &PgPool, query: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM ({query}) AS q"))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The rows one stored copy of `out` must have, counted from the output itself (the
/// specification the persistence tests check against): one per page, chunk, canonical
/// entity and mention; edges document → chunk, chunk → next chunk, chunk → mention and
/// mention → entity.
pub fn one_copy_of(out: &lexpipe::model::DocumentOutput) -> lexpipe::store::persist::RowCounts {
    let chunks = out.chunks.len() as u64;
    let mentions = out.mentions.len() as u64;
    lexpipe::store::persist::RowCounts {
        pages: out.pages.len() as u64,
        chunks,
        canonical_entities: out.entities.len() as u64,
        mentions,
        relationships: chunks + chunks.saturating_sub(1) + 2 * mentions,
    }
}

/// One queue item's history: its status, its `attempts` counter, its rows in
/// `queue_attempts`, and how many of those completed. Exactly-once is read from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub status: String,
    pub attempts: i32,
    pub attempt_rows: i64,
    pub completed_rows: i64,
}

impl History {
    /// Processed once, by one claim that completed.
    pub fn processed_once() -> History {
        History {
            status: "completed".into(),
            attempts: 1,
            attempt_rows: 1,
            completed_rows: 1,
        }
    }
}

/// Every queue item's [`History`], by item id.
pub async fn histories(pool: &PgPool) -> std::collections::HashMap<i64, History> {
    let rows: Vec<(i64, String, i32, i64, i64)> = sqlx::query_as(
        "SELECT q.id, q.status, q.attempts, count(a.id), \
                count(a.id) FILTER (WHERE a.outcome = 'completed') \
         FROM processing_queue q LEFT JOIN queue_attempts a ON a.item_id = q.id \
         GROUP BY q.id",
    )
    .fetch_all(pool)
    .await
    .expect("queue histories");
    rows.into_iter()
        .map(|(id, status, attempts, attempt_rows, completed_rows)| {
            let h = History {
                status,
                attempts,
                attempt_rows,
                completed_rows,
            };
            (id, h)
        })
        .collect()
}

/// The rows every stored document has, by document id.
pub async fn stored_rows(
    pool: &PgPool,
) -> std::collections::HashMap<uuid::Uuid, lexpipe::store::persist::RowCounts> {
    let rows: Vec<(uuid::Uuid, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT d.id, \
                (SELECT count(*) FROM pages WHERE document_id = d.id), \
                (SELECT count(*) FROM chunks WHERE document_id = d.id), \
                (SELECT count(*) FROM canonical_entities WHERE document_id = d.id), \
                (SELECT count(*) FROM entity_mentions WHERE document_id = d.id), \
                (SELECT count(*) FROM relationships WHERE document_id = d.id) \
         FROM documents d",
    )
    .fetch_all(pool)
    .await
    .expect("row counts per document");
    let n = |v: i64| u64::try_from(v).unwrap();
    rows.into_iter()
        .map(|(id, pages, chunks, entities, mentions, relationships)| {
            let counts = lexpipe::store::persist::RowCounts {
                pages: n(pages),
                chunks: n(chunks),
                canonical_entities: n(entities),
                mentions: n(mentions),
                relationships: n(relationships),
            };
            (id, counts)
        })
        .collect()
}

/// One stored copy of each file's document ([`one_copy_of`] its analysis in `app`), by
/// document id.
pub async fn expected_rows(
    app: &lexpipe::app::App,
    files: &[std::path::PathBuf],
) -> std::collections::HashMap<uuid::Uuid, lexpipe::store::persist::RowCounts> {
    let mut expected = std::collections::HashMap::new();
    for f in files {
        let bytes = std::fs::read(f).expect("the test file is readable");
        let document = lexpipe::stages::DocumentRef::new(
            &lexpipe::text::sha256_hex(&bytes),
            &f.display().to_string(),
        );
        let out = lexpipe::pipeline::analyse(
            app,
            &document,
            &mut lexpipe::pipeline::StageTally::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: analysis fails: {e}", f.display()));
        expected.insert(out.document_uuid.parse().unwrap(), one_copy_of(&out));
    }
    expected
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=require", "t2"),
            "postgresql://u:p@h/t2?sslmode=require"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
