//! The LLM stages behind the caches, against a fake OpenAI-compatible server (a real HTTP
//! server the client talks to) and the real Redis: one call per unique chunk however many
//! times and names a document arrives, single flight across concurrent runs, only changed
//! chunks re-extracted, invalid answers repaired once then failed and never cached, every
//! setting that changes the answer in the key, limits shared across processes, and the
//! API key kept out of every log line, error, key and value.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lexpipe::app::App;
use lexpipe::cost::Meter;
use lexpipe::llm::{JsonRequest, LlmError, Message};
use lexpipe::model::DocumentOutput;
use lexpipe::pipeline::{self, StageTally};
use lexpipe::stages::DocumentRef;
use lexpipe::testing::fake_llm::{FakeLlm, Fault};
use lexpipe_tests::{cleanup, config_with, keys_of, raw_connection, require_redis, unique_env};
use serde_json::json;

const ENTITIES: &str = "entities";
const STRUCTURE: &str = "document_structure";

/// An app of `env` asking `fake`, artefacts in `artefacts`.
async fn app(env: &str, fake: &FakeLlm, artefacts: &Path, overrides: &[(&str, &str)]) -> App {
    let base = fake.base_url();
    let mut vars = vec![
        ("LEXPIPE_LLM_BASE_URL", base.as_str()),
        ("LEXPIPE_EXTRACTOR", "llm"),
        ("LEXPIPE_LLM_RETRY_BASE_MS", "10"),
        ("LEXPIPE_LLM_TIMEOUT_MS", "2000"),
    ];
    vars.extend_from_slice(overrides);
    lexpipe_tests::app_with_artefacts(config_with(env, &vars), artefacts).await
}

/// Four pages of distinct text with entities, page `edited` (if any) changed.
fn pages(edited: Option<usize>) -> Vec<String> {
    (1..=4)
        .map(|p| {
            let mut text = String::new();
            for s in 0..12 {
                text.push_str(&format!(
                    "On March {d}, 2024, Acme Holdings {p}{s} LLC paid Jane Roe{p} the sum of \
                     ${p}{s},000.00 under section {s} of the agreement filed in the Superior \
                     Court of Alder County. ",
                    d = s + 1
                ));
                if s % 4 == 3 {
                    text.push_str("\n\n");
                }
            }
            if edited == Some(p) {
                text.push_str("Amended on April 2, 2025 by Global Widgets Inc.");
            }
            text
        })
        .collect()
}

fn write_pdf(dir: &Path, name: &str, pages: &[String]) -> PathBuf {
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let path = dir.join(name);
    std::fs::write(&path, lexpipe::samples::text_only_pdf(&refs)).unwrap();
    path
}

async fn analyse(app: &App, path: &Path) -> (DocumentOutput, StageTally) {
    let bytes = std::fs::read(path).unwrap();
    let doc = DocumentRef::new(
        &lexpipe::text::sha256_hex(&bytes),
        &path.display().to_string(),
    );
    let mut tally = StageTally::default();
    let out = pipeline::analyse(app, &doc, &mut tally)
        .await
        .expect("the document is analysed");
    (out, tally)
}

fn unique_chunks(out: &DocumentOutput) -> HashSet<String> {
    out.chunks.iter().map(|c| c.sha256.clone()).collect()
}

#[tokio::test]
async fn a_document_processed_twice_calls_the_llm_once_per_chunk() {
    // Arrange: two runs that share Redis but not an artefact store (two machines).
    require_redis().await;
    let env = unique_env("llm-twice");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));

    // Act
    let first_app = app(&env, &fake, &dir.path().join("a1"), &[]).await;
    let (first, tally1) = analyse(&first_app, &file).await;
    let after_first = fake.requests_for(ENTITIES);
    let second_app = app(&env, &fake, &dir.path().join("a2"), &[]).await;
    let (second, tally2) = analyse(&second_app, &file).await;

    // Assert
    let chunks = unique_chunks(&first).len() as u64;
    assert!(chunks >= 3, "the document has several chunks ({chunks})");
    assert_eq!(after_first, chunks, "one call per chunk");
    assert_eq!(
        fake.requests_for(ENTITIES),
        chunks,
        "no call the second time"
    );
    assert!(!first.mentions.is_empty(), "the LLM's mentions are kept");
    assert_eq!(first.mentions, second.mentions);
    assert_eq!(
        tally1.usage.llm.calls,
        fake.requests(),
        "every request counted"
    );
    assert!(tally1.usage.llm.usd > 0.0);
    assert_eq!(tally2.usage.llm.calls, 0);
    assert!(tally2.usage.llm.calls_avoided >= chunks);
    assert!(tally2.usage.llm.usd_avoided > 0.0);
    cleanup(&env).await;
}

#[tokio::test]
async fn the_same_bytes_under_another_name_call_the_llm_zero_times() {
    require_redis().await;
    let env = unique_env("llm-rename");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "original.pdf", &pages(None));
    let copy = dir.path().join("renamed copy.pdf");
    std::fs::copy(&file, &copy).unwrap();
    let app = app(&env, &fake, &dir.path().join("art"), &[]).await;
    analyse(&app, &file).await;
    let before = fake.requests();

    let (out, tally) = analyse(&app, &copy).await;

    assert_eq!(fake.requests(), before, "no request for the same bytes");
    assert_eq!(tally.usage.llm.calls, 0);
    assert!(!out.mentions.is_empty());
    cleanup(&env).await;
}

#[tokio::test]
async fn sixteen_concurrent_runs_of_one_new_document_make_one_call_per_chunk() {
    // Arrange: 16 runs, each with its own artefact store, so that only the Redis cache's
    // single flight can keep them from asking the LLM each.
    require_redis().await;
    let env = unique_env("llm-16");
    let fake = FakeLlm::start().await;
    fake.set_latency(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "new.pdf", &pages(Some(2)));
    let mut apps = Vec::new();
    for i in 0..16 {
        apps.push(app(&env, &fake, &dir.path().join(format!("a{i}")), &[]).await);
    }

    // Act
    let runs = apps.iter().map(|a| analyse(a, &file));
    let outs = futures::future::join_all(runs).await;

    // Assert
    let chunks = unique_chunks(&outs[0].0).len() as u64;
    assert_eq!(fake.requests_for(ENTITIES), chunks);
    let calls: u64 = outs.iter().map(|(_, t)| t.usage.llm.calls).sum();
    assert_eq!(
        calls,
        fake.requests(),
        "the ledgers count what the endpoint received"
    );
    for (out, _) in &outs {
        assert_eq!(out.mentions, outs[0].0.mentions);
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn editing_one_page_re_extracts_only_the_changed_chunks() {
    require_redis().await;
    let env = unique_env("llm-edit");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, &fake, &dir.path().join("art"), &[]).await;
    let v1 = write_pdf(dir.path(), "v1.pdf", &pages(None));
    let v2 = write_pdf(dir.path(), "v2.pdf", &pages(Some(3)));
    let (first, _) = analyse(&app, &v1).await;
    let before = fake.requests_for(ENTITIES);

    let (second, tally) = analyse(&app, &v2).await;

    let old = unique_chunks(&first);
    let changed = unique_chunks(&second).difference(&old).count() as u64;
    let total = unique_chunks(&second).len() as u64;
    assert!(
        changed >= 1 && changed < total,
        "{changed} of {total} chunks changed"
    );
    assert_eq!(fake.requests_for(ENTITIES) - before, changed);
    assert_eq!(
        tally.usage.llm.calls,
        2 * changed,
        "the changed chunks' entities and descriptions"
    );
    assert_eq!(
        fake.requests_for(STRUCTURE),
        old.len() as u64 + changed,
        "every chunk of the first version, then the changed ones"
    );
    assert!(
        second
            .mentions
            .iter()
            .any(|m| m.text == "Global Widgets Inc.")
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_model_change_re_extracts_every_chunk_and_describes_the_document_again() {
    require_redis().await;
    let env = unique_env("llm-model");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));
    let mini = app(&env, &fake, &dir.path().join("art"), &[]).await;
    let (first, _) = analyse(&mini, &file).await;
    let calls = fake.requests();

    let bigger = app(
        &env,
        &fake,
        &dir.path().join("art"),
        &[("LEXPIPE_LLM_MODEL", "gpt-4o")],
    )
    .await;
    let (second, tally) = analyse(&bigger, &file).await;

    let chunks = unique_chunks(&first).len() as u64;
    assert_eq!(
        fake.requests() - calls,
        2 * chunks,
        "every chunk's entities and description"
    );
    assert_eq!(tally.usage.llm.calls, 2 * chunks);
    let described = |o: &DocumentOutput| o.structured.clone().unwrap().model_version;
    assert!(
        described(&first).starts_with("llm-p2-gpt-4o-mini-"),
        "{}",
        described(&first)
    );
    assert!(described(&second).starts_with("llm-p2-gpt-4o-"));
    assert_ne!(described(&first), described(&second));
    cleanup(&env).await;
}

#[tokio::test]
async fn the_description_links_the_llm_relationships_to_canonical_entities() {
    require_redis().await;
    let env = unique_env("llm-struct");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));
    let app = app(&env, &fake, &dir.path().join("art"), &[]).await;

    let (out, _) = analyse(&app, &file).await;

    assert_eq!(
        fake.requests_for(STRUCTURE),
        unique_chunks(&out).len() as u64
    );
    let s = out.structured.expect("a description");
    assert!(!s.party_roles.is_empty(), "{s:?}");
    let r = s.relationships.first().expect("a relationship");
    let ids: HashSet<&str> = out.entities.iter().map(|e| e.id.as_str()).collect();
    assert!(ids.contains(r.subject_entity.as_deref().unwrap()), "{r:?}");
    assert!(ids.contains(r.object_entity.as_deref().unwrap()), "{r:?}");
    cleanup(&env).await;
}

#[tokio::test]
async fn both_extractors_together_keep_every_rules_mention_and_call_the_llm_once_per_chunk() {
    require_redis().await;
    let env = unique_env("llm-both");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));
    let rules = app(
        &env,
        &fake,
        &dir.path().join("r"),
        &[("LEXPIPE_EXTRACTOR", "rules")],
    )
    .await;
    let (by_rules, _) = analyse(&rules, &file).await;
    assert_eq!(fake.requests(), 0, "the rules call nothing");
    let both = app(
        &env,
        &fake,
        &dir.path().join("b"),
        &[("LEXPIPE_EXTRACTOR", "both")],
    )
    .await;

    let (by_both, _) = analyse(&both, &file).await;

    assert_eq!(
        fake.requests_for(ENTITIES),
        unique_chunks(&by_both).len() as u64
    );
    assert!(by_both.mentions.len() >= by_rules.mentions.len());
    for m in &by_rules.mentions {
        assert!(
            by_both
                .mentions
                .iter()
                .any(|b| (b.kind, b.start, b.end) == (m.kind, m.start, m.end)),
            "{m:?} lost"
        );
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn the_run_summary_counts_the_llm_calls_the_endpoint_received_and_their_cost() {
    require_redis().await;
    let env = unique_env("llm-summary");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));
    let app = app(&env, &fake, &dir.path().join("art"), &[]).await;
    let opts = lexpipe::runner::RunOptions {
        out_dir: dir.path().join("out"),
        time_scale: 0.0,
        ..Default::default()
    };

    let first = lexpipe::runner::process(&app, std::slice::from_ref(&file), &opts, &|_| {})
        .await
        .unwrap();
    let second = lexpipe::runner::process(&app, &[file], &opts, &|_| {})
        .await
        .unwrap();

    assert_eq!(first.api_calls.llm.made, fake.requests());
    assert!(first.cost_usd.spent > 0.0);
    assert_eq!(first.documents[0].api_calls.llm.made, fake.requests());
    assert_eq!(second.api_calls.llm.made, 0);
    let json = serde_json::to_value(&first).unwrap();
    assert_eq!(json["api_calls"]["llm"]["made"], fake.requests());
    cleanup(&env).await;
}

#[tokio::test]
async fn close_names_the_rules_kept_apart_are_joined_when_the_llm_adjudicates_them() {
    require_redis().await;
    let env = unique_env("llm-adj");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = "This Agreement is made on March 1, 2024 between Acme Holdings LLC and Jane \
                Roe.\n\nAcme Holding LLC shall pay Jane Roe the sum of $5,000.00 by April 1, \
                2024.";
    let file = write_pdf(dir.path(), "agreement.pdf", &[text.to_string()]);
    let acme = |out: &DocumentOutput| {
        out.entities
            .iter()
            .filter(|e| e.name.starts_with("Acme"))
            .count()
    };
    let plain = app(&env, &fake, &dir.path().join("p"), &[]).await;
    let (kept_apart, _) = analyse(&plain, &file).await;
    assert_eq!(acme(&kept_apart), 2, "{:?}", kept_apart.entities);
    assert_eq!(fake.requests_for("adjudication"), 0, "off by default");

    let adjudicating = [("LEXPIPE_LLM_ADJUDICATE", "true")];
    let first = app(&env, &fake, &dir.path().join("a1"), &adjudicating).await;
    let (joined, tally) = analyse(&first, &file).await;
    let again = app(&env, &fake, &dir.path().join("a2"), &adjudicating).await;
    let (cached, _) = analyse(&again, &file).await;

    assert_eq!(acme(&joined), 1, "{:?}", joined.entities);
    let e = joined
        .entities
        .iter()
        .find(|e| e.name.starts_with("Acme"))
        .unwrap();
    assert!(e.aliases.contains(&"Acme Holding LLC".to_string()), "{e:?}");
    assert!(
        e.aliases.contains(&"Acme Holdings LLC".to_string()),
        "{e:?}"
    );
    assert_eq!(joined.entities.len(), kept_apart.entities.len() - 1);
    assert_eq!(
        fake.requests_for("adjudication"),
        1,
        "asked once, then cached"
    );
    assert!(tally.usage.llm.calls >= 1);
    assert_eq!(cached.entities, joined.entities);
    cleanup(&env).await;
}

fn probe(content: &str) -> JsonRequest {
    JsonRequest {
        messages: vec![Message::system("Answer with JSON."), Message::user(content)],
        schema_name: "probe".into(),
        schema: json!({"type": "object", "properties": {"ok": {"type": "boolean"}},
                       "required": ["ok"], "additionalProperties": false}),
        prompt_version: 1,
    }
}

async fn llm_keys(env: &str) -> Vec<String> {
    keys_of(env)
        .await
        .into_iter()
        .filter(|k| k.contains(":llm:v") && !k.ends_with(":lease"))
        .collect()
}

#[tokio::test]
async fn a_malformed_answer_is_retried_with_a_repair_message_then_fails_and_nothing_is_cached() {
    require_redis().await;
    let env = unique_env("llm-bad");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, &fake, dir.path(), &[]).await;
    fake.push_faults([Fault::Malformed, Fault::BreakSchema]);
    let meter = Meter::new(app.config.prices);

    let err = app.ask_llm(&probe("one"), &meter).await.unwrap_err();

    assert!(matches!(err, LlmError::InvalidResponse { .. }), "{err}");
    assert_eq!(err.error_type(), "LlmInvalidResponse");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("schema"), "{err}");
    let received = fake.received();
    assert_eq!(received.len(), 2, "one repair attempt");
    let repair = received[1].body["messages"].as_array().unwrap();
    assert_eq!(
        repair.len(),
        4,
        "the bad answer and a repair message were added"
    );
    assert!(repair[3]["content"].as_str().unwrap().contains("not valid"));
    assert_eq!(meter.ledger().llm.calls, 2);
    assert!(llm_keys(&env).await.is_empty(), "nothing cached");
    // The next call asks again, and its answer is cached.
    let ok = app.ask_llm(&probe("one"), &meter).await.unwrap();
    assert!(!ok.cached);
    assert_eq!(fake.requests(), 3);
    assert_eq!(llm_keys(&env).await.len(), 1);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_chunk_whose_answer_stays_invalid_fails_the_document_by_name() {
    require_redis().await;
    let env = unique_env("llm-badchunk");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, &fake, dir.path(), &[]).await;
    let file = write_pdf(dir.path(), "one.pdf", &[pages(None)[0].clone()]);
    // Every answer is malformed.
    fake.push_faults(std::iter::repeat_n(Fault::Malformed, 50));
    let bytes = std::fs::read(&file).unwrap();
    let doc = DocumentRef::new(
        &lexpipe::text::sha256_hex(&bytes),
        &file.display().to_string(),
    );

    let err = pipeline::analyse(&app, &doc, &mut StageTally::default())
        .await
        .unwrap_err();

    assert_eq!(err.error_type(), "LlmInvalidResponse", "{err}");
    assert!(err.to_string().contains("chunk"), "{err}");
    assert!(llm_keys(&env).await.is_empty());
    cleanup(&env).await;
}

#[tokio::test]
async fn a_500_and_a_timeout_are_retried_and_every_attempt_is_counted() {
    require_redis().await;
    let env = unique_env("llm-retry");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        &env,
        &fake,
        dir.path(),
        &[("LEXPIPE_LLM_TIMEOUT_MS", "300")],
    )
    .await;
    fake.push_faults([Fault::ServerError, Fault::Hang(Duration::from_secs(2))]);
    let meter = Meter::new(app.config.prices);

    let answer = app.ask_llm(&probe("retry"), &meter).await.unwrap();

    assert_eq!(answer.value, json!({"ok": false}));
    assert_eq!(fake.requests(), 3);
    assert_eq!(
        meter.ledger().llm.calls,
        3,
        "failed attempts are counted too"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_gives_a_retryable_error_after_the_retries() {
    require_redis().await;
    let env = unique_env("llm-down");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, &fake, dir.path(), &[("LEXPIPE_LLM_MAX_RETRIES", "2")]).await;
    fake.push_faults(std::iter::repeat_n(Fault::ServerError, 3));

    let err = app
        .ask_llm(&probe("down"), &Meter::new(app.config.prices))
        .await
        .unwrap_err();

    assert_eq!(err.error_type(), "LlmUnavailable", "{err}");
    assert!(err.is_retryable());
    assert_eq!(fake.requests(), 3, "one try and two retries");
    cleanup(&env).await;
}

#[tokio::test]
async fn a_429_pauses_every_caller_for_its_retry_after_and_the_call_then_succeeds() {
    require_redis().await;
    let env = unique_env("llm-429");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let one = app(&env, &fake, dir.path(), &[]).await;
    let other = app(&env, &fake, &dir.path().join("other"), &[]).await;
    fake.push_faults([Fault::TooManyRequests {
        retry_after_secs: Some(1),
    }]);

    let (throttled, bystander) = (probe("throttled"), probe("bystander"));
    let meter = Meter::new(one.config.prices);

    let (first, second) = tokio::join!(one.ask_llm(&throttled, &meter), async {
        // Another process's call, made once the 429 has paused the group.
        tokio::time::sleep(Duration::from_millis(200)).await;
        other.ask_llm(&bystander, &meter).await
    });

    first.unwrap();
    second.unwrap();
    let r = fake.received();
    assert_eq!(r.len(), 3);
    let throttled_at = r[0].at;
    for later in &r[1..] {
        assert!(
            later.at >= throttled_at + Duration::from_millis(900),
            "a request was sent during the pause: {:?} after the 429",
            later.at - throttled_at
        );
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn changing_temperature_schema_prompt_version_or_model_misses_the_llm_cache() {
    require_redis().await;
    let env = unique_env("llm-keys");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = app(&env, &fake, dir.path(), &[]).await;
    let meter = Meter::new(base.config.prices);
    base.ask_llm(&probe("same"), &meter).await.unwrap();
    let again = base.ask_llm(&probe("same"), &meter).await.unwrap();
    assert!(again.cached);
    assert_eq!(fake.requests(), 1);

    let warmer = app(
        &env,
        &fake,
        dir.path(),
        &[("LEXPIPE_LLM_TEMPERATURE", "0.5")],
    )
    .await;
    assert!(!warmer.ask_llm(&probe("same"), &meter).await.unwrap().cached);
    let other_model = app(&env, &fake, dir.path(), &[("LEXPIPE_LLM_MODEL", "gpt-4o")]).await;
    assert!(
        !other_model
            .ask_llm(&probe("same"), &meter)
            .await
            .unwrap()
            .cached
    );
    let mut v2 = probe("same");
    v2.prompt_version = 2;
    assert!(!base.ask_llm(&v2, &meter).await.unwrap().cached);
    let mut schema = probe("same");
    schema.schema["properties"]["ok"]["description"] = json!("whether it is fine");
    assert!(!base.ask_llm(&schema, &meter).await.unwrap().cached);

    assert_eq!(fake.requests(), 5);
    assert_eq!(meter.ledger().llm.calls_avoided, 1);
    cleanup(&env).await;
}

/// Runs `n` child processes, each making `calls` distinct LLM calls with the given limits;
/// the children's stdout lines.
fn children(
    env: &str,
    fake: &FakeLlm,
    n: usize,
    calls: usize,
    rpm: &str,
    tpm: &str,
) -> Vec<String> {
    let bin = env!("CARGO_BIN_EXE_lexpipe-test-child");
    let kids: Vec<std::process::Child> = (0..n)
        .map(|_| {
            std::process::Command::new(bin)
                .args([
                    "llm-calls",
                    env,
                    &fake.base_url(),
                    &calls.to_string(),
                    rpm,
                    tpm,
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the child starts")
        })
        .collect();
    kids.into_iter()
        .map(|k| {
            let out = k.wait_with_output().unwrap();
            assert!(out.status.success(), "child failed: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_keeps_every_minute_under_the_configured_rpm_and_tpm_across_four_processes() {
    require_redis().await;
    // Requests: 4 processes want 20 calls in well under a minute; 7 may go.
    let env = unique_env("llm-rpm");
    let fake = FakeLlm::start().await;
    let lines = children(&env, &fake, 4, 5, "7", "1000000");
    let granted: u64 = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(fake.requests(), 7, "{lines:?}");
    assert_eq!(granted, 7);
    cleanup(&env).await;

    // Tokens: the same demand under a token limit that admits only a few of them.
    let env = unique_env("llm-tpm");
    let fake = FakeLlm::start().await;
    let lines = children(&env, &fake, 4, 5, "1000", "1200");
    let tokens: u64 = fake.received().iter().map(|r| r.tokens).sum();
    assert!(fake.requests() >= 1, "{lines:?}");
    assert!(
        fake.requests() < 20,
        "the token limit held some back: {lines:?}"
    );
    assert!(tokens <= 1200, "{tokens} tokens in less than a minute");
    cleanup(&env).await;
}

/// Collects every log line, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_appears_in_no_log_line_error_cache_key_or_value() {
    // Arrange: every log line captured; values left uncompressed so they can be searched.
    require_redis().await;
    let key = "sk-test-Very-Secret-4242";
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let env = unique_env("llm-key");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        &env,
        &fake,
        dir.path(),
        &[
            ("OPENAI_API_KEY", key),
            ("LEXPIPE_CACHE_COMPRESS_BYTES", "100000000"),
            ("LEXPIPE_LLM_MAX_RETRIES", "1"),
        ],
    )
    .await;
    let meter = Meter::new(app.config.prices);

    // Act: a success, a refusal that echoes the key, an outage, an invalid answer, and a
    // whole document.
    app.ask_llm(&probe("fine"), &meter).await.unwrap();
    fake.push_faults([Fault::EchoAuthorization]);
    let refused = app.ask_llm(&probe("refused"), &meter).await.unwrap_err();
    fake.push_faults([Fault::ServerError, Fault::ServerError]);
    let down = app.ask_llm(&probe("down"), &meter).await.unwrap_err();
    fake.push_faults([Fault::Malformed, Fault::Malformed]);
    let invalid = app.ask_llm(&probe("bad"), &meter).await.unwrap_err();
    let file = write_pdf(dir.path(), "doc.pdf", &[pages(None)[0].clone()]);
    analyse(&app, &file).await;

    // Assert: the key was sent...
    assert!(
        fake.received()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {key}")))
    );
    assert_eq!(refused.error_type(), "LlmRejected");
    // ...and is nowhere else.
    for e in [&refused, &down, &invalid] {
        assert!(!e.to_string().contains(key), "{e}");
        assert!(!format!("{e:?}").contains(key), "{e:?}");
    }
    assert!(refused.to_string().contains("[redacted]"), "{refused}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.is_empty(), "logs were captured");
    assert!(!logged.contains(key), "a log line holds the key");
    assert!(!format!("{app:?} {:?}", app.config).contains(key));
    let keys = keys_of(&env).await;
    assert!(keys.iter().any(|k| k.contains(":llm:v1:")), "{keys:?}");
    let mut c = raw_connection().await;
    for k in &keys {
        assert!(!k.contains(key));
        let kind: String = redis::cmd("TYPE").arg(k).query_async(&mut c).await.unwrap();
        if kind == "string" {
            let v: Vec<u8> = redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
            assert!(
                !String::from_utf8_lossy(&v).contains(key),
                "the value of {k} holds the key"
            );
        }
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn a_long_document_is_described_chunk_by_chunk_to_its_last_page_and_once() {
    // Arrange: sixteen pages, far more text than one request carried before.
    require_redis().await;
    let env = unique_env("llm-long");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let long: Vec<String> = (0..4)
        .flat_map(|_| pages(None))
        .enumerate()
        .map(|(i, p)| p.replace("Acme Holdings", &format!("Acme Holdings {}-", i / 4)))
        .collect();
    let file = write_pdf(dir.path(), "long.pdf", &long);
    let first_app = app(&env, &fake, &dir.path().join("a1"), &[]).await;

    // Act: described twice, on two machines sharing Redis.
    let (out, tally) = analyse(&first_app, &file).await;
    let after_first = fake.requests_for(STRUCTURE);
    let second_app = app(&env, &fake, &dir.path().join("a2"), &[]).await;
    let (again, tally2) = analyse(&second_app, &file).await;

    // Assert
    let text: usize = out.pages.iter().map(|p| p.text.chars().count()).sum();
    assert!(text > 24_000, "{text} characters");
    let chunks = out.chunks.len() as u64;
    assert_eq!(after_first, chunks, "one description per chunk");
    assert_eq!(fake.requests_for(STRUCTURE), chunks, "none the second time");
    let s = out.structured.expect("a description");
    assert!(
        s.key_facts.iter().filter_map(|f| f.page).max() >= Some(15),
        "the last pages are read: {:?}",
        s.key_facts
    );
    assert_eq!(Some(s), again.structured);
    assert_eq!(tally.usage.llm.calls, fake.requests());
    assert_eq!(tally2.usage.llm.calls, 0);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_run_that_reuses_the_entity_artefacts_counts_the_calls_it_did_not_make() {
    // Arrange: a document analysed once; its batch artefacts are in the store.
    require_redis().await;
    let env = unique_env("llm-reuse");
    let fake = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pdf(dir.path(), "filing.pdf", &pages(None));
    let app = app(&env, &fake, &dir.path().join("art"), &[]).await;
    let (first, tally1) = analyse(&app, &file).await;
    let calls = fake.requests();

    // Act: analysed again with the same store, the batches are reused whole.
    let (_, tally2) = analyse(&app, &file).await;

    // Assert
    assert_eq!(fake.requests(), calls, "no call");
    assert_eq!(tally2.stages["extract_entities"].computed, 0);
    assert_eq!(tally2.usage.llm.calls, 0);
    let chunks = unique_chunks(&first).len() as u64;
    assert_eq!(
        tally2.usage.llm.calls_avoided, chunks,
        "one entity call avoided per chunk"
    );
    assert!(tally1.usage.llm.usd > 0.0);
    assert!(tally2.usage.llm.usd_avoided > 0.0, "{tally2:?}");
    cleanup(&env).await;
}
