//! A fake AWS Textract: a real HTTP/1.1 server on `127.0.0.1:0` answering
//! `StartDocumentTextDetection` and `GetDocumentTextDetection` in Textract's JSON 1.1
//! protocol (`POST /` with `X-Amz-Target: Textract.<Operation>`), as `aws-sdk-textract`
//! speaks it.
//!
//! What it does like Textract: a `ClientRequestToken` seen before returns the same job;
//! a job stays `IN_PROGRESS` for the first [`FakeConfig::in_progress_polls`] Gets; results
//! (a PAGE block, LINE blocks and their WORD blocks per page) are paged with `NextToken`,
//! at most [`FakeConfig::blocks_per_response`] blocks per answer; the first
//! [`FakeConfig::throttle_starts`] starts are refused with
//! `ProvisionedThroughputExceededException`; with [`FakeConfig::fail_jobs`] every job (or
//! the first [`FakeConfig::failing_jobs`]) ends `FAILED` with that message. When given an
//! S3 client, it reads the object a job names (the version it names, if any) and gives the
//! job as many pages as the PDF has.
//!
//! Every request is logged ([`FakeTextract::calls`]) with the time it arrived, so that tests
//! and the benchmark count what the endpoint actually received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Operation names as in `X-Amz-Target`.
pub const START: &str = "StartDocumentTextDetection";
pub const GET: &str = "GetDocumentTextDetection";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Gets answered `IN_PROGRESS` per job before it succeeds (or fails).
    pub in_progress_polls: u32,
    /// LINE blocks per page.
    pub lines_per_page: usize,
    /// Blocks per answer at most, whatever `MaxResults` asks (forces `NextToken` paging).
    pub blocks_per_response: usize,
    /// Pages of a job whose object cannot be read.
    pub default_pages: u32,
    /// The first this many starts are throttled.
    pub throttle_starts: u32,
    /// Jobs fail with this message: every job, or the first [`FakeConfig::failing_jobs`].
    pub fail_jobs: Option<String>,
    /// With `fail_jobs`, how many jobs (the first ones created) fail; 0: every job.
    pub failing_jobs: u32,
    /// Pages (of the submitted document) every job cannot read: the job ends
    /// `PARTIAL_SUCCESS` with a warning naming them, and no blocks for them.
    pub unreadable_pages: Vec<u32>,
    /// Reads the S3 object of a job to count its pages.
    pub s3: Option<aws_sdk_s3::Client>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            in_progress_polls: 1,
            lines_per_page: 3,
            blocks_per_response: 7,
            default_pages: 2,
            throttle_starts: 0,
            fail_jobs: None,
            failing_jobs: 0,
            unreadable_pages: Vec::new(),
            s3: None,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When it arrived, since the server started.
    pub at: Duration,
    pub operation: String,
    pub job_id: Option<String>,
    pub client_request_token: Option<String>,
    pub job_tag: Option<String>,
    pub next_token: Option<String>,
    /// `MaxResults` of a Get (1 is a status check).
    pub max_results: Option<u64>,
    /// `(bucket, key)` of a start.
    pub object: Option<(String, String)>,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `throttled`, `started`, or an error code.
    pub outcome: String,
}

#[derive(Debug)]
struct Job {
    pages: u32,
    gets: u32,
    object: (String, String),
    /// Ends `FAILED` (with `fail_jobs`' message).
    fails: bool,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    jobs: HashMap<String, Job>,
    tokens: HashMap<String, String>,
    starts: u32,
}

/// A running fake; stops when dropped.
pub struct FakeTextract {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTextract {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    cfg: FakeConfig,
    state: Arc<Mutex<State>>,
    started: Instant,
}

impl FakeTextract {
    /// Starts the server on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// No port can be bound (the machine is out of them).
    pub async fn start(cfg: FakeConfig) -> FakeTextract {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake Textract on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::new(Shared {
            cfg,
            state: state.clone(),
            started: Instant::now(),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &shared).await;
                });
            }
        });
        FakeTextract { addr, state, task }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An AWS configuration for this server: its endpoint, a region and dummy
    /// credentials; nothing read from the environment.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_config::{BehaviorVersion, Region};
        use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDFAKETEXTRACT",
                "fake-textract-secret",
                None,
                None,
                "lexpipe-fake-textract",
            )))
            .http_client(crate::store::s3::https_client())
            .build()
    }

    /// A client for this server, built as the pipeline builds its own.
    pub fn client(&self) -> aws_sdk_textract::Client {
        crate::ocr::textract::client(&self.sdk_config())
    }

    /// Every request received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("poisoned").calls.clone()
    }

    /// The requests of one operation ([`START`] or [`GET`]).
    pub fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }

    /// Jobs created (a start with a token seen before creates none).
    pub fn jobs(&self) -> usize {
        self.state.lock().expect("poisoned").jobs.len()
    }

    /// Pages of the job `job_id`.
    pub fn job_pages(&self, job_id: &str) -> Option<u32> {
        self.state
            .lock()
            .expect("poisoned")
            .jobs
            .get(job_id)
            .map(|j| j.pages)
    }

    /// The S3 object of the job `job_id`.
    pub fn job_object(&self, job_id: &str) -> Option<(String, String)> {
        self.state
            .lock()
            .expect("poisoned")
            .jobs
            .get(job_id)
            .map(|j| j.object.clone())
    }
}

/// Most calls among `calls` that fall within any interval of length `window`.
pub fn max_in_window(calls: &[Call], window: Duration) -> usize {
    let mut times: Vec<Duration> = calls.iter().map(|c| c.at).collect();
    times.sort();
    let mut best = 0;
    let mut first = 0;
    for last in 0..times.len() {
        while times[last] - times[first] >= window {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best
}

async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut target = String::new();
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "x-amz-target" => target = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let operation = target.rsplit('.').next().unwrap_or_default().to_string();
        let (status, answer) = handle(shared, &operation, &request).await;
        let text = answer.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             Content-Length: {}\r\nx-amzn-RequestId: {}\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            text.len(),
            uuid::Uuid::new_v4()
        );
        if let Some(kind) = answer.get("__type").and_then(Value::as_str) {
            head.push_str(&format!("x-amzn-ErrorType: {kind}\r\n"));
        }
        head.push_str("\r\n");
        write.write_all(head.as_bytes()).await?;
        write.write_all(text.as_bytes()).await?;
        write.flush().await?;
    }
}

fn error(kind: &str, message: &str) -> (u16, Value) {
    (400, json!({"__type": kind, "message": message}))
}

async fn handle(shared: &Shared, operation: &str, request: &Value) -> (u16, Value) {
    let at = shared.started.elapsed();
    let s = |path: &str| {
        request
            .pointer(path)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut call = Call {
        at,
        operation: operation.to_string(),
        job_id: s("/JobId"),
        client_request_token: s("/ClientRequestToken"),
        job_tag: s("/JobTag"),
        next_token: s("/NextToken"),
        max_results: request.get("MaxResults").and_then(Value::as_u64),
        object: None,
        outcome: String::new(),
    };
    let result = match operation {
        START => {
            let object =
                s("/DocumentLocation/S3Object/Bucket").zip(s("/DocumentLocation/S3Object/Name"));
            call.object = object.clone();
            let version = s("/DocumentLocation/S3Object/Version");
            start(shared, &call, object, version).await
        }
        GET => get(shared, &call, request),
        _ => error("UnknownOperationException", "unknown operation"),
    };
    call.outcome = match result.1.get("__type").and_then(Value::as_str) {
        Some("ProvisionedThroughputExceededException") => "throttled".to_string(),
        Some(kind) => kind.to_string(),
        None => result
            .1
            .get("JobStatus")
            .and_then(Value::as_str)
            .unwrap_or("started")
            .to_string(),
    };
    if call.job_id.is_none() {
        call.job_id = result
            .1
            .get("JobId")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    shared.state.lock().expect("poisoned").calls.push(call);
    result
}

async fn start(
    shared: &Shared,
    call: &Call,
    object: Option<(String, String)>,
    version: Option<String>,
) -> (u16, Value) {
    let Some(object) = object else {
        return error(
            "InvalidParameterException",
            "DocumentLocation.S3Object is required",
        );
    };
    {
        let mut state = shared.state.lock().expect("poisoned");
        state.starts += 1;
        if state.starts <= shared.cfg.throttle_starts {
            return error(
                "ProvisionedThroughputExceededException",
                "Provisioned rate exceeded",
            );
        }
        if let Some(token) = &call.client_request_token
            && let Some(job_id) = state.tokens.get(token)
        {
            return (200, json!({"JobId": job_id}));
        }
    }
    let pages = match &shared.cfg.s3 {
        Some(s3) => match s3
            .get_object()
            .bucket(&object.0)
            .key(&object.1)
            .set_version_id(version)
            .send()
            .await
        {
            Ok(out) => match out.body.collect().await {
                Ok(bytes) => crate::ocr::page_count_hint(&bytes.into_bytes())
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(shared.cfg.default_pages),
                Err(_) => shared.cfg.default_pages,
            },
            Err(_) => {
                return error(
                    "InvalidS3ObjectException",
                    "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
                );
            }
        },
        None => shared.cfg.default_pages,
    };
    let mut state = shared.state.lock().expect("poisoned");
    // Another start with the same token may have won while the object was read.
    if let Some(token) = &call.client_request_token
        && let Some(job_id) = state.tokens.get(token)
    {
        return (200, json!({"JobId": job_id}));
    }
    let job_id = format!("{:064x}", rand::random::<u128>());
    if let Some(token) = &call.client_request_token {
        state.tokens.insert(token.clone(), job_id.clone());
    }
    let created = u32::try_from(state.jobs.len()).unwrap_or(u32::MAX);
    let fails = shared.cfg.fail_jobs.is_some()
        && (shared.cfg.failing_jobs == 0 || created < shared.cfg.failing_jobs);
    state.jobs.insert(
        job_id.clone(),
        Job {
            pages,
            gets: 0,
            object,
            fails,
        },
    );
    (200, json!({"JobId": job_id}))
}

fn get(shared: &Shared, call: &Call, request: &Value) -> (u16, Value) {
    let Some(job_id) = &call.job_id else {
        return error("InvalidParameterException", "JobId is required");
    };
    let mut state = shared.state.lock().expect("poisoned");
    let Some(job) = state.jobs.get_mut(job_id) else {
        return error(
            "InvalidJobIdException",
            "An invalid job identifier was passed.",
        );
    };
    if job.gets < shared.cfg.in_progress_polls {
        job.gets += 1;
        return (200, json!({"JobStatus": "IN_PROGRESS"}));
    }
    if let Some(message) = shared.cfg.fail_jobs.as_ref().filter(|_| job.fails) {
        return (
            200,
            json!({"JobStatus": "FAILED", "StatusMessage": message}),
        );
    }
    let unreadable = &shared.cfg.unreadable_pages;
    let blocks: Vec<Value> = blocks(job.pages, shared.cfg.lines_per_page)
        .into_iter()
        .filter(|b| {
            b.get("Page")
                .and_then(Value::as_u64)
                .is_none_or(|p| !unreadable.contains(&(p as u32)))
        })
        .collect();
    let max = request
        .get("MaxResults")
        .and_then(Value::as_u64)
        .unwrap_or(1000)
        .clamp(1, 1000) as usize;
    let per = max.min(shared.cfg.blocks_per_response.max(1));
    let from: usize = call
        .next_token
        .as_deref()
        .and_then(|t| t.strip_prefix("after-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let to = (from + per).min(blocks.len());
    let mut answer = json!({
        "JobStatus": "SUCCEEDED",
        "DocumentMetadata": {"Pages": job.pages},
        "DetectDocumentTextModelVersion": "1.0",
        "Blocks": blocks[from.min(to)..to],
    });
    if to < blocks.len() {
        answer["NextToken"] = json!(format!("after-{to}"));
    }
    if !unreadable.is_empty() {
        answer["JobStatus"] = json!("PARTIAL_SUCCESS");
        answer["StatusMessage"] = json!("Some pages could not be processed");
        answer["Warnings"] = json!([{"ErrorCode": "UNSUPPORTED_PAGE", "Pages": unreadable}]);
    }
    (200, answer)
}

/// The blocks of a job: per page a PAGE block, then each LINE followed by its WORDs.
fn blocks(pages: u32, lines_per_page: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1..=pages {
        out.push(json!({"BlockType": "PAGE", "Id": format!("p{page}"), "Page": page}));
        for line in 1..=lines_per_page {
            let text = line_text(page, pages, line);
            let top = 0.05 + 0.9 * (line as f64) / (lines_per_page as f64 + 1.0);
            out.push(json!({
                "BlockType": "LINE", "Id": format!("p{page}l{line}"), "Page": page,
                "Confidence": 99.0 - line as f64, "Text": text,
                "Geometry": {"BoundingBox": {"Left": 0.1, "Top": top, "Width": 0.8, "Height": 0.02}},
            }));
            for (i, word) in text.split_whitespace().enumerate() {
                out.push(json!({
                    "BlockType": "WORD", "Id": format!("p{page}l{line}w{i}"), "Page": page,
                    "Confidence": 99.0, "Text": word, "TextType": "PRINTED",
                }));
            }
        }
    }
    out
}

/// The text of line `line` of page `page` of a job of `pages` pages.
pub fn line_text(page: u32, pages: u32, line: usize) -> String {
    format!("Textract read line {line} of page {page} of {pages} of the submitted document.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at_ms: u64) -> Call {
        Call {
            at: Duration::from_millis(at_ms),
            operation: GET.into(),
            job_id: None,
            client_request_token: None,
            job_tag: None,
            next_token: None,
            max_results: None,
            object: None,
            outcome: String::new(),
        }
    }

    #[test]
    fn the_busiest_window_is_counted_over_any_interval_not_fixed_seconds() {
        let calls: Vec<Call> = [0, 600, 1100, 1200, 1500, 2600].map(call).to_vec();
        assert_eq!(max_in_window(&calls, Duration::from_secs(1)), 4);
        assert_eq!(max_in_window(&[], Duration::from_secs(1)), 0);
    }

    #[tokio::test]
    async fn the_sdk_starts_polls_and_pages_through_a_job_on_the_fake() {
        let fake = FakeTextract::start(FakeConfig {
            throttle_starts: 1,
            ..FakeConfig::default()
        })
        .await;
        let client = fake.client();
        let location = aws_sdk_textract::types::DocumentLocation::builder()
            .s3_object(
                aws_sdk_textract::types::S3Object::builder()
                    .bucket("b")
                    .name("k.pdf")
                    .build(),
            )
            .build();
        let throttled = client
            .start_document_text_detection()
            .document_location(location.clone())
            .client_request_token("t1")
            .send()
            .await
            .unwrap_err();
        use aws_sdk_textract::error::ProvideErrorMetadata;
        assert_eq!(
            throttled.code(),
            Some("ProvisionedThroughputExceededException")
        );
        let job = client
            .start_document_text_detection()
            .document_location(location.clone())
            .client_request_token("t1")
            .send()
            .await
            .unwrap();
        let again = client
            .start_document_text_detection()
            .document_location(location)
            .client_request_token("t1")
            .send()
            .await
            .unwrap();
        assert_eq!(job.job_id(), again.job_id());
        assert_eq!(fake.jobs(), 1);
        let job_id = job.job_id().unwrap();
        let first = client
            .get_document_text_detection()
            .job_id(job_id)
            .send()
            .await
            .unwrap();
        assert_eq!(first.job_status().unwrap().as_str(), "IN_PROGRESS");
        let mut lines = 0;
        let mut next: Option<String> = None;
        loop {
            let page = client
                .get_document_text_detection()
                .job_id(job_id)
                .set_next_token(next.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(page.job_status().unwrap().as_str(), "SUCCEEDED");
            lines += page
                .blocks()
                .iter()
                .filter(|b| b.block_type().map(|t| t.as_str()) == Some("LINE"))
                .count();
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        assert_eq!(lines, 6, "2 pages of 3 lines, over several NextToken pages");
        assert_eq!(fake.calls_of(START).len(), 3);
        assert!(fake.calls_of(GET).len() > 3);
    }
}
