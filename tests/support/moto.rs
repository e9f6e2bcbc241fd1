//! A local S3 for the integration tests: moto's server, one per test, on a free port of
//! 127.0.0.1, killed when the handle drops.
//!
//! moto is required, never skipped: when it is not installed the test fails with the
//! command that installs it. Nothing global is set: the endpoint, region and dummy
//! credentials go into the client built by [`MotoServer::sdk_config`], never into the
//! environment of the test process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

/// The command that installs what these tests need.
pub const INSTALL: &str = "./scripts/test.sh installs it (into .venv); or: pip install 'moto[server]==5.2.5' and set LEXPIPE_PYTHON";

/// Dummy credentials moto accepts; distinctive, so a test can check they never reach an
/// error message.
pub const ACCESS_KEY_ID: &str = "AKIDMOTOTEST";
pub const SECRET_ACCESS_KEY: &str = "moto-secret-never-in-messages";

/// How long moto may take to start (Python imports all of its services).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server.
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    /// moto's request log, read back when it fails to start.
    log: tempfile::NamedTempFile,
}

impl MotoServer {
    /// Starts moto and waits until it answers HTTP.
    ///
    /// # Panics
    /// moto is not installed (with the install command), or it does not start.
    pub fn start() -> MotoServer {
        MotoServer::launch(|port| {
            let mut cmd = Command::new(python());
            cmd.args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null());
            cmd
        })
    }

    /// A moto server whose Step Functions executions run the given Lambda function
    /// binaries, unchanged, through a local Lambda Runtime API (`tests/support/moto_sfn.py`
    /// explains how). `functions` are (function name, binary); each binary runs with `env`
    /// added to an environment cleared of the test process's `AWS_*` variables, and writes
    /// its output to `logs/<name>.log`. Everything stops when the handle drops.
    ///
    /// # Panics
    /// As [`MotoServer::start`].
    pub fn start_running_functions(
        functions: &[(&str, std::path::PathBuf)],
        env: &[(String, String)],
        logs: &std::path::Path,
    ) -> MotoServer {
        let launcher =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/moto_sfn.py");
        let launcher = if launcher.exists() {
            launcher
        } else {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("support/moto_sfn.py")
        };
        MotoServer::launch(|port| {
            let mut cmd = Command::new(python());
            cmd.arg(&launcher)
                .args(["--port", &port.to_string(), "--logs"])
                .arg(logs)
                .args(
                    functions
                        .iter()
                        .map(|(name, bin)| format!("{name}={}", bin.display())),
                )
                // The launcher stops when its stdin closes: when this handle drops, or
                // when the test process dies.
                .stdin(Stdio::piped());
            isolate_aws_env(&mut cmd);
            cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            cmd
        })
    }

    /// Starts the command `make(port)` builds on a free port until it answers HTTP.
    fn launch(make: impl Fn(u16) -> Command) -> MotoServer {
        require_moto();
        let mut last_failure = String::new();
        // A port found free may be taken before moto binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = tempfile::NamedTempFile::new().expect("a temporary file for moto's log");
            let stderr = log.reopen().expect("moto's log opens for writing");
            let child = make(port)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run python3 for moto: {e}. Install: {INSTALL}"));
            let mut server = MotoServer { child, addr, log };
            match server.wait_until_ready() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("moto did not start: {last_failure}. Install or repair it: {INSTALL}");
    }

    /// moto's own log (its stderr), for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `http://localhost:{port}`. A host name, not the IP address: the SDK never uses
    /// virtual-host addressing for an IP endpoint, but would for `localhost`
    /// (`bucket.localhost`, which does not resolve here), so tests through this endpoint
    /// prove that path-style addressing is on.
    pub fn endpoint(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// An AWS configuration for this server: explicit endpoint, region and dummy
    /// credentials; nothing read from the environment.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint())
    }

    /// An S3 client for this server, built the way the pipeline builds its clients
    /// ([`lexpipe::store::s3::s3_client`]).
    pub fn client(&self) -> aws_sdk_s3::Client {
        lexpipe::store::s3::s3_client(&self.sdk_config())
    }

    /// Creates a bucket with a unique valid name (`lexpipe-t-{tag}-{id}`) and returns it.
    pub async fn bucket(&self, tag: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("lexpipe-t-{tag}-{}", &id[..10]);
        self.client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating bucket {name} on moto: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            });
        name
    }

    /// A Step Functions client for this server.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk_config())
    }

    /// Creates a state machine with the pipeline's definition (its tasks pointing at
    /// made-up Lambda ARNs: moto neither validates nor, by default, runs it) under a unique
    /// name, and returns its ARN. moto wants a role ARN; any well-formed one will do.
    pub async fn state_machine(&self, tag: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.state_machine_named(&format!("lexpipe-t-{tag}-{}", &id[..10]))
            .await
    }

    /// [`MotoServer::state_machine`] under the name given, for a test that must know the
    /// ARN before it creates the machine (moto's is
    /// `arn:aws:states:us-east-1:123456789012:stateMachine:{name}`).
    pub async fn state_machine_named(&self, name: &str) -> String {
        let mut definition = lexpipe::pipeline::DEFINITION.to_string();
        for (placeholder, task) in lexpipe::pipeline::SUBSTITUTIONS {
            definition = definition.replace(
                &format!("${{{placeholder}}}"),
                &format!("arn:aws:lambda:us-east-1:123456789012:function:{task}"),
            );
        }
        let out = self
            .sfn()
            .create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/lexpipe-state-machine")
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating a state machine on moto: {}",
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )
            });
        out.state_machine_arn().to_string()
    }

    /// The names and inputs of every execution of `arn`.
    pub async fn executions(&self, arn: &str) -> Vec<(String, serde_json::Value)> {
        let sfn = self.sfn();
        let list = sfn
            .list_executions()
            .state_machine_arn(arn)
            .send()
            .await
            .expect("list executions");
        let mut out = Vec::new();
        for e in list.executions() {
            let d = sfn
                .describe_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .expect("describe execution");
            let input = d
                .input()
                .map(|i| serde_json::from_str(i).expect("execution input is JSON"))
                .unwrap_or_default();
            out.push((e.name().to_string(), input));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The environment a child process (the `lexpipe` binary) needs to reach this server
    /// the way the pipeline reads it: `AWS_ENDPOINT_URL_S3`, `AWS_REGION` and the dummy
    /// credentials. Pass it after [`isolate_aws_env`].
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_string()),
        ]
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                return Err(format!("moto exited with {status}: {}", log.trim()));
            }
            if answers_http(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "no answer on {} within {START_TIMEOUT:?}",
            self.addr
        ))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every `AWS_*` variable of this process from `cmd`'s environment, points the
/// profile files nowhere and turns instance metadata off: the child sees only the AWS
/// settings the test gives it, never a developer's profile or real credentials.
pub fn isolate_aws_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/lexpipe-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/lexpipe-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// An AWS configuration for an S3 at `endpoint`, with dummy credentials, a region, and
/// the pipeline's HTTPS client. Retries and timeouts are the SDK's defaults; tests that
/// need others override them on the returned config's builder.
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "lexpipe-tests",
        )))
        .http_client(lexpipe::store::s3::https_client())
        .build()
}

/// [`sdk_config_for`] with one quick attempt: for tests of unreachable endpoints.
pub fn impatient_sdk_config_for(endpoint: &str) -> SdkConfig {
    sdk_config_for(endpoint)
        .into_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build()
}

/// The Python that has moto: `LEXPIPE_PYTHON` (scripts/test.sh points it at the
/// project's venv), else `python3`.
fn python() -> String {
    std::env::var("LEXPIPE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails loudly when moto's server cannot be imported.
fn require_moto() {
    let found = Command::new(python())
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(s) if s.success() => {}
        other => panic!(
            "the S3 integration tests need moto's server (python3 -c 'import moto.server' gave \
             {other:?}). Install it with `{INSTALL}`, or run ./scripts/test.sh, which does."
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
