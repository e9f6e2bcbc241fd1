//! The `lexpipe` command as a user runs it, against the real Redis.

use std::process::{Command, Output};

use lexpipe_tests::{cleanup_blocking as cleanup, json_stdout as json};

fn lexpipe(env: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(args)
        .env("LEXPIPE_ENV", env)
        .env(
            "REDIS_URL",
            std::env::var("LEXPIPE_TEST_REDIS_URL")
                .or_else(|_| std::env::var("REDIS_URL"))
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )
        .output()
        .expect("lexpipe runs")
}

fn unique_env() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!(
        "t-cli-{:x}-{}-{}",
        t,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn samples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../samples").to_string()
}

#[test]
fn process_samples_twice_serves_every_ocr_and_entity_result_from_the_cache() {
    let env = unique_env();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let args = ["process", &samples(), "--out", out_dir, "--json"];

    let first = json(&lexpipe(&env, &args));
    let second = json(&lexpipe(&env, &args));

    assert_eq!(first["redis"], "connected");
    let docs = first["documents"].as_array().unwrap();
    assert!(docs.len() >= 9);
    for d in docs {
        for field in [
            "source",
            "document_uuid",
            "content_sha256",
            "status",
            "error",
            "pages",
            "chunks",
            "entities",
            "canonical_entities",
            "output",
        ] {
            assert!(
                d.get(field).is_some(),
                "document summary lacks {field}: {d}"
            );
        }
        assert_eq!(d["status"], "completed");
        assert!(std::path::Path::new(d["output"].as_str().unwrap()).exists());
    }
    for section in ["api_calls", "cost_usd", "cache"] {
        assert!(first.get(section).is_some(), "summary lacks {section}");
    }
    assert_eq!(first["api_calls"]["textract"]["made"], 0);
    assert_eq!(second["stages"]["ocr"]["computed"], 0);
    assert_eq!(second["stages"]["extract_entities"]["computed"], 0);
    assert!(
        second["stages"]["extract_entities"]["cached"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(second["cache"]["misses"], 0);

    // The counters of both runs are in Redis.
    let stats = json(&lexpipe(&env, &["cache", "stats", "--json"]));
    let ocr = stats["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == "ocr")
        .expect("ocr counters");
    assert!(ocr["hits"].as_i64().unwrap() >= docs.len() as i64);
    assert!(ocr["hit_rate"].as_f64().unwrap() >= 0.5);
    cleanup(&env);
}

#[test]
fn process_reports_a_bad_file_and_exits_non_zero_only_when_all_fail() {
    let env = unique_env();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("scan.pdf");
    std::fs::write(&bad, b"GIF89a not a pdf").unwrap();
    let out = dir.path().join("out");
    let o = lexpipe(
        &env,
        &[
            "process",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "all failed → exit 1");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["documents"][0]["status"], "failed");
    assert_eq!(v["documents"][0]["error_type"], "NotPdf");
    assert!(
        v["documents"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not a PDF")
    );

    let good = format!("{}/nda.pdf", samples());
    let o = lexpipe(
        &env,
        &[
            "process",
            bad.to_str().unwrap(),
            &good,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "one good document → exit 0");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("1 completed, 1 failed"), "{table}");
    cleanup(&env);
}

#[test]
fn health_reports_a_reachable_redis_and_exits_by_status() {
    let env = unique_env();
    let o = lexpipe(&env, &["health", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reachable"], true);
    assert!(v["ping_ms_p50"].as_f64().is_some());
    assert!(v["used_memory_bytes"].as_u64().unwrap() > 0);
    let code = o.status.code().unwrap();
    assert_eq!(code, if v["status"] == "healthy" { 0 } else { 1 });
}

#[test]
fn health_of_an_unreachable_redis_is_unhealthy_with_exit_code_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(["health", "--json"])
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["reachable"], false);
}

#[test]
fn a_malformed_setting_fails_at_start_naming_the_variable() {
    let o = Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(["health"])
        .env("LEXPIPE_STAGE", "moon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("LEXPIPE_STAGE"));
}

#[test]
fn a_redis_password_never_appears_in_output() {
    let o = Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(["-vv", "health", "--json"])
        .env("REDIS_URL", "redis://:hunter2-secret@127.0.0.1:1/0")
        .env("REDIS_PASSWORD", "another-secret-9")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !all.contains("hunter2-secret") && !all.contains("another-secret-9"),
        "{all}"
    );
}

#[test]
fn a_run_killed_mid_batch_resumes_after_a_redis_flush_without_computing_any_finished_step_again() {
    // Arrange: nine distinct documents in name order, with a FIFO fifth: the run
    // (one document at a time) finishes four, then blocks reading the FIFO.
    let env = unique_env();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    let before = [
        "complaint",
        "court_order",
        "demand_letter",
        "deposition_excerpt",
    ];
    let after = [
        "lease",
        "motion_to_dismiss",
        "nda",
        "services_agreement",
        "settlement_agreement",
    ];
    for name in before {
        std::fs::copy(
            format!("{}/{name}.pdf", samples()),
            input.join(format!("a-{name}.pdf")),
        )
        .unwrap();
    }
    for name in after {
        std::fs::copy(
            format!("{}/{name}.pdf", samples()),
            input.join(format!("n-{name}.pdf")),
        )
        .unwrap();
    }
    let fifo = input.join("m-blocked.pdf");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_lexpipe"))
        .args(["process", input.to_str().unwrap(), "--concurrency", "1"])
        .args(["--out", out.to_str().unwrap()])
        .env("LEXPIPE_ENV", &env)
        .env(
            "REDIS_URL",
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let outputs = || {
        std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while outputs() < before.len() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // Act: kill -9, flush every Redis key of the run, replace the FIFO, run again.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(outputs(), before.len(), "killed mid-batch");
    cleanup(&env);
    std::fs::remove_file(&fifo).unwrap();
    std::fs::copy(format!("{}/complaint_copy.pdf", samples()), &fifo).unwrap();
    let second = json(&lexpipe(
        &env,
        &[
            "process",
            input.to_str().unwrap(),
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
    ));

    // Assert: every document completes; only the five never started are computed (the
    // copy of a finished document reuses its artefacts), the rest come from the blob store.
    let docs = second["documents"].as_array().unwrap();
    assert_eq!(docs.len(), before.len() + after.len() + 1);
    assert!(docs.iter().all(|d| d["status"] == "completed"), "{docs:#?}");
    for stage in ["ocr", "chunk", "resolve_entities", "extract_structured"] {
        assert_eq!(
            second["stages"][stage]["computed"],
            after.len(),
            "{stage}: {}",
            second["stages"][stage]
        );
        assert_eq!(
            second["stages"][stage]["cached"],
            before.len() + 1,
            "{stage}: {}",
            second["stages"][stage]
        );
    }
    cleanup(&env);
}
