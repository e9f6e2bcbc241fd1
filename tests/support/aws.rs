//! The AWS shape under test: a moto server with an upload bucket and a state machine, a
//! fresh PostgreSQL database, an env prefix in the real Redis, and the app a Lambda
//! function builds, its S3 client pointed at moto (nothing global is set). Also the
//! sample events of `events/` and S3's way of encoding keys in notifications.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::s3::S3Event;
use lexpipe::app::App;
use lexpipe::ingest::StateMachine;
use lexpipe::store::blob::S3Store;
use lexpipe::store::source::SourceReader;
use serde_json::Value;

use crate::moto::MotoServer;
use crate::pg::{TestDb, test_database};

/// The bucket name the sample events use; tests put theirs in its place.
pub const SAMPLE_BUCKET: &str = "lexpipe-dev-123456789012-documents";

/// Everything one test of the AWS shape needs; [`World::cleanup`] at the end.
pub struct World {
    pub moto: MotoServer,
    pub bucket: String,
    pub machine_arn: String,
    pub db: TestDb,
    pub env: String,
    pub artefacts: tempfile::TempDir,
}

impl World {
    /// Starts moto, creates a bucket (versioned when asked) and a state machine, and a
    /// fresh database.
    pub async fn start(tag: &str, versioned: bool) -> World {
        crate::require_redis().await;
        let moto = MotoServer::start();
        let bucket = moto.bucket(tag).await;
        if versioned {
            moto.client()
                .put_bucket_versioning()
                .bucket(&bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("versioning on");
        }
        let machine_arn = moto.state_machine(tag).await;
        World {
            bucket,
            machine_arn,
            db: test_database().await,
            env: crate::unique_env(tag),
            artefacts: tempfile::tempdir().expect("a scratch folder"),
            moto,
        }
    }

    /// The app one Lambda instance builds (with `overrides` of the configuration), reading
    /// the bucket through moto. Each call is another instance with its own connections.
    pub async fn app(&self, overrides: &[(&str, &str)]) -> App {
        let artefacts = self.artefacts.path().display().to_string();
        let mut vars = vec![
            ("DATABASE_URL", self.db.url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "3"),
            ("LEXPIPE_ARTEFACTS", artefacts.as_str()),
        ];
        vars.extend_from_slice(overrides);
        let config = crate::config_with(&self.env, &vars);
        let mut app = App::build(config, lexpipe_functions::app_options())
            .await
            .expect("the function's app builds");
        let store = S3Store::from_client(self.moto.client(), &self.bucket, "").expect("store");
        app.sources = Arc::new(SourceReader::new().with_bucket(&self.bucket, Arc::new(store)));
        app
    }

    /// The state machine `ingest` starts, through moto.
    pub fn machine(&self) -> StateMachine {
        StateMachine::new(self.moto.sfn(), &self.machine_arn)
    }

    /// Uploads `bytes` as `key`; the version id and ETag S3 answered.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> (Option<String>, Option<String>) {
        let out = self
            .moto
            .client()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
        (
            out.version_id().map(str::to_string),
            out.e_tag().map(|e| e.trim_matches('"').to_string()),
        )
    }

    /// The notification S3 sends for an upload of `key`: `events/ingest.json` with this
    /// world's bucket, the key encoded as S3 encodes it, and the upload's version and ETag.
    pub fn notification(&self, key: &str, version: Option<&str>, etag: Option<&str>) -> S3Event {
        let mut e = event_file("ingest.json");
        let r = &mut e["Records"][0]["s3"];
        r["bucket"]["name"] = self.bucket.clone().into();
        r["bucket"]["arn"] = format!("arn:aws:s3:::{}", self.bucket).into();
        r["object"]["key"] = encode_key(key).into();
        r["object"]["versionId"] = version.map_or(Value::Null, Value::from);
        r["object"]["eTag"] = etag.map_or(Value::Null, Value::from);
        serde_json::from_value(e).expect("an S3 event")
    }

    /// Drops the database and the Redis keys.
    pub async fn cleanup(self) {
        crate::cleanup(&self.env).await;
        self.db.drop_database().await;
    }
}

/// The folder of sample events.
pub fn events_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
}

/// A sample event of `events/`, parsed.
pub fn event_file(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `key` encoded as S3 encodes keys in notifications: a space is `+`, and every byte
/// outside `A-Z a-z 0-9 - _ . ~ / *` is `%XX` (so a literal `+` is `%2B`).
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'*' => {
                out.push(b as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A Lambda context whose deadline is `ms` from now.
pub fn context_with_deadline_in(ms: u64) -> lambda_runtime::Context {
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = lexpipe::emf::now_ms() + ms;
    ctx
}

/// A small PDF with a text layer whose content (and so document) is unique to `seed`.
pub fn unique_pdf(seed: &str) -> Vec<u8> {
    let mut bytes =
        std::fs::read(crate::samples_dir().join("court_order.pdf")).expect("sample PDF");
    // Bytes after %%EOF are ignored by readers and change the content hash.
    bytes.extend_from_slice(format!("\n% {seed}\n").as_bytes());
    bytes
}
