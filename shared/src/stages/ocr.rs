//! OCR stage: the text of every page, cached by content hash so that the same bytes under
//! any name are read once.

use std::sync::Arc;

use crate::model::OcrResult;
use crate::ocr::{PDF_TEXT_METHOD, PDF_TEXT_VERSION, extract_pdf_text};
use crate::redis::{CacheSpec, Cached, KeyPart};

use super::{Deps, StageError};

/// Namespace of OCR results in Redis and in the counters.
pub const NAMESPACE: &str = "ocr";
/// Bump when the text a method produces changes: old entries stop being read.
pub const SCHEMA: u32 = 1;

/// Text of every page of `bytes` (whose SHA-256 is `content_sha256`).
///
/// # Errors
/// The file is not a readable PDF ([`StageError::Ocr`]); never cached.
#[tracing::instrument(skip_all, fields(content_sha256 = %content_sha256, stage = "ocr"))]
pub async fn run(
    deps: &Deps,
    bytes: Arc<Vec<u8>>,
    content_sha256: &str,
) -> Result<Cached<OcrResult>, StageError> {
    // The method part carries the engine's version: a change in extraction invalidates.
    let method = format!("{PDF_TEXT_METHOD}-{PDF_TEXT_VERSION}");
    let spec = CacheSpec {
        namespace: NAMESPACE,
        key: deps.cache.keys().key(
            NAMESPACE,
            SCHEMA,
            &[KeyPart::Digest(content_sha256), KeyPart::Id(&method)],
        ),
        schema: SCHEMA,
        ttl: deps.config.cache.ttl_ocr,
    };
    deps.cache
        .get_or_compute(&spec, || async move {
            tokio::task::spawn_blocking(move || extract_pdf_text(&bytes))
                .await
                .map_err(|e| StageError::Internal {
                    stage: "ocr",
                    message: e.to_string(),
                })?
                .map_err(StageError::from)
        })
        .await
}
