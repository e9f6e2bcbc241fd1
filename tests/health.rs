//! The health check shared by `lexpipe health` and the `health` function, against the
//! real Redis and PostgreSQL, and the metric lines the functions print.

use lambda_runtime::Context;
use lexpipe::redis::health::Status;
use lexpipe::stages::tasks;
use lexpipe::text::sha256_hex;
use lexpipe_tests::pg::test_database;
use lexpipe_tests::{cleanup, config_with, require_redis, unique_env};
use serde_json::json;

async fn app_with(db_url: &str, env: &str, overrides: &[(&str, &str)]) -> lexpipe::app::App {
    let mut vars = vec![("DATABASE_URL", db_url)];
    vars.extend_from_slice(overrides);
    lexpipe::app::App::build(config_with(env, &vars), lexpipe_functions::app_options())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_document_running_past_the_threshold_and_a_failed_textract_job_degrade_health() {
    // Arrange: one document running for two hours, one fresh, and a failed Textract job.
    require_redis().await;
    let db = test_database().await;
    let env = unique_env("health-stuck");
    let app = app_with(
        &db.url,
        &env,
        &[("LEXPIPE_HEALTH_STUCK_AFTER_SECS", "3600")],
    )
    .await;
    for (seed, age) in [("stuck", "2 hours"), ("fresh", "1 minute")] {
        let sha = sha256_hex(seed.as_bytes());
        sqlx::query(&format!(
            "INSERT INTO documents (id, content_sha256, status, updated_at) \
             VALUES ($1, $2, 'running', now() - interval '{age}')"
        ))
        .bind(lexpipe::model::document_uuid(&sha))
        .bind(&sha)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let stuck = lexpipe::model::document_uuid(&sha256_hex(b"stuck"));
    sqlx::query(
        "INSERT INTO textract_jobs (job_id, document_id, content_sha256, status) \
         VALUES ('job-1', $1, $2, 'FAILED')",
    )
    .bind(stuck)
    .bind(sha256_hex(b"stuck"))
    .execute(&db.pool)
    .await
    .unwrap();

    // Act
    let report = lexpipe::health::check(&app, None).await;

    // Assert
    let d = report.database.clone().expect("a database part");
    assert!(d.reachable);
    assert_eq!(d.stuck_documents, Some(1));
    assert_eq!(d.failed_textract_jobs, Some(1));
    assert_eq!(
        report.status(),
        Status::Degraded,
        "{:?}",
        report.redis.problems
    );
    assert!(
        report
            .redis
            .problems
            .iter()
            .any(|p| p.contains("1 document(s) running for more than 3600 s"))
    );
    let line = lexpipe::emf::health_line("lexpipe", "health", &report, 1);
    assert_eq!(line["StuckDocuments"], 1.0);
    assert_eq!(line["FailedTextractJobs"], 1.0);
    assert_eq!(line["HealthStatus"], 1.0);
    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_database_without_the_textract_jobs_table_is_checked_without_it() {
    // Arrange: a schema where textract_jobs does not exist (yet, or any more).
    require_redis().await;
    let db = test_database().await;
    sqlx::query("DROP TABLE textract_jobs")
        .execute(&db.pool)
        .await
        .unwrap();
    let env = unique_env("health-notable");
    let app = app_with(&db.url, &env, &[]).await;

    // Act
    let report = lexpipe::health::check(&app, None).await;

    // Assert
    let d = report.database.expect("a database part");
    assert!(d.reachable);
    assert_eq!(d.failed_textract_jobs, None);
    assert_eq!(d.stuck_documents, Some(0));
    assert_ne!(report.redis.status, Status::Unhealthy);
    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_makes_health_unhealthy_instead_of_failing_to_start() {
    // Arrange: nothing listens on port 1.
    require_redis().await;
    let env = unique_env("health-nodb");
    let config = config_with(
        &env,
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")],
    );

    // Act
    let (app, problem) = lexpipe::health::app_for(config, lexpipe_functions::app_options())
        .await
        .expect("the app builds without its database");
    let report = lexpipe::health::check(&app, problem).await;

    // Assert
    assert_eq!(report.status(), Status::Unhealthy);
    assert!(
        report
            .redis
            .problems
            .iter()
            .any(|p| p.starts_with("database unreachable")),
        "{:?}",
        report.redis.problems
    );
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains("postgres://"),
        "the database URL never reaches the report"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_step_invocation_ends_with_metric_lines_for_the_caches_it_used() {
    // Arrange
    require_redis().await;
    let env = unique_env("health-emf");
    let app = lexpipe_tests::app_for(&config_with(&env, &[])).await;
    let path = lexpipe_tests::samples_dir().join("court_order.pdf");
    let bytes = std::fs::read(&path).unwrap();
    let document = lexpipe::stages::DocumentRef::new(
        &sha256_hex(&bytes),
        path.to_str().expect("a UTF-8 path"),
    );
    let inv = lexpipe_functions::Invocation::start(&app, tasks::OCR_START, &Context::default());

    // Act
    let out =
        lexpipe::pipeline::invoke(&inv.app, tasks::OCR_START, json!({ "document": document }))
            .await
            .unwrap();
    let lines = inv.metric_lines(&lexpipe::cost::Ledger::reported(&out).unwrap_or_default());

    // Assert
    assert!(!lines.is_empty(), "the OCR cache was looked up");
    for l in &lines {
        assert_eq!(l["Function"], "ocr-start");
        assert!(l["_aws"]["CloudWatchMetrics"][0]["Metrics"].is_array());
        assert!(l["CacheHitRate"].is_number());
    }
    inv.finish(&lexpipe::cost::Ledger::default()).await;
    cleanup(&env).await;
}
