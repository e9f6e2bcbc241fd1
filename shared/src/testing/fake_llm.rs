//! A fake OpenAI-compatible endpoint: a real HTTP/1.1 server on `127.0.0.1:0` that answers
//! `POST …/chat/completions` with schema-valid JSON derived from the prompt, counts what it
//! receives, and misbehaves on request.
//!
//! Answers, by the `response_format.json_schema.name` of the request:
//! - `entities`: the rule extractor's mentions of the first user message (the chunk text),
//!   as `{"entities": [{"kind", "text", "normalized"}]}` — what a good model would say;
//! - `document_structure`: the smallest valid description of the part of a document the
//!   prompt carries, with the first two PERSON/ORG mentions the rules find in it as parties,
//!   a `related_to` relationship between them, and its first line as a key fact on the
//!   part's first `[page N]`;
//! - `adjudication`: every numbered pair is the same entity;
//! - anything else: the smallest instance of the schema (required properties only, empty
//!   arrays, the first `enum` value), which the schema accepts.
//!
//! `usage` reports prompt tokens as the request's characters / 4 and completion tokens as
//! the answer's characters / 4, so that costs are deterministic.
//!
//! Faults ([`Fault`]) are queued and served one per request, in order, before normal
//! answers resume; [`FakeLlm::set_latency`] delays every answer (the benchmark's ~300 ms).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::extract::RuleExtractor;
use crate::model::EntityKind;

/// One misbehaviour, served to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests, with `Retry-After: {secs}` when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// 500 Internal Server Error.
    ServerError,
    /// Read the request, then say nothing for this long (the client times out).
    Hang(Duration),
    /// 200 whose message content is not JSON.
    Malformed,
    /// 200 whose content is JSON that breaks the schema.
    BreakSchema,
    /// 401 whose body quotes the `Authorization` header it received (a careless proxy).
    EchoAuthorization,
}

/// What the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The schema name of the request (`""` if none).
    pub schema: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The request body.
    pub body: Value,
    /// Tokens it reported in `usage` (0 for faults without a body).
    pub tokens: u64,
    /// When it arrived, since the server started.
    pub at: Duration,
}

#[derive(Default)]
struct State {
    requests: AtomicU64,
    faults: Mutex<VecDeque<Fault>>,
    latency_ms: AtomicU64,
    received: Mutex<Vec<Received>>,
}

/// The running fake; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// Binds `127.0.0.1:0` and serves until dropped.
    ///
    /// # Panics
    /// If no local port can be bound (a test machine problem).
    pub async fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let started = tokio::time::Instant::now();
        let extractor = Arc::new(RuleExtractor::new());
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, ex) = (st.clone(), extractor.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &st, &ex, started).await;
                });
            }
        });
        FakeLlm { addr, state, task }
    }

    /// `http://127.0.0.1:{port}/v1`, for `LEXPIPE_LLM_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues faults, served one per request in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.lock().expect("poisoned").extend(faults);
    }

    /// Delays every answer by `latency` (simulated model time).
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// Requests received so far (faults included).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests received per schema name.
    pub fn requests_by_schema(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        for r in self.received() {
            *out.entry(r.schema).or_insert(0) += 1;
        }
        out
    }

    /// Requests received with this schema name.
    pub fn requests_for(&self, schema: &str) -> u64 {
        self.received()
            .iter()
            .filter(|r| r.schema == schema)
            .count() as u64
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("poisoned").clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    st: &State,
    extractor: &RuleExtractor,
    started: tokio::time::Instant,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut stream).await?;
    let authorization = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| v.trim().to_string())
    });
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let schema_name = request["response_format"]["json_schema"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    st.requests.fetch_add(1, Ordering::SeqCst);
    let fault = st.faults.lock().expect("poisoned").pop_front();
    let prompt_tokens = body.len() as u64 / 4;
    let latency = Duration::from_millis(st.latency_ms.load(Ordering::Relaxed));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (status, extra_header, content) = match &fault {
        None => (200, None, Some(answer(&schema_name, &request, extractor))),
        Some(Fault::Malformed) => (200, None, Some("{\"entities\": [{\"kind\": ".to_string())),
        Some(Fault::BreakSchema) => (200, None, Some("{\"unexpected\": true}".to_string())),
        Some(Fault::TooManyRequests { retry_after_secs }) => (
            429,
            retry_after_secs.map(|s| format!("Retry-After: {s}\r\n")),
            None,
        ),
        Some(Fault::ServerError) => (500, None, None),
        Some(Fault::EchoAuthorization) => (401, None, None),
        Some(Fault::Hang(d)) => {
            record(st, &schema_name, authorization, request, 0, started);
            tokio::time::sleep(*d).await;
            return Ok(());
        }
    };
    let (reply, tokens) = match content {
        Some(content) => {
            let completion_tokens = content.len() as u64 / 4;
            let reply = json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            });
            (reply, prompt_tokens + completion_tokens)
        }
        None if status == 401 => (
            json!({"error": {"message": format!("invalid credentials: {}",
                authorization.clone().unwrap_or_default())}}),
            0,
        ),
        None => (
            json!({"error": {"message": format!("fake fault {status}")}}),
            0,
        ),
    };
    record(st, &schema_name, authorization, request, tokens, started);
    let body = reply.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{}\r\n{body}",
        body.len(),
        extra_header.unwrap_or_default()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn record(
    st: &State,
    schema: &str,
    authorization: Option<String>,
    body: Value,
    tokens: u64,
    started: tokio::time::Instant,
) {
    st.received.lock().expect("poisoned").push(Received {
        schema: schema.to_string(),
        authorization,
        body,
        tokens,
        at: started.elapsed(),
    });
}

/// Reads one request: the head (request line and headers) and a `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((head, buf[head_end..head_end + length].to_vec()))
}

/// The first user message of a chat request.
fn first_user_text(request: &Value) -> &str {
    request["messages"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
}

/// The answer's content for a request with this schema.
fn answer(schema_name: &str, request: &Value, extractor: &RuleExtractor) -> String {
    let schema = &request["response_format"]["json_schema"]["schema"];
    match schema_name {
        "entities" => {
            let text = first_user_text(request);
            let entities: Vec<Value> = extractor
                .extract(text)
                .into_iter()
                .map(|m| json!({"kind": m.kind, "text": m.text, "normalized": m.normalized}))
                .collect();
            json!({ "entities": entities }).to_string()
        }
        "document_structure" => {
            // The people and organisations the rules find in the part, the first two its
            // parties.
            let text = first_user_text(request);
            let mut named: Vec<String> = Vec::new();
            for m in extractor.extract(text) {
                if matches!(m.kind, EntityKind::Person | EntityKind::Org)
                    && !named.contains(&m.text)
                {
                    named.push(m.text);
                }
            }
            let mut v = minimal_instance(schema);
            v["document_type"] = json!("unknown");
            v["parties"] = named
                .iter()
                .take(2)
                .map(|n| json!({"name": n, "role": "party"}))
                .collect();
            if let [a, b, ..] = named.as_slice() {
                v["relationships"] =
                    json!([{"subject": a, "predicate": "related_to", "object": b}]);
            }
            let first_line = text
                .lines()
                .nth(2)
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>();
            let page = text
                .lines()
                .nth(1)
                .and_then(|l| {
                    l.strip_prefix("[page ")?
                        .strip_suffix(']')?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(1);
            if !first_line.trim().is_empty() {
                v["key_facts"] = json!([{"fact": first_line.trim(), "page": page}]);
            }
            v.to_string()
        }
        "adjudication" => {
            // Every numbered pair (`1. ORG: "a" | "b"`) is called the same.
            let decisions: Vec<Value> = first_user_text(request)
                .lines()
                .filter_map(|l| l.split_once(". ")?.0.parse::<u64>().ok())
                .map(|n| json!({"pair": n, "same": true}))
                .collect();
            json!({ "decisions": decisions }).to_string()
        }
        _ => minimal_instance(schema).to_string(),
    }
}

/// The smallest value `schema` accepts (for the subset [`crate::llm::schema`] checks).
pub fn minimal_instance(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|a| a.first()) {
        return first.clone();
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"null") {
        return Value::Null;
    }
    match types.first().copied() {
        Some("object") => {
            let mut out = serde_json::Map::new();
            if let Some(required) = schema["required"].as_array() {
                for name in required.iter().filter_map(Value::as_str) {
                    out.insert(
                        name.to_string(),
                        minimal_instance(&schema["properties"][name]),
                    );
                }
            }
            Value::Object(out)
        }
        Some("array") => json!([]),
        Some("string") => {
            let n = schema["minLength"].as_u64().unwrap_or(0).max(1) as usize;
            Value::String("x".repeat(n))
        }
        Some("integer") | Some("number") => json!(schema["minimum"].as_i64().unwrap_or(1)),
        Some("boolean") => json!(false),
        _ => Value::Null,
    }
}
