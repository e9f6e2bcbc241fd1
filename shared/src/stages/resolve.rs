//! Resolution stage: mentions → canonical entities, cached by a hash of the mention set
//! (and the resolver version), so an unchanged document is not resolved again.

use crate::model::{CanonicalEntity, Mention};
use crate::redis::{CacheSpec, Cached, KeyPart};
use crate::resolve::{RESOLVER_VERSION, resolve};
use crate::text::sha256_hex;

use super::Deps;

/// Namespace of resolution results.
pub const NAMESPACE: &str = "resolution";
/// Bump when the stored shape changes.
pub const SCHEMA: u32 = 1;

/// Hash of everything that changes the resolution: the resolver version and, for each
/// mention, its id, kind, text, normalised value and position.
pub fn context_hash(mentions: &[Mention]) -> String {
    let mut buf = format!("resolver-{RESOLVER_VERSION}\n");
    for m in mentions {
        buf.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            m.id, m.kind, m.start, m.end, m.text, m.normalized
        ));
    }
    sha256_hex(buf)
}

/// Canonical entities of a document whose content hash is `document_sha256`.
#[tracing::instrument(skip_all, fields(stage = "resolve_entities", mentions = mentions.len()))]
pub async fn run(
    deps: &Deps,
    document_sha256: &str,
    mentions: &[Mention],
) -> Cached<Vec<CanonicalEntity>> {
    let ctx = context_hash(mentions);
    let spec = CacheSpec {
        namespace: NAMESPACE,
        key: deps.cache.keys().key(
            NAMESPACE,
            SCHEMA,
            &[KeyPart::Digest(document_sha256), KeyPart::Digest(&ctx)],
        ),
        schema: SCHEMA,
        ttl: deps.config.cache.ttl_resolution,
    };
    let result: Result<_, std::convert::Infallible> = deps
        .cache
        .get_or_compute(&spec, || async { Ok(resolve(mentions)) })
        .await;
    match result {
        Ok(c) => c,
        Err(never) => match never {},
    }
}
