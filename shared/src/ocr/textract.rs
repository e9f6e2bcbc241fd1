//! AWS Textract, asynchronous text detection, behind the caches and the shared rate limit.
//!
//! What makes it cheap and safe to call from many workers at once:
//!
//! - **One job per content.** `StartDocumentTextDetection` carries a `ClientRequestToken`
//!   derived from the content hash and the page set ([`client_request_token`]), so a
//!   repeated start within Textract's idempotency window returns the same job; and the start
//!   itself runs under the cache's single flight on `textract:v1:start:{token}`, so that 16
//!   workers starting the same new document send one request, and the job id is shared.
//!   A job that ended `FAILED` is recorded ([`Engine::job_failed`], and `textract_jobs`);
//!   the next attempt then starts a new job under a new token ([`attempt_token`]) instead
//!   of being handed the failed one by the start's cache or Textract's idempotency.
//! - **One poll per interval.** A job's status is cached at `textract:v1:job:{job_id}:status`
//!   for the poll interval while it runs (and [`crate::config::OcrConfig::status_ttl_done`]
//!   once it is done), read under single flight: any number of pollers of one job cost at
//!   most one `GetDocumentTextDetection` per interval.
//! - **Results fetched once.** Every result page (`NextToken`) is fetched by the one task
//!   that builds the OCR result under the result cache's single flight.
//! - **The shared limiter.** Every call first takes a grant of `textract_start` or
//!   `textract_get` (`LEXPIPE_RL_TEXTRACT_*`), shared by every process through Redis. A
//!   throttling answer (`ProvisionedThroughputExceededException`, `ThrottlingException`,
//!   `LimitExceededException`) pauses every worker's grants of that API
//!   ([`crate::redis::ratelimit::RateLimiter::throttled`]) and is raised as
//!   [`error_types::THROTTLED`], which the state machine retries.
//! - **The SDK does not retry.** The client is built with retries off, so every request
//!   the endpoint receives went through the limiter and is in the cost ledger.
//!
//! Jobs are recorded in the `textract_jobs` table when a database is configured.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_textract::Client;
use aws_sdk_textract::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_textract::types::{BlockType, DocumentLocation, S3Object};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::cost::Meter;
use crate::redis::ratelimit::{Api, RateLimitError};
use crate::redis::{CacheSpec, KeyPart};
use crate::text::sha256_hex;

use super::subset::PageMap;

/// Method name of Textract results, part of the OCR cache key.
pub const METHOD: &str = "textract";
/// Bump when the text assembled from the same job can change.
pub const VERSION: u32 = 1;
/// Redis namespace of job ids and statuses.
pub const NAMESPACE: &str = "textract";
const KEY_VERSION: u32 = 1;
/// How long the job id of a start is remembered (Textract keeps results for 7 days; a
/// document whose result is cached never asks again).
const JOB_ID_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the jobs that failed on a content are remembered: longer than a start's job
/// id, so that no retry within that time is handed a failed job.
const FAILED_JOBS_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Blocks asked for per result page (Textract's maximum).
const MAX_RESULTS: i32 = 1000;

/// Stable error names, for Step Functions `Retry`/`Catch`.
pub mod error_types {
    /// Textract (or the limiter's shared pause after it) said "slow down". Retryable.
    pub const THROTTLED: &str = "TextractThrottled";
    /// Textract could not be reached or answered with a server error. Retryable.
    pub const UNAVAILABLE: &str = "TextractUnavailable";
    /// Textract refused the request (bad document, access denied…). Terminal.
    pub const REJECTED: &str = "TextractRejected";
    /// The job ended `FAILED`. Terminal; Textract's message is the cause.
    pub const JOB_FAILED: &str = "TextractJobFailed";
    /// Textract is the engine but cannot be used as configured. Terminal.
    pub const NOT_CONFIGURED: &str = "TextractNotConfigured";
    pub const ALL: [&str; 5] = [THROTTLED, UNAVAILABLE, REJECTED, JOB_FAILED, NOT_CONFIGURED];
}

/// Why a Textract call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TextractError {
    #[error("Textract throttled {operation}: {message}")]
    Throttled {
        operation: &'static str,
        message: String,
    },
    #[error("Textract unavailable for {operation}: {message}")]
    Unavailable {
        operation: &'static str,
        message: String,
    },
    #[error("Textract refused {operation}: {code}: {message}")]
    Rejected {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("Textract job {job_id} failed: {message}")]
    JobFailed { job_id: String, message: String },
    #[error("Textract cannot be used: {0}")]
    NotConfigured(String),
    #[error("{0}")]
    RateLimit(#[from] RateLimitError),
}

impl TextractError {
    /// Stable name.
    pub fn error_type(&self) -> &'static str {
        match self {
            TextractError::Throttled { .. } => error_types::THROTTLED,
            TextractError::Unavailable { .. } => error_types::UNAVAILABLE,
            TextractError::Rejected { .. } => error_types::REJECTED,
            TextractError::JobFailed { .. } => error_types::JOB_FAILED,
            TextractError::NotConfigured(_) => error_types::NOT_CONFIGURED,
            TextractError::RateLimit(e) => e.error_type(),
        }
    }
}

/// A Textract client for `sdk` (endpoint from `AWS_ENDPOINT_URL_TEXTRACT` or
/// `AWS_ENDPOINT_URL`, as the SDK reads them), with the SDK's own retries off: the step
/// retries through the state machine, after the limiter's pause.
pub fn client(sdk: &SdkConfig) -> Client {
    let config = aws_sdk_textract::config::Builder::from(sdk)
        .retry_config(aws_sdk_textract::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// The `ClientRequestToken` of a job on this content and page set: 64 hex digits (the
/// token's maximum length, and its alphabet).
pub fn client_request_token(content_sha256: &str, pages: &PageMap) -> String {
    sha256_hex(format!(
        "lexpipe-textract-v{VERSION}\n{content_sha256}\n{}",
        pages.label()
    ))
}

/// The `ClientRequestToken` of the attempt that follows `failed` failed jobs on this
/// content and page set: the plain [`client_request_token`] first, then one derived from
/// it and the attempt number, so that Textract's idempotency does not hand a retry the
/// job that failed.
pub fn attempt_token(content_sha256: &str, pages: &PageMap, failed: usize) -> String {
    let first = client_request_token(content_sha256, pages);
    match failed {
        0 => first,
        n => sha256_hex(format!("{first}\nretry-{n}")),
    }
}

/// What a job reads and how it is labelled.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub bucket: String,
    pub key: String,
    /// The object version to read (a versioned bucket), as checked against the content
    /// hash: an overwrite after the check does not change what the job reads.
    pub version: Option<String>,
    pub content_sha256: String,
    pub document_uuid: uuid::Uuid,
    /// Original page numbers of the pages in the object, in order.
    pub pages: PageMap,
}

/// A job's state as Textract last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// `IN_PROGRESS`, `SUCCEEDED`, `PARTIAL_SUCCESS` or `FAILED`.
    pub status: String,
    pub message: Option<String>,
    /// Pages Textract read, once known.
    pub pages: Option<u32>,
}

impl JobStatus {
    pub fn is_running(&self) -> bool {
        self.status == "IN_PROGRESS"
    }
    pub fn is_failed(&self) -> bool {
        self.status == "FAILED"
    }
}

/// One page of a job's text, numbered as in the original document.
#[derive(Debug, Clone, PartialEq)]
pub struct TextractPage {
    pub number: u32,
    pub text: String,
    /// Mean confidence of the page's lines.
    pub confidence: Option<f32>,
    /// Textract's warning about this page (PARTIAL_SUCCESS), if any.
    pub warning: Option<String>,
}

/// The Textract engine of one step: the app's client, caches, limiter and database, and
/// the step's cost meter.
pub struct Engine<'a> {
    pub app: &'a App,
    pub client: &'a Client,
    pub meter: &'a Meter,
}

impl Engine<'_> {
    fn key(&self, parts: &[KeyPart<'_>]) -> String {
        self.app.cache.keys().key(NAMESPACE, KEY_VERSION, parts)
    }

    /// The Redis key of a job's cached status: `textract:v1:job:{job_id}:status`.
    pub fn status_key(&self, job_id: &str) -> String {
        self.key(&[
            KeyPart::Id("job"),
            KeyPart::Id(job_id),
            KeyPart::Id("status"),
        ])
    }

    fn status_spec(&self, job_id: &str, ttl: Duration) -> CacheSpec {
        CacheSpec {
            namespace: NAMESPACE,
            key: self.status_key(job_id),
            schema: KEY_VERSION,
            ttl,
        }
    }

    /// Starts the job for `request`, or finds the one already started for the same content
    /// and pages (this process, another worker, or Textract's own idempotency on the
    /// token). Returns the job id.
    ///
    /// # Errors
    /// The limiter gave no grant in time; Textract throttled, failed or refused.
    pub async fn start(&self, request: &JobRequest) -> Result<String, TextractError> {
        let failed = self
            .failed_jobs(&request.content_sha256, &request.pages)
            .await;
        let token = attempt_token(&request.content_sha256, &request.pages, failed);
        let spec = CacheSpec {
            namespace: NAMESPACE,
            key: self.key(&[KeyPart::Id("start"), KeyPart::Digest(&token)]),
            schema: KEY_VERSION,
            ttl: JOB_ID_TTL,
        };
        let cached = self
            .app
            .cache
            .get_or_compute(&spec, || async {
                if let Some(job_id) = self.recorded_job(&token).await {
                    return Ok(job_id);
                }
                self.send_start(request, &token).await
            })
            .await?;
        if cached.source.is_cached() {
            self.meter.textract_avoided(1, 0);
        }
        Ok(cached.value)
    }

    /// The Redis entry listing the jobs that failed on this content and page set.
    fn failed_spec(&self, content_sha256: &str, pages: &PageMap) -> CacheSpec {
        let token = client_request_token(content_sha256, pages);
        CacheSpec {
            namespace: NAMESPACE,
            key: self.key(&[KeyPart::Id("failed"), KeyPart::Digest(&token)]),
            schema: KEY_VERSION,
            ttl: FAILED_JOBS_TTL,
        }
    }

    /// How many jobs on this content and page set have failed: the most the Redis list
    /// or the `textract_jobs` table knows of (either may be missing).
    async fn failed_jobs(&self, content_sha256: &str, pages: &PageMap) -> usize {
        let listed = self
            .app
            .cache
            .get::<Vec<String>>(&self.failed_spec(content_sha256, pages))
            .await
            .map_or(0, |jobs| jobs.len());
        let recorded = match &self.app.db {
            None => 0,
            Some(db) => sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM textract_jobs WHERE content_sha256 = $1 AND pages = $2 \
                 AND status = 'FAILED'",
            )
            .bind(content_sha256)
            .bind(pages.label())
            .fetch_one(db)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read textract_jobs"))
            .map_or(0, |n| usize::try_from(n).unwrap_or(0)),
        };
        listed.max(recorded)
    }

    /// Records that `job_id` (on this content and page set) failed, so that the next
    /// [`Engine::start`] asks for a new job under a new token instead of the one that
    /// failed, which the start's cache entry and Textract's idempotency would hand back.
    pub async fn job_failed(&self, content_sha256: &str, pages: &PageMap, job_id: &str) {
        let spec = self.failed_spec(content_sha256, pages);
        let mut jobs = self
            .app
            .cache
            .get::<Vec<String>>(&spec)
            .await
            .unwrap_or_default();
        if !jobs.iter().any(|j| j == job_id) {
            jobs.push(job_id.to_string());
            self.app.cache.put(&spec, &jobs).await;
        }
    }

    async fn send_start(&self, request: &JobRequest, token: &str) -> Result<String, TextractError> {
        const OP: &str = "StartDocumentTextDetection";
        self.app.limiter.acquire(Api::TextractStart, 1).await?;
        let location = DocumentLocation::builder()
            .s3_object(
                S3Object::builder()
                    .bucket(&request.bucket)
                    .name(&request.key)
                    .set_version(request.version.clone())
                    .build(),
            )
            .build();
        let sent = self
            .client
            .start_document_text_detection()
            .document_location(location)
            .client_request_token(token)
            .job_tag(job_tag(&request.document_uuid))
            .send()
            .await;
        self.meter.textract_call(0);
        let out = match sent {
            Ok(out) => out,
            Err(e) => return Err(self.classify(OP, Api::TextractStart, e).await),
        };
        let job_id = out
            .job_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| TextractError::Unavailable {
                operation: OP,
                message: "the answer carried no JobId".into(),
            })?
            .to_string();
        tracing::info!(job_id, pages = %request.pages.label(), "textract job started");
        self.record_job(request, token, &job_id).await;
        Ok(job_id)
    }

    /// The job's status: from the cache when another poller asked within the poll
    /// interval, else from one `GetDocumentTextDetection` (under single flight).
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub async fn status(&self, job_id: &str) -> Result<JobStatus, TextractError> {
        let interval = self.app.config.ocr.poll_interval;
        let spec = self.status_spec(job_id, interval);
        let cached = self
            .app
            .cache
            .get_or_compute(&spec, || async {
                let page = self.get_page(job_id, None, 1, 0).await?;
                Ok::<_, TextractError>(page.status)
            })
            .await?;
        if cached.source.is_cached() {
            self.meter.textract_avoided(1, 0);
        } else if !cached.value.is_running() && !cached.value.is_failed() {
            // Done: keep the answer for hours, not seconds.
            let done = self.status_spec(job_id, self.app.config.ocr.status_ttl_done);
            self.app.cache.put(&done, &cached.value).await;
            self.update_job(job_id, &cached.value).await;
        } else if cached.value.is_failed() {
            self.update_job(job_id, &cached.value).await;
        }
        Ok(cached.value)
    }

    /// Every page of a finished job's text, mapped back to the original page numbers by
    /// `pages`: every result page fetched with `NextToken`, LINE blocks in the order
    /// Textract gives them (reading order), per page.
    ///
    /// # Errors
    /// As [`Engine::start`]; [`TextractError::JobFailed`] when the job failed.
    pub async fn fetch_text(
        &self,
        job_id: &str,
        pages: &PageMap,
    ) -> Result<Vec<TextractPage>, TextractError> {
        let mut next: Option<String> = None;
        let mut lines: BTreeMap<u32, Vec<(String, Option<f32>)>> = BTreeMap::new();
        let mut warnings: BTreeMap<u32, String> = BTreeMap::new();
        let mut billed = pages.pages().len() as u64;
        loop {
            let page = self
                .get_page(job_id, next.as_deref(), MAX_RESULTS, billed)
                .await?;
            billed = 0;
            if page.status.is_failed() {
                return Err(TextractError::JobFailed {
                    job_id: job_id.to_string(),
                    message: page
                        .status
                        .message
                        .unwrap_or_else(|| "no message".to_string()),
                });
            }
            for (subset_page, text, confidence) in page.lines {
                if let Some(original) = pages.original(subset_page) {
                    lines.entry(original).or_default().push((text, confidence));
                }
            }
            for (subset_pages, message) in page.warnings {
                for p in subset_pages {
                    if let Some(original) = pages.original(p) {
                        warnings.insert(original, message.clone());
                    }
                }
            }
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(pages
            .pages()
            .iter()
            .map(|&number| {
                let page_lines = lines.remove(&number).unwrap_or_default();
                let confidences: Vec<f32> = page_lines.iter().filter_map(|(_, c)| *c).collect();
                let text: Vec<String> = page_lines.into_iter().map(|(t, _)| t).collect();
                TextractPage {
                    number,
                    text: super::normalize_page_text(&text.join("\n")),
                    confidence: (!confidences.is_empty())
                        .then(|| confidences.iter().sum::<f32>() / confidences.len() as f32),
                    warning: warnings.remove(&number),
                }
            })
            .collect())
    }

    /// One `GetDocumentTextDetection` call through the limiter; `billed` pages are
    /// recorded with it in the meter.
    async fn get_page(
        &self,
        job_id: &str,
        next_token: Option<&str>,
        max_results: i32,
        billed: u64,
    ) -> Result<ResultPage, TextractError> {
        const OP: &str = "GetDocumentTextDetection";
        self.app.limiter.acquire(Api::TextractGet, 1).await?;
        let sent = self
            .client
            .get_document_text_detection()
            .job_id(job_id)
            .max_results(max_results)
            .set_next_token(next_token.map(str::to_string))
            .send()
            .await;
        self.meter.textract_call(billed);
        let out = match sent {
            Ok(out) => out,
            Err(e) => return Err(self.classify(OP, Api::TextractGet, e).await),
        };
        let status = JobStatus {
            status: out
                .job_status()
                .map_or("IN_PROGRESS", |s| s.as_str())
                .to_string(),
            message: out.status_message().map(str::to_string),
            pages: out
                .document_metadata()
                .and_then(|m| m.pages())
                .and_then(|p| u32::try_from(p).ok()),
        };
        let lines = out
            .blocks()
            .iter()
            .filter(|b| b.block_type() == Some(&BlockType::Line))
            .filter_map(|b| {
                let page = u32::try_from(b.page().unwrap_or(1)).ok()?;
                Some((page, b.text()?.to_string(), b.confidence()))
            })
            .collect();
        let warnings = out
            .warnings()
            .iter()
            .map(|w| {
                let pages = w
                    .pages()
                    .iter()
                    .filter_map(|p| u32::try_from(*p).ok())
                    .collect();
                (pages, w.error_code().unwrap_or("warning").to_string())
            })
            .collect();
        Ok(ResultPage {
            status,
            lines,
            warnings,
            next_token: out.next_token().map(str::to_string),
        })
    }

    /// Turns an SDK error into a [`TextractError`]; throttling also pauses every worker's
    /// grants of `api`.
    async fn classify<E>(
        &self,
        operation: &'static str,
        api: Api,
        error: SdkError<E, aws_sdk_textract::config::http::HttpResponse>,
    ) -> TextractError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        let code = error.code().unwrap_or_default().to_string();
        let message = error
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| aws_sdk_textract::error::DisplayErrorContext(&error).to_string());
        match code.as_str() {
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "LimitExceededException" => {
                let pause = self.app.limiter.throttled(api, None).await;
                tracing::info!(
                    operation,
                    ?pause,
                    "textract throttled us; every worker pauses"
                );
                TextractError::Throttled { operation, message }
            }
            "InternalServerError" => TextractError::Unavailable { operation, message },
            _ if matches!(
                error,
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
            ) || status.is_some_and(|s| s >= 500) =>
            {
                TextractError::Unavailable { operation, message }
            }
            "" => TextractError::Unavailable { operation, message },
            _ => TextractError::Rejected {
                operation,
                code,
                message,
            },
        }
    }

    /// The job recorded in `textract_jobs` for this token that has not failed, if any.
    async fn recorded_job(&self, token: &str) -> Option<String> {
        let db = self.app.db.as_ref()?;
        sqlx::query_scalar::<_, String>(
            "SELECT job_id FROM textract_jobs WHERE client_request_token = $1 \
             AND status <> 'FAILED' AND started_at > now() - interval '1 day' \
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(token)
        .fetch_optional(db)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "cannot read textract_jobs"))
        .ok()
        .flatten()
    }

    async fn record_job(&self, request: &JobRequest, token: &str, job_id: &str) {
        let Some(db) = &self.app.db else { return };
        let result = sqlx::query(
            "INSERT INTO textract_jobs (job_id, document_id, content_sha256, client_request_token, \
             job_tag, s3_object, pages, pages_sent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job_id)
        .bind(request.document_uuid)
        .bind(&request.content_sha256)
        .bind(token)
        .bind(job_tag(&request.document_uuid))
        .bind(format!("s3://{}/{}", request.bucket, request.key))
        .bind(request.pages.label())
        .bind(i32::try_from(request.pages.pages().len()).unwrap_or(i32::MAX))
        .execute(db)
        .await;
        if let Err(e) = result {
            tracing::warn!(job_id, error = %e, "cannot record the textract job");
        }
    }

    async fn update_job(&self, job_id: &str, status: &JobStatus) {
        let Some(db) = &self.app.db else { return };
        let result = sqlx::query(
            "UPDATE textract_jobs SET status = $2, error = $3, page_count = $4, \
             completed_at = COALESCE(completed_at, now()) WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(&status.status)
        .bind(&status.message)
        .bind(status.pages.and_then(|p| i32::try_from(p).ok()))
        .execute(db)
        .await;
        if let Err(e) = result {
            tracing::warn!(job_id, error = %e, "cannot update the textract job");
        }
    }
}

/// `lexpipe-{document uuid}`: the `JobTag` (at most 64 of `[A-Za-z0-9_.:-]`).
pub fn job_tag(document_uuid: &uuid::Uuid) -> String {
    format!("lexpipe-{document_uuid}")
}

struct ResultPage {
    status: JobStatus,
    /// (page in the submitted document, text, confidence)
    lines: Vec<(u32, String, Option<f32>)>,
    /// (pages, warning code)
    warnings: Vec<(Vec<u32>, String)>,
    next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_token_is_textracts_shape_and_depends_on_content_and_pages() {
        let sha = "a".repeat(64);
        let all = client_request_token(&sha, &PageMap::new(&[1, 2, 3]));
        assert_eq!(all.len(), 64);
        assert!(all.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(all, client_request_token(&sha, &PageMap::new(&[3, 2, 1])));
        assert_ne!(all, client_request_token(&sha, &PageMap::new(&[1, 2])));
        assert_ne!(
            all,
            client_request_token(&"b".repeat(64), &PageMap::new(&[1, 2, 3]))
        );
        assert_eq!(attempt_token(&sha, &PageMap::new(&[1, 2, 3]), 0), all);
        let retry = attempt_token(&sha, &PageMap::new(&[1, 2, 3]), 1);
        assert_eq!(retry.len(), 64);
        assert_ne!(retry, all, "a retry after a failed job is another request");
        assert_ne!(retry, attempt_token(&sha, &PageMap::new(&[1, 2, 3]), 2));
        let tag = job_tag(&uuid::Uuid::nil());
        assert!(tag.len() <= 64);
    }
}
