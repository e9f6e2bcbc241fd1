//! A local S3 for the benchmarks: moto's server (`python -m moto.server`, the emulator the
//! integration tests use), started on a free port and stopped on drop. Textract reads its
//! input from S3 only, so a benchmark that sends pages to the fake Textract needs one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Dummy credentials moto accepts.
const ACCESS_KEY_ID: &str = "AKIDLOCALS3BENCH";
const SECRET_ACCESS_KEY: &str = "local-s3-bench-secret";

/// A running moto server.
pub struct LocalS3 {
    child: Child,
    endpoint: String,
}

impl LocalS3 {
    /// Starts moto with `python` (the interpreter that has `moto[server]`: `LEXPIPE_PYTHON`,
    /// else the project's `.venv`, else `python3`) and waits until it answers.
    ///
    /// # Errors
    /// moto is not installed, or does not answer within 30 s.
    pub async fn start() -> Result<LocalS3, String> {
        let python = std::env::var("LEXPIPE_PYTHON").unwrap_or_else(|_| {
            if std::path::Path::new(".venv/bin/python").exists() {
                ".venv/bin/python".into()
            } else {
                "python3".into()
            }
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {python} -m moto.server: {e}"))?;
        let mut s3 = LocalS3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(s3);
            }
            if let Ok(Some(status)) = s3.child.try_wait() {
                return Err(format!(
                    "{python} -m moto.server exited ({status}): install moto with \
                     `pip install 'moto[server]==5.2.5'` (./scripts/test.sh puts it in .venv) \
                     or set LEXPIPE_PYTHON"
                ));
            }
            if tokio::time::Instant::now() > give_up {
                return Err(format!("moto did not answer on port {port} within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An S3 client of this server (path-style addressing, dummy credentials).
    pub fn client(&self) -> aws_sdk_s3::Client {
        use aws_config::{BehaviorVersion, Region};
        use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "lexpipe-local-s3",
            )))
            .http_client(crate::store::s3::https_client())
            .build();
        crate::store::s3::s3_client(&sdk)
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
