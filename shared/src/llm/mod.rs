//! The OpenAI-compatible LLM client (OpenAI, vLLM, Ollama, llama.cpp's server): chat
//! completions with a JSON-schema response format, behind the LLM response cache and the
//! shared rate limits.
//!
//! ## What one [`LlmClient::complete`] does
//!
//! 1. **Cache** (`llm:v{KEY_VERSION}:{model}:{sha256}`): the hash covers exactly what can
//!    change the answer — model, messages (system prompt included), temperature, top_p,
//!    seed, max tokens, the response schema and its name, the prompt template version —
//!    and nothing else (no request id, no time, never the API key). Single flight across
//!    tasks and processes, hit/miss counters under the `llm` namespace
//!    ([`crate::redis::Cache`]). The usage tokens are stored beside the answer, so that a
//!    hit knows what it saved.
//! 2. **Rate limits**: before each request, one request and the estimated tokens (prompt
//!    bytes / 4 + `max_tokens`) are reserved from `LEXPIPE_RL_LLM_*` in Redis, shared
//!    by every process; the estimate is corrected from the response's `usage`.
//! 3. **Request**: `POST {LEXPIPE_LLM_BASE_URL}/chat/completions` with an explicit
//!    temperature and `response_format: {type: json_schema, strict: true}`, under
//!    `LEXPIPE_LLM_TIMEOUT_MS`.
//! 4. **Failures**: a 5xx, a timeout or a broken connection is retried with exponential
//!    backoff and full jitter (`LEXPIPE_LLM_MAX_RETRIES`, `LEXPIPE_LLM_RETRY_BASE_MS`); a 429
//!    pauses every process's LLM calls for its `Retry-After` ([`RateLimiter::throttled`])
//!    and is retried within the same budget; another 4xx fails at once ([`LlmError::Rejected`]).
//! 5. **Validation**: the answer must parse as JSON and satisfy the schema ([`schema`]). An
//!    invalid one is retried once with a repair message naming the problem; a second
//!    invalid one fails with [`LlmError::InvalidResponse`]. Errors are never cached.
//! 6. **Cost**: every request the endpoint received (retries included) is recorded in the
//!    caller's [`Meter`] with the tokens its `usage` reported; a cached answer is recorded as
//!    avoided with the tokens it cost when it was made.
//!
//! The API key travels only in the `Authorization` header. Error messages are built here,
//! never from the request, and any text echoed from the endpoint is scrubbed of the key.

pub mod schema;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{LlmConfig, Secret};
use crate::cost::Meter;
use crate::redis::ratelimit::{Api, RateLimitError, RateLimiter, parse_retry_after};
use crate::redis::{Cache, CacheSpec, KeyBuilder, KeyPart};
use crate::text::sha256_hex;

/// Namespace of cached LLM answers (and of their hit/miss counters).
pub const NAMESPACE: &str = "llm";
/// Bump when the cached value's shape or the request format changes.
pub const KEY_VERSION: u32 = 1;

/// Longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// How much of an endpoint's error body an error message quotes.
const BODY_SNIPPET: usize = 300;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// What a stage asks: a prompt whose answer must be JSON matching `schema`. The sampling
/// settings and the model come from the client's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRequest {
    /// The system prompt first, then the user message(s).
    pub messages: Vec<Message>,
    /// The schema's name in `response_format` (`[A-Za-z0-9_-]`, as OpenAI requires).
    pub schema_name: String,
    pub schema: Value,
    /// The version of the prompt template that produced `messages`: bump it when the
    /// wording changes, so that old answers are not served for the new prompt.
    pub prompt_version: u32,
}

/// Tokens of one answer, as the endpoint's `usage` reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A validated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: Value,
    /// What the answer cost when it was made (also for a cached one).
    pub usage: Usage,
    /// True when no request was made for it (a cache hit, or another task's answer).
    pub cached: bool,
}

/// What the cache keeps: the answer and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAnswer {
    value: Value,
    usage: Usage,
}

/// Stable names of [`LlmError`] variants, for Step Functions `Retry`/`Catch` and status.
pub mod error_types {
    pub const UNAVAILABLE: &str = "LlmUnavailable";
    pub const RATE_LIMITED: &str = "LlmRateLimited";
    pub const REJECTED: &str = "LlmRejected";
    pub const INVALID_RESPONSE: &str = "LlmInvalidResponse";
    /// Every name above.
    pub const ALL: [&str; 4] = [UNAVAILABLE, RATE_LIMITED, REJECTED, INVALID_RESPONSE];
    /// The names worth retrying later.
    pub const RETRYABLE: [&str; 2] = [UNAVAILABLE, RATE_LIMITED];
}

/// Why an LLM call gave no answer. Never contains the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// 5xx, timeouts or connection failures on every attempt. Retryable.
    #[error("LLM endpoint unavailable after {attempts} attempts: {message}")]
    Unavailable { attempts: u32, message: String },
    /// The shared rate limit gave no capacity in time, or the endpoint kept answering 429.
    /// Retryable.
    #[error("LLM rate limited: {message}")]
    RateLimited { message: String },
    /// The endpoint refused the request (401, 400, 404…), or the request can never fit
    /// the limits. Terminal: the same request gets the same answer.
    #[error("LLM endpoint refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// The answer was not JSON matching the schema, twice (the second time after a
    /// repair message). Terminal; never cached.
    #[error("LLM answer for schema {schema} is invalid after one repair attempt: {problem}")]
    InvalidResponse { schema: String, problem: String },
}

impl LlmError {
    /// Stable name, one of [`error_types::ALL`].
    pub fn error_type(&self) -> &'static str {
        match self {
            LlmError::Unavailable { .. } => error_types::UNAVAILABLE,
            LlmError::RateLimited { .. } => error_types::RATE_LIMITED,
            LlmError::Rejected { .. } => error_types::REJECTED,
            LlmError::InvalidResponse { .. } => error_types::INVALID_RESPONSE,
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        error_types::RETRYABLE.contains(&self.error_type())
    }
}

/// The client of one endpoint and model; build once, share behind an `Arc`.
pub struct LlmClient {
    http: reqwest::Client,
    endpoint: String,
    api_key: Option<Secret>,
    cfg: LlmConfig,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("model", &self.cfg.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Answer(StoredAnswer),
    /// A 200 whose content is not valid: the content (for the repair message) and why.
    Invalid {
        content: String,
        problem: String,
    },
    /// Worth another attempt after a backoff.
    Transient(String),
    /// A 429: the limiter is paused; try again (no extra backoff).
    Throttled(String),
}

impl LlmClient {
    /// The client of `cfg`'s endpoint, or `None` when no `LEXPIPE_LLM_BASE_URL` is set.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS set-up), as [`LlmError::Rejected`].
    pub fn new(cfg: &LlmConfig) -> Result<Option<LlmClient>, LlmError> {
        let Some(base) = &cfg.base_url else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::Rejected {
                status: 0,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Some(LlmClient {
            http,
            endpoint: format!("{}/chat/completions", base.as_str().trim_end_matches('/')),
            api_key: cfg.api_key.clone(),
            cfg: cfg.clone(),
        }))
    }

    /// The model every request names.
    pub fn model(&self) -> &str {
        &self.cfg.model
    }

    /// The settings this client sends.
    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// A short id of the sampling settings (temperature, top_p, seed, max tokens): part of
    /// the keys of results derived from this client's answers, so that a change misses.
    pub fn settings_id(&self) -> String {
        let settings = json!({
            "temperature": self.cfg.temperature(),
            "top_p": self.cfg.top_p(),
            "seed": self.cfg.seed,
            "max_tokens": self.cfg.max_tokens,
        });
        sha256_hex(settings.to_string())[..8].to_string()
    }

    /// The model name with anything outside `[A-Za-z0-9._-]` replaced by `_`, for file
    /// names (pair it with the exact name in a hash where a collision would matter).
    pub fn model_slug(&self) -> String {
        self.cfg
            .model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The request body, as sent (and, with the original messages, as hashed).
    fn body(&self, req: &JsonRequest, messages: &[Message]) -> Value {
        let mut body = json!({
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature(),
            "max_tokens": self.cfg.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": req.schema_name, "strict": true, "schema": req.schema},
            },
        });
        if let Some(top_p) = self.cfg.top_p() {
            body["top_p"] = json!(top_p);
        }
        if let Some(seed) = self.cfg.seed {
            body["seed"] = json!(seed);
        }
        body
    }

    /// SHA-256 of everything that can change the answer: the request body (model,
    /// messages, temperature, top_p, seed, max tokens, schema) and the prompt version.
    pub fn request_hash(&self, req: &JsonRequest) -> String {
        let hashed = json!({
            "body": self.body(req, &req.messages),
            "prompt_version": req.prompt_version,
        });
        sha256_hex(hashed.to_string())
    }

    /// `lexpipe:{env}:llm:v{N}:{model}:{request_hash}`.
    pub fn cache_key(&self, keys: &KeyBuilder, req: &JsonRequest) -> String {
        keys.key(
            NAMESPACE,
            KEY_VERSION,
            &[
                KeyPart::Id(&self.cfg.model),
                KeyPart::Digest(&self.request_hash(req)),
            ],
        )
    }

    /// The validated answer to `req`: from the cache, or from the endpoint (see the module
    /// docs). Every request made and every one avoided is recorded in `meter`.
    ///
    /// # Errors
    /// [`LlmError`]: the endpoint is unavailable, refused, rate limited past the wait, or
    /// answered invalid JSON twice.
    pub async fn complete(
        &self,
        cache: &Cache,
        limiter: &RateLimiter,
        ttl: Duration,
        req: &JsonRequest,
        meter: &Meter,
    ) -> Result<Answer, LlmError> {
        let spec = CacheSpec {
            namespace: NAMESPACE,
            key: self.cache_key(cache.keys(), req),
            schema: KEY_VERSION,
            ttl,
        };
        let got = cache
            .get_or_compute(&spec, || self.call(limiter, req, meter))
            .await?;
        let cached = got.source.is_cached();
        let StoredAnswer { value, usage } = got.value;
        if cached {
            meter.llm_avoided(usage.prompt_tokens, usage.completion_tokens);
        }
        Ok(Answer {
            value,
            usage,
            cached,
        })
    }

    /// Asks the endpoint, without the cache: retries, 429 pauses, one repair.
    async fn call(
        &self,
        limiter: &RateLimiter,
        req: &JsonRequest,
        meter: &Meter,
    ) -> Result<StoredAnswer, LlmError> {
        let mut messages = req.messages.clone();
        let mut repaired = false;
        let mut failures: u32 = 0;
        loop {
            let attempt = self.attempt(limiter, req, &messages, meter).await?;
            match attempt {
                Attempt::Answer(a) => return Ok(a),
                Attempt::Invalid { content, problem } if !repaired => {
                    tracing::warn!(schema = %req.schema_name, %problem, "invalid LLM answer; asking once more with a repair message");
                    repaired = true;
                    messages.push(Message::assistant(content));
                    messages.push(Message::user(format!(
                        "Your previous reply was not valid: {problem}. Reply again with only a \
                         JSON object that matches the schema {} exactly.",
                        req.schema_name
                    )));
                }
                Attempt::Invalid { problem, .. } => {
                    return Err(LlmError::InvalidResponse {
                        schema: req.schema_name.clone(),
                        problem,
                    });
                }
                Attempt::Throttled(message) if failures >= self.cfg.max_retries => {
                    return Err(LlmError::RateLimited { message });
                }
                Attempt::Transient(message) if failures >= self.cfg.max_retries => {
                    return Err(LlmError::Unavailable {
                        attempts: failures + 1,
                        message,
                    });
                }
                Attempt::Throttled(message) => {
                    failures += 1;
                    tracing::warn!(%message, "LLM endpoint throttled; every worker pauses");
                }
                Attempt::Transient(message) => {
                    let backoff = self.backoff(failures);
                    failures += 1;
                    tracing::warn!(%message, retry_in_ms = backoff.as_millis() as u64, "LLM request failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Full jitter over `retry_base × 2^n`, capped.
    fn backoff(&self, n: u32) -> Duration {
        let cap = self
            .cfg
            .retry_base
            .saturating_mul(1u32 << n.min(16))
            .min(MAX_BACKOFF);
        cap.mul_f64(rand::random::<f64>())
    }

    /// One request: reserve capacity, send, read, record, validate.
    async fn attempt(
        &self,
        limiter: &RateLimiter,
        req: &JsonRequest,
        messages: &[Message],
        meter: &Meter,
    ) -> Result<Attempt, LlmError> {
        let body = self.body(req, messages);
        let estimate = estimate_tokens(&body) + u64::from(self.cfg.max_tokens);
        let mut grant = limiter.acquire_llm(estimate).await.map_err(|e| match e {
            RateLimitError::DeadlineExceeded { .. } => LlmError::RateLimited {
                message: e.to_string(),
            },
            RateLimitError::CostAboveLimit { .. } => LlmError::Rejected {
                status: 0,
                message: format!(
                    "{e} (raise LEXPIPE_RL_LLM_TOKENS_PER_MIN or lower LEXPIPE_LLM_MAX_TOKENS)"
                ),
            },
        })?;
        let mut http = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key.expose());
        }
        let resp = match http.send().await {
            Ok(r) => r,
            Err(e) => {
                // A request that timed out reached the endpoint (and may be billed); one
                // that never connected did not.
                if e.is_connect() {
                    limiter.correct_llm_tokens(&mut grant, 0).await;
                } else {
                    meter.llm_call(0, 0);
                }
                return Ok(Attempt::Transient(self.scrub(&describe(&e))));
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match resp.text().await {
            Ok(b) => b,
            Err(e) => {
                meter.llm_call(0, 0);
                return Ok(Attempt::Transient(self.scrub(&describe(&e))));
            }
        };
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        let usage = parsed.as_ref().map(read_usage).unwrap_or_default();
        meter.llm_call(usage.prompt_tokens, usage.completion_tokens);
        if usage != Usage::default() {
            limiter
                .correct_llm_tokens(&mut grant, usage.prompt_tokens + usage.completion_tokens)
                .await;
        }
        if status.as_u16() == 429 {
            let pause = limiter.throttled(Api::LlmRequests, retry_after).await;
            return Ok(Attempt::Throttled(format!(
                "{THROTTLED} (paused {} ms)",
                pause.as_millis()
            )));
        }
        if status.is_server_error() || status.as_u16() == 408 {
            return Ok(Attempt::Transient(format!(
                "HTTP {}: {}",
                status.as_u16(),
                self.snippet(&body)
            )));
        }
        if !status.is_success() {
            return Err(LlmError::Rejected {
                status: status.as_u16(),
                message: self.snippet(&body),
            });
        }
        let (content, checked) = match parsed {
            None => (
                body.clone(),
                Err("the response body is not JSON".to_string()),
            ),
            Some(v) => read_answer(&v, &req.schema),
        };
        Ok(match checked {
            Ok(value) => Attempt::Answer(StoredAnswer { value, usage }),
            Err(problem) => Attempt::Invalid {
                content: self.scrub(&content),
                problem: self.scrub(&problem),
            },
        })
    }

    /// `text` with the API key replaced, should the endpoint have echoed it.
    fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "[redacted]"),
            _ => text.to_string(),
        }
    }

    /// The start of an error body, scrubbed.
    fn snippet(&self, body: &str) -> String {
        let mut s: String = body.chars().take(BODY_SNIPPET).collect();
        if body.chars().count() > BODY_SNIPPET {
            s.push('…');
        }
        self.scrub(s.trim())
    }
}

const THROTTLED: &str = "HTTP 429 Too Many Requests";

/// A reqwest error in words, without its URL (which holds nothing secret, but is noise).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken response body"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// A generous token count of a request body: its bytes / 4 (English runs about four
/// characters per token; the schema and JSON syntax count too), so that the reservation
/// rarely falls short of what `usage` later reports.
pub fn estimate_tokens(body: &Value) -> u64 {
    body.to_string().len() as u64 / 4
}

fn read_usage(v: &Value) -> Usage {
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
    }
}

/// The message content of a chat completion and, if it is JSON matching `schema`, its
/// value; else why not.
fn read_answer(body: &Value, schema_json: &Value) -> (String, Result<Value, String>) {
    let choice = &body["choices"][0];
    let Some(content) = choice["message"]["content"].as_str() else {
        let why = match choice["message"]["refusal"].as_str() {
            Some(r) => format!("the model refused: {r}"),
            None => "the response has no choices[0].message.content".to_string(),
        };
        return (String::new(), Err(why));
    };
    let content = content.to_string();
    if choice["finish_reason"].as_str() == Some("length") {
        return (
            content,
            Err("the answer was cut off at max_tokens".to_string()),
        );
    }
    let value: Value = match serde_json::from_str(strip_fences(&content)) {
        Ok(v) => v,
        Err(e) => return (content, Err(format!("the answer is not JSON ({e})"))),
    };
    let checked = schema::validate(schema_json, &value)
        .map(|()| value)
        .map_err(|p| format!("the answer does not match the schema: {p}"));
    (content, checked)
}

/// Some servers wrap JSON in a Markdown code fence even in JSON mode.
fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(vars: &[(&str, &str)]) -> LlmClient {
        let mut all = vec![("LEXPIPE_LLM_BASE_URL", "http://127.0.0.1:9/v1")];
        all.extend_from_slice(vars);
        let cfg = LlmConfig::from_vars(&|k| {
            all.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        LlmClient::new(&cfg).unwrap().unwrap()
    }

    fn request() -> JsonRequest {
        JsonRequest {
            messages: vec![Message::system("extract"), Message::user("Acme v. Roe")],
            schema_name: "entities".into(),
            schema: json!({"type": "object"}),
            prompt_version: 1,
        }
    }

    #[test]
    fn the_cache_key_changes_with_everything_that_changes_the_answer_and_nothing_else() {
        let keys = KeyBuilder::new("dev");
        let base = client(&[]).cache_key(&keys, &request());
        assert!(
            base.starts_with("lexpipe:dev:llm:v1:gpt-4o-mini:"),
            "{base}"
        );
        // The API key is not part of the answer.
        assert_eq!(
            client(&[("OPENAI_API_KEY", "sk-other")]).cache_key(&keys, &request()),
            base
        );
        assert_eq!(
            client(&[("LEXPIPE_LLM_TIMEOUT_MS", "5")]).cache_key(&keys, &request()),
            base
        );
        for var in [
            ("LEXPIPE_LLM_MODEL", "gpt-4o"),
            ("LEXPIPE_LLM_TEMPERATURE", "0.2"),
            ("LEXPIPE_LLM_TOP_P", "0.5"),
            ("LEXPIPE_LLM_SEED", "7"),
            ("LEXPIPE_LLM_MAX_TOKENS", "100"),
        ] {
            assert_ne!(client(&[var]).cache_key(&keys, &request()), base, "{var:?}");
        }
        let c = client(&[]);
        let mut r = request();
        r.prompt_version = 2;
        assert_ne!(c.cache_key(&keys, &r), base);
        let mut r = request();
        r.schema = json!({"type": "array"});
        assert_ne!(c.cache_key(&keys, &r), base);
        let mut r = request();
        r.messages[0].content.push('.');
        assert_ne!(c.cache_key(&keys, &r), base);
    }

    #[test]
    fn a_model_name_with_a_slash_is_hashed_in_the_key() {
        let keys = KeyBuilder::new("dev");
        let k = client(&[("LEXPIPE_LLM_MODEL", "meta-llama/Llama-3.1-8B")])
            .cache_key(&keys, &request());
        assert!(k.starts_with("lexpipe:dev:llm:v1:h-"), "{k}");
    }

    #[test]
    fn answers_are_read_from_the_first_choice_and_checked() {
        let schema_json = json!({"type": "object", "required": ["a"]});
        let ok = json!({"choices": [{"message": {"content": "```json\n{\"a\": 1}\n```"}}]});
        assert_eq!(read_answer(&ok, &schema_json).1, Ok(json!({"a": 1})));
        let bad = json!({"choices": [{"message": {"content": "{\"b\": 1}"}}]});
        assert!(
            read_answer(&bad, &schema_json)
                .1
                .unwrap_err()
                .contains("\"a\"")
        );
        let cut =
            json!({"choices": [{"message": {"content": "{\"a\""}, "finish_reason": "length"}]});
        assert!(
            read_answer(&cut, &schema_json)
                .1
                .unwrap_err()
                .contains("max_tokens")
        );
        let none = json!({"choices": []});
        assert!(read_answer(&none, &schema_json).1.is_err());
    }
}
