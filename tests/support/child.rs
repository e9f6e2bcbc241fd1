//! A child process for the cross-process tests: the same cache code, in another process,
//! with its own connection.
//!
//! Usage:
//!   lexpipe-test-child metrics <env> <hits> <misses>
//!   lexpipe-test-child single-flight <env> <key-id> <tasks> <log-file>
//!   lexpipe-test-child blob-roundtrip <location> <key>
//!   lexpipe-test-child llm-calls <env> <base-url> <calls> <rpm> <tpm>

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::redis::{CacheSpec, KeyPart};
use lexpipe_tests::{config_with, redis_cache};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("metrics") => {
            metrics(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()).await
        }
        Some("single-flight") => {
            single_flight(&args[2], &args[3], args[4].parse().unwrap(), &args[5]).await
        }
        Some("blob-roundtrip") => blob_roundtrip(&args[2], &args[3]).await,
        Some("llm-calls") => {
            llm_calls(
                &args[2],
                &args[3],
                args[4].parse().unwrap(),
                &args[5],
                &args[6],
            )
            .await
        }
        _ => {
            eprintln!("usage: lexpipe-test-child metrics|single-flight|blob-roundtrip …");
            std::process::exit(2);
        }
    }
}

/// `hits` reads of one present key and `misses` computations of distinct keys.
async fn metrics(env: &str, hits: usize, misses: usize) {
    let cfg = config_with(env, &[]);
    let (cache, _) = redis_cache(&cfg);
    let spec = |id: String| CacheSpec {
        namespace: "itest",
        key: cache.keys().key("itest", 1, &[KeyPart::Id(&id)]),
        schema: 1,
        ttl: Duration::from_secs(60),
    };
    let present = spec("present".into());
    let _ = cache
        .get_or_compute(&present, || async { Ok::<_, String>(1u32) })
        .await
        .unwrap();
    for _ in 0..hits {
        assert_eq!(cache.get::<u32>(&present).await, Some(1));
    }
    for i in 0..misses {
        let s = spec(format!("miss-{}-{i}", std::process::id()));
        cache
            .get_or_compute(&s, || async { Ok::<_, String>(2u32) })
            .await
            .unwrap();
    }
    cache.flush_metrics().await;
}

/// `tasks` concurrent `get_or_compute` on one key; each computation appends a line to
/// `log` and takes 300 ms.
async fn single_flight(env: &str, key_id: &str, tasks: usize, log: &str) {
    let cfg = config_with(env, &[]);
    let (cache, _) = redis_cache(&cfg);
    let spec = Arc::new(CacheSpec {
        namespace: "itest",
        key: cache.keys().key("itest", 1, &[KeyPart::Id(key_id)]),
        schema: 1,
        ttl: Duration::from_secs(60),
    });
    let log = Arc::new(log.to_string());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (cache, spec, log) = (cache.clone(), spec.clone(), log.clone());
        set.spawn(async move {
            cache
                .get_or_compute(&spec, || async move {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log.as_str())
                        .map_err(|e| e.to_string())?;
                    writeln!(f, "computed by {}", std::process::id()).map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>("value".to_string())
                })
                .await
                .unwrap()
                .value
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap(), "value");
    }
    cache.flush_metrics().await;
}

/// Opens the store at `location` the way the pipeline does (configuration from this
/// process's environment), writes `key`, reads it back and lists it. Prints `ok` and
/// exits 0, or prints the error and exits 3.
async fn blob_roundtrip(location: &str, key: &str) {
    let loc = lexpipe::store::blob::BlobLocation::parse(location).expect("a location");
    let result = async {
        let store = lexpipe::store::blob::open_store(&loc).await?;
        store.put(key, key.as_bytes().to_vec()).await?;
        let read = store.get(key).await?;
        let listed = store.list("").await?;
        Ok::<_, lexpipe::store::blob::BlobError>((read, listed))
    }
    .await;
    match result {
        Ok((Some(bytes), listed))
            if bytes == key.as_bytes() && listed.iter().any(|o| o.key == key) =>
        {
            println!("ok");
        }
        Ok(other) => {
            println!("unexpected: {other:?}");
            std::process::exit(4);
        }
        Err(e) => {
            println!("{e}");
            std::process::exit(3);
        }
    }
}

/// `calls` distinct LLM requests at once, under the shared limits `rpm` and `tpm`, waiting
/// at most 1.5 s for a grant. Prints `ok {answered} {rate_limited}`.
async fn llm_calls(env: &str, base_url: &str, calls: usize, rpm: &str, tpm: &str) {
    let cfg = config_with(
        env,
        &[
            ("LEXPIPE_LLM_BASE_URL", base_url),
            ("LEXPIPE_RL_LLM_REQUESTS_PER_MIN", rpm),
            ("LEXPIPE_RL_LLM_TOKENS_PER_MIN", tpm),
            ("LEXPIPE_RL_MAX_WAIT_MS", "1500"),
            ("LEXPIPE_LLM_MAX_RETRIES", "0"),
            ("LEXPIPE_LLM_MAX_TOKENS", "100"),
        ],
    );
    let app = lexpipe_tests::app_for(&cfg).await;
    let meter = lexpipe::cost::Meter::new(cfg.prices);
    let asks = (0..calls).map(|i| {
        let req = lexpipe::llm::JsonRequest {
            messages: vec![
                lexpipe::llm::Message::system("Answer with JSON."),
                lexpipe::llm::Message::user(format!("call {i} of process {}", std::process::id())),
            ],
            schema_name: "probe".into(),
            schema: serde_json::json!({"type": "object", "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"], "additionalProperties": false}),
            prompt_version: 1,
        };
        let (app, meter) = (&app, &meter);
        async move { app.ask_llm(&req, meter).await }
    });
    let results = futures::future::join_all(asks).await;
    let answered = results.iter().filter(|r| r.is_ok()).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.error_type() == "LlmRateLimited"))
        .count();
    assert_eq!(answered + limited, calls, "{results:?}");
    println!("ok {answered} {limited}");
}
