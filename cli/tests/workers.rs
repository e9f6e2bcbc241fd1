//! Queue workers as they run in production: real `lexpipe enqueue` and `lexpipe worker`
//! processes sharing one PostgreSQL database and one Redis, killed with SIGKILL where a
//! test needs a dead worker. Every claim of exactly-once is checked in the database
//! (`processing_queue`, `queue_attempts`, the result tables), not in what the workers say
//! about themselves.
//!
//! Each test has its own database (`test_database`) and its own Redis prefix
//! (`LEXPIPE_ENV`), so the tests can run in parallel with each other and with the rest of
//! the suite. Timeouts are hang guards, never assertions.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lexpipe::app::App;
use lexpipe::model::DocumentOutput;
use lexpipe::pipeline::StageTally;
use lexpipe::redis::KeyBuilder;
use lexpipe::redis::idempotency::Idempotency;
use lexpipe::runner;
use lexpipe::stages::DocumentRef;
use lexpipe::stages::persist::PersistOutcome;
use lexpipe::store::db::DbError;
use lexpipe::store::persist::{self, PersistReport, RowCounts};
use lexpipe::store::queue::{self, AttemptOutcome, Claim, Status};
use lexpipe::text::sha256_hex;
use lexpipe_tests::pg::{
    History, TestDb, count, expected_rows, histories, one_copy_of, stored_rows, test_database,
};
use lexpipe_tests::{cleanup, config_with, redis_cache, require_redis, unique_env};
use sqlx::PgPool;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::Barrier;
use uuid::Uuid;

/// Bound on any one `lexpipe` process, and on waiting for something that should happen
/// soon: a hang guard, not a timing claim.
const PATIENCE: Duration = Duration::from_secs(600);

/// A `lexpipe` command against the test's database and Redis prefix. The process is
/// killed if the test drops it (a failed assertion, a timeout).
fn lexpipe(db: &TestDb, env: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lexpipe"));
    cmd.args(args)
        .env("DATABASE_URL", &db.url)
        .env("LEXPIPE_ENV", env)
        .envs(lexpipe_tests::redis_env())
        .env("LEXPIPE_ARTEFACTS", artefacts_dir(env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts `cmd` and collects its output in a task of its own, so that every process of
/// a test has its pipes drained while the others run.
fn start(mut cmd: Command) -> tokio::task::JoinHandle<Output> {
    let child = cmd.spawn().expect("lexpipe starts");
    tokio::spawn(async move {
        tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("lexpipe finishes within the hang guard")
            .expect("lexpipe output is readable")
    })
}

/// Waits for a process started with [`start`] and returns its `--json` output, failing
/// with its stderr if it did not succeed.
async fn json_of(what: &str, run: tokio::task::JoinHandle<Output>) -> serde_json::Value {
    let o = run.await.expect("output task");
    assert!(
        o.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// `lexpipe enqueue <paths> --json`, run to the end.
async fn enqueue(db: &TestDb, env: &str, paths: &[&Path]) -> serde_json::Value {
    let mut args = vec!["enqueue".to_string()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_of("lexpipe enqueue", start(lexpipe(db, env, &args))).await
}

/// What one `lexpipe worker --json` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
struct WorkerReport {
    completed: u64,
    failed: u64,
    requeued: u64,
    lost: u64,
}

/// Starts `n` `lexpipe worker --until-empty --json` processes with `extra` arguments at
/// once, and returns their reports when all have exited.
async fn drain_with_workers(db: &TestDb, env: &str, n: usize, extra: &[&str]) -> Vec<WorkerReport> {
    let mut args = vec!["worker", "--until-empty", "--json"];
    args.extend_from_slice(extra);
    let runs: Vec<_> = (0..n).map(|_| start(lexpipe(db, env, &args))).collect();
    let mut reports = Vec::with_capacity(n);
    for (i, run) in runs.into_iter().enumerate() {
        let json = json_of(&format!("worker {i}"), run).await;
        reports.push(serde_json::from_value(json).expect("a worker report"));
    }
    reports
}

/// Where a test's processes keep their artefacts (content-addressed, so one folder per
/// test serves all of them).
fn artefacts_dir(env: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lexpipe-artefacts-{env}"))
}

/// Stages built in this process, sharing the test's Redis prefix: results the workers
/// cached are served from there.
fn deps_for(env: &str) -> App {
    let cfg = config_with(env, &[]);
    let (cache, _) = redis_cache(&cfg);
    App::with_folder(Arc::new(cfg), cache, artefacts_dir(env))
}

/// Every analysis stage, in this process, for the file at `path`.
async fn analyse(deps: &App, path: &Path) -> DocumentOutput {
    let bytes = std::fs::read(path).expect("the test file is readable");
    let document = DocumentRef::new(&sha256_hex(&bytes), &path.display().to_string());
    lexpipe::pipeline::analyse(deps, &document, &mut StageTally::default())
        .await
        .unwrap_or_else(|e| panic!("{}: analysis fails: {e}", path.display()))
}

/// Items whose history is not `want`, for an assertion message that names them.
fn unlike(histories: &HashMap<i64, History>, want: &History) -> Vec<(i64, History)> {
    let mut odd: Vec<_> = histories
        .iter()
        .filter(|(_, h)| *h != want)
        .map(|(id, h)| (*id, h.clone()))
        .collect();
    odd.sort_by_key(|(id, _)| *id);
    odd.truncate(10);
    odd
}

fn real_path(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).expect("path exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_items_across_four_worker_processes_are_each_processed_exactly_once() {
    // Arrange: 2,000 distinct one-page PDFs, queued.
    require_redis().await;
    let env = unique_env("workers-2k");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..2_000)
        .map(|i| {
            let text = format!(
                "Agreement no. {i} between Acme Corp. and Jane Roe dated March {}, 2024.",
                1 + i % 28
            );
            let path = dir.path().join(format!("agreement-{i:04}.pdf"));
            std::fs::write(&path, lexpipe::samples::text_only_pdf(&[&text])).unwrap();
            path
        })
        .collect();
    let queued = enqueue(&db, &env, &[dir.path()]).await;
    assert_eq!(
        queued["created"], 2_000,
        "every distinct file is a new item"
    );
    assert_eq!(queued["existing"], 0);

    // Act: four worker processes of 16 tasks each, started together.
    let reports = drain_with_workers(&db, &env, 4, &["--concurrency", "16"]).await;

    // Assert, from the database: every item was claimed once and completed by that claim.
    let histories = histories(&db.pool).await;
    assert_eq!(histories.len(), 2_000, "one queue item per document");
    let odd = unlike(&histories, &History::processed_once());
    assert!(
        odd.is_empty(),
        "items not processed exactly once (first 10): {odd:?}"
    );
    assert_eq!(
        count(&db.pool, "SELECT 1 FROM queue_attempts").await,
        2_000,
        "no item was claimed twice: no lease ran out in a healthy run"
    );
    assert_eq!(
        count(
            &db.pool,
            "SELECT 1 FROM documents WHERE status = 'completed'"
        )
        .await,
        2_000
    );
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 2_000);
    assert_eq!(
        count(&db.pool, "SELECT 1 FROM pages").await,
        2_000,
        "one page row per one-page document"
    );
    // Each document has exactly the rows of one copy of its own results.
    let expected = expected_rows(&deps_for(&env), &files).await;
    assert_eq!(expected.len(), 2_000, "the test files are distinct");
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
    // And the workers agree.
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    assert_eq!(completed, 2_000, "worker reports: {reports:?}");
    for r in &reports {
        assert_eq!((r.lost, r.failed, r.requeued), (0, 0, 0), "{reports:?}");
    }

    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_item_is_reclaimed_after_its_lease_and_completed_exactly_once_and_its_old_token_is_refused()
 {
    // Arrange: one queued document whose file is then swapped for a named pipe, so that a
    // worker claiming it blocks reading it: mid-item for as long as the test needs,
    // whatever the machine's speed.
    require_redis().await;
    let env = unique_env("workers-kill");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let file = real_path(dir.path()).join("lease.pdf");
    std::fs::write(
        &file,
        lexpipe::samples::text_only_pdf(&[
            "Commercial lease between Acme Corp. and Jane Roe dated March 4, 2024.",
            "The tenant shall pay USD 4,500.00 per month to Acme Corp.",
        ]),
    )
    .unwrap();
    let queued = enqueue(&db, &env, &[&file]).await;
    assert_eq!(queued["created"], 1);
    let item_id = queued["enqueued"][0]["item_id"].as_i64().unwrap();
    let held = file.with_extension("pdf.held");
    std::fs::rename(&file, &held).unwrap();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .expect("mkfifo runs");
    assert!(mkfifo.success(), "mkfifo {}", file.display());

    // Act 1: a worker claims the item and is killed with SIGKILL while it works on it.
    let mut doomed = lexpipe(
        &db,
        &env,
        &["worker", "--concurrency", "1", "--lease-secs", "2"],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("worker starts");
    let pid = doomed.id().expect("the worker is running");
    let claimed = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(status) = doomed.try_wait().expect("worker status") {
                let mut stderr = String::new();
                let mut pipe = doomed.stderr.take().expect("stderr is piped");
                let _ = pipe.read_to_string(&mut stderr).await;
                panic!("the worker exited ({status}) before claiming the item: {stderr}");
            }
            let item = queue::item(&db.pool, item_id).await.unwrap().unwrap();
            if item.status == Status::Running && item.attempts == 1 {
                return item;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker claims the item within the hang guard");
    doomed.start_kill().expect("SIGKILL is sent");
    let status = doomed.wait().await.expect("the killed worker is reaped");
    assert_eq!(status.signal(), Some(9), "the worker died of SIGKILL");
    let old_token = claimed.fencing_token;
    let before = queue::attempts(&db.pool, item_id).await.unwrap();
    assert_eq!(before.len(), 1);
    assert!(
        before[0].worker_id.contains(&format!(":{pid}")),
        "the killed process made the first claim: {before:?}"
    );
    assert_eq!(
        before[0].outcome,
        AttemptOutcome::Running,
        "killed mid-item: the first attempt never finished"
    );
    // The file is back for whoever claims the item next.
    std::fs::remove_file(&file).unwrap();
    std::fs::rename(&held, &file).unwrap();

    // Act 2: another worker drains the queue; it can take the item only once the dead
    // worker's lease and lock have run out.
    let reports = drain_with_workers(&db, &env, 1, &["--lease-secs", "2"]).await;

    // Assert: the second claim completed the item, with a newer token.
    assert_eq!(
        reports,
        vec![WorkerReport {
            completed: 1,
            failed: 0,
            requeued: 0,
            lost: 0
        }]
    );
    let item = queue::item(&db.pool, item_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Completed);
    assert_eq!(item.attempts, 2);
    let attempts = queue::attempts(&db.pool, item_id).await.unwrap();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt, a.fencing_token, a.outcome))
        .collect();
    assert_eq!(attempts.len(), 2, "{summary:?}");
    assert_eq!(
        (
            attempts[0].attempt,
            attempts[0].fencing_token,
            attempts[0].outcome
        ),
        (1, old_token, AttemptOutcome::Abandoned),
        "{summary:?}"
    );
    assert_eq!(attempts[1].attempt, 2, "{summary:?}");
    assert_eq!(
        attempts[1].outcome,
        AttemptOutcome::Completed,
        "{summary:?}"
    );
    let new_token = attempts[1].fencing_token;
    assert!(new_token > old_token, "{summary:?}");
    assert_eq!(item.fencing_token, new_token);
    let stored = persist::load_document(&db.pool, item.document_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(stored.fencing_token, new_token);
    let out = analyse(&deps_for(&env), &file).await;
    assert_eq!(stored.rows, one_copy_of(&out));

    // Act 3: the dead worker's writes, arriving late with its old token.
    let late_persist = persist::persist_document(&db.pool, &out, Some(old_token)).await;
    let late_claim = Claim {
        item_id,
        document_id: item.document_id,
        source_path: item.source_path.clone(),
        attempt: 1,
        fencing_token: old_token,
        lease_until: attempts[0].started_at,
    };
    let late_complete = queue::complete(&db.pool, &late_claim).await.unwrap();

    // Assert: both refused, and nothing changed but the record of the late attempt.
    match late_persist {
        Err(DbError::StaleFencingToken {
            document_id,
            presented,
            current,
        }) => {
            assert_eq!(
                (document_id, presented, current),
                (item.document_id, old_token, new_token)
            );
        }
        other => panic!("a persist with the old token must be refused, got {other:?}"),
    }
    assert!(
        !late_complete,
        "complete with the old token reports the claim lost"
    );
    let after = persist::load_document(&db.pool, item.document_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, stored, "the refused writes changed nothing");
    assert_eq!(queue::item(&db.pool, item_id).await.unwrap().unwrap(), item);
    let outcomes: Vec<_> = queue::attempts(&db.pool, item_id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![AttemptOutcome::Stale, AttemptOutcome::Completed],
        "the late attempt is recorded as stale; the completed one is untouched"
    );

    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_document_enqueued_ten_times_concurrently_is_one_document_with_one_set_of_rows() {
    // Arrange: one file and a byte-identical copy under another name.
    require_redis().await;
    let env = unique_env("workers-dup");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let original = real_path(dir.path()).join("nda.pdf");
    let copy = real_path(dir.path()).join("nda (1).pdf");
    let bytes = lexpipe::samples::text_only_pdf(&[
        "Mutual nondisclosure agreement between Acme Corp. and Jane Roe dated March 4, 2024.",
    ]);
    std::fs::write(&original, &bytes).unwrap();
    std::fs::write(&copy, &bytes).unwrap();

    // Act: ten `lexpipe enqueue` processes at once, each naming both files (in turns of
    // order), then one worker.
    let runs: Vec<_> = (0..10)
        .map(|i| {
            let (a, b) = if i % 2 == 0 {
                (&original, &copy)
            } else {
                (&copy, &original)
            };
            let (a, b) = (a.display().to_string(), b.display().to_string());
            start(lexpipe(&db, &env, &["enqueue", &a, &b, "--json"]))
        })
        .collect();
    let mut created = 0;
    let mut items = std::collections::HashSet::new();
    for (i, run) in runs.into_iter().enumerate() {
        let json = json_of(&format!("enqueue {i}"), run).await;
        created += json["created"].as_u64().unwrap();
        for row in json["enqueued"].as_array().unwrap() {
            items.insert(row["item_id"].as_i64().unwrap());
        }
    }

    // Assert: one document, one item, both names.
    assert_eq!(created, 1, "exactly one of 20 enqueues created the item");
    assert_eq!(items.len(), 1, "every enqueue names the same item");
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 1);
    assert_eq!(count(&db.pool, "SELECT 1 FROM processing_queue").await, 1);
    let id: Uuid = sqlx::query_scalar("SELECT id FROM documents")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let names = vec![copy.display().to_string(), original.display().to_string()];
    let queued = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(queued.sources, names, "sorted");
    assert_eq!(queued.rows, RowCounts::default(), "nothing processed yet");

    // Act: one worker drains the queue.
    let reports = drain_with_workers(&db, &env, 1, &[]).await;

    // Assert: processed once, one set of rows, both names kept.
    assert_eq!(reports[0].completed, 1, "{reports:?}");
    let histories = histories(&db.pool).await;
    assert_eq!(unlike(&histories, &History::processed_once()), vec![]);
    let done = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(done.sources, names);
    let out = analyse(&deps_for(&env), &original).await;
    assert_eq!(done.rows, one_copy_of(&out));
    assert_eq!(
        count(&db.pool, "SELECT 1 FROM pages").await,
        out.pages.len() as i64,
        "no rows of any other document"
    );

    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persist_called_sixteen_times_concurrently_writes_one_set_of_rows() {
    // Arrange: one sample's results, and the real Redis idempotency records.
    require_redis().await;
    let env = unique_env("workers-persist");
    let db = test_database().await;
    let cfg = config_with(&env, &[]);
    let deps = deps_for(&env);
    let file = lexpipe_tests::samples_dir().join("settlement_agreement.pdf");
    let out = Arc::new(analyse(&deps, &real_path(&file)).await);
    let handle = lexpipe::redis::RedisHandle::new(&cfg).expect("redis handle");
    let idempotency = Idempotency::new(handle, KeyBuilder::new(&cfg.env), cfg.idempotency);
    let start = Arc::new(Barrier::new(16));

    // Act: sixteen persist stages released together.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, idem, out, start) = (
                db.pool.clone(),
                idempotency.clone(),
                out.clone(),
                start.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                lexpipe::stages::persist::run(&pool, Some(&idem), &out, None, None).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().expect("no persist fails"));
    }

    // Assert: one writer; the others were told it is done or under way.
    let written: Vec<&PersistReport> = outcomes
        .iter()
        .filter_map(|o| match o {
            PersistOutcome::Written { report } => Some(report),
            _ => None,
        })
        .collect();
    assert_eq!(written.len(), 1, "{outcomes:?}");
    let written = written[0];
    for o in &outcomes {
        match o {
            PersistOutcome::Written { .. } | PersistOutcome::InProgress => {}
            PersistOutcome::AlreadyDone { report } => assert_eq!(
                &serde_json::from_value::<PersistReport>(report.clone()).unwrap(),
                written,
                "a finished call hands back the writer's report"
            ),
        }
    }
    let one = one_copy_of(&out);
    assert_eq!(written.stored, one);
    assert_eq!(written.written, one, "the first write inserted every row");
    let id: Uuid = out.document_uuid.parse().unwrap();
    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.rows, one);
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(stored.sources, vec![out.source.clone()]);
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 1);

    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terminals_draining_the_samples_process_no_document_twice() {
    // Arrange: the shipped samples (ten files, one a byte-identical copy), queued.
    require_redis().await;
    let env = unique_env("workers-samples");
    let db = test_database().await;
    let samples = real_path(&lexpipe_tests::samples_dir());
    let queued = enqueue(&db, &env, &[&samples]).await;
    assert_eq!(queued["enqueued"].as_array().unwrap().len(), 10);
    assert_eq!(queued["created"], 9, "the copy is not a new document");
    assert_eq!(queued["existing"], 1);

    // Act: two workers, as if started in two terminals.
    let reports = drain_with_workers(&db, &env, 2, &[]).await;

    // Assert: nine documents, each claimed once and completed by that claim.
    let histories = histories(&db.pool).await;
    assert_eq!(histories.len(), 9);
    assert_eq!(unlike(&histories, &History::processed_once()), vec![]);
    assert_eq!(count(&db.pool, "SELECT 1 FROM queue_attempts").await, 9);
    assert_eq!(
        count(
            &db.pool,
            "SELECT 1 FROM documents WHERE status = 'completed'"
        )
        .await,
        9
    );
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 9);
    assert_eq!(count(&db.pool, "SELECT 1 FROM document_sources").await, 10);
    let files = runner::collect_inputs(&[samples]).unwrap();
    let expected = expected_rows(&deps_for(&env), &files).await;
    assert_eq!(expected.len(), 9);
    assert_eq!(stored_rows(&db.pool).await, expected);
    let completed: u64 = reports.iter().map(|r| r.completed).sum();
    assert_eq!(completed, 9, "{reports:?}");
    for r in &reports {
        assert_eq!((r.lost, r.failed, r.requeued), (0, 0, 0), "{reports:?}");
    }

    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persist_record_left_in_progress_by_a_dead_writer_does_not_complete_the_item_without_its_rows()
 {
    require_redis().await;
    let env = unique_env("workers-repro");
    let db = test_database().await;
    let cfg = config_with(&env, &[]);
    let file = real_path(&lexpipe_tests::samples_dir().join("nda.pdf"));
    let queued = enqueue(&db, &env, &[&file]).await;
    assert_eq!(queued["created"], 1);
    // A worker that died inside persist: it began the idempotency record and never
    // finished it (a dropped guard is what a crash leaves behind).
    let out = analyse(&deps_for(&env), &file).await;
    let handle = lexpipe::redis::RedisHandle::new(&cfg).expect("redis handle");
    let idem = Idempotency::new(handle, KeyBuilder::new(&cfg.env), cfg.idempotency);
    let key = format!(
        "{}:{}:{}",
        out.document_uuid,
        out.content_sha256,
        lexpipe::stages::persist::pipeline_version()
    );
    match idem
        .begin(
            lexpipe::stages::persist::OPERATION,
            &key,
            &lexpipe::stages::persist::payload_hash(&out),
            None,
        )
        .await
        .unwrap()
    {
        lexpipe::redis::idempotency::Outcome::Proceed(guard) => drop(guard),
        other => panic!("{other:?}"),
    }
    let reports = drain_with_workers(&db, &env, 1, &[]).await;
    let id: Uuid = out.document_uuid.parse().unwrap();
    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(
        reports.iter().map(|r| r.completed).sum::<u64>(),
        1,
        "{reports:?}"
    );
    assert_eq!(
        stored.rows,
        one_copy_of(&out),
        "the completed item has its rows"
    );
    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_reports_an_unreadable_input_queues_the_rest_and_fails_only_when_nothing_was_queued()
 {
    // Arrange: a folder with one readable PDF and a dangling link named like a PDF.
    require_redis().await;
    let env = unique_env("enqueue-bad");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = real_path(dir.path());
    std::fs::write(
        folder.join("good.pdf"),
        lexpipe::samples::text_only_pdf(&["Order of the Court dated May 1, 2024."]),
    )
    .unwrap();
    std::os::unix::fs::symlink(folder.join("gone"), folder.join("gone.pdf")).unwrap();

    // Act 1: the good file is queued, the bad one reported.
    let queued = enqueue(&db, &env, &[&folder]).await;

    // Assert 1
    assert_eq!(queued["created"], 1, "{queued:#}");
    assert_eq!(queued["unreadable"], 1, "{queued:#}");
    let bad = queued["enqueued"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"].as_str().unwrap().ends_with("gone.pdf"))
        .expect("the unreadable file is reported");
    assert_eq!(bad["error_type"], "ReadError");

    // Act 2: a folder holding only an unreadable file: nothing can be queued.
    let bad_folder = folder.join("only-bad");
    std::fs::create_dir(&bad_folder).unwrap();
    std::os::unix::fs::symlink(folder.join("gone"), bad_folder.join("gone.pdf")).unwrap();
    let only_bad = start(lexpipe(
        &db,
        &env,
        &["enqueue", bad_folder.to_str().unwrap(), "--json"],
    ))
    .await
    .unwrap();

    // Assert 2
    assert_eq!(only_bad.status.code(), Some(1), "{only_bad:?}");
    assert!(String::from_utf8_lossy(&only_bad.stderr).contains("gone.pdf"));
    cleanup(&env).await;
}

/// Documents completed so far, from the database.
async fn completed_documents(pool: &PgPool) -> i64 {
    count(pool, "SELECT 1 FROM documents WHERE status = 'completed'").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_a_primary_killed_while_four_workers_drain_500_documents_repeats_and_loses_nothing()
 {
    // Arrange: a 3-primary, 3-replica cluster of our own (this test kills one of its
    // nodes), and 500 distinct one-page PDFs queued.
    require_redis().await;
    let cluster = lexpipe_tests::cluster::RedisCluster::start();
    let env = unique_env("failover");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..500)
        .map(|i| {
            let text = format!(
                "Order no. {i} in Roe v. Acme Corp., entered June {}, 2023 by Judge Ann Poe.",
                1 + i % 30
            );
            let path = dir.path().join(format!("order-{i:03}.pdf"));
            std::fs::write(&path, lexpipe::samples::text_only_pdf(&[&text])).unwrap();
            path
        })
        .collect();
    let on_cluster = |args: &[&str]| {
        let mut cmd = lexpipe(&db, &env, args);
        // Every node as a seed: `lexpipe status` starts after one of them died.
        cmd.env("REDIS_URL", cluster.seeds())
            .env("LEXPIPE_REDIS_CLUSTER", "true");
        cmd
    };
    let dir_arg = dir.path().display().to_string();
    let queued = json_of(
        "lexpipe enqueue",
        start(on_cluster(&["enqueue", &dir_arg, "--json"])),
    )
    .await;
    assert_eq!(queued["created"], 500);

    // Act: four workers of 16 tasks; once a fifth of the documents are done, kill -9 a
    // primary and let its replica take over while the workers carry on.
    let args = ["worker", "--until-empty", "--json", "--concurrency", "16"];
    let runs: Vec<_> = (0..4).map(|_| start(on_cluster(&args))).collect();
    let give_up = tokio::time::Instant::now() + PATIENCE;
    while completed_documents(&db.pool).await < 100 {
        assert!(tokio::time::Instant::now() < give_up, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = cluster.primary_ports()[0];
    let done_at_kill = completed_documents(&db.pool).await;
    cluster.kill(victim);
    let failover =
        tokio::task::block_in_place(|| cluster.wait_for_failover(victim, Duration::from_secs(60)));
    let done_at_failover = completed_documents(&db.pool).await;
    let mut reports = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        reports.push(json_of(&format!("worker {i}"), run).await);
    }

    // Assert, from the database: every item completed, by exactly one completed attempt,
    // and every document has exactly one copy of its rows.
    let histories = histories(&db.pool).await;
    assert_eq!(histories.len(), 500);
    let odd: Vec<_> = histories
        .iter()
        .filter(|(_, h)| h.status != "completed" || h.completed_rows != 1)
        .take(10)
        .collect();
    assert!(odd.is_empty(), "items not completed exactly once: {odd:?}");
    assert_eq!(completed_documents(&db.pool).await, 500);
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 500);
    assert_eq!(count(&db.pool, "SELECT 1 FROM pages").await, 500);
    let expected = expected_rows(&deps_for(&env), &files).await;
    let stored = stored_rows(&db.pool).await;
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, want)| stored.get(id) != Some(want))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "documents without exactly one set of rows: {wrong:?}"
    );
    // The workers agree, and say what the outage cost them.
    let sum = |field: &str| -> u64 {
        reports
            .iter()
            .map(|r| {
                r.pointer(field)
                    .and_then(|v| v.as_u64())
                    .unwrap_or_else(|| panic!("{field} in {r}"))
            })
            .sum()
    };
    assert_eq!(sum("/completed"), 500, "{reports:?}");
    assert_eq!(sum("/failed"), 0, "{reports:?}");
    let retried = histories.values().filter(|h| h.attempt_rows > 1).count();
    let redis_trouble =
        sum("/redis/lock_errors") + sum("/redis/cache_fallbacks") + sum("/lost") + sum("/requeued");
    eprintln!(
        "failover drill: 500 documents, 4 workers x 16 tasks; primary :{victim} killed after \
         {done_at_kill} completed; replica promoted in {:.1} s ({done_at_failover} completed by \
         then); items claimed more than once: {retried}; claims refused without a lock: {}; \
         locks lost with the claim kept: {}; cache calls that fell back: {}; state writes \
         not made: {}; documents whose state vanished: {}; items lost mid-way: {}; \
         requeued: {}; duplicates: 0",
        failover.as_secs_f64(),
        sum("/redis/lock_errors"),
        sum("/redis/locks_lost_claims_kept"),
        sum("/redis/cache_fallbacks"),
        sum("/redis/state_writes_failed"),
        sum("/redis/documents_state_lost"),
        sum("/lost"),
        sum("/requeued"),
    );
    assert!(
        redis_trouble > 0,
        "the drill should have met the outage (no Redis error reported at all): {reports:?}"
    );
    assert_eq!(
        cluster.primary_ports().len(),
        3,
        "three primaries serve the slots"
    );
    // `lexpipe status --all` reads every primary: the shards of document state spread
    // over all three, so one primary alone would show about a third of the documents.
    // (Not every state is right: a state write made while the shard had no primary failed,
    // and one the dead primary took without replicating is lost with it, so documents in
    // flight at the kill can show an older state or none.)
    let overview = json_of(
        "lexpipe status --all",
        start(on_cluster(&["status", "--all", "--json"])),
    )
    .await;
    let listed: u64 = ["queued", "running", "completed", "failed"]
        .iter()
        .map(|s| overview["counts"][s].as_u64().unwrap())
        .sum();
    eprintln!(
        "status --all on the cluster after the drill: {}",
        overview["counts"]
    );
    // The 16 shards' slots spread over three primaries, so any one of them holds well
    // under 300 of the 500 documents' states.
    assert!(listed >= 300, "{}", overview["counts"]);
    // And status does not pass a lost or out-of-date state off as progress: with
    // PostgreSQL at hand, every document is completed in Redis, or named as out of date
    // (Redis still shows it in progress), or as without state.
    let db_view = &overview["database"];
    assert_eq!(db_view["counts"]["completed"], 500, "{db_view}");
    let stale = db_view["state_stale"]["count"].as_u64().unwrap();
    let lost = db_view["state_lost"]["count"].as_u64().unwrap();
    let completed_in_redis = overview["counts"]["completed"].as_u64().unwrap();
    eprintln!(
        "status --all after the drill: {completed_in_redis} completed in Redis, {stale} out of \
         date, {lost} without state"
    );
    assert_eq!(
        completed_in_redis + stale + lost,
        500,
        "{}\n{db_view}",
        overview["counts"]
    );

    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_failed_for_a_missing_file_is_processed_by_lexpipe_retry_once_the_file_is_back()
{
    // Arrange: two queued files, one of them moved away before any worker reads it.
    require_redis().await;
    let env = unique_env("retry");
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = real_path(dir.path());
    let good = folder.join("good.pdf");
    let late = folder.join("late.pdf");
    std::fs::write(
        &good,
        lexpipe::samples::text_only_pdf(&["Order of the Court dated May 1, 2024."]),
    )
    .unwrap();
    std::fs::write(
        &late,
        lexpipe::samples::text_only_pdf(&["Complaint filed by Acme Corp. on June 2, 2024."]),
    )
    .unwrap();
    enqueue(&db, &env, &[&good, &late]).await;
    let away = folder.join("still-copying");
    std::fs::rename(&late, &away).unwrap();

    // Act 1: a worker drains the queue; the missing file fails after its attempts.
    let first = drain_with_workers(&db, &env, 1, &[]).await;
    let failed: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, error_type FROM documents WHERE status = 'failed'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let run = |args: &[&str]| start(lexpipe(&db, &env, args));
    let too_early = run(&["retry", "--failed", "--json"]).await.unwrap();

    // Assert 1
    assert_eq!((first[0].completed, first[0].failed), (1, 1), "{first:?}");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].1.as_deref(), Some("ReadError"));
    let late_uuid = failed[0].0;
    // Retrying while the file is still missing only queues it again (exit 0), and
    // status says so beside the failed attempt Redis still shows.
    assert!(too_early.status.success(), "{too_early:?}");
    let status = run(&["status", &late_uuid.to_string()]).await.unwrap();
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(
        said.contains("is queued again (lexpipe retry)"),
        "{said}\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let again = drain_with_workers(&db, &env, 1, &[]).await;
    assert_eq!((again[0].completed, again[0].failed), (0, 1), "{again:?}");

    // Act 2: the file is back; the operator retries it by name, and also names the
    // completed one by mistake.
    std::fs::rename(&away, &late).unwrap();
    let late_arg = late.display().to_string();
    let good_arg = good.display().to_string();
    let retried = json_of("lexpipe retry", run(&["retry", &late_arg, "--json"])).await;
    let refused = run(&["retry", &good_arg, "--json"]).await.unwrap();
    let last = drain_with_workers(&db, &env, 1, &[]).await;

    // Assert 2: the late file is processed, once, on its seventh attempt (three failed,
    // three more failed after the first retry, then this one); the completed file was
    // left alone with exit 1.
    assert_eq!(retried["requeued"], 1, "{retried:#}");
    assert_eq!(retried["documents"][0]["outcome"], "requeued");
    assert_eq!(retried["documents"][0]["attempt"], 7);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused["documents"][0]["outcome"], "not_failed");
    assert_eq!(refused["documents"][0]["status"], "completed");
    assert_eq!((last[0].completed, last[0].failed), (1, 0), "{last:?}");
    let statuses: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM documents")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        statuses.iter().all(|(_, s)| s == "completed"),
        "{statuses:?}"
    );
    let h = histories(&db.pool).await;
    let late_item: i64 =
        sqlx::query_scalar("SELECT id FROM processing_queue WHERE document_id = $1")
            .bind(late_uuid)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        h[&late_item],
        History {
            status: "completed".into(),
            attempts: 7,
            attempt_rows: 7,
            completed_rows: 1,
        }
    );
    let stored = stored_rows(&db.pool).await;
    let expected = expected_rows(&deps_for(&env), &[good.clone(), late.clone()]).await;
    assert_eq!(stored, expected);
    cleanup(&env).await;
}
