//! Durable step artefacts: keys, encoding, and [`produce`], the one path every step
//! takes to its result — the Redis cache (fast, single flight), then the artefact in the
//! blob store (survives eviction and restarts), then the computation, whose result is
//! written to both.
//!
//! Keys are content-addressed: `processed/{content_sha256}/{stage}-{engine}-{lineage}
//! .json.zst`, where `lineage` is a short hash of the upstream artefacts' keys and every
//! setting that changes the output. The same bytes uploaded again under any name find
//! every artefact; a changed setting or engine version writes new ones.
//!
//! Values are JSON compressed with zstd. An artefact that cannot be decoded is treated
//! as missing (logged) and recomputed; it never fails the document.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::redis::CacheSpec;
use crate::text::sha256_hex;

use super::StageError;

/// The pipeline's own prefix in the blob store; never taken as input.
pub const PREFIX: &str = "processed";

/// True for a key of the pipeline's own output: under [`PREFIX`] at the top of a bucket,
/// or under a folder of that name anywhere (artefacts written under a prefix). Such keys
/// are never input, so that the pipeline never reads, or triggers on, what it wrote.
pub fn is_artefact_key(key: &str) -> bool {
    let folder = format!("{PREFIX}/");
    key.starts_with(&folder) || key.contains(&format!("/{folder}"))
}

/// zstd level of artefacts: fast, and text compresses well at it.
const ZSTD_LEVEL: i32 = 3;

/// `processed/{sha}/{name}.json.zst`.
pub fn key(content_sha256: &str, name: &str) -> String {
    format!("{PREFIX}/{content_sha256}/{name}.json.zst")
}

/// The first 16 hex digits of the SHA-256 of `parts` joined: the `lineage` part of a key.
pub fn lineage(parts: &[&str]) -> String {
    let mut joined = String::new();
    for p in parts {
        joined.push_str(p);
        joined.push('\n');
    }
    sha256_hex(joined)[..16].to_string()
}

/// JSON, zstd-compressed.
///
/// # Errors
/// The value does not serialise (a bug), as [`StageError::Internal`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StageError> {
    let json = serde_json::to_vec(value).map_err(|e| StageError::Internal {
        stage: "artefact",
        message: format!("cannot serialise an artefact: {e}"),
    })?;
    zstd::bulk::compress(&json, ZSTD_LEVEL).map_err(|e| StageError::Internal {
        stage: "artefact",
        message: format!("cannot compress an artefact: {e}"),
    })
}

/// The value of an encoded artefact, or why not.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let json = zstd::stream::decode_all(bytes).map_err(|e| format!("not zstd: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("not the expected JSON: {e}"))
}

/// The artefact at `key`, or `None` when there is none or it cannot be decoded.
///
/// # Errors
/// The blob store failed.
pub async fn try_load<T: DeserializeOwned>(app: &App, key: &str) -> Result<Option<T>, StageError> {
    let Some(bytes) = app.artefacts.get(key).await? else {
        return Ok(None);
    };
    match decode(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(key, error = %e, "unreadable artefact treated as missing");
            Ok(None)
        }
    }
}

/// The artefact at `key`, which an earlier step wrote.
///
/// # Errors
/// [`StageError::ArtefactMissing`] when it is not there (or unreadable); the blob
/// store failed.
pub async fn load<T: DeserializeOwned>(app: &App, key: &str) -> Result<T, StageError> {
    try_load(app, key)
        .await?
        .ok_or_else(|| StageError::ArtefactMissing {
            key: key.to_string(),
        })
}

/// Writes `value` at `key`.
///
/// # Errors
/// The blob store failed.
pub async fn store<T: Serialize>(app: &App, key: &str, value: &T) -> Result<(), StageError> {
    let bytes = encode(value)?;
    app.artefacts.put(key, bytes).await?;
    Ok(())
}

/// A step's result and whether it was reused.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced<T> {
    pub value: T,
    /// A cache hit, a result another task computed, or an artefact already written.
    pub reused: bool,
}

/// The artefact at `key`: from the cache `spec` when given (single flight across tasks
/// and processes), else from the blob store, else computed by `compute` and written to
/// the blob store (and the cache). A cache hit whose artefact is not in this blob store
/// writes it there, so that the next step always finds what this one points at.
///
/// # Errors
/// `compute`'s error; the blob store failed.
pub async fn produce<T, F, Fut>(
    app: &App,
    key: &str,
    spec: Option<&CacheSpec>,
    compute: F,
) -> Result<Produced<T>, StageError>
where
    T: Serialize + DeserializeOwned + Send,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, StageError>>,
{
    produce_with_ttl(app, key, spec, |_| None, compute).await
}

/// As [`produce`], the cache entry living as long as `ttl_of` says for the value (`None`:
/// `spec.ttl`), for results whose lifetime depends on what they are (the OCR result of a
/// court filing, a contract, an exhibit). The value is known only once computed, so the
/// entry this call writes is written again with its own lifetime when that differs.
///
/// # Errors
/// As [`produce`].
pub async fn produce_with_ttl<T, F, Fut>(
    app: &App,
    key: &str,
    spec: Option<&CacheSpec>,
    ttl_of: impl FnOnce(&T) -> Option<Duration>,
    compute: F,
) -> Result<Produced<T>, StageError>
where
    T: Serialize + DeserializeOwned + Send,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, StageError>>,
{
    let from_store = AtomicBool::new(false);
    let load_or_compute = || async {
        if let Some(v) = try_load::<T>(app, key).await? {
            from_store.store(true, Ordering::Relaxed);
            return Ok::<T, StageError>(v);
        }
        let v = compute().await?;
        store(app, key, &v).await?;
        Ok(v)
    };
    match spec {
        None => {
            let value = load_or_compute().await?;
            Ok(Produced {
                value,
                reused: from_store.load(Ordering::Relaxed),
            })
        }
        Some(spec) => {
            let cached = app.cache.get_or_compute(spec, load_or_compute).await?;
            let hit = cached.source.is_cached();
            if !hit && let Some(ttl) = ttl_of(&cached.value).filter(|ttl| *ttl != spec.ttl) {
                let own = CacheSpec {
                    ttl,
                    ..spec.clone()
                };
                app.cache.put(&own, &cached.value).await;
            }
            if hit && !app.artefacts.exists(key).await? {
                store(app, key, &cached.value).await?;
            }
            Ok(Produced {
                value: cached.value,
                reused: hit || from_store.load(Ordering::Relaxed),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefacts_round_trip_and_garbage_is_an_error_not_a_panic() {
        let v = vec!["a".to_string(), "é".repeat(1000)];
        let bytes = encode(&v).unwrap();
        assert!(bytes.len() < 500, "compressed");
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap(), v);
        assert!(decode::<Vec<String>>(b"garbage").is_err());
        assert!(decode::<u32>(&bytes).is_err());
    }

    #[test]
    fn keys_live_under_the_document_hash_and_lineage_separates_inputs() {
        assert_eq!(key("ab", "ocr-x"), "processed/ab/ocr-x.json.zst");
        assert_ne!(lineage(&["a", "b"]), lineage(&["ab"]));
        assert_eq!(lineage(&["a"]).len(), 16);
    }
}
