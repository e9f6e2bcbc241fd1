//! The restart drill of issue 11: Redis restarted empty in the middle of a run.
//!
//! The test starts a `redis-server` of its own (no persistence, a spare port, a scratch
//! folder), queues a few hundred documents, drains them with four `lexpipe worker`
//! processes, and in the middle of the run kills that server with SIGKILL and starts a
//! fresh, empty one on the same port: locks, fencing counters, document state, caches
//! and idempotency records are gone at once. PostgreSQL is the system of record, so the
//! claims are checked there: every document completes, each by exactly one claim
//! (`processing_queue`, `queue_attempts`), with one set of rows. What the workers and
//! `lexpipe status` say about the outage is checked too.
//!
//! "In the middle" is decided from what the run has done, never from a guessed time:
//! the kill waits until a fifth of the documents are completed in PostgreSQL and until
//! a few "held" documents are known to be mid-pipeline. A held document's file is a
//! named pipe that the test feeds: the worker reads it once to identify the document,
//! and blocks on the second read (the OCR step, with its state in Redis saying "running
//! at ocr") until the test feeds it again after the restart. So some documents are in
//! flight across the restart whatever the machine's speed, and their locks and state are
//! certain to vanish under them.
//!
//! Timeouts are hang guards, never assertions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexpipe::app::App;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::lock::{LockName, Locks};
use lexpipe::redis::state::{DocumentStates, StateConfig, StateStore};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe_tests::pg::{
    History, TestDb, count, expected_rows, histories, stored_rows, test_database,
};
use lexpipe_tests::{config_with, redis_cache, unique_env};
use sqlx::PgPool;
use tokio::process::Command;
use uuid::Uuid;

/// Bound on any one `lexpipe` process, and on waiting for something that should happen
/// soon: a hang guard, not a timing claim.
const PATIENCE: Duration = Duration::from_secs(600);
/// Documents processed normally.
const DOCUMENTS: usize = 300;
/// Documents held mid-pipeline across the restart.
const HELD: usize = 4;
const WORKERS: usize = 4;
const TASKS_PER_WORKER: &str = "8";
/// The workers' lock and row lease: short, so that a lost lock is noticed within seconds.
const LEASE_SECS: &str = "5";

/// A `redis-server` of the test's own, without persistence, on a spare port: it can be
/// killed and started again empty without touching the Redis other tests share.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts one; panics (never skips) when `redis-server` is missing or does not
    /// answer.
    async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a spare port")
            .port();
        let mut redis = OwnRedis {
            port,
            dir: tempfile::tempdir().expect("a scratch folder"),
            child: None,
        };
        redis.spawn().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts `redis-server` on the port, empty, and waits until it answers PING.
    async fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the restart drill starts its own redis-server, which cannot run ({e}). \
                     Install it (Debian: apt-get install redis-server), or run \
                     ./scripts/test.sh, which does."
                )
            });
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("the URL parses");
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Some(status) = child.try_wait().expect("redis-server status") {
                panic!(
                    "redis-server on port {} exited at start ({status}); its log:\n{}",
                    self.port,
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < give_up,
                "redis-server on port {} did not answer within 30 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crashed or OOM-killed server dies: nothing is saved.
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL redis-server");
        child.wait().expect("redis-server is reaped");
    }

    /// A fresh connection (each server of the test gets its own).
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the test's redis-server")
    }

    /// `run_id` from `INFO server`: changes with every start.
    async fn run_id(&self) -> String {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.connection().await)
            .await
            .expect("INFO server");
        info.lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .expect("INFO server has a run_id")
            .trim()
            .to_string()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `lexpipe` command against the test's database, Redis and prefix. Killed if the
/// test drops it.
fn lexpipe(db: &TestDb, env: &str, redis_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lexpipe"));
    cmd.args(args)
        .env("DATABASE_URL", &db.url)
        .env("LEXPIPE_ENV", env)
        .env("REDIS_URL", redis_url)
        .env("LEXPIPE_ARTEFACTS", artefacts_dir(env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts `cmd` and collects its output in a task of its own.
fn start(mut cmd: Command) -> tokio::task::JoinHandle<Output> {
    let child = cmd.spawn().expect("lexpipe starts");
    tokio::spawn(async move {
        tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("lexpipe finishes within the hang guard")
            .expect("lexpipe output is readable")
    })
}

/// The output of a finished `lexpipe` process, failing with its stderr unless it exited 0.
fn succeeded(what: &str, o: Output) -> Output {
    assert!(
        o.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(what: &str, o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// Runs `lexpipe args…` to the end; its output.
async fn run(db: &TestDb, env: &str, redis_url: &str, args: &[&str]) -> Output {
    let what = format!("lexpipe {}", args.join(" "));
    let o = start(lexpipe(db, env, redis_url, args))
        .await
        .expect("output task");
    succeeded(&what, o)
}

fn artefacts_dir(env: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lexpipe-artefacts-{env}"))
}

/// What one `lexpipe worker --json` reported.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct WorkerReport {
    completed: u64,
    failed: u64,
    requeued: u64,
    lost: u64,
    redis: RedisTrouble,
}

#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct RedisTrouble {
    locks_lost_claims_kept: u64,
    cache_fallbacks: u64,
    state_writes_failed: u64,
    documents_state_lost: u64,
}

/// Queue items by status.
async fn queue_counts(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'completed'), \
                count(*) FILTER (WHERE status = 'running') FROM processing_queue",
    )
    .fetch_one(pool)
    .await
    .expect("queue counts")
}

/// Writes `bytes` into the named pipe at `path` from a thread of its own (opening a pipe
/// for writing blocks until a reader opens it); returns when the reader has the bytes.
fn feed(path: &Path, bytes: &[u8]) -> std::thread::JoinHandle<()> {
    let (path, bytes) = (path.to_path_buf(), bytes.to_vec());
    std::thread::spawn(move || {
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("feeding {}: {e}", path.display()))
    })
}

/// Waits until `done()` holds, checking every 25 ms, within the hang guard.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < give_up, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A one-to-three-page agreement, different for each `i`.
fn agreement(i: usize) -> Vec<u8> {
    let pages: Vec<String> = (0..1 + i % 3)
        .map(|p| {
            format!(
                "Agreement no. {i} between Acme Corp. and Jane Roe dated March {}, 2024. \
                 Page {}: the tenant shall pay USD {}.00 per month to Acme Corp. under \
                 Case No. 2:24-cv-{:05} in the Superior Court of California.",
                1 + i % 28,
                p + 1,
                1_000 + 37 * i,
                i
            )
        })
        .collect();
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    lexpipe::samples::text_only_pdf(&pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_mid_run_loses_state_but_every_document_completes_once_and_status_says_the_state_was_lost()
 {
    // Arrange: a Redis of the test's own, a database, and documents queued: the held
    // ones first (so that the first claims take them), then the rest.
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let env = unique_env("restart");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let (held_dir, rest_dir) = (root.join("held"), root.join("rest"));
    std::fs::create_dir_all(&held_dir).unwrap();
    std::fs::create_dir_all(&rest_dir).unwrap();
    let held: Vec<(PathBuf, Vec<u8>)> = (0..HELD)
        .map(|k| {
            let path = held_dir.join(format!("held-{k}.pdf"));
            let bytes = agreement(DOCUMENTS + k);
            std::fs::write(&path, &bytes).unwrap();
            (path, bytes)
        })
        .collect();
    let mut files: Vec<PathBuf> = (0..DOCUMENTS)
        .map(|i| {
            let path = rest_dir.join(format!("agreement-{i:04}.pdf"));
            std::fs::write(&path, agreement(i)).unwrap();
            path
        })
        .collect();
    let queued_held = json(
        "enqueue held",
        &run(
            &db,
            &env,
            &url,
            &["enqueue", held_dir.to_str().unwrap(), "--json"],
        )
        .await,
    );
    assert_eq!(queued_held["created"], HELD);
    let queued = json(
        "enqueue",
        &run(
            &db,
            &env,
            &url,
            &["enqueue", rest_dir.to_str().unwrap(), "--json"],
        )
        .await,
    );
    assert_eq!(queued["created"], DOCUMENTS, "every file is a new document");
    let total = DOCUMENTS + HELD;
    let held_items: Vec<(i64, Uuid)> = queued_held["enqueued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["item_id"].as_i64().unwrap(),
                r["document_uuid"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // The held files become named pipes; their bytes are fed by the test.
    for (path, _) in &held {
        std::fs::remove_file(path).unwrap();
        let mkfifo = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(mkfifo.success(), "mkfifo {}", path.display());
    }
    let cfg = config_with(&env, &[("REDIS_URL", &url)]);
    let states_before = StateStore::new(
        RedisHandle::new(&cfg).unwrap(),
        KeyBuilder::new(&cfg.env),
        StateConfig::default(),
    );

    // Act 1: four workers drain the queue; the held documents are fed once (the worker
    // identifies them) and then block in their OCR step.
    let began = Instant::now();
    let args = [
        "worker",
        "--until-empty",
        "--json",
        "--concurrency",
        TASKS_PER_WORKER,
        "--lease-secs",
        LEASE_SECS,
    ];
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| start(lexpipe(&db, &env, &url, &args)))
        .collect();
    let first_feeds: Vec<_> = held.iter().map(|(p, b)| feed(p, b)).collect();
    let (pool, held_docs, states) = (&db.pool, &held_items, &states_before);
    until(
        "a fifth of the documents are completed and every held one is running at ocr",
        || async move {
            let (completed, _) = queue_counts(pool).await;
            if (completed as usize) < DOCUMENTS / 5 {
                return false;
            }
            for (_, doc) in held_docs {
                match states.get(*doc).await {
                    Ok(Some(s))
                        if s.status == DocumentStatus::Running
                            && s.current_stage.as_deref() == Some("ocr") => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await;
    for f in first_feeds {
        f.join().expect("the first read of each held file is done");
    }
    let completed_before: HashSet<Uuid> =
        sqlx::query_scalar("SELECT document_id FROM processing_queue WHERE status = 'completed'")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let (_, running_before) = queue_counts(&db.pool).await;
    let run_id_before = redis.run_id().await;

    // Act 2: Redis dies (SIGKILL) and a fresh, empty one starts on the same port.
    redis.kill9();
    let restarted_after = began.elapsed();
    redis.spawn().await;
    let run_id_after = redis.run_id().await;
    assert_ne!(run_id_before, run_id_after, "a new server, not the old one");
    // The workers holding the held items notice the lost lock, keep their claims (which
    // PostgreSQL still shows) and take the lock again on the new server.
    let locks = Locks::new(RedisHandle::new(&cfg).unwrap(), KeyBuilder::new(&cfg.env));
    let mut probe = redis.connection().await;
    until("the held items are locked again on the new server", || {
        let keys: Vec<String> = held_items
            .iter()
            .map(|(item, _)| locks.lock_key(&LockName::queue_item(*item)))
            .collect();
        let mut c = probe.clone();
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .unwrap_or(0);
            n == keys.len() as i64
        }
    })
    .await;
    let relocked_after = began.elapsed();
    // The held documents go on: their OCR step reads its bytes now.
    let second_feeds: Vec<_> = held.iter().map(|(p, b)| feed(p, b)).collect();
    let mut reports = Vec::new();
    let mut stderrs = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let o = succeeded(&format!("worker {i}"), w.await.expect("output task"));
        stderrs.push(String::from_utf8_lossy(&o.stderr).to_string());
        let report: WorkerReport =
            serde_json::from_value(json(&format!("worker {i}"), &o)).expect("a worker report");
        reports.push(report);
    }
    let drained_after = began.elapsed();
    for f in second_feeds {
        f.join().unwrap();
    }
    let _: i64 = redis::cmd("DBSIZE")
        .query_async(&mut probe)
        .await
        .expect("the new server is still up");

    // Assert, from PostgreSQL: every item was claimed once and completed by that claim,
    // the ones in flight across the restart included.
    let histories = histories(&db.pool).await;
    assert_eq!(histories.len(), total, "one queue item per document");
    let mut odd: Vec<_> = histories
        .iter()
        .filter(|(_, h)| **h != History::processed_once())
        .map(|(id, h)| (*id, h.clone()))
        .collect();
    odd.sort_by_key(|(id, _)| *id);
    odd.truncate(10);
    assert!(
        odd.is_empty(),
        "items not processed exactly once (first 10): {odd:?}\nworker stderr:\n{}",
        stderrs.join("\n---\n")
    );
    assert_eq!(
        count(&db.pool, "SELECT 1 FROM queue_attempts").await,
        total as i64,
        "no item was claimed twice"
    );
    assert_eq!(
        count(
            &db.pool,
            "SELECT 1 FROM documents WHERE status = 'completed'"
        )
        .await,
        total as i64
    );
    // Each document has exactly the rows of one copy of its own results.
    for (path, bytes) in &held {
        std::fs::remove_file(path).unwrap();
        std::fs::write(path, bytes).unwrap();
        files.push(path.clone());
    }
    let (cache, _) = redis_cache(&cfg);
    let deps = App::with_folder(Arc::new(cfg.clone()), cache, artefacts_dir(&env));
    let expected = expected_rows(&deps, &files).await;
    assert_eq!(expected.len(), total, "the test files are distinct");
    let stored = stored_rows(&db.pool).await;
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, want)| stored.get(id) != Some(want))
        .take(10)
        .map(|(id, want)| (id, want, stored.get(id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "documents without exactly one set of rows (id, expected, stored): {wrong:?}"
    );

    // Assert, from the workers: none crashed (each exited 0 with a report), none failed,
    // requeued or lost an item, and the outage is in their reports.
    let sum = |f: fn(&WorkerReport) -> u64| reports.iter().map(f).sum::<u64>();
    assert_eq!(sum(|r| r.completed), total as u64, "{reports:?}");
    assert_eq!(
        (sum(|r| r.failed), sum(|r| r.requeued), sum(|r| r.lost)),
        (0, 0, 0),
        "{reports:?}"
    );
    let kept = sum(|r| r.redis.locks_lost_claims_kept);
    assert!(
        kept >= HELD as u64,
        "every held item's lock vanished and its claim was kept: {reports:?}"
    );
    let state_lost_in_flight = sum(|r| r.redis.documents_state_lost);
    assert!(
        state_lost_in_flight >= HELD as u64,
        "the held documents' state vanished under them: {reports:?}"
    );
    let fallbacks = sum(|r| r.redis.cache_fallbacks);
    let state_writes_failed = sum(|r| r.redis.state_writes_failed);

    // Assert, from `lexpipe status`: the held documents (in flight at the restart) are
    // reported as having lost their state, with PostgreSQL's word on them.
    for (_, doc) in &held_items {
        let id = doc.to_string();
        let text = run(&db, &env, &url, &["status", &id]).await;
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("status    state lost (Redis restarted or evicted)"),
            "{text}"
        );
        assert!(text.contains("Redis restarted at"), "{text}");
        assert!(
            text.contains("database  completed (attempt 1 of 3)"),
            "{text}"
        );
        assert!(!text.contains('%'), "no made-up progress: {text}");
        let shown = json(
            "status --json",
            &run(&db, &env, &url, &["status", &id, "--json"]).await,
        );
        assert_eq!(shown["state"], "lost", "{shown:#}");
        assert_eq!(shown["reason"], "redis_restarted", "{shown:#}");
        assert_eq!(shown["database"]["status"], "completed", "{shown:#}");
        assert_eq!(shown["database"]["attempts"], 1, "{shown:#}");
        assert_eq!(shown["redis_server"]["run_id"], run_id_after.as_str());
    }
    // Every document either has its state, complete, or is reported lost; the ones
    // completed before the restart are among the lost.
    let states_after = StateStore::new(
        RedisHandle::new(&cfg).unwrap(),
        KeyBuilder::new(&cfg.env),
        StateConfig::default(),
    );
    let mut without_state = HashSet::new();
    for id in expected.keys() {
        match states_after.get(*id).await.expect("state is readable") {
            Some(s) => assert_eq!(
                (s.status, s.progress),
                (DocumentStatus::Completed, 100),
                "a document with state shows it complete: {s:?}"
            ),
            None => {
                without_state.insert(*id);
            }
        }
    }
    assert!(
        completed_before.is_subset(&without_state),
        "documents completed before the restart have no state on the new server"
    );
    let all = json(
        "status --all --json",
        &run(&db, &env, &url, &["status", "--all", "--json"]).await,
    );
    let lost = &all["database"]["state_lost"];
    // Every document without state is reported lost; those claimed before the restart
    // (at least the ones completed before it and the held ones) are put down to it.
    assert_eq!(lost["count"], without_state.len(), "{all:#}");
    let (restarted, evicted) = (
        lost["redis_restarted"].as_u64().unwrap(),
        lost["evicted_or_not_tracked"].as_u64().unwrap(),
    );
    assert_eq!(restarted + evicted, without_state.len() as u64, "{all:#}");
    assert!(
        restarted >= (completed_before.len() + HELD) as u64,
        "{all:#}"
    );
    assert_eq!(lost["checked"], total, "{all:#}");
    assert_eq!(all["database"]["counts"]["completed"], total, "{all:#}");
    assert_eq!(
        all["counts"]["completed"],
        total - without_state.len(),
        "Redis counts only the documents it has state for: {all:#}"
    );
    let listed: Vec<&serde_json::Value> = lost["documents"].as_array().unwrap().iter().collect();
    assert!(!listed.is_empty());
    for d in &listed {
        assert_eq!(d["state"], "lost");
        let id: Uuid = d["document_uuid"].as_str().unwrap().parse().unwrap();
        assert!(without_state.contains(&id), "{d:#}");
    }
    let text = run(&db, &env, &url, &["status", "--all"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "state lost (Redis restarted or evicted): {} documents PostgreSQL has as started \
             have no state in Redis (",
            without_state.len(),
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "documents in PostgreSQL ({total} in all): 0 queued, 0 running, {total} completed, 0 failed"
        )),
        "{text}"
    );

    // The drill's figures, for docs/redis_integration.md.
    println!(
        "restart drill: {total} documents ({HELD} held across the restart), {WORKERS} workers x \
         {TASKS_PER_WORKER} tasks, lease {LEASE_SECS} s; Redis killed at {:.1} s with {} \
         completed and {running_before} running; held items locked again at {:.1} s; drained \
         at {:.1} s; locks lost with claims kept: {kept}; cache fallbacks: {fallbacks}; state \
         writes failed: {state_writes_failed}; documents whose state vanished mid-run: \
         {state_lost_in_flight}; documents reported state lost: {} ({restarted} put down to the restart); duplicates: {}",
        restarted_after.as_secs_f64(),
        completed_before.len(),
        relocked_after.as_secs_f64(),
        drained_after.as_secs_f64(),
        without_state.len(),
        count(&db.pool, "SELECT 1 FROM queue_attempts").await - total as i64,
    );
    let _ = std::fs::remove_dir_all(artefacts_dir(&env));
    db.drop_database().await;
    drop(redis);
}
